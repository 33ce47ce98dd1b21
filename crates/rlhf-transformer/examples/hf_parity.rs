//! The Rust side of `scripts/check_hf_parity.py`.
//!
//! `hf_parity init DIR SEED`: writes a randomly initialised tiny GPT-2 checkpoint to DIR.
//! `hf_parity logits DIR IN.json OUT.json`: loads DIR, runs the batch in IN.json
//! (`{"tokens": [[...]], "mask": [[0|1...]]}`, any padding side) and writes
//! `{"shape": [B, T, V], "logits": [...], "scalars": [B T K] or null}`.

use std::path::Path;

use rlhf_tensor::{Device, Rng};
use rlhf_transformer::{Gpt, GptConfig, ModelInput};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("init") if args.len() == 4 => {
            let mut config = GptConfig::new(96, 32, 32, 2, 4);
            config.eos_token_id = Some(0);
            let seed: u64 = args[3].parse()?;
            let mut model = Gpt::new(config, 0, &mut Rng::new(seed), Device::Cpu)?;
            // Non-trivial LayerNorm and bias values, so that a swapped tensor would show.
            let mut rng = Rng::new(seed + 1);
            for (name, t) in model.params.named_mut() {
                if name.contains("ln_") || name.ends_with(".bias") {
                    let noise = rlhf_tensor::Tensor::randn(t.dims(), 0.1, &mut rng, Device::Cpu)?;
                    t.add_assign(&noise)?;
                }
            }
            model.save(Path::new(&args[2]))?;
        }
        Some("logits") if args.len() == 5 => {
            let model = Gpt::load(Path::new(&args[2]), Device::Cpu)?;
            let input: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&args[3])?)?;
            let rows = |key: &str| -> Vec<Vec<u32>> {
                serde_json::from_value(input[key].clone()).unwrap_or_default()
            };
            let (tokens, mask) = (rows("tokens"), rows("mask"));
            let (b, t) = (tokens.len(), tokens.first().map_or(0, Vec::len));
            let batch = ModelInput::with_mask(
                tokens.concat(),
                mask.concat().into_iter().map(|m| m != 0).collect(),
                b,
                t,
            )?;
            let fwd = model.forward(&batch)?;
            let logits = model.logits(&fwd.hidden)?;
            let scalars = fwd.scalars.as_ref().map(|s| s.to_vec_f32());
            let out = serde_json::json!({
                "shape": logits.dims(),
                "logits": logits.to_vec_f32(),
                "scalars": scalars,
            });
            std::fs::write(&args[4], serde_json::to_vec(&out)?)?;
        }
        _ => {
            eprintln!("usage: hf_parity init DIR SEED | hf_parity logits DIR IN.json OUT.json");
            std::process::exit(2);
        }
    }
    Ok(())
}
