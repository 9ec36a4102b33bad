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
//! - Ratio normalisation ([`RatioNormalizer`], on by default): 10 bins over the time range, each
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

use crate::{Result, invalid};
use burn::prelude::*;

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
}
