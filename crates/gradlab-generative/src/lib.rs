//! # gradlab-generative
//!
//! Score-based and flow generative models ("Score-Based Generative Modeling through Stochastic
//! Differential Equations", Song et al., ICLR 2021, and the papers built on it).
//!
//! - [`sde`]: the VE, VP and sub-VP SDEs behind one type, [`sde::Sde`], with drift, diffusion,
//!   marginals x_t | x₀ ~ N(α_t x₀, σ_t² I), priors and their DDPM/SMLD discretisations.
//!   **Time runs from t = 0 (data) to t = 1 (prior)**; samplers integrate backwards from 1 to a
//!   small t_ε > 0.
//! - [`score`]: what a sampler queries — [`score::ScoreModel`] over batches of points — and
//!   oracles with exact scores: Gaussian data ([`score::GaussianOracle`]) and 2D Gaussian mixtures
//!   ([`score::GmmOracle`]).
//! - [`sampler`]: Euler–Maruyama and reverse-diffusion predictors, the Langevin corrector, the
//!   predictor–corrector sampler, and the probability-flow ODE with Euler, Heun and adaptive
//!   Dormand–Prince RK45 ([`ode`]) counting function evaluations; DDIM and DPM-Solver++(2M) in
//!   the data-prediction form ([`dpm`]); [`sampling::Sampler`] names them all.
//! - [`training`]: denoising score matching with score, ε, x₀ or v prediction (optionally
//!   likelihood-weighted), and a trained time-conditioned MLP as a [`score::ScoreModel`].
//! - [`painters`]: the closed-form probability flow of Gaussian data.
//! - [`rectified_flow`]: flow matching on couplings, transport, reflow, straightness, one-step
//!   distillation, and the exact velocity between Gaussians.
//! - [`likelihood`]: exact log-likelihoods through the probability-flow ODE (exact or Hutchinson
//!   divergence), bits per dimension with uniform dequantization.
//! - [`images`]: image sets as batches in [−1, 1] and back, and as integer levels.
//! - [`metrics`]: sliced Wasserstein distance, multi-bandwidth MMD, energy distance, moments;
//!   [`image_metrics`]: Fréchet distance and KID of images on a classifier's features.
//!
//! - [`diffusion`]: the same models and samplers on burn tensors end to end (any batch shape,
//!   differentiable through samples and x̂₀), with the one schedule/SDE trait
//!   [`diffusion::Process`].
//!
//! Points travel as [`Batch`]es: `n` points of dimension `d`, row-major f64 (the host path; the
//! tensor path of [`diffusion`] will replace it).

pub mod diffusion;
pub mod dpm;
pub mod image_metrics;
pub mod images;
pub mod likelihood;
pub mod metrics;
pub mod ode;
/// The closed-form Gaussian theory of "Diffusion Models Generate Images Like Painters".
pub mod painters;
pub mod rectified_flow;
pub mod sampler;
pub mod sampling;
pub mod saved;
pub mod score;
pub mod sde;
pub mod training;

/// Errors of generative-model computations.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GenError {
    /// An argument outside its range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A saved model could not be written or read, or does not fit.
    #[error("{0}")]
    Saved(String),
    /// A tensor could not be read back, or a vector does not fit.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
    /// A model returned non-finite values.
    #[error("non-finite {what} at step {step} (t = {t})")]
    NonFinite {
        /// What was not finite.
        what: &'static str,
        /// The sampler step.
        step: usize,
        /// The time.
        t: f64,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, GenError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(GenError::Invalid(msg.into()))
}

/// `n` points of dimension `d`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Number of points.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// `n · d` values.
    pub data: Vec<f64>,
}

impl Batch {
    /// A batch from row-major values; `data.len()` must be `n · d`.
    pub fn new(n: usize, d: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != n * d || d == 0 {
            return invalid(format!(
                "{} values do not form {n} points of dimension {d}",
                data.len()
            ));
        }
        Ok(Self { n, d, data })
    }

    /// `n` standard normal points of dimension `d`.
    pub fn gaussian(n: usize, d: usize, rng: &mut impl rand::Rng) -> Self {
        let data = (0..n * d)
            .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        Self { n, d, data }
    }

    /// 2D points.
    pub fn from_points(points: &[[f64; 2]]) -> Self {
        Self {
            n: points.len(),
            d: 2,
            data: points.iter().flatten().copied().collect(),
        }
    }

    /// self + h·k (same shape).
    pub fn axpy(&self, h: f64, k: &Batch) -> Batch {
        Batch {
            data: self
                .data
                .iter()
                .zip(&k.data)
                .map(|(a, b)| a + h * b)
                .collect(),
            ..*self
        }
    }

    /// An error unless the points have dimension `dim`.
    pub fn check_dim(&self, dim: usize) -> Result<()> {
        if self.d == dim {
            Ok(())
        } else {
            invalid(format!(
                "points of dimension {} for a model of dimension {dim}",
                self.d
            ))
        }
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// True if every value is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }

    /// Per-coordinate mean.
    pub fn mean(&self) -> Vec<f64> {
        let mut m = vec![0.0; self.d];
        for i in 0..self.n {
            m.iter_mut().zip(self.row(i)).for_each(|(a, b)| *a += b);
        }
        m.iter_mut().for_each(|a| *a /= self.n.max(1) as f64);
        m
    }

    /// Sample covariance (d × d, row-major, divisor n − 1).
    pub fn covariance(&self) -> Vec<f64> {
        let (d, m) = (self.d, self.mean());
        let mut c = vec![0.0; d * d];
        for i in 0..self.n {
            let r = self.row(i);
            for a in 0..d {
                for b in 0..d {
                    c[a * d + b] += (r[a] - m[a]) * (r[b] - m[b]);
                }
            }
        }
        c.iter_mut().for_each(|v| *v /= (self.n.max(2) - 1) as f64);
        c
    }
}
