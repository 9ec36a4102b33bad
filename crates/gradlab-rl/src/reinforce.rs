//! REINFORCE (Williams 1992) and GPOMDP (Baxter and Bartlett 2001), the unbiased score-function
//! estimators of ∇J, and the plain policy-gradient ascent on them:
//!
//! - REINFORCE: ĝ(τ) = (Σₜ ∇log π(aₜ|sₜ)) · Σₜ γᵗ rₜ;
//! - GPOMDP: ĝ(τ) = Σₜ Rₜ ∇log π(aₜ|sₜ), Rₜ = Σ_{h≥t} γʰ r_h (no score multiplies an earlier
//!   reward), which is ∇Φ of the surrogate Φ(τ, θ) = Σₜ Rₜ log π_θ(aₜ|sₜ).
//!
//! [`VanillaPg`] steps θₜ₊₁ = θₜ + γₜ ĝ with γₜ = γ₀ (2/(t+2))^{2/3}, the official repository's
//! `sgd` baseline schedule (unnormalised), from a batch of trajectories per step.

use crate::env::Env;
use crate::policy::Policy;
use crate::rollout::{PgProblem, PgState, Trajectory, check_rate};
use crate::{Result, RlError, ensure};
use gradlab_core::solve::{Iteration, Solver};

/// Which score-function estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    /// Whole-return weighting.
    Reinforce,
    /// Reward-to-go weighting (lower variance, same mean).
    Gpomdp,
}

/// The estimate of ∇J from one trajectory.
pub fn gradient<P: Policy>(
    estimator: Estimator,
    policy: &P,
    theta: &[f64],
    tr: &Trajectory,
    gamma: f64,
) -> Result<Vec<f64>> {
    let mut g = vec![0.0; policy.dim()];
    match estimator {
        Estimator::Reinforce => {
            let ret = tr.discounted_return(gamma);
            for (s, a) in tr.states.iter().zip(&tr.actions) {
                let sc = policy.score(theta, s, a)?;
                g.iter_mut().zip(&sc).for_each(|(g, v)| *g += ret * v);
            }
        }
        Estimator::Gpomdp => {
            for ((s, a), r) in tr
                .states
                .iter()
                .zip(&tr.actions)
                .zip(tr.rewards_to_go(gamma))
            {
                let sc = policy.score(theta, s, a)?;
                g.iter_mut().zip(&sc).for_each(|(g, v)| *g += r * v);
            }
        }
    }
    crate::check_finite("policy-gradient estimate", &g)?;
    Ok(g)
}

/// Plain policy-gradient ascent.
#[derive(Debug, Clone)]
pub struct VanillaPg {
    estimator: Estimator,
    gamma0: f64,
    batch: usize,
    seed: u64,
}

impl VanillaPg {
    /// Ascent with `estimator`, step constant γ₀, `batch` trajectories per step, sampling seeded
    /// by `seed`.
    pub fn new(estimator: Estimator, gamma0: f64, batch: usize, seed: u64) -> Result<Self> {
        check_rate("step size γ₀", gamma0)?;
        ensure(batch > 0, "batch", || {
            "needs at least one trajectory".into()
        })?;
        Ok(Self {
            estimator,
            gamma0,
            batch,
            seed,
        })
    }
}

impl<E: Env, P: Policy> Solver<PgProblem<E, P>> for VanillaPg {
    type State = PgState;
    type Error = RlError;
    fn init(&mut self, problem: &PgProblem<E, P>, x0: &[f64]) -> Result<PgState> {
        PgState::new(problem, x0, self.seed)
    }
    fn converged(&self, _: &PgState) -> bool {
        false
    }
    fn step(&mut self, problem: &PgProblem<E, P>, st: &mut PgState) -> Result<()> {
        let mut g = vec![0.0; problem.policy.dim()];
        for _ in 0..self.batch {
            let theta = st.theta.clone();
            let tr = st.sample(problem, &theta)?;
            let gi = gradient(
                self.estimator,
                &problem.policy,
                &st.theta,
                &tr,
                problem.gamma,
            )?;
            g.iter_mut()
                .zip(&gi)
                .for_each(|(a, b)| *a += b / self.batch as f64);
        }
        let rate = self.gamma0 * (2.0 / (st.t as f64 + 2.0)).powf(2.0 / 3.0);
        let step: Vec<f64> = g.iter().map(|v| rate * v).collect();
        st.d = g;
        st.advance(&step)
    }
    fn iteration<'a>(&self, st: &'a PgState) -> Iteration<'a> {
        st.iteration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lqr::Lqr;
    use crate::policy::{Features, GaussianLinear};
    use rand::prelude::*;

    #[test]
    fn reinforce_and_gpomdp_are_unbiased_for_the_exact_lqr_gradient() {
        let lqr = Lqr::double_integrator(0.1, 0.05, 1.0, 15, 0.95).unwrap();
        let sigma = 0.5;
        let pb = PgProblem::new(
            lqr.clone(),
            GaussianLinear::new(1, 2, sigma, Features::Raw).unwrap(),
            15,
            0.95,
        )
        .unwrap();
        let theta = [-1.0, -2.0];
        let exact = lqr.exact_gradient(&theta, sigma).unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        for est in [Estimator::Reinforce, Estimator::Gpomdp] {
            let n = 60_000;
            let (mut s, mut s2) = (vec![0.0; 2], vec![0.0; 2]);
            for _ in 0..n {
                let seed = rng.random();
                let tr = pb.rollout(&theta, seed, &mut rng).unwrap();
                let g = gradient(est, &pb.policy, &theta, &tr, 0.95).unwrap();
                for i in 0..2 {
                    s[i] += g[i];
                    s2[i] += g[i] * g[i];
                }
            }
            for i in 0..2 {
                let mean = s[i] / n as f64;
                let se = ((s2[i] / n as f64 - mean * mean) / n as f64).sqrt();
                assert!(
                    (mean - exact[i]).abs() < 4.0 * se,
                    "{est:?} coordinate {i}: {mean} ± {se} vs exact {}",
                    exact[i]
                );
            }
        }
    }

    #[test]
    fn invalid_settings_are_errors() {
        assert!(VanillaPg::new(Estimator::Gpomdp, 0.0, 1, 0).is_err());
        assert!(VanillaPg::new(Estimator::Gpomdp, f64::NAN, 1, 0).is_err());
        assert!(VanillaPg::new(Estimator::Gpomdp, 0.1, 0, 0).is_err());
    }
}
