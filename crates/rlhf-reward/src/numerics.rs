//! Numerically stable logistic functions, the building blocks of every loss here.

use rlhf_tensor::Float;

/// softplus(x) = ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|) so that it neither
/// overflows for large x nor loses precision for very negative x.
pub fn softplus<T: Float>(x: T) -> T {
    x.max(T::zero()) + (-x.abs()).exp().ln_1p()
}

/// sigmoid(x) = 1 / (1 + e^-x), evaluated on the side where the exponential cannot overflow.
pub fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::zero() {
        T::one() / (T::one() + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::one() + e)
    }
}

/// (softplus(x), sigmoid(x)) from one exponential e^-|x|: the pair every loss's forward and
/// backward need (d softplus / dx = sigmoid).
pub fn softplus_and_sigmoid<T: Float>(x: T) -> (T, T) {
    let e = (-x.abs()).exp();
    let softplus = x.max(T::zero()) + e.ln_1p();
    let inv = T::one() / (T::one() + e);
    let sigmoid = if x >= T::zero() { inv } else { e * inv };
    (softplus, sigmoid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_at_the_extremes_and_exact_in_the_middle() {
        // softplus(0) = ln 2; softplus(1000) = 1000 (+ e^-1000, below f64 resolution);
        // softplus(-1000) = e^-1000 underflows to 0, never NaN.
        assert_eq!(softplus(0.0f64), 2f64.ln());
        assert_eq!(softplus(1000.0f64), 1000.0);
        assert_eq!(softplus(-1000.0f64), 0.0);
        // softplus(-40) = ln(1 + e^-40) ≈ e^-40 = 4.248354255291589e-18 (not rounded to 0).
        assert!((softplus(-40.0f64) - 4.248354255291589e-18).abs() < 1e-30);
        // sigmoid(0) = 1/2; sigmoid(ln 3) = 3/4; sigmoid(-ln 3) = 1/4.
        assert_eq!(sigmoid(0.0f64), 0.5);
        assert!((sigmoid(3f64.ln()) - 0.75).abs() < 1e-15);
        assert!((sigmoid(-(3f64.ln())) - 0.25).abs() < 1e-15);
        assert_eq!((sigmoid(-1000.0f64), sigmoid(1000.0f64)), (0.0, 1.0));
        assert!(softplus(100.0f32).is_finite() && sigmoid(-100.0f32) >= 0.0);
        for x in [-800.0f64, -40.0, -3.0, -0.5, 0.0, 0.5, 3.0, 40.0, 800.0] {
            assert_eq!(softplus_and_sigmoid(x), (softplus(x), sigmoid(x)), "at {x}");
        }
    }
}
