//! Rényi-DP accountant for the subsampled Gaussian mechanism (Mironov, Talwar, Zhang, "Rényi
//! Differential Privacy of the Sampled Gaussian Mechanism", arXiv 1908.10530, §3.3), with the
//! RDP → (ε, δ) conversion of Balle et al. 2020 (arXiv 1905.09982, Thm. 21), as Opacus's RDP
//! accountant computes them.
//!
//! One step with sampling rate q and noise multiplier σ has, at order α,
//! RDP(α) = log A_α / (α − 1), where A_α = E_{z∼μ₀}[(μ(z)/μ₀(z))^α] with μ = (1−q)μ₀ + qμ₁ and
//! μ_k = N(k, σ²). For integer α, A_α = Σ_k C(α,k) (1−q)^{α−k} q^k e^{(k²−k)/(2σ²)}; for fractional α
//! the expectation splits at z₀ = σ² ln(1/q − 1) + ½ into two series with erfc terms. T steps add
//! up: RDP_T = T·RDP. Then ε = min_α RDP_T(α) − (ln δ + ln α)/(α − 1) + ln((α − 1)/α).
//!
//! ```
//! use gradlab_optim::privacy::{default_orders, epsilon};
//! // Opacus 1.6.0 gives 1.71177009122… for q = 0.01, σ = 1.1, 1000 steps, δ = 1e-5.
//! let (eps, _) = epsilon(0.01, 1.1, 1000, 1e-5, &default_orders()).unwrap();
//! assert!((eps - 1.7117700912203435).abs() < 1e-6);
//! ```

use crate::error::{OptimError, Result};
use gradlab_core::problem::PerExampleGradients;

/// Opacus's default orders: 1.1, 1.2, …, 10.9, then 12, 13, …, 63.
pub fn default_orders() -> Vec<f64> {
    (1..100)
        .map(|x| 1.0 + x as f64 / 10.0)
        .chain((12..64).map(f64::from))
        .collect()
}

fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

fn log_sub(a: f64, b: f64) -> f64 {
    if b == f64::NEG_INFINITY {
        a
    } else if a <= b {
        f64::NEG_INFINITY
    } else {
        a + (-(b - a).exp()).ln_1p()
    }
}

/// log erfc(x), accurate for large x.
fn log_erfc(x: f64) -> f64 {
    if x < 20.0 {
        libm::erfc(x).ln()
    } else {
        // erfc(x) = e^{−x²}/(x√π) · (1 − 1/(2x²) + 3/(4x⁴) − 15/(8x⁶) + …).
        let x2 = x * x;
        -x2 - (x * std::f64::consts::PI.sqrt()).ln()
            + (1.0 - 1.0 / (2.0 * x2) + 3.0 / (4.0 * x2 * x2) - 15.0 / (8.0 * x2 * x2 * x2)).ln()
    }
}

fn ln_binom_int(n: u64, k: u64) -> f64 {
    (0..k)
        .map(|j| ((n - j) as f64).ln() - ((j + 1) as f64).ln())
        .sum()
}

fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    (0..=alpha).fold(f64::NEG_INFINITY, |acc, k| {
        let kf = k as f64;
        let term = ln_binom_int(alpha, k)
            + kf * q.ln()
            + (alpha - k) as f64 * (1.0 - q).ln()
            + (kf * kf - kf) / (2.0 * sigma * sigma);
        log_add(acc, term)
    })
}

fn log_a_frac(q: f64, sigma: f64, alpha: f64) -> f64 {
    let (mut a0, mut a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let mut coef = 1.0f64; // generalised binomial C(α, i), built up term by term
    let s2 = std::f64::consts::SQRT_2 * sigma;
    for i in 0..10_000u32 {
        let fi = f64::from(i);
        if i > 0 {
            coef *= (alpha - fi + 1.0) / fi;
        }
        let lc = coef.abs().ln();
        let j = alpha - fi;
        let t0 = lc + fi * q.ln() + j * (1.0 - q).ln();
        let t1 = lc + j * q.ln() + fi * (1.0 - q).ln();
        let e0 = 0.5f64.ln() + log_erfc((fi - z0) / s2);
        let e1 = 0.5f64.ln() + log_erfc((z0 - j) / s2);
        let s0 = t0 + (fi * fi - fi) / (2.0 * sigma * sigma) + e0;
        let s1 = t1 + (j * j - j) / (2.0 * sigma * sigma) + e1;
        if coef > 0.0 {
            a0 = log_add(a0, s0);
            a1 = log_add(a1, s1);
        } else {
            a0 = log_sub(a0, s0);
            a1 = log_sub(a1, s1);
        }
        if s0.max(s1) < -30.0 {
            break;
        }
    }
    log_add(a0, a1)
}

/// RDP of one step of the subsampled Gaussian mechanism at order α > 1.
pub fn rdp_step(q: f64, sigma: f64, alpha: f64) -> f64 {
    if q == 0.0 {
        0.0
    } else if sigma == 0.0 || alpha.is_infinite() {
        f64::INFINITY
    } else if q == 1.0 {
        alpha / (2.0 * sigma * sigma)
    } else if alpha.fract() == 0.0 {
        log_a_int(q, sigma, alpha as u64) / (alpha - 1.0)
    } else {
        log_a_frac(q, sigma, alpha) / (alpha - 1.0)
    }
}

/// `steps` steps of the subsampled Gaussian mechanism at sampling rate `q` and noise multiplier
/// `sigma` (noise std / sensitivity). A run made of several kinds of steps is a slice of these.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mechanism {
    /// Sampling rate in [0, 1] (1 = the full data set every step).
    pub q: f64,
    /// Noise multiplier ≥ 0.
    pub sigma: f64,
    /// Number of steps.
    pub steps: usize,
}

fn check_delta(delta: f64) -> Result<()> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(OptimError::Invalid {
            name: "delta",
            value: delta,
            requirement: "in (0, 1)",
        })
    }
}

/// (ε, best order) after `steps` steps at sampling rate `q` and noise multiplier `sigma`, for δ.
pub fn epsilon(q: f64, sigma: f64, steps: usize, delta: f64, orders: &[f64]) -> Result<(f64, f64)> {
    epsilon_composed(&[Mechanism { q, sigma, steps }], delta, orders)
}

/// (ε, best order) of a run composed of several mechanisms: their RDP curves add up (as Opacus
/// sums the `compute_rdp` arrays of its history), then one conversion to (ε, δ).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn epsilon_composed(
    mechanisms: &[Mechanism],
    delta: f64,
    orders: &[f64],
) -> Result<(f64, f64)> {
    for m in mechanisms {
        if !(0.0..=1.0).contains(&m.q) {
            return Err(OptimError::Invalid {
                name: "q",
                value: m.q,
                requirement: "in [0, 1]",
            });
        }
        crate::error::check_non_negative("sigma", m.sigma)?;
    }
    check_delta(delta)?;
    if orders.iter().any(|a| !(*a > 1.0)) || orders.is_empty() {
        return Err(OptimError::Conflict("RDP orders must be > 1"));
    }
    let best = orders
        .iter()
        .map(|&a| {
            let r: f64 = mechanisms
                .iter()
                .filter(|m| m.steps > 0)
                .map(|m| m.steps as f64 * rdp_step(m.q, m.sigma, a))
                .sum();
            (
                r - (delta.ln() + a.ln()) / (a - 1.0) + ((a - 1.0) / a).ln(),
                a,
            )
        })
        .filter(|(e, _)| !e.is_nan())
        .min_by(|x, y| x.0.total_cmp(&y.0));
    Ok(best.unwrap_or((f64::INFINITY, f64::NAN)))
}

/// A privacy budget (ε, δ): ε > 0, δ in (0, 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrivacyBudget {
    /// ε > 0.
    pub epsilon: f64,
    /// δ in (0, 1).
    pub delta: f64,
}

impl PrivacyBudget {
    /// A validated budget.
    pub fn new(epsilon: f64, delta: f64) -> Result<Self> {
        crate::error::check_positive("epsilon", epsilon)?;
        check_delta(delta)?;
        Ok(Self { epsilon, delta })
    }

    /// No privacy at all (ε = ∞): for non-private reference runs, such as σ = 0.
    pub fn unlimited() -> Self {
        Self {
            epsilon: f64::INFINITY,
            delta: 0.5,
        }
    }

    /// ε of `mechanisms` at this δ, or [`OptimError::OverBudget`] if it exceeds this ε (by more
    /// than 1e-9 relative): called before a private run starts, never after.
    pub fn admit(&self, mechanisms: &[Mechanism]) -> Result<f64> {
        let (eps, _) = epsilon_composed(mechanisms, self.delta, &default_orders())?;
        if eps > self.epsilon * (1.0 + 1e-9) {
            return Err(OptimError::OverBudget {
                spent: eps,
                epsilon: self.epsilon,
                delta: self.delta,
            });
        }
        Ok(eps)
    }

    /// The zCDP-style total ρ = Σ steps/(2σ²) of full-batch Gaussian steps (q = 1, whose RDP is
    /// α/(2σ²) at every order) that spends exactly this budget: split ρ among mechanisms and set
    /// σ_k = √(steps_k / (2ρ_k)).
    pub fn full_batch_rho(&self) -> Result<f64> {
        let sigma = noise_for_epsilon(1.0, 1, self.delta, self.epsilon)?;
        Ok(1.0 / (2.0 * sigma * sigma))
    }
}

/// The result of a private run: the final iterate and the ε it spent (at the budget's δ).
#[derive(Debug, Clone, PartialEq)]
pub struct PrivateRun {
    /// The final iterate.
    pub x: Vec<f64>,
    /// ε spent.
    pub epsilon: f64,
}

/// Everything a private run checks before its first step: a non-empty problem, a finite start of
/// the right length, and ε of `mechanisms` within `budget`. Returns that ε.
pub(crate) fn begin<P: PerExampleGradients + ?Sized>(
    problem: &P,
    x0: &[f64],
    budget: &PrivacyBudget,
    mechanisms: &[Mechanism],
) -> Result<f64> {
    check_start(problem, x0)?;
    budget.admit(mechanisms)
}

fn check_start<P: PerExampleGradients + ?Sized>(problem: &P, x0: &[f64]) -> Result<()> {
    if problem.examples() == 0 {
        return Err(OptimError::Conflict(
            "a private run needs at least one example",
        ));
    }
    if x0.len() != problem.dim() {
        return Err(OptimError::Invalid {
            name: "x0.len()",
            value: x0.len() as f64,
            requirement: "equal to the problem's dimension",
        });
    }
    if x0.iter().any(|v| !v.is_finite()) {
        return Err(OptimError::Conflict(
            "the starting point has a non-finite coordinate",
        ));
    }
    Ok(())
}

/// The per-example gradients of a private step (`out`: |idx| × d): a point or a gradient that is
/// not finite is the run's divergence at `step` ([`OptimError::NonFinite`]), other errors of the
/// problem are its own.
pub(crate) fn example_gradients_at<P: PerExampleGradients + ?Sized>(
    problem: &P,
    x: &[f64],
    idx: &[usize],
    out: &mut [f64],
    step: usize,
) -> Result<()> {
    match problem.example_gradients_into(x, idx, out) {
        Err(gradlab_core::CoreError::NonFinite { .. }) => Err(OptimError::NonFinite {
            what: "per-example gradient",
            step,
        }),
        other => Ok(other?),
    }
}

/// Per-example clipping (Abadi et al. 2016): scale `v` to norm at most `max_norm`,
/// v ← v · min(1, C/‖v‖).
pub fn clip_to_norm(v: &mut [f64], max_norm: f64) {
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > max_norm {
        let s = max_norm / norm;
        v.iter_mut().for_each(|x| *x *= s);
    }
}

/// The clipped per-example sum before noise, with a step number for the error if it is not
/// finite.
pub(crate) fn check_finite_sum(sum: &[f64], step: usize) -> Result<()> {
    if sum.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(OptimError::NonFinite {
            what: "per-example gradient",
            step,
        })
    }
}

/// Adds N(0, std²) to every coordinate of `v`.
pub fn add_gaussian(v: &mut [f64], std: f64, rng: &mut impl rand::Rng) {
    if std > 0.0 {
        v.iter_mut()
            .for_each(|x| *x += std * rng.sample::<f64, _>(rand_distr::StandardNormal));
    }
}

/// The smallest noise multiplier (to 1e-4 relative) whose ε after `steps` steps is at most
/// `target_eps`; an error if even σ = 1000 does not reach it.
pub fn noise_for_epsilon(q: f64, steps: usize, delta: f64, target_eps: f64) -> Result<f64> {
    let orders = default_orders();
    let eps = |s: f64| epsilon(q, s, steps, delta, &orders).map(|e| e.0);
    let (mut lo, mut hi) = (1e-3, 1000.0);
    if eps(hi)? > target_eps {
        return Err(OptimError::Conflict(
            "the privacy budget cannot be met with a noise multiplier up to 1000",
        ));
    }
    while (hi - lo) / hi > 1e-4 {
        let mid = 0.5 * (lo + hi);
        if eps(mid)? <= target_eps {
            hi = mid
        } else {
            lo = mid
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values: Opacus 1.6.0 (PyPI wheel), `opacus/accountants/analysis/rdp.py`, run with
    /// numpy and scipy 1.17.1: `compute_rdp(q, noise_multiplier, steps, orders=DEFAULT_ALPHAS)` then
    /// `get_privacy_spent(orders, rdp, delta)`; raw one-step RDP from `compute_rdp(..., steps=1)`.
    #[test]
    fn matches_opacus_within_a_tenth_of_a_percent() {
        let orders = default_orders();
        for (q, sigma, steps, delta, eps_o, alpha_o) in [
            (0.01, 1.1, 1000, 1e-5, 1.7117700912203435, 9.6),
            (0.025, 1.0, 400, 1e-3, 2.452086444837923, 4.7),
            (0.1, 2.0, 100, 1e-5, 2.5805688086608938, 7.6),
            (0.001, 0.8, 10000, 1e-6, 1.7036252805758572, 8.2),
            (1.0, 5.0, 10, 1e-5, 2.8136532471298397, 7.9),
        ] {
            let (eps, alpha) = epsilon(q, sigma, steps, delta, &orders).unwrap();
            assert!(
                (eps - eps_o).abs() / eps_o < 1e-3,
                "q {q} σ {sigma}: {eps} vs {eps_o}"
            );
            assert!((alpha - alpha_o).abs() < 1e-9, "{alpha} vs {alpha_o}");
        }
        for (a, r) in [
            (1.5, 9.554528557684942e-05),
            (2.0, 0.00012851008160514807),
            (10.0, 0.0008075821730220518),
            (32.0, 8.469416433675926),
            (12.3, 0.11045713179174234),
        ] {
            let got = rdp_step(0.01, 1.1, a);
            assert!((got - r).abs() / r < 1e-6, "α {a}: {got} vs {r}");
        }
    }

    /// Golden values: Opacus 1.6.0 `RDPAccountant` with `history = [(σ, q, steps), …]` and
    /// `get_epsilon(δ)` (it sums the `compute_rdp` arrays of its history over DEFAULT_ALPHAS).
    #[test]
    fn composed_runs_match_opacus() {
        let m = |sigma, q, steps| Mechanism { q, sigma, steps };
        for (mechs, delta, eps_o, alpha_o) in [
            (
                vec![m(3.0, 1.0, 10), m(20.0, 1.0, 90)],
                1e-3,
                4.22183316978092,
                3.9,
            ),
            (
                vec![m(1.1, 0.01, 1000), m(0.8, 0.05, 200)],
                1e-5,
                8.92121549606002,
                2.9,
            ),
        ] {
            let (eps, alpha) = epsilon_composed(&mechs, delta, &default_orders()).unwrap();
            assert!((eps - eps_o).abs() / eps_o < 1e-3, "{eps} vs {eps_o}");
            assert!((alpha - alpha_o).abs() < 1e-9);
        }
        // Splitting a run into pieces at the same (q, σ) changes nothing.
        let whole = epsilon(0.1, 1.3, 300, 1e-5, &default_orders()).unwrap();
        let split = epsilon_composed(
            &[m(1.3, 0.1, 100), m(1.3, 0.1, 200)],
            1e-5,
            &default_orders(),
        )
        .unwrap();
        assert!((whole.0 - split.0).abs() < 1e-12);
    }

    #[test]
    fn full_batch_rho_spends_the_budget() {
        let b = PrivacyBudget::new(1.0, 1e-3).unwrap();
        let rho = b.full_batch_rho().unwrap();
        // 40 steps at σ = √(40/(2ρ)) spend ε = 1.
        let sigma = (40.0 / (2.0 * rho)).sqrt();
        let (e, _) = epsilon(1.0, sigma, 40, 1e-3, &default_orders()).unwrap();
        assert!((e - 1.0).abs() < 1e-3, "{e}");
    }

    #[test]
    fn calibration_and_errors() {
        let s = noise_for_epsilon(0.025, 400, 1e-3, 1.0).unwrap();
        let (e, _) = epsilon(0.025, s, 400, 1e-3, &default_orders()).unwrap();
        assert!(e <= 1.0 && e > 0.99, "{s} {e}");
        assert!(epsilon(1.5, 1.0, 1, 1e-5, &default_orders()).is_err());
        assert!(epsilon(0.1, 1.0, 1, 0.0, &default_orders()).is_err());
        assert!(epsilon(0.1, 1.0, 1, 1e-5, &[1.0]).is_err());
        assert_eq!(
            epsilon(0.1, 0.0, 1, 1e-5, &default_orders()).unwrap().0,
            f64::INFINITY
        );
    }
}
