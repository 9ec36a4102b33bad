//! A burn classifier's training loss as a [`gradlab_core::problem`] problem over flat parameter
//! vectors (in the order of [`gradlab_core::flat::flatten`]): the mean loss over fixed examples,
//! its gradient and per-example gradients ([`ModelGradient`]: [`Cost`], [`Gradient`],
//! [`PerExampleGradients`]; central-difference HVPs through [`crate::OracleHvp`]) and the logits
//! with their vector–Jacobian products ([`ModelOutputs`]: [`Outputs`], for
//! [`crate::GaussNewton`]).
//!
//! The models are f32, so the differences use a relative step of about 1e-3 (rounding ≈ 1e-4 of
//! ‖H‖): the outliers of a spectrum are resolved, eigenvalues much below 1e-4·λ_max are not. ReLU
//! gates and max-pool winners are frozen at the point of interest ([`gradlab_nets::kinks`]), so
//! the differences converge to the Hessian that double-backward autodiff (PyHessian) computes.

use crate::CurvatureError;
use burn::optim::GradientsParams;
use burn::prelude::*;
use gradlab_core::problem::{
    Cost, Gradient, Outputs, PerExampleGradients, Problem, check_finite, check_point,
};
use gradlab_core::{CoreError, Result, flat};
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

    /// Gradients of the network with the ReLU gates and max-pool winners it has at `theta`: the
    /// same gradient at `theta`, and its central differences converge to the Hessian there.
    pub fn frozen_at(mut self, theta: &[f64]) -> std::result::Result<Self, CurvatureError> {
        self.kinks = Some(record_kinks(&self.model, theta, &self.x)?);
        Ok(self)
    }
}

/// The kinks of `model` loaded with `theta` on the inputs `x`.
fn record_kinks<M: Net>(model: &M, theta: &[f64], x: &Tensor<2>) -> Result<Kinks> {
    let model = flat::load_host(model.clone(), theta)?;
    Ok(kinks::record(|| model.forward(x.clone())).1)
}

/// `f` under the replayed kinks, if any.
fn with_kinks<R>(k: &Option<Kinks>, f: impl FnOnce() -> R) -> R {
    match k {
        Some(k) => kinks::replay(k, f),
        None => f(),
    }
}

impl<M: Net> Problem for ModelGradient<M> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }
}

impl<M: Net> Cost for ModelGradient<M> {
    /// The mean loss at `theta`.
    fn cost(&self, theta: &[f64]) -> Result<f64> {
        check_point(self, theta)?;
        let model = flat::load_host(self.model.clone(), theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        let v = self
            .loss
            .forward(logits, self.y.clone())
            .into_scalar::<f64>();
        check_finite("loss", &[v])?;
        Ok(v)
    }
}

impl<M: Net> Gradient for ModelGradient<M> {
    fn gradient(&self, theta: &[f64]) -> Result<Vec<f64>> {
        check_point(self, theta)?;
        let model = flat::load_host(self.model.clone(), theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        let loss = self.loss.forward(logits, self.y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let g = flat::flat_grads_host(&model, &grads)?;
        check_finite("gradient", &g)?;
        Ok(g)
    }
}

impl<M: Net> PerExampleGradients for ModelGradient<M> {
    fn examples(&self) -> usize {
        self.x.dims()[0]
    }

    /// The gradients of each example's cross-entropy ([`Net::per_example_grads`]), under the
    /// frozen kinks if any; an error for another loss.
    fn example_gradients(&self, theta: &[f64], idx: &[usize]) -> Result<Vec<f64>> {
        check_point(self, theta)?;
        if self.loss != LossKind::CrossEntropy {
            return Err(CoreError::Failed(format!(
                "per-example gradients are those of the cross-entropy, not of {:?}",
                self.loss
            )));
        }
        let n = self.examples();
        if let Some(bad) = idx.iter().find(|i| **i >= n) {
            return Err(CoreError::Failed(format!(
                "example {bad} of a problem of {n} examples"
            )));
        }
        let model = flat::load_host(self.model.clone(), theta)?;
        let rows: Vec<i64> = idx.iter().map(|i| *i as i64).collect();
        let rows = Tensor::<1, Int>::from_data(rows.as_slice(), &self.x.device());
        let (x, y) = (
            self.x.clone().select(0, rows.clone()),
            self.y.clone().select(0, rows),
        );
        let g = with_kinks(&self.kinks, || model.per_example_grads(x, y))?;
        check_finite("per-example gradient", &g)?;
        Ok(g)
    }
}

/// A model's logits over a fixed set of examples as [`Outputs`], for Gauss–Newton products
/// ([`crate::GaussNewton`]) of any [`Net`].
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

    fn logits(&self, theta: &[f64]) -> Result<(M, Tensor<2>)> {
        check_point(self, theta)?;
        let model = flat::load_host(self.model.clone(), theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        Ok((model, logits))
    }
}

impl<M: Net> Problem for ModelOutputs<M> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }
}

impl<M: Net> Outputs for ModelOutputs<M> {
    fn width(&self) -> usize {
        self.classes
    }

    fn outputs(&self, theta: &[f64]) -> Result<Vec<f64>> {
        let (_, logits) = self.logits(theta)?;
        let f = gradlab_core::bridge::to_host(logits)?;
        check_finite("outputs", &f)?;
        Ok(f)
    }

    fn outputs_vjp(&self, theta: &[f64], u: &[f64]) -> Result<Vec<f64>> {
        let (model, logits) = self.logits(theta)?;
        let u: Vec<f32> = u.iter().map(|v| *v as f32).collect();
        let weights = gradlab_core::bridge::from_host_f32(&u, logits.dims(), &logits.device())?;
        let grads = GradientsParams::from_grads((logits * weights).sum().backward(), &model);
        let g = flat::flat_grads_host(&model, &grads)?;
        check_finite("output vector–Jacobian product", &g)?;
        Ok(g)
    }
}
