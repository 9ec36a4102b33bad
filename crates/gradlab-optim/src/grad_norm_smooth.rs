//! Gradient-regularized Newton with adaptive γ ("Gradient-Normalized Smoothness for Optimization
//! with Approximate Hessians", arXiv 2506.13710, Algorithm 1; checked against the authors'
//! `epfml/grad-norm-smooth` `src/methods.py::grad_norm_smooth`):
//!
//! λ_k = ‖∇f(x_k)‖ / (γ_k + 10⁻⁸),   x_{k+1} = x_k − (H_k + λ_k I)⁻¹ ∇f(x_k),
//!
//! with H_k the exact Hessian or any positive semi-definite approximation (Fisher, Gauss–Newton).
//! The step is accepted when f(x_k) − f(x_{k+1}) ≥ ‖∇f(x_{k+1})‖² / (8λ_k); then γ doubles (not
//! below γ_min), otherwise γ halves and the step is recomputed, at most 40 times (after which the
//! last step is taken anyway, as in the authors' code). Claim: a global linear rate for
//! logistic and softmax regression, also with approximate Hessians.
//!
//! ```
//! use gradlab_optim::grad_norm_smooth::{GradNormSmooth, SecondOrderOracle};
//! /// f(x) = ½‖x − 1‖²: H = I.
//! struct Bowl;
//! impl SecondOrderOracle for Bowl {
//!     fn dim(&self) -> usize { 2 }
//!     fn value(&self, x: &[f64]) -> f64 { x.iter().map(|v| 0.5 * (v - 1.0).powi(2)).sum() }
//!     fn gradient(&self, x: &[f64]) -> Vec<f64> { x.iter().map(|v| v - 1.0).collect() }
//!     fn hessian(&self, _: &[f64]) -> Vec<f64> { vec![1.0, 0.0, 0.0, 1.0] }
//! }
//! let (x, trace) = GradNormSmooth::default().run(&Bowl, &[5.0, -3.0], 30).unwrap();
//! assert!((x[0] - 1.0).abs() < 1e-9 && trace.last().unwrap().grad_norm < 1e-9);
//! ```

use crate::error::{OptimError, Result, check_positive};
use crate::linalg;

/// A twice-differentiable objective with a (possibly approximate) dense Hessian.
pub trait SecondOrderOracle {
    /// Dimension d.
    fn dim(&self) -> usize;
    /// f(x).
    fn value(&self, x: &[f64]) -> f64;
    /// ∇f(x).
    fn gradient(&self, x: &[f64]) -> Vec<f64>;
    /// The Hessian or its approximation at x, row-major d × d, positive semi-definite.
    fn hessian(&self, x: &[f64]) -> Vec<f64>;
}

/// Hyperparameters (the authors' defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradNormSmooth {
    /// γ₀ > 0.
    pub gamma0: f64,
    /// Lower bound of γ after an accepted step.
    pub gamma_min: f64,
    /// Retries of the adaptive search per iteration.
    pub max_search: usize,
    /// Stop once ‖∇f‖ ≤ this (0: run every iteration), as the authors' `grad_tol`.
    pub grad_tol: f64,
}

impl Default for GradNormSmooth {
    fn default() -> Self {
        Self {
            gamma0: 1.0,
            gamma_min: 1e-9,
            max_search: 40,
            grad_tol: 0.0,
        }
    }
}

/// One iterate's record.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Iterate {
    /// f(x_k).
    pub value: f64,
    /// ‖∇f(x_k)‖.
    pub grad_norm: f64,
    /// γ_k when x_k was reached.
    pub gamma: f64,
    /// Linear systems solved so far.
    pub solves: usize,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

impl GradNormSmooth {
    /// `iters` iterations from `x0`: the final point and the record of every iterate (x₀ first).
    /// Stops early when ‖∇f‖ ≤ `grad_tol`.
    pub fn run(
        &self,
        f: &impl SecondOrderOracle,
        x0: &[f64],
        iters: usize,
    ) -> Result<(Vec<f64>, Vec<Iterate>)> {
        check_positive("gamma0", self.gamma0)?;
        check_positive("gamma_min", self.gamma_min)?;
        let d = f.dim();
        if x0.len() != d {
            return Err(OptimError::Invalid {
                name: "x0.len()",
                value: x0.len() as f64,
                requirement: "equal to the problem's dimension",
            });
        }
        let mut x = x0.to_vec();
        let (mut fx, mut g) = (f.value(&x), f.gradient(&x));
        let mut gamma = self.gamma0;
        let mut solves = 0;
        let mut trace = vec![Iterate {
            value: fx,
            grad_norm: norm(&g),
            gamma,
            solves,
        }];
        for k in 1..=iters {
            let gn = norm(&g);
            if !(fx.is_finite() && gn.is_finite()) {
                return Err(OptimError::NonFinite {
                    what: "objective or gradient",
                    step: k - 1,
                });
            }
            if gn <= self.grad_tol || gn == 0.0 {
                break;
            }
            let h = f.hessian(&x);
            let mut accepted = None;
            for _ in 0..self.max_search.max(1) {
                let lambda = gn / (gamma + 1e-8);
                let mut a = h.clone();
                (0..d).for_each(|i| a[i * d + i] += lambda);
                let l = linalg::cholesky(&a, d).ok_or(OptimError::NotPositiveDefinite {
                    system: "H + λI",
                    damping: lambda,
                    step: k,
                    hint: "the Hessian approximation must be positive semi-definite",
                })?;
                let step = linalg::cholesky_solve(&l, d, &g);
                solves += 1;
                let x_new: Vec<f64> = x.iter().zip(&step).map(|(a, s)| a - s).collect();
                let (f_new, g_new) = (f.value(&x_new), f.gradient(&x_new));
                let ok = fx - f_new >= g_new.iter().map(|v| v * v).sum::<f64>() / (8.0 * lambda);
                accepted = Some((x_new, f_new, g_new));
                if ok {
                    gamma = (2.0 * gamma).max(self.gamma_min);
                    break;
                }
                gamma *= 0.5;
            }
            let (x_new, f_new, g_new) = accepted.expect("at least one try");
            x = x_new;
            fx = f_new;
            g = g_new;
            trace.push(Iterate {
                value: fx,
                grad_norm: norm(&g),
                gamma,
                solves,
            });
        }
        Ok((x, trace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(x) = ½xᵀAx − bᵀx.
    struct Quadratic {
        a: Vec<f64>,
        b: Vec<f64>,
    }

    impl SecondOrderOracle for Quadratic {
        fn dim(&self) -> usize {
            self.b.len()
        }
        fn value(&self, x: &[f64]) -> f64 {
            let ax = self.gradient(x);
            0.5 * x.iter().zip(&ax).map(|(p, q)| p * q).sum::<f64>()
                + 0.5 * x.iter().zip(&self.b).map(|(p, q)| -p * q).sum::<f64>()
        }
        fn gradient(&self, x: &[f64]) -> Vec<f64> {
            let n = self.dim();
            (0..n)
                .map(|i| (0..n).map(|j| self.a[i * n + j] * x[j]).sum::<f64>() - self.b[i])
                .collect()
        }
        fn hessian(&self, _: &[f64]) -> Vec<f64> {
            self.a.clone()
        }
    }

    #[test]
    fn first_step_is_the_regularized_newton_step_and_the_method_converges() {
        let q = Quadratic {
            a: vec![3.0, 1.0, 1.0, 2.0],
            b: vec![1.0, -1.0],
        };
        // x₀ = 0: g = −b, ‖g‖ = √2, λ = √2/(1 + 1e-8); x₁ = (A + λI)⁻¹ b if accepted.
        let (_, t1) = GradNormSmooth::default().run(&q, &[0.0, 0.0], 1).unwrap();
        let lam = 2f64.sqrt() / (1.0 + 1e-8);
        let (a, b, c, dd) = (3.0 + lam, 1.0, 1.0, 2.0 + lam);
        let det = a * dd - b * c;
        // (A + λI)⁻¹ b by the 2 × 2 inverse, b = (1, −1).
        let x1 = [(dd + b) / det, (-c - a) / det];
        assert!((t1[1].value - q.value(&x1)).abs() < 1e-12);
        assert_eq!(t1[1].gamma, 2.0);
        let (x, t) = GradNormSmooth::default().run(&q, &[0.0, 0.0], 40).unwrap();
        // A⁻¹b = (3/5, −4/5).
        assert!((x[0] - 0.6).abs() < 1e-10 && (x[1] + 0.8).abs() < 1e-10);
        assert!(t.last().unwrap().grad_norm < 1e-10);
    }

    #[test]
    fn bad_input_is_an_error() {
        let q = Quadratic {
            a: vec![-1.0, 0.0, 0.0, -1.0],
            b: vec![0.1, 0.1],
        };
        let m = GradNormSmooth::default();
        assert!(m.run(&q, &[0.0], 3).is_err());
        // An indefinite "Hessian" with λ = ‖g‖ ≈ 0.14 < 1 fails to factor; the error names λ.
        let e = m.run(&q, &[0.0, 0.0], 3).unwrap_err();
        assert!(
            matches!(e, OptimError::NotPositiveDefinite { step: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("λ = 1.41"), "{e}");
        let bad = GradNormSmooth { gamma0: 0.0, ..m };
        assert!(bad.run(&q, &[0.0, 0.0], 3).is_err());
    }
}
