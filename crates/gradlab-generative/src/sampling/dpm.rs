//! Few-step deterministic samplers in the data-prediction form, for any process with marginals
//! x_t = α_t x₀ + σ_t ε (VP, sub-VP, VE with α = 1, or a new [`Process`]):
//!
//! x̂₀(x, t) = (x + σ_t² s(x, t)) / α_t (Tweedie),   λ_t = log(α_t/σ_t),   h_i = λ_{t_i} − λ_{t_{i−1}}.
//!
//! - DDIM (Song, Meng & Ermon, ICLR 2021), η = 0, is DPM-Solver++ of order 1:
//!   x_i = (σ_i/σ_{i−1}) x_{i−1} − α_i (e^{−h_i} − 1) x̂₀.
//! - DPM-Solver++(2M) (Lu et al., "DPM-Solver++", 2022, Algorithm 2): the same step with
//!   D_i = (1 + 1/(2r_i)) x̂₀(x_{i−1}) − 1/(2r_i) x̂₀(x_{i−2}), r_i = h_{i−1}/h_i (first step order 1;
//!   below 10 steps also the last, as the official `lower_order_final`).
//!
//! [`dpm_solver_pp`] is the sampler as a function of (model, process, x, grid, order, observer);
//! [`DpmScheduler`] is the same rule as a stateful object for step-by-step use (the `diffusers`
//! pattern), where the caller computes x̂₀ — and can record, guide or replace it.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::sampling::{Noise, Unobserved, dpm_solver_pp, grid, prior};
//! use gradlab_generative::score::GaussianOracle;
//! let sde = Sde::vp();
//! let model = GaussianOracle::diagonal(sde, vec![1.0, -1.0], vec![0.25, 0.25]).unwrap();
//! let x = prior(&sde, [2000, 2], &mut Noise::new(0), &Device::flex());
//! let g = grid::logsnr(&sde, 10, 1e-3).unwrap();
//! let mut seen = 0;
//! let x = dpm_solver_pp(&model, &sde, x, &g, 2, &mut |_: usize, _: f64, _: &Tensor<2>| seen += 1).unwrap();
//! let mean = gradlab_core::bridge::to_host(x.mean_dim(0)).unwrap();
//! assert!((mean[0] - 1.0).abs() < 0.05 && (mean[1] + 1.0).abs() < 0.05 && seen == 10);
//! ```

use super::noise::{StepObserver, check_grid};
use crate::ode::all_finite;
use crate::process::Process;
use crate::score::{ScoreModel, denoised};
use crate::{GenError, Result, invalid};
use burn::prelude::*;

/// DPM-Solver++ of order 1 (DDIM, η = 0) or multistep order 2 along the decreasing `grid`, which
/// includes the final time; order 1 at the last step below 10 steps.
pub fn dpm_solver_pp<const D: usize>(
    model: &impl ScoreModel<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    order: usize,
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    let mut sched = DpmScheduler::new(process, order)?;
    sched.set_grid(grid.to_vec())?;
    let mut x = x;
    for (i, &t) in grid[..grid.len() - 1].iter().enumerate() {
        let x0 = denoised(model, process, x.clone(), t)?;
        if !all_finite(&x0) {
            return Err(GenError::NonFinite {
                what: "data prediction",
                step: i,
                t,
            });
        }
        x = sched.step(x0, x)?;
        observer.observe(i, grid[i + 1], &x);
    }
    Ok(x)
}

/// DPM-Solver++ as a stateful scheduler: [`DpmScheduler::set_timesteps`] lays out the grid, then
/// each [`DpmScheduler::step`] takes the model's x̂₀ at the current time and moves x to the next
/// one, keeping the previous x̂₀ for the second-order update.
///
/// ```
/// use burn::prelude::*;
/// use gradlab_generative::process::Sde;
/// use gradlab_generative::sampling::DpmScheduler;
/// use gradlab_generative::score::{GaussianOracle, denoised};
/// let sde = Sde::vp();
/// let o = GaussianOracle::diagonal(sde, vec![1.0], vec![0.25]).unwrap();
/// let mut sched = DpmScheduler::new(sde, 2).unwrap();
/// sched.set_timesteps(10, 1e-3).unwrap();
/// let mut x = gradlab_core::bridge::from_host(&[0.3], [1, 1], &Device::flex()).unwrap();
/// for t in sched.timesteps().to_vec() {
///     let x0 = denoised(&o, &sde, x.clone(), t).unwrap();
///     x = sched.step(x0, x).unwrap();
/// }
/// assert!(gradlab_core::bridge::to_host(x).unwrap()[0].is_finite());
/// ```
#[derive(Debug, Clone)]
pub struct DpmScheduler<P, const D: usize = 2> {
    process: P,
    order: usize,
    lower_order_final: bool,
    grid: Vec<f64>,
    index: usize,
    prev: Option<(Tensor<D>, f64)>,
}

impl<P: Process, const D: usize> DpmScheduler<P, D> {
    /// A scheduler of order 1 (DDIM) or 2 (DPM-Solver++(2M)).
    pub fn new(process: P, order: usize) -> Result<Self> {
        if !(order == 1 || order == 2) {
            return invalid(format!("DPM-Solver++ order must be 1 or 2, got {order}"));
        }
        Ok(Self {
            process,
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
        let grid = super::grid::logsnr(&self.process, steps, t_eps)?;
        self.set_grid(grid)
    }

    /// Any decreasing grid of at least two times in [0, 1]; resets the state.
    pub fn set_grid(&mut self, grid: Vec<f64>) -> Result<()> {
        check_grid(&grid, 2)?;
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
        let (a, s) = self.process.marginal(t)?;
        Ok((a / s).ln())
    }

    /// Move `x` from the current time to the next, given the model's x̂₀ at the current time.
    pub fn step(&mut self, x0_pred: Tensor<D>, x: Tensor<D>) -> Result<Tensor<D>> {
        if self.index + 1 >= self.grid.len() {
            return invalid("the scheduler has no steps left (call set_timesteps)");
        }
        if x0_pred.dims() != x.dims() {
            return invalid("x̂₀ and x differ in shape");
        }
        let (t_prev, t) = (self.grid[self.index], self.grid[self.index + 1]);
        let (_, s_prev) = self.process.marginal(t_prev)?;
        let (a, s) = self.process.marginal(t)?;
        let h = self.lambda(t)? - self.lambda(t_prev)?;
        let steps = self.grid.len() - 1;
        let last_lowered = self.lower_order_final && steps < 10 && self.index + 1 == steps;
        let d = match &self.prev {
            Some((d_old, h_old)) if self.order == 2 && !last_lowered => {
                let r = h_old / h;
                x0_pred.clone() * (1.0 + 0.5 / r) + d_old.clone() * (-0.5 / r)
            }
            _ => x0_pred.clone(),
        };
        let out = x * (s / s_prev) + d * (-a * ((-h).exp() - 1.0));
        self.prev = Some((x0_pred, h));
        self.index += 1;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Sde;
    use crate::sampling::{Unobserved, grid};
    use crate::score::GaussianOracle;
    use gradlab_core::bridge::{from_host, to_host};

    const X: [f64; 8] = [0.5, -1.0, 1.5, 0.2, -0.7, 2.0, 0.0, -2.5];

    /// The exact PF-ODE map of Gaussian data from t = 1 to `t` (per coordinate, affine).
    fn exact(o: &GaussianOracle<Sde>, t: f64) -> Vec<f64> {
        let sde = o.process();
        let (a0, s0) = sde.marginal(1.0).unwrap();
        let (a1, s1) = sde.marginal(t).unwrap();
        X.iter()
            .enumerate()
            .map(|(k, xv)| {
                let (m, v) = (o.mean()[k % 2], o.var()[k % 2]);
                a1 * m + ((a1 * a1 * v + s1 * s1) / (a0 * a0 * v + s0 * s0)).sqrt() * (xv - a0 * m)
            })
            .collect()
    }

    fn error(o: &GaussianOracle<Sde>, order: usize, steps: usize) -> f64 {
        let x = from_host(&X, [4, 2], &Device::flex()).unwrap();
        let g = grid::uniform(steps, 1e-3).unwrap();
        let y = dpm_solver_pp(o, o.process(), x, &g, order, &mut Unobserved).unwrap();
        let y = to_host(y).unwrap();
        y.iter()
            .zip(&exact(o, 1e-3))
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
        let sde = Sde::vp();
        let o = GaussianOracle::diagonal(sde, vec![1.0], vec![0.25]).unwrap();
        let dev = Device::flex();
        for (steps, lowered) in [(5, true), (10, false)] {
            let mut sched = DpmScheduler::new(sde, 2).unwrap();
            sched.set_timesteps(steps, 1e-3).unwrap();
            let g = sched.grid.clone();
            let mut x = from_host(&[0.3, -1.2], [2, 1], &dev).unwrap();
            for t in &g[..steps - 1] {
                let d = denoised(&o, &sde, x.clone(), *t).unwrap();
                x = sched.step(d, x).unwrap();
            }
            let d = denoised(&o, &sde, x.clone(), g[steps - 1]).unwrap();
            let off = sched
                .clone()
                .with_lower_order_final(false)
                .step(d.clone(), x.clone())
                .unwrap();
            let on = sched.step(d.clone(), x.clone()).unwrap();
            let (on, off) = (to_host(on).unwrap(), to_host(off).unwrap());
            let (x, d) = (to_host(x).unwrap(), to_host(d).unwrap());
            // The first-order (DDIM) step by hand: x σ/σ_prev − α (e^{−h} − 1) x̂₀.
            let lam = |t: f64| {
                let (a, s) = sde.marginal(t).unwrap();
                (a / s).ln()
            };
            let (t0, t1) = (g[steps - 1], g[steps]);
            let ((_, s0), (a1, s1)) = (sde.marginal(t0).unwrap(), sde.marginal(t1).unwrap());
            let h = lam(t1) - lam(t0);
            for k in 0..2 {
                let first = x[k] * s1 / s0 - a1 * ((-h).exp() - 1.0) * d[k];
                if lowered {
                    assert!((on[k] - first).abs() < 1e-12 && (off[k] - first).abs() > 1e-6);
                } else {
                    assert_eq!(on[k], off[k]);
                }
            }
        }
    }

    #[test]
    fn bad_grids_orders_and_shapes_are_errors() {
        let sde = Sde::vp();
        let o = GaussianOracle::diagonal(sde, vec![0.0], vec![1.0]).unwrap();
        let x = from_host(&[0.0], [1, 1], &Device::flex()).unwrap();
        let run = |g: &[f64], order| dpm_solver_pp(&o, &sde, x.clone(), g, order, &mut Unobserved);
        assert!(run(&[1.0, 0.5], 3).is_err());
        assert!(run(&[0.5, 1.0], 1).is_err());
        assert!(run(&[1.0], 1).is_err());
        assert!(run(&[1.5, 0.5], 1).is_err());
        assert!(grid::uniform(0, 1e-3).is_err());
        assert!(grid::uniform(5, 1.0).is_err());
        let mut sched = DpmScheduler::new(sde, 1).unwrap();
        sched.set_grid(vec![1.0, 0.5]).unwrap();
        let two = from_host(&[0.0, 0.0], [2, 1], &Device::flex()).unwrap();
        assert!(sched.step(two, x.clone()).is_err());
        sched.step(x.clone(), x.clone()).unwrap();
        assert!(sched.step(x.clone(), x).is_err()); // no steps left
    }
}
