//! Hessian spectra of a classifier's training loss (`gradlab hessian`): the top eigenvalues by
//! Lanczos, the trace by Hutchinson's estimator and the spectral density by stochastic Lanczos
//! quadrature ([`gradlab_curvature::spectrum`]), from central-difference HVPs of the model's
//! autodiff gradients ([`ModelGradient`]).
//!
//! The models are f32, so the differences use a relative step of 1e-3 (rounding ≈ 1e-4 of ‖H‖):
//! the outliers of a spectrum are resolved, eigenvalues much below 1e-4·λ_max are not. ReLU gates
//! and max-pool winners are frozen at the analysed weights ([`gradlab_nets::kinks`]), so the
//! differences converge to the Hessian that double-backward autodiff (PyHessian) computes.

use crate::error::{LabError, Result};
use crate::plot::{Series, line_chart};
use crate::train::{LossKind, ModelJob, autodiff_device, with_model};
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use gradlab_curvature::spectrum::{
    SpectralDensity, hutchinson_trace, lanczos_eigenvalues, slq_density,
};
use gradlab_curvature::{
    CurvatureError, GaussNewton, GradientOracle, HessianVectorProduct, OracleHvp, OutputLoss,
    OutputOracle,
};
use gradlab_data::ImageSet;
use gradlab_data::batch::to_tensors;
use gradlab_nets::kinks::{self, Kinks};
use gradlab_nets::{Net, params};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The gradient of a model's mean loss over a fixed set of examples, at any parameter vector (in
/// the order of [`gradlab_nets::params::flatten`]).
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
    let flat: Vec<f32> = theta.iter().map(|v| *v as f32).collect();
    params::load(model.clone(), &flat).map_err(|e| CurvatureError::Shape {
        expected: e.expected,
        got: e.got,
    })
}

/// `f` under the replayed kinks, if any.
fn with_kinks<R>(k: &Option<Kinks>, f: impl FnOnce() -> R) -> R {
    match k {
        Some(k) => kinks::replay(k, f),
        None => f(),
    }
}

/// Flattens a module's gradients in parameter order (zeros where a parameter has none).
struct FlatGrads<'a> {
    grads: &'a GradientsParams,
    out: Vec<f64>,
}

impl ModuleVisitor for FlatGrads<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        let n = p.val().shape().num_elements();
        match self.grads.get::<D>(p.id) {
            Some(g) => self.out.extend(
                g.into_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .unwrap_or_else(|_| vec![f64::NAN; n]),
            ),
            None => self.out.extend(std::iter::repeat_n(0.0, n)),
        }
    }
}

impl<M: Net> GradientOracle for ModelGradient<M> {
    fn gradient(&self, theta: &[f64]) -> std::result::Result<Vec<f64>, CurvatureError> {
        let model = load_flat(&self.model, theta)?;
        let logits = with_kinks(&self.kinks, || model.forward(self.x.clone()));
        let loss = self.loss.forward(logits, self.y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let mut f = FlatGrads {
            grads: &grads,
            out: Vec::with_capacity(theta.len()),
        };
        model.visit(&mut f);
        if f.out.iter().all(|v| v.is_finite()) {
            Ok(f.out)
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
        Ok(logits
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap_or_default())
    }

    fn vjp(&self, theta: &[f64], u: &[f64]) -> std::result::Result<Vec<f64>, CurvatureError> {
        let (model, logits) = self.logits(theta)?;
        let weights = Tensor::<2>::from_data(
            TensorData::new(
                u.iter().map(|v| *v as f32).collect::<Vec<f32>>(),
                logits.dims(),
            ),
            &logits.device(),
        );
        let grads = GradientsParams::from_grads((logits * weights).sum().backward(), &model);
        let mut f = FlatGrads {
            grads: &grads,
            out: Vec::with_capacity(theta.len()),
        };
        model.visit(&mut f);
        Ok(f.out)
    }

    fn classes(&self) -> usize {
        self.classes
    }
}

/// Which curvature matrix the spectra describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum CurvatureMatrix {
    /// The Hessian of the mean cross-entropy (central-difference HVPs).
    #[default]
    Hessian,
    /// Its generalised Gauss–Newton part Σ JᵀHₗJ/n (positive semi-definite).
    GaussNewton,
}

impl CurvatureMatrix {
    /// `hessian` or `gauss-newton` (`gn`).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "hessian" => Ok(Self::Hessian),
            "gauss-newton" | "gn" => Ok(Self::GaussNewton),
            other => Err(LabError::Invalid(format!(
                "unknown curvature matrix '{other}'; known: hessian, gauss-newton"
            ))),
        }
    }
}

/// How the spectral density is smoothed and plotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum DensityStyle {
    /// Gaussians of standard deviation 1% of the nodes' range on 401 points over the range ±5%.
    #[default]
    Gradlab,
    /// PyHessian's `density_generate` ([`SpectralDensity::pyhessian_density`]): 10,000 points,
    /// variance 10⁻⁵·max(1, range), unit mass, plotted as log10(density + 10⁻⁷).
    PyHessian,
}

impl DensityStyle {
    /// `gradlab` or `pyhessian`.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "gradlab" => Ok(Self::Gradlab),
            "pyhessian" => Ok(Self::PyHessian),
            other => Err(LabError::Invalid(format!(
                "unknown density style '{other}'; known: gradlab, pyhessian"
            ))),
        }
    }
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct HessianRequest {
    /// The Hessian or its Gauss–Newton part.
    pub matrix: CurvatureMatrix,
    /// `mlp`, `cnn` or `resnet` (as `gradlab train` builds them).
    pub model: String,
    /// An image set name.
    pub data: String,
    /// A `gradlab train --checkpoint` directory to load the weights from (else the seeded init).
    pub checkpoint: Option<PathBuf>,
    /// Number of top eigenvalues.
    pub top_k: usize,
    /// Lanczos steps for the top eigenvalues (≥ k).
    pub lanczos_steps: usize,
    /// Also estimate the density (SLQ) and plot it here.
    pub density_plot: Option<PathBuf>,
    /// How the density is smoothed for the plot.
    pub density_style: DensityStyle,
    /// Training examples the loss is averaged over (the first ones of the seeded split).
    pub examples: usize,
    /// Rademacher samples for the trace.
    pub trace_samples: usize,
    /// Seed of the split, the initial weights and the probes.
    pub seed: u64,
    /// Show a progress bar.
    pub progress: bool,
}

/// What was computed.
#[derive(Debug, Clone, Serialize)]
pub struct HessianReport {
    /// The matrix the spectra describe.
    pub matrix: CurvatureMatrix,
    /// Parameters.
    pub parameters: usize,
    /// Examples in the loss.
    pub examples: usize,
    /// Top eigenvalues, descending.
    pub top_eigenvalues: Vec<f64>,
    /// Hutchinson's trace estimate and its standard error.
    pub trace: (f64, f64),
    /// SLQ density moments: mean eigenvalue (≈ trace/n) and mean squared eigenvalue.
    pub density_moments: Option<(f64, f64)>,
    /// Backward passes used (two per Hessian product, one per Gauss–Newton product).
    pub gradient_evaluations: usize,
}

/// HVPs that tick a progress bar.
struct Ticking<'a, H> {
    inner: H,
    bar: &'a indicatif::ProgressBar,
}

impl<H: HessianVectorProduct> HessianVectorProduct for Ticking<'_, H> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }
    fn hvp(&self, v: &[f64]) -> std::result::Result<Vec<f64>, CurvatureError> {
        self.bar.inc(1);
        self.inner.hvp(v)
    }
}

const SLQ_STEPS: usize = 40;
const SLQ_PROBES: usize = 3;

fn analyze_model<M: Net>(model: M, req: &HessianRequest, set: &ImageSet) -> Result<HessianReport> {
    if req.trace_samples < 2 {
        return Err(LabError::Invalid(format!(
            "--trace-samples {} must be at least 2 (the standard error needs two samples)",
            req.trace_samples
        )));
    }
    let model = match &req.checkpoint {
        Some(dir) => {
            let generation = crate::checkpoint::load_set(dir)?;
            model
                .try_load_file(generation.join("model.bpk"))
                .map_err(|e| LabError::Checkpoint {
                    path: dir.clone(),
                    reason: format!("does not fit this model: {e}"),
                })?
        }
        None => model,
    };
    let n = model.num_params();
    if req.top_k == 0 || req.top_k > n {
        return Err(LabError::Invalid(format!(
            "--top-k {} must be between 1 and the number of parameters {n}",
            req.top_k
        )));
    }
    if req.lanczos_steps < req.top_k || req.lanczos_steps > n {
        return Err(LabError::Invalid(format!(
            "--lanczos-steps {} must be between --top-k ({}) and the number of parameters {n}",
            req.lanczos_steps, req.top_k
        )));
    }
    let steps = req.lanczos_steps;
    let examples = req.examples.min(set.len());
    if examples == 0 {
        return Err(LabError::Invalid(
            "the loss needs at least one example".into(),
        ));
    }
    let theta: Vec<f64> = params::flatten(&model).into_iter().map(f64::from).collect();
    let idx: Vec<usize> = (0..examples).collect();
    match req.matrix {
        CurvatureMatrix::Hessian => {
            let oracle =
                ModelGradient::new(model, set, &idx, LossKind::CrossEntropy).frozen_at(&theta)?;
            spectra(OracleHvp::new(oracle, theta, 1e-3)?, req, steps, examples)
        }
        CurvatureMatrix::GaussNewton => {
            let outputs = ModelOutputs::new(model, set, &idx).frozen_at(&theta)?;
            let gn = GaussNewton::new(outputs, theta, OutputLoss::SoftmaxCrossEntropy, 1e-3)?;
            spectra(gn, req, steps, examples)
        }
    }
}

/// Top eigenvalues, trace and (if asked) density of `hvp`, with a progress bar.
fn spectra(
    hvp: impl HessianVectorProduct,
    req: &HessianRequest,
    steps: usize,
    examples: usize,
) -> Result<HessianReport> {
    let n = hvp.dim();
    let density_steps = if req.density_plot.is_some() {
        SLQ_STEPS.min(n) * SLQ_PROBES
    } else {
        0
    };
    let total = steps + req.trace_samples + density_steps;
    let bar = if req.progress {
        indicatif::ProgressBar::new(total as u64).with_message("Hessian-vector products")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let h = Ticking {
        inner: hvp,
        bar: &bar,
    };
    let ritz = lanczos_eigenvalues(&h, steps, req.seed)?;
    let top: Vec<f64> = ritz.into_iter().take(req.top_k).collect();
    let trace = hutchinson_trace(&h, req.trace_samples, req.seed)?;
    let density_moments = match &req.density_plot {
        Some(path) => {
            let d = slq_density(&h, SLQ_STEPS.min(n), SLQ_PROBES, req.seed)?;
            plot_density(&d, path, req.density_style)?;
            Some((d.moment(1), d.moment(2)))
        }
        None => None,
    };
    bar.finish_and_clear();
    Ok(HessianReport {
        matrix: req.matrix,
        parameters: n,
        examples,
        top_eigenvalues: top,
        trace,
        density_moments,
        // A Hessian product differences two gradients; a Gauss–Newton product is one backward
        // pass (and two forward passes).
        gradient_evaluations: match req.matrix {
            CurvatureMatrix::Hessian => 2 * total,
            CurvatureMatrix::GaussNewton => total,
        },
    })
}

/// The density as a PNG: gradlab's smoothing (1% of the nodes' range) or PyHessian's.
fn plot_density(d: &SpectralDensity, path: &Path, style: DensityStyle) -> Result<()> {
    let (grid, dens, title, floor) = match style {
        DensityStyle::Gradlab => {
            let lo = d.nodes.iter().cloned().fold(f64::INFINITY, f64::min);
            let hi = d.nodes.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let span = (hi - lo).max(1e-12);
            let grid: Vec<f64> = (0..=400)
                .map(|i| lo - 0.05 * span + 1.1 * span * i as f64 / 400.0)
                .collect();
            let dens = d.smoothed(&grid, 0.01 * span);
            (
                grid,
                dens,
                "Hessian spectral density (smoothed by 1% of the range)",
                0.0,
            )
        }
        DensityStyle::PyHessian => {
            let (grid, dens) = d.pyhessian_density(10_000)?;
            (
                grid,
                dens,
                "Hessian spectral density (PyHessian's convention)",
                1e-7,
            )
        }
    };
    let series = Series {
        label: format!("SLQ, {SLQ_PROBES} probes × {} Lanczos steps", SLQ_STEPS),
        points: grid
            .iter()
            .zip(&dens)
            .map(|(x, y)| (*x, ((y + floor).max(1e-12)).log10()))
            .collect(),
    };
    line_chart(path, title, "eigenvalue", "log10 density", &[series], &[])
}

struct Analyze<'a> {
    req: &'a HessianRequest,
    set: &'a ImageSet,
}

impl ModelJob for Analyze<'_> {
    type Output = HessianReport;
    fn run<M: Net>(self, model: M) -> Result<HessianReport> {
        analyze_model(model, self.req, self.set)
    }
}

/// Build the model by name (seeded as `gradlab train` does), load the checkpoint if any, and
/// compute the report on the training split of `data`.
pub fn analyze(req: &HessianRequest) -> Result<HessianReport> {
    if let Some(path) = &req.density_plot {
        crate::output::check_output_file(path, crate::output::IMAGE_EXTENSIONS)?;
    }
    let (train, _) = gradlab_data::images::load_split(&req.data, req.seed)?;
    if let Some(dir) = &req.checkpoint {
        // The loss must be the one the checkpoint was trained on: same data, same split.
        let saved = crate::train::checkpoint_config(dir)?;
        let here = crate::train::data_label(&req.data, &train);
        if saved.data.as_deref().is_some_and(|d| d != here) || saved.seed != req.seed {
            return Err(LabError::Checkpoint {
                path: dir.clone(),
                reason: format!(
                    "trained on {} with seed {}; this analysis uses {here} with seed {} (pass the training run's --data and --seed)",
                    saved.data.as_deref().unwrap_or("unnamed data"),
                    saved.seed,
                    req.seed
                ),
            });
        }
    }
    let job = Analyze { req, set: &train };
    with_model(&req.model, &train, req.seed, job)
}
