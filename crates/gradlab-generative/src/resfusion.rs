//! Resfusion (Shi et al., "Resfusion: Denoising Diffusion Probabilistic Models for Image
//! Restoration Based on Prior Residual Noise", NeurIPS 2024), as nkicsl/Resfusion has it
//! (`model/resfusion_restore.py`, `model/distributions.py`, `variance_scheduler/linear_pro.py`).
//!
//! With the degraded input x̂ and the residual R = x̂ − x₀ (images in [−1, 1]):
//!
//! - forward: x_t = √ᾱ_t x₀ + (1 − √ᾱ_t) R + √(1 − ᾱ_t) ε, i.e. a DDPM on x₀ − R shifted by R;
//! - target ("resnoise", mode `epsilon`): ε + (1 − √α_t) √(1 − ᾱ_t)/β_t · R;
//! - schedule ([`ResfusionSchedule`]): β = linspace(10⁻⁴, 0.02)·1000/T over T steps, **truncated**
//!   where √ᾱ first falls below ½ (if it misses ½ by more than 0.01: that entry becomes ᾱ = ¼
//!   exactly, α = ¼/ᾱ_{prev}, and the rest is dropped);
//! - acceleration point T′ = argmin|√ᾱ_t − ½| + 1; training draws t ∈ {0, …, T′ − 1};
//! - reverse: start at x_{T′} = √ᾱ_{T′−1} x̂ + √(1 − ᾱ_{T′−1}) ε (as √ᾱ = ½ this is the forward
//!   marginal exactly: the x₀ coefficient 2√ᾱ − 1 vanishes), then T′ DDPM steps
//!   x ← (x − β_t/√(1 − ᾱ_t) · r̂)/√α_t + √β̃_t z, z = 0 at t = 0, β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t.
//!
//! T = 12 gives T′ = 5 sampling steps. The official optimiser is AdamW with `amsgrad=True`; here
//! the shared training loop's Adam with linear decay is used (see [`train_resfusion`]).
//!
//! ```
//! use gradlab_generative::resfusion::ResfusionSchedule;
//! let s = ResfusionSchedule::new(12).unwrap();
//! assert_eq!(s.acc_point(), 5);                  // five sampling steps
//! assert!(s.truncated());
//! let (c_x0, _, _) = s.forward_coefficients(4).unwrap();
//! assert!(c_x0.abs() < 1e-12);                   // x_{T′} does not depend on x₀
//! ```

use crate::conditional::restore_time;
use crate::sampling::{Noise, StepObserver};
use crate::training::{TrainSettings, fit_net, to_net_input};
use crate::{GenError, Result, invalid};
use burn::prelude::*;
use gradlab_nets::cond_time_mlp::{CondTimeMlp, CondTimeMlpConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// The truncated linear schedule and its acceleration point; see the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct ResfusionSchedule {
    alpha: Vec<f64>,
    alpha_hat: Vec<f64>,
    truncated: bool,
    acc: usize,
}

impl ResfusionSchedule {
    /// `LinearProScheduler(T)`.
    pub fn new(steps: usize) -> Result<Self> {
        if steps < 2 {
            return invalid(format!("Resfusion needs T ≥ 2 steps, got {steps}"));
        }
        let scale = 1000.0 / steps as f64;
        let (b0, b1) = (scale * 1e-4, scale * 0.02);
        let beta: Vec<f64> = (0..steps)
            .map(|i| b0 + (b1 - b0) * i as f64 / (steps - 1) as f64)
            .collect();
        let mut alpha: Vec<f64> = beta.iter().map(|b| 1.0 - b).collect();
        let mut alpha_hat: Vec<f64> = alpha
            .iter()
            .scan(1.0, |acc, a| {
                *acc *= a;
                Some(*acc)
            })
            .collect();
        // The first t with √ᾱ_t ≤ ½ (len if none), as `find_closest_index`.
        let idx = alpha_hat
            .iter()
            .position(|a| a.sqrt() <= 0.5)
            .unwrap_or(alpha_hat.len());
        let truncated = idx < alpha_hat.len() && 0.5 - alpha_hat[idx].sqrt() > 0.01;
        if truncated {
            if idx == 0 {
                return invalid(format!("T = {steps} leaves no step above √ᾱ = ½"));
            }
            alpha.truncate(idx);
            alpha_hat.truncate(idx);
            alpha.push(0.25 / alpha_hat[idx - 1]);
            alpha_hat.push(0.25);
        }
        if alpha.iter().any(|a| !(*a > 0.0 && *a <= 1.0)) {
            return invalid(format!(
                "T = {steps} gives a step with α outside (0, 1] before the acceleration point"
            ));
        }
        let acc = alpha_hat
            .iter()
            .enumerate()
            .min_by(|a, b| {
                (a.1.sqrt() - 0.5)
                    .abs()
                    .total_cmp(&(b.1.sqrt() - 0.5).abs())
            })
            .map(|(i, _)| i + 1)
            .expect("at least one step");
        Ok(Self {
            alpha,
            alpha_hat,
            truncated,
            acc,
        })
    }

    /// T′, the acceleration point: the number of sampling steps and of training times.
    pub fn acc_point(&self) -> usize {
        self.acc
    }

    /// Whether the schedule was cut at √ᾱ = ½.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Steps kept (T, or fewer after truncation).
    pub fn len(&self) -> usize {
        self.alpha.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    fn check(&self, t: usize) -> Result<()> {
        if t >= self.acc {
            return invalid(format!(
                "step {t} is past the acceleration point ({} steps)",
                self.acc
            ));
        }
        Ok(())
    }

    /// (α_t, ᾱ_t, β_t).
    pub fn at(&self, t: usize) -> Result<(f64, f64, f64)> {
        self.check(t)?;
        Ok((self.alpha[t], self.alpha_hat[t], 1.0 - self.alpha[t]))
    }

    /// The coefficients (c₀, c_x̂, c_ε) of x_t = c₀ x₀ + c_x̂ x̂ + c_ε ε: (2√ᾱ − 1, 1 − √ᾱ, √(1 − ᾱ)).
    pub fn forward_coefficients(&self, t: usize) -> Result<(f64, f64, f64)> {
        let (_, ah, _) = self.at(t)?;
        let s = ah.sqrt();
        Ok((2.0 * s - 1.0, 1.0 - s, (1.0 - ah).sqrt()))
    }

    /// The weight of R in the resnoise target: (1 − √α_t) √(1 − ᾱ_t)/β_t.
    pub fn resnoise_weight(&self, t: usize) -> Result<f64> {
        let (a, ah, b) = self.at(t)?;
        Ok((1.0 - a.sqrt()) * (1.0 - ah).sqrt() / b)
    }

    /// β̃_t = (1 − ᾱ_{t−1})/(1 − ᾱ_t)·β_t (with the official `roll`: ᾱ_{−1} := ᾱ_1; unused, as
    /// the last step adds no noise).
    fn beta_tilde(&self, t: usize) -> f64 {
        let prev = if t == 0 {
            self.alpha_hat.get(1).copied().unwrap_or(self.alpha_hat[0])
        } else {
            self.alpha_hat[t - 1]
        };
        (1.0 - prev) / (1.0 - self.alpha_hat[t]) * (1.0 - self.alpha[t])
    }

    /// One reverse step from x_t given the predicted resnoise and noise `z` (ignored at t = 0).
    pub fn step(
        &self,
        x: Tensor<2>,
        resnoise: Tensor<2>,
        t: usize,
        z: Tensor<2>,
    ) -> Result<Tensor<2>> {
        let (a, ah, b) = self.at(t)?;
        let mean = (x - resnoise * (b / (1.0 - ah).sqrt())) / a.sqrt();
        Ok(if t == 0 {
            mean
        } else {
            mean + z * self.beta_tilde(t).sqrt()
        })
    }
}

/// A model of the resnoise r̂(x_t, x̂, t).
pub trait ResnoiseModel {
    /// The predicted resnoise for states `x` (`[n, d]`) with degraded inputs `xhat` at step `t`.
    fn resnoise(&self, x: Tensor<2>, xhat: &Tensor<2>, t: usize) -> Result<Tensor<2>>;
}

/// A trained [`CondTimeMlp`] as a resnoise model (its time input is [`restore_time`]).
#[derive(Debug, Clone)]
pub struct ResfusionNet<'a> {
    /// The network.
    pub net: &'a CondTimeMlp,
    /// The schedule it was trained on.
    pub schedule: &'a ResfusionSchedule,
}

impl ResnoiseModel for ResfusionNet<'_> {
    fn resnoise(&self, x: Tensor<2>, xhat: &Tensor<2>, t: usize) -> Result<Tensor<2>> {
        let [n, _] = x.dims();
        let dtype = x.dtype();
        let dev = x.device();
        let time = Tensor::<1>::full([n], restore_time(t, self.schedule.len()), &dev);
        let out = self
            .net
            .try_forward(
                x.cast(burn::tensor::DType::F32),
                xhat.clone().cast(burn::tensor::DType::F32),
                time,
            )
            .map_err(GenError::Invalid)?;
        Ok(out.cast(dtype))
    }
}

/// Restore `xhat` (`[n, d]`, in [−1, 1]) in T′ steps from the start point; `observer` sees the
/// state after every step. Returns x₀ (not clipped).
pub fn restore(
    model: &impl ResnoiseModel,
    schedule: &ResfusionSchedule,
    xhat: &Tensor<2>,
    noise: &mut Noise,
    observer: &mut impl StepObserver<2>,
) -> Result<Tensor<2>> {
    let last = schedule.acc_point() - 1;
    let (_, ah, _) = schedule.at(last)?;
    let mut x = xhat.clone() * ah.sqrt() + noise.like(xhat) * (1.0 - ah).sqrt();
    for (k, t) in (0..=last).rev().enumerate() {
        let r = model.resnoise(x.clone(), xhat, t)?;
        if r.dims() != x.dims() {
            return invalid(format!(
                "the model returned {:?} for states {:?}",
                r.dims(),
                x.dims()
            ));
        }
        let z = noise.like(&x);
        x = schedule.step(x, r, t, z)?;
        if !crate::ode::all_finite(&x) {
            return Err(GenError::NonFinite {
                what: "Resfusion state",
                step: k,
                t: t as f64,
            });
        }
        observer.observe(k, t as f64, &x);
    }
    Ok(x)
}

/// Train a [`CondTimeMlp`] on the resnoise target with t ~ U{0, …, T′ − 1}, on pairs
/// (x₀, x̂) = `pairs(n, seed)` (`[n, dim]` each, in [−1, 1]); MSE averaged over elements, as the
/// official `F.mse_loss`. Adam with the learning rate decayed linearly and no gradient clipping
/// (the official AdamW with amsgrad, cosine annealing over 5,000 epochs and clip 1 is out of a
/// CPU budget's reach). Returns the
/// network on the inner device and every step's loss.
pub fn train_resfusion(
    schedule: &ResfusionSchedule,
    dim: usize,
    mut pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(CondTimeMlp, Vec<f64>)> {
    let net = CondTimeMlpConfig::new(dim, dim)
        .with_hidden(settings.hidden)
        .with_layers(settings.layers)
        .init(&Device::flex().autodiff(), settings.seed);
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0x2E5);
    let acc = schedule.acc_point();
    let (net, losses) = fit_net(net, settings, |net, step, dev| {
        let (x0, xhat) = pairs(settings.batch, settings.seed.wrapping_add(step as u64));
        let ([n, d], [nh, dh]) = (x0.dims(), xhat.dims());
        if d != dim || dh != dim || nh != n {
            return invalid(format!(
                "pairs of shapes [{n}, {d}] and [{nh}, {dh}] for dimension {dim}"
            ));
        }
        let mut cols = [vec![], vec![], vec![], vec![], vec![]]; // c₀, c_x̂, c_ε, w_R, time
        for _ in 0..n {
            let t = rng.random_range(0..acc);
            let (c0, ch, ce) = schedule.forward_coefficients(t)?;
            cols[0].push(c0 as f32);
            cols[1].push(ch as f32);
            cols[2].push(ce as f32);
            cols[3].push(schedule.resnoise_weight(t)? as f32);
            cols[4].push(restore_time(t, schedule.len()));
        }
        let column = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [n, 1]), dev);
        let z: Vec<f32> = (0..n * d)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [n, d]), dev);
        let (x0, xhat) = (to_net_input(x0, dev)?, to_net_input(xhat, dev)?);
        let r = xhat.clone() - x0.clone();
        let xt =
            x0 * column(&cols[0]) + xhat.clone() * column(&cols[1]) + z.clone() * column(&cols[2]);
        let target = z + r * column(&cols[3]);
        let t = Tensor::<1>::from_data(TensorData::new(cols[4].clone(), [n]), dev);
        let out = net.forward(xt, xhat, t);
        Ok((out - target).square().mean().reshape([1]))
    })?;
    Ok((net.valid(), losses))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampling::Unobserved;
    use gradlab_core::bridge::{from_host, to_host};

    #[test]
    fn acceleration_points_match_the_official_schedule() {
        // T′ for each T, computed from `LinearProScheduler` + `get_acc_point` (PAPERS-REMAINING.md, §2).
        for (t, acc, cut) in [
            (12, 5, true),
            (20, 8, true),
            (50, 19, true),
            (100, 37, false),
            (273, 100, false),
            (1000, 368, false),
        ] {
            let s = ResfusionSchedule::new(t).unwrap();
            assert_eq!((s.acc_point(), s.truncated()), (acc, cut), "T = {t}");
        }
    }

    #[test]
    fn the_start_point_is_the_forward_marginal_exactly_when_truncated() {
        let s = ResfusionSchedule::new(12).unwrap();
        let (c0, ch, ce) = s.forward_coefficients(s.acc_point() - 1).unwrap();
        assert!(c0.abs() < 1e-12, "x₀ coefficient {c0}");
        assert!((ch - 0.5).abs() < 1e-12 && (ce - 0.75f64.sqrt()).abs() < 1e-12);
        // Untruncated (T = 273): √ᾱ only near ½, a small mismatch.
        let s = ResfusionSchedule::new(273).unwrap();
        let (c0, _, _) = s.forward_coefficients(s.acc_point() - 1).unwrap();
        assert!(c0.abs() > 1e-6 && c0.abs() < 0.02, "{c0}");
    }

    /// With the exact resnoise, a step is the DDPM posterior mean of the shifted process
    /// (the official `sample` mode's formula 44, written independently): the resnoise target
    /// and the update agree.
    #[test]
    fn a_step_with_the_true_resnoise_is_the_posterior_mean() {
        let s = ResfusionSchedule::new(12).unwrap();
        let dev = Device::flex();
        let x0 = [0.3, -0.7, 0.9];
        let xhat = [0.1, -0.2, 0.5];
        let eps = [0.4, -1.1, 0.2];
        for t in 1..s.acc_point() {
            let (c0, ch, ce) = s.forward_coefficients(t).unwrap();
            let w = s.resnoise_weight(t).unwrap();
            let xt: Vec<f64> = (0..3)
                .map(|k| c0 * x0[k] + ch * xhat[k] + ce * eps[k])
                .collect();
            let r: Vec<f64> = (0..3).map(|k| eps[k] + w * (xhat[k] - x0[k])).collect();
            let zero = from_host(&[0.0; 3], [1, 3], &dev).unwrap();
            let out = s
                .step(
                    from_host(&xt, [1, 3], &dev).unwrap(),
                    from_host(&r, [1, 3], &dev).unwrap(),
                    t,
                    zero,
                )
                .unwrap();
            let out = to_host(out).unwrap();
            let (a, ah, b) = s.at(t).unwrap();
            let ahp = s.alpha_hat[t - 1];
            for k in 0..3 {
                let rr = xhat[k] - x0[k];
                let want = ((a.sqrt() * (1.0 - ahp)) * (xt[k] - rr)
                    + ahp.sqrt() * b * (x0[k] - rr))
                    / (1.0 - ah)
                    + rr;
                assert!((out[k] - want).abs() < 1e-12, "t {t}: {} vs {want}", out[k]);
            }
        }
    }

    /// A model that knows x₀ (a point-mass posterior) restores it exactly, from any start.
    #[test]
    fn an_exact_model_restores_x0() {
        struct Exact(Vec<f64>, ResfusionSchedule);
        impl ResnoiseModel for Exact {
            fn resnoise(&self, x: Tensor<2>, xhat: &Tensor<2>, t: usize) -> Result<Tensor<2>> {
                let dev = x.device();
                let (c0, ch, ce) = self.1.forward_coefficients(t)?;
                let x0 = from_host(&self.0, x.dims(), &dev)?;
                let eps = (x - x0.clone() * c0 - xhat.clone() * ch) / ce;
                Ok(eps + (xhat.clone() - x0) * self.1.resnoise_weight(t)?)
            }
        }
        let s = ResfusionSchedule::new(12).unwrap();
        let x0 = vec![0.3, -0.7, 0.9, 0.0];
        let xhat = from_host(&[0.1, -0.2, 0.5, 0.4], [2, 2], &Device::flex()).unwrap();
        let mut steps = 0;
        let out = restore(
            &Exact(x0.clone(), s.clone()),
            &s,
            &xhat,
            &mut Noise::new(1),
            &mut |_: usize, _: f64, _: &Tensor<2>| steps += 1,
        )
        .unwrap();
        assert_eq!(steps, 5);
        for (a, b) in to_host(out).unwrap().iter().zip(&x0) {
            assert!((a - b).abs() < 1e-10, "{a} vs {b}");
        }
        let _ = Unobserved;
    }

    #[test]
    fn bad_step_counts_are_errors() {
        assert!(ResfusionSchedule::new(1).is_err());
        let s = ResfusionSchedule::new(12).unwrap();
        assert!(s.at(5).is_err());
        assert!(s.forward_coefficients(7).is_err());
    }
}
