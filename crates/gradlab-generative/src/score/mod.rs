//! Score models ∇ₓ log p_t(x) on burn tensors: a batch of any shape (the examples first: points
//! `[n, d]`, images `[n, c, h, w]`) in, the score of the same shape out, differentiable with
//! respect to x and to a model's tracked parameters on an autodiff device. x̂₀ by Tweedie
//! ([`denoised`]).
//!
//! - [`NetScore`]: a trained time-conditioned network, whatever it predicts (score, ε, x₀, v);
//! - [`GaussianOracle`], [`GmmOracle`]: exact scores of Gaussian data and of 2D Gaussian mixtures
//!   under any [`Process`] (f64; under x_t = α_t x₀ + σ_t ε a Gaussian stays Gaussian and a
//!   mixture a mixture), which test samplers and likelihoods with no training;
//! - [`Counted`]: any model with a count of its evaluations (the NFE of a sampler).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::score::{GaussianOracle, denoised};
//! // N(2, 0.25) data under VP; x̂₀ = E[x₀ | x_t] is linear in x_t and its gradient is exact.
//! let model = GaussianOracle::diagonal(Sde::vp(), vec![2.0], vec![0.25]).unwrap();
//! let dev = Device::flex().autodiff();
//! let x = gradlab_core::bridge::from_host(&[0.5, -1.0], [2, 1], &dev).unwrap().require_grad();
//! let x0 = denoised(&model, &Sde::vp(), x.clone(), 0.5).unwrap();
//! let g = x.grad(&x0.sum().backward()).unwrap();
//! let g = gradlab_core::bridge::to_host(g).unwrap();
//! assert!(g[0] > 0.0 && (g[0] - g[1]).abs() < 1e-12); // the same slope at both points
//! ```

mod gaussian;
mod gmm;
mod net;

pub use gaussian::GaussianOracle;
pub use gmm::GmmOracle;
pub use net::NetScore;
pub(crate) use net::check_width;

use crate::Result;
use crate::process::Process;
use burn::prelude::*;
use std::cell::Cell;

/// A score model on tensors; see the module docs.
pub trait ScoreModel<const D: usize> {
    /// ∇ₓ log p_t(x) for the batch `x` (first dimension: the examples), of the same shape.
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>>;
}

impl<const D: usize, M: ScoreModel<D> + ?Sized> ScoreModel<D> for &M {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        (**self).score(x, t)
    }
}

/// The data prediction x̂₀ = (x + σ_t² s(x, t)) / α_t (Tweedie's formula).
pub fn denoised<const D: usize>(
    model: &impl ScoreModel<D>,
    process: &impl Process,
    x: Tensor<D>,
    t: f64,
) -> Result<Tensor<D>> {
    let (a, s) = process.marginal(t)?;
    let score = model.score(x.clone(), t)?;
    Ok(div(x + score * (s * s), a))
}

/// A model and the number of times it was evaluated.
///
/// ```
/// use gradlab_generative::process::Sde;
/// use gradlab_generative::sampling::Sampler;
/// use gradlab_generative::score::{Counted, GaussianOracle};
/// let model = Counted::new(GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1.0]).unwrap());
/// Sampler::Pc.draw(&model, &Sde::vp(), [10, 1], 20, 0).unwrap();
/// assert_eq!(model.calls(), 40); // one corrector and one predictor evaluation per step
/// ```
#[derive(Debug)]
pub struct Counted<M> {
    model: M,
    calls: Cell<usize>,
}

impl<M> Counted<M> {
    /// `model` with no evaluations yet.
    pub fn new(model: M) -> Self {
        Self {
            model,
            calls: Cell::new(0),
        }
    }

    /// The evaluations so far.
    pub fn calls(&self) -> usize {
        self.calls.get()
    }

    /// The model.
    pub fn inner(&self) -> &M {
        &self.model
    }
}

impl<const D: usize, M: ScoreModel<D>> ScoreModel<D> for Counted<M> {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        self.calls.set(self.calls.get() + 1);
        self.model.score(x, t)
    }
}

/// `x / c` with an exact gradient: burn 0.22.1's autodiff differentiates `tensor / scalar` with
/// an f32 reciprocal (`burn-autodiff` `float_div_scalar`: `1.0 / state.elem::<f32>()`), a
/// relative error of ~1e-8 in f64 gradients; dividing by a full tensor is exact, and its forward
/// is the same f64 division.
pub(crate) fn div<const D: usize>(x: Tensor<D>, c: f64) -> Tensor<D> {
    let den = Tensor::full(x.shape(), c, (&x.device(), x.dtype()));
    x / den
}

/// The examples of `x` flattened to `[n, d]`, and the shape to restore.
pub(crate) fn rows<const D: usize>(x: Tensor<D>) -> (Tensor<2>, [usize; D]) {
    let dims = x.dims();
    let n = dims[0];
    let d = dims[1..].iter().product();
    (x.reshape([n, d]), dims)
}
