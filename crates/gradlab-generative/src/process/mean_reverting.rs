//! The mean-reverting SDE of IR-SDE (Luo et al., ICML 2023) that MRS samples (Li et al., "MRS: A
//! Fast Sampler for Mean Reverting Diffusion", ICLR 2025), as `utils/sde_utils.py::IRSDE` of
//! grrrute/mr-sampler has it:
//!
//!   dx = θ_s (μ − x) ds + σ_s dw,   σ_s² = 2λ²θ_s,   levels s = 0, …, T,
//!
//! with μ the degraded image. The θ schedule is **1 − ᾱ of the cosine schedule**, not its β:
//! ᾱ_j = cos²(((j/(T+2)) + 0.008)/1.008 · π/2) / ᾱ_0 for j = 0 … T+2 and θ_k = 1 − ᾱ_{k+1}
//! (k = 0 … T), so θ rises from ≈ 0 towards 1. The step Δ = −ln(ε)/Σθ makes α_T = ε. In
//! y = x − μ the marginals are a plain Gaussian process,
//!
//!   y_s = α_s y₀ + σ̄_s z,   α_s = exp(−Δ Σ_{k≤s} θ_k),   σ̄_s = λ √(1 − α_s²),
//!
//! and [`MeanReverting`] is that [`Process`] on t = s/T ∈ [0, 1] (Θ_s = ΔΣ_{k≤s}θ_k interpolated
//! linearly between levels, so the marginal is exact at every level and f = −dΘ/dt, g² = 2λ² dΘ/dt
//! between them). Its prior is the stationary law N(0, λ²) — the official `prior_sample`
//! μ + λz, which drops the α_T(x₀ − μ) = 0.005(x₀ − μ) term. Note α_0 < 1 (θ_0 > 0): even level 0
//! keeps a little noise (σ̄_0 ≈ 0.0022 for the defaults), as in the official code.
//!
//! ```
//! use gradlab_generative::process::{MeanReverting, Process};
//! let p = MeanReverting::official();
//! let (alpha, sigma) = p.marginal(1.0).unwrap();
//! assert!((alpha - 0.005).abs() < 1e-12);             // α_T = ε
//! assert!((sigma - 50.0 / 255.0 * (1.0f64 - 0.005 * 0.005).sqrt()).abs() < 1e-12);
//! assert_eq!(p.prior_std(), 50.0 / 255.0);              // the stationary N(μ, λ²)
//! ```

use super::{Process, check_time};
use crate::{Result, invalid};

/// The IR-SDE on y = x − μ; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanReverting {
    lambda: f64,
    /// Θ at levels 0 … T (Δ·cumsum θ).
    cumsum: Vec<f64>,
}

impl MeanReverting {
    /// The cosine-θ process with `levels` = T, stationary std `lambda` (the official `max_sigma`
    /// divided by 255) and α_T = `eps`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn new(levels: usize, lambda: f64, eps: f64) -> Result<Self> {
        if levels < 2 {
            return invalid(format!("the IR-SDE needs at least 2 levels, got {levels}"));
        }
        if !(lambda > 0.0 && lambda.is_finite()) {
            return invalid(format!(
                "λ (max σ) must be positive and finite, got {lambda}"
            ));
        }
        if !(eps > 0.0 && eps < 1.0) {
            return invalid(format!("ε = α_T must lie in (0, 1), got {eps}"));
        }
        let thetas = cosine_thetas(levels);
        let total: f64 = thetas.iter().sum();
        let dt = -eps.ln() / total;
        let mut acc = 0.0;
        let cumsum = thetas
            .iter()
            .map(|th| {
                acc += th;
                acc * dt
            })
            .collect();
        Ok(Self { lambda, cumsum })
    }

    /// The configuration of MRS's configs (`mrsampler.yml`, `test.yml`): T = 100, λ = 50/255,
    /// ε = 0.005.
    pub fn official() -> Self {
        Self::new(100, 50.0 / 255.0, 0.005).expect("valid defaults")
    }

    /// T, the number of levels above 0.
    pub fn levels(&self) -> usize {
        self.cumsum.len() - 1
    }

    /// λ, the stationary standard deviation.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// Θ(t) = −ln α_t and its slope dΘ/dt on the segment that holds `t`.
    fn theta(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let levels = self.levels();
        let s = t * levels as f64;
        let k = (s.floor() as usize).min(levels - 1);
        let (lo, hi) = (self.cumsum[k], self.cumsum[k + 1]);
        let frac = s - k as f64;
        Ok((lo + frac * (hi - lo), (hi - lo) * levels as f64))
    }
}

/// θ_k = 1 − ᾱ_{k+1}, k = 0 … T, of the cosine schedule over T + 2 steps (`cosine_theta_schedule`).
fn cosine_thetas(levels: usize) -> Vec<f64> {
    let n = (levels + 2) as f64;
    let s = 0.008;
    let abar = |j: usize| {
        (((j as f64 / n) + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    let a0 = abar(0);
    (1..=levels + 1).map(|j| 1.0 - abar(j) / a0).collect()
}

impl Process for MeanReverting {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        let (big_theta, _) = self.theta(t)?;
        let alpha = (-big_theta).exp();
        Ok((alpha, self.lambda * (-(-2.0 * big_theta).exp_m1()).sqrt()))
    }

    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        let (_, slope) = self.theta(t)?;
        Ok((-slope, self.lambda * (2.0 * slope).sqrt()))
    }

    fn prior_std(&self) -> f64 {
        self.lambda
    }

    /// Level 0: the official samplers end there (σ̄_0 > 0).
    fn t_eps(&self) -> f64 {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forward moments by RK4 on dm/dt = f m, dv/dt = 2 f v + g² from (m, v) = (1, 0) at
    /// Θ = 0: the coefficients must reproduce the closed-form marginal (up to level 0's offset).
    #[test]
    fn coefficients_integrate_to_the_marginal() {
        let p = MeanReverting::new(20, 0.2, 0.005).unwrap();
        let (a0, s0) = p.marginal(0.0).unwrap();
        let (mut m, mut v) = (a0, s0 * s0);
        let steps = 20_000;
        let h = 1.0 / steps as f64;
        let rhs = |t: f64, m: f64, v: f64| {
            let (f, g) = p.coefficients(t).unwrap();
            (f * m, 2.0 * f * v + g * g)
        };
        for i in 0..steps {
            let t = i as f64 * h;
            // Each RK4 stage inside one segment: the coefficients are constant there.
            let tm = t + 0.5 * h;
            let (k1m, k1v) = rhs(t + 1e-12, m, v);
            let (k2m, k2v) = rhs(tm, m + 0.5 * h * k1m, v + 0.5 * h * k1v);
            let (k3m, k3v) = rhs(tm, m + 0.5 * h * k2m, v + 0.5 * h * k2v);
            let (k4m, k4v) = rhs((t + h - 1e-12).min(1.0), m + h * k3m, v + h * k3v);
            m += h / 6.0 * (k1m + 2.0 * k2m + 2.0 * k3m + k4m);
            v += h / 6.0 * (k1v + 2.0 * k2v + 2.0 * k3v + k4v);
            if (i + 1) % 1000 == 0 {
                let (a, s) = p.marginal((i + 1) as f64 * h).unwrap();
                assert!(
                    (m - a).abs() < 1e-9 && (v - s * s).abs() < 1e-9,
                    "t {}: {m} {v} vs {a} {}",
                    (i + 1) as f64 * h,
                    s * s
                );
            }
        }
    }

    #[test]
    fn the_schedule_is_one_minus_cosine_alpha_bar_and_ends_at_eps() {
        let p = MeanReverting::official();
        let th = cosine_thetas(100);
        assert_eq!(th.len(), 101);
        // θ = 1 − ᾱ rises from ≈ 0 to ≈ 1 (a β schedule would stay below 0.02·1000/T).
        assert!(th[0] > 0.0 && th[0] < 1e-3 && th[100] > 0.99);
        assert!(th.windows(2).all(|w| w[1] > w[0]));
        assert!((p.marginal(1.0).unwrap().0 - 0.005).abs() < 1e-12);
        let (a0, s0) = p.marginal(0.0).unwrap();
        assert!(
            a0 < 1.0 && s0 > 1e-3 && s0 < 5e-3,
            "level 0: α {a0}, σ̄ {s0}"
        );
        // Exact at the levels: level 50 is Θ = Δ Σ_{k ≤ 50} θ_k.
        let dt = -(0.005f64).ln() / th.iter().sum::<f64>();
        let theta50: f64 = th[..=50].iter().sum::<f64>() * dt;
        assert!((p.marginal(0.5).unwrap().0 - (-theta50).exp()).abs() < 1e-14);
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(MeanReverting::new(1, 0.2, 0.005).is_err());
        assert!(MeanReverting::new(100, 0.0, 0.005).is_err());
        assert!(MeanReverting::new(100, f64::NAN, 0.005).is_err());
        assert!(MeanReverting::new(100, 0.2, 1.0).is_err());
        assert!(MeanReverting::official().marginal(1.5).is_err());
    }
}
