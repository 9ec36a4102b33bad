//! `gradlab sample`: train a generative model on 2D data and sample it with any sampler, writing a
//! scatter plot of the samples next to the data and reporting NFE, speed and the distance to fresh
//! data.
//!
//! Methods: `pc`, `rd` (reverse diffusion), `em` (Euler–Maruyama), `ode` (PF-ODE, Heun), `rk45`
//! (PF-ODE, adaptive), `ddim`, `dpm` (DPM-Solver++(2M)) on a VP ε-prediction network, and `rf`
//! (rectified flow, Euler). `--steps` is the number of sampler steps (for `rk45`, ignored). On an
//! image set (`digits`, `mnist1k`, `fashion1k`, or the full `mnist`/`fashion` once fetched) a small U-Net is trained instead (by score
//! matching, or by flow matching for `rf`) and the samples are written as an image grid; distances
//! are then in pixel space against the test images.

use anyhow::{Result, bail};
use burn::prelude::Tensor;
use gradlab_data::toy2d::Toy2d;
use gradlab_generative::metrics::{MMD_BANDWIDTHS, mmd, sliced_wasserstein};
use gradlab_generative::ode::Solver;
use gradlab_generative::points::{Rows, from_pairs, from_rows, normal, pairs};
use gradlab_generative::process::Sde;
use gradlab_generative::rectified_flow::VelocityNet;
use gradlab_generative::rectified_flow::{train_velocity, transport};
use gradlab_generative::sampling::Sampler;
use gradlab_generative::saved::{self, Arch, ModelCard, Output};
use gradlab_generative::score::NetScore;
use gradlab_generative::training::Prediction;
use gradlab_generative::training::{TrainSettings, train_toy_model};
use gradlab_lab::plot::scatter_panels;
use gradlab_nets::time_mlp::TimeMlp;
use gradlab_nets::unet::UNet;
use gradlab_train::output::{IMAGE_EXTENSIONS, check_output_file};
use serde::Serialize;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

/// The arguments of `gradlab sample`.
#[derive(clap::Args)]
pub struct Args {
    /// The sampler (default: dpm, or rf for a saved rectified flow). The PF-ODE samplers (ode,
    /// rk45) end with the official final denoising step (one more score evaluation, counted in
    /// the NFE).
    #[arg(long, value_enum, ignore_case = true)]
    pub method: Option<Sampler>,
    /// 8gaussians (the default), moons, spirals, checkerboard, swissroll, pinwheel or circles; or
    /// an image set (digits, mnist1k, fashion1k; mnist, fashion once fetched), on which a small
    /// U-Net is trained. With --model: the data the model was trained on (the default).
    #[arg(long)]
    pub data: Option<String>,
    /// Sampler steps (rk45 chooses its own and ignores this; at most 100,000).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Samples to draw (at most 1,000,000; the MMD² is taken on the first 5,000).
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Training steps of the model.
    #[arg(long, default_value_t = 3000, conflicts_with = "model")]
    pub train_steps: usize,
    /// Keep the trained model in this folder (for --model later; an earlier save there is
    /// replaced only once the new one is complete).
    #[arg(long, value_name = "DIR", conflicts_with = "model")]
    pub save: Option<PathBuf>,
    /// Sample from the model saved in this folder by --save, without training.
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// The scatter plot or image grid.
    #[arg(long, default_value = "out/samples.png")]
    pub out: PathBuf,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Train, sample, measure, plot; print the report (or JSON).
pub fn run(args: Args) -> Result<()> {
    let Args {
        method,
        data,
        steps,
        samples,
        train_steps,
        save,
        model,
        out,
        seed,
        json,
    } = args;
    // Names in any case, as the samplers'.
    let data = data.map(|d| d.to_ascii_lowercase());
    let (data, train_steps, method) = match &model {
        Some(dir) => {
            let card = saved::card(dir)?;
            if !IMAGE_SETS.contains(&card.data.as_str()) && Toy2d::from_str(&card.data).is_err() {
                bail!(
                    "{}: the model card names an unknown data set '{}'",
                    dir.display(),
                    card.data
                );
            }
            if data.as_ref().is_some_and(|d| *d != card.data) {
                bail!(
                    "{}: the model was trained on {}, not {}",
                    dir.display(),
                    card.data,
                    data.unwrap_or_default()
                );
            }
            let velocity = card.output == saved::Output::Velocity;
            let default = if velocity { Sampler::Rf } else { Sampler::Dpm };
            let method = method.unwrap_or(default);
            if velocity != (method == Sampler::Rf) {
                bail!(
                    "{}: a {} model cannot be sampled with --method {method}",
                    dir.display(),
                    if velocity {
                        "rectified-flow (velocity)"
                    } else {
                        "score (ε)"
                    }
                );
            }
            (card.data, card.train_steps, method)
        }
        None => (
            data.unwrap_or_else(|| "8gaussians".into()),
            train_steps,
            method.unwrap_or(Sampler::Dpm),
        ),
    };
    let req = SampleRequest {
        method,
        data: data.clone(),
        steps,
        samples,
        train_steps,
        save,
        model,
        out: out.clone(),
        seed,
        progress: !json,
    };
    let r = run_sample(&req)?;
    if json {
        outln!("{}", serde_json::to_string(&r)?);
    } else {
        outln!(
            "{} on {data}: {} NFE, {:.0} samples/s (training {:.1} s); SWD to fresh data {:.3} (two data samples: {:.3}), MMD² {:.4}; plot: {}",
            r.method,
            r.nfe,
            r.samples_per_second,
            r.train_seconds,
            r.swd,
            r.swd_data_vs_data,
            r.mmd,
            out.display()
        );
    }
    Ok(())
}

/// What to sample.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// The sampler.
    pub method: Sampler,
    /// A 2D data set name (`8gaussians`, `moons`, …).
    pub data: String,
    /// Sampler steps.
    pub steps: usize,
    /// Samples to draw.
    pub samples: usize,
    /// Training steps of the model.
    pub train_steps: usize,
    /// Save the trained model here.
    pub save: Option<PathBuf>,
    /// Load the model from here instead of training.
    pub model: Option<PathBuf>,
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
    /// The sampler.
    pub method: String,
    /// Network evaluations of the sampler.
    pub nfe: usize,
    /// Samples per second of the sampler (training excluded).
    pub samples_per_second: f64,
    /// Sliced Wasserstein distance to fresh data.
    pub swd: f64,
    /// MMD² to fresh data (on the first [`MMD_POINTS`] points of each sample: its cost grows
    /// with the square of their number).
    pub mmd: f64,
    /// The same SWD between two data samples, for scale.
    pub swd_data_vs_data: f64,
    /// Training seconds (0 for a model loaded with --model).
    pub train_seconds: f64,
}

/// A spinner while the model trains (hidden without `progress`).
fn spinner(req: &SampleRequest, what: &str) -> indicatif::ProgressBar {
    gradlab_lab::experiment::progress_spinner(
        req.progress,
        format!("training {what}{} ({} steps)", req.data, req.train_steps),
    )
}

/// The most sampler steps `sample` takes.
pub const MAX_STEPS: usize = 100_000;
/// The most samples `sample` draws.
pub const MAX_SAMPLES: usize = 1_000_000;
/// The most training steps `sample` takes.
pub const MAX_TRAIN_STEPS: usize = 10_000_000;
/// The most points of each sample the MMD² is taken on.
pub const MMD_POINTS: usize = 5_000;

/// The first `n` rows of `x` (all if it has fewer).
fn head(x: &Tensor<2>, n: usize) -> Tensor<2> {
    let [rows, d] = x.dims();
    x.clone().slice([0..rows.min(n), 0..d])
}

/// The architecture of the 2D models (`hidden`-wide, `layers` deep time-conditioned MLPs).
fn mlp_arch(settings: &TrainSettings) -> Arch {
    Arch::TimeMlp {
        dim: 2,
        hidden: settings.hidden,
        layers: settings.layers,
    }
}

/// The architecture of [`gradlab_generative::training::image_unet`] for `set`'s images.
fn unet_arch(set: &gradlab_data::ImageSet) -> Arch {
    Arch::UNet {
        channels: set.channels,
        height: set.height,
        width: set.width,
        base: 16,
    }
}

/// Save `net` with its card if the request asks for it (`--save`).
fn keep<N: gradlab_nets::TimeNet>(
    req: &SampleRequest,
    net: &N,
    arch: Arch,
    output: Output,
) -> Result<()> {
    if let Some(dir) = &req.save {
        let card = ModelCard {
            arch,
            output,
            data: req.data.clone(),
            train_steps: req.train_steps,
            seed: req.seed,
        };
        saved::save(dir, net, &card)?;
    }
    Ok(())
}

/// The U-Net saved in `dir`, which must take images of `shape` [c, h, w].
fn loaded_unet(dir: &std::path::Path, shape: [usize; 3]) -> Result<UNet> {
    let net = saved::load::<UNet>(dir)?.0;
    let [c, h, w] = net.image_shape();
    if [c, h, w] != shape {
        bail!(
            "{}: the model takes {c}×{h}×{w} images, the data set has {}×{}×{}",
            dir.display(),
            shape[0],
            shape[1],
            shape[2]
        );
    }
    Ok(net)
}

/// The 2D time-conditioned MLP saved in `dir`.
fn loaded_mlp(dir: &std::path::Path) -> Result<TimeMlp> {
    let net = saved::load::<TimeMlp>(dir)?.0;
    if net.dim() != 2 {
        bail!(
            "{}: the model takes points of dimension {}, not 2D data",
            dir.display(),
            net.dim()
        );
    }
    Ok(net)
}

/// A saved ε-prediction network of the VP SDE as a score model.
fn noise_model<N: gradlab_nets::TimeNet>(net: N) -> NetScore<N, Sde> {
    NetScore {
        net,
        process: Sde::vp(),
        prediction: Prediction::Noise,
    }
}

/// Image sets `sample` accepts (a U-Net is trained on them).
/// `mnist` and `fashion` are the full sets, read from `$GRADLAB_DATA` (see `scripts/fetch-datasets.sh`).
const IMAGE_SETS: &[&str] = &["digits", "mnist1k", "fashion1k", "mnist", "fashion"];

/// Train a U-Net on an image set (a VP ε-prediction model, or a rectified flow for `rf`), sample,
/// measure in pixel space and write an image grid.
fn run_image_sample(req: &SampleRequest) -> Result<SampleReport> {
    use gradlab_generative::images::{pixel_batches, to_unit_pixels, unit_pixels};
    use gradlab_generative::rectified_flow::train_velocity_model;
    use gradlab_generative::training::{DsmLoss, train_score_model};
    use gradlab_lab::plot::image_grid;
    let (train, test) = gradlab_data::images::load_split(&req.data, req.seed)?;
    let [c, h, w] = [train.channels, train.height, train.width];
    let d = c * h * w;
    let what = if req.method == Sampler::Rf {
        "a rectified-flow U-Net on "
    } else {
        "a U-Net on "
    };
    let spinner = spinner(req, what);
    let t0 = Instant::now();
    let (net, settings) =
        gradlab_generative::training::image_unet(&train, req.train_steps, req.seed);
    let mut images = pixel_batches(&train);
    let (x, nfe, train_seconds, sample_seconds) = if req.method == Sampler::Rf {
        let pairs = move |n: usize, s: u64| (normal(n, d, s ^ 0x2015E), images(n, s));
        let arch = unet_arch(&train);
        let v = match &req.model {
            Some(dir) => VelocityNet::new(loaded_unet(dir, [c, h, w])?),
            None => {
                let (v, _) = train_velocity_model(net, d, pairs, &settings)?;
                keep(req, &v.net, arch, Output::Velocity)?;
                v
            }
        };
        let train = t0.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        let t1 = Instant::now();
        let z0 = normal(req.samples, d, req.seed ^ 0x9);
        let (x, nfe) = transport(&v, z0, Solver::Euler(req.steps))?;
        (x, nfe, train, t1.elapsed().as_secs_f64())
    } else {
        let loss = DsmLoss::new(Sde::vp(), Prediction::Noise);
        let model = match &req.model {
            Some(dir) => noise_model(loaded_unet(dir, [c, h, w])?),
            None => {
                let (model, _) = train_score_model(net, loss, d, images, &settings)?;
                keep(req, &model.net, unet_arch(&train), Output::Noise)?;
                model
            }
        };
        let train = t0.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        let t1 = Instant::now();
        let (x, nfe) = req.method.draw(
            &model,
            &Sde::vp(),
            [req.samples, d],
            req.steps,
            req.seed ^ 0x9,
        )?;
        (x, nfe, train, t1.elapsed().as_secs_f64())
    };
    // Distances in pixel space ([0, 1]) against the test images.
    let px = to_unit_pixels(&x)?;
    let first = |set: &gradlab_data::ImageSet| {
        let idx: Vec<usize> = (0..req.samples.min(set.len())).collect();
        from_rows(&unit_pixels(set, &idx).concat(), idx.len(), d)
    };
    let samples = from_rows(&px.concat(), px.len(), d)?;
    let (reference, other) = (first(&test)?, first(&train)?);
    let timing = (nfe, sample_seconds, train_seconds);
    let report = measure(req, &samples, &reference, &other, timing)?;
    if c == 1 {
        let scale = if h <= 8 { 6 } else { 3 };
        image_grid(&req.out, &px[..px.len().min(64)], h, w, 16, scale)?;
    }
    Ok(report)
}

/// The report: SWD and MMD² of `samples` to `reference`, the SWD of a second data sample `other`
/// to it for scale, and `(nfe, sampling seconds, training seconds)`.
fn measure(
    req: &SampleRequest,
    samples: &Tensor<2>,
    reference: &Tensor<2>,
    other: &Tensor<2>,
    (nfe, sample_seconds, train_seconds): (usize, f64, f64),
) -> Result<SampleReport> {
    Ok(SampleReport {
        method: req.method.to_string(),
        nfe,
        samples_per_second: req.samples as f64 / sample_seconds.max(1e-9),
        swd: sliced_wasserstein(samples, reference, 200, 0)?,
        mmd: mmd(
            &head(samples, MMD_POINTS),
            &head(reference, MMD_POINTS),
            &MMD_BANDWIDTHS,
        )?,
        swd_data_vs_data: sliced_wasserstein(other, reference, 200, 0)?,
        // A loaded model (--model) was not trained here.
        train_seconds: if req.model.is_some() {
            0.0
        } else {
            train_seconds
        },
    })
}

/// The request's numbers within their bounds (which keep memory and time finite on any machine;
/// rk45 chooses its own steps) and its data set known.
fn validate(req: &SampleRequest) -> Result<()> {
    let steps_matter = !req.method.is_adaptive();
    for (name, value, most, matters) in [
        ("--steps", req.steps, MAX_STEPS, steps_matter),
        ("--samples", req.samples, MAX_SAMPLES, true),
        ("--train-steps", req.train_steps, MAX_TRAIN_STEPS, true),
    ] {
        if matters && value == 0 {
            bail!("{name} must be at least 1");
        }
        if matters && value > most {
            bail!("{name} {value} is above the limit {most}");
        }
    }
    if !IMAGE_SETS.contains(&req.data.as_str()) {
        Toy2d::from_str(&req.data).map_err(|e| {
            anyhow::anyhow!(
                "{}; images: {}",
                e.to_string().trim_start_matches("invalid argument: "),
                IMAGE_SETS.join(", ")
            )
        })?;
    }
    Ok(())
}

/// Train, sample, measure and plot.
pub fn run_sample(req: &SampleRequest) -> Result<SampleReport> {
    // Everything that can be refused without touching the disk, before any folder is created.
    validate(req)?;
    check_output_file(&req.out, IMAGE_EXTENSIONS)?;
    if let Some(dir) = &req.save {
        saved::check_destination(dir)?;
    }
    if IMAGE_SETS.contains(&req.data.as_str()) {
        return run_image_sample(req);
    }
    let toy = Toy2d::from_str(&req.data)?;
    let spinner = spinner(req, "");
    let t0 = Instant::now();
    let t2 = toy.clone();
    let seed = req.seed;
    let (samples, nfe, train_seconds, sample_seconds) = if req.method == Sampler::Rf {
        let settings = TrainSettings {
            steps: req.train_steps,
            lr: 3e-3,
            seed,
            ..TrainSettings::default()
        };
        let pairs =
            move |n: usize, s: u64| (normal(n, 2, s), from_pairs(&t2.sample(n, s ^ 0xDA7A)));
        let v = match &req.model {
            Some(dir) => VelocityNet::new(loaded_mlp(dir)?),
            None => {
                let (v, _) = train_velocity(2, pairs, &settings)?;
                keep(req, &v.net, mlp_arch(&settings), Output::Velocity)?;
                v
            }
        };
        let train = t0.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        let t1 = Instant::now();
        let z0 = normal(req.samples, 2, seed ^ 0x9);
        let (x, nfe) = transport(&v, z0, Solver::Euler(req.steps))?;
        (x, nfe, train, t1.elapsed().as_secs_f64())
    } else {
        let settings = TrainSettings {
            steps: req.train_steps,
            lr: 3e-3,
            seed,
            ..TrainSettings::default()
        };
        let net = match &req.model {
            Some(dir) => noise_model(loaded_mlp(dir)?),
            None => {
                let net = train_toy_model(&toy, Sde::vp(), &settings)?;
                keep(req, &net.net, mlp_arch(&settings), Output::Noise)?;
                net
            }
        };
        let train = t0.elapsed().as_secs_f64();
        spinner.finish_and_clear();
        let t1 = Instant::now();
        let (x, nfe) =
            req.method
                .draw(&net, &Sde::vp(), [req.samples, 2], req.steps, seed ^ 0x9)?;
        (x, nfe, train, t1.elapsed().as_secs_f64())
    };
    let truth = from_pairs(&toy.sample(req.samples.max(500), seed ^ 0x7E57));
    let other = from_pairs(&toy.sample(req.samples.max(500), seed ^ 0xF100));
    let timing = (nfe, sample_seconds, train_seconds);
    let report = measure(req, &samples, &truth, &other, timing)?;
    let (s_rows, t_rows) = (Rows::of(&samples)?, Rows::of(&truth)?);
    let lim = s_rows.data.iter().chain(&t_rows.data).fold(1.0f64, |m, v| {
        if v.is_finite() { m.max(v.abs()) } else { m }
    }) * 1.05;
    scatter_panels(
        &req.out,
        &[
            (format!("{}: data", req.data), pairs(&truth)?),
            (
                format!("{}, {} NFE", req.method, report.nfe),
                pairs(&samples)?,
            ),
        ],
        2,
        (-lim, lim),
    )?;
    Ok(report)
}
