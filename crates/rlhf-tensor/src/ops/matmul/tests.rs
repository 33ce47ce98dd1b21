//! Matmul tests: hand-computed values, errors, and every layout's backward against finite
//! differences in f64.

use proptest::prelude::*;

use super::*;
use crate::Device;
use crate::testing::{assert_close, numerical_gradient, random_values};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, shape, Device::Cpu).unwrap()
}

#[test]
fn two_by_two_with_bias_and_transposes() {
    let a = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
    let b = t(&[5.0, 6.0, 7.0, 8.0], &[2, 2]);
    let bias = t(&[0.5, -0.5], &[2]);
    let out = matmul(&a, &b, Some(&bias), MatmulSpec::NN).unwrap();
    assert_eq!(out.to_vec_f32(), vec![19.5, 21.5, 43.5, 49.5]);
    // a @ b^T
    let out = matmul(&a, &b, None, MatmulSpec::NT).unwrap();
    assert_eq!(out.to_vec_f32(), vec![17.0, 23.0, 39.0, 53.0]);
    // a^T @ b
    let out = matmul(&a, &b, None, MatmulSpec::TN).unwrap();
    assert_eq!(out.to_vec_f32(), vec![26.0, 30.0, 38.0, 44.0]);
}

#[test]
fn shape_errors_name_both_shapes() {
    let a = t(&[0.0; 6], &[2, 3]);
    let b = t(&[0.0; 8], &[4, 2]);
    let message = matmul(&a, &b, None, MatmulSpec::NN)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[2, 3]") && message.contains("[4, 2]"),
        "{message}"
    );
    let bad_bias = t(&[0.0; 3], &[3]);
    let b = t(&[0.0; 6], &[3, 2]);
    assert!(matmul(&a, &b, Some(&bad_bias), MatmulSpec::NN).is_err());
    assert!(matmul(&t(&[0.0; 3], &[3]), &b, None, MatmulSpec::NN).is_err());
    let batched_b = t(&[0.0; 12], &[2, 3, 2]);
    assert!(matmul(&t(&[0.0; 18], &[3, 2, 3]), &batched_b, None, MatmulSpec::NN).is_err());
}

/// Naive reference product in f64 for any layout.
fn reference(plan: &Plan, a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; plan.batch * plan.m * plan.n];
    for p in 0..plan.batch {
        let a_off = p * plan.m * plan.k;
        let b_off = if plan.b_shared {
            0
        } else {
            p * plan.k * plan.n
        };
        for i in 0..plan.m {
            for j in 0..plan.n {
                let mut acc = 0.0;
                for l in 0..plan.k {
                    let av = a[a_off + i * plan.a_view.row_stride + l * plan.a_view.col_stride];
                    let bv = b[b_off + l * plan.b_view.row_stride + j * plan.b_view.col_stride];
                    acc += av * bv;
                }
                out[p * plan.m * plan.n + i * plan.n + j] = acc;
            }
        }
    }
    out
}

struct Case {
    batch_dims: Vec<usize>,
    m: usize,
    n: usize,
    k: usize,
    spec: MatmulSpec,
    b_shared: bool,
    with_bias: bool,
}

impl Case {
    fn shapes(&self) -> (Vec<usize>, Vec<usize>) {
        let mut a_shape = self.batch_dims.clone();
        a_shape.extend(if self.spec.transpose_a {
            [self.k, self.m]
        } else {
            [self.m, self.k]
        });
        let mut b_shape = if self.b_shared {
            vec![]
        } else {
            self.batch_dims.clone()
        };
        b_shape.extend(if self.spec.transpose_b {
            [self.n, self.k]
        } else {
            [self.k, self.n]
        });
        (a_shape, b_shape)
    }

    /// Checks the forward against the naive product and every gradient against finite differences
    /// of L = sum(out * w) for a random w, all in f64.
    fn check(&self, seed: u64) {
        let (a_shape, b_shape) = self.shapes();
        let a_t = Tensor::zeros(a_shape.clone(), Device::Cpu).unwrap();
        let b_t = Tensor::zeros(b_shape.clone(), Device::Cpu).unwrap();
        let plan = Plan::new("test", &a_t, &b_t, self.spec).unwrap();
        let a = random_values(seed, a_t.numel());
        let b = random_values(seed + 1, b_t.numel());
        let bias = random_values(seed + 2, self.n);
        let w = random_values(seed + 3, plan.out_shape.numel());
        let bias_arg = self.with_bias.then_some(bias.as_slice());

        let forward = |a: &[f64], b: &[f64], bias: Option<&[f64]>| {
            let mut out = vec![f64::NAN; plan.out_shape.numel()];
            forward_slices(&plan, a, b, bias, &mut out);
            out
        };
        let mut expected = reference(&plan, &a, &b);
        if self.with_bias {
            expected.chunks_exact_mut(self.n).for_each(|row| {
                row.iter_mut().zip(&bias).for_each(|(o, b)| *o += b);
            });
        }
        assert_close(
            "forward",
            &forward(&a, &b, bias_arg),
            &expected,
            1e-12,
            1e-12,
        );

        let loss = |out: Vec<f64>| out.iter().zip(&w).map(|(o, w)| o * w).sum::<f64>();
        let mut da = vec![f64::NAN; a.len()];
        let mut db = vec![f64::NAN; b.len()];
        backward_slices(&plan, &w, &a, &b, &mut da, &mut db, false);
        let num_da = numerical_gradient(|x| loss(forward(x, &b, bias_arg)), &a, 1e-6);
        let num_db = numerical_gradient(|x| loss(forward(&a, x, bias_arg)), &b, 1e-6);
        assert_close("da", &da, &num_da, 1e-6, 1e-8);
        assert_close("db", &db, &num_db, 1e-6, 1e-8);
        if self.with_bias {
            let num_dbias = numerical_gradient(|x| loss(forward(&a, &b, Some(x))), &bias, 1e-6);
            assert_close("dbias", &sum_rows(&w, self.n), &num_dbias, 1e-6, 1e-8);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn backward_matches_finite_differences(
        batch_dims in prop::collection::vec(1usize..4, 0..3),
        m in 1usize..7, n in 1usize..7, k in 1usize..9,
        transpose_a: bool, transpose_b: bool, b_shared: bool, with_bias: bool,
        seed in 0u64..1000,
    ) {
        let case = Case {
            b_shared: b_shared || batch_dims.is_empty(),
            batch_dims, m, n, k, with_bias,
            spec: MatmulSpec { transpose_a, transpose_b },
        };
        case.check(seed);
    }
}

#[test]
fn large_products_split_across_threads_agree_with_the_reference() {
    // 67 x 129 x 71: above the parallel threshold, not a multiple of any SIMD width.
    for spec in [MatmulSpec::NN, MatmulSpec::NT, MatmulSpec::TN] {
        let case = Case {
            batch_dims: vec![2],
            m: 67,
            n: 129,
            k: 71,
            spec,
            b_shared: true,
            with_bias: true,
        };
        let (a_shape, b_shape) = case.shapes();
        let a_values = random_values(1, a_shape.iter().product());
        let b_values = random_values(2, b_shape.iter().product());
        let a = t(
            &a_values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            &a_shape,
        );
        let b = t(
            &b_values.iter().map(|&v| v as f32).collect::<Vec<_>>(),
            &b_shape,
        );
        let out = matmul(&a, &b, None, spec).unwrap();
        let plan = Plan::new("test", &a, &b, spec).unwrap();
        let expected = reference(&plan, &a_values, &b_values);
        let got = crate::testing::to_f64(&out.to_vec_f32());
        assert_close("f32 product", &got, &expected, 1e-4, 1e-4);
    }
}

#[test]
fn tensor_backward_shapes_follow_operands() {
    let a = t(&[0.5; 2 * 3 * 4], &[2, 4, 3]); // transposed: (B, K, M) = (2, 4, 3)
    let b = t(&[0.25; 5 * 4], &[5, 4]); // transposed: (N, K)
    let spec = MatmulSpec {
        transpose_a: true,
        transpose_b: true,
    };
    let out = matmul(&a, &b, None, spec).unwrap();
    assert_eq!(out.dims(), &[2, 3, 5]);
    let grads = matmul_backward(&out, &a, &b, true, spec).unwrap();
    assert_eq!(grads.da.dims(), a.dims());
    assert_eq!(grads.db.dims(), b.dims());
    assert_eq!(grads.dbias.unwrap().dims(), &[5]);
    let wrong = t(&[0.0; 6], &[2, 3]);
    assert!(matmul_backward(&wrong, &a, &b, false, spec).is_err());
}

#[test]
fn banded_parallel_gemm_matches_a_naive_product_in_both_split_directions() {
    use super::cpu::{MatLayout, gemm_into};
    // (m, k, n): wide (bands over columns) and tall (bands over rows), ragged last band each;
    // the destination written transposed and accumulated into, so every stride is exercised.
    for (m, k, n) in [(70, 65, 200), (200, 65, 70)] {
        let lhs = random_values(3, m * k)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>();
        let rhs = random_values(4, k * n)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>();
        let start = random_values(5, m * n)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>();
        let mut dst = start.clone();
        let dst_layout = MatLayout::row_major(n, m).t(); // (m, n) stored column-major
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        pool.install(|| {
            gemm_into(
                &mut dst,
                dst_layout,
                true,
                &lhs,
                MatLayout::row_major(m, k),
                &rhs,
                MatLayout::row_major(k, n),
            )
        });
        for i in 0..m {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|p| f64::from(lhs[i * k + p]) * f64::from(rhs[p * n + j]))
                    .sum();
                let want = f64::from(start[j * m + i]) + dot;
                let got = f64::from(dst[j * m + i]);
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "({i}, {j}): {got} vs {want}"
                );
            }
        }
    }
}

/// The few-row kernel against a naive f64 product: every weight storage it takes (NN rows
/// contiguous along N, NT columns contiguous along K), x in place or gathered (transposed), a
/// padded destination, overwrite and accumulate, on 1 and 2 threads.
fn check_skinny(m: usize, k: usize, n: usize, w_transposed: bool, x_transposed: bool, seed: u64) {
    use super::cpu::{MatLayout, gemm_into};
    let f32s = |s: u64, len: usize| {
        random_values(s, len)
            .iter()
            .map(|&v| v as f32)
            .collect::<Vec<_>>()
    };
    let (x, w) = (f32s(seed, m * k), f32s(seed + 1, k * n));
    let x_layout = if x_transposed {
        MatLayout::row_major(k, m).t()
    } else {
        MatLayout::row_major(m, k)
    };
    let w_layout = if w_transposed {
        MatLayout::row_major(n, k).t()
    } else {
        MatLayout::row_major(k, n)
    };
    // Rows of the destination padded by 3 elements that must stay untouched.
    let d_layout = MatLayout {
        rows: m,
        cols: n,
        row_stride: n + 3,
        col_stride: 1,
    };
    assert!(
        !skinny::applies(d_layout, x_layout, w_layout)
            || m <= skinny::MAX_ROWS && (w_layout.col_stride == 1 || w_layout.row_stride == 1)
    );
    let at = |v: &[f32], l: MatLayout, i: usize, j: usize| {
        f64::from(v[i * l.row_stride + j * l.col_stride])
    };
    for accumulate in [false, true] {
        for threads in [1, 2] {
            let start = f32s(seed + 2, m * (n + 3));
            let mut dst = start.clone();
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| gemm_into(&mut dst, d_layout, accumulate, &x, x_layout, &w, w_layout));
            for i in 0..m {
                for j in 0..n + 3 {
                    let e = i * (n + 3) + j;
                    let want = if j >= n {
                        f64::from(start[e])
                    } else {
                        let dot: f64 = (0..k)
                            .map(|l| at(&x, x_layout, i, l) * at(&w, w_layout, l, j))
                            .sum();
                        dot + if accumulate { f64::from(start[e]) } else { 0.0 }
                    };
                    let got = f64::from(dst[e]);
                    assert!(
                        (got - want).abs() < 1e-5 * (k as f64).sqrt() * (1.0 + want.abs()),
                        "m {m} k {k} n {n} w^T {w_transposed} x^T {x_transposed} acc {accumulate} \
                         threads {threads}: ({i}, {j}) {got} vs {want}"
                    );
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn few_row_products_match_the_reference(
        m in 1usize..=34, k in 1usize..70, n in 1usize..300,
        w_transposed: bool, x_transposed: bool, seed in 0u64..1000,
    ) {
        check_skinny(m, k, n, w_transposed, x_transposed, seed);
    }
}

#[test]
fn few_row_products_at_decode_shapes_match_the_reference() {
    // 16 sequences against GPT-2-like weights: several column bands, K past every vector width,
    // and the row tails (16 = 2 x 8, 13 = 8 + 5, 30 = 4 x 7 + 2). Weights over 64 K elements
    // take the K-blocked NN loop (blocks of 16 rows, a ragged last block for K = 131, 300, 1000).
    for (m, k, n) in [
        (16, 200, 700),
        (13, 131, 517),
        (5, 300, 250),
        (16, 1000, 70),
        (30, 64, 129),
        (32, 17, 1000),
    ] {
        for w_transposed in [false, true] {
            check_skinny(m, k, n, w_transposed, false, 7);
        }
    }
}

#[test]
fn the_few_row_kernel_is_what_runs_where_the_cpu_has_it() {
    use super::cpu::MatLayout;
    // On x86-64 with AVX2 + FMA or AVX-512 (this project's machines) the kernel must take a
    // decode-shaped product, so the tests above exercise it rather than the fallback.
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && std::env::var("RLHF_SKINNY_GEMM").as_deref() != Ok("0")
    {
        let (x, w, d) = (
            MatLayout::row_major(16, 768),
            MatLayout::row_major(768, 2304),
            MatLayout::row_major(16, 2304),
        );
        assert!(skinny::applies(d, x, w));
        assert!(skinny::applies(d, x, MatLayout::row_major(2304, 768).t()));
        assert!(!skinny::applies(
            MatLayout::row_major(33, 2304),
            MatLayout::row_major(33, 768),
            w
        ));
    }
}

#[test]
fn accumulating_backward_adds_what_the_plain_backward_returns() {
    // Folded (a weight b, a not transposed), batched with a shared b (a transposed), and
    // batched b; with and without a bias; on a batch of 2 x 3 rows.
    let mut rng = crate::Rng::new(3);
    let cases: [(&[usize], &[usize], MatmulSpec, bool); 4] = [
        (&[2, 3, 4], &[4, 5], MatmulSpec::NN, true),
        (&[2, 3, 4], &[5, 4], MatmulSpec::NT, false),
        (&[2, 4, 3], &[4, 5], MatmulSpec::TN, true),
        (&[2, 3, 4], &[2, 4, 5], MatmulSpec::NN, false),
    ];
    for (a_dims, b_dims, spec, with_bias) in cases {
        let a = Tensor::uniform(a_dims, -1.0, 1.0, &mut rng, Device::Cpu).unwrap();
        let b = Tensor::uniform(b_dims, -1.0, 1.0, &mut rng, Device::Cpu).unwrap();
        let out = matmul(&a, &b, None, spec).unwrap();
        let dout = Tensor::uniform(out.dims(), -1.0, 1.0, &mut rng, Device::Cpu).unwrap();
        let plain = matmul_backward(&dout, &a, &b, with_bias, spec).unwrap();
        let start = Tensor::uniform(b_dims, -1.0, 1.0, &mut rng, Device::Cpu).unwrap();
        let n = out.dims()[out.dims().len() - 1];
        let bias_start = Tensor::uniform([n], -1.0, 1.0, &mut rng, Device::Cpu).unwrap();
        let mut db_sum = start.clone();
        let mut dbias_sum = bias_start.clone();
        let da = matmul_backward_accumulate(
            &dout,
            &a,
            &b,
            spec,
            &mut db_sum,
            with_bias.then_some(&mut dbias_sum),
        )
        .unwrap();
        assert_eq!(da.to_vec_f32(), plain.da.to_vec_f32());
        let mut want = start.clone();
        want.add_assign(&plain.db).unwrap();
        let f64s = |t: &Tensor| {
            t.to_vec_f32()
                .iter()
                .map(|&v| f64::from(v))
                .collect::<Vec<_>>()
        };
        assert_close("db sum", &f64s(&db_sum), &f64s(&want), 1e-6, 1e-6);
        let mut want_bias = bias_start.clone();
        if let Some(dbias) = &plain.dbias {
            want_bias.add_assign(dbias).unwrap();
        }
        assert_eq!(dbias_sum.to_vec_f32(), want_bias.to_vec_f32());
    }
    // A gradient sum of the wrong shape is an error naming the op.
    let a = t(&[1.0, 2.0], &[1, 2]);
    let b = t(&[1.0, 2.0], &[2, 1]);
    let mut wrong = Tensor::zeros([1, 2], Device::Cpu).unwrap();
    let err = matmul_backward_accumulate(
        &t(&[1.0], &[1, 1]),
        &a,
        &b,
        MatmulSpec::NN,
        &mut wrong,
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("matmul_backward_accumulate"), "{err}");
}
