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
//! It is a [`Solver`] of the one problem shape ([`gradlab_core::problem`]: cost, gradient and
//! Hessian, each returning `Result`), run by [`gradlab_core::solve::solve`] with any observer;
//! [`GradNormSmooth::run`] runs it and records every iterate. Its hyperparameters are a
//! [`GradNormSmoothConfig`], validated by [`GradNormSmoothConfig::init`].
//!
//! ```
//! use gradlab_core::Result;
//! use gradlab_core::problem::{Cost, Gradient, Hessian, Problem};
//! use gradlab_optim::grad_norm_smooth::GradNormSmoothConfig;
//! /// f(x) = ½‖x − 1‖²: H = I.
//! struct Bowl;
//! impl Problem for Bowl { fn dim(&self) -> usize { 2 } }
//! impl Cost for Bowl {
//!     fn cost(&self, x: &[f64]) -> Result<f64> { Ok(x.iter().map(|v| 0.5 * (v - 1.0).powi(2)).sum()) }
//! }
//! impl Gradient for Bowl {
//!     fn gradient(&self, x: &[f64]) -> Result<Vec<f64>> { Ok(x.iter().map(|v| v - 1.0).collect()) }
//! }
//! impl Hessian for Bowl {
//!     fn hessian(&self, _: &[f64]) -> Result<Vec<f64>> { Ok(vec![1.0, 0.0, 0.0, 1.0]) }
//! }
//! let method = GradNormSmoothConfig::new().init().unwrap(); // the authors' defaults
//! let (x, trace) = method.run(&Bowl, &[5.0, -3.0], 30).unwrap();
//! assert!(GradNormSmoothConfig::new().with_gamma0(0.0).init().is_err());
//! assert!((x[0] - 1.0).abs() < 1e-9 && trace.last().unwrap().grad_norm < 1e-9);
//! ```

use crate::error::{OptimError, check_non_negative, check_positive};
use crate::linalg;
use burn::config::Config;
use gradlab_core::CoreError;
use gradlab_core::problem::{Cost, Gradient, Hessian, check_point, norm};
use gradlab_core::solve::{Iteration, Observer, Solver, solve};

/// Hyperparameters (the authors' defaults).
#[derive(Config, Debug, Copy, PartialEq)]
pub struct GradNormSmoothConfig {
    /// γ₀ > 0.
    #[config(default = 1.0)]
    pub gamma0: f64,
    /// Lower bound of γ after an accepted step (> 0).
    #[config(default = 1e-9)]
    pub gamma_min: f64,
    /// Retries of the adaptive search per iteration (≥ 1).
    #[config(default = 40)]
    pub max_search: usize,
    /// Stop once ‖∇f‖ ≤ this (≥ 0; 0: run every iteration), as the authors' `grad_tol`.
    #[config(default = 0.0)]
    pub grad_tol: f64,
}

impl GradNormSmoothConfig {
    /// Validate and build the method.
    pub fn init(&self) -> crate::Result<GradNormSmooth> {
        check_positive("gamma0", self.gamma0)?;
        check_positive("gamma_min", self.gamma_min)?;
        check_non_negative("grad_tol", self.grad_tol)?;
        if self.max_search == 0 {
            return Err(OptimError::Invalid {
                name: "max_search",
                value: 0.0,
                requirement: ">= 1",
            });
        }
        Ok(GradNormSmooth { cfg: *self })
    }
}

/// The method, a [`Solver`] (built by [`GradNormSmoothConfig::init`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradNormSmooth {
    cfg: GradNormSmoothConfig,
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

/// The state of a run: the iterate, its value and gradient, γ and the linear solves so far.
#[derive(Debug, Clone)]
pub struct State {
    /// x_k.
    pub x: Vec<f64>,
    /// f(x_k).
    pub value: f64,
    /// ∇f(x_k).
    pub gradient: Vec<f64>,
    /// γ_k.
    pub gamma: f64,
    /// Linear systems solved so far.
    pub solves: usize,
    /// k.
    pub k: usize,
    /// The record of every iterate so far (x₀ first).
    pub history: Vec<Iterate>,
}

impl State {
    fn record(&mut self) {
        self.history.push(Iterate {
            value: self.value,
            grad_norm: norm(&self.gradient),
            gamma: self.gamma,
            solves: self.solves,
        });
    }
}

impl<P: Cost + Gradient + Hessian + ?Sized> Solver<P> for GradNormSmooth {
    type State = State;
    type Error = OptimError;

    fn init(&mut self, f: &P, x0: &[f64]) -> crate::Result<State> {
        check_point(f, x0)?;
        let mut s = State {
            x: x0.to_vec(),
            value: f.cost(x0)?,
            gradient: f.gradient(x0)?,
            gamma: self.cfg.gamma0,
            solves: 0,
            k: 0,
            history: vec![],
        };
        s.record();
        Ok(s)
    }

    /// ‖∇f‖ ≤ `grad_tol`, or exactly 0.
    fn converged(&self, s: &State) -> bool {
        let gn = norm(&s.gradient);
        gn <= self.cfg.grad_tol || gn == 0.0
    }

    fn step(&mut self, f: &P, s: &mut State) -> crate::Result<()> {
        let d = s.x.len();
        let gn = norm(&s.gradient);
        if !(s.value.is_finite() && gn.is_finite()) {
            return Err(OptimError::NonFinite {
                what: "objective or gradient",
                step: s.k,
            });
        }
        s.k += 1;
        let h = f.hessian(&s.x)?;
        if h.len() != d * d || h.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::NonFinite {
                what: format!("Hessian ({} entries for d = {d})", h.len()),
                iteration: s.k,
            }
            .into());
        }
        let mut accepted = None;
        for _ in 0..self.cfg.max_search {
            let lambda = gn / (s.gamma + 1e-8);
            let mut a = h.clone();
            (0..d).for_each(|i| a[i * d + i] += lambda);
            let l = linalg::cholesky(&a, d).ok_or(OptimError::NotPositiveDefinite {
                system: "H + λI",
                damping: lambda,
                step: s.k,
                hint: "the Hessian approximation must be positive semi-definite",
            })?;
            let step = linalg::cholesky_solve(&l, d, &s.gradient);
            s.solves += 1;
            let x_new: Vec<f64> = s.x.iter().zip(&step).map(|(a, b)| a - b).collect();
            let (f_new, g_new) = (f.cost(&x_new)?, f.gradient(&x_new)?);
            let ok = s.value - f_new >= g_new.iter().map(|v| v * v).sum::<f64>() / (8.0 * lambda);
            accepted = Some((x_new, f_new, g_new));
            if ok {
                s.gamma = (2.0 * s.gamma).max(self.cfg.gamma_min);
                break;
            }
            s.gamma *= 0.5;
        }
        if let Some((x, value, gradient)) = accepted {
            (s.x, s.value, s.gradient) = (x, value, gradient);
        }
        s.record();
        Ok(())
    }

    fn iteration<'a>(&self, s: &'a State) -> Iteration<'a> {
        Iteration {
            iteration: s.k,
            x: &s.x,
            cost: Some(s.value),
            grad_norm: Some(norm(&s.gradient)),
            work: s.solves,
            batch: None,
        }
    }
}

impl GradNormSmooth {
    /// `iters` iterations from `x0` by [`solve`], showing `observer` every iterate; the final
    /// state holds the record of every iterate (x₀ first). Stops early when ‖∇f‖ ≤ `grad_tol`.
    pub fn run_observed<P: Cost + Gradient + Hessian + ?Sized>(
        &self,
        f: &P,
        x0: &[f64],
        iters: usize,
        observer: &mut impl Observer,
    ) -> crate::Result<State> {
        let mut method = *self;
        Ok(solve(&mut method, f, x0, iters, observer)?.0)
    }

    /// [`GradNormSmooth::run_observed`] without an observer: the final point and the record of
    /// every iterate (x₀ first).
    pub fn run<P: Cost + Gradient + Hessian + ?Sized>(
        &self,
        f: &P,
        x0: &[f64],
        iters: usize,
    ) -> crate::Result<(Vec<f64>, Vec<Iterate>)> {
        let state = self.run_observed(f, x0, iters, &mut gradlab_core::solve::Silent)?;
        Ok((state.x, state.history))
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

    impl gradlab_core::problem::Problem for Quadratic {
        fn dim(&self) -> usize {
            self.b.len()
        }
    }
    impl Quadratic {
        fn value(&self, x: &[f64]) -> f64 {
            let ax = self.grad(x);
            0.5 * x.iter().zip(&ax).map(|(p, q)| p * q).sum::<f64>()
                + 0.5 * x.iter().zip(&self.b).map(|(p, q)| -p * q).sum::<f64>()
        }
        fn grad(&self, x: &[f64]) -> Vec<f64> {
            let n = self.b.len();
            (0..n)
                .map(|i| (0..n).map(|j| self.a[i * n + j] * x[j]).sum::<f64>() - self.b[i])
                .collect()
        }
    }
    impl Cost for Quadratic {
        fn cost(&self, x: &[f64]) -> gradlab_core::Result<f64> {
            Ok(self.value(x))
        }
    }
    impl Gradient for Quadratic {
        fn gradient(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
            Ok(self.grad(x))
        }
    }
    impl Hessian for Quadratic {
        fn hessian(&self, _: &[f64]) -> gradlab_core::Result<Vec<f64>> {
            Ok(self.a.clone())
        }
    }

    #[test]
    fn first_step_is_the_regularized_newton_step_and_the_method_converges() {
        let q = Quadratic {
            a: vec![3.0, 1.0, 1.0, 2.0],
            b: vec![1.0, -1.0],
        };
        // x₀ = 0: g = −b, ‖g‖ = √2, λ = √2/(1 + 1e-8); x₁ = (A + λI)⁻¹ b if accepted.
        let (_, t1) = GradNormSmoothConfig::new()
            .init()
            .unwrap()
            .run(&q, &[0.0, 0.0], 1)
            .unwrap();
        let lam = 2f64.sqrt() / (1.0 + 1e-8);
        let (a, b, c, dd) = (3.0 + lam, 1.0, 1.0, 2.0 + lam);
        let det = a * dd - b * c;
        // (A + λI)⁻¹ b by the 2 × 2 inverse, b = (1, −1).
        let x1 = [(dd + b) / det, (-c - a) / det];
        assert!((t1[1].value - q.value(&x1)).abs() < 1e-12);
        assert_eq!(t1[1].gamma, 2.0);
        let (x, t) = GradNormSmoothConfig::new()
            .init()
            .unwrap()
            .run(&q, &[0.0, 0.0], 40)
            .unwrap();
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
        let m = GradNormSmoothConfig::new().init().unwrap();
        assert!(m.run(&q, &[0.0], 3).is_err());
        // An indefinite "Hessian" with λ = ‖g‖ ≈ 0.14 < 1 fails to factor; the error names λ.
        let e = m.run(&q, &[0.0, 0.0], 3).unwrap_err();
        assert!(
            matches!(e, OptimError::NotPositiveDefinite { step: 1, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("λ = 1.41"), "{e}");
        for bad in [
            GradNormSmoothConfig::new().with_gamma0(0.0),
            GradNormSmoothConfig::new().with_gamma_min(f64::NAN),
            GradNormSmoothConfig::new().with_max_search(0),
            GradNormSmoothConfig::new().with_grad_tol(-1.0),
        ] {
            assert!(bad.init().is_err(), "{bad:?}");
        }
    }
}
