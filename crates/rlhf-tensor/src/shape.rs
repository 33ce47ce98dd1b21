//! Shapes: row-major dimension lists, serialisable.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Result, TensorError};

/// The dimensions of a tensor, outermost first. Storage is always contiguous row-major.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The shape of a scalar: no dimensions, one element.
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// The dimensions, outermost first.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// The number of elements (1 for a scalar).
    pub fn numel(&self) -> usize {
        self.0.iter().product()
    }

    /// The innermost dimension (1 for a scalar).
    pub fn last_dim(&self) -> usize {
        self.0.last().copied().unwrap_or(1)
    }

    /// The product of all dimensions but the last: the number of rows of the
    /// (rows, last_dim) matrix view that row-wise ops use.
    pub fn leading_rows(&self) -> usize {
        match self.0.split_last() {
            Some((_, leading)) => leading.iter().product(),
            None => 1,
        }
    }

    /// Checks that this shape has exactly `rank` dimensions.
    pub fn expect_rank(&self, op: &'static str, rank: usize) -> Result<()> {
        if self.rank() == rank {
            Ok(())
        } else {
            Err(TensorError::InvalidShape {
                op,
                shape: self.clone(),
                expected: format!("{rank} dimensions"),
            })
        }
    }

    /// Checks that two shapes are equal.
    pub fn expect_same(&self, op: &'static str, other: &Shape) -> Result<()> {
        if self == other {
            Ok(())
        } else {
            Err(TensorError::ShapeMismatch {
                op,
                detail: "shapes must be equal".into(),
                left: self.clone(),
                right: other.clone(),
            })
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl From<Vec<usize>> for Shape {
    fn from(dims: Vec<usize>) -> Self {
        Shape(dims)
    }
}

impl From<&[usize]> for Shape {
    fn from(dims: &[usize]) -> Self {
        Shape(dims.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(dims: [usize; N]) -> Self {
        Shape(dims.to_vec())
    }
}
