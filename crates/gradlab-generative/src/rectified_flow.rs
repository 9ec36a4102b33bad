//! Rectified flow ("Flow Straight and Fast: Learning to Generate and Transfer Data with
//! Rectified Flow", Liu, Gong & Liu, ICLR 2023; gnobitab/RectifiedFlow): for a coupling (X₀, X₁)
//! (X₀ noise, X₁ data, t from 0 to 1), learn
//!
//! v = argmin E‖(X₁ − X₀) − v(X_t, t)‖²,   X_t = t X₁ + (1 − t) X₀,   t ~ U(t_ε, 1),
//!
//! and transport by dZ/dt = v(Z, t) (on tensors of any shape, examples first). Reflow trains again on the pairs (Z₀, Z₁) the flow itself
//! produced, which straightens the paths; straightness is S = ∫₀¹ E‖(Z₁ − Z₀) − Ż_t‖² dt (0 for
//! straight paths, where one Euler step is exact). One-step distillation fits v(Z₀, 0) ≈ Z₁ − Z₀.
//!
//! [`GaussianVelocity`] is the exact velocity for independent Gaussian endpoints in every
//! coordinate, N(0, 1) → N(μ, s²): v(x, t) = μ + (t s² − (1 − t))/((1 − t)² + t² s²)·(x − tμ).

use crate::ode::{Solver, integrate};
use crate::sampling::{StepObserver, Unobserved};
use crate::score::{check_width, rows};
use crate::training::{TrainSettings, fit_net, time_mlp, to_net_input};
use crate::{Result, invalid};
use burn::prelude::*;
use gradlab_nets::TimeNet;
use gradlab_nets::time_mlp::TimeMlp;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A velocity field v(x, t), t ∈ [0, 1] from noise to data, on tensors (examples first).
pub trait VelocityField<const D: usize> {
    /// v at every example of `x` at time t, of the shape of `x`.
    fn velocity(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>>;
}

/// The exact rectified-flow velocity between independent N(0, 1) and N(μ_k, s_k²) per coordinate.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianVelocity {
    /// Target means.
    pub mean: Vec<f64>,
    /// Target standard deviations.
    pub std: Vec<f64>,
}

impl<const D: usize> VelocityField<D> for GaussianVelocity {
    fn velocity(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (flat, dims) = rows(x);
        let d = flat.dims()[1];
        if d != self.mean.len() || d != self.std.len() {
            return invalid(format!(
                "examples of {d} values for a Gaussian target of dimension {}",
                self.mean.len()
            ));
        }
        let gain: Vec<f64> = self
            .std
            .iter()
            .map(|s| {
                let s2 = s * s;
                (t * s2 - (1.0 - t)) / ((1.0 - t).powi(2) + t * t * s2)
            })
            .collect();
        let (dev, dtype) = (flat.device(), flat.dtype());
        let m = gradlab_core::bridge::from_host(&self.mean, [1, d], &dev)?.cast(dtype);
        let gain = gradlab_core::bridge::from_host(&gain, [1, d], &dev)?.cast(dtype);
        Ok(((flat - m.clone() * t) * gain + m).reshape(dims))
    }
}

/// Transport `z0` from t = 0 to t = 1 along `v` with `solver`; returns Z₁ and the NFE.
pub fn transport<const D: usize>(
    v: &impl VelocityField<D>,
    z0: Tensor<D>,
    solver: Solver,
) -> Result<(Tensor<D>, usize)> {
    transport_observed(v, z0, solver, &mut Unobserved)
}

/// [`transport`], showing `observer` every step.
pub fn transport_observed<const D: usize>(
    v: &impl VelocityField<D>,
    z0: Tensor<D>,
    solver: Solver,
    observer: &mut impl StepObserver<D>,
) -> Result<(Tensor<D>, usize)> {
    let rhs = |x: &Tensor<D>, t: f64| v.velocity(x.clone(), t);
    integrate(rhs, z0, 0.0, 1.0, solver, observer)
}

/// Straightness S = ∫ E‖(Z₁ − Z₀) − v(Z_t, t)‖² dt along Euler paths of `steps` steps from `z0`
/// (a Riemann sum over the steps; Z₁ the Euler endpoint).
pub fn straightness<const D: usize>(
    v: &impl VelocityField<D>,
    z0: &Tensor<D>,
    steps: usize,
) -> Result<f64> {
    if steps == 0 {
        return invalid("straightness needs at least 1 step");
    }
    let h = 1.0 / steps as f64;
    let mut z = z0.clone();
    let mut velocities = Vec::with_capacity(steps);
    for i in 0..steps {
        let vel = v.velocity(z.clone(), i as f64 * h)?;
        z = z + vel.clone() * h;
        velocities.push(vel);
    }
    let n = z0.dims()[0].max(1) as f64;
    let chord = z - z0.clone();
    let mut total = 0.0;
    for vel in velocities {
        let gap = (chord.clone() - vel).square().sum();
        total += gradlab_core::bridge::scalar_to_host(gap)? / n;
    }
    Ok(total * h)
}

/// A time-conditioned network (the MLP for 2D data, a U-Net for images) as a velocity field; its
/// f32 output takes the input's dtype. Sample with the network on the inner device.
#[derive(Debug, Clone)]
pub struct VelocityNet<N: TimeNet = TimeMlp> {
    /// The network.
    pub net: N,
}

impl<N: TimeNet> VelocityNet<N> {
    /// Wrap a network.
    pub fn new(net: N) -> Self {
        Self { net }
    }
}

impl<const D: usize, N: TimeNet> VelocityField<D> for VelocityNet<N> {
    fn velocity(&self, x: Tensor<D>, t: f64) -> Result<Tensor<D>> {
        let (flat, dims) = rows(x);
        let [n, d] = flat.dims();
        check_width(&self.net, d)?;
        let dtype = flat.dtype();
        let input = flat.cast(burn::tensor::DType::F32);
        let times = Tensor::<1>::full([n], t as f32, &input.device());
        let out = self.net.forward_time(input, times).cast(dtype);
        Ok(out.reshape(dims))
    }
}

/// Train a time-conditioned MLP of the settings' size by flow matching on couplings drawn by
/// `pairs(n, seed) -> (X₀, X₁)`; returns the field (its network on the inner device) and the loss
/// per step. For 1-rectified flow draw X₀ and X₁ independently; for reflow return fixed pairs
/// (Z₀, Z₁) generated by the previous flow.
pub fn train_velocity(
    dim: usize,
    pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(VelocityNet, Vec<f64>)> {
    fit_flow(time_mlp(dim, settings), dim, pairs, settings, false)
}

/// One-step distillation: fit v(Z₀, 0) ≈ Z₁ − Z₀ on the pairs (a time-conditioned MLP, trained
/// at t = 0 only; sample it with one Euler step).
pub fn distill_velocity(
    dim: usize,
    pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(VelocityNet, Vec<f64>)> {
    fit_flow(time_mlp(dim, settings), dim, pairs, settings, true)
}

/// [`train_velocity`] for any time-conditioned network built on the autodiff device (e.g. a
/// [`gradlab_nets::unet::UNet`] for images, with `dim` = c·h·w).
pub fn train_velocity_model<N: TimeNet>(
    net: N,
    dim: usize,
    pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
) -> Result<(VelocityNet<N>, Vec<f64>)> {
    fit_flow(net, dim, pairs, settings, false)
}

/// Flow matching ‖(X₁ − X₀) − v(X_t, t)‖² with t ~ U(10⁻³, 1), or t = 0 when distilling.
fn fit_flow<N: TimeNet>(
    net: N,
    dim: usize,
    mut pairs: impl FnMut(usize, u64) -> (Tensor<2>, Tensor<2>),
    settings: &TrainSettings,
    distill: bool,
) -> Result<(VelocityNet<N>, Vec<f64>)> {
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xF10);
    let (net, losses) = fit_net(net, settings, |net, step, dev| {
        let (x0, x1) = pairs(settings.batch, settings.seed.wrapping_add(step as u64));
        let ([n, d0], [n1, d1]) = (x0.dims(), x1.dims());
        if d0 != dim || d1 != dim || n != n1 {
            return invalid("the coupling gave batches of the wrong shape");
        }
        let t: Vec<f32> = (0..n)
            .map(|_| {
                if distill {
                    0.0
                } else {
                    1e-3 + (1.0 - 1e-3) * rng.random::<f32>()
                }
            })
            .collect();
        let (a, b) = (to_net_input(x0, dev)?, to_net_input(x1, dev)?);
        let tt = Tensor::<1>::from_data(TensorData::new(t, [n]), dev);
        let tc = tt.clone().reshape([n, 1]);
        let xt = b.clone() * tc.clone() + a.clone() * (tc.neg() + 1.0);
        Ok((net.forward_time(xt, tt) - (b - a))
            .square()
            .sum_dim(1)
            .mean())
    })?;
    Ok((VelocityNet::new(net.valid()), losses))
}

/// Couple `n` seeded prior points of dimension `dim` with their images under `v` (the reflow
/// coupling).
pub fn reflow_pairs(
    v: &impl VelocityField<2>,
    n: usize,
    dim: usize,
    solver: Solver,
    seed: u64,
) -> Result<(Tensor<2>, Tensor<2>)> {
    let z0 = crate::points::normal(n, dim, seed);
    let (z1, _) = transport(v, z0.clone(), solver)?;
    Ok((z0, z1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::{moments, normal};

    #[test]
    fn exact_gaussian_velocity_transports_and_is_curved() {
        let v = GaussianVelocity {
            mean: vec![2.0],
            std: vec![0.5],
        };
        let z0 = normal(20000, 1, 1);
        let solver = Solver::Rk45 {
            rtol: 1e-8,
            atol: 1e-8,
        };
        let (z1, _) = transport(&v, z0.clone(), solver).unwrap();
        let (m, c) = moments(&z1).unwrap();
        assert!(
            (m[0] - 2.0).abs() < 0.02 && (c[0] - 0.25).abs() < 0.01,
            "{m:?} {c:?}"
        );
        // The independent coupling's flow is curved (S > 0); for a straight field S = 0.
        let s = straightness(&v, &z0, 100).unwrap();
        assert!(s > 0.01, "{s}");
        struct Constant;
        impl VelocityField<2> for Constant {
            fn velocity(&self, x: Tensor<2>, _t: f64) -> Result<Tensor<2>> {
                Ok(x.zeros_like() + 3.0)
            }
        }
        assert!(straightness(&Constant, &z0, 10).unwrap() < 1e-20);
        assert!(straightness(&v, &z0, 0).is_err());
        assert!(VelocityField::<2>::velocity(&v, normal(3, 2, 0), 0.5).is_err());
    }
}
