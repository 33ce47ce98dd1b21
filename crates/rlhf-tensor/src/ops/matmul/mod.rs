//! Matrix multiply: 2-D and batched, either operand transposed, optional bias; backward to both
//! operands and the bias.
//!
//! `a` is (..., M, K), or (..., K, M) with `transpose_a`; `b` is (K, N), or (N, K) with
//! `transpose_b`, either shared by every batch element (2-D, a weight) or batched with the same
//! leading dimensions as `a`. The output is (..., M, N); a bias is (N). When `b` is a shared weight
//! and `a` is not transposed, the batch folds into M and the product is one large GEMM.

pub mod cpu;
mod cuda;
pub mod skinny;

use cpu::{BatchOperand, MatLayout, batched_gemm_into, gemm_into};

use super::elementwise::cpu::sum_rows;
use crate::tensor::check_same_device;
use crate::{Float, Result, Shape, Tensor, TensorError};

/// Which operands are stored transposed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MatmulSpec {
    /// `a` is stored as (..., K, M).
    pub transpose_a: bool,
    /// `b` is stored as (N, K) (e.g. a PyTorch `nn.Linear` weight or a tied embedding).
    pub transpose_b: bool,
}

impl MatmulSpec {
    /// Neither operand transposed.
    pub const NN: MatmulSpec = MatmulSpec {
        transpose_a: false,
        transpose_b: false,
    };
    /// `b` transposed: `a @ b^T`.
    pub const NT: MatmulSpec = MatmulSpec {
        transpose_a: false,
        transpose_b: true,
    };
    /// `a` transposed: `a^T @ b`.
    pub const TN: MatmulSpec = MatmulSpec {
        transpose_a: true,
        transpose_b: false,
    };
}

/// Gradients of a matmul.
#[derive(Debug, Clone, PartialEq)]
pub struct MatmulGrads {
    /// Gradient with respect to `a`, in `a`'s shape and storage order.
    pub da: Tensor,
    /// Gradient with respect to `b`, in `b`'s shape (summed over the batch when `b` is shared).
    pub db: Tensor,
    /// Gradient with respect to the bias, when there was one.
    pub dbias: Option<Tensor>,
}

/// The resolved geometry of one matmul.
struct Plan {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    /// op(a) for one batch element: (M, K).
    a_view: MatLayout,
    /// op(b) for one batch element: (K, N).
    b_view: MatLayout,
    b_shared: bool,
    out_shape: Shape,
}

impl Plan {
    fn new(op: &'static str, a: &Tensor, b: &Tensor, spec: MatmulSpec) -> Result<Plan> {
        check_same_device(op, a, b)?;
        let (a_dims, b_dims) = (a.dims(), b.dims());
        if a_dims.len() < 2 {
            return Err(TensorError::InvalidShape {
                op,
                shape: a.shape().clone(),
                expected: "at least 2 dimensions".into(),
            });
        }
        let batch_dims = &a_dims[..a_dims.len() - 2];
        let b_shared = b_dims.len() == 2;
        if !b_shared && (b_dims.len() != a_dims.len() || &b_dims[..b_dims.len() - 2] != batch_dims)
        {
            return Err(TensorError::ShapeMismatch {
                op,
                detail: "b must be 2-D or have a's batch dimensions".into(),
                left: a.shape().clone(),
                right: b.shape().clone(),
            });
        }
        let (a0, a1) = (a_dims[a_dims.len() - 2], a_dims[a_dims.len() - 1]);
        let (b0, b1) = (b_dims[b_dims.len() - 2], b_dims[b_dims.len() - 1]);
        let (m, k) = if spec.transpose_a { (a1, a0) } else { (a0, a1) };
        let (k_b, n) = if spec.transpose_b { (b1, b0) } else { (b0, b1) };
        if k != k_b {
            return Err(TensorError::ShapeMismatch {
                op,
                detail: format!("inner dimensions differ ({k} vs {k_b}) under {spec:?}"),
                left: a.shape().clone(),
                right: b.shape().clone(),
            });
        }
        let stored = |rows, cols, transposed: bool| {
            let layout = MatLayout::row_major(rows, cols);
            if transposed { layout.t() } else { layout }
        };
        let mut out_dims = batch_dims.to_vec();
        out_dims.extend([m, n]);
        Ok(Plan {
            batch: batch_dims.iter().product(),
            m,
            n,
            k,
            a_view: stored(a0, a1, spec.transpose_a),
            b_view: stored(b0, b1, spec.transpose_b),
            b_shared,
            out_shape: Shape::new(out_dims),
        })
    }

    /// Whether the batch folds into M: `a` row-major and `b` shared.
    fn folds(&self) -> bool {
        self.b_shared && self.a_view.col_stride == 1
    }

    fn a_operand<'a, T: Float>(&self, data: &'a [T]) -> BatchOperand<'a, T> {
        BatchOperand {
            data,
            layout: self.a_view,
            batch_stride: self.m * self.k,
        }
    }

    fn b_operand<'a, T: Float>(&self, data: &'a [T]) -> BatchOperand<'a, T> {
        BatchOperand {
            data,
            layout: self.b_view,
            batch_stride: if self.b_shared { 0 } else { self.k * self.n },
        }
    }

    fn out_operand<'a, T: Float>(&self, data: &'a [T]) -> BatchOperand<'a, T> {
        BatchOperand {
            data,
            layout: MatLayout::row_major(self.m, self.n),
            batch_stride: self.m * self.n,
        }
    }
}

/// `op(a) @ op(b) (+ bias)`: see the module docs for shapes.
pub fn matmul(a: &Tensor, b: &Tensor, bias: Option<&Tensor>, spec: MatmulSpec) -> Result<Tensor> {
    let plan = Plan::new("matmul", a, b, spec)?;
    let bias_data = match bias {
        Some(bias) => {
            check_same_device("matmul", a, bias)?;
            if bias.dims() != [plan.n] {
                return Err(TensorError::ShapeMismatch {
                    op: "matmul",
                    detail: "the bias must be (N), N the output's last dimension".into(),
                    left: plan.out_shape.clone(),
                    right: bias.shape().clone(),
                });
            }
            Some(bias)
        }
        None => None,
    };
    if a.is_cuda() {
        return cuda::forward(&plan, spec, a, b, bias_data);
    }
    let bias_data = bias_data.map(Tensor::as_f32_slice).transpose()?;
    let mut out = Tensor::zeros(plan.out_shape.clone(), a.device())?;
    forward_slices(
        &plan,
        a.as_f32_slice()?,
        b.as_f32_slice()?,
        bias_data,
        out.as_f32_slice_mut()?,
    );
    Ok(out)
}

/// Gradients of [`matmul`] given the output gradient `dout` (..., M, N).
pub fn matmul_backward(
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
    has_bias: bool,
    spec: MatmulSpec,
) -> Result<MatmulGrads> {
    let plan = backward_plan(
        ("matmul_backward", "matmul_backward (dout vs output)"),
        dout,
        a,
        b,
        spec,
    )?;
    if a.is_cuda() {
        return cuda::backward(&plan, spec, dout, a, b, has_bias);
    }
    let dout_data = dout.as_f32_slice()?;
    let mut da = a.zeros_like()?;
    let mut db = b.zeros_like()?;
    backward_slices(
        &plan,
        dout_data,
        a.as_f32_slice()?,
        b.as_f32_slice()?,
        da.as_f32_slice_mut()?,
        db.as_f32_slice_mut()?,
        false,
    );
    let dbias = if has_bias {
        Some(Tensor::from_vec(
            sum_rows(dout_data, plan.n),
            [plan.n],
            dout.device(),
        )?)
    } else {
        None
    };
    Ok(MatmulGrads { da, db, dbias })
}

/// [`matmul_backward`] for a weight whose gradient is being summed: adds the gradient of `b`
/// into `db_sum` (same shape and device as `b`) and, with `dbias_sum` (N), the bias gradient
/// into it, and returns the gradient of `a`. On the CPU the product accumulates straight into
/// `db_sum` (GEMM with beta = 1): no weight-sized temporary is allocated, zeroed and added.
pub fn matmul_backward_accumulate(
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
    spec: MatmulSpec,
    db_sum: &mut Tensor,
    dbias_sum: Option<&mut Tensor>,
) -> Result<Tensor> {
    let plan = backward_plan(
        (
            "matmul_backward_accumulate",
            "matmul_backward_accumulate (dout vs output)",
        ),
        dout,
        a,
        b,
        spec,
    )?;
    db_sum
        .shape()
        .expect_same("matmul_backward_accumulate (gradient sum vs b)", b.shape())?;
    check_same_device("matmul_backward_accumulate", db_sum, b)?;
    if let Some(dbias) = &dbias_sum {
        dbias.shape().expect_same(
            "matmul_backward_accumulate (bias gradient sum)",
            &Shape::from([plan.n]),
        )?;
        check_same_device("matmul_backward_accumulate", dbias, a)?;
    }
    if a.is_cuda() {
        let g = cuda::backward(&plan, spec, dout, a, b, dbias_sum.is_some())?;
        db_sum.add_assign(&g.db)?;
        if let (Some(sum), Some(dbias)) = (dbias_sum, &g.dbias) {
            sum.add_assign(dbias)?;
        }
        return Ok(g.da);
    }
    let dout_data = dout.as_f32_slice()?;
    let mut da = a.zeros_like()?;
    backward_slices(
        &plan,
        dout_data,
        a.as_f32_slice()?,
        b.as_f32_slice()?,
        da.as_f32_slice_mut()?,
        db_sum.as_f32_slice_mut()?,
        true,
    );
    if let Some(sum) = dbias_sum {
        let dbias = sum_rows(dout_data, plan.n);
        crate::ops::elementwise::cpu::add_assign(sum.as_f32_slice_mut()?, &dbias);
    }
    Ok(da)
}

/// The plan of a backward, with `dout` checked against the output's shape and `a`'s device;
/// `op` names the op, and the op in the shape check's error.
fn backward_plan(
    (op, dout_check): (&'static str, &'static str),
    dout: &Tensor,
    a: &Tensor,
    b: &Tensor,
    spec: MatmulSpec,
) -> Result<Plan> {
    let plan = Plan::new(op, a, b, spec)?;
    dout.shape().expect_same(dout_check, &plan.out_shape)?;
    check_same_device(op, dout, a)?;
    Ok(plan)
}

/// The forward product on slices (generic, so gradient checks can run it in f64).
fn forward_slices<T: Float>(plan: &Plan, a: &[T], b: &[T], bias: Option<&[T]>, out: &mut [T]) {
    if let Some(bias) = bias {
        // Start from the bias rows and accumulate the product onto them: no extra pass.
        out.chunks_exact_mut(plan.n)
            .for_each(|row| row.copy_from_slice(bias));
    }
    let accumulate = bias.is_some();
    if plan.folds() {
        let rows = plan.batch * plan.m;
        gemm_into(
            out,
            MatLayout::row_major(rows, plan.n),
            accumulate,
            a,
            MatLayout::row_major(rows, plan.k),
            b,
            plan.b_view,
        );
    } else {
        batched_gemm_into(
            out,
            MatLayout::row_major(plan.m, plan.n),
            plan.m * plan.n,
            accumulate,
            plan.a_operand(a),
            plan.b_operand(b),
            plan.batch,
        );
    }
}

/// The backward products on slices: `da` is overwritten; `db` is overwritten, or added to with
/// `accumulate_db`.
fn backward_slices<T: Float>(
    plan: &Plan,
    dout: &[T],
    a: &[T],
    b: &[T],
    da: &mut [T],
    db: &mut [T],
    accumulate_db: bool,
) {
    // d op(a) = dout @ op(b)^T, written through a's own layout (so a transposed `a` gets a
    // transposed gradient).
    if plan.folds() {
        let rows = plan.batch * plan.m;
        gemm_into(
            da,
            MatLayout::row_major(rows, plan.k),
            false,
            dout,
            MatLayout::row_major(rows, plan.n),
            b,
            plan.b_view.t(),
        );
    } else {
        let b_t = BatchOperand {
            layout: plan.b_view.t(),
            ..plan.b_operand(b)
        };
        batched_gemm_into(
            da,
            plan.a_view,
            plan.m * plan.k,
            false,
            plan.out_operand(dout),
            b_t,
            plan.batch,
        );
    }

    // d op(b) = op(a)^T @ dout, written through b's layout; summed over the batch when shared.
    if plan.folds() {
        let rows = plan.batch * plan.m;
        gemm_into(
            db,
            plan.b_view,
            accumulate_db,
            a,
            MatLayout::row_major(rows, plan.k).t(),
            dout,
            MatLayout::row_major(rows, plan.n),
        );
    } else {
        let a_t = BatchOperand {
            layout: plan.a_view.t(),
            ..plan.a_operand(a)
        };
        let db_batch_stride = if plan.b_shared { 0 } else { plan.k * plan.n };
        batched_gemm_into(
            db,
            plan.b_view,
            db_batch_stride,
            accumulate_db,
            a_t,
            plan.out_operand(dout),
            plan.batch,
        );
    }
}

#[cfg(test)]
mod tests;
