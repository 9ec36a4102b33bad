//! `gradlab sample`: train a generative model on 2D data and sample it with any sampler, writing a
//! scatter plot of the samples next to the data and reporting NFE, speed and the distance to fresh
//! data.
//!
//! Methods: `pc`, `rd` (reverse diffusion), `em` (Euler–Maruyama), `ode` (PF-ODE, Heun), `rk45`
//! (PF-ODE, adaptive), `ddim`, `dpm` (DPM-Solver++(2M)) on a VP ε-prediction network, and `rf`
//! (rectified flow, Euler). `--steps` is the number of sampler steps (for `rk45`, ignored). On an
//! image set (`digits`, `mnist1k`, `fashion1k`) a small U-Net is trained instead and the samples
//! are written as an image grid; distances are then in pixel space against the test images.

use crate::error::{LabError, Result};
use crate::plot::scatter_panels;
use gradlab_data::toy2d::Toy2d;
use gradlab_generative::Batch;
use gradlab_generative::dpm::{ddim_sample, dpm_solver_pp_sample};
use gradlab_generative::metrics::{MMD_BANDWIDTHS, mmd, sliced_wasserstein};
use gradlab_generative::ode::Solver;
use gradlab_generative::rectified_flow::{train_velocity, transport};
use gradlab_generative::sampler::{PcConfig, Predictor, ode_sample, pc_sample};
use gradlab_generative::score::ScoreModel;
use gradlab_generative::training::{TrainSettings, train_toy_model};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

/// The sampler names.
pub const METHODS: &[&str] = &["pc", "rd", "em", "ode", "rk45", "ddim", "dpm", "rf"];

/// What to sample.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// One of [`METHODS`].
    pub method: String,
    /// A 2D data set name (`8gaussians`, `moons`, …).
    pub data: String,
    /// Sampler steps.
    pub steps: usize,
    /// Samples to draw.
    pub samples: usize,
    /// Training steps of the model.
    pub train_steps: usize,
    /// Where the scatter plot goes.
    pub out: PathBuf,
    /// Seed of the data, the model and the sampler.
    pub seed: u64,
    /// Show a spinner while training.
    pub progress: bool,
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct SampleReport {
    /// The method.
    pub method: String,
    /// Network evaluations of the sampler.
    pub nfe: usize,
    /// Samples per second of the sampler (training excluded).
    pub samples_per_second: f64,
    /// Sliced Wasserstein distance to fresh data.
    pub swd: f64,
    /// MMD² to fresh data.
    pub mmd: f64,
    /// The same SWD between two data samples, for scale.
    pub swd_data_vs_data: f64,
    /// Training seconds.
    pub train_seconds: f64,
}

fn points(b: &Batch) -> Vec<(f64, f64)> {
    (0..b.n).map(|i| (b.row(i)[0], b.row(i)[1])).collect()
}

/// A spinner while the model trains (hidden without `progress`).
fn spinner(req: &SampleRequest, what: &str) -> indicatif::ProgressBar {
    if !req.progress {
        return indicatif::ProgressBar::hidden();
    }
    let s = indicatif::ProgressBar::new_spinner().with_message(format!(
        "training {what}{} ({} steps)",
        req.data, req.train_steps
    ));
    s.enable_steady_tick(std::time::Duration::from_millis(120));
    s
}

/// Draw `n` samples from a score model with the sampler `method` in `k` steps.
fn sample_with(
    model: &impl ScoreModel,
    method: &str,
    n: usize,
    k: usize,
    s: u64,
) -> Result<(Batch, usize)> {
    Ok(match method {
        "pc" => pc_sample(model, n, &PcConfig::new(k), s)?,
        "rd" => pc_sample(model, n, &PcConfig::new(k).with_corrector_steps(0), s)?,
        "em" => pc_sample(
            model,
            n,
            &PcConfig::new(k)
                .with_predictor(Predictor::EulerMaruyama)
                .with_corrector_steps(0),
            s,
        )?,
        "ode" => ode_sample(model, n, Solver::Heun(k), s)?,
        "rk45" => ode_sample(
            model,
            n,
            Solver::Rk45 {
                rtol: 1e-5,
                atol: 1e-5,
            },
            s,
        )?,
        "ddim" => ddim_sample(model, n, k, s)?,
        _ => dpm_solver_pp_sample(model, n, k, s)?,
    })
}

/// Image sets `sample` accepts (a U-Net is trained on them).
const IMAGE_SETS: &[&str] = &["digits", "mnist1k", "fashion1k"];

/// Train a U-Net on an image set, sample, measure in pixel space and write an image grid.
fn run_image_sample(req: &SampleRequest) -> Result<SampleReport> {
    use crate::plot::image_grid;
    use gradlab_generative::sde::Sde;
    use gradlab_generative::training::{DsmLoss, Prediction, train_score_model};
    use gradlab_nets::unet::UNetConfig;
    if req.method == "rf" {
        return Err(LabError::Invalid(
            "rectified-flow sampling of images is not built yet; use a score sampler".into(),
        ));
    }
    let (train, test) = gradlab_data::images::load_split(&req.data, req.seed)?;
    let [c, h, w] = [train.channels, train.height, train.width];
    let d = c * h * w;
    let spinner = spinner(req, "a U-Net on ");
    let t0 = Instant::now();
    let tr = train.clone();
    let batch = move |n: usize, seed: u64| {
        let order = gradlab_data::batch::epoch_order(tr.len(), seed, 0);
        let data = order
            .iter()
            .cycle()
            .take(n)
            .flat_map(|&i| tr.image(i).iter().map(|v| 2.0 * f64::from(*v) - 1.0))
            .collect();
        Batch { n, d, data }
    };
    let net = UNetConfig::new(c, h, w)
        .with_width(16)
        .init(&crate::train::autodiff_device(), req.seed);
    let settings = TrainSettings {
        steps: req.train_steps,
        batch: 64,
        lr: 2e-3,
        seed: req.seed,
        ..TrainSettings::default()
    };
    let loss = DsmLoss::new(Sde::vp(), Prediction::Noise);
    let (model, _) = train_score_model(net, loss, d, batch, &settings)?;
    let train_seconds = t0.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    let t1 = Instant::now();
    let (x, nfe) = sample_with(&model, &req.method, req.samples, req.steps, req.seed ^ 0x9)?;
    let sample_seconds = t1.elapsed().as_secs_f64();
    let px: Vec<Vec<f64>> = (0..x.n)
        .map(|i| {
            x.row(i)
                .iter()
                .map(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0))
                .collect()
        })
        .collect();
    let set_batch = |set: &gradlab_data::ImageSet| {
        let n = req.samples.min(set.len());
        Batch {
            n,
            d,
            data: (0..n)
                .flat_map(|i| set.image(i).iter().map(|v| f64::from(*v)))
                .collect(),
        }
    };
    let samples = Batch {
        data: px.concat(),
        ..x.clone()
    };
    let (reference, other) = (set_batch(&test), set_batch(&train));
    let report = SampleReport {
        method: req.method.clone(),
        nfe,
        samples_per_second: req.samples as f64 / sample_seconds.max(1e-9),
        swd: sliced_wasserstein(&samples, &reference, 200, 0)?,
        mmd: mmd(&samples, &reference, &MMD_BANDWIDTHS)?,
        swd_data_vs_data: sliced_wasserstein(&other, &reference, 200, 0)?,
        train_seconds,
    };
    if c == 1 {
        let scale = if h <= 8 { 6 } else { 3 };
        image_grid(&req.out, &px[..px.len().min(64)], h, w, 16, scale)?;
    }
    Ok(report)
}

/// Train, sample, measure and plot.
pub fn run_sample(req: &SampleRequest) -> Result<SampleReport> {
    if !METHODS.contains(&req.method.as_str()) {
        return Err(LabError::Invalid(format!(
            "unknown sampler '{}'; known: {}",
            req.method,
            METHODS.join(", ")
        )));
    }
    if req.steps == 0 || req.samples == 0 || req.train_steps == 0 {
        return Err(LabError::Invalid(
            "--steps, --samples and --train-steps must be at least 1".into(),
        ));
    }
    if IMAGE_SETS.contains(&req.data.as_str()) {
        return run_image_sample(req);
    }
    let toy = Toy2d::from_str(&req.data).map_err(|e| {
        LabError::Invalid(format!(
            "{}; images: {}",
            e.to_string().trim_start_matches("invalid argument: "),
            IMAGE_SETS.join(", ")
        ))
    })?;
    let spinner = spinner(req, "");
    let t0 = Instant::now();
    let t2 = toy.clone();
    let seed = req.seed;
    let (samples, nfe, train_seconds, sample_seconds) = if req.method == "rf" {
        let settings = TrainSettings {
            steps: req.train_steps,
            lr: 3e-3,
            seed,
            ..TrainSettings::default()
        };
        let pairs = move |n: usize, s: u64| {
            (
                Batch::gaussian(n, 2, &mut StdRng::seed_from_u64(s)),
                Batch::from_points(&t2.sample(n, s ^ 0xDA7A)),
            )
        };
        let (v, _) = train_velocity(2, pairs, &settings)?;
        let train = t0.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        let t1 = Instant::now();
        let z0 = Batch::gaussian(req.samples, 2, &mut StdRng::seed_from_u64(seed ^ 0x9));
        let (x, nfe) = transport(&v, z0, Solver::Euler(req.steps))?;
        (x, nfe, train, t1.elapsed().as_secs_f64())
    } else {
        let settings = TrainSettings {
            steps: req.train_steps,
            lr: 3e-3,
            seed,
            ..TrainSettings::default()
        };
        let net = train_toy_model(&toy, &settings)?;
        let train = t0.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        let t1 = Instant::now();
        let (x, nfe) = sample_with(&net, &req.method, req.samples, req.steps, seed ^ 0x9)?;
        (x, nfe, train, t1.elapsed().as_secs_f64())
    };
    let truth = Batch::from_points(&toy.sample(req.samples.max(500), seed ^ 0x7E57));
    let other = Batch::from_points(&toy.sample(req.samples.max(500), seed ^ 0xF100));
    let report = SampleReport {
        method: req.method.clone(),
        nfe,
        samples_per_second: req.samples as f64 / sample_seconds.max(1e-9),
        swd: sliced_wasserstein(&samples, &truth, 200, 0)?,
        mmd: mmd(&samples, &truth, &MMD_BANDWIDTHS)?,
        swd_data_vs_data: sliced_wasserstein(&other, &truth, 200, 0)?,
        train_seconds,
    };
    let lim = samples.data.iter().chain(&truth.data).fold(1.0f64, |m, v| {
        if v.is_finite() { m.max(v.abs()) } else { m }
    }) * 1.05;
    scatter_panels(
        &req.out,
        &[
            (format!("{}: data", req.data), points(&truth)),
            (
                format!("{}, {} NFE", req.method, report.nfe),
                points(&samples),
            ),
        ],
        2,
        (-lim, lim),
    )?;
    Ok(report)
}
