//! Host kernels of the cached attention, parallel over the batch. Sizes are
//! `[B, n, H, D, cap, start]`.

use rayon::prelude::*;

/// Copies the new keys and values: qkv (B, n, 3C) -> keys, values (B, H, cap, D) at positions
/// start..start + n.
pub fn append(keys: &mut [f32], values: &mut [f32], qkv: &[f32], sizes: [usize; 6]) {
    let [_, n, h, d, cap, start] = sizes;
    let c = h * d;
    keys.par_chunks_mut(h * cap * d)
        .zip(values.par_chunks_mut(h * cap * d))
        .enumerate()
        .for_each(|(row, (k_row, v_row))| {
            for i in 0..n {
                let src = &qkv[(row * n + i) * 3 * c..(row * n + i + 1) * 3 * c];
                for head in 0..h {
                    let dst = (head * cap + start + i) * d;
                    k_row[dst..dst + d].copy_from_slice(&src[c + head * d..c + (head + 1) * d]);
                    v_row[dst..dst + d]
                        .copy_from_slice(&src[2 * c + head * d..2 * c + (head + 1) * d]);
                }
            }
        });
}

/// Each new query over the visible, real cached positions; `out` (B, n, C) starts zeroed.
pub fn attention(
    qkv: &[f32],
    keys: &[f32],
    values: &[f32],
    mask: &[f32],
    sizes: [usize; 6],
    out: &mut [f32],
) {
    let [_, n, h, d, cap, start] = sizes;
    let c = h * d;
    let scale = 1.0 / (d as f32).sqrt();
    out.par_chunks_mut(n * c)
        .enumerate()
        .for_each(|(row, out_row)| {
            let row_mask = &mask[row * cap..row * cap + start + n];
            let mut scores = vec![0.0f32; start + n];
            for i in 0..n {
                let q_all = &qkv[(row * n + i) * 3 * c..(row * n + i) * 3 * c + c];
                let visible = start + i + 1; // causal: keys 0..=start+i
                for head in 0..h {
                    let q = &q_all[head * d..(head + 1) * d];
                    let k_head = &keys[(row * h + head) * cap * d..];
                    let v_head = &values[(row * h + head) * cap * d..];
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores[..visible].iter_mut().enumerate() {
                        *s = if row_mask[j] != 0.0 {
                            dot(q, &k_head[j * d..(j + 1) * d]) * scale
                        } else {
                            f32::NEG_INFINITY
                        };
                        max = max.max(*s);
                    }
                    let o = &mut out_row[i * c + head * d..i * c + (head + 1) * d];
                    if max == f32::NEG_INFINITY {
                        continue; // nothing visible (a padded query before any real token): 0
                    }
                    let mut total = 0.0f32;
                    for s in &mut scores[..visible] {
                        *s = (*s - max).exp();
                        total += *s;
                    }
                    for (j, &s) in scores[..visible].iter().enumerate() {
                        if s > 0.0 {
                            let wgt = s / total;
                            let v = &v_head[j * d..(j + 1) * d];
                            o.iter_mut().zip(v).for_each(|(o, v)| *o += wgt * v);
                        }
                    }
                }
            }
        });
}

/// Dot product with eight independent partial sums, so the compiler can vectorise it.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = a8
        .remainder()
        .iter()
        .zip(b8.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in a8.zip(b8) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}
