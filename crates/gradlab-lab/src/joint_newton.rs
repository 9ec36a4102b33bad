//! Gradient-regularized Newton ("Gradient-Normalized Smoothness for Optimization with Approximate
//! Hessians", arXiv 2506.13710; [`gradlab_optim::grad_norm_smooth`]) as a joint optimizer over all
//! parameters of any [`Net`]: the burn `LBFGS` pattern — flatten the parameters, update them
//! together, write them back — with the Gauss–Newton matrix of the cross-entropy as the Hessian
//! approximation (positive semi-definite, as the method needs; formed densely from Gauss–Newton
//! products, so for models of a few thousand parameters).
//!
//! f(θ) = mean cross-entropy over fixed examples + λ/2‖θ‖², H ≈ G(θ) + λI.

use crate::error::{LabError, Result};
use gradlab_core::CoreError;
use gradlab_core::problem::{Cost, Gradient, Hessian, Problem};
use gradlab_curvature::model::{ModelGradient, ModelOutputs};
use gradlab_curvature::{GaussNewton, HessianVectorProduct, OutputLoss};
use gradlab_data::ImageSet;
use gradlab_nets::Net;
use gradlab_optim::grad_norm_smooth::{GradNormSmooth, Iterate};
use gradlab_train::LossKind;

/// The regularised training loss of a model on fixed examples, with its Gauss–Newton matrix.
pub struct ModelObjective<M: Net> {
    model: M,
    set: ImageSet,
    idx: Vec<usize>,
    grad: ModelGradient<M>,
    l2: f64,
}

impl<M: Net> ModelObjective<M> {
    /// `model` (on the autodiff device) on the examples `idx` of `set`, L2 coefficient `l2` ≥ 0.
    pub fn new(model: M, set: &ImageSet, idx: &[usize], l2: f64) -> Result<Self> {
        if !(l2 >= 0.0 && l2.is_finite()) {
            return Err(LabError::Invalid(format!(
                "L2 coefficient {l2} must be ≥ 0"
            )));
        }
        if idx.is_empty() {
            return Err(LabError::Invalid(
                "the objective needs at least one example".into(),
            ));
        }
        let grad = ModelGradient::new(model.clone(), set, idx, LossKind::CrossEntropy);
        Ok(Self {
            model,
            set: set.clone(),
            idx: idx.to_vec(),
            grad,
            l2,
        })
    }
}

fn failed(e: gradlab_curvature::CurvatureError) -> CoreError {
    match e {
        gradlab_curvature::CurvatureError::Core(c) => c,
        other => CoreError::Failed(other.to_string()),
    }
}

impl<M: Net> Problem for ModelObjective<M> {
    fn dim(&self) -> usize {
        self.model.num_params()
    }
}

impl<M: Net> Cost for ModelObjective<M> {
    fn cost(&self, x: &[f64]) -> gradlab_core::Result<f64> {
        let reg = 0.5 * self.l2 * x.iter().map(|v| v * v).sum::<f64>();
        Ok(self.grad.cost(x)? + reg)
    }
}

impl<M: Net> Gradient for ModelObjective<M> {
    fn gradient(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        let g = self.grad.gradient(x)?;
        Ok(g.iter().zip(x).map(|(g, x)| g + self.l2 * x).collect())
    }
}

impl<M: Net> Hessian for ModelObjective<M> {
    /// G(θ) + λI, row-major (d Gauss–Newton products, kinks frozen at θ).
    fn hessian(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        let d = x.len();
        let mut h = ModelOutputs::new(self.model.clone(), &self.set, &self.idx)
            .frozen_at(x)
            .and_then(|o| GaussNewton::new(o, x.to_vec(), OutputLoss::SoftmaxCrossEntropy, 1e-3))
            .and_then(|g| g.dense())
            .map_err(failed)?;
        // Symmetrise (the products carry O(h²) and rounding asymmetry) and add λI.
        for i in 0..d {
            for j in 0..i {
                let m = 0.5 * (h[i * d + j] + h[j * d + i]);
                h[i * d + j] = m;
                h[j * d + i] = m;
            }
            h[i * d + i] += self.l2;
        }
        Ok(h)
    }
}

/// Run `iters` iterations of gradient-regularized Newton on all parameters of `model` (the
/// examples `idx` of `set`, L2 `l2`); returns the updated model and the iterates.
pub fn fit<M: Net>(
    model: M,
    set: &ImageSet,
    idx: &[usize],
    l2: f64,
    method: &GradNormSmooth,
    iters: usize,
) -> Result<(M, Vec<Iterate>)> {
    let theta: Vec<f64> = gradlab_core::flat::flatten_host(&model)?;
    let objective = ModelObjective::new(model.clone(), set, idx, l2)?;
    let (x, trace) = method.run(&objective, &theta, iters)?;
    let model = gradlab_core::flat::load_host(model, &x).map_err(crate::LabError::from)?;
    Ok((model, trace))
}
