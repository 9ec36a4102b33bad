//! Samplers of score models on burn tensors, in k-diffusion's manner: functions of (model,
//! process, x, time grid, noise, observer) that take the batch at the grid's first time (usually
//! [`prior`]) and return it at the last, showing the observer every step. Every step is tensor
//! algebra on the batch's device, so a loss on a sample can be differentiated with respect to the
//! input or the model's parameters (detach `x` before the last steps to truncate, as AlignProp
//! does).
//!
//! - [`sde`](mod@sde): reverse diffusion, predictor–corrector (Langevin corrector),
//!   Euler–Maruyama;
//! - [`ode`](mod@ode): the probability-flow ODE with any [`crate::ode::Solver`] (Euler, Heun,
//!   adaptive RK45), either direction, and its sampler with the final denoising step;
//! - [`dpm`](mod@dpm): DDIM and DPM-Solver++(2M), as a function and as a stateful scheduler;
//! - [`mrs`](mod@mrs): MRS, the ODE and SDE solvers of orders 1 and 2 in the data or noise
//!   parameterisation for mean-reverting processes;
//! - [`grid`]: the time grids.
//!
//! [`Sampler`] names them all, is what `gradlab sample --method` and the experiments parse once,
//! and draws with the grids and final steps of the official samplers ([`Sampler::sample`], or
//! [`Sampler::draw`] from a seeded prior with the NFE counted).
//!
//! ```
//! use gradlab_generative::process::Sde;
//! use gradlab_generative::sampling::Sampler;
//! use gradlab_generative::score::GmmOracle;
//! let sampler: Sampler = "dpm".parse().unwrap();
//! let data = gradlab_data::toy2d::Gmm2::isotropic(vec![[-2.0, 0.0], [2.0, 0.0]], 0.1).unwrap();
//! let model = GmmOracle::new(Sde::vp(), data).unwrap();
//! let (x, nfe) = sampler.draw(&model, &Sde::vp(), [100, 2], 10, 0).unwrap();
//! assert_eq!((x.dims(), nfe), ([100, 2], 10));
//! assert!("DPM".parse::<Sampler>().is_ok() && "dpm3".parse::<Sampler>().is_err());
//! ```

pub mod dpm;
pub mod grid;
pub mod mrs;
mod noise;
pub mod ode;
pub mod sde;

pub use dpm::{DpmScheduler, dpm_solver_pp};
pub(crate) use noise::check_grid;
pub use noise::{Noise, StepObserver, Unobserved, prior};
pub use ode::{denoise_step, pf_ode, pf_ode_sample};
pub use sde::{Langevin, euler_maruyama, predictor_corrector, reverse_diffusion};

use crate::ode::Solver;
use crate::process::Process;
use crate::score::{Counted, ScoreModel};
use crate::{GenError, Result};
use burn::prelude::*;

/// A sampler: of a score model (all but [`Sampler::Rf`]) or of a velocity model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Sampler {
    /// Predictor–corrector: reverse diffusion with one Langevin corrector step (SNR 0.16).
    Pc,
    /// Reverse diffusion (the predictor alone).
    Rd,
    /// Euler–Maruyama on the reverse SDE.
    Em,
    /// The probability-flow ODE with Heun steps and the official final denoising step.
    Ode,
    /// The probability-flow ODE with adaptive Dormand–Prince (rtol = atol = 1e-5) and denoising.
    Rk45,
    /// DDIM (η = 0) on the VP discretisation.
    Ddim,
    /// DPM-Solver++(2M) in the data-prediction form.
    Dpm,
    /// Rectified flow: Euler steps along a learned velocity (not a score sampler).
    Rf,
}

impl Sampler {
    /// Every sampler, in the order of `gradlab sample --help`.
    pub const ALL: [Sampler; 8] = [
        Sampler::Pc,
        Sampler::Rd,
        Sampler::Em,
        Sampler::Ode,
        Sampler::Rk45,
        Sampler::Ddim,
        Sampler::Dpm,
        Sampler::Rf,
    ];

    /// The short name (`pc`, `rd`, …), as parsed.
    pub fn id(self) -> &'static str {
        match self {
            Sampler::Pc => "pc",
            Sampler::Rd => "rd",
            Sampler::Em => "em",
            Sampler::Ode => "ode",
            Sampler::Rk45 => "rk45",
            Sampler::Ddim => "ddim",
            Sampler::Dpm => "dpm",
            Sampler::Rf => "rf",
        }
    }

    /// The long name, for tables and plots.
    pub fn name(self) -> &'static str {
        match self {
            Sampler::Pc => "predictor-corrector",
            Sampler::Rd => "reverse diffusion",
            Sampler::Em => "Euler–Maruyama",
            Sampler::Ode => "PF-ODE (Heun)",
            Sampler::Rk45 => "PF-ODE (RK45)",
            Sampler::Ddim => "DDIM",
            Sampler::Dpm => "DPM-Solver++(2M)",
            Sampler::Rf => "rectified flow (Euler)",
        }
    }

    /// Whether the number of steps is chosen by the sampler (RK45's adaptive steps).
    pub fn is_adaptive(self) -> bool {
        self == Sampler::Rk45
    }

    /// Draw with this sampler: `x` is the batch at the prior ([`prior`]), `steps` the steps
    /// (ignored by [`Sampler::Rk45`]), `noise` the stream of the stochastic samplers. The grids
    /// are the official ones: the chain's query times from 1 to t_ε for PC, RD and EM (each
    /// ending at 0 with its noise-free mean), a uniform grid for the PF-ODE (Heun with an Euler
    /// last step, then the final denoising step), logSNR for DDIM and DPM-Solver++.
    /// [`Sampler::Rf`] needs a velocity model and is an error here
    /// ([`crate::rectified_flow::transport`] samples it).
    pub fn sample<const D: usize>(
        self,
        model: &impl ScoreModel<D>,
        process: &impl Process,
        x: Tensor<D>,
        steps: usize,
        noise: &mut Noise,
        observer: &mut impl StepObserver<D>,
    ) -> Result<Tensor<D>> {
        if steps == 0 && !self.is_adaptive() {
            return Err(GenError::Invalid(
                "the sampler needs at least 1 step".into(),
            ));
        }
        let t_eps = process.t_eps();
        let chain = || grid::chain(steps, t_eps);
        let (m, p) = (model, process);
        match self {
            Sampler::Pc => {
                let corrector = Langevin::default();
                predictor_corrector(m, p, x, &chain(), corrector, noise, observer)
            }
            Sampler::Rd => reverse_diffusion(m, p, x, &chain(), noise, observer),
            Sampler::Em => euler_maruyama(m, p, x, &chain(), noise, observer),
            Sampler::Ode => Ok(pf_ode_sample(m, p, x, Solver::Heun(steps), true, observer)?.0),
            Sampler::Rk45 => {
                let solver = Solver::Rk45 {
                    rtol: 1e-5,
                    atol: 1e-5,
                };
                Ok(pf_ode_sample(m, p, x, solver, true, observer)?.0)
            }
            Sampler::Ddim | Sampler::Dpm => {
                let g = grid::logsnr(p, steps, t_eps)?;
                let order = if self == Sampler::Ddim { 1 } else { 2 };
                dpm_solver_pp(m, p, x, &g, order, observer)
            }
            Sampler::Rf => Err(GenError::Invalid(
                "rectified flow samples a velocity model, not a score model".into(),
            )),
        }
    }

    /// [`Sampler::sample`] from a prior batch of `shape` drawn on the host device (f64) from the
    /// stream seeded with `seed`, which then feeds the sampler's noise; returns the samples and the
    /// number of score evaluations.
    pub fn draw<const D: usize>(
        self,
        model: &impl ScoreModel<D>,
        process: &impl Process,
        shape: [usize; D],
        steps: usize,
        seed: u64,
    ) -> Result<(Tensor<D>, usize)> {
        let mut noise = Noise::new(seed);
        let x = prior(process, shape, &mut noise, &Device::flex());
        let counted = Counted::new(model);
        let y = self.sample(&counted, process, x, steps, &mut noise, &mut Unobserved)?;
        Ok((y, counted.calls()))
    }
}

impl std::fmt::Display for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Sampler {
    type Err = GenError;
    /// A short name of [`Sampler::id`], in any case.
    fn from_str(name: &str) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        Sampler::ALL
            .into_iter()
            .find(|s| s.id() == lower)
            .ok_or_else(|| {
                let known: Vec<_> = Sampler::ALL.iter().map(|s| s.id()).collect();
                GenError::Invalid(format!(
                    "unknown sampler '{name}'; known: {}",
                    known.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sampler_parses_from_its_id_and_only_from_it() {
        for s in Sampler::ALL {
            assert_eq!(s.id().parse::<Sampler>(), Ok(s));
            assert_eq!(s.id().to_uppercase().parse::<Sampler>(), Ok(s));
        }
        assert!("".parse::<Sampler>().is_err());
        assert!("pc ".parse::<Sampler>().is_err());
    }
}
