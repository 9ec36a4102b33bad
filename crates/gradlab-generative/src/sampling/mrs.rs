//! MRS, the fast sampler for mean-reverting diffusion (Li et al., "MRS: A Fast Sampler for Mean
//! Reverting Diffusion based on ODE and SDE Solvers", ICLR 2025), as `utils/sampler.py::MRSampler`
//! of grrrute/mr-sampler has it. On y = x − μ a mean-reverting SDE
//! ([`crate::process::MeanReverting`]) is a plain (α_t, σ_t) process, so MRS is the DPM-Solver(++)
//! family on y; the μ terms of the official updates are exactly what y = x − μ adds back. With
//! λ_t = ln(α_t/σ_t), h = λ_i − λ_{i−1}, r = h_{i−1}/h_i, D₁ = (q₀ − q₁)/r, q the model's output
//! converted to the chosen parameterisation (x̂₀ or ε̂) at the last two steps:
//!
//! | solver | data (q = ŷ₀) | noise (q = ε̂) |
//! |---|---|---|
//! | ODE-1 | (σ_i/σ_{i−1}) y − α_i φ₁ q₀, φ₁ = e^{−h} − 1 | (α_i/α_{i−1}) y − σ_i (e^{h} − 1) q₀ |
//! | ODE-2 | (σ_i/σ_{i−1}) y − α_i (φ₁q₀ − φ₂D₁), φ₂ = φ₁/h + 1 | (α_i/α_{i−1}) y − σ_i (φ₁q₀ + φ₂D₁), φ₁ = e^h − 1, φ₂ = φ₁/h − 1 |
//! | SDE-1 | (σ_i/σ_{i−1}) e^{−h} y + α_i φ₁ q₀ + σ_i √φ₁ z, φ₁ = 1 − e^{−2h} | (α_i/α_{i−1}) y − 2σ_i (e^h − 1) q₀ + σ_i √(e^{2h} − 1) z |
//! | SDE-2 | SDE-1 + α_i φ₂ D₁, φ₂ = 1 − φ₁/(2h) | SDE-1 − 2σ_i φ₂ D₁, φ₂ = (e^h − 1)/h − 1 |
//!
//! Order 2 is the "taylor" variant (φ₁/h + 1), not DPM-Solver++(2M)'s ½φ₁ of
//! [`super::dpm_solver_pp`]. Orders as the official loop: step i (1 … M) runs order min(order, i);
//! below M = 10 steps, steps before the last also at most M − i; the last step at the full order
//! (so at M < 10 it is the step *before* the last that is lowered; [`Mrs::lower_order_final`]
//! lowers the last one instead, as DPM-Solver does). The official loop stops
//! silently at a NaN; here a non-finite state is an error.
//!
//! Grids run from t = 1 to the process's last level t = 0: `Linspace` (the official
//! `mrsampler.yml`) or `LinearLambda`, equally spaced in λ (`test.yml`, and the official
//! numerical-stability study). The official code interpolates α, σ and λ linearly between levels
//! at fractional grid times, so there its (α, σ, λ) are not exactly consistent and its μ terms
//! leave a small residue; here every coefficient comes from the process at that time (identical
//! on whole levels: linspace grids whose NFE divides T).
//! The official final `clip(x₀, 0, 1)` is left to the caller (the images' range). Not built:
//! `denoise_last` (off in both configs; in the noise parameterisation the official code
//! would return ε̂ as the image), order 3, the λ_min clip (inactive for the defaults), thresholding.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::process::MeanReverting;
//! use gradlab_generative::sampling::{Noise, Unobserved, prior};
//! use gradlab_generative::sampling::mrs::{Mrs, Param, Schedule, Solver};
//! use gradlab_generative::score::GaussianOracle;
//! // y₀ = x₀ − μ ~ N(0.3, 0.01): exact scores, 20 steps of MRS-ODE-2 in the data form.
//! let p = MeanReverting::official();
//! let model = GaussianOracle::diagonal(p.clone(), vec![0.3], vec![0.01]).unwrap();
//! let mrs = Mrs::new(Solver::Ode, 2, Param::Data, Schedule::LinearLambda).unwrap();
//! let mut noise = Noise::new(0);
//! let y = prior(&p, [4000, 1], &mut noise, &Device::flex());
//! let y = mrs.sample(&model, &p, y, 20, &mut noise, &mut Unobserved).unwrap();
//! let (m, v) = gradlab_generative::points::moments(&y).unwrap();
//! assert!((m[0] - 0.3).abs() < 0.01 && (v[0] - 0.01).abs() < 0.002, "{m:?} {v:?}");
//! ```

use super::noise::{Noise, StepObserver};
use crate::ode::all_finite;
use crate::process::Process;
use crate::score::{ScoreModel, denoised};
use crate::{GenError, Result, invalid};
use burn::prelude::*;

/// The ODE or the SDE solver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Solver {
    /// The probability-flow ODE (deterministic).
    Ode,
    /// The reverse SDE (fresh noise every step).
    Sde,
}

/// What the solver integrates: the data prediction x̂₀ or the noise prediction ε̂.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Data prediction (MRS's choice: stable at few steps).
    Data,
    /// Noise prediction.
    Noise,
}

/// The time grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// Equally spaced in t.
    Linspace,
    /// Equally spaced in λ_t = ln(α_t/σ_t).
    LinearLambda,
}

/// An MRS sampler; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mrs {
    /// ODE or SDE.
    pub solver: Solver,
    /// 1 or 2.
    pub order: usize,
    /// Data or noise parameterisation.
    pub param: Param,
    /// The time grid.
    pub schedule: Schedule,
    /// Take the last step at order 1 (DPM-Solver's `lower_order_final`). Off, as the official
    /// loop, whose last step is full order; on, it shows what that step costs (see `mrs`).
    pub lower_order_final: bool,
}

impl Mrs {
    /// A sampler of order 1 or 2.
    pub fn new(solver: Solver, order: usize, param: Param, schedule: Schedule) -> Result<Self> {
        if !(order == 1 || order == 2) {
            return invalid(format!("MRS order must be 1 or 2, got {order}"));
        }
        Ok(Self {
            solver,
            order,
            param,
            schedule,
            lower_order_final: false,
        })
    }

    /// `mrsampler.yml`: ODE, order 2, data prediction, linspace.
    pub fn official_ode() -> Self {
        Self::new(Solver::Ode, 2, Param::Data, Schedule::Linspace).expect("valid")
    }

    /// `test.yml` (the README's evaluation): SDE, order 2, data prediction, linear-λ.
    pub fn official_sde() -> Self {
        Self::new(Solver::Sde, 2, Param::Data, Schedule::LinearLambda).expect("valid")
    }

    /// A short name, e.g. `ODE-2 data`.
    pub fn name(&self) -> String {
        let s = match self.solver {
            Solver::Ode => "ODE",
            Solver::Sde => "SDE",
        };
        let p = match self.param {
            Param::Data => "data",
            Param::Noise => "noise",
        };
        format!("{s}-{} {p}", self.order)
    }

    /// The `nfe + 1` grid times from 1 down to 0.
    pub fn grid(&self, process: &impl Process, nfe: usize) -> Result<Vec<f64>> {
        if nfe == 0 {
            return invalid("MRS needs at least 1 step (NFE ≥ 1)");
        }
        match self.schedule {
            Schedule::Linspace => Ok((0..=nfe).map(|i| 1.0 - i as f64 / nfe as f64).collect()),
            Schedule::LinearLambda => super::grid::logsnr_to(process, nfe, 0.0),
        }
    }

    /// The order of step `i` (1 … `steps`), as the official loop.
    pub fn step_order(&self, i: usize, steps: usize) -> usize {
        let o = self.order.min(i);
        if i == steps && self.lower_order_final {
            1
        } else if i < steps && steps < 10 {
            o.min(steps - i)
        } else {
            o
        }
    }

    /// Sample y = x − μ from `y` (a prior draw, [`super::prior`]) in `nfe` model evaluations;
    /// `model` scores y (it holds the condition μ). `observer` sees y after every step.
    pub fn sample<const D: usize>(
        &self,
        model: &impl ScoreModel<D>,
        process: &impl Process,
        y: Tensor<D>,
        nfe: usize,
        noise: &mut Noise,
        observer: &mut impl StepObserver<D>,
    ) -> Result<Tensor<D>> {
        let grid = self.grid(process, nfe)?;
        let mut y = y;
        let mut prev: Option<(Tensor<D>, f64)> = None;
        for i in 1..=nfe {
            let (t0, t1) = (grid[i - 1], grid[i]);
            let q = self.output(model, process, y.clone(), t0, i)?;
            let (a0, s0) = process.marginal(t0)?;
            let (a1, s1) = process.marginal(t1)?;
            let h = (a1 / s1).ln() - (a0 / s0).ln();
            let d1 = match &prev {
                Some((q1, h1)) if self.step_order(i, nfe) == 2 => {
                    Some((q.clone() - q1.clone()) / (h1 / h))
                }
                _ => None,
            };
            let z = match self.solver {
                Solver::Sde => Some(noise.like(&y)),
                Solver::Ode => None,
            };
            y = self.update(y, q.clone(), d1, z, (a0, s0), (a1, s1), h);
            if !all_finite(&y) {
                return Err(GenError::NonFinite {
                    what: "MRS state",
                    step: i - 1,
                    t: t1,
                });
            }
            prev = Some((q, h));
            observer.observe(i - 1, t1, &y);
        }
        Ok(y)
    }

    /// The model's output at (y, t) in the parameterisation: ŷ₀ by Tweedie or ε̂ = −σ_t s.
    fn output<const D: usize>(
        &self,
        model: &impl ScoreModel<D>,
        process: &impl Process,
        y: Tensor<D>,
        t: f64,
        step: usize,
    ) -> Result<Tensor<D>> {
        let q = match self.param {
            Param::Data => denoised(model, process, y, t)?,
            Param::Noise => model.score(y, t)? * (-process.marginal(t)?.1),
        };
        if !all_finite(&q) {
            return Err(GenError::NonFinite {
                what: "model output",
                step: step - 1,
                t,
            });
        }
        Ok(q)
    }

    /// One update of the table in the module docs.
    #[allow(clippy::too_many_arguments)]
    fn update<const D: usize>(
        &self,
        y: Tensor<D>,
        q0: Tensor<D>,
        d1: Option<Tensor<D>>,
        z: Option<Tensor<D>>,
        (a0, s0): (f64, f64),
        (a1, s1): (f64, f64),
        h: f64,
    ) -> Tensor<D> {
        match (self.param, self.solver) {
            (Param::Data, Solver::Ode) => {
                let phi1 = (-h).exp_m1();
                let mut d = q0 * phi1;
                if let Some(d1) = d1 {
                    d = d - d1 * (phi1 / h + 1.0);
                }
                y * (s1 / s0) - d * a1
            }
            (Param::Data, Solver::Sde) => {
                let phi1 = -(-2.0 * h).exp_m1();
                let mut out = y * (s1 / s0 * (-h).exp()) + q0 * (a1 * phi1);
                if let Some(d1) = d1 {
                    out = out + d1 * (a1 * (1.0 - phi1 / (2.0 * h)));
                }
                out + z.expect("the SDE draws noise") * (s1 * phi1.sqrt())
            }
            (Param::Noise, Solver::Ode) => {
                let phi1 = h.exp_m1();
                let mut d = q0 * phi1;
                if let Some(d1) = d1 {
                    d = d + d1 * (phi1 / h - 1.0);
                }
                y * (a1 / a0) - d * s1
            }
            (Param::Noise, Solver::Sde) => {
                let phi1 = h.exp_m1();
                let mut out = y * (a1 / a0) - q0 * (2.0 * s1 * phi1);
                if let Some(d1) = d1 {
                    out = out - d1 * (2.0 * s1 * (phi1 / h - 1.0));
                }
                out + z.expect("the SDE draws noise") * (s1 * (2.0 * h).exp_m1().sqrt())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::MeanReverting;
    use crate::sampling::{Unobserved, dpm_solver_pp, prior};
    use crate::score::GaussianOracle;
    use gradlab_core::bridge::{from_host, to_host};

    const Y: [f64; 6] = [0.1, -0.2, 0.35, 0.05, -0.4, 0.22];

    fn oracle() -> GaussianOracle<MeanReverting> {
        GaussianOracle::diagonal(MeanReverting::official(), vec![0.3, -0.1], vec![0.01, 0.04])
            .unwrap()
    }

    /// The exact PF-ODE map of Gaussian data from t = 1 to t = 0, per coordinate (affine).
    fn exact(o: &GaussianOracle<MeanReverting>) -> Vec<f64> {
        let p = o.process();
        let ((a0, s0), (a1, s1)) = (p.marginal(1.0).unwrap(), p.marginal(0.0).unwrap());
        Y.iter()
            .enumerate()
            .map(|(k, y)| {
                let (m, v) = (o.mean()[k % 2], o.var()[k % 2]);
                a1 * m + ((a1 * a1 * v + s1 * s1) / (a0 * a0 * v + s0 * s0)).sqrt() * (y - a0 * m)
            })
            .collect()
    }

    fn ode_error(mrs: Mrs, nfe: usize) -> f64 {
        let o = oracle();
        let y = from_host(&Y, [3, 2], &Device::flex()).unwrap();
        let out = mrs
            .sample(&o, o.process(), y, nfe, &mut Noise::new(0), &mut Unobserved)
            .unwrap();
        to_host(out)
            .unwrap()
            .iter()
            .zip(exact(&o))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn ode_orders_converge_to_the_exact_gaussian_flow() {
        for param in [Param::Data, Param::Noise] {
            let one = Mrs::new(Solver::Ode, 1, param, Schedule::LinearLambda).unwrap();
            let two = Mrs::new(Solver::Ode, 2, param, Schedule::LinearLambda).unwrap();
            let (e1, e1b) = (ode_error(one, 40), ode_error(one, 80));
            let (e2, e2b) = (ode_error(two, 40), ode_error(two, 80));
            assert!(
                (e1 / e1b - 2.0).abs() < 0.3,
                "{param:?} order 1: {e1} → {e1b}"
            );
            assert!(e2 / e2b > 3.3, "{param:?} order 2: {e2} → {e2b}");
            assert!(e2 < e1, "{param:?}: {e2} vs {e1}");
        }
    }

    #[test]
    fn first_order_ode_is_ddim_in_both_parameterisations() {
        // DDIM = DPM-Solver-1 = DPM-Solver++-1: the same map, from the existing solver.
        let o = oracle();
        let p = o.process();
        let dev = Device::flex();
        let mrs = Mrs::new(Solver::Ode, 1, Param::Data, Schedule::Linspace).unwrap();
        let grid = mrs.grid(p, 7).unwrap();
        let y = from_host(&Y, [3, 2], &dev).unwrap();
        let ddim =
            to_host(dpm_solver_pp(&o, p, y.clone(), &grid, 1, &mut Unobserved).unwrap()).unwrap();
        for param in [Param::Data, Param::Noise] {
            let m = Mrs { param, ..mrs };
            let out = m
                .sample(&o, p, y.clone(), 7, &mut Noise::new(0), &mut Unobserved)
                .unwrap();
            for (a, b) in to_host(out).unwrap().iter().zip(&ddim) {
                assert!((a - b).abs() < 1e-12, "{param:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn second_order_data_step_is_the_taylor_variant() {
        // Two steps by hand: step 1 first order, step 2 with D = φ₁q₀ − (φ₁/h + 1)D₁.
        let o = oracle();
        let p = o.process();
        let dev = Device::flex();
        let mrs = Mrs::new(Solver::Ode, 2, Param::Data, Schedule::Linspace).unwrap();
        let g = mrs.grid(p, 20).unwrap();
        let mut seen = vec![];
        let y = from_host(&Y, [3, 2], &dev).unwrap();
        mrs.sample(
            &o,
            p,
            y.clone(),
            20,
            &mut Noise::new(0),
            &mut |i: usize, _: f64, x: &Tensor<2>| {
                if i < 2 {
                    seen.push(to_host(x.clone()).unwrap());
                }
            },
        )
        .unwrap();
        let lam = |t: f64| {
            let (a, s) = p.marginal(t).unwrap();
            (a / s).ln()
        };
        let q = |y: &[f64], t: f64| {
            to_host(denoised(&o, p, from_host(y, [3, 2], &dev).unwrap(), t).unwrap()).unwrap()
        };
        let (h1, h2) = (lam(g[1]) - lam(g[0]), lam(g[2]) - lam(g[1]));
        let (q0, q1) = (q(&Y, g[0]), q(&seen[0], g[1]));
        let ((_, s1), (a2, s2)) = (p.marginal(g[1]).unwrap(), p.marginal(g[2]).unwrap());
        let phi1 = (-h2).exp() - 1.0;
        for k in 0..6 {
            let d1 = (q1[k] - q0[k]) / (h1 / h2);
            let d = phi1 * q1[k] - (phi1 / h2 + 1.0) * d1;
            let want = s2 / s1 * seen[0][k] - a2 * d;
            assert!(
                (seen[1][k] - want).abs() < 1e-12,
                "{} vs {want}",
                seen[1][k]
            );
        }
    }

    /// The sample variances (relative errors against the law at t = 0) after `nfe` SDE steps.
    fn sde_variance_errors(order: usize, nfe: usize) -> Vec<f64> {
        let o = oracle();
        let p = o.process();
        let mrs = Mrs::new(Solver::Sde, order, Param::Data, Schedule::LinearLambda).unwrap();
        let mut noise = Noise::new(3);
        let y = prior(p, [40_000, 2], &mut noise, &Device::flex());
        let y = mrs
            .sample(&o, p, y, nfe, &mut noise, &mut Unobserved)
            .unwrap();
        let (m, cov) = crate::points::moments(&y).unwrap();
        let (law_m, law_v) = o.marginal(0.0).unwrap();
        // Means: s.e. ≤ 0.001 for 40,000 draws.
        assert!(
            (m[0] - law_m[0]).abs() < 0.005 && (m[1] - law_m[1]).abs() < 0.005,
            "{m:?}"
        );
        vec![
            (cov[0] - law_v[0]) / law_v[0],
            (cov[3] - law_v[1]) / law_v[1],
        ]
    }

    #[test]
    fn sde_solvers_converge_to_the_data_law() {
        // Exact scores of Gaussian data; the relative s.e. of a variance from 40,000 draws is 0.7%.
        // SDE-DPM-Solver++-1 is first order in the variance (a closed-form recursion of the
        // update gives −17% at 50 steps and −4.3% at 200 for the first coordinate); order 2 is
        // within 0.1% at 200 steps.
        let (e50, e200) = (sde_variance_errors(1, 50), sde_variance_errors(1, 200));
        for k in 0..2 {
            assert!(
                e200[k].abs() < 0.07 && e50[k].abs() > 2.0 * e200[k].abs(),
                "order 1: {e50:?} → {e200:?}"
            );
        }
        let e2 = sde_variance_errors(2, 200);
        assert!(
            e2.iter().all(|e| e.abs() < 0.03),
            "order 2 at 200 steps: {e2:?}"
        );
    }

    #[test]
    fn orders_follow_the_official_loop() {
        let mrs = Mrs::official_ode();
        let orders = |m: usize| (1..=m).map(|i| mrs.step_order(i, m)).collect::<Vec<_>>();
        assert_eq!(orders(5), vec![1, 2, 2, 1, 2]);
        let lowered = Mrs {
            lower_order_final: true,
            ..mrs
        };
        assert_eq!(
            (1..=5)
                .map(|i| lowered.step_order(i, 5))
                .collect::<Vec<_>>(),
            vec![1, 2, 2, 1, 1]
        );
        assert_eq!(orders(1), vec![1]);
        assert_eq!(orders(10), vec![1, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    }

    #[test]
    fn bad_orders_and_step_counts_are_errors() {
        assert!(Mrs::new(Solver::Ode, 3, Param::Data, Schedule::Linspace).is_err());
        assert!(Mrs::new(Solver::Ode, 0, Param::Data, Schedule::Linspace).is_err());
        let o = oracle();
        let y = from_host(&Y, [3, 2], &Device::flex()).unwrap();
        let r =
            Mrs::official_ode().sample(&o, o.process(), y, 0, &mut Noise::new(0), &mut Unobserved);
        assert!(r.is_err());
    }
}
