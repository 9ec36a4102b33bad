//! L-BFGS (Liu and Nocedal, "On the limited memory BFGS method for large scale optimization",
//! Math. Programming 1989) on any problem with a cost and a gradient, run by
//! [`gradlab_core::solve::solve`].
//!
//! The direction is d = −H g from the two-loop recursion over the last `memory` pairs
//! (s = x₊ − x, y = g₊ − g, kept only when sᵀy > 0), with H₀ = (sᵀy / yᵀy) I; the step is the
//! largest of 1, ½, ¼, … that satisfies Armijo's condition f(x + αd) ≤ f(x) + c₁ α gᵀd
//! (c₁ = 1e-4; the first step has length 1 along −g, as SciPy's). The run has converged when ‖g‖∞ ≤ `tol`,
//! when a step lowers f by less than `ftol`·max(|f|, |f₊|, 1) (SciPy's L-BFGS-B test, whose
//! default `ftol` 2.2e-9 scikit-learn inherits; off by default), or when no step along a descent
//! direction lowers f any more at float precision ([`LbfgsState::stalled`], which a caller can
//! tell apart). SciPy searches with Moré–Thuente (strong Wolfe) instead of halving, so iterates
//! differ from scikit-learn's while the fixed points are the same.
//!
//! ```
//! use gradlab_core::solve::{Silent, solve};
//! use gradlab_data::functions::Quadratic;
//! use gradlab_optim::lbfgs::Lbfgs;
//! let f = Quadratic::diagonal(vec![1.0, 100.0]).unwrap();
//! let (end, report) = solve(&mut Lbfgs::new(10, 1e-10).unwrap(), &f, &[1.0, 1.0], 100, &mut Silent).unwrap();
//! assert!(report.converged && end.x.iter().all(|v| v.abs() < 1e-9));
//! ```

use crate::{OptimError, Result};
use gradlab_core::problem::{Cost, Gradient, check_finite, check_point};
use gradlab_core::solve::{Iteration, Solver};
use std::collections::VecDeque;

/// Armijo's sufficient-decrease constant.
const C1: f64 = 1e-4;
/// Halvings of the step before the line search gives up.
const MAX_HALVINGS: usize = 60;

/// The L-BFGS method.
#[derive(Debug, Clone, PartialEq)]
pub struct Lbfgs {
    memory: usize,
    tol: f64,
    ftol: f64,
}

/// The state of [`Lbfgs`].
#[derive(Debug, Clone, PartialEq)]
pub struct LbfgsState {
    /// The iterate.
    pub x: Vec<f64>,
    /// f(x).
    pub f: f64,
    /// ∇f(x).
    pub g: Vec<f64>,
    /// Cost and gradient evaluations so far.
    pub evaluations: usize,
    /// The line search found no decrease along a descent direction: x is a minimum to float
    /// precision (or the problem is not smooth there).
    pub stalled: bool,
    /// The last step's relative decrease fell below `ftol`.
    pub flat: bool,
    pairs: VecDeque<(Vec<f64>, Vec<f64>, f64)>,
}

impl Lbfgs {
    /// L-BFGS keeping `memory` pairs (≥ 1), converged at ‖g‖∞ ≤ `tol` (≥ 0; 0 runs to the budget
    /// or to a stall, as scikit-learn's `tol = 0`).
    pub fn new(memory: usize, tol: f64) -> Result<Self> {
        if memory == 0 {
            return Err(OptimError::Invalid {
                name: "memory",
                value: 0.0,
                requirement: "at least 1",
            });
        }
        if !(tol >= 0.0 && tol.is_finite()) {
            return Err(OptimError::Invalid {
                name: "tol",
                value: tol,
                requirement: "finite and ≥ 0",
            });
        }
        Ok(Self {
            memory,
            tol,
            ftol: 0.0,
        })
    }

    /// Also stop when a step lowers f by less than `ftol`·max(|f|, |f₊|, 1) (≥ 0; SciPy's default
    /// is 2.220446049250313e-9).
    pub fn with_ftol(mut self, ftol: f64) -> Result<Self> {
        if !(ftol >= 0.0 && ftol.is_finite()) {
            return Err(OptimError::Invalid {
                name: "ftol",
                value: ftol,
                requirement: "finite and ≥ 0",
            });
        }
        self.ftol = ftol;
        Ok(self)
    }

    /// d = −H g by the two-loop recursion.
    fn direction(&self, state: &LbfgsState) -> Vec<f64> {
        let mut q = state.g.clone();
        let mut alphas = Vec::with_capacity(state.pairs.len());
        for (s, y, rho) in state.pairs.iter().rev() {
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push(a);
        }
        let gamma = match state.pairs.back() {
            Some((s, y, _)) => dot(s, y) / dot(y, y),
            // SciPy's first step: length 1 along −g.
            None => 1.0 / dot(&state.g, &state.g).sqrt().max(f64::MIN_POSITIVE),
        };
        q.iter_mut().for_each(|v| *v *= gamma);
        for ((s, y, rho), a) in state.pairs.iter().zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        q.iter_mut().for_each(|v| *v = -*v);
        q
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm_inf(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

impl<P: Cost + Gradient + ?Sized> Solver<P> for Lbfgs {
    type State = LbfgsState;
    type Error = OptimError;

    fn init(&mut self, problem: &P, x0: &[f64]) -> Result<LbfgsState> {
        check_point(problem, x0)?;
        let (f, g) = (problem.cost(x0)?, problem.gradient(x0)?);
        if !f.is_finite() {
            return Err(OptimError::NonFinite {
                what: "cost",
                step: 0,
            });
        }
        check_finite("gradient", &g)?;
        Ok(LbfgsState {
            x: x0.to_vec(),
            f,
            g,
            evaluations: 1,
            stalled: false,
            flat: false,
            pairs: VecDeque::new(),
        })
    }

    fn converged(&self, state: &LbfgsState) -> bool {
        state.stalled || state.flat || norm_inf(&state.g) <= self.tol
    }

    fn step(&mut self, problem: &P, state: &mut LbfgsState) -> Result<()> {
        let mut d = self.direction(state);
        let mut slope = dot(&state.g, &d);
        if slope.is_nan() || slope >= 0.0 {
            // Not a descent direction (lost curvature information): restart from −g.
            state.pairs.clear();
            d = self.direction(state);
            slope = dot(&state.g, &d);
        }
        let mut alpha = 1.0;
        let mut found = None;
        for _ in 0..MAX_HALVINGS {
            let x: Vec<f64> = state
                .x
                .iter()
                .zip(&d)
                .map(|(xi, di)| xi + alpha * di)
                .collect();
            let f = problem.cost(&x)?;
            state.evaluations += 1;
            if f.is_finite() && f <= state.f + C1 * alpha * slope {
                found = Some((x, f));
                break;
            }
            alpha *= 0.5;
        }
        let Some((x, f)) = found else {
            state.stalled = true;
            return Ok(());
        };
        let g = problem.gradient(&x)?;
        check_finite("gradient", &g)?;
        let s: Vec<f64> = x.iter().zip(&state.x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g.iter().zip(&state.g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-12 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() && sy > 0.0 {
            if state.pairs.len() == self.memory {
                state.pairs.pop_front();
            }
            state.pairs.push_back((s, y, 1.0 / sy));
        }
        state.stalled = f == state.f && norm_inf(&g) > self.tol;
        state.flat =
            self.ftol > 0.0 && state.f - f <= self.ftol * state.f.abs().max(f.abs()).max(1.0);
        (state.x, state.f, state.g) = (x, f, g);
        Ok(())
    }

    fn iteration<'a>(&self, state: &'a LbfgsState) -> Iteration<'a> {
        Iteration {
            cost: Some(state.f),
            grad_norm: Some(dot(&state.g, &state.g).sqrt()),
            work: state.evaluations,
            ..Iteration::at(&state.x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_core::problem::Problem;
    use gradlab_core::solve::{Silent, solve};

    /// Rosenbrock's f(x, y) = (1 − x)² + 100(y − x²)², minimum at (1, 1).
    struct Rosenbrock;
    impl Problem for Rosenbrock {
        fn dim(&self) -> usize {
            2
        }
    }
    impl Cost for Rosenbrock {
        fn cost(&self, x: &[f64]) -> gradlab_core::Result<f64> {
            Ok((1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2))
        }
    }
    impl Gradient for Rosenbrock {
        fn gradient(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
            let r = x[1] - x[0] * x[0];
            Ok(vec![-2.0 * (1.0 - x[0]) - 400.0 * x[0] * r, 200.0 * r])
        }
    }

    #[test]
    fn it_finds_rosenbrocks_minimum_from_the_classic_start() {
        let (end, report) = solve(
            &mut Lbfgs::new(10, 1e-9).unwrap(),
            &Rosenbrock,
            &[-1.2, 1.0],
            200,
            &mut Silent,
        )
        .unwrap();
        assert!(
            report.converged && !end.stalled,
            "{report:?} at {:?}",
            end.x
        );
        assert!(
            (end.x[0] - 1.0).abs() < 1e-7 && (end.x[1] - 1.0).abs() < 1e-7,
            "{:?}",
            end.x
        );
        // Far fewer iterations than gradient descent needs (thousands).
        assert!(report.iterations < 100, "{}", report.iterations);
    }

    /// On a quadratic, once the memory holds d pairs the two-loop H equals the exact inverse
    /// Hessian on the span, so the method ends within a few steps of d.
    #[test]
    fn it_solves_an_ill_conditioned_quadratic_in_few_iterations() {
        let f =
            gradlab_data::functions::Quadratic::diagonal(vec![1.0, 10.0, 100.0, 1000.0]).unwrap();
        let (end, report) = solve(
            &mut Lbfgs::new(10, 1e-8).unwrap(),
            &f,
            &[1.0; 4],
            100,
            &mut Silent,
        )
        .unwrap();
        assert!(
            report.converged && end.x.iter().all(|v| v.abs() < 1e-8),
            "{:?}",
            end.x
        );
        assert!(report.iterations < 40, "{}", report.iterations);
    }

    #[test]
    fn the_relative_decrease_test_stops_a_run_early() {
        let mut strict = Lbfgs::new(10, 0.0).unwrap();
        let mut loose = Lbfgs::new(10, 0.0).unwrap().with_ftol(1e-3).unwrap();
        let (_, long) = solve(&mut strict, &Rosenbrock, &[-1.2, 1.0], 200, &mut Silent).unwrap();
        let (end, short) = solve(&mut loose, &Rosenbrock, &[-1.2, 1.0], 200, &mut Silent).unwrap();
        assert!(
            end.flat && short.converged && short.iterations < long.iterations,
            "{short:?} vs {long:?}"
        );
        assert!(Lbfgs::new(10, 0.0).unwrap().with_ftol(-1.0).is_err());
    }

    #[test]
    fn bad_settings_and_points_are_refused() {
        assert!(
            Lbfgs::new(0, 0.0)
                .unwrap_err()
                .to_string()
                .contains("memory = 0")
        );
        assert!(Lbfgs::new(5, f64::NAN).is_err());
        let err = solve(
            &mut Lbfgs::new(5, 0.0).unwrap(),
            &Rosenbrock,
            &[1.0],
            10,
            &mut Silent,
        )
        .unwrap_err();
        assert!(err.to_string().contains("2"), "{err}");
    }
}
