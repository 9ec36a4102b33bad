//! Directional sharpness of an update direction (Pan & Li, "Toward Understanding Why Adam
//! Converges Faster Than SGD for Transformers", arXiv 2306.00204, eq. 2):
//!
//! S(u) = uᵀ H u / ‖u‖²,
//!
//! the curvature along u; a step of size η along −u changes the loss by −η gᵀu + ½η² S(u)‖u‖² to
//! second order, so a smaller S allows larger steps.
//!
//! ```
//! use gradlab_curvature::{FiniteDiffHvp, sharpness::directional_sharpness};
//! use burn::prelude::*;
//! // f = ½(x₀² + 100 x₁²): S(e₀) = 1, S(e₁) = 100.
//! let hvp = FiniteDiffHvp::new(vec![0.3, 0.2], |t: Tensor<1>| {
//!     let w = Tensor::<1>::from_data(TensorData::new(vec![0.5f64, 50.0], [2]), (&t.device(), burn::tensor::DType::F64));
//!     (t.square() * w).sum()
//! });
//! assert!((directional_sharpness(&hvp, &[0.0, 2.0]).unwrap() - 100.0).abs() < 1e-5);
//! ```

use crate::hvp::{CurvatureError, HessianVectorProduct};

/// S(u) = uᵀHu/‖u‖² with H v from `hvp`; an error for u = 0.
pub fn directional_sharpness(
    hvp: &impl HessianVectorProduct,
    u: &[f64],
) -> Result<f64, CurvatureError> {
    let uu: f64 = u.iter().map(|a| a * a).sum();
    if uu == 0.0 || !uu.is_finite() {
        return Err(CurvatureError::Invalid(
            "directional sharpness needs a finite, non-zero direction".into(),
        ));
    }
    let hu = hvp.hvp(u)?;
    Ok(u.iter().zip(&hu).map(|(a, b)| a * b).sum::<f64>() / uu)
}

/// S(u) for a diagonal Hessian with entries `diag`.
pub fn diagonal_sharpness(diag: &[f64], u: &[f64]) -> f64 {
    let uu: f64 = u.iter().map(|a| a * a).sum();
    diag.iter().zip(u).map(|(l, a)| l * a * a).sum::<f64>() / uu
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FiniteDiffHvp;
    use burn::prelude::*;

    #[test]
    fn matches_the_diagonal_closed_form_and_rejects_zero() {
        let diag = [1.0, 10.0, 0.1];
        let hvp = FiniteDiffHvp::new(vec![0.5, -0.5, 1.0], move |t: Tensor<1>| {
            let w = Tensor::<1>::from_data(
                TensorData::new(diag.iter().map(|d| d / 2.0).collect::<Vec<f64>>(), [3]),
                (&t.device(), burn::tensor::DType::F64),
            );
            (t.square() * w).sum()
        });
        let u = [0.3, -0.4, 2.0];
        let s = directional_sharpness(&hvp, &u).unwrap();
        assert!((s - diagonal_sharpness(&diag, &u)).abs() < 1e-7, "{s}");
        assert!(directional_sharpness(&hvp, &[0.0, 0.0, 0.0]).is_err());
    }
}
