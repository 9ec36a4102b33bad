//! DP-SGD (Abadi et al., "Deep Learning with Differential Privacy", CCS 2016), the baseline of
//! [`crate::diff2`]. Each step samples a Poisson batch B (every example independently with
//! probability q), clips each example's gradient and adds Gaussian noise to the sum:
//!
//! g = (Σ_{i∈B} clip_C(∇fᵢ(x)) + N(0, σ²C²I)) / (q·n),   x ← x − η·g,
//!
//! with clip_C(v) = v·min(1, C/‖v‖) and the expected batch size q·n in the denominator (as
//! Opacus). q = 1 is DP-GD. The run is `steps` subsampled Gaussian mechanisms at (q, σ); the
//! budget is checked before the first step.
//!
//! ```
//! use gradlab_optim::dp_sgd::DpSgdConfig;
//! use gradlab_optim::privacy::PrivacyBudget;
//! use gradlab_core::problem::{PerExampleGradients, Problem};
//! /// fᵢ(x) = ½‖x − aᵢ‖² with aᵢ = ±1.
//! struct Means;
//! impl Problem for Means {
//!     fn dim(&self) -> usize { 1 }
//! }
//! impl PerExampleGradients for Means {
//!     fn examples(&self) -> usize { 100 }
//!     fn example_gradients(&self, x: &[f64], idx: &[usize]) -> gradlab_core::Result<Vec<f64>> {
//!         Ok(idx.iter().map(|i| x[0] - if i % 2 == 0 { 1.0 } else { -1.0 }).collect())
//!     }
//! }
//! let budget = PrivacyBudget::new(1.0, 1e-3).unwrap();
//! let cfg = DpSgdConfig::new(0.5, 1.0, 1.0, 20).calibrated(&budget).unwrap();
//! let run = cfg.run(&Means, &[3.0], &budget, |_, _| {}).unwrap();
//! assert!(run.epsilon <= 1.0 && run.x[0].abs() < 1.0);
//! ```

use crate::error::{OptimError, check_lr, check_non_negative, check_positive};
use crate::privacy::{
    Mechanism, PrivacyBudget, PrivateRun, add_gaussian, begin, check_finite_sum, clip_to_norm,
    example_gradients_at, noise_for_epsilon,
};
use burn::config::Config;
use gradlab_core::problem::PerExampleGradients;
use gradlab_core::solve::{Control, Iteration, Solver, solve};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// DP-SGD hyperparameters: `new(η, C, q, steps)`, σ = 1 and seed 0 until set.
#[derive(Config, Debug, Copy, PartialEq)]
pub struct DpSgdConfig {
    /// Step size η > 0.
    pub lr: f64,
    /// Per-example clipping norm C > 0.
    pub clip: f64,
    /// Poisson sampling rate q in (0, 1].
    pub sample_rate: f64,
    /// Number of steps.
    pub steps: usize,
    /// Noise multiplier σ ≥ 0 (noise std = σC).
    #[config(default = 1.0)]
    pub noise_multiplier: f64,
    /// Seed of the sampling and the noise.
    #[config(default = 0)]
    pub seed: u64,
}

impl DpSgdConfig {
    /// Validate and attach the `budget` the whole run must stay within: the method as a
    /// [`Solver`] ([`Private`]), for [`solve`] with any observer.
    pub fn init<'a>(&'a self, budget: &'a PrivacyBudget) -> crate::Result<Private<'a, Self>> {
        self.validate()?;
        Ok(Private {
            method: self,
            budget,
        })
    }

    /// Checks every hyperparameter.
    pub fn validate(&self) -> crate::Result<()> {
        check_lr(self.lr)?;
        check_positive("clip", self.clip)?;
        check_non_negative("sigma", self.noise_multiplier)?;
        if !(self.sample_rate > 0.0 && self.sample_rate <= 1.0) {
            return Err(OptimError::Invalid {
                name: "sample_rate",
                value: self.sample_rate,
                requirement: "in (0, 1]",
            });
        }
        Ok(())
    }

    /// The run as mechanisms for the accountant.
    pub fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism {
            q: self.sample_rate,
            sigma: self.noise_multiplier,
            steps: self.steps,
        }]
    }

    /// The same run with the smallest noise multiplier that stays within `budget`.
    pub fn calibrated(mut self, budget: &PrivacyBudget) -> crate::Result<Self> {
        self.validate()?;
        self.noise_multiplier =
            noise_for_epsilon(self.sample_rate, self.steps, budget.delta, budget.epsilon)?;
        Ok(self)
    }

    /// Runs DP-SGD from `x0`; `observe(step, x)` sees every iterate (step 0 is `x0`). Fails
    /// before the first step if the run would exceed `budget`. The loop is
    /// [`gradlab_core::solve::solve`] over [`Private`].
    pub fn run(
        &self,
        problem: &impl PerExampleGradients,
        x0: &[f64],
        budget: &PrivacyBudget,
        observe: impl FnMut(usize, &[f64]),
    ) -> crate::Result<PrivateRun> {
        run_private(self.init(budget)?, problem, x0, self.steps, observe)
    }
}

/// Run a private method by [`solve`] for `iters` iterations, `observe(k, x)` seeing every
/// iterate: the shared body of [`DpSgdConfig::run`] and DIFF2's.
pub(crate) fn run_private<'a, P, M>(
    mut private: Private<'a, M>,
    problem: &P,
    x0: &[f64],
    iters: usize,
    mut observe: impl FnMut(usize, &[f64]),
) -> crate::Result<PrivateRun>
where
    Private<'a, M>: Solver<P, Error = OptimError>,
    <Private<'a, M> as Solver<P>>::State: Into<PrivateRun>,
{
    let mut obs = |it: &Iteration<'_>| {
        observe(it.iteration, it.x);
        Control::Continue
    };
    let (state, _) = solve(&mut private, problem, x0, iters, &mut obs)?;
    Ok(state.into())
}

impl From<DpSgdState> for PrivateRun {
    fn from(s: DpSgdState) -> Self {
        PrivateRun {
            x: s.x,
            epsilon: s.epsilon,
        }
    }
}

/// A private method with the budget it must stay within: a [`Solver`] on problems with
/// [`PerExampleGradients`].
pub struct Private<'a, M> {
    /// The method.
    pub method: &'a M,
    /// The budget its whole run must stay within (checked before the first step).
    pub budget: &'a PrivacyBudget,
}

/// The state of a DP-SGD run.
pub struct DpSgdState {
    /// The iterate.
    pub x: Vec<f64>,
    /// ε the whole run spends.
    pub epsilon: f64,
    step: usize,
    rng: StdRng,
    sum: Vec<f64>,
    g: Vec<f64>,
}

impl<P: PerExampleGradients + ?Sized> Solver<P> for Private<'_, DpSgdConfig> {
    type State = DpSgdState;
    type Error = OptimError;

    fn init(&mut self, problem: &P, x0: &[f64]) -> crate::Result<DpSgdState> {
        let m = self.method;
        m.validate()?;
        let epsilon = begin(problem, x0, self.budget, &m.mechanisms())?;
        let d = problem.dim();
        Ok(DpSgdState {
            x: x0.to_vec(),
            epsilon,
            step: 0,
            rng: StdRng::seed_from_u64(m.seed),
            sum: vec![0.0; d],
            g: vec![0.0; d],
        })
    }

    fn converged(&self, _: &DpSgdState) -> bool {
        false
    }

    fn step(&mut self, problem: &P, st: &mut DpSgdState) -> crate::Result<()> {
        let m = self.method;
        let n = problem.examples();
        let scale = m.sample_rate * n as f64;
        st.step += 1;
        st.sum.fill(0.0);
        for i in 0..n {
            if m.sample_rate < 1.0 && st.rng.random::<f64>() >= m.sample_rate {
                continue;
            }
            example_gradients_at(problem, &st.x, &[i], &mut st.g, st.step)?;
            clip_to_norm(&mut st.g, m.clip);
            st.sum.iter_mut().zip(&st.g).for_each(|(s, v)| *s += v);
        }
        check_finite_sum(&st.sum, st.step)?;
        add_gaussian(&mut st.sum, m.noise_multiplier * m.clip, &mut st.rng);
        st.x.iter_mut()
            .zip(&st.sum)
            .for_each(|(p, s)| *p -= m.lr * s / scale);
        Ok(())
    }

    fn iteration<'a>(&self, st: &'a DpSgdState) -> Iteration<'a> {
        Iteration {
            iteration: st.step,
            ..Iteration::at(&st.x)
        }
    }
}
