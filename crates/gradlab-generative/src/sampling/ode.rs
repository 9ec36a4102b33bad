//! The probability-flow ODE dx/dt = f(t)·x − ½g(t)²·s(x, t) (Song et al., ICLR 2021): the same
//! marginals as the SDE, integrated by any [`Solver`] in either direction (t₁ > t₀ encodes data
//! into noise), and the deterministic sampler built on it.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::ode::Solver;
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::sampling::{Noise, Unobserved, pf_ode_sample, prior};
//! use gradlab_generative::score::GaussianOracle;
//! let sde = Sde::vp();
//! let model = GaussianOracle::diagonal(sde, vec![2.0], vec![0.25]).unwrap();
//! let x = prior(&sde, [500, 1], &mut Noise::new(1), &Device::flex());
//! let (y, nfe) = pf_ode_sample(&model, &sde, x, Solver::Heun(50), false, &mut Unobserved).unwrap();
//! assert_eq!(nfe, 99); // 49 Heun steps and a last Euler step
//! let m = gradlab_core::bridge::scalar_to_host(y.mean()).unwrap();
//! assert!((m - 2.0).abs() < 0.1, "{m}");
//! ```

use super::noise::{StepObserver, checked};
use crate::ode::{Solver, integrate};
use crate::process::Process;
use crate::score::ScoreModel;
use crate::{Result, invalid};
use burn::prelude::*;

/// Carry `x` at time `t0` to time `t1` along the probability-flow ODE with `solver` (either
/// direction); returns x(t₁) and the number of score evaluations.
pub fn pf_ode<const D: usize>(
    model: &impl ScoreModel<D>,
    process: &impl Process,
    x: Tensor<D>,
    (t0, t1): (f64, f64),
    solver: Solver,
    observer: &mut impl StepObserver<D>,
) -> Result<(Tensor<D>, usize)> {
    let mut calls = 0;
    let rhs = |x: &Tensor<D>, t: f64| -> Result<Tensor<D>> {
        let t = t.clamp(0.0, 1.0);
        let s = checked(model, x, t, calls)?;
        calls += 1;
        let (f, g) = process.coefficients(t)?;
        Ok(x.clone() * f - s * (0.5 * g * g))
    };
    integrate(rhs, x, t0, t1, solver, observer)
}

/// The PF-ODE sampler from the prior at t = 1 down to the process's t_ε, then, with `denoise`,
/// one reverse-diffusion step from t_ε to 0 without noise (Tweedie's x + σ²(t_ε)·s for VE; one
/// more score evaluation), as the official ODE sampler's `noise_removal` (on by default there;
/// the official code does not count its evaluation). Returns the sample and the NFE.
///
/// With [`Solver::Heun`]`(k)` the last of the k steps is an Euler step (as in Karras et al. 2022,
/// Algorithm 1): Heun's corrector would evaluate the drift at t_ε, where the PF-ODE is stiff (its
/// Lipschitz constant ½β/σ² is ≈ 545 at t_ε = 1e-3 for VP), and on a uniform grid of 10 steps that
/// multiplies the error left there by ≈ 27. NFE 2k − 1.
pub fn pf_ode_sample<const D: usize>(
    model: &impl ScoreModel<D>,
    process: &impl Process,
    x: Tensor<D>,
    solver: Solver,
    denoise: bool,
    observer: &mut impl StepObserver<D>,
) -> Result<(Tensor<D>, usize)> {
    let t_eps = process.t_eps();
    if !(t_eps > 0.0 && t_eps < 1.0) {
        return invalid(format!("t_ε = {t_eps} must lie in (0, 1)"));
    }
    let (x, mut nfe) = match solver {
        Solver::Heun(k) if k >= 2 => {
            let t_last = 1.0 + (t_eps - 1.0) * (k - 1) as f64 / k as f64;
            let (x, a) = pf_ode(
                model,
                process,
                x,
                (1.0, t_last),
                Solver::Heun(k - 1),
                observer,
            )?;
            let mut last = |_: usize, t: f64, x: &Tensor<D>| observer.observe(k - 1, t, x);
            let (x, b) = pf_ode(
                model,
                process,
                x,
                (t_last, t_eps),
                Solver::Euler(1),
                &mut last,
            )?;
            (x, a + b)
        }
        Solver::Heun(1) => pf_ode(model, process, x, (1.0, t_eps), Solver::Euler(1), observer)?,
        solver => pf_ode(model, process, x, (1.0, t_eps), solver, observer)?,
    };
    if !denoise {
        return Ok((x, nfe));
    }
    nfe += 1;
    Ok((denoise_step(model, process, x, t_eps)?, nfe))
}

/// One reverse-diffusion step from `t` to 0 without noise: x − f·x + G²·s with
/// (f, G) = [`Process::discretize`]`(t, 0)`, i.e. Tweedie's x + σ_t²·s for VE (the official ODE
/// sampler's `noise_removal`).
pub fn denoise_step<const D: usize>(
    model: &impl ScoreModel<D>,
    process: &impl Process,
    x: Tensor<D>,
    t: f64,
) -> Result<Tensor<D>> {
    let s = checked(model, &x, t, 0)?;
    let (f, g) = process.discretize(t, 0.0)?;
    Ok(x.clone() - x * f + s * (g * g))
}
