//! The exact score of Gaussian data N(μ, diag(v)) under a process: p_t = N(α_t μ, α_t² v + σ_t²),
//! s = −(x − α_t μ)/(α_t² v + σ_t²), in tensor algebra (differentiable in x).

use super::{ScoreModel, rows};
use crate::process::Process;
use crate::{Result, invalid};
use burn::prelude::*;

/// Gaussian data N(μ, diag(v)) noised by a process; each example is flattened to the length of μ.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianOracle<P> {
    process: P,
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl<P: Process> GaussianOracle<P> {
    /// Data with mean `mean` and per-coordinate variances `var` (finite, ≥ 0).
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(v >= 0)` is meant: NaN must fail the check
    pub fn diagonal(process: P, mean: Vec<f64>, var: Vec<f64>) -> Result<Self> {
        if mean.len() != var.len() || mean.is_empty() {
            return invalid(format!(
                "mean of length {} and variances of length {}",
                mean.len(),
                var.len()
            ));
        }
        if mean.iter().any(|m| !m.is_finite()) || var.iter().any(|v| !(*v >= 0.0 && v.is_finite()))
        {
            return invalid("the mean must be finite and the variances finite and ≥ 0");
        }
        Ok(Self { process, mean, var })
    }

    /// The process.
    pub fn process(&self) -> &P {
        &self.process
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
        let (a, s) = self.process.marginal(t)?;
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

impl<const D: usize, P: Process> ScoreModel<D> for GaussianOracle<P> {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (m, v) = self.marginal(t)?;
        let (flat, dims) = rows(x);
        let d = self.mean.len();
        if flat.dims()[1] != d {
            return invalid(format!(
                "examples of {} values for Gaussian data of dimension {d}",
                flat.dims()[1]
            ));
        }
        let (dev, dtype) = (flat.device(), flat.dtype());
        let shift = gradlab_core::bridge::from_host(&m, [1, d], &dev)?.cast(dtype);
        let var = gradlab_core::bridge::from_host(&v, [1, d], &dev)?.cast(dtype);
        Ok(((shift - flat) / var).reshape(dims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Sde;
    use gradlab_core::bridge::{from_host, to_host};

    #[test]
    fn the_score_is_the_gradient_of_the_log_density() {
        let o = GaussianOracle::diagonal(Sde::sub_vp(), vec![0.5, -2.0], vec![0.3, 4.0]).unwrap();
        let (x, t) = ([0.7, 1.1], 0.37);
        let s = o
            .score(from_host(&x, [1, 2], &Device::flex()).unwrap(), t)
            .unwrap();
        let s = to_host(s).unwrap();
        for k in 0..2 {
            let h = 1e-6;
            let (mut xp, mut xm) = (x, x);
            xp[k] += h;
            xm[k] -= h;
            let fd = (o.log_density(&xp, t).unwrap() - o.log_density(&xm, t).unwrap()) / (2.0 * h);
            assert!((fd - s[k]).abs() < 1e-6, "{fd} vs {}", s[k]);
        }
        // Images keep their shape; examples of the wrong size are refused.
        let img = Tensor::<4>::zeros([3, 1, 1, 2], &Device::flex());
        assert_eq!(o.score(img, t).unwrap().dims(), [3, 1, 1, 2]);
        assert!(
            o.score(Tensor::<2>::zeros([1, 3], &Device::flex()), t)
                .is_err()
        );
        assert!(GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![-1.0]).is_err());
        assert!(GaussianOracle::diagonal(Sde::vp(), vec![f64::NAN], vec![1.0]).is_err());
    }
}
