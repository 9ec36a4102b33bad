//! Sample quality for small images without Inception: a classifier trained here on the same data
//! gives features (its last hidden layer), and on them
//!
//! - the Fréchet distance ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2(Σ₁^½ Σ₂ Σ₁^½)^½) (the FID formula; **not**
//!   Inception FID, and not comparable with published FIDs),
//! - KID: the unbiased MMD² with the polynomial kernel (xᵀy/d + 1)³.

use crate::{GenError, Result};
use burn::prelude::*;
use gradlab_curvature::spectrum::symmetric_eigen;
use gradlab_data::ImageSet;
use gradlab_nets::mlp::{Mlp, MlpConfig};
use gradlab_optim::spec::OptimizerSpec;
use gradlab_train::{TrainConfig, Trainer, autodiff_device};

/// A feature extractor: an MLP classifier trained on an image set.
pub struct FeatureNet {
    model: Mlp,
}

impl FeatureNet {
    /// Train an MLP d-64-classes by Adam for `epochs` on `train` (seeded); returns it and its
    /// accuracy on `test`.
    pub fn train(
        train: &ImageSet,
        test: &ImageSet,
        epochs: usize,
        seed: u64,
    ) -> Result<(Self, f64)> {
        let failed = |e: &dyn std::fmt::Display| {
            GenError::Invalid(format!("training the feature classifier: {e}"))
        };
        let model = MlpConfig::new(vec![train.feature_dim(), 64, train.classes])
            .init(&autodiff_device(), seed);
        let adam = OptimizerSpec::parse("adam").map_err(|e| failed(&e))?;
        let mut cfg = TrainConfig::new(adam.with_lr(2e-3));
        cfg.batch_size = 64;
        cfg.seed = seed;
        let mut trainer = Trainer::new(model, cfg).map_err(|e| failed(&e))?;
        let stats = trainer.fit(train, test, epochs).map_err(|e| failed(&e))?;
        let acc = stats.last().map_or(f64::NAN, |s| s.test_acc);
        Ok((
            Self {
                model: trainer.model,
            },
            acc,
        ))
    }

    /// How many of the images the classifier assigns to each class.
    pub fn class_counts(&self, pixels: &[Vec<f64>]) -> Result<Vec<usize>> {
        let x = input(pixels)?;
        use gradlab_nets::Net;
        let logits = self.model.valid().forward(x);
        let k = logits.dims()[1];
        let pred = gradlab_core::bridge::ints_to_host(logits.argmax(1).reshape([pixels.len()]))?;
        let mut counts = vec![0usize; k];
        pred.iter().for_each(|&p| counts[p as usize] += 1);
        Ok(counts)
    }

    /// Features of flattened images (rows of `pixels`, each of the training images' size).
    pub fn features(&self, pixels: &[Vec<f64>]) -> Result<Vec<Vec<f64>>> {
        let f = self.model.valid().features(input(pixels)?);
        let k = f.dims()[1];
        let v = gradlab_core::bridge::to_host(f)?;
        Ok(v.chunks(k).map(|c| c.to_vec()).collect())
    }
}

/// Flattened images as an f32 batch tensor (all of one non-zero size).
fn input(pixels: &[Vec<f64>]) -> Result<Tensor<2>> {
    let d = pixels.first().map_or(0, Vec::len);
    if d == 0 || pixels.iter().any(|p| p.len() != d) {
        return Err(GenError::Invalid("images of unequal or zero size".into()));
    }
    let flat: Vec<f32> = pixels.iter().flatten().map(|v| *v as f32).collect();
    Ok(Tensor::<2>::from_data(
        TensorData::new(flat, [pixels.len(), d]),
        &Device::flex(),
    ))
}

fn moments(x: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let (n, d) = (x.len(), x[0].len());
    let mut m = vec![0.0; d];
    x.iter()
        .for_each(|r| m.iter_mut().zip(r).for_each(|(a, b)| *a += b / n as f64));
    let mut c = vec![0.0; d * d];
    for r in x {
        for i in 0..d {
            for j in 0..d {
                c[i * d + j] += (r[i] - m[i]) * (r[j] - m[j]) / (n - 1).max(1) as f64;
            }
        }
    }
    (m, c)
}

/// √A of a symmetric positive semi-definite matrix (negative eigenvalues from rounding clipped).
fn sqrt_psd(a: &[f64], d: usize) -> Vec<f64> {
    let (vals, vecs) = symmetric_eigen(a, d);
    let mut out = vec![0.0; d * d];
    for (k, l) in vals.iter().enumerate() {
        let s = l.max(0.0).sqrt();
        for i in 0..d {
            for j in 0..d {
                out[i * d + j] += s * vecs[i * d + k] * vecs[j * d + k];
            }
        }
    }
    out
}

fn matmul(a: &[f64], b: &[f64], d: usize) -> Vec<f64> {
    let mut c = vec![0.0; d * d];
    for i in 0..d {
        for k in 0..d {
            let aik = a[i * d + k];
            for j in 0..d {
                c[i * d + j] += aik * b[k * d + j];
            }
        }
    }
    c
}

fn check(x: &[Vec<f64>], y: &[Vec<f64>]) -> Result<usize> {
    let d = x.first().map_or(0, Vec::len);
    if x.len() < 2 || y.len() < 2 || d == 0 || x.iter().chain(y).any(|r| r.len() != d) {
        return Err(GenError::Invalid(
            "feature sets need at least two rows of one common, non-zero size".into(),
        ));
    }
    Ok(d)
}

/// The Fréchet distance between Gaussians fitted to two feature sets.
pub fn frechet_distance(x: &[Vec<f64>], y: &[Vec<f64>]) -> Result<f64> {
    let d = check(x, y)?;
    let ((m1, c1), (m2, c2)) = (moments(x), moments(y));
    let s1 = sqrt_psd(&c1, d);
    let inner = matmul(&matmul(&s1, &c2, d), &s1, d);
    let cross = sqrt_psd(&inner, d);
    let tr = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
    let mean: f64 = m1.iter().zip(&m2).map(|(a, b)| (a - b).powi(2)).sum();
    Ok((mean + tr(&c1) + tr(&c2) - 2.0 * tr(&cross)).max(0.0))
}

/// KID: unbiased MMD² with the kernel (xᵀy/d + 1)³.
pub fn kid(x: &[Vec<f64>], y: &[Vec<f64>]) -> Result<f64> {
    let d = check(x, y)? as f64;
    let k =
        |a: &[f64], b: &[f64]| (a.iter().zip(b).map(|(p, q)| p * q).sum::<f64>() / d + 1.0).powi(3);
    let within = |s: &[Vec<f64>]| {
        let n = s.len();
        let mut t = 0.0;
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    t += k(&s[i], &s[j]);
                }
            }
        }
        t / (n * (n - 1)) as f64
    };
    let mut cross = 0.0;
    for a in x {
        for b in y {
            cross += k(a, b);
        }
    }
    Ok(within(x) + within(y) - 2.0 * cross / (x.len() * y.len()) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaussian(n: usize, d: usize, shift: f64, scale: f64, seed: u64) -> Vec<Vec<f64>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                (0..d)
                    .map(|_| shift + scale * rng.sample::<f64, _>(rand_distr::StandardNormal))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn frechet_distance_of_gaussians_has_its_closed_form() {
        // N(0, I) vs N(s·1, c²I) in d dims: FD = d·s² + d·(1 − c)².
        let (d, n) = (3, 20000);
        let (a, b) = (gaussian(n, d, 0.0, 1.0, 1), gaussian(n, d, 0.5, 2.0, 2));
        let fd = frechet_distance(&a, &b).unwrap();
        let want = d as f64 * 0.25 + d as f64 * 1.0;
        assert!((fd - want).abs() < 0.1, "{fd} vs {want}");
        assert!(frechet_distance(&a, &a).unwrap() < 1e-9);
        // KID is ≈ 0 for two samples of one law and grows with the shift.
        let c = gaussian(2000, d, 0.0, 1.0, 3);
        let small = kid(&a[..2000], &c).unwrap();
        let large = kid(&a[..2000], &b[..2000]).unwrap();
        assert!(
            small.abs() < 0.05 && large > 10.0 * small.abs(),
            "{small} {large}"
        );
        assert!(frechet_distance(&a[..1], &b).is_err());
    }
}
