//! Degrading clean speech: additive noise at a chosen SNR, coloured noises, synthetic room
//! impulse responses and convolution.
//!
//! - SNR: the noise is scaled so that 10 log₁₀(Σs²/Σn²) equals the target;
//! - noises: white Gaussian, pink (1/f power, Paul Kellet's economy filter of white noise) and
//!   brown (1/f², a leaky integrator), each scaled to unit RMS;
//! - a synthetic room impulse response: a unit direct path, then Gaussian noise under the
//!   exponential envelope that falls by 60 dB in RT60 seconds (the statistical model of late
//!   reverberation, Polack 1988), starting 2.5 ms after the direct path;
//! - convolution by FFT, truncated to the input's length.
//!
//! ```
//! use gradlab_audio::mix::{NoiseKind, noise, room_impulse_response, convolve};
//! let n = noise(NoiseKind::Pink, 8000, 1).unwrap();
//! let rms = (n.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / 8000.0).sqrt();
//! assert!((rms - 1.0).abs() < 1e-3);
//! let h = room_impulse_response(8000, 0.4, 2).unwrap();
//! let wet = convolve(&n, &h).unwrap();
//! assert_eq!(wet.len(), n.len());
//! ```

use crate::{Result, invalid};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use realfft::RealFftPlanner;

/// A kind of additive noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseKind {
    /// Flat spectrum.
    White,
    /// Power falling as 1/f.
    Pink,
    /// Power falling as 1/f².
    Brown,
}

impl NoiseKind {
    /// "white", "pink" or "brown".
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "white" => Ok(Self::White),
            "pink" => Ok(Self::Pink),
            "brown" => Ok(Self::Brown),
            other => invalid(format!(
                "unknown noise '{other}'; known: white, pink, brown"
            )),
        }
    }
}

/// `len` samples of seeded noise of `kind`, scaled to unit RMS.
pub fn noise(kind: NoiseKind, len: usize, seed: u64) -> Result<Vec<f32>> {
    if len == 0 {
        return invalid("noise of length 0");
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let white: Vec<f64> = (0..len).map(|_| rng.sample(StandardNormal)).collect();
    let shaped: Vec<f64> = match kind {
        NoiseKind::White => white,
        NoiseKind::Pink => {
            let (mut b0, mut b1, mut b2) = (0.0, 0.0, 0.0);
            white
                .iter()
                .map(|w| {
                    b0 = 0.99765 * b0 + w * 0.0990460;
                    b1 = 0.96300 * b1 + w * 0.2965164;
                    b2 = 0.57000 * b2 + w * 1.0526913;
                    b0 + b1 + b2 + w * 0.1848
                })
                .collect()
        }
        NoiseKind::Brown => {
            let mut acc = 0.0;
            white
                .iter()
                .map(|w| {
                    acc = 0.995 * acc + w;
                    acc
                })
                .collect()
        }
    };
    let mean = shaped.iter().sum::<f64>() / len as f64;
    let rms = (shaped.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / len as f64).sqrt();
    Ok(shaped.iter().map(|v| ((v - mean) / rms) as f32).collect())
}

/// Σ x², in f64.
pub fn energy(x: &[f32]) -> f64 {
    x.iter().map(|v| (*v as f64).powi(2)).sum()
}

/// `clean` plus the first `clean.len()` samples of `noise` scaled to `snr_db`.
pub fn add_noise_at_snr(clean: &[f32], noise: &[f32], snr_db: f64) -> Result<Vec<f32>> {
    if noise.len() < clean.len() || clean.is_empty() || !snr_db.is_finite() {
        return invalid(format!(
            "mixing needs a non-empty signal, noise at least as long ({} < {}) and a finite SNR",
            noise.len(),
            clean.len()
        ));
    }
    let noise = &noise[..clean.len()];
    let (es, en) = (energy(clean), energy(noise));
    if es == 0.0 || en == 0.0 {
        return invalid("cannot set an SNR with a silent signal or silent noise");
    }
    let g = (es / en / 10f64.powf(snr_db / 10.0)).sqrt();
    Ok(clean
        .iter()
        .zip(noise)
        .map(|(s, n)| s + (g * *n as f64) as f32)
        .collect())
}

/// A seeded synthetic room impulse response at `rate` Hz with reverberation time `rt60` s
/// (0.05 to 3), of length 1.2·RT60.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn room_impulse_response(rate: u32, rt60: f64, seed: u64) -> Result<Vec<f32>> {
    if rate == 0 || !(0.05..=3.0).contains(&rt60) {
        return invalid(format!(
            "an impulse response needs a rate > 0 and RT60 in [0.05, 3] s, got {rate}, {rt60}"
        ));
    }
    let rate = rate as f64;
    let len = (1.2 * rt60 * rate) as usize;
    let delay = (0.0025 * rate).ceil() as usize;
    let mut rng = StdRng::seed_from_u64(seed);
    // Amplitude falls by 60 dB (a factor 1000) over RT60: exp(−ln(1000)·t/RT60).
    let decay = 1000f64.ln() / (rt60 * rate);
    let mut h = vec![0.0f32; len.max(delay + 1)];
    h[0] = 1.0;
    for (n, v) in h.iter_mut().enumerate().skip(delay) {
        *v = (0.3 * rng.sample::<f64, _>(StandardNormal) * (-decay * n as f64).exp()) as f32;
    }
    Ok(h)
}

/// The linear convolution x ∗ h, truncated to x's length (by FFT).
pub fn convolve(x: &[f32], h: &[f32]) -> Result<Vec<f32>> {
    if x.is_empty() || h.is_empty() {
        return invalid("convolution of an empty signal");
    }
    let n = (x.len() + h.len() - 1).next_power_of_two();
    let mut planner = RealFftPlanner::<f64>::new();
    let (fwd, inv) = (planner.plan_fft_forward(n), planner.plan_fft_inverse(n));
    let spectrum = |v: &[f32]| -> Result<Vec<realfft::num_complex::Complex<f64>>> {
        let mut buf = vec![0.0; n];
        buf.iter_mut().zip(v).for_each(|(b, s)| *b = *s as f64);
        let mut out = fwd.make_output_vec();
        fwd.process(&mut buf, &mut out)
            .map_err(|e| crate::AudioError::Invalid(e.to_string()))?;
        Ok(out)
    };
    let (a, b) = (spectrum(x)?, spectrum(h)?);
    let mut prod: Vec<_> = a.iter().zip(&b).map(|(p, q)| p * q).collect();
    prod[0].im = 0.0;
    prod[n / 2].im = 0.0;
    let mut out = vec![0.0; n];
    inv.process(&mut prod, &mut out)
        .map_err(|e| crate::AudioError::Invalid(e.to_string()))?;
    Ok(out[..x.len()]
        .iter()
        .map(|v| (v / n as f64) as f32)
        .collect())
}
