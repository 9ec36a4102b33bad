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
//! use gradlab_generative::{Batch, likelihood::{Divergence, log_likelihood}};
//! use gradlab_generative::{ode::Solver, score::GaussianOracle, sde::Sde};
//! // Standard normal data: the VP marginals are N(0, 1) at every t, so the prior is exact.
//! let o = GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1.0]).unwrap();
//! let x = Batch::new(1, 1, vec![0.5]).unwrap();
//! let (ll, _) = log_likelihood(&o, &x, Divergence::Exact, Solver::Rk45 { rtol: 1e-6, atol: 1e-6 }, 0).unwrap();
//! let exact = o.log_density(&[0.5], gradlab_generative::sde::OFFICIAL_EPS).unwrap();
//! assert!((ll[0] - exact).abs() < 1e-3);
//! ```

use crate::ode::{Solver, integrate};
use crate::score::ScoreModel;
use crate::sde::OFFICIAL_EPS;
use crate::{Batch, Result, invalid};
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

/// ∇·s at every point of `x` (one value per point).
fn divergence(
    model: &impl ScoreModel,
    x: &Batch,
    t: f64,
    how: Divergence,
    probes: &[Batch],
) -> Result<Vec<f64>> {
    let shifted = |dir: &Batch, h: f64| x.axpy(h, dir);
    let mut div = vec![0.0; x.n];
    let sigma = model.sde().marginal(t)?.1;
    let mut add_directional = |dir: &Batch, k: usize| -> Result<()> {
        // zᵀ(∂s/∂x)z ≈ zᵀ[s(x + hz) − s(x − hz)]/(2h), per point.
        let h = fd_step(sigma, k);
        let (sp, sm) = (
            model.score(&shifted(dir, h), t)?,
            model.score(&shifted(dir, -h), t)?,
        );
        for (i, d) in div.iter_mut().enumerate() {
            let r = i * x.d..(i + 1) * x.d;
            *d += dir.data[r.clone()]
                .iter()
                .zip(&sp.data[r.clone()])
                .zip(&sm.data[r])
                .map(|((z, a), b)| z * (a - b) / (2.0 * h))
                .sum::<f64>();
        }
        Ok(())
    };
    match how {
        Divergence::Exact => {
            for k in 0..x.d {
                let mut e = Batch {
                    data: vec![0.0; x.data.len()],
                    ..x.clone()
                };
                (0..x.n).for_each(|i| e.data[i * x.d + k] = 1.0);
                add_directional(&e, 1)?;
            }
        }
        Divergence::Hutchinson(_) => {
            for z in probes {
                add_directional(z, x.d)?;
            }
            let m = probes.len().max(1) as f64;
            div.iter_mut().for_each(|d| *d /= m);
        }
    }
    Ok(div)
}

/// log p_ε(x) of every point by the probability-flow ODE from ε = [`OFFICIAL_EPS`] to 1; returns
/// the log-likelihoods (nats) and the NFE of the solver.
pub fn log_likelihood(
    model: &impl ScoreModel,
    x: &Batch,
    how: Divergence,
    solver: Solver,
    seed: u64,
) -> Result<(Vec<f64>, usize)> {
    log_likelihood_from(model, x, how, solver, OFFICIAL_EPS, seed)
}

/// [`log_likelihood`] from any start time `t_start` ∈ (0, 1): log p_{t_start}(x).
pub fn log_likelihood_from(
    model: &impl ScoreModel,
    x: &Batch,
    how: Divergence,
    solver: Solver,
    t_start: f64,
    seed: u64,
) -> Result<(Vec<f64>, usize)> {
    let sde = model.sde();
    sde.validate()?;
    if !(t_start > 0.0 && t_start < 1.0) {
        return invalid(format!(
            "the likelihood's start time {t_start} must lie in (0, 1)"
        ));
    }
    if x.d != model.dim() {
        return invalid(format!(
            "points of dimension {} for a model of dimension {}",
            x.d,
            model.dim()
        ));
    }
    if let Divergence::Hutchinson(0) = how {
        return invalid("Hutchinson's estimator needs at least one probe");
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let probes: Vec<Batch> = match how {
        Divergence::Hutchinson(m) => (0..m)
            .map(|_| Batch {
                data: (0..x.data.len())
                    .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
                    .collect(),
                ..x.clone()
            })
            .collect(),
        Divergence::Exact => vec![],
    };
    // Augmented state: each point's d coordinates followed by its accumulated divergence.
    let d = x.d;
    let mut state = Vec::with_capacity(x.n * (d + 1));
    for i in 0..x.n {
        state.extend_from_slice(x.row(i));
        state.push(0.0);
    }
    let aug = Batch::new(x.n, d + 1, state)?;
    let split = |a: &Batch| Batch {
        n: a.n,
        d,
        data: (0..a.n).flat_map(|i| a.row(i)[..d].to_vec()).collect(),
    };
    // Integrated in log-time τ = ln t (dx/dτ = t·dx/dt): the same ODE, but near ε its stiffness
    // ½β/σ² ≈ 1/(2t) becomes ≈ ½ per unit τ, and the round-off of the f32 score differences in
    // the divergence no longer forces an adaptive solver into ~10⁴ tiny steps in t.
    let rhs = |a: &Batch, tau: f64| -> Result<Batch> {
        let t = tau.exp().clamp(0.0, 1.0);
        let xs = split(a);
        let s = model.score(&xs, t)?;
        let (f, g) = sde.coefficients(t)?;
        let div = divergence(model, &xs, t, how, &probes)?;
        let mut out = Vec::with_capacity(a.data.len());
        for (i, div_i) in div.iter().enumerate() {
            for k in 0..d {
                out.push(f * xs.data[i * d + k] - 0.5 * g * g * s.data[i * d + k]);
            }
            out.push(d as f64 * f - 0.5 * g * g * div_i);
        }
        out.iter_mut().for_each(|v| *v *= t);
        Ok(Batch { data: out, ..*a })
    };
    let (end, nfe) = integrate(&rhs, aug, t_start.ln(), 0.0, solver)?;
    let ll = (0..end.n)
        .map(|i| {
            let r = end.row(i);
            sde.prior_log_density(&r[..d]) + r[d]
        })
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

    /// Dequantize integer `levels` with uniform noise drawn from `seed`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn dequantize(&self, levels: &Batch, seed: u64) -> Result<Batch> {
        if self.levels < 2 || !(self.high > self.low) || !self.bin_width().is_finite() {
            return invalid(format!(
                "a quantization needs ≥ 2 levels and low < high, got {} levels in [{}, {}]",
                self.levels, self.low, self.high
            ));
        }
        let top = (self.levels - 1) as f64;
        if let Some(bad) = levels
            .data
            .iter()
            .find(|k| !(k.fract() == 0.0 && (0.0..=top).contains(*k)))
        {
            return invalid(format!("levels must be integers in 0..={top}, found {bad}"));
        }
        let mut rng = StdRng::seed_from_u64(seed ^ 0xB1D);
        let w = self.bin_width();
        Ok(Batch {
            data: levels
                .data
                .iter()
                .map(|k| self.low + w * (k + rng.random::<f64>()))
                .collect(),
            ..levels.clone()
        })
    }
}

/// Bits per dimension of discrete data under the model: `levels` holds integer levels, placed in
/// the model's space by `q` (with dequantization noise from `seed`).
pub fn bits_per_dim_quantized(
    model: &impl ScoreModel,
    levels: &Batch,
    q: Quantization,
    how: Divergence,
    solver: Solver,
    seed: u64,
) -> Result<Vec<f64>> {
    let deq = q.dequantize(levels, seed)?;
    let (ll, _) = log_likelihood(model, &deq, how, solver, seed)?;
    Ok(bits_from_log_likelihood(&ll, levels.d, q))
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
    model: &impl ScoreModel,
    x: &Batch,
    how: Divergence,
    solver: Solver,
    seed: u64,
) -> Result<Vec<f64>> {
    if let Some(bad) = x.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return invalid(format!("8-bit data must lie in [0, 1], found {bad}"));
    }
    let levels = Batch {
        data: x.data.iter().map(|v| (v * 255.0).round()).collect(),
        ..x.clone()
    };
    bits_per_dim_quantized(model, &levels, Quantization::unit(256), how, solver, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::painters::GaussianData;
    use crate::score::GaussianOracle;
    use crate::sde::Sde;

    const TIGHT: Solver = Solver::Rk45 {
        rtol: 1e-7,
        atol: 1e-7,
    };

    #[test]
    fn exact_likelihoods_match_the_gaussian_change_of_variables() {
        for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
            let o = GaussianOracle::diagonal(sde, vec![1.0, -2.0], vec![0.25, 4.0]).unwrap();
            let x = Batch::new(3, 2, vec![1.2, -1.0, 0.5, -4.0, 1.0, -2.0]).unwrap();
            for t0 in [OFFICIAL_EPS, 1e-3] {
                let (ll, _) = log_likelihood_from(&o, &x, Divergence::Exact, TIGHT, t0, 0).unwrap();
                // Exact answer: the change of variables along the closed-form flow, with the
                // prior N(0, σ_T² I) in place of the true p₁ (the method's "prior mismatch",
                // ≈ 1e-2 for VP): log p_{t0}(x) − log p₁(x₁) + log prior(x₁).
                let x1 = GaussianData::diagonal(vec![1.0, -2.0], vec![0.25, 4.0])
                    .unwrap()
                    .flow(&sde, &x, t0, 1.0)
                    .unwrap();
                assert_eq!(ll.len(), 3);
                for (i, got) in ll.iter().enumerate() {
                    let want = o.log_density(x.row(i), t0).unwrap()
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
        let x = Batch::new(1, 1, vec![0.0]).unwrap();
        let (a, _) = log_likelihood(&o, &x, Divergence::Exact, TIGHT, 0).unwrap();
        let (b, _) =
            log_likelihood_from(&o, &x, Divergence::Exact, TIGHT, OFFICIAL_EPS, 0).unwrap();
        let (c, _) = log_likelihood_from(&o, &x, Divergence::Exact, TIGHT, 1e-3, 0).unwrap();
        assert!(a[0] == b[0] && a[0] > c[0] + 1.0, "{a:?} {b:?} {c:?}");
    }

    #[test]
    fn hutchinson_is_unbiased_but_not_exact_on_a_non_diagonal_jacobian() {
        // A Gaussian rotated by 45°: the score's Jacobian −Σ_t⁻¹ has off-diagonal entries, so a
        // Rademacher probe gives zᵀJz = tr J + 2 z₁z₂ J₁₂, off by ±2J₁₂ per probe (±1 values of
        // z₁z₂), exact only on average.
        let r = std::f64::consts::FRAC_1_SQRT_2;
        let data = GaussianData::new(vec![0.5, -0.5], vec![4.0, 0.04], vec![r, -r, r, r]).unwrap();
        let o = data.oracle(Sde::vp()).unwrap();
        let n = 256;
        let x = Batch::new(n, 2, [0.3, 0.2].repeat(n)).unwrap();
        let (exact, _) = log_likelihood(&o, &x, Divergence::Exact, TIGHT, 0).unwrap();
        let (hutch, _) = log_likelihood(&o, &x, Divergence::Hutchinson(1), TIGHT, 9).unwrap();
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
        let back = Batch::new(1, 2, vec![r * 0.3 + r * 0.2, -r * 0.3 + r * 0.2]).unwrap();
        let (want, _) = log_likelihood(&ax, &back, Divergence::Exact, TIGHT, 0).unwrap();
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
            let levels = Batch::new(n, 1, vec![k; n]).unwrap();
            let bpd = bits_per_dim_quantized(&o, &levels, q, Divergence::Exact, solver, 4).unwrap();
            let c: f64 = -1.0 + k * delta;
            let want = (0.5 * (c * c + delta * delta / 12.0)
                + 0.5 * (2.0 * std::f64::consts::PI).ln()
                - delta.ln())
                / 2f64.ln();
            let got = bpd.iter().sum::<f64>() / n as f64;
            // The per-sample std is ≤ |c|Δ/√12/log 2 ≈ 0.05: 4 standard errors ≈ 0.005.
            assert!((got - want).abs() < 5e-3, "level {k}: {got} vs {want}");
        }
        for bad in [vec![17.0], vec![-1.0], vec![0.5]] {
            let b = Batch::new(1, 1, bad).unwrap();
            assert!(q.dequantize(&b, 0).is_err());
        }
        let one = Batch::new(1, 1, vec![0.0]).unwrap();
        assert!(Quantization::pixels(1).dequantize(&one, 0).is_err());
    }

    #[test]
    fn eight_bit_bits_per_dim_match_the_closed_form_and_errors() {
        // Data N(c, 10⁻⁶) at level 128 of an 8-bit image stored as k/255: at ε = 1e-5 the VP
        // marginal is N(αc, v), v = α²·10⁻⁶ + σ(ε)², narrower than a bin (1/255), so the bits
        // depend on where the bin sits. Averaged over u in the bin centred on c:
        // E[−log p] = ½ log 2πv + (Δ²/12 + (1 − α)²c²)/(2v), bpd = (E[−log p] − log Δ)/log 2.
        let c = 128.0 / 255.0;
        let o = GaussianOracle::diagonal(Sde::vp(), vec![c], vec![1e-6]).unwrap();
        let (a, sg) = Sde::vp().marginal(OFFICIAL_EPS).unwrap();
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
        let x = Batch::new(n, 1, vec![c; n]).unwrap();
        let bpd = bits_per_dim(&o, &x, Divergence::Exact, solver, 0).unwrap();
        let got = bpd.iter().sum::<f64>() / n as f64;
        // Per-sample std ≈ 0.4 bits here: 4 standard errors ≈ 0.03.
        assert!((got - want).abs() < 0.03, "{got} vs {want}");
        assert!(
            bits_per_dim(
                &o,
                &Batch::new(1, 1, vec![1.5]).unwrap(),
                Divergence::Exact,
                solver,
                0
            )
            .is_err()
        );
        assert!(log_likelihood(&o, &x, Divergence::Hutchinson(0), Solver::Heun(10), 0).is_err());
        assert!(log_likelihood_from(&o, &x, Divergence::Exact, solver, 0.0, 0).is_err());
        let wrong = Batch::new(1, 2, vec![0.0, 0.0]).unwrap();
        assert!(log_likelihood(&o, &wrong, Divergence::Exact, Solver::Heun(10), 0).is_err());
    }
}
