//! Layernorm tests: hand-computed values, errors, thread-count independence, and the backward
//! against finite differences in f64.

use proptest::prelude::*;

use super::cpu::{layernorm_rows, layernorm_rows_backward};
use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values, to_f64};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, Device::Cpu).unwrap()
}

#[test]
fn hand_computed_values() {
    // x = [1, 2, 4, 9]: mean 4, biased variance (9 + 4 + 0 + 25) / 4 = 9.5,
    // rstd = 1 / sqrt(9.5 + 1e-5) = 0.32444267150226924.
    let x = t(&[1.0, 2.0, 4.0, 9.0], &[1, 4]);
    let gamma = t(&[1.0, -2.0, 0.5, 3.0], &[4]);
    let beta = t(&[0.0, 1.0, -1.0, 0.25], &[4]);
    let (out, cache) = layernorm(&x, &gamma, &beta, 1e-5).unwrap();
    let expected = [
        -0.973_328_014_506_807_6,
        2.297_770_686_009_077,
        -1.0,
        5.116_640_072_534_039,
    ];
    assert_close("out", &to_f64(&out.to_vec_f32()), &expected, 1e-6, 1e-6);
    assert_eq!(cache.mean.to_vec_f32(), vec![4.0]);
    assert!((cache.rstd.to_vec_f32()[0] as f64 - 0.324_442_671_502_269_24).abs() < 1e-7);
}

#[test]
fn shape_errors_name_both_shapes() {
    let x = t(&[0.0; 6], &[2, 3]);
    let ok = t(&[1.0; 3], &[3]);
    let message = layernorm(&x, &t(&[1.0; 2], &[2]), &ok, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[2, 3]") && message.contains("[2]"),
        "{message}"
    );
    assert!(layernorm(&x, &ok, &t(&[1.0; 4], &[4]), 1e-5).is_err());
    assert!(layernorm(&x, &ok, &ok, f32::NAN).is_err());
    let (_, cache) = layernorm(&x, &ok, &ok, 1e-5).unwrap();
    assert!(layernorm_backward(&t(&[0.0; 6], &[3, 2]), &x, &ok, &cache).is_err());
    let (_, other_cache) = layernorm(&t(&[0.0; 3], &[1, 3]), &ok, &ok, 1e-5).unwrap();
    assert!(layernorm_backward(&x, &x, &ok, &other_cache).is_err());
}

#[test]
fn parameter_gradients_do_not_depend_on_the_thread_count() {
    // 700 rows of 67: many row blocks, so the block sums really are added across tasks.
    let (rows, cols) = (700, 67);
    let f32s = |v: Vec<f64>| v.iter().map(|&x| x as f32).collect::<Vec<_>>();
    let x = t(&f32s(random_values(1, rows * cols)), &[rows, cols]);
    let dout = t(&f32s(random_values(2, rows * cols)), &[rows, cols]);
    let gamma = t(&f32s(random_values(3, cols)), &[cols]);
    let beta = t(&f32s(random_values(4, cols)), &[cols]);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let (_, cache) = layernorm(&x, &gamma, &beta, 1e-5).unwrap();
            layernorm_backward(&dout, &x, &gamma, &cache).unwrap()
        })
    };
    assert_eq!(run(1), run(3));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn backward_matches_finite_differences(
        rows in 1usize..5, cols in 2usize..20, seed in 0u64..1000,
    ) {
        let x: Vec<f64> = random_values(seed, rows * cols).iter().map(|v| 2.0 * v + 0.5).collect();
        let gamma = random_values(seed + 1, cols);
        let beta = random_values(seed + 2, cols);
        let w = random_values(seed + 3, rows * cols);
        let eps = 1e-5;
        let forward = |x: &[f64], gamma: &[f64], beta: &[f64]| {
            let mut out = vec![0.0; x.len()];
            let (mut mean, mut rstd) = (vec![0.0; rows], vec![0.0; rows]);
            layernorm_rows(x, gamma, beta, eps, &mut out, &mut mean, &mut rstd);
            (out, mean, rstd)
        };
        let loss = |out: Vec<f64>| out.iter().zip(&w).map(|(o, w)| o * w).sum::<f64>();
        let (_, mean, rstd) = forward(&x, &gamma, &beta);
        let mut dx = vec![f64::NAN; x.len()];
        let (dgamma, dbeta) = layernorm_rows_backward(&w, &x, &gamma, &mean, &rstd, &mut dx);
        let num_dx = numerical_gradient(|v| loss(forward(v, &gamma, &beta).0), &x, 1e-6);
        let num_dgamma = numerical_gradient(|v| loss(forward(&x, v, &beta).0), &gamma, 1e-6);
        let num_dbeta = numerical_gradient(|v| loss(forward(&x, &gamma, v).0), &beta, 1e-6);
        assert_close("dx", &dx, &num_dx, 1e-5, 1e-7);
        assert_close("dgamma", &dgamma, &num_dgamma, 1e-6, 1e-8);
        assert_close("dbeta", &dbeta, &num_dbeta, 1e-6, 1e-8);
    }
}
