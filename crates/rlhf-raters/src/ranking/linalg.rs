//! Dense Cholesky factorisation and solves for the (n-1) x (n-1) Bradley–Terry information
//! matrix (n = items, at most a few hundred), row-major, with 4-lane dot products so the
//! compiler vectorises the inner loops.

/// Lower-triangular Cholesky factor `L` of a symmetric positive-definite matrix, row-major (n, n).
#[derive(Debug, Clone)]
pub struct Cholesky {
    n: usize,
    l: Vec<f64>,  // (n, n) lower triangle used
    lt: Vec<f64>, // (n, n) its transpose, so the backward solve reads rows
}

#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let ca = a.chunks_exact(4);
    let cb = b.chunks_exact(4);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for t in 0..4 {
            acc[t] += x[t] * y[t];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

impl Cholesky {
    /// Factors `a` (n, n); `None` when `a` is not numerically positive definite.
    pub fn factor(mut a: Vec<f64>, n: usize) -> Option<Cholesky> {
        for j in 0..n {
            let row_j = &a[j * n..j * n + j];
            let d = a[j * n + j] - dot(row_j, row_j);
            if d.is_nan() || d <= 1e-300 {
                return None;
            }
            let d = d.sqrt();
            a[j * n + j] = d;
            for i in j + 1..n {
                let (top, bottom) = a.split_at_mut(i * n);
                let row_j = &top[j * n..j * n + j];
                let row_i = &mut bottom[..n];
                row_i[j] = (row_i[j] - dot(&row_i[..j], row_j)) / d;
            }
        }
        let mut lt = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                lt[j * n + i] = a[i * n + j];
            }
        }
        Some(Cholesky { n, l: a, lt })
    }

    /// Solves `A x = b` in place.
    pub fn solve(&self, b: &mut [f64]) {
        let n = self.n;
        for i in 0..n {
            let row = &self.l[i * n..i * n + i];
            b[i] = (b[i] - dot(row, &b[..i])) / self.l[i * n + i];
        }
        for i in (0..n).rev() {
            let row = &self.lt[i * n + i + 1..i * n + n];
            b[i] = (b[i] - dot(row, &b[i + 1..])) / self.lt[i * n + i];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solves_spd_system() {
        // A = [[4,2,0],[2,5,1],[0,1,3]], x = [1,-1,2] -> b = A x
        let a = vec![4.0, 2.0, 0.0, 2.0, 5.0, 1.0, 0.0, 1.0, 3.0];
        let c = Cholesky::factor(a, 3).unwrap();
        let mut b = vec![2.0, -1.0, 5.0];
        c.solve(&mut b);
        for (x, want) in b.iter().zip([1.0, -1.0, 2.0]) {
            assert!((x - want).abs() < 1e-12);
        }
        assert!(Cholesky::factor(vec![1.0, 2.0, 2.0, 1.0], 2).is_none());
    }
}
