//! Time grids from t = 1 (the prior) down to t_ε: the predictor–corrector chain's query times, a
//! uniform grid that includes its last time, and DPM-Solver's grid equally spaced in
//! λ_t = log(α_t/σ_t).
//!
//! ```
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::sampling::grid::{chain, logsnr, uniform};
//! assert_eq!(chain(3, 0.5), vec![1.0, 0.75, 0.5]);
//! assert_eq!(uniform(2, 0.5).unwrap(), vec![1.0, 0.75, 0.5]);
//! let g = logsnr(&Sde::vp(), 10, 1e-3).unwrap();
//! assert_eq!((g.len(), g[0], g[10]), (11, 1.0, 1e-3));
//! ```

use crate::process::Process;
use crate::{Result, invalid};

/// The predictor–corrector grid: `steps` query times from 1 down to t_ε, equally spaced (one
/// time: 1); the chain's last step goes from t_ε to 0.
pub fn chain(steps: usize, t_eps: f64) -> Vec<f64> {
    if steps == 1 {
        return vec![1.0];
    }
    (0..steps)
        .map(|i| 1.0 + (t_eps - 1.0) * i as f64 / (steps - 1) as f64)
        .collect()
}

/// `steps + 1` equally spaced times from 1 down to `t_eps`.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn uniform(steps: usize, t_eps: f64) -> Result<Vec<f64>> {
    if steps == 0 {
        return invalid("a sampler needs at least 1 step");
    }
    if !(t_eps > 0.0 && t_eps < 1.0) {
        return invalid(format!("t_ε = {t_eps} must lie in (0, 1)"));
    }
    Ok((0..=steps)
        .map(|i| 1.0 + (t_eps - 1.0) * i as f64 / steps as f64)
        .collect())
}

/// `steps + 1` times from 1 down to `t_eps` equally spaced in λ_t = log(α_t/σ_t) (DPM-Solver's
/// "logSNR" spacing, its choice for few steps), by bisection on the monotone λ.
pub fn logsnr(process: &impl Process, steps: usize, t_eps: f64) -> Result<Vec<f64>> {
    uniform(steps, t_eps)?;
    logsnr_to(process, steps, t_eps)
}

/// [`logsnr`] down to any `t_end` in [0, 1) where λ is finite (0 for a process whose σ stays
/// positive at t = 0, such as [`crate::process::MeanReverting`]: MRS's "linear-lambda" grid).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn logsnr_to(process: &impl Process, steps: usize, t_end: f64) -> Result<Vec<f64>> {
    if steps == 0 {
        return invalid("a sampler needs at least 1 step");
    }
    if !(0.0..1.0).contains(&t_end) {
        return invalid(format!("the grid's end {t_end} must lie in [0, 1)"));
    }
    let lambda = log_snr(process);
    let (l0, l1) = (lambda(1.0)?, lambda(t_end)?);
    if !(l1 > l0 && l1.is_finite() && l0.is_finite()) {
        return invalid("λ_t must be finite and decrease with t for a logSNR grid");
    }
    let mut grid = vec![1.0];
    for i in 1..steps {
        let target = l0 + (l1 - l0) * i as f64 / steps as f64;
        grid.push(bisect_logsnr(&lambda, target, t_end, 1.0)?);
    }
    grid.push(t_end);
    Ok(grid)
}

/// λ_t = log(α_t/σ_t).
fn log_snr(process: &impl Process) -> impl Fn(f64) -> Result<f64> + '_ {
    |t| {
        let (a, s) = process.marginal(t)?;
        Ok((a / s).ln())
    }
}

/// The time in [`lo`, `hi`] where the monotone decreasing λ reaches `target` (λ(lo) ≥ target ≥
/// λ(hi) assumed), by 80 bisections.
fn bisect_logsnr(
    lambda: &impl Fn(f64) -> Result<f64>,
    target: f64,
    mut lo: f64,
    mut hi: f64,
) -> Result<f64> {
    for _ in 0..80 {
        let mid = 0.5 * (lo + hi);
        if lambda(mid)? >= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(0.5 * (lo + hi))
}

/// The time t ∈ (0, 1] where σ_t/α_t (EDM's noise level σ) equals `sigma`: how an EDM σ grid maps
/// onto a process's time. An error unless λ decreases over (0, 1] and `sigma` lies in its range.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn time_of_noise_level(process: &impl Process, sigma: f64) -> Result<f64> {
    let lambda = log_snr(process);
    let (t0, target) = (1e-9, -sigma.ln());
    let (hi, lo) = (lambda(1.0)?, lambda(t0)?);
    if !(sigma > 0.0 && target <= lo && target >= hi) {
        return invalid(format!(
            "noise level σ/α = {sigma} outside the process's range [{:.3e}, {:.3e}]",
            (-lo).exp(),
            (-hi).exp()
        ));
    }
    bisect_logsnr(&lambda, target, t0, 1.0)
}
