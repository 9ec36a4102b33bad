//! Denoising score matching (Song et al., ICLR 2021, `losses.py`) for a time-conditioned network
//! under any [`Process`], with four output parameterisations; a trained network is a
//! [`NetScore`] (a [`crate::score::ScoreModel`] on tensors).
//!
//! With t ~ U(t_ε, 1), z ~ N(0, I), x_t = α_t x₀ + σ_t z (losses summed over coordinates,
//! averaged over the batch):
//!
//! | prediction | network output | loss | score |
//! |---|---|---|---|
//! | score | s | ‖σ_t s + z‖² (λ = σ², the paper's) or g(t)²‖s + z/σ_t‖² (likelihood weighting) | s |
//! | noise (ε) | ε̂ | ‖ε̂ − z‖² | −ε̂/σ_t |
//! | data (x₀) | x̂₀ | ‖x̂₀ − x₀‖² | (α_t x̂₀ − x_t)/σ_t² |
//! | velocity (v) | v̂ ≈ α_t z − σ_t x₀ | ‖v̂ − v‖² | −(σ_t x_t + α_t v̂)/((α_t² + σ_t²) σ_t) |
//!
//! [`DsmLoss::with_pseudo_huber`] replaces the squared error by Rectified Diffusion's loss on
//! the implied clean data, Σₖ √((x̂₀ − x₀)ₖ² + c²) − c, whatever the network outputs (for ε
//! prediction x̂₀ = (x_t − σ_t ε̂)/α_t, so ε errors near t = 1 weigh σ_t/α_t more).

use crate::process::{OFFICIAL_EPS, Process, Sde};
use crate::score::NetScore;
use crate::{GenError, Result, invalid};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use gradlab_nets::TimeNet;
use gradlab_nets::time_mlp::{TimeMlp, TimeMlpConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// What the network outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prediction {
    /// The score ∇ log p_t.
    Score,
    /// The noise ε.
    Noise,
    /// The clean data x₀.
    Data,
    /// The velocity v = α_t ε − σ_t x₀.
    Velocity,
}

impl Prediction {
    /// `score`, `eps`/`noise`, `x0`/`data` or `v`/`velocity`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "score" => Ok(Self::Score),
            "eps" | "noise" => Ok(Self::Noise),
            "x0" | "data" => Ok(Self::Data),
            "v" | "velocity" => Ok(Self::Velocity),
            other => invalid(format!(
                "unknown prediction '{other}'; known: score, eps, x0, v"
            )),
        }
    }
}

/// The denoising score-matching objective under a process `P`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DsmLoss<P = Sde> {
    /// The process.
    pub process: P,
    /// The network's output.
    pub prediction: Prediction,
    /// Weight by g(t)² (the likelihood weighting; score prediction only).
    pub likelihood_weighting: bool,
    /// Rectified Diffusion's pseudo-Huber loss on x̂₀ with this c, instead of the squared error
    /// on the output.
    pub pseudo_huber: Option<f64>,
    /// Training times are drawn from U(t_min, 1): [`OFFICIAL_EPS`] = 1e-5 by default, as the
    /// official `losses.py`, so that likelihoods from 1e-5 query the network where it was trained.
    pub t_min: f64,
}

impl<P: Process + Clone> DsmLoss<P> {
    /// The paper's objective for `prediction` (no likelihood weighting).
    pub fn new(process: P, prediction: Prediction) -> Self {
        Self {
            process,
            prediction,
            likelihood_weighting: false,
            pseudo_huber: None,
            t_min: OFFICIAL_EPS,
        }
    }

    /// The same with training times from U(`t_min`, 1).
    pub fn with_t_min(self, t_min: f64) -> Self {
        Self { t_min, ..self }
    }

    /// Rectified Diffusion's loss: √((x̂₀ − x₀)² + c²) − c on the implied clean data, summed over
    /// coordinates (the official `train.py` averages it over elements with c = 10⁻³).
    pub fn with_pseudo_huber(self, c: f64) -> Self {
        Self {
            pseudo_huber: Some(c),
            ..self
        }
    }

    /// Check the combination of options.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn validate(&self) -> Result<()> {
        if !(self.t_min > 0.0 && self.t_min < 1.0) {
            return invalid(format!("t_min = {} must lie in (0, 1)", self.t_min));
        }
        if self.likelihood_weighting && self.prediction != Prediction::Score {
            return invalid("likelihood weighting applies to score prediction only");
        }
        match self.pseudo_huber {
            Some(c) if !(c > 0.0 && c.is_finite()) => invalid(format!(
                "the pseudo-Huber c must be positive and finite, got {c}"
            )),
            Some(_) if self.likelihood_weighting => {
                invalid("the pseudo-Huber loss on x̂₀ is not likelihood-weighted")
            }
            _ => Ok(()),
        }
    }

    /// The loss of `net` on the clean batch `x0` (`[n, d]`, on an autodiff device), drawing t (and
    /// z, unless `paired_noise` gives each example its own ε, as rectified diffusion does) from
    /// `rng`.
    pub fn loss<N: TimeNet>(
        &self,
        net: &N,
        x0: Tensor<2>,
        paired_noise: Option<Tensor<2>>,
        rng: &mut StdRng,
    ) -> Result<Tensor<1>> {
        let [n, d] = x0.dims();
        let dev = x0.device();
        let eps = self.t_min;
        let t: Vec<f64> = (0..n)
            .map(|_| eps + (1.0 - eps) * rng.random::<f64>())
            .collect();
        let mut cols = [vec![], vec![], vec![]]; // α, σ, weight
        for &ti in &t {
            let (a, s) = self.process.marginal(ti)?;
            let (_, g) = self.process.coefficients(ti)?;
            let w = match (self.prediction, self.likelihood_weighting) {
                (Prediction::Score, true) => g * g,
                (Prediction::Score, false) => s * s,
                _ => 1.0,
            };
            cols[0].push(a as f32);
            cols[1].push(s as f32);
            cols[2].push(w as f32);
        }
        let column = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [n, 1]), &dev);
        let (alpha, sigma, weight) = (column(&cols[0]), column(&cols[1]), column(&cols[2]));
        let z = match paired_noise {
            Some(z) if z.dims() == [n, d] => z,
            Some(z) => {
                return invalid(format!(
                    "paired noise of shape {:?} for data of shape [{n}, {d}]",
                    z.dims()
                ));
            }
            None => {
                let z_host: Vec<f32> = (0..n * d)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect();
                Tensor::<2>::from_data(TensorData::new(z_host, [n, d]), &dev)
            }
        };
        let xt = x0.clone() * alpha.clone() + z.clone() * sigma.clone();
        let tt = Tensor::<1>::from_data(
            TensorData::new(t.iter().map(|v| *v as f32).collect::<Vec<f32>>(), [n]),
            &dev,
        );
        let out = net.forward_time(xt.clone(), tt);
        if let Some(c) = self.pseudo_huber {
            let x0_hat = match self.prediction {
                Prediction::Score => (xt + out * sigma.clone().square()) / alpha,
                Prediction::Noise => (xt - out * sigma) / alpha,
                Prediction::Data => out,
                Prediction::Velocity => {
                    (xt * alpha.clone() - out * sigma.clone()) / (alpha.square() + sigma.square())
                }
            };
            let r2 = (x0_hat - x0).square();
            return Ok(((r2 + c * c).sqrt() - c).sum_dim(1).mean());
        }
        let residual = match self.prediction {
            // ‖s + z/σ‖² weighted by σ² is ‖σ s + z‖².
            Prediction::Score => out + z / sigma,
            Prediction::Noise => out - z,
            Prediction::Data => out - x0,
            Prediction::Velocity => out - (z * alpha - x0 * sigma),
        };
        Ok((residual.square().sum_dim(1) * weight).mean())
    }
}

/// Settings of [`train_score_net`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainSettings {
    /// Optimizer steps.
    pub steps: usize,
    /// Examples per step.
    pub batch: usize,
    /// Adam's initial learning rate (decayed linearly to 0).
    pub lr: f64,
    /// Hidden width of the time-conditioned MLP.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
    /// Seed of the weights, batches, times and noise.
    pub seed: u64,
}

impl Default for TrainSettings {
    /// 3 × 128 MLP (the paper's 2D setting), Adam 1e-3, batch 256, 5,000 steps.
    fn default() -> Self {
        Self {
            steps: 5000,
            batch: 256,
            lr: 1e-3,
            hidden: 128,
            layers: 3,
            seed: 0,
        }
    }
}

/// The device a module's parameters live on (the inner CPU device for a module without any).
pub(crate) fn device_of<M: burn::module::Module>(module: &M) -> Device {
    module
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(Device::flex)
}

/// A host point set (`[n, d]`, any float dtype) as the networks' f32 input on `dev`.
pub(crate) fn to_net_input(x: Tensor<2>, dev: &Device) -> Result<Tensor<2>> {
    let dims = x.dims();
    let v: Vec<f32> = gradlab_core::bridge::to_host(x)?
        .iter()
        .map(|v| *v as f32)
        .collect();
    Ok(gradlab_core::bridge::from_host_f32(&v, dims, dev)?)
}

/// The loop every objective here shares: Adam with the learning rate decayed linearly to zero (so
/// the last weights are not a snapshot of Adam's noise) and a finite-loss check, on `net` (built
/// on the autodiff device). `loss_at(net, step, device)` builds the step's loss.
pub(crate) fn fit_net<N: burn::module::Module>(
    net: N,
    settings: &TrainSettings,
    loss_at: impl FnMut(&N, usize, &Device) -> Result<Tensor<1>>,
) -> Result<(N, Vec<f64>)> {
    fit_net_ema(net, settings, None, loss_at)
}

/// [`fit_net`] that returns, with `ema = Some(β)`, the exponential moving average of the weights
/// (β per step, warmed up as torch_ema does, min(β, (1 + k)/(10 + k)) at update k = 1, 2, …, so
/// that a short run is not dominated by its initial weights) instead of the last weights.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub(crate) fn fit_net_ema<N: burn::module::Module>(
    mut net: N,
    settings: &TrainSettings,
    ema: Option<f64>,
    mut loss_at: impl FnMut(&N, usize, &Device) -> Result<Tensor<1>>,
) -> Result<(N, Vec<f64>)> {
    if settings.steps == 0 || settings.batch == 0 || !(settings.lr > 0.0) {
        return invalid(format!(
            "training needs steps ≥ 1, batch ≥ 1 and lr > 0, got {}, {}, {}",
            settings.steps, settings.batch, settings.lr
        ));
    }
    if let Some(b) = ema
        && !(0.0..1.0).contains(&b)
    {
        return invalid(format!("an EMA rate must lie in [0, 1), got {b}"));
    }
    let dev = Device::flex().autodiff();
    let mut optim = AdamConfig::new().init();
    let mut losses = Vec::with_capacity(settings.steps);
    let mut average = match ema {
        Some(_) => Some(gradlab_core::flat::flatten_host(&net)?),
        None => None,
    };
    for step in 0..settings.steps {
        let l = loss_at(&net, step, &dev)?;
        let value = l.clone().into_scalar::<f64>();
        if !value.is_finite() {
            return Err(GenError::NonFinite {
                what: "training loss",
                step,
                t: f64::NAN,
            });
        }
        losses.push(value);
        let grads = GradientsParams::from_grads(l.backward(), &net);
        let lr = settings.lr * (1.0 - step as f64 / settings.steps as f64);
        net = optim.step(lr, net, grads);
        if let (Some(avg), Some(b)) = (average.as_mut(), ema) {
            // torch_ema's warm-up: the update count k = step + 1 before min(β, (1 + k)/(10 + k)).
            let rate = b.min((2.0 + step as f64) / (11.0 + step as f64));
            let now = gradlab_core::flat::flatten_host(&net)?;
            avg.iter_mut()
                .zip(&now)
                .for_each(|(a, w)| *a = rate * *a + (1.0 - rate) * w);
        }
    }
    if let Some(avg) = average {
        net = gradlab_core::flat::load_host(net, &avg)?;
    }
    Ok((net, losses))
}

/// A seeded time-conditioned MLP of the settings' size on the autodiff device.
pub(crate) fn time_mlp(dim: usize, settings: &TrainSettings) -> TimeMlp {
    TimeMlpConfig::new(dim)
        .with_hidden(settings.hidden)
        .with_layers(settings.layers)
        .init(&Device::flex().autodiff(), settings.seed)
}

/// An ε-prediction network under `process` trained on a 2D toy set (the model the 2D
/// experiments share; [`Sde::vp`] for the usual VP teacher).
pub fn train_toy_model<P: Process + Clone>(
    toy: &gradlab_data::toy2d::Toy2d,
    process: P,
    settings: &TrainSettings,
) -> Result<NetScore<TimeMlp, P>> {
    let toy = toy.clone();
    let (net, _) = train_score_net(
        DsmLoss::new(process, Prediction::Noise),
        2,
        move |n, seed| crate::points::from_pairs(&toy.sample(n, seed ^ 0x5DE)),
        settings,
    )?;
    Ok(net)
}

/// Train a time-conditioned MLP by [`DsmLoss`] on batches drawn by `sample(n, seed)` (`[n, d]`
/// host tensors); returns the score model (its network on the inner device, ready to sample;
/// `.net.clone().train()` trains on) and the loss of every step.
pub fn train_score_net<P: Process + Clone>(
    loss: DsmLoss<P>,
    dim: usize,
    mut sample: impl FnMut(usize, u64) -> Tensor<2>,
    settings: &TrainSettings,
) -> Result<(NetScore<TimeMlp, P>, Vec<f64>)> {
    let net = time_mlp(dim, settings);
    train_core(net, loss, dim, |n, seed| (sample(n, seed), None), settings)
}

/// [`train_score_net`] for any time-conditioned network built on the autodiff device (e.g. a
/// [`gradlab_nets::unet::UNet`] for images, with `dim` = c·h·w).
pub fn train_score_model<N: TimeNet, P: Process + Clone>(
    net: N,
    loss: DsmLoss<P>,
    dim: usize,
    mut sample: impl FnMut(usize, u64) -> Tensor<2>,
    settings: &TrainSettings,
) -> Result<(NetScore<N, P>, Vec<f64>)> {
    train_core(net, loss, dim, |n, seed| (sample(n, seed), None), settings)
}

/// Train on (x₀, ε) pairs — each example noised with its own ε (rectified diffusion's retraining
/// on a teacher's noise–sample pairs, with the teacher's schedule and parameterisation).
pub fn train_score_net_paired<P: Process + Clone>(
    loss: DsmLoss<P>,
    dim: usize,
    pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(NetScore<TimeMlp, P>, Vec<f64>)> {
    train_score_model_paired(time_mlp(dim, settings), loss, dim, pairs, settings)
}

/// [`train_score_net_paired`] for any time-conditioned network on the autodiff device — e.g. the
/// teacher's own network (`teacher.net.clone().train()`), to fine-tune it on its pairs as the
/// paper does.
pub fn train_score_model_paired<N: TimeNet, P: Process + Clone>(
    net: N,
    loss: DsmLoss<P>,
    dim: usize,
    mut pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(NetScore<N, P>, Vec<f64>)> {
    train_core(
        net,
        loss,
        dim,
        |n, seed| {
            let (x0, eps) = pairs(n, seed);
            (x0, Some(eps))
        },
        settings,
    )
}

fn train_core<N: TimeNet, P: Process + Clone>(
    net: N,
    loss: DsmLoss<P>,
    dim: usize,
    mut batches: impl FnMut(usize, u64) -> (Tensor<2>, Option<Tensor<2>>),
    settings: &TrainSettings,
) -> Result<(NetScore<N, P>, Vec<f64>)> {
    loss.validate()?;
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xD5);
    let (net, losses) = fit_net(net, settings, |net, step, dev| {
        let (b, eps) = batches(settings.batch, settings.seed.wrapping_add(step as u64));
        let d = b.dims()[1];
        if d != dim {
            return invalid(format!(
                "the sampler gave points of dimension {d}, not {dim}"
            ));
        }
        let noise = eps.map(|e| to_net_input(e, dev)).transpose()?;
        loss.loss(net, to_net_input(b, dev)?, noise, &mut rng)
    })?;
    let model = NetScore {
        net: net.valid(),
        process: loss.process,
        prediction: loss.prediction,
    };
    Ok((model, losses))
}

/// The image model of `gradlab sample` and of `score-sde`'s image runs: a U-Net of width 16 for
/// `set`'s image shape (seeded, on the autodiff device) and its training settings (batch 64,
/// Adam 2e-3 decayed linearly, `steps` steps).
pub fn image_unet(
    set: &gradlab_data::ImageSet,
    steps: usize,
    seed: u64,
) -> (gradlab_nets::unet::UNet, TrainSettings) {
    let net = gradlab_nets::unet::UNetConfig::new(set.channels, set.height, set.width)
        .with_width(16)
        .init(&gradlab_nets::autodiff_device(), seed);
    let settings = TrainSettings {
        steps,
        batch: 64,
        lr: 2e-3,
        seed,
        ..TrainSettings::default()
    };
    (net, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(burn::module::Module, Debug)]
    struct Scalar {
        p: burn::module::Param<Tensor<1>>,
    }

    /// With a constant gradient Adam moves by lr_k/(1 + ε) per step (lr decayed linearly); the
    /// EMA of those weights, with torch_ema's warm-up min(β, (1 + k)/(10 + k)) at update k ≥ 1, by
    /// hand.
    #[test]
    fn the_ema_is_the_warmed_up_average_of_the_weights() {
        let dev = Device::flex().autodiff();
        let net = Scalar {
            p: burn::module::Param::from_tensor(Tensor::<1>::zeros([1], &dev)),
        };
        let settings = TrainSettings {
            steps: 30,
            batch: 1,
            lr: 0.1,
            ..TrainSettings::default()
        };
        let loss = |n: &Scalar, _: usize, _: &Device| Ok(n.p.val().sum());
        let (last, _) = fit_net_ema(Scalar { p: net.p.clone() }, &settings, None, loss).unwrap();
        let (avg, _) = fit_net_ema(net, &settings, Some(0.9), loss).unwrap();
        let (mut w, mut a) = (0.0f64, 0.0f64);
        for k in 0..30 {
            w -= 0.1 * (1.0 - k as f64 / 30.0) / (1.0 + 1e-5);
            let rate = 0.9f64.min((2.0 + k as f64) / (11.0 + k as f64));
            a = rate * a + (1.0 - rate) * w;
        }
        let get = |n: &Scalar| gradlab_core::bridge::to_host(n.p.val()).unwrap()[0];
        assert!((get(&last) - w).abs() < 1e-4, "{} vs {w}", get(&last));
        assert!((get(&avg) - a).abs() < 1e-4, "{} vs {a}", get(&avg));
        assert!((a - w).abs() > 0.03); // the average lags the last weights (by 0.036)
        let bad = Scalar {
            p: burn::module::Param::from_tensor(Tensor::<1>::zeros([1], &dev)),
        };
        assert!(fit_net_ema(bad, &settings, Some(1.0), loss).is_err());
    }

    #[test]
    fn names_parse_and_bad_combinations_are_errors() {
        assert_eq!(Prediction::parse("eps").unwrap(), Prediction::Noise);
        assert_eq!(Prediction::parse("v").unwrap(), Prediction::Velocity);
        assert!(Prediction::parse("q").is_err());
        let weighted = DsmLoss {
            likelihood_weighting: true,
            ..DsmLoss::new(Sde::vp(), Prediction::Noise)
        };
        assert!(weighted.validate().is_err());
        assert!(
            DsmLoss::new(Sde::vp(), Prediction::Score)
                .with_t_min(0.0)
                .validate()
                .is_err()
        );
        let huber = DsmLoss::new(Sde::vp(), Prediction::Noise).with_pseudo_huber(f64::NAN);
        assert!(huber.validate().is_err());
    }
}
