//! Score functions ∇ₓ log p_t(x) of the noised data, as samplers query them, and two oracles whose
//! scores are exact: Gaussian data and 2D Gaussian mixtures. Under x_t = α_t x₀ + σ_t ε a Gaussian
//! N(μ, Σ) stays Gaussian, N(α_t μ, α_t² Σ + σ_t² I), and a mixture stays a mixture of such
//! components, so the oracles test samplers and likelihoods with no training.
//!
//! ```
//! use gradlab_generative::{Batch, score::{GaussianOracle, ScoreModel}, sde::Sde};
//! let oracle = GaussianOracle::diagonal(Sde::vp(), vec![1.0, -1.0], vec![0.5, 2.0]).unwrap();
//! let x = Batch::new(1, 2, vec![1.0, -1.0]).unwrap();
//! // At t = 0 the mean has zero score.
//! let s = oracle.score(&x, 0.0).unwrap();
//! assert!(s.data.iter().all(|v| v.abs() < 1e-12));
//! ```

use crate::sde::Sde;
use crate::{Batch, Result, invalid};
use gradlab_data::toy2d::Gmm2;

/// A score model: ∇ₓ log p_t at each point of a batch.
pub trait ScoreModel {
    /// The data dimension.
    fn dim(&self) -> usize;
    /// The SDE the model was trained for.
    fn sde(&self) -> Sde;
    /// ∇ₓ log p_t(x) for every point of `x`.
    fn score(&self, x: &Batch, t: f64) -> Result<Batch>;
}

/// Data N(μ, diag(v)): p_t = N(α_t μ, diag(α_t² v + σ_t²)).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianOracle {
    sde: Sde,
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl GaussianOracle {
    /// Gaussian data with mean `mean` and per-coordinate variances `var` (≥ 0).
    pub fn diagonal(sde: Sde, mean: Vec<f64>, var: Vec<f64>) -> Result<Self> {
        sde.validate()?;
        if mean.len() != var.len() || mean.is_empty() {
            return invalid(format!(
                "mean of length {} and variances of length {}",
                mean.len(),
                var.len()
            ));
        }
        if var.iter().any(|v| !(*v >= 0.0 && v.is_finite())) {
            return invalid("variances must be finite and ≥ 0");
        }
        Ok(Self { sde, mean, var })
    }

    /// The data mean.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The data variances.
    pub fn var(&self) -> &[f64] {
        &self.var
    }

    /// Mean and variances of p_t.
    pub fn marginal(&self, t: f64) -> Result<(Vec<f64>, Vec<f64>)> {
        let (a, s) = self.sde.marginal(t)?;
        Ok((
            self.mean.iter().map(|m| a * m).collect(),
            self.var.iter().map(|v| a * a * v + s * s).collect(),
        ))
    }

    /// log p_t(x) of one point.
    pub fn log_density(&self, x: &[f64], t: f64) -> Result<f64> {
        let (m, v) = self.marginal(t)?;
        Ok(x.iter()
            .zip(m.iter().zip(&v))
            .map(|(x, (m, v))| {
                -0.5 * (2.0 * std::f64::consts::PI * v).ln() - (x - m).powi(2) / (2.0 * v)
            })
            .sum())
    }
}

impl ScoreModel for GaussianOracle {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn sde(&self) -> Sde {
        self.sde
    }
    fn score(&self, x: &Batch, t: f64) -> Result<Batch> {
        x.check_dim(self.dim())?;
        let (m, v) = self.marginal(t)?;
        let d = x.d;
        let data = x
            .data
            .iter()
            .enumerate()
            .map(|(k, xv)| -(xv - m[k % d]) / v[k % d])
            .collect();
        Ok(Batch { data, ..*x })
    }
}

/// A 2D Gaussian mixture as data: each component N(m, C) becomes N(α_t m, α_t² C + σ_t² I).
#[derive(Debug, Clone, PartialEq)]
pub struct GmmOracle {
    sde: Sde,
    data: Gmm2,
}

impl GmmOracle {
    /// The mixture `data` under `sde`.
    pub fn new(sde: Sde, data: Gmm2) -> Result<Self> {
        sde.validate()?;
        Ok(Self { sde, data })
    }

    /// The data distribution.
    pub fn data(&self) -> &Gmm2 {
        &self.data
    }

    /// The noised mixture p_t.
    pub fn at(&self, t: f64) -> Result<Gmm2> {
        let (a, s) = self.sde.marginal(t)?;
        let means = self
            .data
            .means()
            .iter()
            .map(|m| [a * m[0], a * m[1]])
            .collect();
        let covs = self
            .data
            .covs()
            .iter()
            .map(|c| {
                [
                    [a * a * c[0][0] + s * s, a * a * c[0][1]],
                    [a * a * c[1][0], a * a * c[1][1] + s * s],
                ]
            })
            .collect();
        Gmm2::new(self.data.weights().to_vec(), means, covs)
            .map_err(|e| crate::GenError::Invalid(e.to_string()))
    }
}

impl ScoreModel for GmmOracle {
    fn dim(&self) -> usize {
        2
    }
    fn sde(&self) -> Sde {
        self.sde
    }
    fn score(&self, x: &Batch, t: f64) -> Result<Batch> {
        x.check_dim(2)?;
        let p = self.at(t)?;
        let data = (0..x.n)
            .flat_map(|i| {
                let r = x.row(i);
                p.score([r[0], r[1]])
            })
            .collect();
        Ok(Batch { data, ..*x })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_score_is_the_gradient_of_its_log_density() {
        let o = GaussianOracle::diagonal(Sde::sub_vp(), vec![0.5, -2.0], vec![0.3, 4.0]).unwrap();
        let x = [0.7, 1.1];
        let t = 0.37;
        let s = o.score(&Batch::new(1, 2, x.to_vec()).unwrap(), t).unwrap();
        for k in 0..2 {
            let h = 1e-6;
            let mut xp = x;
            let mut xm = x;
            xp[k] += h;
            xm[k] -= h;
            let fd = (o.log_density(&xp, t).unwrap() - o.log_density(&xm, t).unwrap()) / (2.0 * h);
            assert!((fd - s.data[k]).abs() < 1e-6, "{fd} vs {}", s.data[k]);
        }
    }

    #[test]
    fn gmm_oracle_noises_each_component() {
        let g = gradlab_data::toy2d::Gmm2::isotropic(vec![[2.0, 0.0], [-2.0, 0.0]], 0.5).unwrap();
        let o = GmmOracle::new(Sde::vp(), g).unwrap();
        // At t = 1 the VP mixture is close to the prior N(0, I) (α(1) ≈ 0.0066).
        let p1 = o.at(1.0).unwrap();
        assert!(
            (p1.log_density([0.3, -0.2]) - Sde::vp().prior_log_density(&[0.3, -0.2])).abs() < 1e-2
        );
        let s = o
            .score(&Batch::new(1, 2, vec![0.0, 1.0]).unwrap(), 0.0)
            .unwrap();
        // Symmetric mixture: no pull along x at x = 0; pull toward 0 along y with variance 0.25.
        assert!(s.data[0].abs() < 1e-12 && (s.data[1] + 4.0).abs() < 1e-9);
        assert!(
            o.score(&Batch::new(1, 3, vec![0.0; 3]).unwrap(), 0.5)
                .is_err()
        );
    }
}
