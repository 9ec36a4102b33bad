//! SGMSE+ (Richter, Welker, Lemercier, Lay and Gerkmann, "Speech Enhancement and Dereverberation
//! with Diffusion-based Generative Models", TASLP 2023), as sp-uhh/sgmse codes it
//! (`sgmse/sdes.py`, `sgmse/model.py`, `sgmse/sampling/`, `sgmse/data_module.py`):
//!
//! - the signal: waveforms normalised by the noisy one's max |y| (`normalize="noisy"`), a
//!   one-sided STFT with a periodic Hann window and `center=True`, and the compressed spectrogram
//!   0.15·|c|^0.5·e^{i∠c} ([`SpecSettings`]); a complex bin is two real channels;
//! - the process: the OUVE SDE from the clean x₀ towards the noisy y ([`crate::process::Ouve`],
//!   run on u = x − y), prior u_T = std(1)·z with complex z (std(1)²/2 per real coordinate);
//! - the score network reads [x_t, y] (4 channels: Re x, Im x, Re y, Im y, the official order) and
//!   its output becomes the score of x_t as −out/σ_t (a noise prediction; the official NCSN++
//!   divides its last features by the time t before a 1×1 output convolution, so its score is
//!   −(W·h/t + b) — the same objective under a reparameterisation; its newer `ncsnpp_v2` has this
//!   exact 1/σ form), trained by ‖σ_t s + z‖² = ‖out − z‖² (4× the official ½Σ|σ s + z|² in
//!   real coordinates, the same minimiser) at t ~ U(0.03, 1) ([`train_sgmse`]);
//! - predictor–corrector sampling in the **official order — the corrector before the
//!   predictor** at each of N times linspace(1, 0.03, N) ([`pc_sample`]): annealed Langevin with
//!   step ε = 2(r·σ_t)² (r the "snr", σ_t the process's marginal std, not the gradient-norm rule
//!   of score_sde), then the reverse-diffusion predictor u ← u − f·Δ + g²Δ·s + g√Δ·z with
//!   Δ = t_i − t_{i+1} and, at the last time, Δ = 0.03 ("from eps to 0"); the result is the last
//!   predictor mean (no noise). NFE = N·(1 + corrector steps): 60 for the official N = 30.
//!
//! [`Enhancer`] runs a trained network on a waveform (the whole spectrogram at once: the U-Net
//! takes any number of frames, so the official zero padding to a multiple of 64 frames is not
//! needed). A direct predictive denoiser of the same network ([`train_predictive`]) is the
//! paper's baseline. Training here decays Adam's learning rate linearly (the official keeps
//! 1e-4) and uses burn's ε = 1e-5 (torch's 1e-8).

use crate::process::{Ouve, Process};
use crate::{GenError, Result, invalid};
use burn::module::Module;
use burn::prelude::*;
use gradlab_audio::stft::{Spectrogram, Stft, compress, expand};
use gradlab_audio::wav::Audio;
use gradlab_nets::unet::UNet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// The spectrogram representation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpecSettings {
    /// The sample rate the model works at.
    pub rate: u32,
    /// STFT size.
    pub n_fft: usize,
    /// STFT hop.
    pub hop: usize,
    /// Magnitude exponent β (official 0.5).
    pub exponent: f64,
    /// Scale α (official 0.15).
    pub factor: f64,
}

impl SpecSettings {
    /// The official 16 kHz setting: n_fft 510, hop 128 (32 ms / 8 ms), β 0.5, α 0.15.
    pub fn official() -> Self {
        Self {
            rate: 16000,
            n_fft: 510,
            hop: 128,
            exponent: 0.5,
            factor: 0.15,
        }
    }

    /// The same durations at 8 kHz (narrowband speech): n_fft 254, hop 64.
    pub fn narrowband() -> Self {
        Self {
            rate: 8000,
            n_fft: 254,
            hop: 64,
            ..Self::official()
        }
    }

    fn stft(&self) -> Result<Stft> {
        Stft::new(self.n_fft, self.hop).map_err(audio_err)
    }

    /// Frequency bins (the images' height).
    pub fn bins(&self) -> usize {
        self.n_fft / 2 + 1
    }

    /// The compressed spectrogram of `x` as `[2, bins, frames]` channels (re, im), f32.
    pub fn channels(&self, x: &[f32]) -> Result<(Vec<f32>, usize)> {
        let spec = compress(
            &self.stft()?.forward(x).map_err(audio_err)?,
            self.exponent,
            self.factor,
        )
        .map_err(audio_err)?;
        Ok((
            spec.re.iter().chain(&spec.im).map(|v| *v as f32).collect(),
            spec.frames,
        ))
    }

    /// The waveform of `len` samples whose compressed spectrogram has channels `data`
    /// (`[2, bins, frames]`).
    pub fn waveform(&self, data: &[f32], frames: usize, len: usize) -> Result<Vec<f32>> {
        let n = self.bins() * frames;
        if data.len() != 2 * n {
            return invalid(format!(
                "{} values for 2 × {} × {frames} channels",
                data.len(),
                self.bins()
            ));
        }
        let spec = Spectrogram {
            bins: self.bins(),
            frames,
            re: data[..n].iter().map(|v| *v as f64).collect(),
            im: data[n..].iter().map(|v| *v as f64).collect(),
        };
        self.stft()?
            .inverse(
                &expand(&spec, self.exponent, self.factor).map_err(audio_err)?,
                len,
            )
            .map_err(audio_err)
    }
}

fn audio_err(e: gradlab_audio::AudioError) -> GenError {
    GenError::Invalid(e.to_string())
}

/// Settings of [`pc_sample`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PcSettings {
    /// Reverse steps N (official 30; 50 for dereverberation).
    pub steps: usize,
    /// The corrector's r (official 0.5; 0.33 for dereverberation).
    pub snr: f64,
    /// Corrector steps per time (official 1).
    pub corrector_steps: usize,
    /// The last time (official 0.03).
    pub t_eps: f64,
}

impl PcSettings {
    /// The official enhancement setting: N = 30, r = 0.5, one ALD step, t_ε = 0.03.
    pub fn official() -> Self {
        Self {
            steps: 30,
            snr: 0.5,
            corrector_steps: 1,
            t_eps: 0.03,
        }
    }

    /// The official dereverberation setting: N = 50, r = 0.33.
    pub fn dereverberation() -> Self {
        Self {
            steps: 50,
            snr: 0.33,
            ..Self::official()
        }
    }

    /// Score evaluations: N·(1 + corrector steps).
    pub fn nfe(&self) -> usize {
        self.steps * (1 + self.corrector_steps)
    }

    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn validate(&self) -> Result<()> {
        if self.steps < 2
            || !(self.snr >= 0.0 && self.snr.is_finite())
            || !(self.t_eps > 0.0 && self.t_eps < 1.0)
        {
            return invalid(format!(
                "PC sampling needs N ≥ 2, r ≥ 0 and t_ε in (0, 1); got {}, {}, {}",
                self.steps, self.snr, self.t_eps
            ));
        }
        Ok(())
    }
}

/// Predictor–corrector sampling of u = x − y in the official order (see the module docs) from
/// `u` (a prior draw), with `score(u, t)` the score of u_t and `noise(dims)` the standard normal
/// draws; returns the last predictor mean and the NFE.
pub fn pc_sample(
    mut score: impl FnMut(Tensor<4>, f64) -> Result<Tensor<4>>,
    process: &Ouve,
    mut u: Tensor<4>,
    settings: &PcSettings,
    mut noise: impl FnMut([usize; 4]) -> Tensor<4>,
) -> Result<(Tensor<4>, usize)> {
    settings.validate()?;
    let n = settings.steps;
    let times: Vec<f64> = (0..n)
        .map(|i| 1.0 + (settings.t_eps - 1.0) * i as f64 / (n - 1) as f64)
        .collect();
    let dims = u.dims();
    let mut mean = u.clone();
    let mut nfe = 0;
    for (i, &t) in times.iter().enumerate() {
        let step = if i + 1 < n {
            t - times[i + 1]
        } else {
            times[n - 1]
        };
        let (_, sigma) = process.marginal(t)?;
        // Corrector first: annealed Langevin with ε = 2(r σ_t)².
        for _ in 0..settings.corrector_steps {
            let s = finite(score(u.clone(), t)?, "score", i, t)?;
            nfe += 1;
            let eps = 2.0 * (settings.snr * sigma).powi(2);
            u = u + s * eps + noise(dims) * (2.0 * eps).sqrt();
        }
        // Then the reverse-diffusion predictor.
        let (f, g) = process.coefficients(t)?;
        let s = finite(score(u.clone(), t)?, "score", i, t)?;
        nfe += 1;
        mean = u.clone() - u * (f * step) + s * (g * g * step);
        u = mean.clone() + noise(dims) * (g * step.sqrt());
    }
    Ok((mean, nfe))
}

fn finite(x: Tensor<4>, what: &'static str, step: usize, t: f64) -> Result<Tensor<4>> {
    if x.clone().is_finite().all().into_scalar::<bool>() {
        Ok(x)
    } else {
        Err(GenError::NonFinite { what, step, t })
    }
}

/// A `[n, 1, 1, 1]`-broadcastable column of per-example values.
fn column(v: &[f64], dev: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(
            v.iter().map(|x| *x as f32).collect::<Vec<_>>(),
            [v.len(), 1, 1, 1],
        ),
        dev,
    )
}

/// Standard normal f32 draws of `dims` on `dev`.
pub fn normal4(dims: [usize; 4], rng: &mut StdRng, dev: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..dims.iter().product())
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(v, dims), dev)
}

/// How the network's output becomes the score of u_t = x_t − y.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Parameterisation {
    /// The official form: the network reads [x_t, y] and s = −out/σ_t (a noise prediction; the
    /// official NCSN++ divides by the time t instead, a detail of its released weights), trained
    /// by ‖σ_t s + z‖² = ‖out − z‖².
    Noise,
    /// EDM's preconditioning in u (not in the official code): with ũ = u_t/α_t at noise level
    /// λ = σ_t/α_t, D = c_skip ũ + c_out F([c_in ũ, y], t), c_skip = σ_d²/(λ² + σ_d²),
    /// c_out = λσ_d/√(λ² + σ_d²), c_in = 1/√(λ² + σ_d²), and s = (α_t D − u_t)/σ_t²; trained by
    /// ‖F − (u₀ − c_skip ũ)/c_out‖² (EDM's weighting). A small network reaches a usable precision
    /// far sooner: its errors are scaled by c_out instead of amplified by σ_t/α_t.
    Edm {
        /// σ_d, the standard deviation of u₀ = x − y in the compressed domain.
        sigma_data: f64,
    },
}

impl Parameterisation {
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn validate(&self) -> Result<()> {
        match self {
            Self::Edm { sigma_data } if !(*sigma_data > 0.0 && sigma_data.is_finite()) => {
                invalid(format!("σ_d must be positive, got {sigma_data}"))
            }
            _ => Ok(()),
        }
    }

    /// (input scale of u, skip, output scale) at t: the network reads [in·u (+ y for Noise), y]
    /// and D or −ε̂σ is skip·u + out·F.
    fn coefficients(&self, process: &Ouve, t: f64) -> Result<(f64, f64, f64)> {
        let (a, s) = process.marginal(t)?;
        Ok(match *self {
            Self::Noise => (1.0, 0.0, -1.0 / s),
            Self::Edm { sigma_data: d } => {
                let l = s / a;
                let norm = (l * l + d * d).sqrt();
                (1.0 / norm / a, d * d / (l * l + d * d) / a, l * d / norm)
            }
        })
    }
}

/// A trained SGMSE+ network with its process and representation.
#[derive(Debug, Clone)]
pub struct Enhancer {
    /// The score network: 4 channels in ([x_t, y] or [c_in ũ, y]), 2 out.
    pub net: UNet,
    /// How its output becomes the score.
    pub param: Parameterisation,
    /// The SDE.
    pub process: Ouve,
    /// The representation.
    pub spec: SpecSettings,
}

/// The network's 4-channel input for u_t (per-example input scales `scale`).
fn net_input(param: &Parameterisation, u: Tensor<4>, y: Tensor<4>, scale: Tensor<4>) -> Tensor<4> {
    match param {
        Parameterisation::Noise => Tensor::cat(vec![u + y.clone(), y], 1),
        Parameterisation::Edm { .. } => Tensor::cat(vec![u * scale, y], 1),
    }
}

/// The score of u_t = x_t − y under `param`.
fn score_of(
    net: &UNet,
    param: &Parameterisation,
    process: &Ouve,
    u: Tensor<4>,
    y: Tensor<4>,
    t: f64,
) -> Result<Tensor<4>> {
    let n = u.dims()[0];
    let dev = crate::training::device_of(net);
    let (c_in, skip, c_out) = param.coefficients(process, t)?;
    let input = net_input(
        param,
        u.clone(),
        y,
        Tensor::full([n, 1, 1, 1], c_in as f32, &dev),
    );
    let f = net.forward_image(input, Tensor::full([n], t as f32, &dev));
    Ok(match param {
        Parameterisation::Noise => f * c_out,
        Parameterisation::Edm { .. } => {
            let (a, s) = process.marginal(t)?;
            let d = u.clone() * skip + f * c_out;
            (d * a - u) / (s * s)
        }
    })
}

impl Enhancer {
    /// Enhance noisy compressed spectrograms `y` (`[n, 2, bins, frames]`): x̂ = y + PC sample of u.
    pub fn enhance_spec(
        &self,
        y: Tensor<4>,
        sampler: &PcSettings,
        seed: u64,
    ) -> Result<(Tensor<4>, usize)> {
        check_channels(&y, self.spec.bins())?;
        self.param.validate()?;
        let dev = crate::training::device_of(&self.net);
        let y = y.to_device(&dev);
        let mut rng = StdRng::seed_from_u64(seed);
        let u = normal4(y.dims(), &mut rng, &dev) * self.process.prior_std();
        let (u, nfe) = pc_sample(
            |u, t| score_of(&self.net, &self.param, &self.process, u, y.clone(), t),
            &self.process,
            u,
            sampler,
            |d| normal4(d, &mut rng, &dev),
        )?;
        Ok((u + y, nfe))
    }

    /// Enhance a noisy waveform at the model's rate (normalised by its max |y|, restored after).
    pub fn enhance(&self, noisy: &Audio, sampler: &PcSettings, seed: u64) -> Result<Vec<f32>> {
        enhance_waveform(&self.spec, noisy, |y| {
            Ok(self.enhance_spec(y, sampler, seed)?.0)
        })
    }
}

/// The checks and the normalise → spectrogram → `run` → waveform pipeline both enhancers share.
pub fn enhance_waveform(
    spec: &SpecSettings,
    noisy: &Audio,
    run: impl FnOnce(Tensor<4>) -> Result<Tensor<4>>,
) -> Result<Vec<f32>> {
    if noisy.rate != spec.rate {
        return invalid(format!(
            "the model works at {} Hz but the audio is at {} Hz; resample it first (e.g. `sox in.wav -r {} out.wav`)",
            spec.rate, noisy.rate, spec.rate
        ));
    }
    if noisy.samples.len() <= spec.n_fft {
        return invalid(format!(
            "{} samples is too short to enhance (more than {} needed)",
            noisy.samples.len(),
            spec.n_fft
        ));
    }
    let peak = noisy.samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak == 0.0 {
        return invalid("the audio is silent");
    }
    let scaled: Vec<f32> = noisy.samples.iter().map(|v| v / peak).collect();
    let (data, frames) = spec.channels(&scaled)?;
    let y = Tensor::<4>::from_data(
        TensorData::new(data, [1, 2, spec.bins(), frames]),
        &Device::flex(),
    );
    let out = run(y)?;
    let values = gradlab_core::bridge::to_host(out.reshape([2 * spec.bins() * frames]))?;
    let values: Vec<f32> = values.iter().map(|v| *v as f32).collect();
    let x = spec.waveform(&values, frames, noisy.samples.len())?;
    Ok(x.iter().map(|v| v * peak).collect())
}

fn check_channels(y: &Tensor<4>, bins: usize) -> Result<()> {
    let [_, c, h, w] = y.dims();
    if c != 2 || h != bins || w == 0 {
        return invalid(format!(
            "spectrograms of shape [_, {c}, {h}, {w}] for a model of 2 × {bins} × frames"
        ));
    }
    Ok(())
}

/// Train a score network (built on the autodiff device, 4 channels in, 2 out) by SGMSE's loss on
/// (clean, noisy) compressed-spectrogram batches from `pairs(n, seed)` (`[n, 2, bins, frames]`
/// each): u_t = e^{−γt}(x − y) + σ_t z at t ~ U(t_ε, 1); for [`Parameterisation::Noise`] the
/// official ‖net([u_t + y, y], t) − z‖² per example, for [`Parameterisation::Edm`] EDM's
/// ‖F − (u₀ − c_skip ũ)/c_out‖²; Adam and the official EMA of the weights (0.999, warmed up).
/// The averaged network comes back on the inner device.
pub fn train_sgmse(
    net: UNet,
    param: Parameterisation,
    process: &Ouve,
    mut pairs: impl FnMut(usize, u64) -> Result<(Tensor<4>, Tensor<4>)>,
    settings: &crate::training::TrainSettings,
) -> Result<(UNet, Vec<f64>)> {
    param.validate()?;
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x5635);
    let (net, losses) =
        crate::training::fit_net_ema(net, settings, Some(EMA), |net, step, dev| {
            let (x, y) = batch(&mut pairs, settings, step, dev)?;
            let n = x.dims()[0];
            let t: Vec<f64> = (0..n)
                .map(|_| process.t_eps() + (1.0 - process.t_eps()) * rng.random::<f64>())
                .collect();
            let coef = t
                .iter()
                .map(|t| process.marginal(*t))
                .collect::<Result<Vec<_>>>()?;
            let pre = t
                .iter()
                .map(|t| param.coefficients(process, *t))
                .collect::<Result<Vec<_>>>()?;
            let col = |f: &dyn Fn(usize) -> f64| column(&(0..n).map(f).collect::<Vec<_>>(), dev);
            let (alpha, sigma) = (col(&|i| coef[i].0), col(&|i| coef[i].1));
            let (c_in, skip, c_out) = (col(&|i| pre[i].0), col(&|i| pre[i].1), col(&|i| pre[i].2));
            let z = normal4(x.dims(), &mut rng, dev);
            let u0 = x - y.clone();
            let u = u0.clone() * alpha + z.clone() * sigma;
            let tt = Tensor::from_data(
                TensorData::new(t.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n]),
                dev,
            );
            let out = net.forward_image(net_input(&param, u.clone(), y, c_in), tt);
            let target = match param {
                Parameterisation::Noise => z,
                Parameterisation::Edm { .. } => (u0 - u * skip) / c_out,
            };
            Ok(mean_squared_norm(out - target))
        })?;
    Ok((net.valid(), losses))
}

/// The batch mean of each example's squared norm, `[1]`.
fn mean_squared_norm(e: Tensor<4>) -> Tensor<1> {
    e.square().sum_dims(&[1, 2, 3]).mean().reshape([1])
}

/// The official EMA rate of the weights.
pub const EMA: f64 = 0.999;

/// Train the same network as a direct predictive denoiser: x̂ = net([y, y], 0), loss ‖x̂ − x‖²,
/// with the same EMA.
pub fn train_predictive(
    net: UNet,
    mut pairs: impl FnMut(usize, u64) -> Result<(Tensor<4>, Tensor<4>)>,
    settings: &crate::training::TrainSettings,
) -> Result<(UNet, Vec<f64>)> {
    let (net, losses) =
        crate::training::fit_net_ema(net, settings, Some(EMA), |net, step, dev| {
            let (x, y) = batch(&mut pairs, settings, step, dev)?;
            Ok(mean_squared_norm(predict(net, y) - x))
        })?;
    Ok((net.valid(), losses))
}

/// The predictive denoiser's estimate of the clean spectrogram.
pub fn predict(net: &UNet, y: Tensor<4>) -> Tensor<4> {
    let n = y.dims()[0];
    let dev = y.device();
    net.forward_image(Tensor::cat(vec![y.clone(), y], 1), Tensor::zeros([n], &dev))
}

fn batch(
    pairs: &mut impl FnMut(usize, u64) -> Result<(Tensor<4>, Tensor<4>)>,
    settings: &crate::training::TrainSettings,
    step: usize,
    dev: &Device,
) -> Result<(Tensor<4>, Tensor<4>)> {
    let (x, y) = pairs(settings.batch, settings.seed.wrapping_add(step as u64))?;
    if x.dims() != y.dims() || x.dims()[1] != 2 {
        return invalid(format!(
            "clean {:?} and noisy {:?} batches must share a [n, 2, bins, frames] shape",
            x.dims(),
            y.dims()
        ));
    }
    Ok((
        x.cast(burn::tensor::DType::F32).to_device(dev),
        y.cast(burn::tensor::DType::F32).to_device(dev),
    ))
}

/// What a saved enhancer is: its network, process, representation, task and sampler defaults
/// (`enhancer.json` beside the weights `enhancer.bpk`, in a checksummed generation folder).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnhancerCard {
    /// The U-Net's base width.
    pub width: usize,
    /// How its output becomes the score.
    pub param: Parameterisation,
    /// OUVE (γ, σ_min, σ_max).
    pub sde: (f64, f64, f64),
    /// Sample rate, n_fft, hop.
    pub stft: (u32, usize, usize),
    /// Magnitude exponent and factor.
    pub compression: (f64, f64),
    /// "denoising" or "dereverberation".
    pub task: String,
    /// The sampler's default N and r for this task.
    pub sampler: (usize, f64),
    /// Training steps.
    pub train_steps: usize,
    /// Training seed.
    pub seed: u64,
}

const ENHANCER_WEIGHTS: &str = "enhancer.bpk";
const ENHANCER_CARD: &str = "enhancer.json";

impl EnhancerCard {
    /// The card of `enhancer` for `task` with its sampler defaults.
    pub fn of(
        enhancer: &Enhancer,
        task: &str,
        sampler: &PcSettings,
        train_steps: usize,
        seed: u64,
    ) -> Self {
        let s = enhancer.spec;
        Self {
            width: enhancer.net.width(),
            param: enhancer.param,
            sde: enhancer.process.parameters(),
            stft: (s.rate, s.n_fft, s.hop),
            compression: (s.exponent, s.factor),
            task: task.into(),
            sampler: (sampler.steps, sampler.snr),
            train_steps,
            seed,
        }
    }

    /// The sampler defaults as settings.
    pub fn sampler(&self) -> PcSettings {
        PcSettings {
            steps: self.sampler.0,
            snr: self.sampler.1,
            ..PcSettings::official()
        }
    }

    fn check(&self) -> Result<Enhancer> {
        let saved = |m: String| GenError::Saved(format!("the enhancer card is not usable: {m}"));
        let (rate, n_fft, hop) = self.stft;
        if !(1..=256).contains(&self.width)
            || !(1000..=192_000).contains(&rate)
            || !(8..=4096).contains(&n_fft)
        {
            return Err(saved(format!(
                "width {}, rate {rate}, n_fft {n_fft} out of range",
                self.width
            )));
        }
        let process =
            Ouve::new(self.sde.0, self.sde.1, self.sde.2).map_err(|e| saved(e.to_string()))?;
        let spec = SpecSettings {
            rate,
            n_fft,
            hop,
            exponent: self.compression.0,
            factor: self.compression.1,
        };
        spec.stft().map_err(|e| saved(e.to_string()))?;
        self.sampler()
            .validate()
            .map_err(|e| saved(e.to_string()))?;
        self.param.validate().map_err(|e| saved(e.to_string()))?;
        let net = gradlab_nets::unet::UNetConfig::new(4, spec.bins(), 8)
            .with_width(self.width)
            .with_out_channels(Some(2))
            .init(&Device::flex(), 0);
        Ok(Enhancer {
            net,
            param: self.param,
            process,
            spec,
        })
    }
}

/// Save `enhancer` and its card into `dir` (atomically: an earlier save stays valid until the new
/// one is complete).
pub fn save_enhancer(
    dir: &std::path::Path,
    enhancer: &Enhancer,
    card: &EnhancerCard,
) -> Result<()> {
    let saved = |e: gradlab_train::error::TrainError| GenError::Saved(e.to_string());
    gradlab_train::checkpoint::save_set(dir, card.train_steps, |gdir| {
        let weights = gdir.join(ENHANCER_WEIGHTS);
        enhancer
            .net
            .clone()
            .save_file(&weights)
            .map_err(|e| gradlab_train::error::file_err(&weights, e))?;
        let text = serde_json::to_string_pretty(card)
            .map_err(|e| gradlab_train::error::file_err(gdir.join(ENHANCER_CARD), e))?;
        std::fs::write(gdir.join(ENHANCER_CARD), text)
            .map_err(|e| gradlab_train::error::file_err(gdir.join(ENHANCER_CARD), e))
    })
    .map_err(saved)
}

/// The enhancer saved in `dir` and its card; an error naming the folder if anything is missing,
/// corrupt, not finite or not an enhancer.
pub fn load_enhancer(dir: &std::path::Path) -> Result<(Enhancer, EnhancerCard)> {
    let named = |m: String| GenError::Saved(format!("{}: {m}", dir.display()));
    let gdir = gradlab_train::checkpoint::load_set(dir).map_err(|e| named(e.to_string()))?;
    let path = gdir.join(ENHANCER_CARD);
    let text = std::fs::read_to_string(&path).map_err(|_| {
        named("no enhancer card (is this a model saved by `gradlab run sgmse`?)".into())
    })?;
    let card: EnhancerCard =
        serde_json::from_str(&text).map_err(|e| named(format!("not an enhancer card: {e}")))?;
    let mut enhancer = card.check().map_err(|e| named(e.to_string()))?;
    enhancer.net = enhancer
        .net
        .try_load_file(gdir.join(ENHANCER_WEIGHTS))
        .map_err(|_| named("the saved weights do not fit the network its card describes".into()))?;
    if gradlab_core::flat::flatten_host(&enhancer.net)?
        .iter()
        .any(|v| !v.is_finite())
    {
        return Err(named("the saved weights are not all finite".into()));
    }
    Ok((enhancer, card))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the exact score of Gaussian clean data (per coordinate u₀ = x₀ − y ~ N(m, v), so
    /// u_t ~ N(α m, α² v + σ²)), PC sampling at the official settings recovers the law.
    #[test]
    fn pc_sampling_with_the_exact_score_recovers_gaussian_data() {
        let p = Ouve::official();
        let (m, v) = (0.3, 0.04);
        let dev = Device::flex();
        let mut rng = StdRng::seed_from_u64(3);
        let u = normal4([400, 2, 4, 4], &mut rng, &dev) * p.prior_std();
        let exact = |u: Tensor<4>, t: f64| -> Result<Tensor<4>> {
            let (a, s) = p.marginal(t)?;
            Ok((u - a * m) / (-(a * a * v + s * s)))
        };
        let (out, nfe) = pc_sample(exact, &p, u, &PcSettings::official(), |d| {
            normal4(d, &mut rng, &dev)
        })
        .unwrap();
        assert_eq!(nfe, 60);
        let host = gradlab_core::bridge::to_host(out).unwrap();
        let mean = host.iter().sum::<f64>() / host.len() as f64;
        let var = host.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / host.len() as f64;
        assert!((mean - m).abs() < 0.01, "{mean}");
        assert!((var / v - 1.0).abs() < 0.15, "{var}");
    }

    /// Two steps with an affine score s(u) = 1 − c·u and no noise, by hand: the corrector acts before the
    /// predictor at each time, and the last step is Δ = t_ε.
    #[test]
    fn one_pass_is_corrector_then_predictor_in_the_official_order() {
        let p = Ouve::official();
        let c = 3.0;
        let settings = PcSettings {
            steps: 2,
            snr: 0.5,
            corrector_steps: 1,
            t_eps: 0.03,
        };
        let dev = Device::flex();
        let u0 = 0.8;
        let start = Tensor::<4>::full([1, 1, 1, 1], u0, &dev);
        let (out, nfe) = pc_sample(
            |u, _| Ok(u * (-c) + 1.0),
            &p,
            start,
            &settings,
            |d| Tensor::zeros(d, &dev),
        )
        .unwrap();
        assert_eq!(nfe, 4);
        let mut u = u0;
        for (t, step) in [(1.0, 0.97), (0.03, 0.03)] {
            let (_, s) = p.marginal(t).unwrap();
            let eps = 2.0 * (0.5 * s) * (0.5 * s);
            u += eps * (1.0 - c * u);
            let (f, g) = p.coefficients(t).unwrap();
            u = u - f * step * u + g * g * step * (1.0 - c * u);
        }
        let got = gradlab_core::bridge::to_host(out).unwrap()[0];
        assert!((got - u).abs() < 1e-6, "{got} vs {u}");
        // Predictor first would give another value.
        let mut w = u0;
        for (t, step) in [(1.0, 0.97), (0.03, 0.03)] {
            let (f, g) = p.coefficients(t).unwrap();
            w = w - f * step * w + g * g * step * (1.0 - c * w);
            let (_, s) = p.marginal(t).unwrap();
            w += 2.0 * (0.5 * s).powi(2) * (1.0 - c * w);
        }
        assert!((got - w).abs() > 1e-4);
        assert!(
            pc_sample(
                |u, _| Ok(u),
                &p,
                Tensor::zeros([1, 1, 1, 1], &dev),
                &PcSettings {
                    steps: 1,
                    ..settings
                },
                |d| Tensor::zeros(d, &dev)
            )
            .is_err()
        );
    }

    #[test]
    fn the_representation_round_trips_and_bad_audio_is_refused() {
        let spec = SpecSettings::narrowband();
        let x: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
        let (data, frames) = spec.channels(&x).unwrap();
        assert_eq!(data.len(), 2 * 128 * frames);
        let back = spec.waveform(&data, frames, x.len()).unwrap();
        assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-4));
        let identity = |y: Tensor<4>| Ok(y);
        let wrong_rate = Audio {
            rate: 16000,
            samples: x.clone(),
        };
        assert!(
            enhance_waveform(&spec, &wrong_rate, identity)
                .unwrap_err()
                .to_string()
                .contains("8000 Hz")
        );
        let silent = Audio {
            rate: 8000,
            samples: vec![0.0; 4000],
        };
        assert!(enhance_waveform(&spec, &silent, identity).is_err());
        let short = Audio {
            rate: 8000,
            samples: vec![0.1; 100],
        };
        assert!(enhance_waveform(&spec, &short, identity).is_err());
        // The identity "model" returns the input (scaled back).
        let y = Audio {
            rate: 8000,
            samples: x.iter().map(|v| v * 0.3).collect(),
        };
        let out = enhance_waveform(&spec, &y, identity).unwrap();
        assert!(
            out.iter()
                .zip(&y.samples)
                .all(|(a, b)| (a - b).abs() < 1e-4)
        );
    }

    #[test]
    fn a_saved_enhancer_loads_back_and_a_damaged_one_is_refused() {
        let dir = std::env::temp_dir().join(format!("gradlab-sgmse-save-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let spec = SpecSettings {
            rate: 8000,
            n_fft: 126,
            hop: 32,
            ..SpecSettings::official()
        };
        let net = gradlab_nets::unet::UNetConfig::new(4, spec.bins(), 8)
            .with_width(3)
            .with_out_channels(Some(2))
            .init(&Device::flex(), 5);
        let e = Enhancer {
            net,
            param: Parameterisation::Edm { sigma_data: 0.05 },
            process: Ouve::official(),
            spec,
        };
        let card = EnhancerCard::of(&e, "dereverberation", &PcSettings::dereverberation(), 7, 1);
        save_enhancer(&dir, &e, &card).unwrap();
        let (back, back_card) = load_enhancer(&dir).unwrap();
        assert_eq!(back_card, card);
        assert_eq!(back_card.sampler(), PcSettings::dereverberation());
        assert_eq!(
            gradlab_core::flat::flatten_host(&back.net).unwrap(),
            gradlab_core::flat::flatten_host(&e.net).unwrap()
        );
        assert_eq!(back.spec, spec);
        // Damage the card: the checksums refuse it.
        let generation = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|d| d.ok())
            .find(|d| d.path().is_dir())
            .unwrap()
            .path();
        std::fs::write(generation.join(ENHANCER_CARD), "{}").unwrap();
        assert!(load_enhancer(&dir).is_err());
        assert!(load_enhancer(&dir.join("nothing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// With F ≡ 0 (the last convolution zeroed) the EDM form is the exact score of u₀ ~ N(0, σ_d²):
    /// −u/(α_t² σ_d² + σ_t²), at every t.
    #[test]
    fn the_edm_preconditioning_alone_is_the_gaussian_score() {
        let dev = Device::flex();
        let net = gradlab_nets::unet::UNetConfig::new(4, 6, 4)
            .with_width(3)
            .with_out_channels(Some(2))
            .init(&dev, 2);
        let mut flat = gradlab_core::flat::flatten_host(&net).unwrap();
        let last = 2 * 3 * 9 + 2; // conv_out's weight [2, 3, 3, 3] and bias, the last parameters
        let k = flat.len();
        flat[k - last..].iter_mut().for_each(|v| *v = 0.0);
        let net = gradlab_core::flat::load_host(net, &flat).unwrap();
        let (p, d) = (Ouve::official(), 0.07);
        let param = Parameterisation::Edm { sigma_data: d };
        let mut rng = StdRng::seed_from_u64(1);
        let u = normal4([2, 2, 6, 4], &mut rng, &dev) * 0.2;
        let y = normal4([2, 2, 6, 4], &mut rng, &dev);
        for t in [0.03, 0.4, 1.0] {
            let (a, s) = p.marginal(t).unwrap();
            let got = gradlab_core::bridge::to_host(
                score_of(&net, &param, &p, u.clone(), y.clone(), t).unwrap(),
            )
            .unwrap();
            let want =
                gradlab_core::bridge::to_host(u.clone() / (-(a * a * d * d + s * s))).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() < 1e-4 * (1.0 + w.abs()),
                    "t = {t}: {g} vs {w}"
                );
            }
        }
        assert!(
            Parameterisation::Edm { sigma_data: 0.0 }
                .validate()
                .is_err()
        );
    }
}
