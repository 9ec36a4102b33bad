//! Few-step deterministic samplers in the data-prediction form, for any SDE with marginals
//! x_t = α_t x₀ + σ_t ε (VP, sub-VP, VE with α = 1):
//!
//! x̂₀(x, t) = (x + σ_t² s(x, t)) / α_t   (Tweedie),   λ_t = log(α_t/σ_t),   h_i = λ_{t_i} − λ_{t_{i−1}}.
//!
//! - DDIM (Song, Meng & Ermon, ICLR 2021), η = 0: x_i = (σ_i/σ_{i−1}) x_{i−1} + α_i (1 − σ_i α_{i−1}/(σ_{i−1} α_i)) x̂₀,
//!   which is DPM-Solver++ of order 1: x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) x̂₀.
//! - DPM-Solver++(2M) (Lu et al., "DPM-Solver++", 2022, Algorithm 2): the same step with
//!   D_i = (1 + 1/(2r_i)) x̂₀(x_{i−1}) − 1/(2r_i) x̂₀(x_{i−2}), r_i = h_{i−1}/h_i (first step order 1;
//!   below 10 steps also the last, as the official `lower_order_final`,
//!   [`DpmScheduler::with_lower_order_final`]).
//!
//! Both take the time grid explicitly ([`time_grid_logsnr`], the default of the `*_sample`
//! functions, [`time_grid_uniform`], or any decreasing list), so the
//! mean-reverting sampler of the MRS paper (DPM-Solver++ on y = x − μ) can reuse [`dpm_solver_pp`]
//! with its own (α, σ) through [`NoiseLevels`].
//!
//! ```
//! use gradlab_generative::{dpm::{ddim_sample, dpm_solver_pp_sample}, score::GaussianOracle, sde::Sde};
//! let o = GaussianOracle::diagonal(Sde::vp(), vec![1.0], vec![0.25]).unwrap();
//! let (x, nfe) = dpm_solver_pp_sample(&o, 2000, 10, 0).unwrap();
//! assert_eq!(nfe, 10);
//! assert!((x.mean()[0] - 1.0).abs() < 0.05);
//! let (y, _) = ddim_sample(&o, 2000, 10, 0).unwrap();
//! assert!((y.mean()[0] - 1.0).abs() < 0.05);
//! ```

use crate::score::ScoreModel;
use crate::{Batch, GenError, Result, invalid};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The (α_t, σ_t) of a noising process.
pub trait NoiseLevels {
    /// (α_t, σ_t).
    fn levels(&self, t: f64) -> Result<(f64, f64)>;
}

impl<L: NoiseLevels> NoiseLevels for &L {
    fn levels(&self, t: f64) -> Result<(f64, f64)> {
        (*self).levels(t)
    }
}

impl NoiseLevels for crate::sde::Sde {
    fn levels(&self, t: f64) -> Result<(f64, f64)> {
        self.marginal(t)
    }
}

/// `steps + 1` equally spaced times from 1 down to `t_eps`.
pub fn time_grid_uniform(steps: usize, t_eps: f64) -> Result<Vec<f64>> {
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
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn time_grid_logsnr(levels: &impl NoiseLevels, steps: usize, t_eps: f64) -> Result<Vec<f64>> {
    time_grid_uniform(steps, t_eps)?;
    let lambda = |t: f64| -> Result<f64> {
        let (a, s) = levels.levels(t)?;
        Ok((a / s).ln())
    };
    let (l0, l1) = (lambda(1.0)?, lambda(t_eps)?);
    if !(l1 > l0) {
        return invalid("λ_t must decrease with t for a logSNR grid");
    }
    let mut grid = vec![1.0];
    for i in 1..steps {
        let target = l0 + (l1 - l0) * i as f64 / steps as f64;
        let (mut lo, mut hi) = (t_eps, 1.0); // λ(lo) ≥ target ≥ λ(hi)
        for _ in 0..80 {
            let mid = 0.5 * (lo + hi);
            if lambda(mid)? >= target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        grid.push(0.5 * (lo + hi));
    }
    grid.push(t_eps);
    Ok(grid)
}

/// x̂₀ = (x + σ² s)/α from a score model.
pub fn predict_x0(model: &impl ScoreModel, x: &Batch, t: f64, step: usize) -> Result<Batch> {
    let (a, s) = model.sde().marginal(t)?;
    let score = model.score(x, t)?;
    if score.data.len() != x.data.len() {
        return invalid("the score model changed the batch shape");
    }
    let data: Vec<f64> = x
        .data
        .iter()
        .zip(&score.data)
        .map(|(xv, sc)| (xv + s * s * sc) / a)
        .collect();
    if data.iter().any(|v| !v.is_finite()) {
        return Err(GenError::NonFinite {
            what: "data prediction",
            step,
            t,
        });
    }
    Ok(Batch { data, ..*x })
}

/// DPM-Solver++ as a stateful scheduler (the `diffusers` pattern): [`DpmScheduler::set_timesteps`]
/// lays out the grid, then each [`DpmScheduler::step`] takes the model's x̂₀ at the current time
/// and moves x to the next one, keeping the previous x̂₀ for the second-order update.
///
/// ```
/// use gradlab_generative::{Batch, dpm::{DpmScheduler, predict_x0}, score::GaussianOracle, sde::Sde};
/// let o = GaussianOracle::diagonal(Sde::vp(), vec![1.0], vec![0.25]).unwrap();
/// let mut sched = DpmScheduler::new(Sde::vp(), 2).unwrap();
/// sched.set_timesteps(10, 1e-3).unwrap();
/// let mut x = Batch::new(1, 1, vec![0.3]).unwrap();
/// for (i, t) in sched.timesteps().to_vec().into_iter().enumerate() {
///     let x0 = predict_x0(&o, &x, t, i).unwrap();
///     x = sched.step(&x0, &x).unwrap();
/// }
/// assert!(x.data[0].is_finite());
/// ```
#[derive(Debug, Clone)]
pub struct DpmScheduler<L> {
    levels: L,
    order: usize,
    lower_order_final: bool,
    grid: Vec<f64>,
    index: usize,
    prev: Option<(Batch, f64)>,
}

impl<L: NoiseLevels> DpmScheduler<L> {
    /// A scheduler of order 1 (DDIM) or 2 (DPM-Solver++(2M)).
    pub fn new(levels: L, order: usize) -> Result<Self> {
        if !(order == 1 || order == 2) {
            return invalid(format!("DPM-Solver++ order must be 1 or 2, got {order}"));
        }
        Ok(Self {
            levels,
            order,
            lower_order_final: true,
            grid: vec![],
            index: 0,
            prev: None,
        })
    }

    /// With `true` (the default, as the official `dpm_solver_pytorch.py`), a second-order run of
    /// fewer than 10 steps takes its last step at order 1 (`lower_order_final`: the official code
    /// finds few-step second-order updates unstable near t_ε). `diffusers` uses fewer than 15
    /// steps, and with its default `final_sigmas_type = "zero"` always a first-order final step.
    pub fn with_lower_order_final(mut self, on: bool) -> Self {
        self.lower_order_final = on;
        self
    }

    /// `steps` steps from t = 1 to `t_eps`, equally spaced in logSNR; resets the state.
    pub fn set_timesteps(&mut self, steps: usize, t_eps: f64) -> Result<()> {
        let grid = time_grid_logsnr(&self.levels, steps, t_eps)?;
        self.set_grid(grid)
    }

    /// Any decreasing grid of at least two times; resets the state.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn set_grid(&mut self, grid: Vec<f64>) -> Result<()> {
        if grid.len() < 2 || grid.windows(2).any(|w| !(w[1] < w[0])) {
            return invalid("the time grid must decrease and hold at least two times");
        }
        self.grid = grid;
        self.index = 0;
        self.prev = None;
        Ok(())
    }

    /// The times at which the model is queried, one per step (the grid without its last time).
    pub fn timesteps(&self) -> &[f64] {
        &self.grid[..self.grid.len().saturating_sub(1)]
    }

    fn lambda(&self, t: f64) -> Result<f64> {
        let (a, s) = self.levels.levels(t)?;
        Ok((a / s).ln())
    }

    /// Move `x` from the current time to the next, given the model's x̂₀ at the current time.
    pub fn step(&mut self, x0_pred: &Batch, x: &Batch) -> Result<Batch> {
        if self.index + 1 >= self.grid.len() {
            return invalid("the scheduler has no steps left (call set_timesteps)");
        }
        if x0_pred.data.len() != x.data.len() {
            return invalid("x̂₀ and x differ in shape");
        }
        let (t_prev, t) = (self.grid[self.index], self.grid[self.index + 1]);
        let (_, s_prev) = self.levels.levels(t_prev)?;
        let (a, s) = self.levels.levels(t)?;
        let h = self.lambda(t)? - self.lambda(t_prev)?;
        let steps = self.grid.len() - 1;
        let last_lowered = self.lower_order_final && steps < 10 && self.index + 1 == steps;
        let d = match (&self.prev, self.order) {
            (Some((d_old, h_old)), 2) if !last_lowered => {
                let r = h_old / h;
                let (c1, c2) = (1.0 + 0.5 / r, -0.5 / r);
                x0_pred
                    .data
                    .iter()
                    .zip(&d_old.data)
                    .map(|(a, b)| c1 * a + c2 * b)
                    .collect()
            }
            _ => x0_pred.data.clone(),
        };
        let (cx, cd) = (s / s_prev, -a * ((-h).exp() - 1.0));
        let out = Batch {
            data: x
                .data
                .iter()
                .zip(&d)
                .map(|(xv, dv)| cx * xv + cd * dv)
                .collect(),
            ..x.clone()
        };
        self.prev = Some((x0_pred.clone(), h));
        self.index += 1;
        Ok(out)
    }
}

/// DPM-Solver++ of order 1 (`order` = 1, DDIM) or multistep order 2 (`order` = 2) along the
/// decreasing `grid`, with data predictions from `x0`; returns x at the last time and the NFE.
pub fn dpm_solver_pp<L, F>(
    levels: &L,
    mut x0: F,
    x: Batch,
    grid: &[f64],
    order: usize,
) -> Result<(Batch, usize)>
where
    L: NoiseLevels,
    F: FnMut(&Batch, f64, usize) -> Result<Batch>,
{
    let mut sched = DpmScheduler::new(levels, order)?;
    sched.set_grid(grid.to_vec())?;
    let mut x = x;
    for (i, t) in grid[..grid.len() - 1].iter().enumerate() {
        let d = x0(&x, *t, i)?;
        x = sched.step(&d, &x)?;
    }
    Ok((x, grid.len() - 1))
}

fn sample(
    model: &impl ScoreModel,
    n: usize,
    steps: usize,
    order: usize,
    seed: u64,
) -> Result<(Batch, usize)> {
    let sde = model.sde();
    sde.validate()?;
    let grid = time_grid_logsnr(&sde, steps, sde.t_eps())?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = Batch::gaussian(n, model.dim(), &mut rng);
    let std = sde.prior_std();
    x.data.iter_mut().for_each(|v| *v *= std);
    dpm_solver_pp(
        &sde,
        |x: &Batch, t, i| predict_x0(model, x, t, i),
        x,
        &grid,
        order,
    )
}

/// DDIM (η = 0) with `steps` steps from the prior, equally spaced in logSNR.
pub fn ddim_sample(
    model: &impl ScoreModel,
    n: usize,
    steps: usize,
    seed: u64,
) -> Result<(Batch, usize)> {
    sample(model, n, steps, 1, seed)
}

/// DPM-Solver++(2M) with `steps` steps from the prior, equally spaced in logSNR.
pub fn dpm_solver_pp_sample(
    model: &impl ScoreModel,
    n: usize,
    steps: usize,
    seed: u64,
) -> Result<(Batch, usize)> {
    sample(model, n, steps, 2, seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::{GaussianOracle, ScoreModel};
    use crate::sde::Sde;

    /// The exact PF-ODE map of Gaussian data from t = 1 to `t` (per coordinate, affine).
    fn exact(o: &GaussianOracle, x: &Batch, t: f64) -> Vec<f64> {
        let sde = o.sde();
        let (a0, s0) = sde.marginal(1.0).unwrap();
        let (a1, s1) = sde.marginal(t).unwrap();
        x.data
            .iter()
            .enumerate()
            .map(|(k, xv)| {
                let (m, v) = (o.mean()[k % x.d], o.var()[k % x.d]);
                a1 * m + ((a1 * a1 * v + s1 * s1) / (a0 * a0 * v + s0 * s0)).sqrt() * (xv - a0 * m)
            })
            .collect()
    }

    fn error(o: &GaussianOracle, order: usize, steps: usize) -> f64 {
        let x = Batch::new(4, 2, vec![0.5, -1.0, 1.5, 0.2, -0.7, 2.0, 0.0, -2.5]).unwrap();
        let grid = time_grid_uniform(steps, 1e-3).unwrap();
        let (y, nfe) = dpm_solver_pp(
            &o.sde(),
            |x: &Batch, t, i| predict_x0(o, x, t, i),
            x.clone(),
            &grid,
            order,
        )
        .unwrap();
        assert_eq!(nfe, steps);
        let want = exact(o, &x, 1e-3);
        y.data
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn orders_against_the_exact_gaussian_flow() {
        for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
            let o = GaussianOracle::diagonal(sde, vec![1.0, -2.0], vec![0.25, 4.0]).unwrap();
            // Doubling the steps: DDIM's error halves, DPM-Solver++(2M)'s falls about 4×.
            let (d1, d2) = (error(&o, 1, 100), error(&o, 1, 200));
            assert!(
                (d1 / d2 - 2.0).abs() < 0.3,
                "{sde:?} DDIM ratio {}",
                d1 / d2
            );
            let (p1, p2) = (error(&o, 2, 100), error(&o, 2, 200));
            assert!(p1 / p2 > 3.3, "{sde:?} DPM-Solver++ ratio {}", p1 / p2);
            assert!(p1 < d1, "{sde:?}: order 2 {p1} vs order 1 {d1}");
        }
    }

    #[test]
    fn below_ten_steps_the_last_second_order_step_is_first_order() {
        let o = GaussianOracle::diagonal(Sde::vp(), vec![1.0], vec![0.25]).unwrap();
        for (steps, lowered) in [(5, true), (10, false)] {
            let mut sched = DpmScheduler::new(Sde::vp(), 2).unwrap();
            sched.set_timesteps(steps, 1e-3).unwrap();
            let grid = sched.grid.clone();
            let mut x = Batch::new(2, 1, vec![0.3, -1.2]).unwrap();
            for (i, t) in grid[..steps - 1].iter().enumerate() {
                let d = predict_x0(&o, &x, *t, i).unwrap();
                x = sched.step(&d, &x).unwrap();
            }
            let d = predict_x0(&o, &x, grid[steps - 1], steps - 1).unwrap();
            let off = sched
                .clone()
                .with_lower_order_final(false)
                .step(&d, &x)
                .unwrap();
            let on = sched.step(&d, &x).unwrap();
            // The first-order (DDIM) step by hand: x σ/σ_prev − α (e^{−h} − 1) x̂₀.
            let lam = |t: f64| {
                let (a, s) = Sde::vp().marginal(t).unwrap();
                (a / s).ln()
            };
            let (t0, t1) = (grid[steps - 1], grid[steps]);
            let ((_, s0), (a1, s1)) = (
                Sde::vp().marginal(t0).unwrap(),
                Sde::vp().marginal(t1).unwrap(),
            );
            let h = lam(t1) - lam(t0);
            for k in 0..2 {
                let first = x.data[k] * s1 / s0 - a1 * ((-h).exp() - 1.0) * d.data[k];
                if lowered {
                    assert!(
                        (on.data[k] - first).abs() < 1e-12 && (off.data[k] - first).abs() > 1e-6
                    );
                } else {
                    assert_eq!(on.data[k], off.data[k]);
                }
            }
        }
    }

    #[test]
    fn bad_grids_and_orders_are_errors() {
        let o = GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1.0]).unwrap();
        let x = Batch::new(1, 1, vec![0.0]).unwrap();
        let f = |x: &Batch, t: f64, i: usize| predict_x0(&o, x, t, i);
        assert!(dpm_solver_pp(&o.sde(), f, x.clone(), &[1.0, 0.5], 3).is_err());
        assert!(dpm_solver_pp(&o.sde(), f, x.clone(), &[0.5, 1.0], 1).is_err());
        assert!(dpm_solver_pp(&o.sde(), f, x, &[1.0], 1).is_err());
        assert!(time_grid_uniform(0, 1e-3).is_err());
        assert!(time_grid_uniform(5, 1.0).is_err());
    }
}
