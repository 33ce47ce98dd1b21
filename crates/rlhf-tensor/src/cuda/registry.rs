//! The kernel registry: PTX built ahead of time by `cargo xtask kernels` and embedded here, one
//! module per `.cu` file. A device loads a module the first time one of its kernels is asked for.

/// One compiled `.cu` file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelModule {
    /// add, mul, scale, bias-row broadcast, fill, bf16 <-> f32.
    Elementwise,
    /// Token + position embedding forward and backward.
    Embedding,
    /// LayerNorm forward (plain and fused with the residual add) and backward.
    Layernorm,
    /// GELU (tanh approximation) forward and backward.
    Gelu,
    /// Row softmax and log-softmax (optionally causal) forward and backward.
    Softmax,
    /// Fused cross-entropy loss and dlogits.
    CrossEntropy,
    /// Selected log-probs and entropies under a temperature, forward and backward.
    LogprobEntropy,
    /// Sums, sums of squares, masked sums, column sums, the global gradient norm.
    Reduce,
    /// The AdamW and SGD steps.
    Adamw,
    /// Head split/merge layouts around attention.
    Attention,
    /// Fused (flash) causal attention forward and backward.
    FlashAttention,
    /// Our GEMM: bf16 tensor cores and fp32 CUDA cores, fused bias/GELU epilogue.
    Gemm,
    /// Greedy / temperature / top-k / top-p sampling.
    Sampling,
    /// Decoding attention over a key/value cache.
    KvCache,
    /// PPO's per-token policy / value loss terms and KL estimators.
    Ppo,
}

impl KernelModule {
    /// Every module, in registry order.
    pub const ALL: [KernelModule; 15] = [
        KernelModule::Elementwise,
        KernelModule::Embedding,
        KernelModule::Layernorm,
        KernelModule::Gelu,
        KernelModule::Softmax,
        KernelModule::CrossEntropy,
        KernelModule::LogprobEntropy,
        KernelModule::Reduce,
        KernelModule::Adamw,
        KernelModule::Attention,
        KernelModule::FlashAttention,
        KernelModule::Gemm,
        KernelModule::Sampling,
        KernelModule::KvCache,
        KernelModule::Ppo,
    ];

    /// Position in [`KernelModule::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The `.cu` file stem.
    pub fn name(self) -> &'static str {
        match self {
            KernelModule::Elementwise => "elementwise",
            KernelModule::Embedding => "embedding",
            KernelModule::Layernorm => "layernorm",
            KernelModule::Gelu => "gelu",
            KernelModule::Softmax => "softmax",
            KernelModule::CrossEntropy => "cross_entropy",
            KernelModule::LogprobEntropy => "logprob_entropy",
            KernelModule::Reduce => "reduce",
            KernelModule::Adamw => "adamw",
            KernelModule::Attention => "attention",
            KernelModule::FlashAttention => "flash_attention",
            KernelModule::Gemm => "gemm",
            KernelModule::Sampling => "sampling",
            KernelModule::KvCache => "kv_cache",
            KernelModule::Ppo => "ppo",
        }
    }

    /// The embedded PTX (ISA 9.0, compute_90).
    pub fn ptx(self) -> &'static str {
        match self {
            KernelModule::Elementwise => include_str!("../../../../kernels/ptx/elementwise.ptx"),
            KernelModule::Embedding => include_str!("../../../../kernels/ptx/embedding.ptx"),
            KernelModule::Layernorm => include_str!("../../../../kernels/ptx/layernorm.ptx"),
            KernelModule::Gelu => include_str!("../../../../kernels/ptx/gelu.ptx"),
            KernelModule::Softmax => include_str!("../../../../kernels/ptx/softmax.ptx"),
            KernelModule::CrossEntropy => {
                include_str!("../../../../kernels/ptx/cross_entropy.ptx")
            }
            KernelModule::LogprobEntropy => {
                include_str!("../../../../kernels/ptx/logprob_entropy.ptx")
            }
            KernelModule::Reduce => include_str!("../../../../kernels/ptx/reduce.ptx"),
            KernelModule::Adamw => include_str!("../../../../kernels/ptx/adamw.ptx"),
            KernelModule::Attention => include_str!("../../../../kernels/ptx/attention.ptx"),
            KernelModule::FlashAttention => {
                include_str!("../../../../kernels/ptx/flash_attention.ptx")
            }
            KernelModule::Gemm => include_str!("../../../../kernels/ptx/gemm.ptx"),
            KernelModule::Sampling => include_str!("../../../../kernels/ptx/sampling.ptx"),
            KernelModule::KvCache => include_str!("../../../../kernels/ptx/kv_cache.ptx"),
            KernelModule::Ppo => include_str!("../../../../kernels/ptx/ppo.ptx"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_embeds_isa_9_ptx_with_its_entries() {
        for (i, module) in KernelModule::ALL.iter().enumerate() {
            assert_eq!(module.index(), i);
            let ptx = module.ptx();
            assert!(ptx.contains(".version 9.0"), "{}: PTX ISA", module.name());
            assert!(ptx.contains(".target sm_90"), "{}: target", module.name());
            assert!(
                ptx.contains(".visible .entry"),
                "{}: entries",
                module.name()
            );
        }
        assert!(KernelModule::Elementwise.ptx().contains(".entry add_bf16("));
        assert!(KernelModule::Adamw.ptx().contains(".entry adamw_f32("));
        assert!(
            KernelModule::Gemm
                .ptx()
                .contains(".entry gemm_bf16_bf16_nt(")
        );
    }
}
