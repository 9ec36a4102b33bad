//! The weighting of f-distill (Xu et al., "One-step Diffusion Models with f-Divergence Distribution
//! Matching", 2025), as NVlabs/FastGen has it (`fastgen/methods/distribution_matching/
//! f_distill.py`, `fastgen/methods/common_loss.py`; read at 34f30e8): the one-step generator's
//! score-difference gradient is weighted per sample by h(r) of the density ratio r = p/q_θ.
//!
//! - h(r) = r² f″(r) up to a constant ([`Divergence::h`]): reverse KL 1, KL r, Jensen–Shannon
//!   r/(1 + r), "sf" 1/(1 + r), Neyman χ² 1/r, squared Hellinger √r, Jeffreys 1 + r.
//! - r from the discriminator's logits on the generator's noised samples (real → positive logits,
//!   so exp(logit) estimates p/q): the mean over the logit dimension, clamped to ±10, exp, clipped
//!   to [0.1, 20].
//! - Ratio normalisation ([`RatioNormalizer`], on by default): 10 bins over the scheduler's time
//!   range (EDM's t = σ ∈ [0.002, 80], linearly: about 64% of FastGen's draws fall in the first), each
//!   holding an EMA of its samples' mean r (rate 0 on CIFAR-10: the batch's own mean; 0.5 on
//!   ImageNet-64), updated only where the batch has samples; r ← r/(bin + 1e-6).
//! - h normalised to batch mean 1: h ← h/(mean h + 1e-6).
//! - The generator's loss (`variational_score_distillation_loss`): with w = 1/(mean|G − x̂₀ᵗᵉᵃᶜʰᵉʳ| +
//!   1e-6) per sample, target = G − w·h·(x̂₀ᶠᵃᵏᵉ − x̂₀ᵗᵉᵃᶜʰᵉʳ) (no gradient), loss = ½ MSE(G, target)
//!   (mean over elements) — [`vsd_loss`].
//!
//! ```
//! use gradlab_generative::fdistill::{Divergence, RatioNormalizer};
//! let js = Divergence::parse("js").unwrap();
//! assert_eq!(js.h(1.0), 0.5);
//! assert!(Divergence::parse("wasserstein").is_err());
//! let mut norm = RatioNormalizer::new(10, 0.0, 0.0, 1.0).unwrap();
//! // Logits 0 everywhere: r = 1 in every bin, so every weight is 1.
//! let h = norm.weights(js, &[vec![0.0], vec![0.0]], &[0.1, 0.9]).unwrap();
//! assert!(h.iter().all(|w| (w - 1.0).abs() < 1e-5));
//! ```

use crate::{GenError, Result, invalid};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::softplus;
use gradlab_nets::mlp::{Mlp, MlpConfig};
use gradlab_nets::time_mlp::{TimeMlp, time_features};
use gradlab_nets::{Activation, Net};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// The f-divergences of the official code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// Reverse KL (DMD2), h = 1.
    ReverseKl,
    /// Forward KL, h = r.
    Kl,
    /// Jensen–Shannon, h = 1 − 1/(1 + r).
    Js,
    /// The official "sf", h = 1/(1 + r).
    Sf,
    /// Neyman χ², h = 1/r.
    Neyman,
    /// Squared Hellinger, h = √r.
    SquaredHellinger,
    /// Jeffreys, h = 1 + r.
    Jeffreys,
}

/// The official names, in the order of the official table.
pub const DIVERGENCES: [&str; 7] = ["rkl", "kl", "js", "sf", "neyman", "sh", "jf"];

impl Divergence {
    /// One of [`DIVERGENCES`].
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "rkl" => Self::ReverseKl,
            "kl" => Self::Kl,
            "js" => Self::Js,
            "sf" => Self::Sf,
            "neyman" => Self::Neyman,
            "sh" => Self::SquaredHellinger,
            "jf" => Self::Jeffreys,
            other => {
                return invalid(format!(
                    "unknown f-divergence '{other}'; known: {}",
                    DIVERGENCES.join(", ")
                ));
            }
        })
    }

    /// The official name.
    pub fn name(self) -> &'static str {
        DIVERGENCES[self as usize]
    }

    /// h(r), as the official table (Neyman's r clamped at 1e-8).
    pub fn h(self, r: f64) -> f64 {
        match self {
            Self::ReverseKl => 1.0,
            Self::Kl => r,
            Self::Js => 1.0 - 1.0 / (1.0 + r),
            Self::Sf => 1.0 / (1.0 + r),
            Self::Neyman => 1.0 / r.max(1e-8),
            Self::SquaredHellinger => r.sqrt(),
            Self::Jeffreys => 1.0 + r,
        }
    }
}

/// The density ratio from one sample's discriminator logits: exp(clamp(mean, ±10)) clipped to
/// [0.1, 20].
pub fn ratio(logits: &[f64]) -> Result<f64> {
    if logits.is_empty() || logits.iter().any(|v| !v.is_finite()) {
        return invalid("a sample's logits must be finite and not empty");
    }
    let mean = logits.iter().sum::<f64>() / logits.len() as f64;
    Ok(mean.clamp(-10.0, 10.0).exp().clamp(0.1, 20.0))
}

/// The per-time-bin EMA of the ratio's mean and the normalised weights.
#[derive(Debug, Clone, PartialEq)]
pub struct RatioNormalizer {
    bins: Vec<f64>,
    ema: f64,
    min_t: f64,
    max_t: f64,
}

impl RatioNormalizer {
    /// `bins` bins over [`min_t`, `max_t`] (official: 10 over the scheduler's range), EMA rate
    /// `ema` in [0, 1) (official 0 on CIFAR-10, 0.5 on ImageNet-64); the bins start at 1.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn new(bins: usize, ema: f64, min_t: f64, max_t: f64) -> Result<Self> {
        if bins == 0 || !(0.0..1.0).contains(&ema) || !(min_t < max_t) {
            return invalid(format!(
                "ratio normalisation needs ≥ 1 bin, an EMA rate in [0, 1) and min_t < max_t; got {bins}, {ema}, [{min_t}, {max_t}]"
            ));
        }
        Ok(Self {
            bins: vec![1.0; bins],
            ema,
            min_t,
            max_t,
        })
    }

    /// The bins' current means.
    pub fn bins(&self) -> &[f64] {
        &self.bins
    }

    /// h of each sample (its logits and time), after updating the bins with this batch: r from
    /// [`ratio`], normalised by its bin, h = `div.h(r)`, normalised to batch mean 1.
    pub fn weights(&mut self, div: Divergence, logits: &[Vec<f64>], t: &[f64]) -> Result<Vec<f64>> {
        if logits.len() != t.len() || t.is_empty() {
            return invalid(format!("{} logit rows for {} times", logits.len(), t.len()));
        }
        if t.iter().any(|v| !v.is_finite()) {
            return invalid("times must be finite");
        }
        let r: Vec<f64> = logits.iter().map(|l| ratio(l)).collect::<Result<_>>()?;
        let n = self.bins.len();
        let width = (self.max_t - self.min_t) / n as f64;
        let idx: Vec<usize> = t
            .iter()
            .map(|ti| (((ti - self.min_t) / width).floor().max(0.0) as usize).min(n - 1))
            .collect();
        let (mut cnt, mut sum) = (vec![0.0; n], vec![0.0; n]);
        for (i, ri) in idx.iter().zip(&r) {
            cnt[*i] += 1.0;
            sum[*i] += ri;
        }
        for b in 0..n {
            if cnt[b] > 0.0 {
                self.bins[b] =
                    self.bins[b] * self.ema + (1.0 - self.ema) * sum[b] / (cnt[b] + 1e-6);
            }
        }
        let h: Vec<f64> = idx
            .iter()
            .zip(&r)
            .map(|(i, ri)| div.h(ri / (self.bins[*i] + 1e-6)))
            .collect();
        let mean = h.iter().sum::<f64>() / h.len() as f64;
        Ok(h.iter().map(|v| v / (mean + 1e-6)).collect())
    }
}

/// The generator's loss ½·MSE(G, G − w·h·(x̂₀ᶠᵃᵏᵉ − x̂₀ᵗᵉᵃᶜʰᵉʳ)) with the target detached and
/// w = 1/(mean|G − x̂₀ᵗᵉᵃᶜʰᵉʳ| + 1e-6) per sample; `h` per sample (`[n, 1]`).
pub fn vsd_loss(
    generated: Tensor<2>,
    teacher_x0: Tensor<2>,
    fake_x0: Tensor<2>,
    h: Tensor<2>,
) -> Result<Tensor<1>> {
    if generated.dims() != teacher_x0.dims()
        || generated.dims() != fake_x0.dims()
        || h.dims() != [generated.dims()[0], 1]
    {
        return invalid("generator, teacher and fake predictions must share a shape, h be [n, 1]");
    }
    let (g, tx, fx) = (
        generated.clone().detach(),
        teacher_x0.detach(),
        fake_x0.detach(),
    );
    let w = ((g.clone() - tx.clone()).abs().mean_dim(1) + 1e-6).recip() * h.detach();
    let target = g - (fx - tx) * w;
    Ok((generated - target).square().mean() * 0.5)
}

/// FastGen's "polynomial" time draw for EDM, mapped onto a process's time: EDM's Karras grid of
/// `steps` noise levels σᵢ = (σ_max^{1/ρ} + (1 − i/(steps − 1))(σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ
/// (ascending in i), an index drawn uniformly from ⌊lo·steps⌋ to ⌊hi·steps⌋ inclusive, and the
/// time where the process's σ_t/α_t equals that σ. The one-step student reads pure noise at σ_max.
#[derive(Debug, Clone, PartialEq)]
pub struct KarrasTimes {
    times: Vec<f64>,
    lo: usize,
    hi: usize,
    t_max: f64,
    sigma: (f64, f64),
}

impl KarrasTimes {
    /// The grid; an error unless 2 ≤ steps, ρ > 0, 0 < σ_min < σ_max inside the process's range
    /// and 0 ≤ lo < hi ≤ 1.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn new(
        process: &impl crate::process::Process,
        steps: usize,
        rho: f64,
        sigma: (f64, f64),
        lo: f64,
        hi: f64,
    ) -> Result<Self> {
        let (min, max) = sigma;
        if steps < 2
            || !(rho > 0.0)
            || !(0.0 < min && min < max)
            || !(0.0 <= lo && lo < hi && hi <= 1.0)
        {
            return invalid(format!(
                "a Karras time draw needs ≥ 2 steps, ρ > 0, 0 < σ_min < σ_max and 0 ≤ lo < hi ≤ 1; got {steps}, {rho}, {sigma:?}, {lo}, {hi}"
            ));
        }
        let (a, b) = (max.powf(1.0 / rho), min.powf(1.0 / rho));
        let times = (0..steps)
            .map(|i| {
                let ramp = 1.0 - i as f64 / (steps - 1) as f64;
                crate::sampling::grid::time_of_noise_level(process, (a + ramp * (b - a)).powf(rho))
            })
            .collect::<Result<Vec<f64>>>()?;
        let index = |p: f64| ((p * steps as f64) as usize).min(steps - 1);
        Ok(Self {
            t_max: times[steps - 1],
            sigma,
            times,
            lo: index(lo),
            hi: index(hi),
        })
    }

    /// The official setting: 1,000 levels, ρ = 7, σ ∈ [0.002, 80], indices 2 to 998.
    pub fn official(process: &impl crate::process::Process) -> Result<Self> {
        Self::new(process, 1000, 7.0, (0.002, 80.0), 0.002, 0.998)
    }

    /// One time.
    pub fn draw(&self, rng: &mut StdRng) -> f64 {
        self.times[rng.random_range(self.lo..=self.hi)]
    }

    /// The time of σ_max, where the one-step student reads its noise.
    pub fn t_max(&self) -> f64 {
        self.t_max
    }

    /// (σ_min, σ_max) of the grid: the range FastGen's ratio normalisation bins (EDM's time is σ).
    pub fn sigma_range(&self) -> (f64, f64) {
        self.sigma
    }

    /// The times that can be drawn (ascending).
    pub fn support(&self) -> &[f64] {
        &self.times[self.lo..=self.hi]
    }
}

/// EDM's preconditioned denoiser (Karras et al., 2022), the form FastGen's EDM teacher, student
/// and fake score share, on a process's x_t = α_t x₀ + σ_t ε: with x = x_t/α_t and σ = σ_t/α_t,
/// x̂₀ = c_skip x + c_out F(c_in x, t), c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/√(σ² + σ_d²),
/// c_in = 1/√(σ² + σ_d²). Its errors shrink with σ at low noise and stay bounded at high noise,
/// which the normalised score difference of [`vsd_loss`] needs: a network predicting x̂₀ or ε
/// directly swamps it with its own error at one end of the noise range.
#[derive(Debug, Clone)]
pub struct EdmDenoiser {
    /// F.
    pub net: TimeMlp,
    /// σ_d, the data's standard deviation.
    pub sigma_data: f64,
}

impl EdmDenoiser {
    /// x̂₀ of each row of `xt` (`[n, d]`, any float dtype; computed in f32, the network's) at its
    /// own time `t[i]`, differentiable in `xt` and the network.
    pub fn denoise(
        &self,
        process: &impl crate::process::Process,
        xt: Tensor<2>,
        t: &[f64],
    ) -> Result<Tensor<2>> {
        let [n, d] = xt.dims();
        if t.len() != n || d != self.net.dim() {
            return invalid(format!(
                "{n} rows of width {d} with {} times for a denoiser of width {}",
                t.len(),
                self.net.dim()
            ));
        }
        let dtype = xt.dtype();
        let xt = xt.cast(burn::tensor::DType::F32);
        let (skip, out, input, tt) = edm_columns(process, self.sigma_data, t, &xt.device())?;
        Ok((xt.clone() * skip + self.net.forward(xt * input, tt) * out).cast(dtype))
    }
}

/// Per-row columns (c_skip/α, c_out, c_in/α) and the times as a tensor.
fn edm_columns(
    process: &impl crate::process::Process,
    sigma_data: f64,
    t: &[f64],
    dev: &Device,
) -> Result<(Tensor<2>, Tensor<2>, Tensor<2>, Tensor<1>)> {
    let n = t.len();
    let mut c = [vec![], vec![], vec![]];
    for &ti in t {
        let (a, s) = process.marginal(ti)?;
        let (sig, sd2) = (s / a, sigma_data * sigma_data);
        let norm = (sig * sig + sd2).sqrt();
        c[0].push((sd2 / (sig * sig + sd2) / a) as f32);
        c[1].push((sig * sigma_data / norm) as f32);
        c[2].push((1.0 / norm / a) as f32);
    }
    let [skip, out, input] = c.map(|v| Tensor::<2>::from_data(TensorData::new(v, [n, 1]), dev));
    let tt = Tensor::from_data(
        TensorData::new(t.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n]),
        dev,
    );
    Ok((skip, out, input, tt))
}

/// Train an [`EdmDenoiser`] of the settings' size on batches drawn by `sample(n, seed)` (`[n, d]`
/// host tensors) at times from `times`, by EDM's loss (x̂₀'s squared error weighted by 1/c_out²,
/// i.e. F's error against its target); the network comes back on the inner device.
pub fn train_edm_denoiser<P: crate::process::Process>(
    process: &P,
    dim: usize,
    sigma_data: f64,
    times: &KarrasTimes,
    mut sample: impl FnMut(usize, u64) -> Tensor<2>,
    settings: &crate::training::TrainSettings,
) -> Result<(EdmDenoiser, Vec<f64>)> {
    if !(sigma_data > 0.0 && sigma_data.is_finite()) {
        return invalid(format!("σ_data must be positive, got {sigma_data}"));
    }
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xED);
    let net = crate::training::time_mlp(dim, settings);
    let (net, losses) = crate::training::fit_net(net, settings, |net, step, dev| {
        let x0 = crate::training::to_net_input(
            sample(settings.batch, settings.seed.wrapping_add(step as u64)),
            dev,
        )?;
        if x0.dims()[1] != dim {
            return invalid(format!(
                "points of dimension {} for a denoiser of {dim}",
                x0.dims()[1]
            ));
        }
        let t: Vec<f64> = (0..settings.batch).map(|_| times.draw(&mut rng)).collect();
        let (xt, _) = noised(process, x0.clone(), &t, &mut rng)?;
        let d = EdmDenoiser {
            net: net.clone(),
            sigma_data,
        };
        let (_, out, _, _) = edm_columns(process, sigma_data, &t, dev)?;
        let err = (d.denoise(process, xt, &t)? - x0) / out;
        Ok(err.square().sum_dim(1).mean().reshape([1]))
    })?;
    Ok((
        EdmDenoiser {
            net: net.valid(),
            sigma_data,
        },
        losses,
    ))
}

/// Settings of [`distill`]; the defaults are the official ones where a toy allows.
#[derive(Debug, Clone, PartialEq)]
pub struct FdistillSettings {
    /// The divergence (official default JS; KL in the CIFAR-10 config; reverse KL is DMD2).
    pub divergence: Divergence,
    /// Iterations in all (official CIFAR-10: 100,000).
    pub iterations: usize,
    /// The student is updated when iteration % this == 0 (official 5); the fake score and the
    /// discriminator on the others.
    pub student_every: usize,
    /// Examples per iteration.
    pub batch: usize,
    /// Adam's learning rate for all three networks (official 1e-4 at batch 2,048 on CIFAR-10;
    /// here 1e-3 for a toy).
    pub lr: f64,
    /// Weight of the generator's GAN loss (official 1e-3 on CIFAR-10, 3e-3 on ImageNet-64).
    pub gan_weight: f64,
    /// Time bins of the ratio normalisation (official 10).
    pub bins: usize,
    /// Their EMA rate (official 0 on CIFAR-10).
    pub ratio_ema: f64,
    /// Hidden width of the discriminator on (x_t, t).
    pub disc_hidden: usize,
    /// Weight the fake score's x̂₀ error by EDM's 1/c_out² (F's error) instead of the official
    /// plain MSE, which barely penalises its error at low noise — error the normalised score
    /// difference then magnifies.
    pub edm_weighted_fake_loss: bool,
    /// Seed of the discriminator's weights and of every draw.
    pub seed: u64,
}

impl Default for FdistillSettings {
    fn default() -> Self {
        Self {
            divergence: Divergence::Js,
            iterations: 5000,
            student_every: 5,
            batch: 256,
            lr: 1e-3,
            gan_weight: 1e-3,
            bins: 10,
            ratio_ema: 0.0,
            disc_hidden: 128,
            edm_weighted_fake_loss: false,
            seed: 0,
        }
    }
}

impl FdistillSettings {
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn validate(&self) -> Result<()> {
        if self.iterations == 0
            || self.student_every == 0
            || self.batch == 0
            || self.disc_hidden == 0
            || !(self.lr > 0.0 && self.lr.is_finite())
            || !(self.gan_weight >= 0.0 && self.gan_weight.is_finite())
        {
            return invalid(format!(
                "f-distill needs iterations, student_every, batch and disc_hidden ≥ 1, lr > 0 and gan_weight ≥ 0; got {}, {}, {}, {}, {}, {}",
                self.iterations,
                self.student_every,
                self.batch,
                self.disc_hidden,
                self.lr,
                self.gan_weight
            ));
        }
        Ok(())
    }
}

/// A distilled one-step generator and its training record.
#[derive(Debug, Clone)]
pub struct Distilled {
    /// The student on the inner device: x̂₀ = student(σ(t_max)·z, t_max).
    pub student: EdmDenoiser,
    /// The student's time.
    pub t_max: f64,
    /// The f-divergence loss of each student update.
    pub student_loss: Vec<f64>,
    /// The fake score's DSM loss of each other iteration.
    pub fake_loss: Vec<f64>,
    /// The discriminator's loss of each other iteration.
    pub disc_loss: Vec<f64>,
    /// The largest normalised weight h of each student update (1 throughout for reverse KL).
    pub h_max: Vec<f64>,
    /// The discriminator on (x_t, t) (inner device): its logit estimates log p_t/q_t.
    pub discriminator: Mlp,
}

impl Distilled {
    /// The discriminator's logits (its estimate of log p_t/q_t, before clipping) at rows of `xt`
    /// at their own times.
    pub fn log_ratio(&self, xt: Tensor<2>, t: &[f64]) -> Result<Vec<f64>> {
        let [n, d] = xt.dims();
        if t.len() != n || d != self.student.net.dim() {
            return invalid(format!("{n} rows of width {d} with {} times", t.len()));
        }
        let dev = crate::training::device_of(&self.student.net);
        let x = crate::training::to_net_input(xt, &dev)?;
        let tt = Tensor::from_data(
            TensorData::new(t.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n]),
            &dev,
        );
        Ok(gradlab_core::bridge::to_host(logits(
            &self.discriminator,
            x,
            tt,
        ))?)
    }

    /// `n` one-step samples from seed `seed`.
    pub fn sample(
        &self,
        n: usize,
        process: &impl crate::process::Process,
        seed: u64,
    ) -> Result<Tensor<2>> {
        let dev = crate::training::device_of(&self.student.net);
        let mut rng = StdRng::seed_from_u64(seed);
        one_step(&self.student, process, self.t_max, n, &mut rng, &dev)
    }
}

/// G = x̂₀ of the student at (σ(t_max)·z, t_max) for n fresh z on `dev`.
fn one_step(
    student: &EdmDenoiser,
    process: &impl crate::process::Process,
    t_max: f64,
    n: usize,
    rng: &mut StdRng,
    dev: &Device,
) -> Result<Tensor<2>> {
    let (_, s) = process.marginal(t_max)?;
    let z = standard_normal([n, student.net.dim()], rng, dev);
    student.denoise(process, z * s, &vec![t_max; n])
}

/// A `[n, d]` standard normal f32 tensor on `dev`.
fn standard_normal(dims: [usize; 2], rng: &mut StdRng, dev: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..dims[0] * dims[1])
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(v, dims), dev)
}

/// x_t = α_t x₀ + σ_t ε with each row at its own time, and the times as a tensor.
fn noised(
    process: &impl crate::process::Process,
    x0: Tensor<2>,
    t: &[f64],
    rng: &mut StdRng,
) -> Result<(Tensor<2>, Tensor<1>)> {
    let dev = x0.device();
    let [n, d] = x0.dims();
    let (mut a, mut s) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for &ti in t {
        let m = process.marginal(ti)?;
        a.push(m.0 as f32);
        s.push(m.1 as f32);
    }
    let col = |v: Vec<f32>| Tensor::<2>::from_data(TensorData::new(v, [n, 1]), &dev);
    let eps = standard_normal([n, d], rng, &dev);
    let tt = Tensor::from_data(
        TensorData::new(t.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n]),
        &dev,
    );
    Ok((x0 * col(a) + eps * col(s), tt))
}

/// The discriminator's logit for noised points at their times, `[n, 1]`.
fn logits(disc: &Mlp, xt: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
    disc.forward(Tensor::cat(vec![xt, time_features(t, DISC_FREQUENCIES)], 1))
}

const DISC_FREQUENCIES: usize = 8;

/// An error naming `what` unless `loss` is finite; its value otherwise.
fn finite(loss: &Tensor<1>, what: &'static str, step: usize) -> Result<f64> {
    let v = loss.clone().into_scalar::<f64>();
    if v.is_finite() {
        Ok(v)
    } else {
        Err(GenError::NonFinite {
            what,
            step,
            t: f64::NAN,
        })
    }
}

/// Distil a one-step generator from a teacher by f-divergence distribution matching, the loop of
/// FastGen's `FdistillModel` (on `DMD2Model`):
///
/// - `init` is the teacher as a network predicting x̂₀ (the student and the fake score both start
///   as copies of it); `teacher(x_t, t)` is the teacher's x̂₀ for rows at their own times (exact
///   where an oracle exists: [`crate::score::GmmOracle::denoised_rows`]); `real(n, seed)` draws
///   `[n, d]` real data for the discriminator (f-distill needs it);
/// - every `student_every`-th iteration (counted from 1) the student moves by [`vsd_loss`] with h
///   from the discriminator's logits on its noised samples (normalised per bin of EDM noise level
///   σ_t/α_t over the grid's [σ_min, σ_max], linearly, as FastGen bins its t = σ), plus
///   `gan_weight`·softplus(−D) through the noised samples;
/// - the other iterations train the fake score by DSM (x̂₀ MSE) on the detached student's
///   samples and the discriminator by softplus(D(fake)) + softplus(−D(real)), real data noised
///   at its own times.
///
/// Times come from `times` ([`KarrasTimes::official`] as FastGen). Plain Adam (β = (0.9, 0.999),
/// burn's ε = 1e-5) for all three networks: FastGen's AdamW weight decay 0.01, ε 1e-8, the
/// student's gradient-norm clip 10 and its EMA copies are left out.
pub fn distill<P: crate::process::Process>(
    init: &EdmDenoiser,
    teacher: impl Fn(Tensor<2>, &[f64]) -> Result<Tensor<2>>,
    process: &P,
    times: &KarrasTimes,
    mut real: impl FnMut(usize, u64) -> Tensor<2>,
    settings: &FdistillSettings,
) -> Result<Distilled> {
    settings.validate()?;
    let dev = Device::flex().autodiff();
    let d = init.net.dim();
    let sigma_data = init.sigma_data;
    let mut student = init.net.clone().train();
    let mut fake = init.net.clone().train();
    let edm = |net: &TimeMlp| EdmDenoiser {
        net: net.clone(),
        sigma_data,
    };
    let mut disc = MlpConfig::new(vec![
        d + 1 + 2 * DISC_FREQUENCIES,
        settings.disc_hidden,
        settings.disc_hidden,
        1,
    ])
    .with_activation(Activation::Silu)
    .init(&dev, settings.seed ^ 0xD15C);
    let (mut opt_g, mut opt_f, mut opt_d) = (
        AdamConfig::new().init(),
        AdamConfig::new().init(),
        AdamConfig::new().init(),
    );
    // FastGen bins the ratio over the scheduler's [min_t, max_t], linearly in EDM's t = σ.
    let (sigma_min, sigma_max) = times.sigma_range();
    let mut norm = RatioNormalizer::new(settings.bins, settings.ratio_ema, sigma_min, sigma_max)?;
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xFD15);
    let n = settings.batch;
    let mut out = Distilled {
        student: init.clone(),
        t_max: times.t_max(),
        student_loss: vec![],
        fake_loss: vec![],
        disc_loss: vec![],
        h_max: vec![],
        discriminator: disc.valid(),
    };
    // FastGen's trainer counts iterations from 1, so the first student update (iteration 5)
    // follows four fake-score and discriminator updates.
    for it in 1..=settings.iterations {
        let t: Vec<f64> = (0..n).map(|_| times.draw(&mut rng)).collect();
        if it % settings.student_every == 0 {
            let g = one_step(&edm(&student), process, times.t_max(), n, &mut rng, &dev)?;
            let (xt, tt) = noised(process, g.clone(), &t, &mut rng)?;
            let fake_x0 = edm(&fake)
                .denoise(process, xt.clone().detach(), &t)?
                .detach();
            let teacher_x0 = teacher(xt.clone().detach(), &t)?;
            if teacher_x0.dims() != [n, d] {
                return invalid(format!(
                    "the teacher returned {:?} for [{n}, {d}]",
                    teacher_x0.dims()
                ));
            }
            let l = logits(&disc, xt, tt);
            let rows: Vec<Vec<f64>> = gradlab_core::bridge::to_host(l.clone().detach())?
                .into_iter()
                .map(|v| vec![v])
                .collect();
            let levels = t
                .iter()
                .map(|ti| process.marginal(*ti).map(|(a, s)| s / a))
                .collect::<Result<Vec<f64>>>()?;
            let h = norm.weights(settings.divergence, &rows, &levels)?;
            out.h_max
                .push(h.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
            let h = Tensor::<2>::from_data(
                TensorData::new(h.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n, 1]),
                &dev,
            );
            let loss = vsd_loss(g, teacher_x0.cast(burn::tensor::DType::F32), fake_x0, h)?
                + softplus(-l, 1.0).mean() * settings.gan_weight;
            out.student_loss
                .push(finite(&loss, "f-distill student loss", it)?);
            let grads = GradientsParams::from_grads(loss.backward(), &student);
            student = opt_g.step(settings.lr, student, grads);
        } else {
            let g = one_step(&edm(&student), process, times.t_max(), n, &mut rng, &dev)?.detach();
            let (xt, tt) = noised(process, g.clone(), &t, &mut rng)?;
            // FastGen's `denoising_score_matching_loss` for x₀ prediction: plain MSE, no weighting
            // (or EDM's 1/c_out², as an option).
            let mut err = edm(&fake).denoise(process, xt.clone(), &t)? - g;
            if settings.edm_weighted_fake_loss {
                err = err / edm_columns(process, sigma_data, &t, &dev)?.1;
            }
            let fake_loss = err.square().mean();
            out.fake_loss
                .push(finite(&fake_loss, "fake-score loss", it)?);
            let grads = GradientsParams::from_grads(fake_loss.backward(), &fake);
            fake = opt_f.step(settings.lr, fake, grads);

            let x0 = crate::training::to_net_input(real(n, rng.random()), &dev)?;
            if x0.dims() != [n, d] {
                return invalid(format!("real data of shape {:?} for [{n}, {d}]", x0.dims()));
            }
            let t_real: Vec<f64> = (0..n).map(|_| times.draw(&mut rng)).collect();
            let (xr, tr) = noised(process, x0, &t_real, &mut rng)?;
            let d_loss = softplus(logits(&disc, xt, tt), 1.0).mean()
                + softplus(-logits(&disc, xr, tr), 1.0).mean();
            out.disc_loss
                .push(finite(&d_loss, "discriminator loss", it)?);
            let grads = GradientsParams::from_grads(d_loss.backward(), &disc);
            disc = opt_d.step(settings.lr, disc, grads);
        }
    }
    out.student = EdmDenoiser {
        net: student.valid(),
        sigma_data,
    };
    out.discriminator = disc.valid();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_core::bridge::{from_host, to_host};

    /// h(r) ∝ r² f″(r) for each divergence's generator f, f″ by central differences (an
    /// independent check of the official table, up to each divergence's constant).
    #[test]
    fn weightings_are_r_squared_f_second_derivative() {
        type Generator = fn(f64) -> f64;
        let fs: [(Divergence, Generator); 6] = [
            (Divergence::ReverseKl, |r| -r.ln()),
            (Divergence::Kl, |r| r * r.ln()),
            (Divergence::Js, |r| {
                r * r.ln() - (1.0 + r) * ((1.0 + r) / 2.0).ln()
            }),
            (Divergence::Neyman, |r| (1.0 - r).powi(2) / r),
            (Divergence::SquaredHellinger, |r| (r.sqrt() - 1.0).powi(2)),
            (Divergence::Jeffreys, |r| (r - 1.0) * r.ln()),
        ];
        for (div, f) in fs {
            let second = |r: f64| {
                let e = 1e-4 * r;
                r * r * (f(r + e) - 2.0 * f(r) + f(r - e)) / (e * e)
            };
            let c = second(1.0) / div.h(1.0);
            for r in [0.2, 0.5, 2.0, 7.0] {
                let want = second(r) / c;
                assert!(
                    (div.h(r) - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "{div:?} at {r}: {} vs {want}",
                    div.h(r)
                );
            }
        }
        assert!(Divergence::parse("chi2").is_err());
        for name in DIVERGENCES {
            assert_eq!(Divergence::parse(name).unwrap().name(), name);
        }
    }

    #[test]
    fn ratios_are_clamped_and_bins_normalise_per_time() {
        assert!((ratio(&[50.0]).unwrap() - 20.0).abs() < 1e-12);
        assert!((ratio(&[-50.0]).unwrap() - 0.1).abs() < 1e-12);
        assert!((ratio(&[1.0, -1.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!(ratio(&[]).is_err() && ratio(&[f64::NAN]).is_err());
        // Two bins; each holds samples whose r is twice the other's: after normalising by the
        // bin means, KL's weights are 2/3 and 4/3 in both bins (mean 1).
        let mut n = RatioNormalizer::new(2, 0.0, 0.0, 1.0).unwrap();
        let l = |r: f64| vec![r.ln()];
        let h = n
            .weights(
                Divergence::Kl,
                &[l(1.0), l(2.0), l(4.0), l(8.0)],
                &[0.1, 0.2, 0.7, 0.8],
            )
            .unwrap();
        for (got, want) in h.iter().zip([2.0 / 3.0, 4.0 / 3.0, 2.0 / 3.0, 4.0 / 3.0]) {
            assert!((got - want).abs() < 1e-5, "{h:?}");
        }
        assert!((n.bins()[0] - 1.5).abs() < 1e-5 && (n.bins()[1] - 6.0).abs() < 1e-5);
        // An EMA keeps part of the history; empty bins stay as they were.
        let mut e = RatioNormalizer::new(2, 0.5, 0.0, 1.0).unwrap();
        e.weights(Divergence::Js, &[l(3.0)], &[0.2]).unwrap();
        assert!((e.bins()[0] - 2.0).abs() < 1e-5 && e.bins()[1] == 1.0);
        assert!(RatioNormalizer::new(0, 0.0, 0.0, 1.0).is_err());
        assert!(RatioNormalizer::new(2, 1.0, 0.0, 1.0).is_err());
        assert!(n.weights(Divergence::Kl, &[l(1.0)], &[0.1, 0.2]).is_err());
        assert!(n.weights(Divergence::Kl, &[l(1.0)], &[f64::NAN]).is_err());
    }

    #[test]
    fn the_vsd_gradient_moves_the_generator_towards_the_teacher() {
        // ∂loss/∂G = (G − target)/numel = w·h·(fake − teacher)/numel: descending it moves G away
        // from the fake prediction and towards the teacher's.
        let dev = Device::flex().autodiff();
        let g = from_host(&[0.0, 0.0], [1, 2], &dev).unwrap().require_grad();
        let teacher = from_host(&[1.0, 0.0], [1, 2], &dev).unwrap();
        let fake = from_host(&[-1.0, 0.0], [1, 2], &dev).unwrap();
        let h = from_host(&[2.0], [1, 1], &dev).unwrap();
        let loss = vsd_loss(g.clone(), teacher, fake, h).unwrap();
        let grad = to_host(g.grad(&loss.backward()).unwrap()).unwrap();
        // w = 1/(mean|G − teacher| + 1e-6) = 1/0.5; grad = w·h·(−2, 0)/2 = (−4, 0) (up to 1e-6).
        assert!(
            (grad[0] + 4.0).abs() < 1e-4 && grad[1].abs() < 1e-12,
            "{grad:?}"
        );
        assert!(
            vsd_loss(
                from_host(&[0.0], [1, 1], &dev).unwrap(),
                from_host(&[0.0; 2], [1, 2], &dev).unwrap(),
                from_host(&[0.0; 2], [1, 2], &dev).unwrap(),
                from_host(&[1.0], [1, 1], &dev).unwrap()
            )
            .is_err()
        );
    }

    #[test]
    fn karras_times_map_the_official_grid_onto_process_time() {
        use crate::process::{Process, Sde};
        let vp = Sde::vp();
        let k = KarrasTimes::official(&vp).unwrap();
        let level = |t: f64| {
            let (a, s) = vp.marginal(t).unwrap();
            s / a
        };
        // σ_i by hand at the ends of the drawn indices (2 and 998 of 0..1000) and at σ_max.
        let karras = |i: f64| {
            let (a, b) = (80f64.powf(1.0 / 7.0), 0.002f64.powf(1.0 / 7.0));
            (a + (1.0 - i / 999.0) * (b - a)).powi(7)
        };
        let sup = k.support();
        assert_eq!(sup.len(), 997);
        for (t, want) in [
            (sup[0], karras(2.0)),
            (sup[996], karras(998.0)),
            (k.t_max(), 80.0),
        ] {
            assert!(
                (level(t) / want - 1.0).abs() < 1e-9,
                "{} vs {want}",
                level(t)
            );
        }
        assert!(sup.windows(2).all(|w| w[0] < w[1]));
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..200 {
            let t = k.draw(&mut rng);
            assert!(sup.contains(&t));
        }
        // VP's σ/α reaches only about 151 at t = 1.
        assert!(KarrasTimes::new(&vp, 100, 7.0, (0.002, 1e6), 0.0, 1.0).is_err());
        assert!(KarrasTimes::new(&vp, 1, 7.0, (0.002, 80.0), 0.0, 1.0).is_err());
        assert!(KarrasTimes::new(&vp, 100, 7.0, (0.002, 80.0), 0.5, 0.5).is_err());
    }

    #[test]
    fn distillation_moves_a_one_step_generator_onto_the_teachers_law() {
        // Data N((1, −1), 0.3² I) with its exact teacher; the student and fake score start from
        // an untrained network (its one-step samples sit near 0). After distillation the
        // samples' mean and spread are the data's.
        use crate::process::Sde;
        use crate::score::GmmOracle;
        use gradlab_data::toy2d::Gmm2;
        let data = Gmm2::isotropic(vec![[1.0, -1.0]], 0.3).unwrap();
        let oracle = GmmOracle::new(Sde::vp(), data.clone()).unwrap();
        let init = EdmDenoiser {
            net: gradlab_nets::time_mlp::TimeMlpConfig::new(2)
                .with_hidden(32)
                .with_layers(2)
                .init(&Device::flex(), 3),
            sigma_data: 1.0,
        };
        let times = KarrasTimes::official(&Sde::vp()).unwrap();
        let settings = FdistillSettings {
            divergence: Divergence::Kl,
            iterations: 3000,
            batch: 128,
            disc_hidden: 32,
            ..FdistillSettings::default()
        };
        let moments = |g: &Distilled| {
            crate::points::moments(&g.sample(2000, &Sde::vp(), 9).unwrap()).unwrap()
        };
        let run = |iterations| {
            let s = FdistillSettings {
                iterations,
                ..settings.clone()
            };
            distill(
                &init,
                |x, t| oracle.denoised_rows(x, t),
                &Sde::vp(),
                &times,
                |n, seed| crate::points::from_pairs(&data.sample(n, seed)),
                &s,
            )
            .unwrap()
        };
        let (m0, _) = moments(&run(1));
        let out = run(settings.iterations);
        let (m, v) = moments(&out);
        assert!((m0[0] - 1.0).abs() > 0.5, "{m0:?}");
        assert!(
            (m[0] - 1.0).abs() < 0.1 && (m[1] + 1.0).abs() < 0.1,
            "{m:?}"
        );
        assert!(
            [v[0], v[3]].iter().all(|v| (v.sqrt() - 0.3).abs() < 0.1),
            "{v:?}"
        );
        assert_eq!(out.student_loss.len(), 600);
        assert_eq!(out.fake_loss.len(), 2400);
        let bad = FdistillSettings {
            student_every: 0,
            ..settings.clone()
        };
        let err = distill(
            &init,
            |x, t| oracle.denoised_rows(x, t),
            &Sde::vp(),
            &times,
            |n, seed| crate::points::from_pairs(&data.sample(n, seed)),
            &bad,
        );
        assert!(err.is_err());
    }

    #[test]
    fn the_preconditioning_alone_is_the_exact_denoiser_of_gaussian_data() {
        // With F ≡ 0, x̂₀ = c_skip x_t/α = E[x₀ | x_t] for x₀ ~ N(0, σ_d² I): the coefficients
        // against the Gaussian posterior mean (GmmOracle with one component at 0).
        use crate::process::Sde;
        use crate::score::GmmOracle;
        use burn::module::Param;
        use gradlab_data::toy2d::Gmm2;
        let net = gradlab_nets::time_mlp::TimeMlpConfig::new(2).init(&Device::flex(), 0);
        let mut layers = net.mlp().layers.clone();
        let last = layers.last_mut().unwrap();
        last.weight = Param::from_tensor(last.weight.val().zeros_like());
        last.bias = last
            .bias
            .clone()
            .map(|b| Param::from_tensor(b.val().zeros_like()));
        let d = EdmDenoiser {
            net: net.with_layers(layers).unwrap(),
            sigma_data: 0.7,
        };
        let oracle =
            GmmOracle::new(Sde::vp(), Gmm2::isotropic(vec![[0.0, 0.0]], 0.7).unwrap()).unwrap();
        let x = [0.4, -1.2, 2.0, 0.3, -0.1, 0.05];
        let t = [0.01, 0.5, 0.95];
        let xt = || gradlab_core::bridge::from_host(&x, [3, 2], &Device::flex()).unwrap();
        let got = gradlab_core::bridge::to_host(d.denoise(&Sde::vp(), xt(), &t).unwrap()).unwrap();
        let want = gradlab_core::bridge::to_host(oracle.denoised_rows(xt(), &t).unwrap()).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() < 1e-5 * (1.0 + w.abs()),
                "{got:?} vs {want:?}"
            );
        }
    }
}
