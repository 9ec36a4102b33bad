//! The variance-preserving SDE (DDPM): β(t) = β_min + t(β_max − β_min), f = −½β(t), g = √β(t),
//! x_t | x₀ ~ N(e^{m(t)} x₀, (1 − e^{2m(t)}) I) with m(t) = −¼t²(β_max − β_min) − ½tβ_min,
//! prior N(0, I).

use super::{Process, check_time};
use crate::{Result, invalid};

/// The linear β schedule that VP and sub-VP share.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Beta {
    pub(crate) min: f64,
    pub(crate) max: f64,
}

impl Beta {
    /// 0 ≤ β_min < β_max (finite).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub(crate) fn new(min: f64, max: f64) -> Result<Self> {
        if !(min >= 0.0 && max > min && max.is_finite()) {
            return invalid(format!(
                "VP SDEs need 0 ≤ β_min < β_max, got β_min = {min}, β_max = {max}"
            ));
        }
        Ok(Self { min, max })
    }

    /// β(t).
    pub(crate) fn at(&self, t: f64) -> f64 {
        self.min + t * (self.max - self.min)
    }

    /// m(t) = log of the mean coefficient α_t.
    pub(crate) fn log_mean_coef(&self, t: f64) -> f64 {
        -0.25 * t * t * (self.max - self.min) - 0.5 * t * self.min
    }
}

impl Default for Beta {
    fn default() -> Self {
        Self {
            min: 0.1,
            max: 20.0,
        }
    }
}

/// The VP SDE; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vp {
    beta: Beta,
}

impl Vp {
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

impl Process for Vp {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let m = self.beta.log_mean_coef(t);
        Ok((m.exp(), (1.0 - (2.0 * m).exp()).sqrt()))
    }

    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let b = self.beta.at(t);
        Ok((-0.5 * b, b.sqrt()))
    }

    fn prior_std(&self) -> f64 {
        1.0
    }

    /// 1 − β_i = a² of [`Process::discretize`] (`sde.alphas` in the official code).
    fn langevin_alpha(&self, t: f64, t_next: f64) -> Result<f64> {
        let (f, _) = self.discretize(t, t_next)?;
        Ok((1.0 + f).powi(2))
    }
}
