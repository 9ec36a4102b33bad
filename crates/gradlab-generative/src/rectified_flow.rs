//! Rectified flow ("Flow Straight and Fast: Learning to Generate and Transfer Data with
//! Rectified Flow", Liu, Gong & Liu, ICLR 2023; gnobitab/RectifiedFlow): for a coupling (X₀, X₁)
//! (X₀ noise, X₁ data, t from 0 to 1), learn
//!
//! v = argmin E‖(X₁ − X₀) − v(X_t, t)‖²,   X_t = t X₁ + (1 − t) X₀,   t ~ U(t_ε, 1),
//!
//! and transport by dZ/dt = v(Z, t). Reflow trains again on the pairs (Z₀, Z₁) the flow itself
//! produced, which straightens the paths; straightness is S = ∫₀¹ E‖(Z₁ − Z₀) − Ż_t‖² dt (0 for
//! straight paths, where one Euler step is exact). One-step distillation fits v(Z₀, 0) ≈ Z₁ − Z₀.
//!
//! [`GaussianVelocity`] is the exact velocity for independent Gaussian endpoints in every
//! coordinate, N(0, 1) → N(μ, s²): v(x, t) = μ + (t s² − (1 − t))/((1 − t)² + t² s²)·(x − tμ).

use crate::ode::{Solver, integrate};
use crate::training::{TrainSettings, evaluate, fit_net, time_mlp, to_tensor};
use crate::{Batch, Result, invalid};
use burn::prelude::*;
use gradlab_nets::time_mlp::TimeMlp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A velocity field v(x, t), t ∈ [0, 1] from noise to data.
pub trait VelocityField {
    /// The dimension.
    fn dim(&self) -> usize;
    /// v at every point of `x` at time t.
    fn velocity(&self, x: &Batch, t: f64) -> Result<Batch>;
}

/// The exact rectified-flow velocity between independent N(0, 1) and N(μ_k, s_k²) per coordinate.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianVelocity {
    /// Target means.
    pub mean: Vec<f64>,
    /// Target standard deviations.
    pub std: Vec<f64>,
}

impl VelocityField for GaussianVelocity {
    fn dim(&self) -> usize {
        self.mean.len()
    }
    fn velocity(&self, x: &Batch, t: f64) -> Result<Batch> {
        x.check_dim(self.dim())?;
        let data = x
            .data
            .iter()
            .enumerate()
            .map(|(k, xv)| {
                let (m, s2) = (self.mean[k % x.d], self.std[k % x.d].powi(2));
                let var = (1.0 - t).powi(2) + t * t * s2;
                m + (t * s2 - (1.0 - t)) / var * (xv - t * m)
            })
            .collect();
        Ok(Batch { data, ..*x })
    }
}

/// Transport `z0` from t = 0 to t = 1 along `v`; returns Z₁ and the NFE.
pub fn transport(v: &impl VelocityField, z0: Batch, solver: Solver) -> Result<(Batch, usize)> {
    integrate(&|x: &Batch, t: f64| v.velocity(x, t), z0, 0.0, 1.0, solver)
}

/// Straightness S = ∫ E‖(Z₁ − Z₀) − v(Z_t, t)‖² dt along Euler paths of `steps` steps from `z0`
/// (a Riemann sum over the steps; Z₁ the Euler endpoint).
pub fn straightness(v: &impl VelocityField, z0: &Batch, steps: usize) -> Result<f64> {
    if steps == 0 {
        return invalid("straightness needs at least 1 step");
    }
    let h = 1.0 / steps as f64;
    let mut z = z0.clone();
    let mut velocities = Vec::with_capacity(steps);
    for i in 0..steps {
        let vel = v.velocity(&z, i as f64 * h)?;
        z = Batch {
            data: z
                .data
                .iter()
                .zip(&vel.data)
                .map(|(a, b)| a + h * b)
                .collect(),
            ..z
        };
        velocities.push(vel);
    }
    let n = z0.n.max(1) as f64;
    let total: f64 = velocities
        .iter()
        .map(|vel| {
            vel.data
                .iter()
                .zip(z.data.iter().zip(&z0.data))
                .map(|(vv, (z1, z0))| ((z1 - z0) - vv).powi(2))
                .sum::<f64>()
                / n
        })
        .sum();
    Ok(total * h)
}

/// A time-conditioned MLP as a velocity field.
#[derive(Debug, Clone)]
pub struct VelocityNet {
    net: TimeMlp,
    dim: usize,
}

impl VelocityNet {
    /// Wrap a network.
    pub fn new(net: TimeMlp, dim: usize) -> Self {
        Self { net, dim }
    }
}

impl VelocityField for VelocityNet {
    fn dim(&self) -> usize {
        self.dim
    }
    fn velocity(&self, x: &Batch, t: f64) -> Result<Batch> {
        x.check_dim(self.dim)?;
        let out = evaluate(&self.net, x, t)?;
        Ok(Batch { data: out, ..*x })
    }
}

/// Settings of [`train_velocity`].
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSettings {
    /// Optimizer steps.
    pub steps: usize,
    /// Pairs per step.
    pub batch: usize,
    /// Adam's initial learning rate (decayed linearly to 0).
    pub lr: f64,
    /// Hidden width.
    pub hidden: usize,
    /// Hidden layers.
    pub layers: usize,
    /// Train only at t = 0 (one-step distillation: v(Z₀, 0) ≈ Z₁ − Z₀).
    pub distill: bool,
    /// Seed.
    pub seed: u64,
}

impl Default for FlowSettings {
    /// 3 × 128 MLP, Adam 1e-3, batch 256, 5,000 steps.
    fn default() -> Self {
        Self {
            steps: 5000,
            batch: 256,
            lr: 1e-3,
            hidden: 128,
            layers: 3,
            distill: false,
            seed: 0,
        }
    }
}

/// Train a velocity network on couplings drawn by `pairs(n, seed) -> (X₀, X₁)`; returns it and
/// the loss per step. For 1-rectified flow draw X₀ and X₁ independently; for reflow return fixed
/// pairs (Z₀, Z₁) generated by the previous flow.
pub fn train_velocity(
    dim: usize,
    mut pairs: impl FnMut(usize, u64) -> (Batch, Batch),
    settings: &FlowSettings,
) -> Result<(VelocityNet, Vec<f64>)> {
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xF10);
    let common = TrainSettings {
        steps: settings.steps,
        batch: settings.batch,
        lr: settings.lr,
        hidden: settings.hidden,
        layers: settings.layers,
        seed: settings.seed,
    };
    let (net, losses) = fit_net(time_mlp(dim, &common), &common, |net, step, dev| {
        let (x0, x1) = pairs(settings.batch, settings.seed.wrapping_add(step as u64));
        if x0.d != dim || x1.d != dim || x0.n != x1.n {
            return invalid("the coupling gave batches of the wrong shape");
        }
        let n = x0.n;
        let t: Vec<f32> = (0..n)
            .map(|_| {
                if settings.distill {
                    0.0
                } else {
                    1e-3 + (1.0 - 1e-3) * rng.random::<f32>()
                }
            })
            .collect();
        let (a, b) = (to_tensor(&x0, dev), to_tensor(&x1, dev));
        let tt = Tensor::<1>::from_data(TensorData::new(t, [n]), dev);
        let tc = tt.clone().reshape([n, 1]);
        let xt = b.clone() * tc.clone() + a.clone() * (tc.neg() + 1.0);
        Ok((net.forward(xt, tt) - (b - a)).square().sum_dim(1).mean())
    })?;
    Ok((VelocityNet::new(net, dim), losses))
}

/// Couple `n` seeded prior points with their images under `v` (the reflow coupling).
pub fn reflow_pairs(
    v: &impl VelocityField,
    n: usize,
    solver: Solver,
    seed: u64,
) -> Result<(Batch, Batch)> {
    let z0 = Batch::gaussian(n, v.dim(), &mut StdRng::seed_from_u64(seed));
    let (z1, _) = transport(v, z0.clone(), solver)?;
    Ok((z0, z1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_gaussian_velocity_transports_and_is_curved() {
        let v = GaussianVelocity {
            mean: vec![2.0],
            std: vec![0.5],
        };
        let z0 = Batch::gaussian(20000, 1, &mut StdRng::seed_from_u64(1));
        let (z1, _) = transport(
            &v,
            z0.clone(),
            Solver::Rk45 {
                rtol: 1e-8,
                atol: 1e-8,
            },
        )
        .unwrap();
        let (m, c) = (z1.mean(), z1.covariance());
        assert!(
            (m[0] - 2.0).abs() < 0.02 && (c[0] - 0.25).abs() < 0.01,
            "{m:?} {c:?}"
        );
        // The independent coupling's flow is curved (S > 0); for a straight field S = 0.
        let s = straightness(&v, &z0, 100).unwrap();
        assert!(s > 0.01, "{s}");
        struct Constant;
        impl VelocityField for Constant {
            fn dim(&self) -> usize {
                1
            }
            fn velocity(&self, x: &Batch, _t: f64) -> Result<Batch> {
                Ok(Batch {
                    data: vec![3.0; x.data.len()],
                    ..x.clone()
                })
            }
        }
        assert!(straightness(&Constant, &z0, 10).unwrap() < 1e-20);
        assert!(straightness(&v, &z0, 0).is_err());
    }
}
