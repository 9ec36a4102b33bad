//! Degraded 8×8 digits for the restoration experiments (`mrs`, `resfusion`): pixels in [0, 1],
//! degraded by a 3×3 binomial blur plus Gaussian noise, or by a missing 3×3 block; PSNR of a
//! restoration clipped to [0, 1].

use crate::error::Result;
use burn::prelude::*;
use gradlab_data::ImageSet;
use gradlab_generative::points::from_rows;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// How a digit is degraded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Degradation {
    /// 3×3 binomial blur (edges clamped), then N(0, σ²) noise.
    BlurNoise(f64),
    /// A 3×3 block at a random place (rows and columns 1–4) set to 0.
    Mask,
}

impl Degradation {
    /// A short name.
    pub(crate) fn name(self) -> String {
        match self {
            Self::BlurNoise(s) => format!("blur + noise σ {s}"),
            Self::Mask => "missing 3×3 block".into(),
        }
    }

    /// The degraded copy of `x` (64 pixels), drawing from `rng`.
    pub(crate) fn apply(self, x: &[f32], rng: &mut StdRng) -> Vec<f64> {
        match self {
            Self::BlurNoise(sigma) => {
                let at = |r: i64, c: i64| x[(r.clamp(0, 7) * 8 + c.clamp(0, 7)) as usize] as f64;
                let w = [1.0, 2.0, 1.0];
                let mut out = Vec::with_capacity(64);
                for r in 0..8i64 {
                    for c in 0..8i64 {
                        let mut v = 0.0;
                        for (i, wi) in w.iter().enumerate() {
                            for (j, wj) in w.iter().enumerate() {
                                v += wi * wj * at(r + i as i64 - 1, c + j as i64 - 1);
                            }
                        }
                        out.push(v / 16.0 + sigma * rng.sample::<f64, _>(StandardNormal));
                    }
                }
                out
            }
            Self::Mask => {
                let (r0, c0) = (rng.random_range(1..5usize), rng.random_range(1..5usize));
                let mut out: Vec<f64> = x.iter().map(|v| *v as f64).collect();
                for r in r0..r0 + 3 {
                    for c in c0..c0 + 3 {
                        out[r * 8 + c] = 0.0;
                    }
                }
                out
            }
        }
    }
}

/// Clean and degraded copies (`n · 64` values each) of the images at `idx`.
pub(crate) fn degrade(
    set: &ImageSet,
    idx: &[usize],
    how: Degradation,
    rng: &mut StdRng,
) -> (Vec<f64>, Vec<f64>) {
    let (mut clean, mut bad) = (vec![], vec![]);
    for &i in idx {
        let x = set.image(i);
        clean.extend(x.iter().map(|v| *v as f64));
        bad.extend(how.apply(x, rng));
    }
    (clean, bad)
}

/// A training batch sampler: `n` random images of `set`, degraded afresh, as host tensors
/// (`map` turns a (clean, degraded) pixel pair into the pair the model trains on).
pub(crate) fn batches<'a>(
    set: &'a ImageSet,
    how: Degradation,
    map: impl Fn(f64, f64) -> (f64, f64) + 'a,
) -> impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>) + 'a {
    move |n, seed| {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xDE6);
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..set.len())).collect();
        let (clean, bad) = degrade(set, &idx, how, &mut rng);
        let (a, b): (Vec<f64>, Vec<f64>) = clean.iter().zip(&bad).map(|(c, d)| map(*c, *d)).unzip();
        (
            from_rows(&a, n, 64).expect("64 values a row"),
            from_rows(&b, n, 64).expect("64 values a row"),
        )
    }
}

/// Mean squared error of clip(v, 0, 1) against `clean`.
pub(crate) fn mse(v: &[f64], clean: &[f64]) -> f64 {
    v.iter()
        .zip(clean)
        .map(|(a, b)| (a.clamp(0.0, 1.0) - b).powi(2))
        .sum::<f64>()
        / clean.len() as f64
}

/// PSNR in dB of a mean squared error (peak 1).
pub(crate) fn psnr(mse: f64) -> f64 {
    -10.0 * mse.log10()
}

/// The first `show` images of `v` (64 values each), clipped to [0, 1], for a figure.
pub(crate) fn first_images(v: &[f64], show: usize) -> Vec<Vec<f64>> {
    (0..show)
        .map(|i| {
            v[i * 64..(i + 1) * 64]
                .iter()
                .map(|p| p.clamp(0.0, 1.0))
                .collect()
        })
        .collect()
}

/// The digits split of every restoration experiment (80/20, seed 0).
pub(crate) fn split() -> Result<(ImageSet, ImageSet)> {
    Ok(gradlab_data::images::digits_split(0.2, 0)?)
}
