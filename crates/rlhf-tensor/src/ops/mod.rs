//! Every op a GPT needs, each as a forward and a backward function (no tape: the caller runs the
//! backward pass in reverse, as llm.c does). One folder per op family: `mod.rs` holds the
//! tensor-level API with shape checks and device dispatch; `cpu.rs` holds generic slice kernels
//! (f32 for work, f64 for gradient checks).

pub mod attention;
pub mod cross_entropy;
pub mod elementwise;
pub mod embedding;
pub mod gelu;
pub mod kv_attention;
pub mod layernorm;
pub mod logprob;
pub mod matmul;
pub mod ppo;
pub mod reduce;
pub mod sampling;
pub mod softmax;
