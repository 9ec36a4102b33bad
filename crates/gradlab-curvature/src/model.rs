//! Curvature oracles of a burn classifier's training loss at any flat parameter vector (in the
//! order of [`gradlab_core::flat::flatten`]): the gradient of the mean loss over fixed examples
//! ([`ModelGradient`], for central-difference HVPs through [`crate::OracleHvp`]) and the logits
//! with their vector–Jacobian products ([`ModelOutputs`], for [`crate::GaussNewton`]).
//!
//! The models are f32, so the differences use a relative step of about 1e-3 (rounding ≈ 1e-4 of
//! ‖H‖): the outliers of a spectrum are resolved, eigenvalues much below 1e-4·λ_max are not. ReLU
//! gates and max-pool winners are frozen at the point of interest ([`gradlab_nets::kinks`]), so
//! the differences converge to the Hessian that double-backward autodiff (PyHessian) computes.

use crate::{CurvatureError, GradientOracle, OutputOracle};
use burn::optim::GradientsParams;
use burn::prelude::*;
use gradlab_core::flat;
use gradlab_data::ImageSet;
use gradlab_data::batch::to_tensors;
use gradlab_nets::kinks::{self, Kinks};
use gradlab_nets::{LossKind, Net, autodiff_device};

/// The gradient of a model's mean loss over a fixed set of examples, at any parameter vector (in
/// the order of [`gradlab_core::flat::flatten`]).
///
/// For Hessian-vector products of a ReLU or max-pool network, freeze its kinks at the point of
/// interest ([`ModelGradient::frozen_at`]): differences of the plain gradient do not converge
/// there ([`gradlab_nets::kinks`]).
pub struct ModelGradient<M: Net> {
    model: M,
    x: Tensor<2>,
    y: Tensor<1, Int>,
    loss: LossKind,
    kinks: Option<Kinks>,
}

impl<M: Net> ModelGradient<M> {
    /// `model` (on the autodiff device) on the examples `idx` of `set`.
    pub fn new(model: M, set: &ImageSet, idx: &[usize], loss: LossKind) -> Self {
        let (x, y) = to_tensors(set, idx, &autodiff_device());
        Self {
            model,
            x,
            y,
            loss,
            kinks: None,
        }
    }

    /// The mean loss at `theta`.
    pub fn value(&self, theta: &[f64]) -> std::result::Result<f64, CurvatureError> {
        let model = load_flat(&self.model, theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        let v = self
            .loss
            .forward(logits, self.y.clone())
            .into_scalar::<f64>();
        if v.is_finite() {
            Ok(v)
        } else {
            Err(CurvatureError::NonFinite { what: "loss" })
        }
    }

    /// Gradients of the network with the ReLU gates and max-pool winners it has at `theta`: the
    /// same gradient at `theta`, and its central differences converge to the Hessian there.
    pub fn frozen_at(mut self, theta: &[f64]) -> std::result::Result<Self, CurvatureError> {
        self.kinks = Some(record_kinks(&self.model, theta, &self.x)?);
        Ok(self)
    }
}

/// The kinks of `model` loaded with `theta` on the inputs `x`.
fn record_kinks<M: Net>(
    model: &M,
    theta: &[f64],
    x: &Tensor<2>,
) -> std::result::Result<Kinks, CurvatureError> {
    let model = load_flat(model, theta)?;
    Ok(kinks::record(|| model.forward(x.clone())).1)
}

fn load_flat<M: Net>(model: &M, theta: &[f64]) -> std::result::Result<M, CurvatureError> {
    let expected = model.num_params();
    if theta.len() != expected {
        return Err(CurvatureError::Shape {
            expected,
            got: theta.len(),
        });
    }
    Ok(flat::load_host(model.clone(), theta)?)
}

/// `f` under the replayed kinks, if any.
fn with_kinks<R>(k: &Option<Kinks>, f: impl FnOnce() -> R) -> R {
    match k {
        Some(k) => kinks::replay(k, f),
        None => f(),
    }
}

impl<M: Net> GradientOracle for ModelGradient<M> {
    fn gradient(&self, theta: &[f64]) -> std::result::Result<Vec<f64>, CurvatureError> {
        let model = load_flat(&self.model, theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        let loss = self.loss.forward(logits, self.y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let g = flat::flat_grads_host(&model, &grads)?;
        if g.iter().all(|v| v.is_finite()) {
            Ok(g)
        } else {
            Err(CurvatureError::NonFinite { what: "gradient" })
        }
    }
}

/// A model's logits over a fixed set of examples as an [`OutputOracle`], for Gauss–Newton
/// products ([`gradlab_curvature::GaussNewton`]) of any [`Net`].
pub struct ModelOutputs<M: Net> {
    model: M,
    x: Tensor<2>,
    classes: usize,
    kinks: Option<Kinks>,
}

impl<M: Net> ModelOutputs<M> {
    /// `model` (on the autodiff device) on the examples `idx` of `set`.
    pub fn new(model: M, set: &ImageSet, idx: &[usize]) -> Self {
        let (x, _) = to_tensors(set, idx, &autodiff_device());
        Self {
            model,
            x,
            classes: set.classes,
            kinks: None,
        }
    }

    /// Outputs with the kinks the network has at `theta` (see [`ModelGradient::frozen_at`]):
    /// the output differences are then exact directional derivatives up to O(h²).
    pub fn frozen_at(mut self, theta: &[f64]) -> std::result::Result<Self, CurvatureError> {
        self.kinks = Some(record_kinks(&self.model, theta, &self.x)?);
        Ok(self)
    }

    fn logits(&self, theta: &[f64]) -> std::result::Result<(M, Tensor<2>), CurvatureError> {
        let model = load_flat(&self.model, theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        Ok((model, logits))
    }
}

impl<M: Net> OutputOracle for ModelOutputs<M> {
    fn outputs(&self, theta: &[f64]) -> std::result::Result<Vec<f64>, CurvatureError> {
        let (_, logits) = self.logits(theta)?;
        Ok(gradlab_core::bridge::to_host(logits)?)
    }

    fn vjp(&self, theta: &[f64], u: &[f64]) -> std::result::Result<Vec<f64>, CurvatureError> {
        let (model, logits) = self.logits(theta)?;
        let u: Vec<f32> = u.iter().map(|v| *v as f32).collect();
        let weights = gradlab_core::bridge::from_host_f32(&u, logits.dims(), &logits.device())?;
        let grads = GradientsParams::from_grads((logits * weights).sum().backward(), &model);
        Ok(flat::flat_grads_host(&model, &grads)?)
    }

    fn classes(&self) -> usize {
        self.classes
    }
}
