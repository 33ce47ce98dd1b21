//! The CUDA path of matmul: cuBLAS (`cuda::matmul::gemm`, row-major, fp32 accumulation) for the
//! products, the bias added in place by a row-broadcast kernel, its gradient by the
//! deterministic column sums. The geometry is the CPU plan's: when `b` is a shared weight and `a`
//! is not transposed the batch folds into one large product; otherwise strided batches (a shared
//! `b` has stride 0). The one case cuBLAS cannot batch, a shared `b`'s gradient under a
//! transposed `a`, is a loop of products accumulating into db (beta = 1).

use crate::cuda::elementwise::add_bias_rows_in_place;
use crate::cuda::matmul::{GemmShape, gemm};
use crate::cuda::storage::{DeviceElem, by_cuda_dtype, output};
use crate::cuda::{CudaDevice, CudaSlice, reduce};
use crate::tensor::check_same_dtype;
use crate::{Result, Tensor};

use super::{MatmulGrads, MatmulSpec, Plan};

/// A strided-batched product over the plan's batch: `stride_*` 0 for a shared operand.
#[allow(clippy::too_many_arguments)]
fn batched(
    m: usize,
    n: usize,
    k: usize,
    trans_a: bool,
    trans_b: bool,
    batch: usize,
    strides: [usize; 3],
) -> GemmShape {
    GemmShape {
        batch,
        stride_a: strides[0],
        stride_b: strides[1],
        stride_c: strides[2],
        ..GemmShape::new(m, n, k, trans_a, trans_b)
    }
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
    let (batch, m, n, k) = (plan.batch, plan.m, plan.n, plan.k);
    let mut out = product_buffer::<T>(&dev, plan, batch * m * n)?;
    let shape = if plan.folds() {
        GemmShape::new(batch * m, n, k, false, spec.transpose_b)
    } else {
        let b_stride = if plan.b_shared { 0 } else { k * n };
        let strides = [m * k, b_stride, m * n];
        batched(m, n, k, spec.transpose_a, spec.transpose_b, batch, strides)
    };
    if k > 0 {
        gemm(&dev, shape, a_data, b_data, &mut out)?;
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
    let (ta, tb) = (spec.transpose_a, spec.transpose_b);
    let mut da = product_buffer::<T>(&dev, plan, a_data.len())?;
    let mut db = product_buffer::<T>(&dev, plan, b_data.len())?;
    if plan.k > 0 {
        grad_a(&dev, plan, ta, tb, d, b_data, &mut da)?;
        grad_b(&dev, plan, ta, tb, d, a_data, &mut db)?;
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

/// da in a's layout: (M, K) = dout op(b)^T, or stored (K, M) = op(b) dout^T when `a` is
/// transposed.
fn grad_a<T: DeviceElem>(
    dev: &CudaDevice,
    plan: &Plan,
    ta: bool,
    tb: bool,
    dout: &CudaSlice<T>,
    b: &CudaSlice<T>,
    da: &mut CudaSlice<T>,
) -> Result<()> {
    let (batch, m, n, k) = (plan.batch, plan.m, plan.n, plan.k);
    let b_stride = if plan.b_shared { 0 } else { k * n };
    if plan.folds() {
        return gemm(
            dev,
            GemmShape::new(batch * m, k, n, false, !tb),
            dout,
            b,
            da,
        );
    }
    if ta {
        let shape = batched(k, m, n, tb, true, batch, [b_stride, m * n, k * m]);
        gemm(dev, shape, b, dout, da)
    } else {
        let shape = batched(m, k, n, false, !tb, batch, [m * n, b_stride, m * k]);
        gemm(dev, shape, dout, b, da)
    }
}

/// db in b's layout: (K, N) = op(a)^T dout, or stored (N, K) = dout^T op(a) when `b` is
/// transposed; summed over the batch when `b` is shared.
fn grad_b<T: DeviceElem>(
    dev: &CudaDevice,
    plan: &Plan,
    ta: bool,
    tb: bool,
    dout: &CudaSlice<T>,
    a: &CudaSlice<T>,
    db: &mut CudaSlice<T>,
) -> Result<()> {
    let (batch, m, n, k) = (plan.batch, plan.m, plan.n, plan.k);
    // One product: (K, N) = op(a)^T dout with trans flags for a's storage, or its transpose.
    let one = |rows_m: usize| {
        if tb {
            GemmShape::new(n, k, rows_m, true, ta)
        } else {
            GemmShape::new(k, n, rows_m, !ta, false)
        }
    };
    let product = |dev: &CudaDevice, shape: GemmShape, a, d, db: &mut CudaSlice<T>| {
        if tb {
            gemm(dev, shape, d, a, db)
        } else {
            gemm(dev, shape, a, d, db)
        }
    };
    if plan.folds() {
        return product(dev, one(batch * m), a, dout, db);
    }
    if !plan.b_shared {
        let shape = GemmShape {
            batch,
            stride_a: if tb { m * n } else { m * k },
            stride_b: if tb { m * k } else { m * n },
            stride_c: k * n,
            ..one(m)
        };
        return product(dev, shape, a, dout, db);
    }
    // A shared b under a transposed a: sum the per-batch products into db, one at a time.
    for p in 0..batch {
        let a_p = a.slice(p * m * k..(p + 1) * m * k);
        let d_p = dout.slice(p * m * n..(p + 1) * m * n);
        let shape = GemmShape {
            beta: if p == 0 { 0.0 } else { 1.0 },
            ..one(m)
        };
        if tb {
            gemm(dev, shape, &d_p, &a_p, db)?;
        } else {
            gemm(dev, shape, &a_p, &d_p, db)?;
        }
    }
    Ok(())
}
