//! Reading what `rlhf train lm` and `rlhf model score` consume: tokenizers and data files (plain
//! text, token JSONL, HH-RLHF / TRL JSONL for SFT) as training examples.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rlhf_data::formats::FeedbackReader;
use rlhf_data::records::{Feedback, Prompt, Role};
use rlhf_data::tokenizer::{AnyTokenizer, BpeTokenizer, Gpt2Tokenizer, Tokenizer};
use rlhf_transformer::{Example, pack};

/// The tokenizer: `--tokenizer`, else `dir/tokenizer.json`, else GPT-2's.
pub(crate) fn load_tokenizer(
    explicit: Option<&Path>,
    dir: Option<&Path>,
) -> anyhow::Result<(AnyTokenizer, Option<PathBuf>)> {
    let path = explicit
        .map(Path::to_path_buf)
        .or_else(|| dir.map(|d| d.join("tokenizer.json")).filter(|p| p.exists()));
    match path {
        Some(p) => {
            let t = BpeTokenizer::load(&p)
                .with_context(|| format!("loading tokenizer {}", p.display()))?;
            Ok((AnyTokenizer::Bpe(t), Some(p)))
        }
        None => Ok((AnyTokenizer::Gpt2(Gpt2Tokenizer::new()?), None)),
    }
}

/// What a data file holds, from its name and first line.
enum DataKind {
    Text,
    TokenJsonl,
    Feedback,
}

fn data_kind(path: &Path) -> anyhow::Result<DataKind> {
    let name = path.to_string_lossy();
    if name.ends_with(".txt") {
        return Ok(DataKind::Text);
    }
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut first = String::new();
    BufReader::new(file).read_line(&mut first)?;
    let is_tokens = serde_json::from_str::<serde_json::Value>(&first)
        .ok()
        .is_some_and(|v| v.get("tokens").is_some());
    Ok(if is_tokens {
        DataKind::TokenJsonl
    } else if name.ends_with(".jsonl") || name.ends_with(".jsonl.gz") || name.ends_with(".json") {
        DataKind::Feedback
    } else {
        DataKind::Text
    })
}

/// Reads token JSONL: `{"tokens": [...], "loss_mask": [...]?}` per line.
fn read_token_jsonl(path: &Path, vocab: usize) -> anyhow::Result<Vec<Example>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let value: serde_json::Value = serde_json::from_str(&line).with_context(at)?;
        let tokens: Vec<u32> = serde_json::from_value(
            value.get("tokens").cloned().unwrap_or_default(),
        )
        .with_context(|| format!("{}: field `tokens`: expected an array of token ids", at()))?;
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            bail!(
                "{}: field `tokens`: id {bad} is outside the model's vocabulary ({vocab})",
                at()
            );
        }
        if tokens.len() < 2 {
            bail!("{}: field `tokens`: expected at least 2 tokens", at());
        }
        let example = match value.get("loss_mask") {
            Some(m) => {
                let mask: Vec<bool> = serde_json::from_value::<Vec<u8>>(m.clone())
                    .with_context(|| format!("{}: field `loss_mask`: expected 0/1 flags", at()))?
                    .into_iter()
                    .map(|f| f != 0)
                    .collect();
                if mask.len() != tokens.len() {
                    bail!(
                        "{}: field `loss_mask`: {} flags for {} tokens",
                        at(),
                        mask.len(),
                        tokens.len()
                    );
                }
                Example {
                    tokens,
                    loss_mask: mask,
                }
            }
            None => Example::full(tokens),
        };
        out.push(example);
    }
    Ok(out)
}

/// A prompt as dialogue text ending in `"\n\nAssistant:"`, the HH-RLHF convention.
fn render_prompt(prompt: &Prompt) -> String {
    let mut text = String::new();
    for turn in &prompt.turns {
        let tag = match turn.role {
            Role::User => "\n\nHuman: ",
            Role::Assistant => "\n\nAssistant: ",
            Role::System => "",
        };
        text.push_str(tag);
        text.push_str(&turn.content);
    }
    text.push_str("\n\nAssistant:");
    text
}

/// SFT examples from HH / TRL JSONL: prompt + chosen response + EOS.
fn read_sft(
    path: &Path,
    tok: &AnyTokenizer,
    completion_only: bool,
) -> anyhow::Result<Vec<Example>> {
    let reader =
        FeedbackReader::open(path, None).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for record in reader {
        let located = record?;
        let Feedback::Pairwise(pair) = located.record else {
            bail!(
                "{}:{}: expected a prompt/chosen/rejected record for SFT",
                path.display(),
                located.line
            );
        };
        let prompt = tok.encode_with_special(&render_prompt(&pair.prompt));
        let mut response = tok.encode(&pair.chosen);
        response.push(tok.eos_id());
        out.push(Example::sft(&prompt, &response, completion_only));
    }
    Ok(out)
}

/// Reads training or scoring data as examples.
pub(crate) fn read_examples(
    path: &Path,
    tok: &AnyTokenizer,
    vocab: usize,
    sft: bool,
    completion_only: bool,
    seq_len: usize,
    per_line: bool,
) -> anyhow::Result<Vec<Example>> {
    let examples = match data_kind(path)? {
        DataKind::TokenJsonl => read_token_jsonl(path, vocab)?,
        DataKind::Feedback if sft => read_sft(path, tok, completion_only)?,
        DataKind::Feedback => bail!(
            "{}: JSONL feedback data needs --sft (or token JSONL with a `tokens` field)",
            path.display()
        ),
        DataKind::Text if sft => bail!(
            "{}: --sft needs HH-RLHF or TRL JSONL, got plain text",
            path.display()
        ),
        DataKind::Text => {
            let text =
                fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            if per_line {
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| Example::full(tok.encode_with_special(l)))
                    .collect()
            } else {
                pack(&tok.encode_with_special(&text), seq_len)?
            }
        }
    };
    if examples.is_empty() {
        bail!("{}: no examples", path.display());
    }
    if let Some(bad) = examples
        .iter()
        .flat_map(|e| &e.tokens)
        .find(|&&t| t as usize >= vocab)
    {
        bail!(
            "{}: token id {bad} does not fit the model's vocabulary ({vocab}); use a matching --tokenizer",
            path.display()
        );
    }
    Ok(examples)
}
