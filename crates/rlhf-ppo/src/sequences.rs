//! Query-response sequences of a rollout and the row plumbing between the model's (B, T, C)
//! activations and the (B, R) response tensors of the PPO math.
//!
//! Layout (TRL's `query_response`): each row is its prompt left-padded to P tokens, followed by
//! its response right-padded to R tokens (nothing after the stop token or after R), so T = P + R.
//! The log-prob and the value of response token j are read at position P - 1 + j, the position
//! that predicts it.

use rlhf_tensor::Tensor;
use rlhf_transformer::{Gpt, ModelInput};

use crate::train_error::{TrainError, TrainResult};

/// B query-response rows of P + R tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequences {
    /// Token ids (B, P + R); padding holds the pad id.
    pub tokens: Vec<u32>,
    /// True at real tokens (B, P + R).
    pub attention: Vec<bool>,
    /// Whether each response ended with the stop token (B).
    pub finished: Vec<bool>,
    /// Rows B.
    pub batch: usize,
    /// Prompt width P (the longest prompt).
    pub context_len: usize,
    /// Response width R (the longest response).
    pub response_len: usize,
}

impl Sequences {
    /// Lays out prompts and their responses (each already truncated after its stop token).
    pub fn new(
        prompts: &[&[u32]],
        responses: &[Vec<u32>],
        finished: Vec<bool>,
        pad: u32,
    ) -> TrainResult<Sequences> {
        if prompts.is_empty() || prompts.len() != responses.len() || finished.len() != prompts.len()
        {
            return Err(TrainError::Input(format!(
                "{} prompts, {} responses and {} finished flags; expected equal, > 0",
                prompts.len(),
                responses.len(),
                finished.len()
            )));
        }
        let p = prompts.iter().map(|q| q.len()).max().unwrap_or(0);
        let r = responses.iter().map(Vec::len).max().unwrap_or(0);
        if p == 0 || r == 0 || prompts.iter().any(|q| q.is_empty()) {
            return Err(TrainError::Input(
                "every prompt needs a token and some response must have one".into(),
            ));
        }
        let t = p + r;
        let mut tokens = Vec::with_capacity(prompts.len() * t);
        let mut attention = Vec::with_capacity(prompts.len() * t);
        for (prompt, response) in prompts.iter().zip(responses) {
            let (lead, tail) = (p - prompt.len(), r - response.len());
            tokens.extend(std::iter::repeat_n(pad, lead));
            attention.extend(std::iter::repeat_n(false, lead));
            tokens.extend_from_slice(prompt);
            tokens.extend_from_slice(response);
            attention.extend(std::iter::repeat_n(true, prompt.len() + response.len()));
            tokens.extend(std::iter::repeat_n(pad, tail));
            attention.extend(std::iter::repeat_n(false, tail));
        }
        Ok(Sequences {
            tokens,
            attention,
            finished,
            batch: prompts.len(),
            context_len: p,
            response_len: r,
        })
    }

    /// Full width T = P + R.
    pub fn width(&self) -> usize {
        self.context_len + self.response_len
    }

    /// The model input of `rows` (b, T).
    pub fn input(&self, rows: &[usize]) -> TrainResult<ModelInput> {
        let t = self.width();
        let mut tokens = Vec::with_capacity(rows.len() * t);
        let mut attention = Vec::with_capacity(rows.len() * t);
        for &row in rows {
            tokens.extend_from_slice(&self.tokens[row * t..(row + 1) * t]);
            attention.extend_from_slice(&self.attention[row * t..(row + 1) * t]);
        }
        Ok(ModelInput::with_mask(tokens, attention, rows.len(), t)?)
    }

    /// The response tokens of `rows` (b, R), pad after each response.
    pub fn response_tokens(&self, rows: &[usize]) -> Vec<u32> {
        self.response_part(rows, &self.tokens)
    }

    /// The response mask of `rows` (b, R) as 0/1 floats.
    pub fn response_mask(&self, rows: &[usize]) -> Vec<f32> {
        self.response_part(rows, &self.attention)
            .into_iter()
            .map(|m| if m { 1.0 } else { 0.0 })
            .collect()
    }

    /// Row `row`'s response tokens without padding.
    pub fn response(&self, row: usize) -> Vec<u32> {
        let t = self.width();
        let start = row * t + self.context_len;
        self.tokens[start..start + self.response_len]
            .iter()
            .zip(&self.attention[start..start + self.response_len])
            .filter(|(_, m)| **m)
            .map(|(tok, _)| *tok)
            .collect()
    }

    /// Row `row`'s prompt tokens without padding.
    pub fn prompt(&self, row: usize) -> Vec<u32> {
        let t = self.width();
        let start = row * t;
        self.tokens[start..start + self.context_len]
            .iter()
            .zip(&self.attention[start..start + self.context_len])
            .filter(|(_, m)| **m)
            .map(|(tok, _)| *tok)
            .collect()
    }

    fn response_part<X: Copy>(&self, rows: &[usize], data: &[X]) -> Vec<X> {
        let t = self.width();
        let mut out = Vec::with_capacity(rows.len() * self.response_len);
        for &row in rows {
            let start = row * t + self.context_len;
            out.extend_from_slice(&data[start..start + self.response_len]);
        }
        out
    }
}

/// Rows P - 1 .. P + R - 1 of each sequence of `hidden` (b, T, C): the states that predict the
/// response tokens, as (b R, C).
pub fn response_rows(
    hidden: &Tensor,
    context_len: usize,
    response_len: usize,
) -> TrainResult<Tensor> {
    let (b, t, _) = dims3(hidden)?;
    // (b R, C) on the hidden states' device and dtype (R <= T: a buffer of the right size whose
    // every row is overwritten below), one row range per sequence.
    let mut out = hidden.rows(0, b * response_len)?;
    for row in 0..b {
        let start = row * t + context_len - 1;
        out.set_rows(
            row * response_len,
            &hidden.rows(start, start + response_len)?,
        )?;
    }
    Ok(out)
}

/// The inverse of [`response_rows`] for gradients: (b R, C) into zeros of `like`'s (b, T, C).
pub fn scatter_response_rows(
    rows: &Tensor,
    like: &Tensor,
    context_len: usize,
    response_len: usize,
) -> TrainResult<Tensor> {
    let (b, t, c) = dims3(like)?;
    let mut out = like.zeros_like()?.reshape([b * t, c])?;
    for row in 0..b {
        let from = row * response_len;
        out.set_rows(
            row * t + context_len - 1,
            &rows.rows(from, from + response_len)?,
        )?;
    }
    Ok(out.reshape([b, t, c])?)
}

/// The first scalar head's values (b, R) at the response positions of `scalars` (b, T, K).
pub fn response_values(
    scalars: &Tensor,
    context_len: usize,
    response_len: usize,
) -> TrainResult<Vec<f32>> {
    let (b, t, k) = dims3(scalars)?;
    let s = scalars.try_to_vec_f32()?; // (b, T, K): small, read on the host
    let mut out = Vec::with_capacity(b * response_len);
    for row in 0..b {
        for j in 0..response_len {
            out.push(s[(row * t + context_len - 1 + j) * k]);
        }
    }
    Ok(out)
}

/// The gradient (b, T, K) of the first scalar head from value gradients (b, R).
pub fn scatter_values(
    dvalues: &[f32],
    like: &Tensor,
    context_len: usize,
    response_len: usize,
) -> TrainResult<Tensor> {
    let (b, t, k) = dims3(like)?;
    let mut out = vec![0.0f32; b * t * k];
    for row in 0..b {
        for j in 0..response_len {
            out[(row * t + context_len - 1 + j) * k] = dvalues[row * response_len + j];
        }
    }
    Ok(Tensor::from_vec(out, [b, t, k], like.device())?)
}

fn dims3(x: &Tensor) -> TrainResult<(usize, usize, usize)> {
    match *x.dims() {
        [b, t, c] => Ok((b, t, c)),
        _ => Err(TrainError::Input(format!(
            "expected a (B, T, C) tensor, got shape {}",
            x.shape()
        ))),
    }
}

/// Checks that a model has positions for the longest prompt plus `response_length` tokens.
pub fn check_fits(
    model: &Gpt,
    what: &str,
    max_prompt: usize,
    response_length: usize,
) -> TrainResult<()> {
    let need = max_prompt + response_length;
    if need > model.config.n_positions {
        return Err(TrainError::Input(format!(
            "{what}: a {max_prompt}-token prompt plus response_length {response_length} needs {need} positions, the model has n_positions = {}",
            model.config.n_positions
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rlhf_tensor::Device;

    #[test]
    fn layout_and_row_plumbing() {
        // Prompts [5, 6] and [7]; responses [1, 2, 3] and [4]: P = 2, R = 3, T = 5, pad 0.
        let seqs = Sequences::new(
            &[&[5, 6], &[7]],
            &[vec![1, 2, 3], vec![4]],
            vec![false, true],
            0,
        )
        .unwrap();
        assert_eq!(seqs.tokens, vec![5, 6, 1, 2, 3, 0, 7, 4, 0, 0]);
        assert_eq!(
            seqs.response_mask(&[1, 0]),
            vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
        );
        assert_eq!(seqs.response_tokens(&[1]), vec![4, 0, 0]);
        assert_eq!((seqs.prompt(1), seqs.response(1)), (vec![7], vec![4]));
        let input = seqs.input(&[1]).unwrap();
        assert_eq!(input.position_ids, vec![0, 0, 1, 0, 0]);
        // hidden (1, 5, 2) with value 10 t + c: rows 1..4 predict the response.
        let h: Vec<f32> = (0..5)
            .flat_map(|t| [10.0 * t as f32, 10.0 * t as f32 + 1.0])
            .collect();
        let hidden = Tensor::from_vec(h, [1, 5, 2], Device::Cpu).unwrap();
        let rows = response_rows(&hidden, 2, 3).unwrap();
        assert_eq!(rows.to_vec_f32(), vec![10.0, 11.0, 20.0, 21.0, 30.0, 31.0]);
        let back = scatter_response_rows(&rows, &hidden, 2, 3)
            .unwrap()
            .to_vec_f32();
        assert_eq!(
            back,
            vec![0.0, 0.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0, 0.0, 0.0]
        );
        let scalars =
            Tensor::from_vec((0..5).map(|x| x as f32).collect(), [1, 5, 1], Device::Cpu).unwrap();
        assert_eq!(
            response_values(&scalars, 2, 3).unwrap(),
            vec![1.0, 2.0, 3.0]
        );
        let d = scatter_values(&[7.0, 8.0, 9.0], &scalars, 2, 3)
            .unwrap()
            .to_vec_f32();
        assert_eq!(d, vec![0.0, 7.0, 8.0, 9.0, 0.0]);
    }
}
