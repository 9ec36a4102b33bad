//! Generative models on burn tensors end to end: score models take and return tensors
//! (batch-first, any shape — points `[n, d]`, images `[n, c, h, w]`), and every sampler is a
//! function of (model, process, x, time grid, noise, observer) in k-diffusion's manner, so a loss
//! on a sample, or on the data prediction x̂₀(x), can be differentiated with respect to the input
//! or the model's parameters (guidance, reward backpropagation, distillation).
//!
//! - [`process`]: the one schedule/SDE trait, [`Process`], that VE, VP and sub-VP ([`crate::sde::Sde`])
//!   implement and a new process (mean-reverting, OUVE, residual) implements in one file.
//! - [`model`]: [`TensorScore`], x̂₀ by Tweedie ([`denoised`]), a trained network as a score model
//!   ([`NetScore`]) and the exact score of Gaussian data ([`GaussianScore`], f64, differentiable).
//! - [`samplers`]: reverse diffusion, Euler–Maruyama, the probability-flow ODE (Euler, Heun),
//!   DDIM and DPM-Solver++(2M), each reporting every step to an observer.
//!
//! These are the same samplers as the host-vector ones of [`crate::sampler`] and [`crate::dpm`]:
//! with the same seed they give the same numbers (tested to 1e-12 on exact scores).

pub mod model;
pub mod process;
pub mod samplers;

pub use model::{GaussianScore, NetScore, TensorScore, denoised};
pub use process::Process;
pub use samplers::{Noise, StepObserver};
