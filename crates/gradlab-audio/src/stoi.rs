//! STOI, the short-time objective intelligibility measure (Taal, Hendriks, Heusdens and Jensen,
//! "An Algorithm for Intelligibility Prediction of Time-Frequency Weighted Noisy Speech", IEEE
//! TASLP 2011), as its reference implementations compute it (the authors' MATLAB code and
//! `pystoi`, which SGMSE's evaluation calls):
//!
//! 1. both signals resampled to 10 kHz (Octave's `resample`: a Kaiser-windowed sinc, 60 dB
//!    rejection, by polyphase filtering);
//! 2. frames of 256 samples (MATLAB's `hanning` window, hop 128) whose clean energy is more than
//!    40 dB below the loudest clean frame are dropped from both, and the rest overlap-added;
//! 3. a 512-point STFT of the same frames, and 15 one-third-octave bands from 150 Hz
//!    (band envelopes √Σ|X|²);
//! 4. for every run of 30 frames and every band, the processed envelope is scaled to the clean
//!    one's norm and clipped at (1 + 10^{15/20}) times the clean envelope, and the correlation of
//!    the two (means removed) is taken; STOI is their mean.
//!
//! ```
//! use gradlab_audio::{speech, stoi::stoi};
//! let x = speech::clip("hts1a").unwrap().samples;
//! let half: Vec<f32> = x.iter().map(|v| 0.5 * v).collect();
//! assert!((stoi(&x, &half, 8000).unwrap() - 1.0).abs() < 1e-9); // scale does not matter
//! ```

use crate::{Result, invalid};
use realfft::RealFftPlanner;

const FS: usize = 10_000;
const FRAME: usize = 256;
const NFFT: usize = 512;
const BANDS: usize = 15;
const MIN_FREQ: f64 = 150.0;
const SEGMENT: usize = 30;
const BETA_DB: f64 = -15.0;
const DYN_RANGE_DB: f64 = 40.0;

/// STOI in [−1, 1] (typically 0.4 to 1) of `processed` against `clean` (equal lengths) at
/// `rate` Hz; an error if the signals are too short for one 30-frame segment of speech after
/// silent frames are dropped (pystoi returns 1e-5 with a warning there).
pub fn stoi(clean: &[f32], processed: &[f32], rate: u32) -> Result<f64> {
    if clean.len() != processed.len() || clean.is_empty() || rate == 0 {
        return invalid(format!(
            "STOI needs signals of equal, non-zero length and a rate > 0; got {} and {} samples at {rate} Hz",
            clean.len(),
            processed.len()
        ));
    }
    if clean.iter().chain(processed).any(|v| !v.is_finite()) {
        return invalid("STOI of non-finite samples");
    }
    let to64 = |v: &[f32]| v.iter().map(|s| *s as f64).collect::<Vec<f64>>();
    let (mut x, mut y) = (to64(clean), to64(processed));
    if rate as usize != FS {
        x = resample_octave(&x, FS, rate as usize);
        y = resample_octave(&y, FS, rate as usize);
    }
    let (x, y) = remove_silent_frames(&x, &y);
    let (xs, ys) = (band_envelopes(&x)?, band_envelopes(&y)?);
    let frames = xs.first().map_or(0, |b| b.len());
    if frames < SEGMENT {
        return invalid(format!(
            "too little speech for STOI: {frames} frames after dropping silence, {SEGMENT} needed (about 0.4 s)"
        ));
    }
    let clip = 1.0 + 10f64.powf(-BETA_DB / 20.0);
    let mut total = 0.0;
    let segments = frames - SEGMENT + 1;
    for m in SEGMENT..=frames {
        for (xb, yb) in xs.iter().zip(&ys) {
            let (xseg, yseg) = (&xb[m - SEGMENT..m], &yb[m - SEGMENT..m]);
            let scale = norm(xseg) / (norm(yseg) + f64::EPSILON);
            let yp: Vec<f64> = yseg
                .iter()
                .zip(xseg)
                .map(|(a, b)| (a * scale).min(b * clip))
                .collect();
            total += correlation(xseg, &yp);
        }
    }
    Ok(total / (segments * BANDS) as f64)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// ⟨x − x̄, y − ȳ⟩/((‖x − x̄‖ + ε)(‖y − ȳ‖ + ε)).
fn correlation(x: &[f64], y: &[f64]) -> f64 {
    let centred = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|a| a - m).collect::<Vec<f64>>()
    };
    let (a, b) = (centred(x), centred(y));
    let dot: f64 = a.iter().zip(&b).map(|(p, q)| p * q).sum();
    dot / ((norm(&a) + f64::EPSILON) * (norm(&b) + f64::EPSILON))
}

/// MATLAB's `hanning(n)`: the symmetric Hann window without its zero end points.
fn hanning(n: usize) -> Vec<f64> {
    (1..=n)
        .map(|k| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * k as f64 / (n + 1) as f64).cos())
        .collect()
}

/// Octave's `resample(x, p, q)`: rate × p/q with a Kaiser-windowed sinc (60 dB rejection, roll-off
/// a tenth of the cut-off) normalised to unit sum, applied by polyphase filtering around its
/// centre (scipy's `resample_poly` with that window, as pystoi calls it).
fn resample_octave(x: &[f64], p: usize, q: usize) -> Vec<f64> {
    let g = gcd(p, q);
    let (up, down) = (p / g, q / g);
    let cutoff = 1.0 / (2.0 * up.max(down) as f64);
    let rejection = 60.0;
    let half = ((rejection - 8.0) / (28.714 * cutoff / 10.0)).ceil() as isize;
    let beta = 0.1102 * (rejection - 8.7);
    let taps: Vec<f64> = (-half..=half)
        .map(|t| {
            let ideal = 2.0 * up as f64 * cutoff * sinc(2.0 * cutoff * t as f64);
            let r = t as f64 / half as f64;
            ideal * bessel_i0(beta * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(beta)
        })
        .collect();
    let sum: f64 = taps.iter().sum();
    let h: Vec<f64> = taps.iter().map(|v| v / sum * up as f64).collect();
    let n_out = (x.len() * up).div_ceil(down);
    (0..n_out)
        .map(|n| {
            // y[n] = Σ_m x[m] h[half + n·down − m·up] over the taps in range.
            let centre = half + (n * down) as isize;
            let m_lo = ((centre - 2 * half).max(0) as usize).div_ceil(up);
            let m_hi = ((centre / up as isize) as usize).min(x.len().saturating_sub(1));
            (m_lo..=m_hi)
                .filter_map(|m| {
                    let k = centre - (m * up) as isize;
                    (0..h.len() as isize)
                        .contains(&k)
                        .then(|| x[m] * h[k as usize])
                })
                .sum()
        })
        .collect()
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        1.0
    } else {
        (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x)
    }
}

/// The modified Bessel function I₀ by its power series (converges for every argument).
fn bessel_i0(x: f64) -> f64 {
    let (mut term, mut sum, mut k) = (1.0, 1.0, 1.0);
    while term > 1e-17 * sum {
        term *= (x / (2.0 * k)).powi(2);
        sum += term;
        k += 1.0;
    }
    sum
}

/// The windowed frames starting at 0, hop, … while a full frame fits with at least one sample to
/// spare (`range(0, len − frame, hop)`).
fn frames(x: &[f64], window: &[f64]) -> Vec<Vec<f64>> {
    let n = window.len();
    (0..x.len().saturating_sub(n))
        .step_by(n / 2)
        .map(|i| x[i..i + n].iter().zip(window).map(|(a, w)| a * w).collect())
        .collect()
}

/// Drop the frames whose clean energy is more than 40 dB below the loudest, from both signals, and
/// overlap-add the rest (hop 128).
fn remove_silent_frames(x: &[f64], y: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let w = hanning(FRAME);
    let (xf, yf) = (frames(x, &w), frames(y, &w));
    let energy: Vec<f64> = xf
        .iter()
        .map(|f| 20.0 * (norm(f) + f64::EPSILON).log10())
        .collect();
    let max = energy.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let keep: Vec<usize> = (0..xf.len())
        .filter(|&i| max - DYN_RANGE_DB - energy[i] < 0.0)
        .collect();
    let add = |fr: &[Vec<f64>]| {
        let hop = FRAME / 2;
        let len = if keep.is_empty() {
            0
        } else {
            (keep.len() - 1) * hop + FRAME
        };
        let mut out = vec![0.0; len];
        for (j, &i) in keep.iter().enumerate() {
            out[j * hop..j * hop + FRAME]
                .iter_mut()
                .zip(&fr[i])
                .for_each(|(o, v)| *o += v);
        }
        out
    };
    (add(&xf), add(&yf))
}

/// The 15 one-third-octave band envelopes (band × frame) of a 512-point STFT of 256-sample
/// frames, hop 128. Band i covers the FFT bins from the one nearest its lower edge
/// 150·2^{(2i−1)/6} Hz up to, not including, the one nearest its upper edge 150·2^{(2i+1)/6} Hz.
fn band_envelopes(x: &[f64]) -> Result<Vec<Vec<f64>>> {
    let w = hanning(FRAME);
    let fft = RealFftPlanner::<f64>::new().plan_fft_forward(NFFT);
    let nearest = |f: f64| ((f * NFFT as f64 / FS as f64).round() as usize).min(NFFT / 2);
    let edges: Vec<(usize, usize)> = (0..BANDS)
        .map(|i| {
            let k = i as f64;
            (
                nearest(MIN_FREQ * 2f64.powf((2.0 * k - 1.0) / 6.0)),
                nearest(MIN_FREQ * 2f64.powf((2.0 * k + 1.0) / 6.0)),
            )
        })
        .collect();
    let mut bands = vec![vec![]; BANDS];
    let mut out = fft.make_output_vec();
    for frame in frames(x, &w) {
        let mut buf = vec![0.0; NFFT];
        buf[..FRAME].copy_from_slice(&frame);
        fft.process(&mut buf, &mut out)
            .map_err(|e| crate::AudioError::Invalid(e.to_string()))?;
        for (b, &(lo, hi)) in edges.iter().enumerate() {
            bands[b].push(out[lo..hi].iter().map(|c| c.norm_sqr()).sum::<f64>().sqrt());
        }
    }
    Ok(bands)
}
