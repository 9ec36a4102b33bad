//! Samplers as functions of (model, process, x, time grid, noise, observer), in k-diffusion's
//! manner: `x` is the batch at the grid's first time (usually [`prior`]), the grid decreases, and
//! the observer sees the batch after every step. Everything is tensor algebra, so the result can be
//! differentiated through the last steps (detach `x` before them to truncate, as AlignProp does).
//!
//! The rules are those of the host samplers ([`crate::sampler`], [`crate::dpm`]), step for step:
//!
//! - reverse diffusion: x ← x + (−f·x + G²·s) + G·z with (f, G) = [`Process::discretize`]`(t, t')`;
//! - predictor–corrector: before each reverse-diffusion step, Langevin corrector steps
//!   x ← x + ε·s + √(2ε)·z with ε = 2α(r‖z‖/‖s‖)² (mean row norms, r the signal-to-noise ratio);
//! - Euler–Maruyama: x ← x + (−f(t)·x + g(t)²·s)·Δt + g(t)√Δt·z, Δt = t − t';
//! - the probability-flow ODE dx/dt = f(t)·x − ½g(t)²·s by Heun's method on every interval of
//!   the grid but the last, which is an Euler step (where the ODE is stiff), then optionally
//!   [`denoise`] (one reverse-diffusion step from the last time to 0, Tweedie's x + σ²·s);
//! - DDIM / DPM-Solver++(2M): x ← (σ'/σ)·x − α'(e^{−h} − 1)·D, D = x̂₀ or the second-order
//!   combination of the last two x̂₀, h = λ(t') − λ(t), λ = log(α/σ), order 1 at the last step
//!   below 10 steps (`lower_order_final`).
//!
//! The grid's last step goes to t = 0 for the stochastic samplers (`grid` lists the times at which
//! the model is queried; the chain ends at 0) and returns that step's noise-free mean, as the
//! official samplers' `denoise` (the noise is still drawn, so the stream stays aligned); DDIM and
//! DPM go to the grid's last time, which their grid includes ([`crate::sampler::time_grid`], [`crate::dpm::time_grid_logsnr`]).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::diffusion::samplers::{Noise, dpm_solver_pp, prior};
//! use gradlab_generative::diffusion::GaussianScore;
//! use gradlab_generative::{dpm::time_grid_logsnr, sde::Sde};
//! let sde = Sde::vp();
//! let model = GaussianScore::new(sde, vec![1.0, -1.0], vec![0.25, 0.25]).unwrap();
//! let mut noise = Noise::new(0);
//! let x = prior(&sde, [2000, 2], &mut noise, &Device::flex());
//! let grid = time_grid_logsnr(&sde, 10, 1e-3).unwrap();
//! let mut seen = 0;
//! let x = dpm_solver_pp(&model, &sde, x, &grid, 2, &mut |_: usize, _: f64, _: &Tensor<2>| seen += 1).unwrap();
//! let mean = gradlab_core::bridge::to_host(x.mean_dim(0)).unwrap();
//! assert!((mean[0] - 1.0).abs() < 0.05 && (mean[1] + 1.0).abs() < 0.05 && seen == 10);
//! ```

use super::model::{TensorScore, denoised};
use super::process::Process;
use crate::{GenError, Result, invalid};
use burn::prelude::*;
use burn::tensor::DType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Seeded standard normal noise, drawn in row-major order from one stream (the order of
/// [`crate::Batch::gaussian`], so that host and tensor samplers with the same seed agree).
pub struct Noise {
    rng: StdRng,
}

impl Noise {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// N(0, I) of `shape` on `device`, in f64.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|_| self.rng.sample::<f64, _>(StandardNormal))
            .collect();
        Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
    }

    /// N(0, I) shaped like `x`, on its device and in its dtype.
    pub fn like<const D: usize>(&mut self, x: &Tensor<D>) -> Tensor<D> {
        self.normal(x.dims(), &x.device()).cast(x.dtype())
    }
}

/// Sees the batch after every step: `(step, time reached, x)`. Any `FnMut(usize, f64, &Tensor<D>)`
/// is one; [`Unobserved`] sees nothing.
pub trait StepObserver<const D: usize> {
    /// Called after step `step` (0-based), which reached time `t`.
    fn observe(&mut self, step: usize, t: f64, x: &Tensor<D>);
}

impl<const D: usize, F: FnMut(usize, f64, &Tensor<D>)> StepObserver<D> for F {
    fn observe(&mut self, step: usize, t: f64, x: &Tensor<D>) {
        self(step, t, x)
    }
}

/// An observer that sees nothing.
pub struct Unobserved;

impl<const D: usize> StepObserver<D> for Unobserved {
    fn observe(&mut self, _: usize, _: f64, _: &Tensor<D>) {}
}

/// A batch from the prior N(0, σ_prior² I) of `shape` (f64).
pub fn prior<const D: usize>(
    process: &impl Process,
    shape: [usize; D],
    noise: &mut Noise,
    device: &Device,
) -> Tensor<D> {
    noise.normal(shape, device) * process.prior_std()
}

#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
fn check_grid(grid: &[f64], at_least: usize) -> Result<()> {
    if grid.len() < at_least || grid.windows(2).any(|w| !(w[1] < w[0])) {
        return invalid(format!(
            "the time grid must decrease and hold at least {at_least} times"
        ));
    }
    if grid.iter().any(|t| !(0.0..=1.0).contains(t)) {
        return invalid("grid times must lie in [0, 1]");
    }
    Ok(())
}

fn checked<const D: usize>(
    model: &impl TensorScore<D>,
    x: &Tensor<D>,
    t: f64,
    step: usize,
) -> Result<Tensor<D>> {
    let s = model.score(x.clone(), t)?;
    if s.dims() != x.dims() {
        return invalid("the score model changed the batch shape");
    }
    let finite = s.clone().is_finite().all().into_scalar::<bool>();
    if !finite {
        return Err(GenError::NonFinite {
            what: "score",
            step,
            t,
        });
    }
    Ok(s)
}

/// The reverse-diffusion predictor along `grid` (query times), ending at t = 0: the
/// predictor–corrector sampler without corrector steps.
pub fn reverse_diffusion<const D: usize>(
    model: &impl TensorScore<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    noise: &mut Noise,
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    let none = Langevin {
        steps: 0,
        snr: 0.16,
    };
    predictor_corrector(model, process, x, grid, none, noise, observer)
}

/// One step of a reverse-SDE sampler: the mean x + (−f·x + g²·s)·Δt, plus `scale`·z unless it
/// is the `last` step (which returns its noise-free mean).
fn reverse_step<const D: usize>(
    x: Tensor<D>,
    s: Tensor<D>,
    z: Tensor<D>,
    (f, g2, dt): (f64, f64, f64),
    scale: f64,
    last: bool,
) -> Tensor<D> {
    let mean = x.clone() + (x * (-f) + s * g2) * dt;
    if last { mean } else { mean + z * scale }
}

/// The Langevin corrector of the predictor–corrector sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Langevin {
    /// Corrector steps before each predictor step (0: plain reverse diffusion).
    pub steps: usize,
    /// The signal-to-noise ratio r > 0 (the paper's 0.16).
    pub snr: f64,
}

impl Default for Langevin {
    /// One step at r = 0.16, the paper's.
    fn default() -> Self {
        Self {
            steps: 1,
            snr: 0.16,
        }
    }
}

/// The mean over examples of each example's Euclidean norm (as f64 on the host).
fn mean_row_norm<const D: usize>(x: &Tensor<D>) -> Result<f64> {
    let dims = x.dims();
    let d: usize = dims[1..].iter().product();
    let rows = x
        .clone()
        .reshape([dims[0], d])
        .square()
        .sum_dim(1)
        .sqrt()
        .mean();
    Ok(gradlab_core::bridge::scalar_to_host(rows)?)
}

/// The predictor–corrector sampler: `corrector` Langevin steps, then a reverse-diffusion step, at
/// every time of `grid` (query times), ending at t = 0 with the last step's noise-free mean.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a > b)` is meant: NaN must fail the check
pub fn predictor_corrector<const D: usize>(
    model: &impl TensorScore<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    corrector: Langevin,
    noise: &mut Noise,
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    check_grid(grid, 1)?;
    if corrector.steps > 0 && !(corrector.snr > 0.0) {
        return invalid(format!(
            "the corrector's snr must be > 0, got {}",
            corrector.snr
        ));
    }
    let mut x = x;
    for (i, &t) in grid.iter().enumerate() {
        let next = grid.get(i + 1).copied().unwrap_or(0.0);
        for _ in 0..corrector.steps {
            let s = checked(model, &x, t, i)?;
            let z = noise.like(&x);
            let alpha = process.langevin_alpha(t, next)?;
            let ratio = corrector.snr * mean_row_norm(&z)? / mean_row_norm(&s)?.max(1e-300);
            let eps = 2.0 * alpha * ratio.powi(2);
            x = x + s * eps + z * (2.0 * eps).sqrt();
        }
        let s = checked(model, &x, t, i)?;
        let z = noise.like(&x);
        let (f, g) = process.discretize(t, next)?;
        x = reverse_step(x, s, z, (f, g * g, 1.0), g, i + 1 == grid.len());
        observer.observe(i, next, &x);
    }
    Ok(x)
}

/// The probability-flow ODE along the decreasing `grid` (which includes its final time): Heun
/// steps on every interval but the last, an Euler step on the last.
pub fn pf_ode_heun<const D: usize>(
    model: &impl TensorScore<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    check_grid(grid, 2)?;
    let mut step = 0;
    let mut rhs = |x: &Tensor<D>, t: f64| -> Result<Tensor<D>> {
        let t = t.clamp(0.0, 1.0);
        let s = checked(model, x, t, step)?;
        step += 1;
        let (f, g) = process.coefficients(t)?;
        Ok(x.clone() * f + s * (-0.5 * g * g))
    };
    let mut x = x;
    let last = grid.len() - 2;
    for i in 0..=last {
        let (t, h) = (grid[i], grid[i + 1] - grid[i]);
        let k1 = rhs(&x, t)?;
        x = if i < last {
            let k2 = rhs(&(x.clone() + k1.clone() * h), t + h)?;
            x + k1 * (0.5 * h) + k2 * (0.5 * h)
        } else {
            x + k1 * h
        };
        observer.observe(i, grid[i + 1], &x);
    }
    Ok(x)
}

/// One reverse-diffusion step from `t` to 0 without noise: x − f·x + G²·s with
/// (f, G) = [`Process::discretize`]`(t, 0)`, i.e. Tweedie's x + σ_t²·s for VE (the official ODE
/// sampler's `noise_removal`).
pub fn denoise<const D: usize>(
    model: &impl TensorScore<D>,
    process: &impl Process,
    x: Tensor<D>,
    t: f64,
) -> Result<Tensor<D>> {
    let s = checked(model, &x, t, 0)?;
    let (f, g) = process.discretize(t, 0.0)?;
    Ok(x.clone() - x * f + s * (g * g))
}

/// Euler–Maruyama on the reverse SDE along `grid` (query times), ending at t = 0.
pub fn euler_maruyama<const D: usize>(
    model: &impl TensorScore<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    noise: &mut Noise,
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    check_grid(grid, 1)?;
    let mut x = x;
    for (i, &t) in grid.iter().enumerate() {
        let next = grid.get(i + 1).copied().unwrap_or(0.0);
        let s = checked(model, &x, t, i)?;
        let z = noise.like(&x);
        let dt = t - next;
        let (f, g) = process.coefficients(t)?;
        x = reverse_step(x, s, z, (f, g * g, dt), g * dt.sqrt(), i + 1 == grid.len());
        observer.observe(i, next, &x);
    }
    Ok(x)
}

/// DPM-Solver++ of order 1 (DDIM, η = 0) or multistep order 2 along `grid`, which includes the
/// final time; order 1 at the last step below 10 steps.
pub fn dpm_solver_pp<const D: usize>(
    model: &impl TensorScore<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    order: usize,
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    if !(order == 1 || order == 2) {
        return invalid(format!("DPM-Solver++ order must be 1 or 2, got {order}"));
    }
    check_grid(grid, 2)?;
    let lambda = |t: f64| -> Result<f64> {
        let (a, s) = process.marginal(t)?;
        Ok((a / s).ln())
    };
    let steps = grid.len() - 1;
    let mut x = x;
    let mut prev: Option<(Tensor<D>, f64)> = None;
    for i in 0..steps {
        let (t_prev, t) = (grid[i], grid[i + 1]);
        let x0 = denoised(model, process, x.clone(), t_prev)?;
        let finite = x0.clone().is_finite().all().into_scalar::<bool>();
        if !finite {
            return Err(GenError::NonFinite {
                what: "data prediction",
                step: i,
                t: t_prev,
            });
        }
        let (_, s_prev) = process.marginal(t_prev)?;
        let (a, s) = process.marginal(t)?;
        let h = lambda(t)? - lambda(t_prev)?;
        let last_lowered = steps < 10 && i + 1 == steps;
        let d = match &prev {
            Some((d_old, h_old)) if order == 2 && !last_lowered => {
                let r = h_old / h;
                x0.clone() * (1.0 + 0.5 / r) + d_old.clone() * (-0.5 / r)
            }
            _ => x0.clone(),
        };
        x = x * (s / s_prev) + d * (-a * ((-h).exp() - 1.0));
        prev = Some((x0, h));
        observer.observe(i, t, &x);
    }
    Ok(x)
}
