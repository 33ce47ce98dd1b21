//! The CUDA path of matmul: cuBLAS (`cuda::matmul::gemm`, row-major, fp32 accumulation) for the
//! products, the bias added in place by a row-broadcast kernel, its gradient by the
//! deterministic column sums.
//!
//! The geometry is the CPU plan's, turned into a list of [`Call`]s (pure data, so a CPU test can
//! run the same list through a reference GEMM and check the flags and strides without a GPU):
//! when `b` is a shared weight and `a` is not transposed the batch folds into one large product;
//! otherwise strided batches (a shared `b` has stride 0). The one case cuBLAS cannot batch, a
//! shared `b`'s gradient under a transposed `a`, is one product per batch element accumulating
//! into db (beta = 1).

use crate::cuda::elementwise::add_bias_rows_in_place;
use crate::cuda::matmul::{GemmShape, gemm};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::cuda::{CudaDevice, CudaSlice, reduce};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

use super::{MatmulGrads, MatmulSpec, Plan};

/// The buffers a product reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Operand {
    A,
    B,
    Dout,
}

/// One GEMM: `out = alpha op(lhs) op(rhs) + beta out`, the operands read from `offset` on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Call {
    pub(super) shape: GemmShape,
    pub(super) lhs: (Operand, usize),
    pub(super) rhs: (Operand, usize),
}

impl Call {
    fn new(shape: GemmShape, lhs: Operand, rhs: Operand) -> Call {
        Call {
            shape,
            lhs: (lhs, 0),
            rhs: (rhs, 0),
        }
    }
}

/// A strided-batched product; `strides` [a, b, c], 0 for a shared operand.
fn batched(
    m: usize,
    n: usize,
    k: usize,
    trans: (bool, bool),
    batch: usize,
    strides: [usize; 3],
) -> GemmShape {
    GemmShape {
        batch,
        stride_a: strides[0],
        stride_b: strides[1],
        stride_c: strides[2],
        ..GemmShape::new(m, n, k, trans.0, trans.1)
    }
}

/// out (batch, M, N) = op(a) op(b).
pub(super) fn forward_calls(plan: &Plan, spec: MatmulSpec) -> Vec<Call> {
    let (batch, m, n, k) = (plan.batch, plan.m, plan.n, plan.k);
    let shape = if plan.folds() {
        GemmShape::new(batch * m, n, k, false, spec.transpose_b)
    } else {
        let b_stride = if plan.b_shared { 0 } else { k * n };
        let trans = (spec.transpose_a, spec.transpose_b);
        batched(m, n, k, trans, batch, [m * k, b_stride, m * n])
    };
    vec![Call::new(shape, Operand::A, Operand::B)]
}

/// da in a's layout: (M, K) = dout op(b)^T, or stored (K, M) = op(b) dout^T when `a` is
/// transposed.
pub(super) fn grad_a_calls(plan: &Plan, spec: MatmulSpec) -> Vec<Call> {
    let (batch, m, n, k) = (plan.batch, plan.m, plan.n, plan.k);
    let (ta, tb) = (spec.transpose_a, spec.transpose_b);
    let b_stride = if plan.b_shared { 0 } else { k * n };
    let call = if plan.folds() {
        Call::new(
            GemmShape::new(batch * m, k, n, false, !tb),
            Operand::Dout,
            Operand::B,
        )
    } else if ta {
        let shape = batched(k, m, n, (tb, true), batch, [b_stride, m * n, k * m]);
        Call::new(shape, Operand::B, Operand::Dout)
    } else {
        let shape = batched(m, k, n, (false, !tb), batch, [m * n, b_stride, m * k]);
        Call::new(shape, Operand::Dout, Operand::B)
    };
    vec![call]
}

/// db in b's layout: (K, N) = op(a)^T dout, or stored (N, K) = dout^T op(a) when `b` is
/// transposed; summed over the batch when `b` is shared.
pub(super) fn grad_b_calls(plan: &Plan, spec: MatmulSpec) -> Vec<Call> {
    let (batch, m, n, k) = (plan.batch, plan.m, plan.n, plan.k);
    let (ta, tb) = (spec.transpose_a, spec.transpose_b);
    // One product over `rows` rows of a and dout, and its operand order.
    let one = |rows: usize| {
        if tb {
            GemmShape::new(n, k, rows, true, ta)
        } else {
            GemmShape::new(k, n, rows, !ta, false)
        }
    };
    let (lhs, rhs) = if tb {
        (Operand::Dout, Operand::A)
    } else {
        (Operand::A, Operand::Dout)
    };
    if plan.folds() {
        return vec![Call::new(one(batch * m), lhs, rhs)];
    }
    if !plan.b_shared {
        let (lhs_stride, rhs_stride) = if tb { (m * n, m * k) } else { (m * k, m * n) };
        let shape = GemmShape {
            batch,
            stride_a: lhs_stride,
            stride_b: rhs_stride,
            stride_c: k * n,
            ..one(m)
        };
        return vec![Call::new(shape, lhs, rhs)];
    }
    // A shared b under a transposed a: one product per batch element, summed into db.
    let offset = |operand: Operand, p: usize| match operand {
        Operand::A => p * m * k,
        Operand::Dout => p * m * n,
        Operand::B => 0,
    };
    (0..batch)
        .map(|p| Call {
            shape: GemmShape {
                beta: if p == 0 { 0.0 } else { 1.0 },
                ..one(m)
            },
            lhs: (lhs, offset(lhs, p)),
            rhs: (rhs, offset(rhs, p)),
        })
        .collect()
}

/// Runs `calls` on the device into `out`.
fn run<T: DeviceElem>(
    dev: &CudaDevice,
    calls: &[Call],
    operands: [&CudaSlice<T>; 3],
    out: &mut CudaSlice<T>,
) -> Result<()> {
    let buffer = |operand: Operand| match operand {
        Operand::A => operands[0],
        Operand::B => operands[1],
        Operand::Dout => operands[2],
    };
    for call in calls {
        let lhs = buffer(call.lhs.0);
        let rhs = buffer(call.rhs.0);
        let lhs = lhs.slice(call.lhs.1..);
        let rhs = rhs.slice(call.rhs.1..);
        gemm(dev, call.shape, &lhs, &rhs, out)?;
    }
    Ok(())
}

/// A buffer the products write in full when K > 0 (poisonable, see `poison_op_outputs`); zeros
/// when K = 0, where the product of empty operands is 0.
fn product_buffer<T: DeviceElem>(
    dev: &CudaDevice,
    plan: &Plan,
    len: usize,
) -> Result<CudaSlice<T>> {
    if plan.k > 0 {
        output(dev, len)
    } else {
        dev.zeros(len)
    }
}

/// The forward product (+ bias).
pub(super) fn forward(
    plan: &Plan,
    spec: MatmulSpec,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let mut tensors = vec![a, b];
    tensors.extend(bias);
    let dtype = check_same_dtype("matmul", &tensors)?;
    by_cuda_dtype!("matmul", dtype, forward_t(plan, spec, a, b, bias))
}

fn forward_t<T: DeviceElem>(
    plan: &Plan,
    spec: MatmulSpec,
    a: &Tensor,
    b: &Tensor,
    bias: Option<&Tensor>,
) -> Result<Tensor> {
    let op = "matmul";
    let (dev, a_data) = a.cuda_parts::<T>(op)?;
    let b_data = b.cuda_slice::<T>(op)?;
    let mut out = product_buffer::<T>(&dev, plan, plan.batch * plan.m * plan.n)?;
    if plan.k > 0 {
        let calls = forward_calls(plan, spec);
        run(&dev, &calls, [a_data, b_data, a_data], &mut out)?;
    }
    if let Some(bias) = bias {
        add_bias_rows_in_place(&dev, &mut out, bias.cuda_slice::<T>(op)?)?;
    }
    Tensor::from_cuda(dev, out, plan.out_shape.clone())
}

/// The gradients of `a`, `b` and the bias.
pub(super) fn backward(
    plan: &Plan,
    spec: MatmulSpec,
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
    has_bias: bool,
) -> Result<MatmulGrads> {
    let dtype = check_same_dtype("matmul_backward", &[dout, a, b])?;
    by_cuda_dtype!(
        "matmul_backward",
        dtype,
        backward_t(plan, spec, dout, a, b, has_bias)
    )
}

fn backward_t<T: DeviceElem>(
    plan: &Plan,
    spec: MatmulSpec,
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
    has_bias: bool,
) -> Result<MatmulGrads> {
    let op = "matmul_backward";
    let (dev, a_data) = a.cuda_parts::<T>(op)?;
    let b_data = b.cuda_slice::<T>(op)?;
    let d = dout.cuda_slice::<T>(op)?;
    let mut da = product_buffer::<T>(&dev, plan, a_data.len())?;
    let mut db = product_buffer::<T>(&dev, plan, b_data.len())?;
    if plan.k > 0 {
        let operands = [a_data, b_data, d];
        run(&dev, &grad_a_calls(plan, spec), operands, &mut da)?;
        run(&dev, &grad_b_calls(plan, spec), operands, &mut db)?;
    }
    let dbias = if has_bias {
        let mut sums = output::<f32>(&dev, plan.n)?;
        reduce::sum_rows(&dev, d, plan.n, &mut sums, false)?;
        let sums = T::from_f32_buffer(&dev, sums)?;
        Some(Tensor::from_cuda(dev.clone(), sums, [plan.n])?)
    } else {
        None
    };
    Ok(MatmulGrads {
        da: Tensor::from_cuda(dev.clone(), da, a.shape().clone())?,
        db: Tensor::from_cuda(dev, db, b.shape().clone())?,
        dbias,
    })
}

#[cfg(test)]
mod tests {
    //! The call lists, run through a reference row-major GEMM with cuBLAS's documented
    //! semantics (`GemmShape`), equal the CPU matmul and its backward: checks every flag, leading
    //! dimension and stride of the CUDA path without a GPU.

    use super::*;
    use crate::testing::{assert_close, random_values};
    use crate::{Device, Shape};

    /// `c[p] = alpha op(a[p]) op(b[p]) + beta c[p]`, row-major, as `cuda::matmul::gemm`.
    fn reference_gemm(s: GemmShape, a: &[f64], b: &[f64], c: &mut [f64]) {
        for p in 0..s.batch {
            let (a, b) = (&a[p * s.stride_a..], &b[p * s.stride_b..]);
            let c = &mut c[p * s.stride_c..];
            for i in 0..s.m {
                for j in 0..s.n {
                    let mut acc = 0.0;
                    for l in 0..s.k {
                        // A stored (M, K), or (K, M) when transposed; B (K, N) or (N, K).
                        let av = if s.trans_a {
                            a[l * s.m + i]
                        } else {
                            a[i * s.k + l]
                        };
                        let bv = if s.trans_b {
                            b[j * s.k + l]
                        } else {
                            b[l * s.n + j]
                        };
                        acc += av * bv;
                    }
                    let old = if s.beta == 0.0 { 0.0 } else { c[i * s.n + j] };
                    c[i * s.n + j] = s.alpha as f64 * acc + s.beta as f64 * old;
                }
            }
        }
    }

    fn run_reference(calls: &[Call], operands: [&[f64]; 3], out: &mut [f64]) {
        let pick = |o: Operand| match o {
            Operand::A => operands[0],
            Operand::B => operands[1],
            Operand::Dout => operands[2],
        };
        for call in calls {
            let lhs = &pick(call.lhs.0)[call.lhs.1..];
            let rhs = &pick(call.rhs.0)[call.rhs.1..];
            reference_gemm(call.shape, lhs, rhs, out);
        }
    }

    #[test]
    fn call_lists_equal_the_cpu_matmul_for_every_layout() {
        let (batch, m, k, n) = (3usize, 5usize, 4usize, 6usize);
        let specs = [
            MatmulSpec::NN,
            MatmulSpec::NT,
            MatmulSpec::TN,
            MatmulSpec {
                transpose_a: true,
                transpose_b: true,
            },
        ];
        for spec in specs {
            for b_shared in [true, false] {
                let a_dims = if spec.transpose_a {
                    [batch, k, m]
                } else {
                    [batch, m, k]
                };
                let b_mat = if spec.transpose_b { [n, k] } else { [k, n] };
                let b_dims: Vec<usize> = if b_shared {
                    b_mat.to_vec()
                } else {
                    [batch].into_iter().chain(b_mat).collect()
                };
                let a64 = random_values(1, a_dims.iter().product());
                let b64 = random_values(2, b_dims.iter().product());
                let d64 = random_values(3, batch * m * n);
                let to_tensor = |v: &[f64], dims: &[usize]| {
                    let data = v.iter().map(|&x| x as f32).collect();
                    Tensor::from_vec(data, Shape::new(dims), Device::Cpu).unwrap()
                };
                let (a, b) = (to_tensor(&a64, &a_dims), to_tensor(&b64, &b_dims));
                let dout = to_tensor(&d64, &[batch, m, n]);
                let plan = Plan::new("test", &a, &b, spec).unwrap();
                let what = format!("{spec:?} shared={b_shared}");
                let operands = [a64.as_slice(), b64.as_slice(), d64.as_slice()];

                let mut out = vec![f64::NAN; batch * m * n];
                run_reference(&forward_calls(&plan, spec), operands, &mut out);
                let expected = super::super::matmul(&a, &b, None, spec).unwrap();
                let e64 = crate::testing::to_f64(&expected.to_vec_f32());
                assert_close(&format!("forward {what}"), &out, &e64, 1e-5, 1e-6);

                let grads = super::super::matmul_backward(&dout, &a, &b, false, spec).unwrap();
                let mut da = vec![f64::NAN; a64.len()];
                run_reference(&grad_a_calls(&plan, spec), operands, &mut da);
                let e = crate::testing::to_f64(&grads.da.to_vec_f32());
                assert_close(&format!("da {what}"), &da, &e, 1e-5, 1e-6);
                let mut db = vec![f64::NAN; b64.len()];
                run_reference(&grad_b_calls(&plan, spec), operands, &mut db);
                let e = crate::testing::to_f64(&grads.db.to_vec_f32());
                assert_close(&format!("db {what}"), &db, &e, 1e-5, 1e-6);
            }
        }
    }
}
