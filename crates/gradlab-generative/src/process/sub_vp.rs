//! The sub-variance-preserving SDE: VP's drift f = −½β(t) with the smaller diffusion
//! g(t)² = β(t)(1 − e^{−2∫₀ᵗβ}), so that x_t | x₀ ~ N(e^{m(t)} x₀, (1 − e^{2m(t)})² I), prior
//! N(0, I). The official code has no Langevin α for it (its corrector fails there); here it is 1.

use super::vp::Beta;
use super::{Process, check_time};
use crate::Result;

/// The sub-VP SDE; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SubVp {
    beta: Beta,
}

impl SubVp {
    /// β from `beta_min` ≥ 0 to `beta_max` > `beta_min` (the default: 0.1 to 20).
    pub fn new(beta_min: f64, beta_max: f64) -> Result<Self> {
        Ok(Self {
            beta: Beta::new(beta_min, beta_max)?,
        })
    }

    /// (β_min, β_max).
    pub fn beta(&self) -> (f64, f64) {
        (self.beta.min, self.beta.max)
    }
}

impl Process for SubVp {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let m = self.beta.log_mean_coef(t);
        Ok((m.exp(), 1.0 - (2.0 * m).exp()))
    }

    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let b = self.beta.at(t);
        let (min, max) = (self.beta.min, self.beta.max);
        let discount = 1.0 - (-2.0 * min * t - (max - min) * t * t).exp();
        Ok((-0.5 * b, (b * discount).sqrt()))
    }

    fn prior_std(&self) -> f64 {
        1.0
    }
}
