//! Embedding tests: values, id and shape errors, accumulation, thread-count independence, and the
//! scatter-add against finite differences in f64.

use proptest::prelude::*;

use super::cpu::{embedding_rows, scatter_add_rows};
use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, Device::Cpu).unwrap()
}

#[test]
fn lookup_with_explicit_positions_and_accumulating_backward() {
    let wte = t(&[0.0, 0.0, 1.0, 1.0, 2.0, 2.0], &[3, 2]);
    let wpe = t(&[0.0, 0.5, 0.0, 0.25, 0.0, 0.125], &[3, 2]);
    // Left padding: the pad (token 0) repeats position 0, the real tokens start at 0.
    let tokens = [0, 2, 1, 2, 2, 0];
    let positions = [0, 0, 1, 0, 1, 2];
    let ids = TokenIds::new(&tokens, 2, 3).with_positions(&positions);
    let out = embedding(&wte, Some(&wpe), ids).unwrap();
    assert_eq!(
        out.to_vec_f32(),
        vec![
            0.0, 0.5, 2.0, 2.5, 1.0, 1.25, 2.0, 2.5, 2.0, 2.25, 0.0, 0.125
        ]
    );
    let dout = t(
        &[
            1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0, 5.0, 50.0, 6.0, 60.0,
        ],
        &[2, 3, 2],
    );
    let mut dwte = t(&[100.0; 6], &[3, 2]);
    let mut dwpe = Tensor::zeros([3, 2], Device::Cpu).unwrap();
    embedding_backward(&dout, ids, &mut dwte, Some(&mut dwpe)).unwrap();
    // Token 0 at rows 0 and 5, token 1 at row 2, token 2 at rows 1, 3, 4; added onto 100.
    assert_eq!(
        dwte.to_vec_f32(),
        vec![107.0, 170.0, 103.0, 130.0, 111.0, 210.0]
    );
    // Position 0 at rows 0, 1, 3; position 1 at rows 2, 4; position 2 at row 5.
    assert_eq!(dwpe.to_vec_f32(), vec![7.0, 70.0, 8.0, 80.0, 6.0, 60.0]);
    // Default positions are 0..T; no position table at all is allowed too.
    let plain = embedding(&wte, None, TokenIds::new(&tokens, 3, 2)).unwrap();
    assert_eq!(&plain.to_vec_f32()[..4], &[0.0, 0.0, 2.0, 2.0]);
}

#[test]
fn bad_ids_and_shapes_are_errors() {
    let wte = t(&[0.0; 6], &[3, 2]);
    let wpe = t(&[0.0; 4], &[2, 2]);
    let message = embedding(&wte, None, TokenIds::new(&[0, 5], 1, 2))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("token id 5") && message.contains("3 rows"),
        "{message}"
    );
    let message = embedding(&wte, None, TokenIds::new(&[0, 1, 2], 1, 2))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[3]") && message.contains("[1, 2]"),
        "{message}"
    );
    // Sequence longer than the position table; position id out of range; positions without wpe.
    assert!(embedding(&wte, Some(&wpe), TokenIds::new(&[0, 1, 2], 1, 3)).is_err());
    let ids = TokenIds::new(&[0, 1], 1, 2).with_positions(&[0, 2]);
    assert!(embedding(&wte, Some(&wpe), ids).is_err());
    assert!(embedding(&wte, None, ids).is_err());
    assert!(
        embedding(
            &wte,
            Some(&t(&[0.0; 6], &[2, 3])),
            TokenIds::new(&[0], 1, 1)
        )
        .is_err()
    );
    let mut dwte = wte.clone();
    let wrong = t(&[0.0; 6], &[1, 3, 2]);
    assert!(embedding_backward(&wrong, TokenIds::new(&[0, 1], 1, 2), &mut dwte, None).is_err());
}

#[test]
fn scatter_add_does_not_depend_on_the_thread_count() {
    // 3000 rows into a 97-row table: many collisions per table row.
    let (rows, cols, table) = (3000, 33, 97);
    let dout: Vec<f32> = random_values(1, rows * cols)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let ids: Vec<usize> = (0..rows).map(|r| (r * r + 7) % table).collect();
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut grad = vec![0.0f32; table * cols];
        pool.install(|| scatter_add_rows(&dout, &ids, cols, &mut grad));
        grad
    };
    let one = run(1);
    assert_eq!(one, run(4));
    // And it equals the naive sequential scatter (same order of additions).
    let mut naive = vec![0.0f32; table * cols];
    for (r, &id) in ids.iter().enumerate() {
        for c in 0..cols {
            naive[id * cols + c] += dout[r * cols + c];
        }
    }
    assert_eq!(one, naive);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn backward_matches_finite_differences(
        batch in 1usize..4, seq_len in 1usize..6, cols in 1usize..7, vocab in 1usize..9,
        seed in 0u64..1000,
    ) {
        let rows = batch * seq_len;
        let wte = random_values(seed, vocab * cols);
        let wpe = random_values(seed + 1, seq_len * cols);
        let w = random_values(seed + 2, rows * cols);
        let tokens: Vec<usize> = (0..rows).map(|r| (seed as usize + 3 * r * r) % vocab).collect();
        let positions: Vec<usize> = (0..rows).map(|r| r % seq_len).collect();
        let loss = |wte: &[f64], wpe: &[f64]| {
            let mut out = vec![0.0; rows * cols];
            embedding_rows(wte, Some(wpe), &tokens, &positions, cols, &mut out);
            out.iter().zip(&w).map(|(o, w)| o * w).sum::<f64>()
        };
        let mut dwte = vec![0.0; wte.len()];
        let mut dwpe = vec![0.0; wpe.len()];
        scatter_add_rows(&w, &tokens, cols, &mut dwte);
        scatter_add_rows(&w, &positions, cols, &mut dwpe);
        assert_close("dwte", &dwte, &numerical_gradient(|v| loss(v, &wpe), &wte, 1e-6), 1e-7, 1e-9);
        assert_close("dwpe", &dwpe, &numerical_gradient(|v| loss(&wte, v), &wpe, 1e-6), 1e-7, 1e-9);
    }
}
