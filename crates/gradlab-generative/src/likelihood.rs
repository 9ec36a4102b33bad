//! Exact likelihood through the probability-flow ODE (Song et al., ICLR 2021, `likelihood.py`):
//! carry a point x₀ to t = 1 along dx/dt = f̃(x, t) = f(t)x − ½g(t)² s(x, t) while accumulating
//! the divergence, then
//!
//! log p₀(x₀) = log p_T(x_T) + ∫₀¹ ∇·f̃(x_t, t) dt,   ∇·f̃ = d·f(t) − ½g(t)² ∇·s.
//!
//! ∇·s is exact for low dimension (central differences of the score along each coordinate, 2d
//! extra score evaluations) or Hutchinson's unbiased estimate zᵀ(∂s/∂x)z with Rademacher z (one
//! directional difference per probe) for images. The ODE is integrated in log-time ln t (the
//! same ODE; near ε it is stiff in t but not in ln t). As the official code, the ODE starts at
//! ε = 10⁻⁵ ([`OFFICIAL_EPS`]; [`log_likelihood_from`] takes any start), where the VP marginal's
//! noise (σ ≈ 0.001) is below an 8-bit bin; from the sampling t_ε = 10⁻³ (σ ≈ 0.01) it is wider
//! than a bin and bounds 8-bit results from below by about 1.8 bits/dim.
//!
//! Discrete data: L equally spaced levels (the values the model was trained on) are dequantized
//! uniformly within bins centred on them, x = c_k + Δ(u − ½), u ~ U[0, 1)ᵈ ([`Quantization`]), and
//! bits/dim = (−log p(x) − d·log Δ)/(d·log 2). The official code trains on k/255 but dequantizes
//! into [k/256, (k+1)/256), whose edges the levels 0 and 255 sit on.
//!
//! ```
//! use gradlab_generative::likelihood::{Divergence, log_likelihood};
//! use gradlab_generative::{ode::Solver, points, process::{OFFICIAL_EPS, Sde}, score::GaussianOracle};
//! // Standard normal data: the VP marginals are N(0, 1) at every t, so the prior is exact.
//! let o = GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1.0]).unwrap();
//! let x = points::from_rows(&[0.5], 1, 1).unwrap();
//! let solver = Solver::Rk45 { rtol: 1e-6, atol: 1e-6 };
//! let (ll, _) = log_likelihood(&o, &Sde::vp(), &x, Divergence::Exact, solver, 0).unwrap();
//! let exact = o.log_density(&[0.5], OFFICIAL_EPS).unwrap();
//! assert!((ll[0] - exact).abs() < 1e-3);
//! ```

use crate::ode::{Solver, integrate};
use crate::points::Rows;
use crate::process::{OFFICIAL_EPS, Process};
use crate::sampling::Unobserved;
use crate::score::{ScoreModel, div};
use crate::{Result, invalid};
use burn::prelude::*;
use gradlab_core::bridge::{from_host, to_host};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How ∇·s is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// Central differences along every coordinate (2d score evaluations per ODE evaluation).
    Exact,
    /// Hutchinson's estimator with this many Rademacher probes (fixed along the path).
    Hutchinson(usize),
}

/// The smallest step per coordinate of the score differences: f32 networks resolve about 1e-7 of
/// an O(1) input, so steps below ~1e-5 are mostly round-off.
const MIN_FD_STEP: f64 = 1e-5;

/// The step per coordinate of a central difference along a direction with `k` entries of ±1 at
/// time t: the whole displacement h√k is a tenth of σ(t), the scale on which the score varies
/// (a fixed 10⁻⁴ displaces a 784-pixel image by 2.8σ at ε = 10⁻⁵, where the difference no longer
/// measures the Jacobian), but never below [`MIN_FD_STEP`].
fn fd_step(sigma: f64, k: usize) -> f64 {
    (0.1 * sigma / (k.max(1) as f64).sqrt()).max(MIN_FD_STEP)
}

/// ∇·s at every point of `x` (`[n]`), by central differences of the score along each coordinate
/// (`probes` empty) or along each Rademacher probe (averaged).
fn divergence(
    model: &impl ScoreModel<2>,
    x: &Tensor<2>,
    (t, sigma): (f64, f64),
    probes: &[Tensor<2>],
) -> Result<Tensor<1>> {
    let [n, d] = x.dims();
    // zᵀ(∂s/∂x)z ≈ zᵀ[s(x + hz) − s(x − hz)]/(2h), per point.
    let directional = |dir: &Tensor<2>, k: usize| -> Result<Tensor<1>> {
        let h = fd_step(sigma, k);
        let sp = model.score(x.clone() + dir.clone() * h, t)?;
        let sm = model.score(x.clone() + dir.clone() * (-h), t)?;
        Ok(div(dir.clone() * (sp - sm), 2.0 * h)
            .sum_dim(1)
            .reshape([n]))
    };
    let mut total = Tensor::<1>::zeros([n], (&x.device(), x.dtype()));
    if probes.is_empty() {
        for k in 0..d {
            let mut e = vec![0.0; n * d];
            (0..n).for_each(|i| e[i * d + k] = 1.0);
            let e = from_host(&e, [n, d], &x.device())?.cast(x.dtype());
            total = total + directional(&e, 1)?;
        }
        return Ok(total);
    }
    for z in probes {
        total = total + directional(z, d)?;
    }
    Ok(div(total, probes.len() as f64))
}

/// log p_ε(x) of every point of `x` (`[n, d]`; images flattened) by the probability-flow ODE of
/// `process` from ε = [`OFFICIAL_EPS`] to 1; returns the log-likelihoods (nats) and the NFE of the
/// solver.
pub fn log_likelihood(
    model: &impl ScoreModel<2>,
    process: &impl Process,
    x: &Tensor<2>,
    how: Divergence,
    solver: Solver,
    seed: u64,
) -> Result<(Vec<f64>, usize)> {
    log_likelihood_from(model, process, x, how, solver, OFFICIAL_EPS, seed)
}

/// [`log_likelihood`] from any start time `t_start` ∈ (0, 1): log p_{t_start}(x).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn log_likelihood_from(
    model: &impl ScoreModel<2>,
    process: &impl Process,
    x: &Tensor<2>,
    how: Divergence,
    solver: Solver,
    t_start: f64,
    seed: u64,
) -> Result<(Vec<f64>, usize)> {
    if !(t_start > 0.0 && t_start < 1.0) {
        return invalid(format!(
            "the likelihood's start time {t_start} must lie in (0, 1)"
        ));
    }
    let [n, d] = x.dims();
    let (dev, dtype) = (x.device(), x.dtype());
    let mut rng = StdRng::seed_from_u64(seed);
    let probes: Vec<Tensor<2>> = match how {
        Divergence::Hutchinson(0) => {
            return invalid("Hutchinson's estimator needs at least one probe");
        }
        Divergence::Hutchinson(m) => (0..m)
            .map(|_| {
                let z: Vec<f64> = (0..n * d)
                    .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                    .collect();
                Ok(from_host(&z, [n, d], &dev)?.cast(dtype))
            })
            .collect::<Result<_>>()?,
        Divergence::Exact => vec![],
    };
    // Augmented state: each point's d coordinates followed by its accumulated divergence.
    let aug = Tensor::cat(vec![x.clone(), Tensor::zeros([n, 1], (&dev, dtype))], 1);
    // Integrated in log-time τ = ln t (dx/dτ = t·dx/dt): the same ODE, but near ε its stiffness
    // ½β/σ² ≈ 1/(2t) becomes ≈ ½ per unit τ, and the round-off of the f32 score differences in
    // the divergence no longer forces an adaptive solver into ~10⁴ tiny steps in t.
    let rhs = |a: &Tensor<2>, tau: f64| -> Result<Tensor<2>> {
        let t = tau.exp().clamp(0.0, 1.0);
        let xs = a.clone().slice([0..n, 0..d]);
        let s = model.score(xs.clone(), t)?;
        let (f, g) = process.coefficients(t)?;
        let sigma = process.marginal(t)?.1;
        let dv = divergence(model, &xs, (t, sigma), &probes)?;
        let drift = xs * f - s * (0.5 * g * g);
        let dlog = (dv * (-(0.5 * g * g)) + d as f64 * f).reshape([n, 1]);
        Ok(Tensor::cat(vec![drift, dlog], 1) * t)
    };
    let (end, nfe) = integrate(rhs, aug, t_start.ln(), 0.0, solver, &mut Unobserved)?;
    let end = to_host(end)?;
    let ll = end
        .chunks_exact(d + 1)
        .map(|r| process.prior_log_density(&r[..d]) + r[d])
        .collect();
    Ok((ll, nfe))
}

/// How discrete data sit in the model's space: level k ∈ {0, …, L − 1} is the value
/// c_k = first + k(last − first)/(L − 1) (what the model was trained on), and is dequantized to
/// x = c_k + Δ(u − ½), u ~ U[0, 1)ᵈ, in a bin of width Δ = (last − first)/(L − 1) centred on it.
/// A density p then gives the levels the probability ≥ p(x)·Δᵈ, and
/// bits/dim = (−log p(x) − d log Δ)/(d log 2).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantization {
    /// Number of levels L.
    pub levels: usize,
    /// Where level 0's bin starts in the model's space (c_0 − Δ/2).
    pub low: f64,
    /// Where the last bin ends (c_{L−1} + Δ/2).
    pub high: f64,
}

impl Quantization {
    /// `levels` levels from `first` to `last`, each at the centre of its bin.
    pub fn on_levels(levels: usize, first: f64, last: f64) -> Self {
        let half = if levels > 1 {
            0.5 * (last - first) / (levels - 1) as f64
        } else {
            f64::NAN
        };
        Self {
            levels,
            low: first - half,
            high: last + half,
        }
    }

    /// Pixels of `levels` levels scaled to [−1, 1] as the image models here see them
    /// (c_k = −1 + 2k/(L − 1): 17 for the 0–16 digits, 256 for 8-bit images).
    pub fn pixels(levels: usize) -> Self {
        Self::on_levels(levels, -1.0, 1.0)
    }

    /// Pixels of `levels` levels in [0, 1] (c_k = k/(L − 1); 8-bit images are stored as k/255).
    pub fn unit(levels: usize) -> Self {
        Self::on_levels(levels, 0.0, 1.0)
    }

    /// The bin width Δ.
    pub fn bin_width(&self) -> f64 {
        (self.high - self.low) / self.levels as f64
    }

    /// Dequantize integer `levels` (`[n, d]`) with uniform noise drawn from `seed`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn dequantize(&self, levels: &Tensor<2>, seed: u64) -> Result<Tensor<2>> {
        if self.levels < 2 || !(self.high > self.low) || !self.bin_width().is_finite() {
            return invalid(format!(
                "a quantization needs ≥ 2 levels and low < high, got {} levels in [{}, {}]",
                self.levels, self.low, self.high
            ));
        }
        let top = (self.levels - 1) as f64;
        let k = Rows::of(levels)?;
        if let Some(bad) = k
            .data
            .iter()
            .find(|k| !(k.fract() == 0.0 && (0.0..=top).contains(*k)))
        {
            return invalid(format!("levels must be integers in 0..={top}, found {bad}"));
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0xB1D);
        let w = self.bin_width();
        let data: Vec<f64> = k
            .data
            .iter()
            .map(|k| self.low + w * (k + rng.random::<f64>()))
            .collect();
        Ok(from_host(&data, [k.n, k.d], &levels.device())?)
    }
}

/// Bits per dimension of discrete data under the model: `levels` (`[n, d]`) holds integer levels,
/// placed in the model's space by `q` (with dequantization noise from `seed`).
pub fn bits_per_dim_quantized(
    model: &impl ScoreModel<2>,
    process: &impl Process,
    levels: &Tensor<2>,
    q: Quantization,
    how: Divergence,
    solver: Solver,
    seed: u64,
) -> Result<Vec<f64>> {
    let deq = q.dequantize(levels, seed)?;
    let (ll, _) = log_likelihood(model, process, &deq, how, solver, seed)?;
    Ok(bits_from_log_likelihood(&ll, levels.dims()[1], q))
}

/// Bits per dimension from log-likelihoods (nats) of dequantized points of dimension `d`.
pub fn bits_from_log_likelihood(ll: &[f64], d: usize, q: Quantization) -> Vec<f64> {
    let d = d as f64;
    ll.iter()
        .map(|l| (-l - d * q.bin_width().ln()) / (d * 2f64.ln()))
        .collect()
}

/// Bits per dimension of 8-bit data in [0, 1] (`x` = k/255, as images are stored) under a model
/// of that space, with bins of width 1/255 centred on the levels ([`Quantization::unit`]`(256)`;
/// the official [k/256, (k+1)/256) bins are narrower by 255/256, which lowers their bits/dim by
/// log₂(256/255) = 0.0056).
pub fn bits_per_dim(
    model: &impl ScoreModel<2>,
    process: &impl Process,
    x: &Tensor<2>,
    how: Divergence,
    solver: Solver,
    seed: u64,
) -> Result<Vec<f64>> {
    let r = Rows::of(x)?;
    if let Some(bad) = r.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return invalid(format!("8-bit data must lie in [0, 1], found {bad}"));
    }
    let levels: Vec<f64> = r.data.iter().map(|v| (v * 255.0).round()).collect();
    let levels = from_host(&levels, [r.n, r.d], &x.device())?;
    let q = Quantization::unit(256);
    bits_per_dim_quantized(model, process, &levels, q, how, solver, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::painters::GaussianData;
    use crate::points::from_rows;
    use crate::process::Sde;
    use crate::score::GaussianOracle;

    const TIGHT: Solver = Solver::Rk45 {
        rtol: 1e-7,
        atol: 1e-7,
    };

    fn ll_from(
        o: &GaussianOracle<Sde>,
        x: &Tensor<2>,
        how: Divergence,
        t0: f64,
        seed: u64,
    ) -> Vec<f64> {
        log_likelihood_from(o, o.process(), x, how, TIGHT, t0, seed)
            .unwrap()
            .0
    }

    #[test]
    fn exact_likelihoods_match_the_gaussian_change_of_variables() {
        for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
            let o = GaussianOracle::diagonal(sde, vec![1.0, -2.0], vec![0.25, 4.0]).unwrap();
            let x = from_rows(&[1.2, -1.0, 0.5, -4.0, 1.0, -2.0], 3, 2).unwrap();
            let rows = Rows::of(&x).unwrap();
            for t0 in [OFFICIAL_EPS, 1e-3] {
                let ll = ll_from(&o, &x, Divergence::Exact, t0, 0);
                // Exact answer: the change of variables along the closed-form flow, with the
                // prior N(0, σ_T² I) in place of the true p₁ (the method's "prior mismatch",
                // ≈ 1e-2 for VP): log p_{t0}(x) − log p₁(x₁) + log prior(x₁).
                let x1 = GaussianData::diagonal(vec![1.0, -2.0], vec![0.25, 4.0])
                    .unwrap()
                    .flow(&sde, &x, t0, 1.0)
                    .unwrap();
                let x1 = Rows::of(&x1).unwrap();
                assert_eq!(ll.len(), 3);
                for (i, got) in ll.iter().enumerate() {
                    let want = o.log_density(rows.row(i), t0).unwrap()
                        - o.log_density(x1.row(i), 1.0).unwrap()
                        + sde.prior_log_density(x1.row(i));
                    assert!(
                        (got - want).abs() < 1e-4,
                        "{sde:?} t0 {t0} point {i}: {got} vs {want}"
                    );
                }
            }
        }
        // The default start is the official ε.
        let o = GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1e-6]).unwrap();
        let x = from_rows(&[0.0], 1, 1).unwrap();
        let (a, _) = log_likelihood(&o, &Sde::vp(), &x, Divergence::Exact, TIGHT, 0).unwrap();
        let b = ll_from(&o, &x, Divergence::Exact, OFFICIAL_EPS, 0);
        let c = ll_from(&o, &x, Divergence::Exact, 1e-3, 0);
        assert!(a[0] == b[0] && a[0] > c[0] + 1.0, "{a:?} {b:?} {c:?}");
    }

    #[test]
    fn hutchinson_is_unbiased_but_not_exact_on_a_non_diagonal_jacobian() {
        // A Gaussian rotated by 45°: the score's Jacobian −Σ_t⁻¹ has off-diagonal entries, so a
        // Rademacher probe gives zᵀJz = tr J + 2 z₁z₂ J₁₂, off by ±2J₁₂ per probe (±1 values of
        // z₁z₂), exact only on average.
        let r = std::f64::consts::FRAC_1_SQRT_2;
        let data = GaussianData::new(vec![0.5, -0.5], vec![4.0, 0.04], vec![r, -r, r, r]).unwrap();
        let o = data.oracle(Sde::vp());
        let n = 256;
        let x = from_rows(&[0.3, 0.2].repeat(n), n, 2).unwrap();
        let sde = Sde::vp();
        let (exact, _) = log_likelihood(&o, &sde, &x, Divergence::Exact, TIGHT, 0).unwrap();
        let (hutch, _) = log_likelihood(&o, &sde, &x, Divergence::Hutchinson(1), TIGHT, 9).unwrap();
        let dev: Vec<f64> = hutch.iter().map(|h| h - exact[0]).collect();
        let spread = dev.iter().map(|d| d.abs()).fold(0.0, f64::max);
        assert!(
            spread > 0.05,
            "one probe is exact here ({spread}): not a real estimator test"
        );
        // Two values ±δ: the mean over 256 probes is within 4 standard errors (4δ/16) of zero.
        let mean = dev.iter().sum::<f64>() / n as f64;
        assert!(
            mean.abs() < spread / 4.0,
            "mean deviation {mean} vs δ {spread}"
        );
        // The exact divergence is the closed form: rotate back to the axes.
        let ax = GaussianOracle::diagonal(Sde::vp(), vec![0.0, -r], vec![4.0, 0.04]).unwrap();
        let back = from_rows(&[r * 0.3 + r * 0.2, -r * 0.3 + r * 0.2], 1, 2).unwrap();
        let (want, _) = log_likelihood(&ax, &sde, &back, Divergence::Exact, TIGHT, 0).unwrap();
        assert!(
            (exact[0] - want[0]).abs() < 1e-4,
            "{} vs {}",
            exact[0],
            want[0]
        );
    }

    #[test]
    fn quantized_bits_per_dim_match_the_closed_form_expectation() {
        // Standard normal data under VP: every marginal is N(0, 1) and the prior is exact, so the
        // PF-ODE bits/dim of level k average, over the dequantization noise u ~ U in a bin of width
        // Δ centred on c_k, to (½(c_k² + Δ²/12) + ½ log 2π − log Δ)/log 2. Bins with an edge on
        // c_k instead (the earlier layout) would add ½(c_kΔ + Δ²/4)/log 2.
        let o = GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1.0]).unwrap();
        let q = Quantization::pixels(17);
        let delta = 2.0 / 16.0;
        assert!((q.bin_width() - delta).abs() < 1e-15);
        let solver = Solver::Rk45 {
            rtol: 1e-6,
            atol: 1e-6,
        };
        let n = 2000;
        for k in [0.0, 12.0, 16.0] {
            let levels = from_rows(&vec![k; n], n, 1).unwrap();
            let bpd =
                bits_per_dim_quantized(&o, &Sde::vp(), &levels, q, Divergence::Exact, solver, 4)
                    .unwrap();
            let c: f64 = -1.0 + k * delta;
            let want = (0.5 * (c * c + delta * delta / 12.0)
                + 0.5 * (2.0 * std::f64::consts::PI).ln()
                - delta.ln())
                / 2f64.ln();
            let got = bpd.iter().sum::<f64>() / n as f64;
            // The per-sample std is ≤ |c|Δ/√12/log 2 ≈ 0.05: 4 standard errors ≈ 0.005.
            assert!((got - want).abs() < 5e-3, "level {k}: {got} vs {want}");
        }
        for bad in [17.0, -1.0, 0.5] {
            let b = from_rows(&[bad], 1, 1).unwrap();
            assert!(q.dequantize(&b, 0).is_err());
        }
        let one = from_rows(&[0.0], 1, 1).unwrap();
        assert!(Quantization::pixels(1).dequantize(&one, 0).is_err());
    }

    #[test]
    fn eight_bit_bits_per_dim_match_the_closed_form_and_errors() {
        // Data N(c, 10⁻⁶) at level 128 of an 8-bit image stored as k/255: at ε = 1e-5 the VP
        // marginal is N(αc, v), v = α²·10⁻⁶ + σ(ε)², narrower than a bin (1/255), so the bits
        // depend on where the bin sits. Averaged over u in the bin centred on c:
        // E[−log p] = ½ log 2πv + (Δ²/12 + (1 − α)²c²)/(2v), bpd = (E[−log p] − log Δ)/log 2.
        let c = 128.0 / 255.0;
        let sde = Sde::vp();
        let o = GaussianOracle::diagonal(sde, vec![c], vec![1e-6]).unwrap();
        let (a, sg) = sde.marginal(OFFICIAL_EPS).unwrap();
        let v = a * a * 1e-6 + sg * sg;
        let delta = 1.0 / 255.0;
        let want = (0.5 * (2.0 * std::f64::consts::PI * v).ln()
            + (delta * delta / 12.0 + ((1.0 - a) * c).powi(2)) / (2.0 * v)
            - delta.ln())
            / 2f64.ln();
        let n = 4000;
        let solver = Solver::Rk45 {
            rtol: 1e-6,
            atol: 1e-6,
        };
        let x = from_rows(&vec![c; n], n, 1).unwrap();
        let bpd = bits_per_dim(&o, &sde, &x, Divergence::Exact, solver, 0).unwrap();
        let got = bpd.iter().sum::<f64>() / n as f64;
        // Per-sample std ≈ 0.4 bits here: 4 standard errors ≈ 0.03.
        assert!((got - want).abs() < 0.03, "{got} vs {want}");
        let above = from_rows(&[1.5], 1, 1).unwrap();
        assert!(bits_per_dim(&o, &sde, &above, Divergence::Exact, solver, 0).is_err());
        let heun = Solver::Heun(10);
        assert!(log_likelihood(&o, &sde, &x, Divergence::Hutchinson(0), heun, 0).is_err());
        assert!(log_likelihood_from(&o, &sde, &x, Divergence::Exact, solver, 0.0, 0).is_err());
        let wrong = from_rows(&[0.0, 0.0], 1, 2).unwrap();
        assert!(log_likelihood(&o, &sde, &wrong, Divergence::Exact, heun, 0).is_err());
    }
}
