//! Trajectories, and the policy-gradient problem: maximise J(θ) = E[Σₜ γᵗ rₜ] over a fixed
//! horizon, from sampled trajectories only.

use crate::env::{Action, Env};
use crate::policy::Policy;
use crate::{Result, RlError, ensure};
use gradlab_core::problem::Problem;
use rand::prelude::*;

/// One episode: the observations it acted on, its actions and its rewards.
#[derive(Debug, Clone, Default)]
pub struct Trajectory {
    /// sₜ.
    pub states: Vec<Vec<f64>>,
    /// aₜ.
    pub actions: Vec<Action>,
    /// rₜ.
    pub rewards: Vec<f64>,
}

impl Trajectory {
    /// Σₜ γᵗ rₜ.
    pub fn discounted_return(&self, gamma: f64) -> f64 {
        self.rewards
            .iter()
            .rev()
            .fold(0.0, |acc, r| r + gamma * acc)
    }

    /// Rₜ = Σ_{h ≥ t} γʰ r_h (discounted from time 0, as GPOMDP weighs the score at t).
    pub fn rewards_to_go(&self, gamma: f64) -> Vec<f64> {
        let mut out = vec![0.0; self.rewards.len()];
        let mut disc: Vec<f64> = Vec::with_capacity(self.rewards.len());
        let mut g = 1.0;
        for _ in 0..self.rewards.len() {
            disc.push(g);
            g *= gamma;
        }
        let mut acc = 0.0;
        for t in (0..self.rewards.len()).rev() {
            acc += disc[t] * self.rewards[t];
            out[t] = acc;
        }
        out
    }
}

/// The policy-gradient problem: an environment, a policy, a horizon and a discount.
#[derive(Debug, Clone)]
pub struct PgProblem<E, P> {
    /// The environment (cloned for every episode).
    pub env: E,
    /// The policy.
    pub policy: P,
    /// At most this many steps per episode.
    pub horizon: usize,
    /// γ.
    pub gamma: f64,
}

impl<E: Env, P: Policy> PgProblem<E, P> {
    /// A problem; an error when the policy does not read the environment's observations.
    pub fn new(env: E, policy: P, horizon: usize, gamma: f64) -> Result<Self> {
        if policy.state_dim() != env.state_dim() {
            return Err(RlError::Shape {
                what: "policy input".into(),
                expected: format!("{} ({} observations)", env.state_dim(), env.name()),
                got: policy.state_dim().to_string(),
            });
        }
        ensure(horizon > 0, "horizon", || "must be positive".into())?;
        ensure(gamma > 0.0 && gamma <= 1.0, "discount", || {
            format!("{gamma} (must be in (0, 1])")
        })?;
        Ok(Self {
            env,
            policy,
            horizon,
            gamma,
        })
    }

    /// One episode of π_θ, the environment reset with `seed`, actions drawn from `rng`.
    pub fn rollout(&self, theta: &[f64], seed: u64, rng: &mut StdRng) -> Result<Trajectory> {
        let mut env = self.env.clone();
        let mut s = env.reset(seed);
        let mut tr = Trajectory::default();
        for _ in 0..self.horizon {
            let a = self.policy.act(theta, &s, rng)?;
            let st = env.step(&a)?;
            if !st.reward.is_finite() || !st.state.iter().all(|v| v.is_finite()) {
                return Err(RlError::NonFinite {
                    what: format!("{} transition (state or reward)", env.name()),
                });
            }
            tr.states.push(std::mem::replace(&mut s, st.state));
            tr.actions.push(a);
            tr.rewards.push(st.reward);
            if st.done {
                break;
            }
        }
        Ok(tr)
    }

    /// The mean discounted return of `episodes` fresh episodes at θ (an evaluation, seeded).
    pub fn evaluate(&self, theta: &[f64], episodes: usize, seed: u64) -> Result<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut sum = 0.0;
        for _ in 0..episodes {
            let s = rng.random();
            sum += self
                .rollout(theta, s, &mut rng)?
                .discounted_return(self.gamma);
        }
        Ok(sum / episodes.max(1) as f64)
    }
}

impl<E: Env, P: Policy> Problem for PgProblem<E, P> {
    fn dim(&self) -> usize {
        self.policy.dim()
    }
}

/// The state every policy-gradient method carries.
#[derive(Debug, Clone)]
pub struct PgState {
    /// θₜ.
    pub theta: Vec<f64>,
    /// θₜ₋₁ (θ₀ at the start).
    pub prev: Vec<f64>,
    /// The direction dₜ (the last gradient estimate for plain methods).
    pub d: Vec<f64>,
    /// Steps taken.
    pub t: usize,
    /// Trajectories sampled so far (the unit of work).
    pub trajectories: usize,
    /// The discounted return of the last trajectory sampled.
    pub last_return: f64,
    pub(crate) rng: StdRng,
}

impl PgState {
    pub(crate) fn new<E: Env, P: Policy>(
        problem: &PgProblem<E, P>,
        x0: &[f64],
        seed: u64,
    ) -> Result<Self> {
        gradlab_core::problem::check_point(problem, x0)?;
        Ok(Self {
            theta: x0.to_vec(),
            prev: x0.to_vec(),
            d: vec![0.0; x0.len()],
            t: 0,
            trajectories: 0,
            last_return: f64::NAN,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    /// Sample one trajectory at `at`, counting it.
    pub(crate) fn sample<E: Env, P: Policy>(
        &mut self,
        problem: &PgProblem<E, P>,
        at: &[f64],
    ) -> Result<Trajectory> {
        let seed = self.rng.random();
        let tr = problem.rollout(at, seed, &mut self.rng)?;
        self.trajectories += 1;
        self.last_return = tr.discounted_return(problem.gamma);
        Ok(tr)
    }

    /// θ ← θ + step; θₜ₋₁ ← θₜ; t ← t + 1; an error if θ is no longer finite.
    pub(crate) fn advance(&mut self, step: &[f64]) -> Result<()> {
        self.prev.clone_from(&self.theta);
        self.theta.iter_mut().zip(step).for_each(|(a, s)| *a += s);
        self.t += 1;
        crate::check_finite("policy parameters after a step", &self.theta)
    }

    /// What the solve loop shows observers: θ, the trajectories so far and ‖d‖.
    pub fn iteration(&self) -> gradlab_core::solve::Iteration<'_> {
        let mut it = gradlab_core::solve::Iteration::at(&self.theta);
        it.work = self.trajectories;
        it.grad_norm = Some(norm(&self.d));
        it
    }
}

/// ‖v‖₂.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// γ·d/‖d‖ (zero for d = 0: no direction, no step).
pub(crate) fn normalised_step(d: &[f64], gamma: f64) -> Vec<f64> {
    let n = norm(d);
    if n == 0.0 {
        vec![0.0; d.len()]
    } else {
        d.iter().map(|v| gamma * v / n).collect()
    }
}

/// A positive, finite step-size constant.
pub(crate) fn check_rate(what: &'static str, v: f64) -> Result<()> {
    ensure(v > 0.0 && v.is_finite(), what, || {
        format!("{v} (must be positive and finite)")
    })
}
