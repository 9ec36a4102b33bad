//! Hessian-vector products by central differences of gradients, in f64:
//!
//! H v ≈ [∇f(θ + h v) − ∇f(θ − h v)] / (2h),  h = ε · max(1, ‖θ‖) / ‖v‖,
//!
//! with ∇f from burn's reverse-mode autodiff. The error is O(h²·‖∇³f‖) plus rounding
//! O(u·‖∇f‖/h); the default ε = 1e-5 balances both in f64 (≈1e-9 relative on smooth losses).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_curvature::{FiniteDiffHvp, HessianVectorProduct};
//! // f(θ) = Σ θ_i⁴ / 4: H = diag(3θ²).
//! let hvp = FiniteDiffHvp::new(vec![1.0, 2.0], |t: Tensor<1>| t.powf_scalar(4.0).sum().div_scalar(4.0));
//! let hv = hvp.hvp(&[1.0, 1.0]).unwrap();
//! assert!((hv[0] - 3.0).abs() < 1e-6 && (hv[1] - 12.0).abs() < 1e-6);
//! ```

use burn::prelude::*;
use burn::tensor::DType;
use gradlab_core::problem::Gradient;

/// Errors of curvature computations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CurvatureError {
    /// A vector has the wrong length.
    #[error("vector of length {got} for a {expected}-dimensional problem")]
    Shape {
        /// The problem dimension.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// The loss or its gradient is not finite.
    #[error("non-finite {what}")]
    NonFinite {
        /// What was not finite.
        what: &'static str,
    },
    /// An argument outside its range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A tensor could not be read back, a vector does not fit a model, or a gradient is missing.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
}

/// A symmetric linear operator v ↦ H v at a fixed point — the Hessian of a problem there, its
/// Gauss–Newton part, an explicit matrix, an empirical Fisher — as the spectral tools of
/// [`crate::spectrum`] take it. The point is part of the operator (a problem's
/// [`gradlab_core::problem::HessianVector`] takes it on every call; [`OracleHvp`] fixes it for
/// any problem with a gradient).
pub trait HessianVectorProduct {
    /// The number of parameters.
    fn dim(&self) -> usize;
    /// H v.
    fn hvp(&self, v: &[f64]) -> Result<Vec<f64>, CurvatureError>;
    /// The dense Hessian (n HVPs), for small problems and tests; row-major.
    fn dense(&self) -> Result<Vec<f64>, CurvatureError> {
        let n = self.dim();
        let mut h = vec![0.0; n * n];
        for j in 0..n {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            for (i, v) in self.hvp(&e)?.into_iter().enumerate() {
                h[i * n + j] = v;
            }
        }
        Ok(h)
    }
}

/// Central-difference HVP of a scalar loss `loss(θ)` of a rank-1 parameter tensor.
///
/// The loss closure receives θ as an f64 tensor on an autodiff device and must return a tensor
/// holding one value (its sum is taken).
pub struct FiniteDiffHvp<F> {
    theta: Vec<f64>,
    loss: F,
    eps: f64,
    device: Device,
}

impl<F: Fn(Tensor<1>) -> Tensor<1>> FiniteDiffHvp<F> {
    /// HVPs of `loss` at `theta` with the default ε = 1e-5.
    pub fn new(theta: Vec<f64>, loss: F) -> Self {
        Self {
            theta,
            loss,
            eps: 1e-5,
            device: Device::flex().autodiff(),
        }
    }

    /// Use relative step ε > 0.
    pub fn with_eps(mut self, eps: f64) -> Result<Self, CurvatureError> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(CurvatureError::Invalid(format!(
                "finite-difference step must be > 0, got {eps}"
            )));
        }
        self.eps = eps;
        Ok(self)
    }

    /// The point θ.
    pub fn theta(&self) -> &[f64] {
        &self.theta
    }

    /// The loss value at `x`.
    pub fn value(&self, x: &[f64]) -> f64 {
        let t = Tensor::<1>::from_data(
            TensorData::new(x.to_vec(), [x.len()]),
            (&self.device.clone().inner(), DType::F64),
        );
        (self.loss)(t).sum().into_scalar::<f64>()
    }

    /// ∇f at `x`, by reverse-mode autodiff in f64.
    pub fn gradient(&self, x: &[f64]) -> Result<Vec<f64>, CurvatureError> {
        if x.len() != self.theta.len() {
            return Err(CurvatureError::Shape {
                expected: self.theta.len(),
                got: x.len(),
            });
        }
        let t = Tensor::<1>::from_data(
            TensorData::new(x.to_vec(), [x.len()]),
            (&self.device, DType::F64),
        )
        .require_grad();
        let loss = (self.loss)(t.clone()).sum();
        let grads = loss.backward();
        let g = t.grad(&grads).ok_or(CurvatureError::NonFinite {
            what: "gradient (loss does not depend on θ)",
        })?;
        let g = gradlab_core::bridge::to_host(g)?;
        if g.iter().all(|v| v.is_finite()) {
            Ok(g)
        } else {
            Err(CurvatureError::NonFinite { what: "gradient" })
        }
    }
}

impl<F: Fn(Tensor<1>) -> Tensor<1>> HessianVectorProduct for FiniteDiffHvp<F> {
    fn dim(&self) -> usize {
        self.theta.len()
    }

    fn hvp(&self, v: &[f64]) -> Result<Vec<f64>, CurvatureError> {
        central_difference(&self.theta, v, self.eps, |x| self.gradient(x))
    }
}

/// H v ≈ [g(θ + hv) − g(θ − hv)] / (2h) with h = ε·max(1, ‖θ‖)/‖v‖, for any gradient `g`.
pub fn central_difference(
    theta: &[f64],
    v: &[f64],
    eps: f64,
    mut gradient: impl FnMut(&[f64]) -> Result<Vec<f64>, CurvatureError>,
) -> Result<Vec<f64>, CurvatureError> {
    if v.len() != theta.len() {
        return Err(CurvatureError::Shape {
            expected: theta.len(),
            got: v.len(),
        });
    }
    let vn = v.iter().map(|a| a * a).sum::<f64>().sqrt();
    if vn == 0.0 {
        return Ok(vec![0.0; v.len()]);
    }
    let tn = theta.iter().map(|a| a * a).sum::<f64>().sqrt();
    let h = eps * tn.max(1.0) / vn;
    let plus: Vec<f64> = theta.iter().zip(v).map(|(t, v)| t + h * v).collect();
    let minus: Vec<f64> = theta.iter().zip(v).map(|(t, v)| t - h * v).collect();
    let (gp, gm) = (gradient(&plus)?, gradient(&minus)?);
    Ok(gp
        .iter()
        .zip(&gm)
        .map(|(a, b)| (a - b) / (2.0 * h))
        .collect())
}

/// Central-difference HVPs at θ of any problem with a gradient ([`gradlab_core::problem::Gradient`]:
/// a model's loss, [`crate::model::ModelGradient`], a closed-form objective). For f32 models use
/// ε ≈ 1e-3 (the rounding error of an f32 gradient is ≈ 1e-7·‖g‖/h).
pub struct OracleHvp<G> {
    oracle: G,
    theta: Vec<f64>,
    eps: f64,
}

impl<G: Gradient> OracleHvp<G> {
    /// HVPs at `theta` with relative step `eps` > 0.
    pub fn new(oracle: G, theta: Vec<f64>, eps: f64) -> Result<Self, CurvatureError> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(CurvatureError::Invalid(format!(
                "finite-difference step must be > 0, got {eps}"
            )));
        }
        Ok(Self { oracle, theta, eps })
    }
}

impl<G: Gradient> HessianVectorProduct for OracleHvp<G> {
    fn dim(&self) -> usize {
        self.theta.len()
    }
    fn hvp(&self, v: &[f64]) -> Result<Vec<f64>, CurvatureError> {
        central_difference(&self.theta, v, self.eps, |x| Ok(self.oracle.gradient(x)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logistic regression: f(w) = mean log(1 + exp(−y xᵀw)) + ½λ‖w‖², with the analytic Hessian
    /// H = Xᵀ diag(σ(z)(1−σ(z))) X / n + λI, z = y·Xw.
    #[test]
    fn logistic_regression_hvp_matches_analytic_hessian() {
        let (n, d, lambda) = (6usize, 3usize, 0.1);
        let x: Vec<f64> = (0..n * d)
            .map(|i| ((i * 7 % 11) as f64 - 5.0) / 3.0)
            .collect();
        let y: Vec<f64> = (0..n)
            .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
            .collect();
        let w = vec![0.3, -0.7, 0.2];
        let (xc, yc) = (x.clone(), y.clone());
        let hvp = FiniteDiffHvp::new(w.clone(), move |t: Tensor<1>| {
            let dev = t.device();
            let xm =
                Tensor::<2>::from_data(TensorData::new(xc.clone(), [n, d]), (&dev, DType::F64));
            let ym = Tensor::<1>::from_data(TensorData::new(yc.clone(), [n]), (&dev, DType::F64));
            let z = xm.matmul(t.clone().reshape([d, 1])).reshape([n]) * ym;
            let nll = z.neg().exp().add_scalar(1.0).log().mean();
            nll + t.square().sum().mul_scalar(0.5 * lambda)
        });
        let mut h = vec![0.0; d * d];
        for i in 0..n {
            let z: f64 = y[i] * (0..d).map(|j| x[i * d + j] * w[j]).sum::<f64>();
            let s = 1.0 / (1.0 + (-z).exp());
            for a in 0..d {
                for b in 0..d {
                    h[a * d + b] += s * (1.0 - s) * x[i * d + a] * x[i * d + b] / n as f64;
                }
            }
        }
        (0..d).for_each(|a| h[a * d + a] += lambda);
        let dense = hvp.dense().unwrap();
        for (a, b) in dense.iter().zip(&h) {
            assert!((a - b).abs() < 1e-8, "{dense:?} vs {h:?}");
        }
        let v = [1.0, -2.0, 0.5];
        let hv = hvp.hvp(&v).unwrap();
        for a in 0..d {
            let want: f64 = (0..d).map(|b| h[a * d + b] * v[b]).sum();
            assert!((hv[a] - want).abs() < 1e-8);
        }
    }

    #[test]
    fn cubic_hessian_and_errors() {
        // f = Σ θ_i³/3 + θ₀θ₁: H = diag(2θ) + offdiag(1).
        let hvp = FiniteDiffHvp::new(vec![1.5, -0.5], |t: Tensor<1>| {
            let cube = t.clone().powf_scalar(3.0).sum().div_scalar(3.0);
            let a = t.clone().slice(0..1);
            let b = t.slice(1..2);
            cube + (a * b)
        });
        let h = hvp.dense().unwrap();
        let want = [3.0, 1.0, 1.0, -1.0];
        for (a, b) in h.iter().zip(want) {
            assert!((a - b).abs() < 1e-7, "{h:?}");
        }
        assert!(matches!(
            hvp.hvp(&[1.0]),
            Err(CurvatureError::Shape {
                expected: 2,
                got: 1
            })
        ));
        assert_eq!(hvp.hvp(&[0.0, 0.0]).unwrap(), vec![0.0, 0.0]);
        assert!(
            FiniteDiffHvp::new(vec![0.0], |t: Tensor<1>| t)
                .with_eps(0.0)
                .is_err()
        );
    }
}
