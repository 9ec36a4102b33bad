//! FlowChef (Patel et al., "Steering Rectified Flow Models in the Vector Field for Controlled
//! Image Generation", ICCV 2025), as FlowChef/FlowChef has it
//! (`inverseproblems/pixel_models/rfpp/generate_inverseproblems_flowchef.py`), and the DPS-style
//! baseline of the same folder (`generate_inverseproblems_dps.py`).
//!
//! The official code runs t = 1 (noise) → 0 (data) with x̂₀ = z − t·v; gradlab's rectified flow
//! runs t = 0 (noise) → 1 (data), so here x̂ = z + (1 − t)·v. On the Euler grid t_i = i/N:
//!
//! - **FlowChef** (gradient skipping): v = v(z, t_i) once, without a graph; unless i is the last
//!   step, x̂ = z + (1 − t_i)v with v held constant, z ← z − s·∇_{x̂}L(x̂) (∂x̂/∂z = I: no
//!   backpropagation through the network); then z ← z + v·Δt with the v from before the update.
//! - **DPS as coded**: v = v(z, t_i) with a graph, x̂ = z + (1 − t_i)v(z), g = ∇_z L through the
//!   network, z ← z − s·g and v ← v + s·g, then z ← z + v·Δt — the official `vt ← vt − s·g` with
//!   its v = −v here and its Δt < 0: both move z by −s·g(1 − Δt). (The official code also evaluates v
//!   once more without a graph, for logging only; that evaluation is skipped here, which makes the
//!   baseline cheaper, not dearer.)
//!
//! L is a [`GuidanceLoss`] on x̂: [`MaskedLinear`] is the official inverse-problem loss,
//! mean((A x̂ − y)² ⊙ mask) over all elements.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_generative::flowchef::{FlowChef, MaskedLinear};
//! use gradlab_generative::rectified_flow::GaussianVelocity;
//! // The exact flow N(0, I) → N(0, I) in 2D; guidance pulls x₁ to the observed 1.
//! let v = GaussianVelocity { mean: vec![0.0, 0.0], std: vec![1.0, 1.0] };
//! let loss = MaskedLinear::observe_coordinates(2, &[0], &vec![1.0; 100]).unwrap();
//! let z0 = gradlab_generative::points::normal(100, 2, 0);
//! let (x, nfe) = FlowChef::new(50, 40.0).unwrap().sample(&v, z0, &loss).unwrap();
//! let first: f64 = gradlab_core::bridge::scalar_to_host(x.slice([0..100, 0..1]).mean()).unwrap();
//! assert!((first - 1.0).abs() < 0.1 && nfe == 50);
//! ```

use crate::rectified_flow::VelocityField;
use crate::{GenError, Result, invalid};
use burn::prelude::*;
use gradlab_core::bridge::{copy_to, from_host, to_host};

/// A differentiable loss L(x̂) on a batch of predictions `[n, d]` (any device, autodiff included).
pub trait GuidanceLoss {
    /// L for the batch, a one-element tensor on `x0_hat`'s device.
    fn loss(&self, x0_hat: Tensor<2>) -> Result<Tensor<1>>;

    /// ∇L at `x0_hat` (inner device): by autodiff on an f64 copy unless a loss knows its closed
    /// form.
    fn gradient(&self, x0_hat: &Tensor<2>) -> Result<Tensor<2>> {
        autodiff_gradient(self, x0_hat)
    }
}

/// mean over all elements of ((x̂ Aᵀ − y)² ⊙ mask): a linear measurement A (`k × d`) of each
/// example, its observations y (`n × k`) and a 0/1 (or weighting) mask (`n × k`).
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedLinear {
    a: Vec<f64>,
    y: Vec<f64>,
    mask: Vec<f64>,
    n: usize,
    k: usize,
    d: usize,
}

impl MaskedLinear {
    /// A (`k × d`, row-major), observations y (`n × k`), mask (`n × k`).
    pub fn new(a: Vec<f64>, k: usize, d: usize, y: Vec<f64>, mask: Vec<f64>) -> Result<Self> {
        if k == 0 || d == 0 || a.len() != k * d {
            return invalid(format!(
                "the measurement matrix has {} values, not {k} × {d}",
                a.len()
            ));
        }
        if y.is_empty() || !y.len().is_multiple_of(k) {
            return invalid(format!(
                "{} observations are not a whole number of {k}-value rows",
                y.len()
            ));
        }
        if mask.len() != y.len() {
            return invalid(format!(
                "a mask of {} values for {} observations",
                mask.len(),
                y.len()
            ));
        }
        if a.iter().chain(&y).chain(&mask).any(|v| !v.is_finite()) {
            return invalid("the measurement, observations and mask must be finite");
        }
        let n = y.len() / k;
        Ok(Self {
            a,
            y,
            mask,
            n,
            k,
            d,
        })
    }

    /// Observe coordinates `coords` of `d`-dimensional examples: y holds n·|coords| values,
    /// the mask is all ones (2D inpainting: observe x₁ only).
    pub fn observe_coordinates(d: usize, coords: &[usize], y: &[f64]) -> Result<Self> {
        if let Some(c) = coords.iter().find(|c| **c >= d) {
            return invalid(format!("coordinate {c} of a {d}-dimensional example"));
        }
        let k = coords.len();
        let mut a = vec![0.0; k * d];
        for (r, c) in coords.iter().enumerate() {
            a[r * d + c] = 1.0;
        }
        Self::new(a, k, d, y.to_vec(), vec![1.0; y.len()])
    }

    /// ‖A x − y‖ per example (the mask applied), for a batch of results.
    pub fn residuals(&self, x: &Tensor<2>) -> Result<Vec<f64>> {
        let r = self.masked_residual(x.clone())?;
        let host = to_host(r)?;
        Ok(host
            .chunks(self.k)
            .map(|c| c.iter().map(|v| v * v).sum::<f64>().sqrt())
            .collect())
    }

    /// (A x − y) ⊙ √mask as `[n, k]` on `x`'s device.
    fn masked_residual(&self, x: Tensor<2>) -> Result<Tensor<2>> {
        let [n, d] = x.dims();
        if n != self.n || d != self.d {
            return invalid(format!(
                "a batch of {:?} for a loss over {} examples of dimension {}",
                [n, d],
                self.n,
                self.d
            ));
        }
        let (dev, dtype) = (x.device(), x.dtype());
        let at =
            from_host(&transpose(&self.a, self.k, self.d), [self.d, self.k], &dev)?.cast(dtype);
        let y = from_host(&self.y, [self.n, self.k], &dev)?.cast(dtype);
        let m: Vec<f64> = self.mask.iter().map(|v| v.abs().sqrt()).collect();
        let m = from_host(&m, [self.n, self.k], &dev)?.cast(dtype);
        Ok((x.matmul(at) - y) * m)
    }
}

fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols)
        .flat_map(|c| (0..rows).map(move |r| a[r * cols + c]))
        .collect()
}

impl GuidanceLoss for MaskedLinear {
    fn loss(&self, x0_hat: Tensor<2>) -> Result<Tensor<1>> {
        Ok(self.masked_residual(x0_hat)?.square().mean())
    }

    /// 2/(n k) · ((x̂ Aᵀ − y) ⊙ mask) A.
    fn gradient(&self, x0_hat: &Tensor<2>) -> Result<Tensor<2>> {
        let r = self.masked_residual(x0_hat.clone())?;
        let (dev, dtype) = (r.device(), r.dtype());
        let m: Vec<f64> = self.mask.iter().map(|v| v.abs().sqrt()).collect();
        let m = from_host(&m, [self.n, self.k], &dev)?.cast(dtype);
        let a = from_host(&self.a, [self.k, self.d], &dev)?.cast(dtype);
        Ok((r * m).matmul(a) * (2.0 / (self.n * self.k) as f64))
    }
}

/// ∇_x L(x) for a batch on the inner device, by autodiff on a copy (f64).
fn autodiff_gradient<L: GuidanceLoss + ?Sized>(loss: &L, x: &Tensor<2>) -> Result<Tensor<2>> {
    let ad = Device::flex().autodiff();
    let xa = copy_to(x.clone(), &ad)?.require_grad();
    let l = loss.loss(xa.clone())?;
    let g = xa
        .grad(&l.backward())
        .ok_or_else(|| GenError::Invalid("the guidance loss does not depend on x̂".into()))?;
    Ok(copy_to(g, &x.device())?.cast(x.dtype()))
}

fn check(steps: usize, scale: f64) -> Result<()> {
    if steps == 0 {
        return invalid("guided sampling needs at least 1 step");
    }
    if !(scale.is_finite() && scale >= 0.0) {
        return invalid(format!(
            "the guidance scale must be finite and ≥ 0, got {scale}"
        ));
    }
    Ok(())
}

fn check_finite(x: &Tensor<2>, what: &'static str, step: usize, t: f64) -> Result<()> {
    if crate::ode::all_finite(x) {
        Ok(())
    } else {
        Err(GenError::NonFinite { what, step, t })
    }
}

/// FlowChef's sampler: `steps` Euler steps with gradient-skipping guidance of scale `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowChef {
    steps: usize,
    scale: f64,
}

impl FlowChef {
    /// N Euler steps, guidance scale s (the official scripts: N = 100, s = 500, with the loss a
    /// mean over the operator's output elements — 3·64·64 for inpainting and deblurring).
    pub fn new(steps: usize, scale: f64) -> Result<Self> {
        check(steps, scale)?;
        Ok(Self { steps, scale })
    }

    /// Guide from the noise `z0` (`[n, d]`, inner device); returns the samples and the NFE.
    pub fn sample(
        &self,
        v: &impl VelocityField<2>,
        z0: Tensor<2>,
        loss: &impl GuidanceLoss,
    ) -> Result<(Tensor<2>, usize)> {
        let dt = 1.0 / self.steps as f64;
        let mut z = z0;
        for i in 0..self.steps {
            let t = i as f64 * dt;
            let vel = v.velocity(z.clone(), t)?;
            check_finite(&vel, "velocity", i, t)?;
            if i + 1 < self.steps {
                let x_hat = z.clone() + vel.clone() * (1.0 - t);
                z = z - loss.gradient(&x_hat)? * self.scale;
            }
            z = z + vel * dt;
            check_finite(&z, "FlowChef state", i, t + dt)?;
        }
        Ok((z, self.steps))
    }
}

/// The DPS-style baseline as coded: backpropagation through the velocity network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dps {
    steps: usize,
    scale: f64,
}

impl Dps {
    /// N Euler steps, guidance scale s (the official scripts: s = 50).
    pub fn new(steps: usize, scale: f64) -> Result<Self> {
        check(steps, scale)?;
        Ok(Self { steps, scale })
    }

    /// Guide from `z0`; `v` must run on the autodiff device (its network moved there), since the
    /// gradient flows through it. Returns the samples (on the inner device) and the NFE (forward
    /// passes; each guided step adds a backward pass through the network).
    pub fn sample(
        &self,
        v: &impl VelocityField<2>,
        z0: Tensor<2>,
        loss: &impl GuidanceLoss,
    ) -> Result<(Tensor<2>, usize)> {
        let ad = Device::flex().autodiff();
        let (out_dev, dtype) = (z0.device(), z0.dtype());
        let dt = 1.0 / self.steps as f64;
        let mut z = copy_to(z0, &ad)?;
        for i in 0..self.steps {
            let t = i as f64 * dt;
            if i + 1 < self.steps {
                let zg = z.clone().require_grad();
                let vel = v.velocity(zg.clone(), t)?;
                let l = loss.loss(zg.clone() + vel.clone() * (1.0 - t))?;
                let g = zg.grad(&l.backward()).ok_or_else(|| {
                    GenError::Invalid("the velocity is not on the autodiff device".into())
                })?;
                let g = copy_to(g, &ad)?.cast(dtype) * self.scale;
                let vel = vel.detach() + g.clone();
                z = z.detach() - g + vel * dt;
            } else {
                let vel = v.velocity(z.clone(), t)?.detach();
                z = z.detach() + vel * dt;
            }
            check_finite(&z, "DPS state", i, t + dt)?;
        }
        Ok((copy_to(z, &out_dev)?.cast(dtype), self.steps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rectified_flow::GaussianVelocity;

    /// A velocity that is linear in x with a nonlinear time factor: v = W x · (1 + t) + b.
    struct Linear;
    impl VelocityField<2> for Linear {
        fn velocity(&self, x: Tensor<2>, t: f64) -> Result<Tensor<2>> {
            let dev = x.device();
            let w = from_host(&[0.5, -0.2, 0.1, 0.3], [2, 2], &dev)?.cast(x.dtype());
            Ok(x.matmul(w) * (1.0 + t) + 0.1)
        }
    }

    #[test]
    fn the_masked_linear_gradient_is_the_closed_form() {
        // L = mean((x Aᵀ − y)² m) ⇒ ∂L/∂x = 2/(n k) ((x Aᵀ − y) ⊙ m) A, by hand; the loss's own
        // closed form and autodiff of its loss must both give it.
        let loss = MaskedLinear::new(
            vec![1.0, 2.0, 0.0, -1.0, 0.5, 1.0],
            3,
            2,
            vec![0.1, 0.2, 0.3, -0.4, 0.0, 0.5],
            vec![1.0, 0.0, 2.0, 1.0, 1.0, 0.5],
        )
        .unwrap();
        let x = [0.3, -0.6, 1.1, 0.4];
        let xt = from_host(&x, [2, 2], &Device::flex()).unwrap();
        let auto = to_host(autodiff_gradient(&loss, &xt).unwrap()).unwrap();
        let g = to_host(loss.gradient(&xt).unwrap()).unwrap();
        for (a, b) in auto.iter().zip(&g) {
            assert!((a - b).abs() < 1e-12, "autodiff {a} vs closed form {b}");
        }
        let a = [[1.0, 2.0], [0.0, -1.0], [0.5, 1.0]];
        let (y, m) = (
            [[0.1, 0.2, 0.3], [-0.4, 0.0, 0.5]],
            [[1.0, 0.0, 2.0], [1.0, 1.0, 0.5]],
        );
        for i in 0..2 {
            for j in 0..2 {
                let mut want = 0.0;
                for r in 0..3 {
                    let res = a[r][0] * x[2 * i] + a[r][1] * x[2 * i + 1] - y[i][r];
                    want += 2.0 / 6.0 * res * m[i][r] * a[r][j];
                }
                assert!(
                    (g[2 * i + j] - want).abs() < 1e-12,
                    "{} vs {want}",
                    g[2 * i + j]
                );
            }
        }
    }

    #[test]
    fn flowchef_skips_the_network_and_dps_goes_through_it() {
        // One guided step from t = 0 by hand: FlowChef moves z by −s·∇L(x̂); DPS by −s·(I + Jᵀ)∇L
        // with J = ∂v/∂z = W(1 + t) — and moves v too.
        let loss = MaskedLinear::observe_coordinates(2, &[0, 1], &[1.0, -1.0]).unwrap();
        let dev = Device::flex();
        let z0 = [0.2, 0.4];
        let (s, n) = (0.3, 2);
        let (fc, _) = FlowChef::new(n, s)
            .unwrap()
            .sample(&Linear, from_host(&z0, [1, 2], &dev).unwrap(), &loss)
            .unwrap();
        let (dps, _) = Dps::new(n, s)
            .unwrap()
            .sample(&Linear, from_host(&z0, [1, 2], &dev).unwrap(), &loss)
            .unwrap();
        let w = [[0.5, -0.2], [0.1, 0.3]];
        let v = |z: [f64; 2], t: f64| {
            [
                (z[0] * w[0][0] + z[1] * w[1][0]) * (1.0 + t) + 0.1,
                (z[0] * w[0][1] + z[1] * w[1][1]) * (1.0 + t) + 0.1,
            ]
        };
        let v0 = v(z0, 0.0);
        let xh = [z0[0] + v0[0], z0[1] + v0[1]];
        let gx = [(xh[0] - 1.0), (xh[1] + 1.0)]; // ∇ mean over 2 elements of squares
        // FlowChef: step 0 guided, step 1 (the last) plain Euler.
        let z1 = [
            z0[0] - s * gx[0] + 0.5 * v0[0],
            z0[1] - s * gx[1] + 0.5 * v0[1],
        ];
        let v1 = v(z1, 0.5);
        let want_fc = [z1[0] + 0.5 * v1[0], z1[1] + 0.5 * v1[1]];
        // DPS: ∇_z = (I + J)ᵀ-product: g_j = gx_j + Σ_k J_kj gx_k with J_kj = ∂v_k/∂z_j = w[j][k].
        let gz = [
            gx[0] + w[0][0] * gx[0] + w[0][1] * gx[1],
            gx[1] + w[1][0] * gx[0] + w[1][1] * gx[1],
        ];
        // The official vt ← vt − s·g with vt = −v: v ← v + s·g (checked against a NumPy port of
        // the official loop on this field).
        let vd = [v0[0] + s * gz[0], v0[1] + s * gz[1]];
        let z1d = [
            z0[0] - s * gz[0] + 0.5 * vd[0],
            z0[1] - s * gz[1] + 0.5 * vd[1],
        ];
        let v1d = v(z1d, 0.5);
        let want_dps = [z1d[0] + 0.5 * v1d[0], z1d[1] + 0.5 * v1d[1]];
        let (fc, dps) = (to_host(fc).unwrap(), to_host(dps).unwrap());
        for k in 0..2 {
            assert!(
                (fc[k] - want_fc[k]).abs() < 1e-12,
                "FlowChef {fc:?} vs {want_fc:?}"
            );
            assert!(
                (dps[k] - want_dps[k]).abs() < 1e-12,
                "DPS {dps:?} vs {want_dps:?}"
            );
        }
    }

    #[test]
    fn no_guidance_on_the_last_step_and_bad_input_is_refused() {
        // One step: no guidance at all — plain Euler whatever the scale.
        let v = GaussianVelocity {
            mean: vec![1.0, 1.0],
            std: vec![0.5, 0.5],
        };
        let loss = MaskedLinear::observe_coordinates(2, &[0], &[5.0]).unwrap();
        let z = from_host(&[0.1, 0.2], [1, 2], &Device::flex()).unwrap();
        let (a, _) = FlowChef::new(1, 100.0)
            .unwrap()
            .sample(&v, z.clone(), &loss)
            .unwrap();
        let (b, _) =
            crate::rectified_flow::transport(&v, z.clone(), crate::ode::Solver::Euler(1)).unwrap();
        assert_eq!(to_host(a).unwrap(), to_host(b).unwrap());
        assert!(
            FlowChef::new(0, 1.0).is_err()
                && FlowChef::new(5, f64::NAN).is_err()
                && Dps::new(5, -1.0).is_err()
        );
        assert!(MaskedLinear::observe_coordinates(2, &[2], &[1.0]).is_err());
        assert!(MaskedLinear::new(vec![1.0; 3], 2, 2, vec![0.0; 2], vec![1.0; 2]).is_err());
        assert!(MaskedLinear::new(vec![1.0; 4], 2, 2, vec![0.0; 2], vec![1.0; 3]).is_err());
        // A batch of the wrong size for the observations.
        let two = from_host(&[0.1, 0.2, 0.3, 0.4], [2, 2], &Device::flex()).unwrap();
        assert!(
            FlowChef::new(3, 1.0)
                .unwrap()
                .sample(&v, two, &loss)
                .is_err()
        );
    }
}
