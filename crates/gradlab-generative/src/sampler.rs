//! Samplers of the reverse-time SDE and of the probability-flow ODE (Song et al., ICLR 2021;
//! `sampling.py` of yang-song/score_sde_pytorch):
//!
//! reverse SDE: dx = [f(t)x − g(t)² s(x, t)] dt + g(t) dw̄,   PF-ODE: dx/dt = f(t)x − ½g(t)² s(x, t),
//!
//! both integrated from t = 1 (the prior) down to t_ε. Predictors: Euler–Maruyama, and reverse
//! diffusion (the discrete DDPM/SMLD chain reversed: x ← x − (f_i − G_i² s) + G_i z, with the
//! chain between consecutive grid times, [`Sde::discretize`](crate::sde::Sde::discretize)). Each
//! predictor step goes to the next grid time and the last one from t_ε to 0, so that with an exact
//! score it ends with Tweedie's denoising x + σ²(t_ε)·s instead of overshooting. Corrector:
//! Langevin dynamics with step ε = 2α(r‖z‖/‖s‖)² (signal-to-noise ratio r, batch means of the
//! norms). The predictor–corrector sampler alternates corrector and predictor on a uniform grid
//! and returns the last noise-free mean (`denoise`). Deterministic sampling integrates the PF-ODE
//! with any [`Solver`].
//!
//! ```
//! use gradlab_generative::{sampler::{ode_sample, pc_sample, PcConfig}, ode::Solver};
//! use gradlab_generative::{score::GaussianOracle, sde::Sde};
//! let oracle = GaussianOracle::diagonal(Sde::vp(), vec![2.0], vec![0.25]).unwrap();
//! let (x, _) = pc_sample(&oracle, 2000, &PcConfig::new(200), 1).unwrap();
//! let m = x.mean()[0];
//! assert!((m - 2.0).abs() < 0.05, "{m}");
//! let (y, nfe) = ode_sample(&oracle, 500, Solver::Heun(50), 1).unwrap();
//! assert_eq!(nfe, 99); // 49 Heun steps and a last Euler step (see `OdeConfig`)
//! ```

use crate::ode::{Solver, integrate};
use crate::score::ScoreModel;
use crate::{Batch, GenError, Result, invalid};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The predictor of a [`PcConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predictor {
    /// Euler–Maruyama on the reverse SDE.
    EulerMaruyama,
    /// The reversed discrete chain (ancestral sampling).
    ReverseDiffusion,
    /// No predictor (corrector only: annealed Langevin dynamics).
    None,
}

/// Settings of the predictor–corrector sampler.
#[derive(Debug, Clone, PartialEq)]
pub struct PcConfig {
    /// Time steps N (grid 1 = t₀ > … > t_{N−1} = t_ε).
    pub steps: usize,
    /// The predictor.
    pub predictor: Predictor,
    /// Langevin corrector steps per time step (0: predictor only).
    pub corrector_steps: usize,
    /// The corrector's signal-to-noise ratio r.
    pub snr: f64,
    /// Return the last step's noise-free mean.
    pub denoise: bool,
    /// Stop time t_ε (default: the SDE's).
    pub t_eps: Option<f64>,
}

impl PcConfig {
    /// `steps` steps of reverse diffusion + one Langevin step with r = 0.16, denoised (the
    /// paper's PC sampler).
    pub fn new(steps: usize) -> Self {
        Self {
            steps,
            predictor: Predictor::ReverseDiffusion,
            corrector_steps: 1,
            snr: 0.16,
            denoise: true,
            t_eps: None,
        }
    }

    /// The same with another predictor.
    pub fn with_predictor(mut self, p: Predictor) -> Self {
        self.predictor = p;
        self
    }

    /// The same with `n` corrector steps per time step.
    pub fn with_corrector_steps(mut self, n: usize) -> Self {
        self.corrector_steps = n;
        self
    }
}

/// The predictor–corrector grid: `steps` times from 1 down to t_ε, equally spaced (one time: 1).
pub fn time_grid(steps: usize, t_eps: f64) -> Vec<f64> {
    if steps == 1 {
        return vec![1.0];
    }
    (0..steps)
        .map(|i| 1.0 + (t_eps - 1.0) * i as f64 / (steps - 1) as f64)
        .collect()
}

fn checked_score(model: &impl ScoreModel, x: &Batch, t: f64, step: usize) -> Result<Batch> {
    let s = model.score(x, t)?;
    if s.data.len() != x.data.len() {
        return invalid("the score model changed the batch shape");
    }
    if !s.is_finite() {
        return Err(GenError::NonFinite {
            what: "score",
            step,
            t,
        });
    }
    Ok(s)
}

fn prior(model: &impl ScoreModel, n: usize, rng: &mut StdRng) -> Batch {
    let s = model.sde().prior_std();
    let mut x = Batch::gaussian(n, model.dim(), rng);
    x.data.iter_mut().for_each(|v| *v *= s);
    x
}

fn t_eps_of(model: &impl ScoreModel, t_eps: Option<f64>) -> Result<f64> {
    let t = t_eps.unwrap_or_else(|| model.sde().t_eps());
    if !(t > 0.0 && t < 1.0) {
        return invalid(format!("t_ε = {t} must lie in (0, 1)"));
    }
    Ok(t)
}

/// Sample `n` points with the predictor–corrector sampler; returns them and the number of score
/// evaluations.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn pc_sample(
    model: &impl ScoreModel,
    n: usize,
    cfg: &PcConfig,
    seed: u64,
) -> Result<(Batch, usize)> {
    let sde = model.sde();
    sde.validate()?;
    if cfg.steps == 0 {
        return invalid("the sampler needs at least 1 step");
    }
    if !(cfg.snr > 0.0) && cfg.corrector_steps > 0 {
        return invalid(format!("the corrector's snr must be > 0, got {}", cfg.snr));
    }
    let t_eps = t_eps_of(model, cfg.t_eps)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = prior(model, n, &mut rng);
    let mut mean = x.clone();
    let grid = time_grid(cfg.steps, t_eps);
    let mut nfe = 0;
    for (i, &t) in grid.iter().enumerate() {
        // Each predictor step moves to the next grid time; the last one, from t_ε, to t = 0.
        let next = grid.get(i + 1).copied().unwrap_or(0.0);
        for _ in 0..cfg.corrector_steps {
            let s = checked_score(model, &x, t, i)?;
            nfe += 1;
            let z = Batch::gaussian(x.n, x.d, &mut rng);
            let norms = |b: &Batch| {
                (0..b.n)
                    .map(|k| b.row(k).iter().map(|v| v * v).sum::<f64>().sqrt())
                    .sum::<f64>()
                    / b.n.max(1) as f64
            };
            let alpha = sde.langevin_alpha(t, next)?;
            let eps = 2.0 * alpha * (cfg.snr * norms(&z) / norms(&s).max(1e-300)).powi(2);
            mean = x.axpy(eps, &s);
            x = mean.axpy((2.0 * eps).sqrt(), &z);
        }
        if cfg.predictor == Predictor::None {
            continue;
        }
        let s = checked_score(model, &x, t, i)?;
        nfe += 1;
        let z = Batch::gaussian(x.n, x.d, &mut rng);
        let (shift, noise) = match cfg.predictor {
            Predictor::EulerMaruyama => {
                // dt = the distance to the next grid time (t_ε for the last step: it ends at 0).
                // The official code takes dt = 1/N on every step, also from t_ε, which at small N
                // overshoots the last step as the reverse-diffusion predictor did.
                let dt = t - next;
                let (f, g) = sde.coefficients(t)?;
                ((-f, g * g, dt), g * dt.sqrt())
            }
            Predictor::ReverseDiffusion => {
                let (f, g) = sde.discretize(t, next)?;
                ((-f, g * g, 1.0), g)
            }
            Predictor::None => unreachable!(),
        };
        let (neg_f, g2, dt) = shift;
        mean = Batch {
            data: x
                .data
                .iter()
                .zip(&s.data)
                .map(|(a, sc)| a + (neg_f * a + g2 * sc) * dt)
                .collect(),
            ..x
        };
        x = mean.axpy(noise, &z);
    }
    Ok((if cfg.denoise { mean } else { x }, nfe))
}

/// Settings of the probability-flow ODE sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OdeConfig {
    /// The ODE solver from t = 1 to t_ε. With [`Solver::Heun`] the last step is an Euler step
    /// (as in Karras et al. 2022, Algorithm 1): Heun's corrector would evaluate the drift at t_ε,
    /// where the PF-ODE is stiff (its Lipschitz constant ½β/σ² is ≈ 545 at t_ε = 1e-3 for VP), and
    /// on a uniform grid of 10 steps that multiplies the error left there by ≈ 27. NFE 2n − 1.
    pub solver: Solver,
    /// End with one reverse-diffusion step from t_ε to 0 (Tweedie's denoising x + σ²(t_ε)·s,
    /// one more score evaluation), as the official ODE sampler's `noise_removal` (on by default
    /// there; the official code does not count its evaluation).
    pub denoise: bool,
    /// Stop time t_ε (default: the SDE's).
    pub t_eps: Option<f64>,
}

impl OdeConfig {
    /// `solver` without the final denoising step.
    pub fn new(solver: Solver) -> Self {
        Self {
            solver,
            denoise: false,
            t_eps: None,
        }
    }

    /// The same with the final denoising step on or off.
    pub fn with_denoise(mut self, denoise: bool) -> Self {
        self.denoise = denoise;
        self
    }
}

/// Sample `n` points by integrating the probability-flow ODE from the prior at t = 1 to the SDE's
/// t_ε with `solver` (see [`OdeConfig`]); returns them and the number of score evaluations.
pub fn ode_sample(
    model: &impl ScoreModel,
    n: usize,
    solver: Solver,
    seed: u64,
) -> Result<(Batch, usize)> {
    ode_sample_with(model, n, &OdeConfig::new(solver), seed)
}

/// [`ode_sample`] with all the settings of [`OdeConfig`].
pub fn ode_sample_with(
    model: &impl ScoreModel,
    n: usize,
    cfg: &OdeConfig,
    seed: u64,
) -> Result<(Batch, usize)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = prior(model, n, &mut rng);
    let t_eps = t_eps_of(model, cfg.t_eps)?;
    let (x, mut nfe) = match cfg.solver {
        Solver::Heun(k) if k >= 2 => {
            let t_last = 1.0 + (t_eps - 1.0) * (k - 1) as f64 / k as f64;
            let (x, a) = ode_map(model, x, 1.0, t_last, Solver::Heun(k - 1))?;
            let (x, b) = ode_map(model, x, t_last, t_eps, Solver::Euler(1))?;
            (x, a + b)
        }
        Solver::Heun(1) => ode_map(model, x, 1.0, t_eps, Solver::Euler(1))?,
        solver => ode_map(model, x, 1.0, t_eps, solver)?,
    };
    if !cfg.denoise {
        return Ok((x, nfe));
    }
    let s = checked_score(model, &x, t_eps, nfe)?;
    nfe += 1;
    let (f, g) = model.sde().discretize(t_eps, 0.0)?;
    let denoised = Batch {
        data: x
            .data
            .iter()
            .zip(&s.data)
            .map(|(a, sc)| a - f * a + g * g * sc)
            .collect(),
        ..x
    };
    Ok((denoised, nfe))
}

/// Carry points `x` at time `t0` to time `t1` along the probability-flow ODE (either direction:
/// t1 > t0 encodes data into noise).
pub fn ode_map(
    model: &impl ScoreModel,
    x: Batch,
    t0: f64,
    t1: f64,
    solver: Solver,
) -> Result<(Batch, usize)> {
    let sde = model.sde();
    sde.validate()?;
    let rhs = |x: &Batch, t: f64| -> Result<Batch> {
        let t = t.clamp(0.0, 1.0);
        let s = model.score(x, t)?;
        let (f, g) = sde.coefficients(t)?;
        Ok(Batch {
            data: x
                .data
                .iter()
                .zip(&s.data)
                .map(|(a, sc)| f * a - 0.5 * g * g * sc)
                .collect(),
            ..x.clone()
        })
    };
    integrate(&rhs, x, t0, t1, solver)
}
