//! The analytic theory of "Diffusion Models Generate Images Like Painters: an Analytical Theory
//! of Outline First, Details Later" (Wang & Vastola, arXiv 2303.02490): for Gaussian data
//! N(μ, Σ), Σ = Σ_k λ_k u_k u_kᵀ, the probability-flow ODE is solved in closed form,
//!
//! x_t = α_t μ + Σ_k √((α_t² λ_k + σ_t²)/(α_s² λ_k + σ_s²)) ⟨x_s − α_s μ, u_k⟩ u_k,
//!
//! and the denoiser is x̂₀(x_t) = μ + Σ_k α_t λ_k/(α_t² λ_k + σ_t²) ⟨x_t − α_t μ, u_k⟩ u_k.
//! Along a trajectory the x̂₀ component on u_k has reached the fraction
//! √(ρ_t λ_k/(1 + ρ_t λ_k)) of its final value, ρ_t = α_t²/σ_t² the signal-to-noise ratio: the
//! high-variance directions settle first ("outline first, details later"). The early part of
//! sampling can therefore be skipped ("teleported") with the closed form.
//!
//! ```
//! use gradlab_generative::{painters::GaussianData, process::Sde};
//! let data = GaussianData::diagonal(vec![0.0, 0.0], vec![4.0, 0.01]).unwrap();
//! let sde = Sde::vp();
//! // The high-variance direction commits (90% of its final x̂₀) much earlier in sampling.
//! let (early, late) = (data.commit_time(&sde, 0, 0.9).unwrap(), data.commit_time(&sde, 1, 0.9).unwrap());
//! assert!(early > late);
//! ```

use crate::process::Process;
use crate::score::ScoreModel;
use crate::{Result, invalid};
use burn::prelude::*;
use gradlab_core::bridge::from_host;

/// Gaussian data N(μ, U diag(λ) Uᵀ).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianData {
    mean: Vec<f64>,
    eigenvalues: Vec<f64>,
    /// Eigenvectors as the columns of a d × d row-major matrix.
    eigenvectors: Vec<f64>,
}

impl GaussianData {
    /// Data with eigenvalues λ_k ≥ 0 and orthonormal eigenvectors (columns of the row-major d × d
    /// `eigenvectors`).
    pub fn new(mean: Vec<f64>, eigenvalues: Vec<f64>, eigenvectors: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        if d == 0 || eigenvalues.len() != d || eigenvectors.len() != d * d {
            return invalid(format!(
                "mean of length {d}, {} eigenvalues and {} eigenvector entries do not fit",
                eigenvalues.len(),
                eigenvectors.len()
            ));
        }
        if eigenvalues.iter().any(|l| !(*l >= 0.0 && l.is_finite())) {
            return invalid("eigenvalues must be finite and ≥ 0");
        }
        for a in 0..d {
            for b in 0..d {
                let dot: f64 = (0..d)
                    .map(|i| eigenvectors[i * d + a] * eigenvectors[i * d + b])
                    .sum();
                let want = if a == b { 1.0 } else { 0.0 };
                if (dot - want).abs() > 1e-8 {
                    return invalid("the eigenvectors are not orthonormal");
                }
            }
        }
        Ok(Self {
            mean,
            eigenvalues,
            eigenvectors,
        })
    }

    /// Axis-aligned data N(μ, diag(λ)).
    pub fn diagonal(mean: Vec<f64>, var: Vec<f64>) -> Result<Self> {
        let d = mean.len();
        let mut e = vec![0.0; d * d];
        (0..d).for_each(|i| e[i * d + i] = 1.0);
        Self::new(mean, var, e)
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The eigenvalues λ_k.
    pub fn eigenvalues(&self) -> &[f64] {
        &self.eigenvalues
    }

    /// Apply per-direction gains to x − α μ and add β μ: β μ + Σ_k g_k ⟨x − α μ, u_k⟩ u_k, for
    /// the examples of `x` (any shape, each flattened to the data's dimension), in tensor algebra
    /// on `x`'s device (differentiable in x).
    fn affine<const D: usize>(
        &self,
        x: Tensor<D>,
        alpha: f64,
        beta: f64,
        gains: &[f64],
    ) -> Result<Tensor<D>> {
        let (flat, dims) = crate::score::rows(x);
        let d = self.dim();
        if flat.dims()[1] != d {
            return invalid(format!(
                "points of dimension {} for data of dimension {d}",
                flat.dims()[1]
            ));
        }
        let (dev, dtype) = (flat.device(), flat.dtype());
        let up = |v: &[f64], shape: [usize; 2]| -> Result<Tensor<2>> {
            Ok(from_host(v, shape, &dev)?.cast(dtype))
        };
        let (mean, u) = (up(&self.mean, [1, d])?, up(&self.eigenvectors, [d, d])?);
        let c = (flat - mean.clone() * alpha).matmul(u.clone()) * up(gains, [1, d])?;
        Ok((c.matmul(u.transpose()) + mean * beta).reshape(dims))
    }

    /// The exact probability-flow map of points `x` at time `s` to time `t` (either direction).
    pub fn flow<const D: usize>(
        &self,
        process: &impl Process,
        x: &Tensor<D>,
        s: f64,
        t: f64,
    ) -> Result<Tensor<D>> {
        let (a_s, s_s) = process.marginal(s)?;
        let (a_t, s_t) = process.marginal(t)?;
        let gains: Vec<f64> = self
            .eigenvalues
            .iter()
            .map(|l| ((a_t * a_t * l + s_t * s_t) / (a_s * a_s * l + s_s * s_s)).sqrt())
            .collect();
        self.affine(x.clone(), a_s, a_t, &gains)
    }

    /// The exact denoiser x̂₀(x_t) = E[x₀ | x_t].
    pub fn denoise<const D: usize>(
        &self,
        process: &impl Process,
        x: &Tensor<D>,
        t: f64,
    ) -> Result<Tensor<D>> {
        let (a, s) = process.marginal(t)?;
        let gains: Vec<f64> = self
            .eigenvalues
            .iter()
            .map(|l| a * l / (a * a * l + s * s))
            .collect();
        self.affine(x.clone(), a, 1.0, &gains)
    }

    /// The fraction √(ρλ_k/(1 + ρλ_k)) of its final value that the x̂₀ component along u_k has
    /// reached at time t (ρ = α_t²/σ_t²; 1 at t = 0).
    pub fn progress(&self, process: &impl Process, k: usize, t: f64) -> Result<f64> {
        let l = *self
            .eigenvalues
            .get(k)
            .ok_or_else(|| crate::GenError::Invalid(format!("no eigen-direction {k}")))?;
        let (a, s) = process.marginal(t)?;
        if s == 0.0 {
            return Ok(1.0);
        }
        let r = a * a / (s * s) * l;
        Ok((r / (1.0 + r)).sqrt())
    }

    /// The time (from t = 1 going down) at which direction k's progress reaches `level` ∈ (0, 1),
    /// by bisection; later commitment means a smaller time.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn commit_time(&self, process: &impl Process, k: usize, level: f64) -> Result<f64> {
        if !(level > 0.0 && level < 1.0) {
            return invalid(format!("commit level {level} must lie in (0, 1)"));
        }
        if self.progress(process, k, 1.0)? >= level {
            return Ok(1.0);
        }
        let (mut lo, mut hi) = (0.0, 1.0); // progress(lo) ≥ level > progress(hi)
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if self.progress(process, k, mid)? >= level {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// This data's exact score model under `process`.
    pub fn oracle<P: Process>(&self, process: P) -> GaussianDataOracle<P> {
        GaussianDataOracle {
            data: self.clone(),
            process,
        }
    }
}

/// The exact score of [`GaussianData`] noised by a process: −Σ_t⁻¹(x − α_t μ) with
/// Σ_t = U diag(α_t² λ + σ_t²) Uᵀ (differentiable in x).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianDataOracle<P> {
    data: GaussianData,
    process: P,
}

impl<const D: usize, P: Process> ScoreModel<D> for GaussianDataOracle<P> {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (a, s) = self.process.marginal(t)?;
        let gains: Vec<f64> = self
            .data
            .eigenvalues
            .iter()
            .map(|l| -1.0 / (a * a * l + s * s))
            .collect();
        self.data.affine(x, a, 0.0, &gains)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ode::Solver;
    use crate::points::{Rows, from_rows};
    use crate::process::Sde;
    use crate::sampling::{Unobserved, pf_ode};

    /// A rotated 3D Gaussian: eigenvectors from a Householder reflection.
    fn rotated() -> GaussianData {
        let v = [1.0f64, 2.0, -1.0];
        let n2: f64 = v.iter().map(|x| x * x).sum();
        let mut h = vec![0.0; 9];
        for i in 0..3 {
            for j in 0..3 {
                h[i * 3 + j] = if i == j { 1.0 } else { 0.0 } - 2.0 * v[i] * v[j] / n2;
            }
        }
        GaussianData::new(vec![1.0, -0.5, 2.0], vec![9.0, 1.0, 0.01], h).unwrap()
    }

    #[test]
    fn closed_form_flow_agrees_with_rk45() {
        let data = rotated();
        for sde in [Sde::vp(), Sde::ve()] {
            let oracle = data.oracle(sde);
            let x = from_rows(&[0.4, -1.2, 0.9, 2.0, 0.1, -0.3], 2, 3).unwrap() * sde.prior_std();
            let exact = Rows::of(&data.flow(&sde, &x, 1.0, 0.01).unwrap()).unwrap();
            let solver = Solver::Rk45 {
                rtol: 1e-10,
                atol: 1e-10,
            };
            let (num, _) = pf_ode(&oracle, &sde, x, (1.0, 0.01), solver, &mut Unobserved).unwrap();
            let num = Rows::of(&num).unwrap();
            for (a, b) in exact.data.iter().zip(&num.data) {
                assert!(
                    (a - b).abs() < 1e-6 * a.abs().max(1.0),
                    "{sde:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn denoiser_is_the_flow_to_zero_at_the_end_and_directions_commit_by_variance() {
        let data = rotated();
        let sde = Sde::vp();
        let x = from_rows(&[0.3, 0.2, -0.1], 1, 3).unwrap();
        // The flow from t to 0 and the denoiser agree only at t → 0; at t = 0 both are the identity.
        let d0 = Rows::of(&data.denoise(&sde, &x, 0.0).unwrap()).unwrap();
        for (a, b) in d0.data.iter().zip(&Rows::of(&x).unwrap().data) {
            assert!((a - b).abs() < 1e-12);
        }
        let times: Vec<f64> = (0..3)
            .map(|k| data.commit_time(&sde, k, 0.9).unwrap())
            .collect();
        assert!(times[0] > times[1] && times[1] > times[2], "{times:?}");
        let p = data.progress(&sde, 0, times[0]).unwrap();
        assert!((p - 0.9).abs() < 1e-9);
        assert!(data.commit_time(&sde, 0, 1.0).is_err());
        assert!(data.progress(&sde, 5, 0.5).is_err());
    }

    #[test]
    fn bad_data_are_errors() {
        assert!(GaussianData::new(vec![0.0; 2], vec![1.0, 1.0], vec![1.0, 1.0, 0.0, 1.0]).is_err());
        assert!(GaussianData::diagonal(vec![0.0], vec![-1.0]).is_err());
        assert!(GaussianData::diagonal(vec![0.0], vec![1.0, 2.0]).is_err());
        let d = GaussianData::diagonal(vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
        let three = from_rows(&[0.0; 3], 1, 3).unwrap();
        assert!(d.flow(&Sde::vp(), &three, 1.0, 0.5).is_err());
    }
}
