//! # gradlab-generative
//!
//! Score-based and flow generative models ("Score-Based Generative Modeling through Stochastic
//! Differential Equations", Song et al., ICLR 2021, and the papers built on it), on burn tensors
//! end to end: models and samplers take and return tensors (batch first; points `[n, d]`, images
//! `[n, c, h, w]`) on any device, so a loss on a sample or on x̂₀ can be differentiated with respect
//! to the input or a model's parameters (guidance, reward backpropagation, distillation).
//!
//! Where things go:
//!
//! - [`process`]: the one schedule/SDE trait [`process::Process`] and the VE, VP and sub-VP
//!   SDEs, one file each (**time runs from t = 0, data, to t = 1, prior**) — a new process is a
//!   new file there;
//! - [`score`]: the score-model trait [`score::ScoreModel`], x̂₀ by Tweedie, a trained network
//!   ([`score::NetScore`]) and exact oracles (Gaussian data, 2D mixtures) — a new model kind goes
//!   there;
//! - [`sampling`]: samplers as functions of (model, process, x, grid, noise, observer) — reverse
//!   diffusion, predictor–corrector, Euler–Maruyama, the probability-flow ODE, DDIM and
//!   DPM-Solver++ with its step-by-step scheduler — and [`sampling::Sampler`], the enum that
//!   names them — a new sampler goes there;
//! - [`ode`]: the ODE solvers (Euler, Heun, adaptive RK45) the deterministic samplers share;
//! - [`training`]: denoising score matching with score, ε, x₀ or v prediction;
//! - [`rectified_flow`]: velocity fields, flow matching, transport, reflow, straightness,
//!   one-step distillation;
//! - [`conditional`]: conditional ε-models for restoration (a network that also reads the
//!   degraded input), their training and a direct-regression baseline;
//! - [`resfusion`]: Resfusion's residual process, resnoise target, truncated schedule and
//!   5-step restoration;
//! - [`flowchef`]: FlowChef's gradient-skipping guidance of a rectified flow and the DPS-style
//!   baseline that backpropagates through it;
//! - [`unlearning`]: DoCo's concept unlearning (adversarial concept-domain correction, the
//!   concept-preserving gradient) for class-conditional models;
//! - [`alignprop`]: AlignProp's truncated reward backpropagation through a DDIM-η sampler, with
//!   the official draw of K and gradient checkpointing;
//! - [`fdistill`]: f-distill's weighting — h(r) per f-divergence, the density ratio from a
//!   discriminator, per-time-bin normalisation — and its score-difference loss;
//! - [`sgmse`]: SGMSE+ speech enhancement — the compressed-spectrogram representation, the OUVE
//!   SDE's training loss, predictor–corrector sampling in the official order, waveform
//!   enhancement and the predictive baseline;
//! - [`likelihood`]: exact log-likelihoods through the probability-flow ODE, bits per dimension;
//! - [`painters`]: the closed-form probability flow of Gaussian data;
//! - [`points`], [`images`]: point sets and images as tensors and back;
//! - [`metrics`], [`image_metrics`]: sliced Wasserstein, MMD, energy distance, exact W₂, mode
//!   coverage; Fréchet distance and KID on a classifier's features;
//! - [`saved`]: trained networks saved and loaded with a model card.
//!
//! ```
//! use gradlab_generative::{process::Sde, sampling::Sampler, score::GaussianOracle};
//! // Exact scores of N(1, 0.25) data: 10 DPM-Solver++ steps land on it.
//! let model = GaussianOracle::diagonal(Sde::vp(), vec![1.0], vec![0.25]).unwrap();
//! let (x, nfe) = Sampler::Dpm.draw(&model, &Sde::vp(), [4000, 1], 10, 0).unwrap();
//! let mean = gradlab_core::bridge::scalar_to_host(x.mean()).unwrap();
//! assert!((mean - 1.0).abs() < 0.03 && nfe == 10);
//! ```

pub mod alignprop;
pub mod conditional;
pub mod fdistill;
pub mod flowchef;
pub mod image_metrics;
pub mod images;
pub mod likelihood;
pub mod metrics;
pub mod ode;
/// The closed-form Gaussian theory of "Diffusion Models Generate Images Like Painters".
pub mod painters;
pub mod points;
pub mod process;
pub mod rectified_flow;
pub mod resfusion;
pub mod sampling;
pub mod saved;
pub mod score;
pub mod sgmse;
pub mod training;
pub mod unlearning;

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
