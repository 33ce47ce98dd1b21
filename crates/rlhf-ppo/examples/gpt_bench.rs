//! `gpt_bench`: the GPU goals measured in one call, at GPT-2 124M by default.
//!
//! Sections (each prints a table row and one JSON line starting with `{"bench":`, which
//! `.gpu/run.sh` puts beside PyTorch's from `gpt_bench_torch.py`):
//! - `memory`: activation bytes a training forward keeps, with and without recomputation.
//! - `train`: training steps (forward, LM loss, backward, clipping, AdamW) on random tokens,
//!   bf16 mixed precision on a GPU (f32 on the CPU); tokens/s and MFU, with
//!   FLOPs per token = 6 N + 6 L T C (N parameters, L layers, T sequence, C width: llm.c's
//!   formula, the matmuls' forward and backward plus attention's scores and mixing).
//! - `generate`: KV-cache sampling, P prompts of 64 tokens x `--new` tokens (no EOS stop).
//! - `ppo`: one PPO step (rollout with generation, scoring, policy/reference/critic forwards,
//!   one epoch of updates on policy and critic) and its time split; the goal is generation under
//!   half of the step.
//!
//! `gpt_bench [--device cpu|cuda] [--tiny] [--only SECTION] [--batch B] [--seq T]
//! [--steps N] [--prompts P] [--new K] [--peak-tflops X]`. `--tiny` is a 2-layer, C 64 model at
//! small sizes (the CPU check that every section runs).

use std::time::Instant;

use rlhf_ppo::{PpoConfig, PpoPrompt, PpoSetup, PpoTrainer};
use rlhf_reward::{Episode, FnReward};
use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{
    Example, GenerationConfig, Gpt, GptConfig, ModelInput, OptimizerConfig, Precision, Recompute,
    Sampling, TrainConfig, Trainer,
};

/// H100 SXM dense bf16 tensor-core peak (TFLOP/s), the MFU denominator unless `--peak-tflops`.
const H100_BF16_PEAK_TFLOPS: f64 = 989.4;
/// llm.c's published GPT-2 124M training throughput on one H100 (tokens/s): the reference row.
const LLMC_H100_TOKENS_PER_S: f64 = 468_000.0;

struct Args {
    device: Device,
    tiny: bool,
    only: Option<String>,
    batch: usize,
    seq: usize,
    steps: usize,
    prompts: usize,
    new_tokens: usize,
    peak_tflops: f64,
}

impl Args {
    fn parse() -> Result<Args, String> {
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let tiny = argv.iter().any(|a| a == "--tiny");
        let cuda = Device::Cuda(0).available().is_ok();
        let mut args = Args {
            device: if cuda { Device::Cuda(0) } else { Device::Cpu },
            tiny,
            only: None,
            batch: if tiny { 2 } else { 16 },
            seq: if tiny { 64 } else { 1024 },
            steps: if tiny { 2 } else { 5 },
            prompts: if tiny { 4 } else { 64 },
            new_tokens: if tiny { 16 } else { 256 },
            peak_tflops: H100_BF16_PEAK_TFLOPS,
        };
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            if flag == "--tiny" {
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{flag}: `{value}` is not a positive integer"))
            };
            match flag.as_str() {
                "--device" => {
                    args.device = value
                        .parse::<Device>()
                        .and_then(Device::available)
                        .map_err(|e| format!("--device {value}: {e}"))?
                }
                "--only" => args.only = Some(value.clone()),
                "--batch" => args.batch = number()?,
                "--seq" => args.seq = number()?,
                "--steps" => args.steps = number()?,
                "--prompts" => args.prompts = number()?,
                "--new" => args.new_tokens = number()?,
                "--peak-tflops" => {
                    args.peak_tflops = value
                        .parse()
                        .map_err(|_| format!("--peak-tflops: `{value}` is not a number"))?
                }
                _ => return Err(format!("unknown option {flag}")),
            }
        }
        if [
            args.batch,
            args.seq,
            args.steps,
            args.prompts,
            args.new_tokens,
        ]
        .contains(&0)
        {
            return Err("sizes must be > 0".into());
        }
        Ok(args)
    }

    fn runs(&self, section: &str) -> bool {
        self.only.as_deref().is_none_or(|s| s == section)
    }

    /// GPT-2 124M, or the tiny config.
    fn config(&self) -> GptConfig {
        let positions = (self.seq).max(64 + self.new_tokens).max(1024);
        if self.tiny {
            GptConfig::new(512, positions, 64, 2, 2)
        } else {
            GptConfig::new(50257, positions, 768, 12, 12)
        }
    }

    /// bf16 on a GPU, f32 on the CPU (which refuses bf16 training).
    fn precision(&self) -> Precision {
        if self.device == Device::Cpu {
            Precision::F32
        } else {
            Precision::Bf16
        }
    }
}

type BenchResult<T> = Result<T, Box<dyn std::error::Error>>;

/// One named section of the benchmark.
type Section = (&'static str, fn(&Args) -> BenchResult<()>);

fn model(args: &Args) -> BenchResult<Gpt> {
    Ok(Gpt::new(args.config(), 0, &mut Rng::new(0), args.device)?)
}

fn random_tokens(rng: &mut Rng, n: usize, vocab: usize) -> Vec<u32> {
    (0..n).map(|_| rng.below(vocab) as u32).collect()
}

fn parameters(model: &Gpt) -> usize {
    model.params.tensors().iter().map(|t| t.numel()).sum()
}

fn memory(args: &Args) -> BenchResult<()> {
    let m = model(args)?;
    let m = Gpt {
        params: m.params.to_dtype(args.precision().dtype())?,
        ..m
    };
    let (b, t) = (args.batch, args.seq);
    let tokens = random_tokens(&mut Rng::new(2), b * t, m.config.vocab_size);
    let input = ModelInput::dense(tokens, b, t)?;
    let kept = m.forward_with(&input, Recompute::Off)?.activation_bytes();
    let dropped = m
        .forward_with(&input, Recompute::Activations)?
        .activation_bytes();
    let mib = |x: usize| x as f64 / (1u64 << 20) as f64;
    println!(
        "memory   B {b} x T {t} {:?}: activations kept {:.1} MiB, with recomputation {:.1} MiB ({:.0}% saved)",
        args.precision(),
        mib(kept),
        mib(dropped),
        100.0 * (kept - dropped) as f64 / kept as f64
    );
    println!(
        "{{\"bench\":\"memory\",\"impl\":\"rlhf\",\"batch\":{b},\"seq\":{t},\"bytes\":{kept},\"bytes_recompute\":{dropped}}}"
    );
    Ok(())
}

fn train(args: &Args) -> BenchResult<()> {
    let m = model(args)?;
    let n_params = parameters(&m);
    let c = m.config.clone();
    let (b, t) = (args.batch, args.seq);
    let mut rng = Rng::new(3);
    let data: Vec<Example> = (0..b * 4)
        .map(|_| Example::full(random_tokens(&mut rng, t, c.vocab_size)))
        .collect();
    let mut config = TrainConfig::new(3e-4, (args.steps + 1) as u64, t);
    config.batch_size = b;
    config.precision = args.precision();
    if let OptimizerConfig::Adamw(a) = &mut config.optimizer {
        a.weight_decay = 0.1;
    }
    let mut trainer = Trainer::new(m, config)?;
    trainer.train_step(&data)?; // warm-up: module loads, allocations, cuBLAS plans
    let start = Instant::now();
    let mut loss = 0.0;
    for _ in 0..args.steps {
        loss = trainer.train_step(&data)?.loss; // reads the loss: the step has finished
    }
    let seconds = start.elapsed().as_secs_f64() / args.steps as f64;
    let tokens_per_s = (b * t) as f64 / seconds;
    let flops_per_token = 6.0 * n_params as f64 + 6.0 * (c.n_layer * t * c.n_embd) as f64;
    let mfu = tokens_per_s * flops_per_token / (args.peak_tflops * 1e12);
    println!(
        "train    N {n_params} B {b} x T {t} {:?}: {:.1} ms/step, {tokens_per_s:.0} tokens/s, MFU {:.1}% of {} TFLOP/s (6N + 6LTC = {:.3} GFLOP/token), loss {loss:.3}",
        args.precision(),
        seconds * 1e3,
        mfu * 100.0,
        args.peak_tflops,
        flops_per_token / 1e9
    );
    println!(
        "train    llm.c reference (published, H100): {LLMC_H100_TOKENS_PER_S:.0} tokens/s; ours / llm.c = {:.2}",
        tokens_per_s / LLMC_H100_TOKENS_PER_S
    );
    println!(
        "{{\"bench\":\"train\",\"impl\":\"rlhf\",\"batch\":{b},\"seq\":{t},\"tokens_per_s\":{tokens_per_s:.1},\"mfu\":{mfu:.4},\"params\":{n_params}}}"
    );
    Ok(())
}

fn generate(args: &Args) -> BenchResult<()> {
    let m = model(args)?;
    let m = Gpt {
        params: m.params.to_dtype(args.precision().dtype())?,
        ..m
    };
    let mut rng = Rng::new(4);
    let prompt_len = 64;
    let prompts: Vec<Vec<u32>> = (0..args.prompts)
        .map(|_| random_tokens(&mut rng, prompt_len, m.config.vocab_size))
        .collect();
    let mut config = GenerationConfig {
        max_new_tokens: 4,
        sampling: Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
        },
        eos_token_id: None,
        pad_token_id: 0,
        seed: 5,
    };
    m.generate(&prompts, &config)?; // warm-up
    config.max_new_tokens = args.new_tokens;
    let start = Instant::now();
    let out = m.generate(&prompts, &config)?;
    let seconds = start.elapsed().as_secs_f64();
    let generated = out.mask.iter().filter(|&&k| k).count();
    let tokens_per_s = generated as f64 / seconds;
    println!(
        "generate {} prompts x {prompt_len} + {} new, {:?} weights: {:.2} s, {tokens_per_s:.0} tokens/s",
        args.prompts,
        args.new_tokens,
        m.params.wte.dtype(),
        seconds
    );
    println!(
        "{{\"bench\":\"generate\",\"impl\":\"rlhf\",\"prompts\":{},\"new_tokens\":{},\"tokens_per_s\":{tokens_per_s:.1}}}",
        args.prompts, args.new_tokens
    );
    Ok(())
}

fn ppo(args: &Args) -> BenchResult<()> {
    let policy = model(args)?;
    let vocab = policy.config.vocab_size;
    let mut rng = Rng::new(6);
    let prompts: Vec<PpoPrompt> = (0..args.prompts)
        .map(|i| PpoPrompt {
            text: format!("prompt {i}"),
            tokens: random_tokens(&mut rng, 64, vocab),
        })
        .collect();
    let micro = args.prompts.min(16);
    let config = PpoConfig {
        per_device_train_batch_size: micro,
        gradient_accumulation_steps: args.prompts.div_ceil(micro),
        num_mini_batches: 1,
        num_ppo_epochs: 1,
        total_episodes: Some(2 * micro * args.prompts.div_ceil(micro)),
        response_length: args.new_tokens,
        local_rollout_forward_batch_size: micro,
        ..PpoConfig::default()
    };
    // Longer responses score higher: a cheap rule, so scoring time is the reward's plumbing.
    let reward = FnReward::new("length", |e: &Episode<'_>| {
        Ok(e.response_tokens.len() as f32 / 256.0)
    });
    let setup = PpoSetup {
        config,
        policy,
        reference: None,
        critic_init: None,
        reward: Box::new(reward),
        decode: Box::new(|ids: &[u32]| Ok(format!("{} tokens", ids.len()))),
        prompts,
        ptx_data: Vec::new(),
        eos_token_id: vocab as u32 - 1,
        pad_token_id: 0,
    };
    let mut trainer = PpoTrainer::new(setup)?;
    let mut quiet = |_: &rlhf_ppo::PpoEvent| {};
    trainer.train_step(&mut quiet)?; // warm-up
    let start = Instant::now();
    let record = trainer
        .train_step(&mut quiet)?
        .ok_or("the PPO step was skipped (non-finite score)")?;
    let seconds = start.elapsed().as_secs_f64();
    let t = record.timing;
    println!(
        "ppo      {} episodes x {} tokens, f32 weights: {seconds:.2} s/step ({}), generation share {:.0}% (goal < 50%)",
        trainer.config().batch_size(),
        args.new_tokens,
        t.split(),
        100.0 * t.generation_share()
    );
    println!(
        "{{\"bench\":\"ppo\",\"impl\":\"rlhf\",\"episodes\":{},\"new_tokens\":{},\"step_s\":{seconds:.3},\"generation_s\":{:.3},\"rollout_forward_s\":{:.3},\"scoring_s\":{:.3},\"training_s\":{:.3},\"generation_share\":{:.4}}}",
        trainer.config().batch_size(),
        args.new_tokens,
        t.generation,
        t.rollout_forward,
        t.scoring,
        t.training,
        t.generation_share()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    // As the `rlhf` binary does: freed buffers stay mapped between steps.
    rlhf_tensor::host_memory::retain_freed_memory();
    let args = match Args::parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gpt_bench: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    println!(
        "gpt_bench on {} ({}), {:?}",
        args.device,
        if args.tiny {
            "tiny config"
        } else {
            "GPT-2 124M"
        },
        args.precision()
    );
    let sections: [Section; 4] = [
        ("memory", memory),
        ("train", train),
        ("generate", generate),
        ("ppo", ppo),
    ];
    let mut failed = false;
    for (name, run) in sections {
        if !args.runs(name) {
            continue;
        }
        if let Err(e) = run(&args) {
            eprintln!("gpt_bench {name}: {e}");
            failed = true;
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
