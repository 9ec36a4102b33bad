//! The one schedule/SDE trait: a forward process dx = f(t)·x dt + g(t) dw on t ∈ [0, 1] (data at
//! 0, prior at 1) with Gaussian marginals x_t | x₀ ~ N(α_t x₀, σ_t² I). VE, VP and sub-VP
//! ([`Sde`]) implement it; a new process implements [`Process::marginal`] and
//! [`Process::coefficients`] in its own file and inherits the chain step and the priors.
//!
//! ```
//! use gradlab_generative::diffusion::Process;
//! use gradlab_generative::sde::Sde;
//! /// A toy process with α = 1 − t, σ = t (rectified flow's path, as an SDE-free schedule).
//! struct Linear;
//! impl Process for Linear {
//!     fn marginal(&self, t: f64) -> gradlab_generative::Result<(f64, f64)> { Ok((1.0 - t, t)) }
//!     fn coefficients(&self, t: f64) -> gradlab_generative::Result<(f64, f64)> {
//!         Ok((-1.0 / (1.0 - t), (2.0 * t / (1.0 - t)).sqrt()))
//!     }
//!     fn prior_std(&self) -> f64 { 1.0 }
//! }
//! let (f, g) = Linear.discretize(0.5, 0.25).unwrap(); // the chain step of the new process
//! assert!(f < 0.0 && g > 0.0);
//! assert_eq!(Sde::vp().marginal(0.3).unwrap(), Process::marginal(&Sde::vp(), 0.3).unwrap());
//! ```

use crate::sde::Sde;
use crate::{Result, invalid};

/// A forward noising process with Gaussian marginals; see the module docs.
pub trait Process {
    /// (α_t, σ_t) with x_t | x₀ ~ N(α_t x₀, σ_t² I).
    fn marginal(&self, t: f64) -> Result<(f64, f64)>;
    /// (f(t), g(t)): the drift is f(t)·x, the diffusion g(t).
    fn coefficients(&self, t: f64) -> Result<(f64, f64)>;
    /// The prior's standard deviation (the prior is N(0, σ² I)).
    fn prior_std(&self) -> f64;
    /// Where samplers stop (1e-3 unless the process says otherwise).
    fn t_eps(&self) -> f64 {
        1e-3
    }
    /// The Langevin corrector's α at grid time `t` (next grid time `t_next`): 1 unless the process
    /// says otherwise ([`Sde::langevin_alpha`]: 1 − β_i for VP).
    fn langevin_alpha(&self, _t: f64, _t_next: f64) -> Result<f64> {
        Ok(1.0)
    }
    /// One step of the discrete chain from `t` to `t_next < t`, as (a − 1, G) with
    /// a = α(t)/α(t_next) and G² = σ(t)² − a²σ(t_next)² (σ := 0 at t_next = 0): the
    /// reverse-diffusion predictor's x ← (2 − a)·x + G²·s + G·z ([`Sde::discretize`]).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn discretize(&self, t: f64, t_next: f64) -> Result<(f64, f64)> {
        if !(t_next < t) {
            return invalid(format!(
                "a chain step goes back in time: t_next = {t_next} must be below t = {t}"
            ));
        }
        let (a_t, s_t) = self.marginal(t)?;
        let (a_n, s_n) = self.marginal(t_next)?;
        let s_n = if t_next == 0.0 { 0.0 } else { s_n };
        let a = a_t / a_n;
        Ok((a - 1.0, (s_t * s_t - a * a * s_n * s_n).max(0.0).sqrt()))
    }
}

impl Process for Sde {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        Sde::marginal(self, t)
    }
    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        Sde::coefficients(self, t)
    }
    fn prior_std(&self) -> f64 {
        Sde::prior_std(self)
    }
    fn t_eps(&self) -> f64 {
        Sde::t_eps(self)
    }
    fn langevin_alpha(&self, t: f64, t_next: f64) -> Result<f64> {
        Sde::langevin_alpha(self, t, t_next)
    }
}
