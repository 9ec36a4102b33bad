//! The samplers by name, parsed once: [`Sampler`] is what `gradlab sample --method` and the
//! experiments pick from, and [`Sampler::sample`] draws from a score model with it.
//!
//! ```
//! use gradlab_generative::sampling::Sampler;
//! use gradlab_generative::score::GmmOracle;
//! use gradlab_generative::sde::Sde;
//! let sampler: Sampler = "dpm".parse().unwrap();
//! let data = gradlab_data::toy2d::Gmm2::isotropic(vec![[-2.0, 0.0], [2.0, 0.0]], 0.1).unwrap();
//! let model = GmmOracle::new(Sde::vp(), data).unwrap();
//! let (x, nfe) = sampler.sample(&model, 100, 10, 0).unwrap();
//! assert_eq!(x.n, 100);
//! assert!(nfe >= 10);
//! assert!("DPM".parse::<Sampler>().is_ok() && "dpm3".parse::<Sampler>().is_err());
//! ```

use crate::diffusion::samplers::{self, Langevin, Noise, StepObserver};
use crate::diffusion::{Process, TensorScore};
use crate::dpm::{ddim_sample, dpm_solver_pp_sample};
use crate::ode::Solver;
use crate::sampler::{OdeConfig, PcConfig, Predictor, ode_sample_with, pc_sample};
use crate::score::ScoreModel;
use crate::{Batch, GenError, Result};
use burn::prelude::Tensor;

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

    /// Draw `n` samples from `model` in `steps` steps (ignored by [`Sampler::Rk45`]), seeded
    /// with `seed`; returns them and the number of network evaluations. [`Sampler::Rf`] needs a
    /// velocity model and is an error here ([`crate::rectified_flow::transport`] samples it).
    pub fn sample(
        self,
        model: &impl ScoreModel,
        n: usize,
        steps: usize,
        seed: u64,
    ) -> Result<(Batch, usize)> {
        let (k, s) = (steps, seed);
        match self {
            Sampler::Pc => pc_sample(model, n, &PcConfig::new(k), s),
            Sampler::Rd => pc_sample(model, n, &PcConfig::new(k).with_corrector_steps(0), s),
            Sampler::Em => pc_sample(
                model,
                n,
                &PcConfig::new(k)
                    .with_predictor(Predictor::EulerMaruyama)
                    .with_corrector_steps(0),
                s,
            ),
            // The PF-ODE samplers end with the official final denoising step (`noise_removal`).
            Sampler::Ode => ode_sample_with(
                model,
                n,
                &OdeConfig::new(Solver::Heun(k)).with_denoise(true),
                s,
            ),
            Sampler::Rk45 => ode_sample_with(
                model,
                n,
                &OdeConfig::new(Solver::Rk45 {
                    rtol: 1e-5,
                    atol: 1e-5,
                })
                .with_denoise(true),
                s,
            ),
            Sampler::Ddim => ddim_sample(model, n, k, s),
            Sampler::Dpm => dpm_solver_pp_sample(model, n, k, s),
            Sampler::Rf => Err(GenError::Invalid(
                "rectified flow samples a velocity model, not a score model".into(),
            )),
        }
    }
}

/// A process's (α, σ) as the noise levels of the logSNR grid.
struct Levels<'a, P>(&'a P);

impl<P: Process> crate::dpm::NoiseLevels for Levels<'_, P> {
    fn levels(&self, t: f64) -> Result<(f64, f64)> {
        self.0.marginal(t)
    }
}

impl Sampler {
    /// Draw with this sampler on tensors ([`crate::diffusion`]): `x` is the batch at the prior
    /// ([`samplers::prior`]), `steps` the steps, `noise` the stream of the stochastic samplers;
    /// the grids and final steps are those of [`Sampler::sample`], which this equals number for
    /// number with the same seed. RK45 and rectified flow are not on the tensor path yet: asking
    /// for them is an error.
    pub fn sample_tensor<const D: usize>(
        self,
        model: &impl TensorScore<D>,
        process: &impl Process,
        x: Tensor<D>,
        steps: usize,
        noise: &mut Noise,
        observer: &mut impl StepObserver<D>,
    ) -> Result<Tensor<D>> {
        if steps == 0 {
            return Err(GenError::Invalid(
                "the sampler needs at least 1 step".into(),
            ));
        }
        let t_eps = process.t_eps();
        let chain = || crate::sampler::time_grid(steps, t_eps);
        let (m, p) = (model, process);
        match self {
            Sampler::Pc => samplers::predictor_corrector(
                m,
                p,
                x,
                &chain(),
                Langevin::default(),
                noise,
                observer,
            ),
            Sampler::Rd => samplers::reverse_diffusion(m, p, x, &chain(), noise, observer),
            Sampler::Em => samplers::euler_maruyama(m, p, x, &chain(), noise, observer),
            Sampler::Ode => {
                let grid: Vec<f64> = (0..=steps)
                    .map(|i| 1.0 + (t_eps - 1.0) * i as f64 / steps as f64)
                    .collect();
                let x = samplers::pf_ode_heun(m, p, x, &grid, observer)?;
                samplers::denoise(m, p, x, t_eps)
            }
            Sampler::Ddim | Sampler::Dpm => {
                let grid = crate::dpm::time_grid_logsnr(&Levels(p), steps, t_eps)?;
                let order = if self == Sampler::Ddim { 1 } else { 2 };
                samplers::dpm_solver_pp(m, p, x, &grid, order, observer)
            }
            Sampler::Rk45 | Sampler::Rf => Err(GenError::Invalid(format!(
                "the {} sampler is not on the tensor path yet",
                self.name()
            ))),
        }
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
