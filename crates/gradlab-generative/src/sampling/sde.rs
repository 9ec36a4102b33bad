//! Samplers of the reverse-time SDE dx = [f(t)x − g(t)² s(x, t)] dt + g(t) dw̄ (Song et al., ICLR
//! 2021; `sampling.py` of yang-song/score_sde_pytorch), from the grid's first time down to t = 0:
//!
//! - reverse diffusion (the discrete DDPM/SMLD chain reversed): x ← x + (−f·x + G²·s) + G·z with
//!   (f, G) = [`Process::discretize`]`(t, t')`;
//! - predictor–corrector: before each reverse-diffusion step, Langevin corrector steps
//!   x ← x + ε·s + √(2ε)·z with ε = 2α(r‖z‖/‖s‖)² (batch means of the examples' norms, r the
//!   signal-to-noise ratio);
//! - Euler–Maruyama: x ← x + (−f(t)·x + g(t)²·s)·Δt + g(t)√Δt·z, Δt = t − t'.
//!
//! `grid` lists the times at which the model is queried ([`super::grid::chain`]); each step goes
//! to the next grid time and the last from t_ε to 0, returning that step's noise-free mean (the
//! official `denoise`; its noise is still drawn, so the stream stays aligned). With an exact score
//! the last step is Tweedie's denoising x + σ²(t_ε)·s, which never overshoots. Everything is tensor
//! algebra, so a sample can be differentiated through its last steps.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::sampling::{Langevin, Noise, Unobserved, grid, predictor_corrector, prior};
//! use gradlab_generative::score::GaussianOracle;
//! let sde = Sde::vp();
//! let model = GaussianOracle::diagonal(sde, vec![2.0], vec![0.25]).unwrap();
//! let mut noise = Noise::new(1);
//! let x = prior(&sde, [2000, 1], &mut noise, &Device::flex());
//! let x = predictor_corrector(&model, &sde, x, &grid::chain(200, 1e-3), Langevin::default(), &mut noise, &mut Unobserved).unwrap();
//! let m = gradlab_core::bridge::scalar_to_host(x.mean()).unwrap();
//! assert!((m - 2.0).abs() < 0.05, "{m}");
//! ```

use super::noise::{Noise, StepObserver, check_grid, checked};
use crate::process::Process;
use crate::score::ScoreModel;
use crate::{Result, invalid};
use burn::prelude::*;

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

/// The reverse-diffusion predictor along `grid` (query times), ending at t = 0: the
/// predictor–corrector sampler without corrector steps.
pub fn reverse_diffusion<const D: usize>(
    model: &impl ScoreModel<D>,
    process: &impl Process,
    x: Tensor<D>,
    grid: &[f64],
    noise: &mut Noise,
    observer: &mut impl StepObserver<D>,
) -> Result<Tensor<D>> {
    let none = Langevin {
        steps: 0,
        ..Langevin::default()
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
    model: &impl ScoreModel<D>,
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

/// Euler–Maruyama on the reverse SDE along `grid` (query times), ending at t = 0. The official
/// code takes Δt = 1/N on every step, also from t_ε, which at small N overshoots the last step;
/// here Δt is the distance to the next grid time (t_ε for the last step, which ends at 0).
pub fn euler_maruyama<const D: usize>(
    model: &impl ScoreModel<D>,
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
