//! `gradlab hessian`: Hessian spectra of a classifier's training loss — the top eigenvalues by
//! Lanczos, the trace by Hutchinson's estimator and the spectral density by stochastic Lanczos
//! quadrature ([`gradlab_curvature::spectrum`]), from central-difference HVPs of the model's
//! autodiff gradients ([`gradlab_curvature::model::ModelGradient`]).

use anyhow::{Result, bail};
use gradlab_curvature::model::{ModelGradient, ModelOutputs};
use gradlab_curvature::spectrum::{
    SpectralDensity, hutchinson_trace, lanczos_eigenvalues, slq_density,
};
use gradlab_curvature::{CurvatureError, GaussNewton, HessianVectorProduct, OracleHvp, OutputLoss};
use gradlab_data::ImageSet;
use gradlab_lab::plot::{Series, line_chart};
use gradlab_nets::{LossKind, Net};
use gradlab_train::TrainError;
use gradlab_train::checkpoint::load_set;
use gradlab_train::output::{IMAGE_EXTENSIONS, check_output_file};
use gradlab_train::request::{ModelJob, ModelKind, with_model};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which curvature matrix the spectra describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
pub enum CurvatureMatrix {
    /// The Hessian of the mean cross-entropy (central-difference HVPs).
    #[default]
    Hessian,
    /// Its generalised Gauss–Newton part Σ JᵀHₗJ/n (positive semi-definite).
    #[value(name = "gauss-newton", alias = "gn")]
    GaussNewton,
}

/// How the spectral density is smoothed and plotted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
pub enum DensityStyle {
    /// Gaussians of standard deviation 1% of the nodes' range on 401 points over the range ±5%.
    #[default]
    Gradlab,
    /// PyHessian's `density_generate` (`SpectralDensity::pyhessian_density`): 10,000 points,
    /// variance 10⁻⁵·max(1, range), unit mass, plotted as log10(density + 10⁻⁷).
    #[value(name = "pyhessian")]
    PyHessian,
}

/// The arguments of `gradlab hessian`.
#[derive(clap::Args)]
pub struct Args {
    /// The classifier.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp, ignore_case = true)]
    pub model: ModelKind,
    /// digits, mnist1k, fashion1k, mnist or fashion.
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// A `gradlab train --checkpoint` directory (default: the seeded initial weights).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Number of top eigenvalues.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// The Hessian, or its positive semi-definite Gauss–Newton part.
    #[arg(long, value_enum, default_value_t = CurvatureMatrix::Hessian, ignore_case = true)]
    pub matrix: CurvatureMatrix,
    /// Lanczos steps for the top eigenvalues (at least --top-k).
    #[arg(long, default_value_t = 30)]
    pub lanczos_steps: usize,
    /// Also estimate the spectral density and plot it to --out.
    #[arg(long)]
    pub density: bool,
    /// Where the density plot goes.
    #[arg(long, default_value = "out/hessian_density.png")]
    pub out: PathBuf,
    /// Density smoothing: gradlab (1% of the range) or pyhessian (PyHessian's
    /// density_generate: 10,000 points, variance 1e-5·max(1, range), unit mass).
    #[arg(long, value_enum, default_value_t = DensityStyle::Gradlab, ignore_case = true)]
    pub density_style: DensityStyle,
    /// Training examples in the loss.
    #[arg(long, default_value_t = 1000)]
    pub examples: usize,
    /// Rademacher samples for the trace (at least 2, for its standard error).
    #[arg(long, default_value_t = 100)]
    pub trace_samples: usize,
    /// Seed of the split, the initial weights and the probes (use the training seed).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Compute the report and print it (or JSON).
pub fn run(args: Args) -> Result<()> {
    let Args {
        model,
        data,
        checkpoint,
        top_k,
        matrix,
        lanczos_steps,
        density,
        out,
        density_style,
        examples,
        trace_samples,
        seed,
        json,
    } = args;
    if !density && density_style != DensityStyle::Gradlab {
        eprintln!("warning: --density-style has no effect without --density");
    }
    if density {
        check_output_file(&out, IMAGE_EXTENSIONS)?;
    }
    let req = HessianRequest {
        matrix,
        model,
        data: data.clone(),
        checkpoint,
        top_k,
        lanczos_steps,
        density_plot: density.then(|| out.clone()),
        density_style,
        examples,
        trace_samples,
        seed,
        progress: !json,
    };
    let r = analyze(&req)?;
    if json {
        outln!("{}", serde_json::to_string(&r)?);
    } else {
        outln!(
            "{} of the mean cross-entropy of {model} on {} {data} training examples ({} parameters, {} gradient evaluations)",
            match matrix {
                CurvatureMatrix::Hessian => "Hessian",
                CurvatureMatrix::GaussNewton => "Gauss–Newton matrix",
            },
            r.examples,
            r.parameters,
            r.gradient_evaluations
        );
        let top: Vec<String> = r
            .top_eigenvalues
            .iter()
            .map(|v| format!("{v:.5}"))
            .collect();
        outln!(
            "top {} eigenvalues (Lanczos): {}",
            top.len(),
            top.join(", ")
        );
        outln!(
            "trace (Hutchinson, {trace_samples} samples): {:.4} ± {:.4}",
            r.trace.0,
            r.trace.1
        );
        if let Some((m1, m2)) = r.density_moments {
            outln!(
                "density (SLQ): mean eigenvalue {m1:.3e}, mean squared {m2:.3e}; plot: {}",
                out.display()
            );
        }
    }
    Ok(())
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct HessianRequest {
    /// The Hessian or its Gauss–Newton part.
    pub matrix: CurvatureMatrix,
    /// The classifier (as `gradlab train` builds it).
    pub model: ModelKind,
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
        bail!(
            "--trace-samples {} must be at least 2 (the standard error needs two samples)",
            req.trace_samples
        );
    }
    let model = match &req.checkpoint {
        Some(dir) => {
            let generation = load_set(dir)?;
            model
                .try_load_file(generation.join("model.bpk"))
                .map_err(|e| TrainError::Checkpoint {
                    path: dir.clone(),
                    reason: format!("does not fit this model: {e}"),
                })?
        }
        None => model,
    };
    let n = model.num_params();
    if req.top_k == 0 || req.top_k > n {
        bail!(
            "--top-k {} must be between 1 and the number of parameters {n}",
            req.top_k
        );
    }
    if req.lanczos_steps < req.top_k || req.lanczos_steps > n {
        bail!(
            "--lanczos-steps {} must be between --top-k ({}) and the number of parameters {n}",
            req.lanczos_steps,
            req.top_k
        );
    }
    let steps = req.lanczos_steps;
    let examples = req.examples.min(set.len());
    if examples == 0 {
        bail!("the loss needs at least one example");
    }
    let theta = gradlab_core::flat::flatten_host(&model)?;
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
    Ok(line_chart(
        path,
        title,
        "eigenvalue",
        "log10 density",
        &[series],
        &[],
    )?)
}

struct Analyze<'a> {
    req: &'a HessianRequest,
    set: &'a ImageSet,
}

impl ModelJob for Analyze<'_> {
    type Output = HessianReport;
    type Error = anyhow::Error;
    fn run<M: Net>(self, model: M) -> Result<HessianReport> {
        analyze_model(model, self.req, self.set)
    }
}

/// Build the model by name (seeded as `gradlab train` does), load the checkpoint if any, and
/// compute the report on the training split of `data`.
pub fn analyze(req: &HessianRequest) -> Result<HessianReport> {
    if let Some(path) = &req.density_plot {
        check_output_file(path, IMAGE_EXTENSIONS)?;
    }
    let (train, _) = gradlab_data::images::load_split(&req.data, req.seed)?;
    if let Some(dir) = &req.checkpoint {
        // The loss must be the one the checkpoint was trained on: same data, same split.
        let saved = gradlab_train::request::checkpoint_config(dir)?;
        let here = gradlab_train::request::data_label(&req.data, &train);
        if saved.data.as_deref().is_some_and(|d| d != here) || saved.seed != req.seed {
            return Err(TrainError::Checkpoint {
                path: dir.clone(),
                reason: format!(
                    "trained on {} with seed {}; this analysis uses {here} with seed {} (pass the training run's --data and --seed)",
                    saved.data.as_deref().unwrap_or("unnamed data"),
                    saved.seed,
                    req.seed
                ),
            }
            .into());
        }
    }
    let job = Analyze { req, set: &train };
    with_model(req.model, &train, req.seed, job)
}
