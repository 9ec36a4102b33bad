//! The short-time Fourier transform as `torch.stft`/`torch.istft` compute it with
//! `center=True` (the signal reflect-padded by n_fft/2 on both sides), a periodic Hann window,
//! no normalisation and a one-sided spectrum (n_fft/2 + 1 bins; frames 1 + ⌊len/hop⌋ for even
//! n_fft), and the inverse by windowed overlap-add divided by the summed squared window.
//!
//! SGMSE's compressed spectrogram ([`compress`]): c ↦ α·|c|^β·e^{i∠c} (official β = 0.5,
//! α = 0.15, `transform_type="exponent"`), and its inverse ([`expand`]).
//!
//! ```
//! use gradlab_audio::stft::Stft;
//! let stft = Stft::new(64, 16).unwrap();
//! let x: Vec<f32> = (0..400).map(|i| (i as f32 * 0.3).sin()).collect();
//! let spec = stft.forward(&x).unwrap();
//! assert_eq!((spec.bins, spec.frames), (33, 26));
//! let back = stft.inverse(&spec, x.len()).unwrap();
//! assert!(back.iter().zip(&x).all(|(a, b)| (a - b).abs() < 1e-5));
//! ```

use crate::{Result, invalid};
use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

/// A complex spectrogram, `bins × frames`, stored bin-major (row f holds frame 0, 1, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrogram {
    /// Frequency bins (n_fft/2 + 1).
    pub bins: usize,
    /// Frames.
    pub frames: usize,
    /// Real parts.
    pub re: Vec<f64>,
    /// Imaginary parts.
    pub im: Vec<f64>,
}

impl Spectrogram {
    /// An all-zero spectrogram.
    pub fn zeros(bins: usize, frames: usize) -> Self {
        Self {
            bins,
            frames,
            re: vec![0.0; bins * frames],
            im: vec![0.0; bins * frames],
        }
    }

    /// Largest |c|.
    pub fn max_abs(&self) -> f64 {
        self.re
            .iter()
            .zip(&self.im)
            .map(|(a, b)| a.hypot(*b))
            .fold(0.0, f64::max)
    }

    /// The frames from `start` to `start + len` (clamped to the end).
    pub fn crop(&self, start: usize, len: usize) -> Self {
        let start = start.min(self.frames);
        let end = (start + len).min(self.frames);
        let mut out = Self::zeros(self.bins, end - start);
        for f in 0..self.bins {
            for (j, t) in (start..end).enumerate() {
                out.re[f * out.frames + j] = self.re[f * self.frames + t];
                out.im[f * out.frames + j] = self.im[f * self.frames + t];
            }
        }
        out
    }
}

/// An STFT of a fixed size and hop.
#[derive(Debug, Clone)]
pub struct Stft {
    n_fft: usize,
    hop: usize,
    window: Vec<f64>,
}

impl Stft {
    /// n_fft ≥ 2 even, 1 ≤ hop ≤ n_fft (official SGMSE: 510 and 128).
    pub fn new(n_fft: usize, hop: usize) -> Result<Self> {
        if n_fft < 2 || !n_fft.is_multiple_of(2) || hop == 0 || hop > n_fft {
            return invalid(format!(
                "an STFT needs an even n_fft ≥ 2 and 1 ≤ hop ≤ n_fft; got {n_fft}, {hop}"
            ));
        }
        // Periodic Hann: 0.5 − 0.5 cos(2πk/N), k = 0 … N − 1.
        let window = (0..n_fft)
            .map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / n_fft as f64).cos())
            .collect();
        Ok(Self { n_fft, hop, window })
    }

    /// The frame size.
    pub fn n_fft(&self) -> usize {
        self.n_fft
    }

    /// The hop.
    pub fn hop(&self) -> usize {
        self.hop
    }

    /// Frames of a signal of `len` samples.
    pub fn frames(&self, len: usize) -> usize {
        1 + len / self.hop
    }

    /// The spectrogram of `x` (longer than n_fft/2 samples, for the reflect padding).
    pub fn forward(&self, x: &[f32]) -> Result<Spectrogram> {
        let pad = self.n_fft / 2;
        if x.len() <= pad {
            return invalid(format!(
                "a signal of {} samples is too short for n_fft = {}",
                x.len(),
                self.n_fft
            ));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return invalid("the signal has non-finite samples");
        }
        // Reflect padding (the edge sample not repeated), as torch's pad_mode="reflect".
        let n = x.len() as isize;
        let at = |i: isize| -> f64 {
            let j = if i < 0 {
                -i
            } else if i >= n {
                2 * (n - 1) - i
            } else {
                i
            };
            x[j as usize] as f64
        };
        let frames = self.frames(x.len());
        let bins = self.n_fft / 2 + 1;
        let fft = RealFftPlanner::<f64>::new().plan_fft_forward(self.n_fft);
        let mut buf = fft.make_input_vec();
        let mut out = fft.make_output_vec();
        let mut spec = Spectrogram::zeros(bins, frames);
        for t in 0..frames {
            let start = (t * self.hop) as isize - pad as isize;
            for (k, b) in buf.iter_mut().enumerate() {
                *b = at(start + k as isize) * self.window[k];
            }
            fft.process(&mut buf, &mut out)
                .map_err(|e| crate::AudioError::Invalid(e.to_string()))?;
            for (f, c) in out.iter().enumerate() {
                spec.re[f * frames + t] = c.re;
                spec.im[f * frames + t] = c.im;
            }
        }
        Ok(spec)
    }

    /// The signal of `len` samples whose spectrogram is `spec` (least squares for a spectrogram
    /// that is not one: windowed overlap-add over the summed squared window). The imaginary parts
    /// of the DC and Nyquist bins are ignored, as a real inverse FFT must.
    pub fn inverse(&self, spec: &Spectrogram, len: usize) -> Result<Vec<f32>> {
        let bins = self.n_fft / 2 + 1;
        if spec.bins != bins
            || spec.frames == 0
            || spec.re.len() != bins * spec.frames
            || spec.im.len() != spec.re.len()
        {
            return invalid(format!(
                "a spectrogram of {}×{} for an STFT of {bins} bins",
                spec.bins, spec.frames
            ));
        }
        if spec.re.iter().chain(&spec.im).any(|v| !v.is_finite()) {
            return invalid("the spectrogram has non-finite values");
        }
        let pad = self.n_fft / 2;
        let total = self.n_fft + self.hop * (spec.frames - 1);
        if len + pad > total {
            return invalid(format!("{} frames cannot give {len} samples", spec.frames));
        }
        let ifft = RealFftPlanner::<f64>::new().plan_fft_inverse(self.n_fft);
        let mut input = ifft.make_input_vec();
        let mut frame = ifft.make_output_vec();
        let (mut sum, mut norm) = (vec![0.0; total], vec![0.0; total]);
        for t in 0..spec.frames {
            for (f, c) in input.iter_mut().enumerate() {
                *c = Complex::new(spec.re[f * spec.frames + t], spec.im[f * spec.frames + t]);
            }
            input[0].im = 0.0;
            input[bins - 1].im = 0.0;
            ifft.process(&mut input, &mut frame)
                .map_err(|e| crate::AudioError::Invalid(e.to_string()))?;
            for k in 0..self.n_fft {
                let w = self.window[k];
                sum[t * self.hop + k] += frame[k] / self.n_fft as f64 * w;
                norm[t * self.hop + k] += w * w;
            }
        }
        (pad..pad + len)
            .map(|i| {
                if norm[i] > 1e-11 {
                    Ok((sum[i] / norm[i]) as f32)
                } else {
                    invalid("the window overlap vanishes (hop too large for this window)")
                }
            })
            .collect()
    }
}

/// SGMSE's forward transform c ↦ α·|c|^β·e^{i∠c} of every bin.
pub fn compress(spec: &Spectrogram, exponent: f64, factor: f64) -> Result<Spectrogram> {
    check_transform(exponent, factor)?;
    Ok(map_magnitude(spec, |m| factor * m.powf(exponent)))
}

/// The inverse of [`compress`]: c ↦ |c/α|^{1/β}·e^{i∠c}.
pub fn expand(spec: &Spectrogram, exponent: f64, factor: f64) -> Result<Spectrogram> {
    check_transform(exponent, factor)?;
    Ok(map_magnitude(spec, |m| (m / factor).powf(1.0 / exponent)))
}

#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
fn check_transform(exponent: f64, factor: f64) -> Result<()> {
    if !(exponent > 0.0 && exponent.is_finite() && factor > 0.0 && factor.is_finite()) {
        return invalid(format!(
            "the magnitude exponent and factor must be positive, got {exponent} and {factor}"
        ));
    }
    Ok(())
}

/// Each bin with its magnitude m replaced by `f(m)`, its phase kept (0 stays 0).
fn map_magnitude(spec: &Spectrogram, f: impl Fn(f64) -> f64) -> Spectrogram {
    let mut out = spec.clone();
    for (re, im) in out.re.iter_mut().zip(out.im.iter_mut()) {
        let m = re.hypot(*im);
        if m > 0.0 {
            let s = f(m) / m;
            *re *= s;
            *im *= s;
        }
    }
    out
}
