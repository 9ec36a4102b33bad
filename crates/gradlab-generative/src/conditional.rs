//! Conditional ε-prediction models for restoration: a [`CondTimeMlp`] that reads the noisy state
//! and the degraded input c, trained by ε-matching under any [`Process`] on pairs (y₀, c), and
//! its score for one batch of conditions ([`CondScore`], a [`ScoreModel`]).
//!
//! With t ~ U(1e-5, 1) and z ~ N(0, I): y_t = α_t y₀ + σ_t z and the loss is ‖ε̂ − z‖² (summed
//! over coordinates, averaged over the batch), ε̂ = net(c_in(t)·y_t, c, t) with EDM's input scaling
//! c_in(t) = 1/√(α_t² s² + σ_t²) (s the data's standard deviation, measured on the first batch):
//! the network sees inputs of unit scale at every t. The score is −ε̂/σ_t. For the mean-reverting
//! SDE of MRS, y₀ = x₀ − μ and c = μ (`fit_target: noise` of the official configs).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::conditional::{CondScore, train_conditional_eps};
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::score::ScoreModel;
//! use gradlab_generative::training::TrainSettings;
//! let settings = TrainSettings { steps: 20, batch: 16, hidden: 16, layers: 1, ..TrainSettings::default() };
//! // y₀ = c: the condition says where the data are.
//! let pairs = |n: usize, seed: u64| {
//!     let c = gradlab_generative::points::normal(n, 2, seed);
//!     (c.clone(), c)
//! };
//! let (net, losses) = train_conditional_eps(Sde::vp(), 2, 2, pairs, &settings).unwrap();
//! assert_eq!(losses.len(), 20);
//! let c = gradlab_generative::points::normal(3, 2, 9);
//! let model = CondScore::new(&net, Sde::vp(), c).unwrap();
//! let s = model.score(Tensor::zeros([3, 2], &Device::flex()), 0.5).unwrap();
//! assert_eq!(s.dims(), [3, 2]);
//! ```

use crate::process::{OFFICIAL_EPS, Process};
use crate::score::{ScoreModel, div};
use crate::training::{TrainSettings, fit_net, to_net_input};
use crate::{Result, invalid};
use burn::prelude::*;
use gradlab_nets::cond_time_mlp::{CondTimeMlp, CondTimeMlpConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// A trained conditional ε-network and the data scale its input scaling uses.
#[derive(Debug, Clone)]
pub struct CondEps {
    /// The network (inner device).
    pub net: CondTimeMlp,
    /// s, the standard deviation of y₀ in training.
    pub data_std: f64,
}

/// c_in(t) = 1/√(α_t² s² + σ_t²) for data of standard deviation s.
pub(crate) fn input_scale_of(process: &impl Process, data_std: f64, t: f64) -> Result<f64> {
    let (a, s) = process.marginal(t)?;
    Ok(1.0 / (a * a * data_std * data_std + s * s).sqrt())
}

/// The score of a conditional ε-network for one batch of conditions (one per example).
#[derive(Debug, Clone)]
pub struct CondScore<'a, P> {
    model: &'a CondEps,
    process: P,
    cond: Tensor<2>,
}

impl<'a, P: Process> CondScore<'a, P> {
    /// `net` under `process`, with the conditions `cond` (`[n, cond_dim]`) of the n examples it
    /// will score.
    pub fn new(model: &'a CondEps, process: P, cond: Tensor<2>) -> Result<Self> {
        let net = &model.net;
        if cond.dims()[1] != net.cond_dim() {
            return invalid(format!(
                "conditions of width {} for a network that reads {}",
                cond.dims()[1],
                net.cond_dim()
            ));
        }
        let cond = to_net_input(cond, &crate::training::device_of(net))?;
        Ok(Self {
            model,
            process,
            cond,
        })
    }
}

impl<P: Process> ScoreModel<2> for CondScore<'_, P> {
    fn score(&self, y: Tensor<2>, t: f64) -> Result<Tensor<2>> {
        let (_, s) = self.process.marginal(t)?;
        let [n, _] = y.dims();
        let dtype = y.dtype();
        let input = y.cast(burn::tensor::DType::F32)
            * input_scale_of(&self.process, self.model.data_std, t)?;
        let times = Tensor::<1>::full([n], t as f32, &input.device());
        let eps = self
            .model
            .net
            .try_forward(input, self.cond.clone(), times)
            .map_err(crate::GenError::Invalid)?;
        Ok(div(eps.cast(dtype), -s))
    }
}

/// Train a [`CondEps`] (`dim` data, `cond_dim` condition; the settings' width, depth, steps,
/// Adam learning rate decayed linearly, seed) by ε-matching under `process`, on pairs
/// (y₀, c) = `pairs(n, seed)` (`[n, dim]`, `[n, cond_dim]` host tensors). Times from
/// U(1e-5, 1). Returns the network on the inner device and every step's loss.
pub fn train_conditional_eps<P: Process>(
    process: P,
    dim: usize,
    cond_dim: usize,
    mut pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(CondEps, Vec<f64>)> {
    let net = CondTimeMlpConfig::new(dim, cond_dim)
        .with_hidden(settings.hidden)
        .with_layers(settings.layers)
        .init(&Device::flex().autodiff(), settings.seed);
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xC0D);
    let (first, _) = pairs(settings.batch.max(2), settings.seed);
    let v = crate::points::Rows::of(&first)?.data;
    let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
    let data_std =
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt();
    if !(data_std > 0.0 && data_std.is_finite()) {
        return invalid(format!("the training data have no spread (std {data_std})"));
    }
    let (net, losses) = fit_net(net, settings, |net, step, dev| {
        let (y0, c) = pairs(settings.batch, settings.seed.wrapping_add(step as u64));
        let ([n, d], [nc, k]) = (y0.dims(), c.dims());
        if d != dim || k != cond_dim || nc != n {
            return invalid(format!(
                "pairs of shapes [{n}, {d}] and [{nc}, {k}] for dimension {dim} and condition {cond_dim}"
            ));
        }
        let mut coef = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for _ in 0..n {
            let t = OFFICIAL_EPS + (1.0 - OFFICIAL_EPS) * rng.random::<f64>();
            let (a, s) = process.marginal(t)?;
            let c_in = input_scale_of(&process, data_std, t)?;
            coef.0.push((a * c_in) as f32);
            coef.1.push((s * c_in) as f32);
            coef.2.push(t as f32);
        }
        let column = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [n, 1]), dev);
        let (alpha, sigma) = (column(coef.0), column(coef.1));
        let z: Vec<f32> = (0..n * d)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [n, d]), dev);
        let yt = to_net_input(y0, dev)? * alpha + z.clone() * sigma; // c_in · y_t
        let t = Tensor::<1>::from_data(TensorData::new(coef.2, [n]), dev);
        let eps = net.forward(yt, to_net_input(c, dev)?, t);
        Ok((eps - z).square().sum_dim(1).mean().reshape([1]))
    })?;
    Ok((
        CondEps {
            net: net.valid(),
            data_std,
        },
        losses,
    ))
}

/// The network's time input at discrete step t of a `len`-step schedule: (t + 1)/len ∈ (0, 1].
pub fn restore_time(t: usize, len: usize) -> f32 {
    (t as f32 + 1.0) / len.max(1) as f32
}

/// The predictive baseline of the restoration papers: the same [`CondTimeMlp`] with x = 0 and
/// t = 0, trained by MSE (averaged over elements) to output x₀ from the condition c, on pairs
/// (x₀, c) = `pairs(n, seed)`. Returns the network on the inner device and every step's loss;
/// [`regress`] applies it.
pub fn train_direct_regression(
    dim: usize,
    cond_dim: usize,
    mut pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(CondTimeMlp, Vec<f64>)> {
    let net = CondTimeMlpConfig::new(dim, cond_dim)
        .with_hidden(settings.hidden)
        .with_layers(settings.layers)
        .init(&Device::flex().autodiff(), settings.seed);
    let (net, losses) = fit_net(net, settings, |net, step, dev| {
        let (x0, c) = pairs(settings.batch, settings.seed.wrapping_add(step as u64));
        let out = regress(net, c, dev)?;
        if out.dims() != x0.dims() {
            return invalid(format!(
                "targets of shape {:?} for outputs {:?}",
                x0.dims(),
                out.dims()
            ));
        }
        Ok((out - to_net_input(x0, dev)?).square().mean().reshape([1]))
    })?;
    Ok((net.valid(), losses))
}

/// The direct prediction of [`train_direct_regression`]'s network for conditions `c` (f32 on `dev`).
pub fn regress(net: &CondTimeMlp, c: Tensor<2>, dev: &Device) -> Result<Tensor<2>> {
    let n = c.dims()[0];
    let c = to_net_input(c, dev)?;
    net.try_forward(
        Tensor::zeros([n, net.dim()], dev),
        c,
        Tensor::zeros([n], dev),
    )
    .map_err(crate::GenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::{Rows, normal};
    use crate::process::Sde;
    use crate::sampling::{Noise, Unobserved, dpm_solver_pp, grid, prior};

    /// y₀ | c ~ N(c, 0.1² I): a trained model samples around its condition with the right spread
    /// (closed form: E‖y − c‖² = 2 · 0.01 per point).
    #[test]
    fn a_trained_model_samples_the_conditional_law() {
        let settings = TrainSettings {
            steps: 1500,
            batch: 256,
            lr: 3e-3,
            hidden: 64,
            layers: 2,
            seed: 0,
        };
        let pairs = |n: usize, seed: u64| {
            let c = normal(n, 2, seed);
            (c.clone() + normal(n, 2, seed ^ 0xAB) * 0.1, c)
        };
        let (model, _) = train_conditional_eps(Sde::vp(), 2, 2, pairs, &settings).unwrap();
        let c = normal(2000, 2, 77);
        let score = CondScore::new(&model, Sde::vp(), c.clone()).unwrap();
        let mut noise = Noise::new(5);
        let x = prior(&Sde::vp(), [2000, 2], &mut noise, &Device::flex());
        let y = dpm_solver_pp(
            &score,
            &Sde::vp(),
            x,
            &grid::uniform(50, 1e-3).unwrap(),
            1,
            &mut Unobserved,
        )
        .unwrap();
        let d = Rows::of(&(y - c)).unwrap();
        let msd = d.data.iter().map(|v| v * v).sum::<f64>() / 2000.0;
        assert!(
            (msd - 0.02).abs() < 0.01,
            "mean squared distance to the condition {msd}"
        );
    }
}
