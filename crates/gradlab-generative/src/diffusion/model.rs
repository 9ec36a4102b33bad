//! Score models on tensors: ∇ₓ log p_t(x) for a batch of any shape (batch first), differentiable
//! with respect to x and to the model's tracked parameters on an autodiff device; x̂₀ by Tweedie.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::diffusion::{GaussianScore, denoised};
//! use gradlab_generative::sde::Sde;
//! // N(2, 0.25) data under VP; x̂₀ = E[x₀ | x_t] is linear in x_t and its gradient is exact.
//! let model = GaussianScore::new(Sde::vp(), vec![2.0], vec![0.25]).unwrap();
//! let dev = Device::flex().autodiff();
//! let x = gradlab_core::bridge::from_host(&[0.5, -1.0], [2, 1], &dev).unwrap().require_grad();
//! let x0 = denoised(&model, &Sde::vp(), x.clone(), 0.5).unwrap();
//! let g = x.grad(&x0.sum().backward()).unwrap();
//! let g = gradlab_core::bridge::to_host(g).unwrap();
//! assert!(g[0] > 0.0 && (g[0] - g[1]).abs() < 1e-12); // the same slope at both points
//! ```

use super::process::Process;
use crate::training::Prediction;
use crate::{GenError, Result, invalid};
use burn::prelude::*;
use gradlab_nets::TimeNet;

/// A score model on tensors; see the module docs.
pub trait TensorScore<const D: usize> {
    /// ∇ₓ log p_t(x) for the batch `x` (first dimension: the examples), of the same shape.
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>>;
}

/// The data prediction x̂₀ = (x + σ_t² s(x, t)) / α_t (Tweedie's formula).
pub fn denoised<const D: usize, P: Process>(
    model: &impl TensorScore<D>,
    process: &P,
    x: Tensor<D>,
    t: f64,
) -> Result<Tensor<D>> {
    let (a, s) = process.marginal(t)?;
    let score = model.score(x.clone(), t)?;
    Ok(div(x + score * (s * s), a))
}

/// `x / c` with an exact gradient: burn 0.22.1's autodiff differentiates `tensor / scalar` with
/// an f32 reciprocal (`burn-autodiff` `float_div_scalar`: `1.0 / state.elem::<f32>()`), a
/// relative error of ~1e-8 in f64 gradients; dividing by a full tensor is exact, and its forward
/// is the same f64 division.
pub(crate) fn div<const D: usize>(x: Tensor<D>, c: f64) -> Tensor<D> {
    let den = Tensor::full(x.shape(), c, (&x.device(), x.dtype()));
    x / den
}

/// The examples of `x` flattened to `[n, d]`.
fn rows<const D: usize>(x: Tensor<D>) -> (Tensor<2>, [usize; D]) {
    let dims = x.dims();
    let n = dims[0];
    let d = dims[1..].iter().product();
    (x.reshape([n, d]), dims)
}

/// The exact score of Gaussian data N(μ, diag(v)) under a process: p_t = N(α_t μ, α_t² v + σ_t²),
/// s = −(x − α_t μ)/(α_t² v + σ_t²), each example flattened to the length of μ.
#[derive(Debug, Clone)]
pub struct GaussianScore<P> {
    process: P,
    mean: Vec<f64>,
    var: Vec<f64>,
}

impl<P: Process> GaussianScore<P> {
    /// Data N(`mean`, diag(`var`)), variances > 0.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(v > 0)` is meant: NaN must fail the check
    pub fn new(process: P, mean: Vec<f64>, var: Vec<f64>) -> Result<Self> {
        if mean.is_empty() || mean.len() != var.len() {
            return invalid("mean and variance must have the same, non-zero length");
        }
        if mean.iter().any(|m| !m.is_finite()) || var.iter().any(|v| !(*v > 0.0 && v.is_finite())) {
            return invalid("the mean must be finite and the variances finite and positive");
        }
        Ok(Self { process, mean, var })
    }
}

impl<const D: usize, P: Process> TensorScore<D> for GaussianScore<P> {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (a, s) = self.process.marginal(t)?;
        let (flat, dims) = rows(x);
        let d = self.mean.len();
        if flat.dims()[1] != d {
            return invalid(format!(
                "examples of {} values for Gaussian data of dimension {d}",
                flat.dims()[1]
            ));
        }
        let (dev, dtype) = (flat.device(), flat.dtype());
        let shift: Vec<f64> = self.mean.iter().map(|m| a * m).collect();
        let inv: Vec<f64> = self.var.iter().map(|v| 1.0 / (a * a * v + s * s)).collect();
        let shift = gradlab_core::bridge::from_host(&shift, [1, d], &dev)?.cast(dtype);
        let inv = gradlab_core::bridge::from_host(&inv, [1, d], &dev)?.cast(dtype);
        Ok(((shift - flat) * inv).reshape(dims))
    }
}

/// A trained time-conditioned network as a score model: its output (score, ε, x₀ or v, as it was
/// trained: [`Prediction`]) converted to the score, on whatever device and with whatever tracking
/// the network and the input have (so gradients reach its parameters on an autodiff device).
/// Examples are flattened to the network's input `[n, d]` and the score takes their shape again.
#[derive(Debug, Clone)]
pub struct NetScore<N, P> {
    /// The network.
    pub net: N,
    /// The process it was trained for.
    pub process: P,
    /// What its output is.
    pub prediction: Prediction,
}

impl<const D: usize, N: TimeNet, P: Process> TensorScore<D> for NetScore<N, P> {
    fn score(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (a, s) = self.process.marginal(t)?;
        let (flat, dims) = rows(x);
        let (n, dtype) = (flat.dims()[0], flat.dtype());
        let params_dtype = burn::tensor::DType::F32;
        let input = flat.clone().cast(params_dtype);
        let times = Tensor::<1>::full([n], t as f32, &input.device());
        let out = self.net.forward_time(input, times).cast(dtype);
        if out.dims() != flat.dims() {
            return Err(GenError::Invalid(format!(
                "the network returned {:?} for an input of {:?}",
                out.dims(),
                flat.dims()
            )));
        }
        let score = match self.prediction {
            Prediction::Score => out,
            Prediction::Noise => div(out, -s),
            Prediction::Data => div(out * a - flat, s * s),
            Prediction::Velocity => div(flat * s + out * a, -(a * a + s * s) * s),
        };
        Ok(score.reshape(dims))
    }
}
