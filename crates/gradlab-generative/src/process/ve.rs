//! The variance-exploding SDE (SMLD): f = 0, σ(t) = σ_min (σ_max/σ_min)ᵗ,
//! g(t) = σ(t)·√(2 ln(σ_max/σ_min)), x_t | x₀ ~ N(x₀, σ(t)² I), prior N(0, σ_max² I).

use super::{Process, check_time};
use crate::{Result, invalid};

/// The VE SDE; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ve {
    sigma_min: f64,
    sigma_max: f64,
}

impl Ve {
    /// σ levels from `sigma_min` > 0 to `sigma_max` > `sigma_min` (finite).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn new(sigma_min: f64, sigma_max: f64) -> Result<Self> {
        if !(sigma_min > 0.0 && sigma_max > sigma_min && sigma_max.is_finite()) {
            return invalid(format!(
                "VE SDE needs 0 < σ_min < σ_max, got σ_min = {sigma_min}, σ_max = {sigma_max}"
            ));
        }
        Ok(Self {
            sigma_min,
            sigma_max,
        })
    }

    /// σ_min.
    pub fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    /// σ_max.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    fn sigma(&self, t: f64) -> f64 {
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }
}

impl Default for Ve {
    /// The paper's σ_min = 0.01, σ_max = 50.
    fn default() -> Self {
        Self {
            sigma_min: 0.01,
            sigma_max: 50.0,
        }
    }
}

impl Process for Ve {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        Ok((1.0, self.sigma(t)))
    }

    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let ratio = self.sigma_max / self.sigma_min;
        Ok((0.0, self.sigma(t) * (2.0 * ratio.ln()).sqrt()))
    }

    fn prior_std(&self) -> f64 {
        self.sigma_max
    }

    /// 1e-5, the official VE default.
    fn t_eps(&self) -> f64 {
        1e-5
    }
}
