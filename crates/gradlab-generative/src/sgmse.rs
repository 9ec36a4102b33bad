//! SGMSE+ (Richter, Welker, Lemercier, Lay and Gerkmann, "Speech Enhancement and Dereverberation
//! with Diffusion-based Generative Models", TASLP 2023), as sp-uhh/sgmse codes it
//! (`sgmse/sdes.py`, `sgmse/model.py`, `sgmse/sampling/`, `sgmse/data_module.py`):
//!
//! - the signal: waveforms normalised by the noisy one's max |y| (`normalize="noisy"`), a
//!   one-sided STFT with a periodic Hann window and `center=True`, and the compressed spectrogram
//!   0.15·|c|^0.5·e^{i∠c} ([`SpecSettings`]); a complex bin is two real channels;
//! - the process: the OUVE SDE from the clean x₀ towards the noisy y ([`crate::process::Ouve`],
//!   run on u = x − y), prior u_T ~ N(0, std(1)²);
//! - the score network reads [x_t, y] (4 channels) and its output is turned into the score of x_t
//!   as −out/σ_t (a noise prediction: the official NCSN++ divides by the time t instead, a detail
//!   of its released weights), trained by ‖σ_t s + z‖² = ‖out − z‖² at t ~ U(0.03, 1)
//!   ([`train_sgmse`]);
//! - predictor–corrector sampling in the **official order — the corrector before the
//!   predictor** at each of N times linspace(1, 0.03, N) ([`pc_sample`]): annealed Langevin with
//!   step ε = 2(r·σ_t)² (r the "snr", σ_t the process's marginal std, not the gradient-norm rule
//!   of score_sde), then the reverse-diffusion predictor u ← u − f·Δ + g²Δ·s + g√Δ·z with
//!   Δ = t_i − t_{i+1} and, at the last time, Δ = 0.03 ("from eps to 0"); the result is the last
//!   predictor mean (no noise). NFE = N·(1 + corrector steps): 60 for the official N = 30.
//!
//! [`Enhancer`] runs a trained network on a waveform. A direct predictive denoiser of the same
//! network ([`train_predictive`]) is the paper's baseline.

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
        Self { rate: 16000, n_fft: 510, hop: 128, exponent: 0.5, factor: 0.15 }
    }

    /// The same durations at 8 kHz (narrowband speech): n_fft 254, hop 64.
    pub fn narrowband() -> Self {
        Self { rate: 8000, n_fft: 254, hop: 64, ..Self::official() }
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
        let spec = compress(&self.stft()?.forward(x).map_err(audio_err)?, self.exponent, self.factor).map_err(audio_err)?;
        Ok((spec.re.iter().chain(&spec.im).map(|v| *v as f32).collect(), spec.frames))
    }

    /// The waveform of `len` samples whose compressed spectrogram has channels `data`
    /// (`[2, bins, frames]`).
    pub fn waveform(&self, data: &[f32], frames: usize, len: usize) -> Result<Vec<f32>> {
        let n = self.bins() * frames;
        if data.len() != 2 * n {
            return invalid(format!("{} values for 2 × {} × {frames} channels", data.len(), self.bins()));
        }
        let spec = Spectrogram {
            bins: self.bins(),
            frames,
            re: data[..n].iter().map(|v| *v as f64).collect(),
            im: data[n..].iter().map(|v| *v as f64).collect(),
        };
        self.stft()?.inverse(&expand(&spec, self.exponent, self.factor).map_err(audio_err)?, len).map_err(audio_err)
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
        Self { steps: 30, snr: 0.5, corrector_steps: 1, t_eps: 0.03 }
    }

    /// The official dereverberation setting: N = 50, r = 0.33.
    pub fn dereverberation() -> Self {
        Self { steps: 50, snr: 0.33, ..Self::official() }
    }

    /// Score evaluations: N·(1 + corrector steps).
    pub fn nfe(&self) -> usize {
        self.steps * (1 + self.corrector_steps)
    }

    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn validate(&self) -> Result<()> {
        if self.steps < 2 || !(self.snr >= 0.0 && self.snr.is_finite()) || !(self.t_eps > 0.0 && self.t_eps < 1.0) {
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
    let times: Vec<f64> = (0..n).map(|i| 1.0 + (settings.t_eps - 1.0) * i as f64 / (n - 1) as f64).collect();
    let dims = u.dims();
    let mut mean = u.clone();
    let mut nfe = 0;
    for (i, &t) in times.iter().enumerate() {
        let step = if i + 1 < n { t - times[i + 1] } else { times[n - 1] };
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
    Tensor::from_data(TensorData::new(v.iter().map(|x| *x as f32).collect::<Vec<_>>(), [v.len(), 1, 1, 1]), dev)
}

/// Standard normal f32 draws of `dims` on `dev`.
pub fn normal4(dims: [usize; 4], rng: &mut StdRng, dev: &Device) -> Tensor<4> {
    let v: Vec<f32> = (0..dims.iter().product()).map(|_| rng.sample::<f32, _>(StandardNormal)).collect();
    Tensor::from_data(TensorData::new(v, dims), dev)
}

/// A trained SGMSE+ network with its process and representation.
#[derive(Debug, Clone)]
pub struct Enhancer {
    /// The score network: [x_t, y] (4 channels) → noise prediction (2 channels).
    pub net: UNet,
    /// The SDE.
    pub process: Ouve,
    /// The representation.
    pub spec: SpecSettings,
}

/// The score of u_t = x_t − y: −net([u + y, y], t)/σ_t.
fn score_of(net: &UNet, process: &Ouve, u: Tensor<4>, y: Tensor<4>, t: f64) -> Result<Tensor<4>> {
    let (_, sigma) = process.marginal(t)?;
    let n = u.dims()[0];
    let input = Tensor::cat(vec![u + y.clone(), y], 1);
    let out = net.forward_image(input, Tensor::full([n], t as f32, &net_device(net)));
    Ok(out / (-sigma))
}

fn net_device(net: &UNet) -> Device {
    net.devices().into_iter().next().unwrap_or_else(Device::flex)
}

impl Enhancer {
    /// Enhance noisy compressed spectrograms `y` (`[n, 2, bins, frames]`): x̂ = y + PC sample of u.
    pub fn enhance_spec(&self, y: Tensor<4>, sampler: &PcSettings, seed: u64) -> Result<(Tensor<4>, usize)> {
        check_channels(&y, self.spec.bins())?;
        let dev = net_device(&self.net);
        let y = y.to_device(&dev);
        let mut rng = StdRng::seed_from_u64(seed);
        let u = normal4(y.dims(), &mut rng, &dev) * self.process.prior_std();
        let (u, nfe) = pc_sample(
            |u, t| score_of(&self.net, &self.process, u, y.clone(), t),
            &self.process,
            u,
            sampler,
            |d| normal4(d, &mut rng, &dev),
        )?;
        Ok((u + y, nfe))
    }

    /// Enhance a noisy waveform at the model's rate (normalised by its max |y|, restored after).
    pub fn enhance(&self, noisy: &Audio, sampler: &PcSettings, seed: u64) -> Result<Vec<f32>> {
        enhance_waveform(&self.spec, noisy, |y| Ok(self.enhance_spec(y, sampler, seed)?.0))
    }
}

/// The checks and the normalise → spectrogram → `run` → waveform pipeline both enhancers share.
pub fn enhance_waveform(spec: &SpecSettings, noisy: &Audio, run: impl FnOnce(Tensor<4>) -> Result<Tensor<4>>) -> Result<Vec<f32>> {
    if noisy.rate != spec.rate {
        return invalid(format!(
            "the model works at {} Hz but the audio is at {} Hz; resample it first (e.g. `sox in.wav -r {} out.wav`)",
            spec.rate, noisy.rate, spec.rate
        ));
    }
    if noisy.samples.len() <= spec.n_fft {
        return invalid(format!("{} samples is too short to enhance (more than {} needed)", noisy.samples.len(), spec.n_fft));
    }
    let peak = noisy.samples.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak == 0.0 {
        return invalid("the audio is silent");
    }
    let scaled: Vec<f32> = noisy.samples.iter().map(|v| v / peak).collect();
    let (data, frames) = spec.channels(&scaled)?;
    let y = Tensor::<4>::from_data(TensorData::new(data, [1, 2, spec.bins(), frames]), &Device::flex());
    let out = run(y)?;
    let values = gradlab_core::bridge::to_host(out.reshape([2 * spec.bins() * frames]))?;
    let values: Vec<f32> = values.iter().map(|v| *v as f32).collect();
    let x = spec.waveform(&values, frames, noisy.samples.len())?;
    Ok(x.iter().map(|v| v * peak).collect())
}

fn check_channels(y: &Tensor<4>, bins: usize) -> Result<()> {
    let [_, c, h, w] = y.dims();
    if c != 2 || h != bins || w == 0 {
        return invalid(format!("spectrograms of shape [_, {c}, {h}, {w}] for a model of 2 × {bins} × frames"));
    }
    Ok(())
}

/// Train a score network (built on the autodiff device, 4 channels in, 2 out) by SGMSE's loss on
/// (clean, noisy) compressed-spectrogram batches from `pairs(n, seed)` (`[n, 2, bins, frames]`
/// each): u_t = e^{−γt}(x − y) + σ_t z at t ~ U(t_ε, 1), loss ‖net([u_t + y, y], t) − z‖² per
/// example. The network comes back on the inner device.
pub fn train_sgmse(
    net: UNet,
    process: &Ouve,
    mut pairs: impl FnMut(usize, u64) -> Result<(Tensor<4>, Tensor<4>)>,
    settings: &crate::training::TrainSettings,
) -> Result<(UNet, Vec<f64>)> {
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x5635);
    let (net, losses) = crate::training::fit_net(net, settings, |net, step, dev| {
        let (x, y) = batch(&mut pairs, settings, step, dev)?;
        let n = x.dims()[0];
        let t: Vec<f64> = (0..n).map(|_| process.t_eps() + (1.0 - process.t_eps()) * rng.random::<f64>()).collect();
        let coef = t.iter().map(|t| process.marginal(*t)).collect::<Result<Vec<_>>>()?;
        let alpha = column(&coef.iter().map(|c| c.0).collect::<Vec<_>>(), dev);
        let sigma = column(&coef.iter().map(|c| c.1).collect::<Vec<_>>(), dev);
        let z = normal4(x.dims(), &mut rng, dev);
        let u = (x - y.clone()) * alpha + z.clone() * sigma;
        let tt = Tensor::from_data(TensorData::new(t.iter().map(|v| *v as f32).collect::<Vec<_>>(), [n]), dev);
        let out = net.forward_image(Tensor::cat(vec![u + y.clone(), y], 1), tt);
        Ok((out - z).square().sum_dims(&[1, 2, 3]).mean().reshape([1]))
    })?;
    Ok((net.valid(), losses))
}

/// Train the same network as a direct predictive denoiser: x̂ = net([y, y], 0), loss ‖x̂ − x‖².
pub fn train_predictive(
    net: UNet,
    mut pairs: impl FnMut(usize, u64) -> Result<(Tensor<4>, Tensor<4>)>,
    settings: &crate::training::TrainSettings,
) -> Result<(UNet, Vec<f64>)> {
    let (net, losses) = crate::training::fit_net(net, settings, |net, step, dev| {
        let (x, y) = batch(&mut pairs, settings, step, dev)?;
        Ok((predict(net, y) - x).square().sum_dims(&[1, 2, 3]).mean().reshape([1]))
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
        return invalid(format!("clean {:?} and noisy {:?} batches must share a [n, 2, bins, frames] shape", x.dims(), y.dims()));
    }
    Ok((x.cast(burn::tensor::DType::F32).to_device(dev), y.cast(burn::tensor::DType::F32).to_device(dev)))
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
        let (out, nfe) = pc_sample(exact, &p, u, &PcSettings::official(), |d| normal4(d, &mut rng, &dev)).unwrap();
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
        let settings = PcSettings { steps: 2, snr: 0.5, corrector_steps: 1, t_eps: 0.03 };
        let dev = Device::flex();
        let u0 = 0.8;
        let start = Tensor::<4>::full([1, 1, 1, 1], u0, &dev);
        let (out, nfe) = pc_sample(|u, _| Ok(u * (-c) + 1.0), &p, start, &settings, |d| Tensor::zeros(d, &dev)).unwrap();
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
        assert!(pc_sample(|u, _| Ok(u), &p, Tensor::zeros([1, 1, 1, 1], &dev), &PcSettings { steps: 1, ..settings }, |d| Tensor::zeros(d, &dev)).is_err());
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
        let wrong_rate = Audio { rate: 16000, samples: x.clone() };
        assert!(enhance_waveform(&spec, &wrong_rate, identity).unwrap_err().to_string().contains("8000 Hz"));
        let silent = Audio { rate: 8000, samples: vec![0.0; 4000] };
        assert!(enhance_waveform(&spec, &silent, identity).is_err());
        let short = Audio { rate: 8000, samples: vec![0.1; 100] };
        assert!(enhance_waveform(&spec, &short, identity).is_err());
        // The identity "model" returns the input (scaled back).
        let y = Audio { rate: 8000, samples: x.iter().map(|v| v * 0.3).collect() };
        let out = enhance_waveform(&spec, &y, identity).unwrap();
        assert!(out.iter().zip(&y.samples).all(|(a, b)| (a - b).abs() < 1e-4));
    }
}
