//! `gradlab`: the papers' claims, checked; their methods, usable.
//!
//! With `--json`, stdout carries one JSON document and nothing else; progress goes to stderr.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use gradlab_data::functions::problem_by_name;
use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::hessian::{self, HessianRequest};
use gradlab_lab::output::{IMAGE_EXTENSIONS, check_output_dir, check_output_file};
use gradlab_lab::registry::{SEED_PAPERS, experiment_ids, experiments, find};
use gradlab_lab::report::{ReportEntry, write_index};
use gradlab_lab::sample;
use gradlab_lab::train::{LossKind, TrainConfig, TrainRequest, run_training, total_steps};
use gradlab_optim::schedule::Schedule;
use gradlab_optim::spec::OptimizerSpec;
use gradlab_optim::transform::ClipSpec;
use std::path::PathBuf;

/// `println!` that returns an error instead of panicking when stdout cannot be written (a full
/// disk, a closed pipe).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

/// `print!` with the same behaviour.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)?
    }};
}

#[derive(Parser)]
#[command(
    name = "gradlab",
    version,
    about = "Methods of recent papers on gradients, implemented, checked and reproduced"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every seed paper, its experiment id and status.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run one paper's experiment: a table on stdout, figures and result.json in --out.
    Run {
        /// Experiment id (see `gradlab list`).
        id: String,
        /// Quick mode: embedded data, seconds.
        #[arg(long)]
        quick: bool,
        /// Seed of everything random.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output directory (default: out/<id>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run every experiment (or those named by --only) and write index.html.
    Reproduce {
        /// Quick mode: embedded data, seconds per experiment.
        #[arg(long)]
        quick: bool,
        /// Run only these experiments (ids from `gradlab list`, comma-separated), in the
        /// registry's order.
        #[arg(long, value_delimiter = ',', value_name = "IDS")]
        only: Vec<String>,
        /// Seed of everything random.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output directory.
        #[arg(long, default_value = "out")]
        out: PathBuf,
    },
    /// Train a generative model on 2D data or an image set, sample it and plot the samples next
    /// to the data (2D) or as an image grid.
    Sample {
        /// pc, rd (reverse diffusion), em (Euler–Maruyama), ode (PF-ODE, Heun), rk45, ddim, dpm
        /// (DPM-Solver++(2M)) or rf (rectified flow, Euler). The PF-ODE samplers end with the
        /// official final denoising step (one more score evaluation, counted in the NFE).
        #[arg(long, default_value = "dpm")]
        method: String,
        /// 8gaussians, moons, spirals, checkerboard, swissroll, pinwheel or circles; or an image
        /// set (digits, mnist1k, fashion1k; mnist, fashion once fetched), on which a small U-Net is
        /// trained.
        #[arg(long, default_value = "8gaussians")]
        data: String,
        /// Sampler steps (rk45 chooses its own and ignores this).
        #[arg(long, default_value_t = 20)]
        steps: usize,
        /// Samples to draw.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// Training steps of the model.
        #[arg(long, default_value_t = 3000)]
        train_steps: usize,
        /// The scatter plot or image grid.
        #[arg(long, default_value = "out/samples.png")]
        out: PathBuf,
        /// Seed of everything random.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Train a classifier on an image set.
    Train {
        /// mlp, cnn or resnet.
        #[arg(long, default_value = "mlp")]
        model: String,
        /// digits, mnist1k, fashion1k, mnist or fashion.
        #[arg(long, default_value = "digits")]
        data: String,
        /// sgd, sgdm, adam, adamw, amsgrad, adagrad, adadelta, rmsprop or diffgrad.
        #[arg(long, default_value = "adam")]
        optimizer: String,
        /// Learning rate (default: PyTorch's for the optimizer).
        #[arg(long, allow_negative_numbers = true)]
        lr: Option<f64>,
        /// Weight decay.
        #[arg(long, allow_negative_numbers = true)]
        weight_decay: Option<f64>,
        /// constant, cosine, linear or warmup-linear[:F] (linear warm-up over a fraction F of the
        /// run, 5% by default, then linear decay).
        #[arg(long, default_value = "constant")]
        schedule: String,
        /// cross-entropy or mse (squared error to one-hot labels).
        #[arg(long, default_value = "cross-entropy")]
        loss: String,
        /// Gradient clipping before the optimizer: global-norm:C, tensor-norm:C, value:C or top:C
        /// (top: coordinate-wise clipping of the top fraction C).
        #[arg(long)]
        clip: Option<String>,
        /// TrAct on the first layer with this λ (mlp and cnn; the paper's default is 0.1).
        #[arg(long, allow_negative_numbers = true)]
        tract: Option<f64>,
        /// Epochs.
        #[arg(long, default_value_t = 10)]
        epochs: usize,
        /// Minibatch size.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// Seed of the split, the initial weights and the batch order.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Append one JSON line per epoch to this file.
        #[arg(long)]
        log: Option<PathBuf>,
        /// Save a checkpoint into this directory at the end.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Resume from this checkpoint directory.
        #[arg(long)]
        resume: Option<PathBuf>,
        /// Print the per-epoch statistics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an optimizer on a test function and print its trajectory.
    Optimize {
        /// Optimizer name (as for `train`).
        #[arg(long)]
        optimizer: String,
        /// f1, f2, f3 (diffGrad paper), rosenbrock, rastrigin or quadratic.
        #[arg(long)]
        problem: String,
        /// Starting point, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            allow_hyphen_values = true,
            required = true
        )]
        x0: Vec<f64>,
        /// Learning rate.
        #[arg(long, allow_negative_numbers = true)]
        lr: f64,
        /// β₁.
        #[arg(long, allow_negative_numbers = true)]
        beta1: Option<f64>,
        /// β₂.
        #[arg(long, allow_negative_numbers = true)]
        beta2: Option<f64>,
        /// ε.
        #[arg(long, allow_negative_numbers = true)]
        eps: Option<f64>,
        /// Momentum.
        #[arg(long, allow_negative_numbers = true)]
        momentum: Option<f64>,
        /// Steps.
        #[arg(long, default_value_t = 100)]
        steps: usize,
        /// Print {"trajectory":[{"step":0,"x":[...],"f":...},...]}.
        #[arg(long)]
        json: bool,
    },
    /// Hessian of a classifier's training loss: top eigenvalues (Lanczos), trace (Hutchinson)
    /// and, with --density, the spectral density (SLQ) as a plot.
    Hessian {
        /// mlp, cnn or resnet.
        #[arg(long, default_value = "mlp")]
        model: String,
        /// digits, mnist1k, fashion1k, mnist or fashion.
        #[arg(long, default_value = "digits")]
        data: String,
        /// A `gradlab train --checkpoint` directory (default: the seeded initial weights).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Number of top eigenvalues.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
        /// hessian, or gauss-newton for its positive semi-definite Gauss–Newton part.
        #[arg(long, default_value = "hessian")]
        matrix: String,
        /// Lanczos steps for the top eigenvalues (at least --top-k).
        #[arg(long, default_value_t = 30)]
        lanczos_steps: usize,
        /// Also estimate the spectral density and plot it to --out.
        #[arg(long)]
        density: bool,
        /// Where the density plot goes.
        #[arg(long, default_value = "out/hessian_density.png")]
        out: PathBuf,
        /// Density smoothing: gradlab (1% of the range) or pyhessian (PyHessian's
        /// density_generate: 10,000 points, variance 1e-5·max(1, range), unit mass).
        #[arg(long, default_value = "gradlab")]
        density_style: String,
        /// Training examples in the loss.
        #[arg(long, default_value_t = 1000)]
        examples: usize,
        /// Rademacher samples for the trace (at least 2, for its standard error).
        #[arg(long, default_value_t = 100)]
        trace_samples: usize,
        /// Seed of the split, the initial weights and the probes (use the training seed).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::List { json } => list(json),
        Command::Run {
            id,
            quick,
            seed,
            out,
            json,
        } => run_one(&id, quick, seed, out, json),
        Command::Reproduce {
            quick,
            only,
            seed,
            out,
        } => reproduce(quick, &only, seed, out),
        Command::Hessian {
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
        } => {
            let matrix = hessian::CurvatureMatrix::parse(&matrix)?;
            let density_style = hessian::DensityStyle::parse(&density_style)?;
            if !density && density_style != hessian::DensityStyle::Gradlab {
                eprintln!("warning: --density-style has no effect without --density");
            }
            if density {
                check_output_file(&out, IMAGE_EXTENSIONS)?;
            }
            let req = HessianRequest {
                matrix,
                model: model.clone(),
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
            let r = hessian::analyze(&req)?;
            if json {
                outln!("{}", serde_json::to_string(&r)?);
            } else {
                outln!(
                    "{} of the mean cross-entropy of {model} on {} {data} training examples ({} parameters, {} gradient evaluations)",
                    match matrix {
                        hessian::CurvatureMatrix::Hessian => "Hessian",
                        hessian::CurvatureMatrix::GaussNewton => "Gauss–Newton matrix",
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
        Command::Sample {
            method,
            data,
            steps,
            samples,
            train_steps,
            out,
            seed,
            json,
        } => {
            check_output_file(&out, IMAGE_EXTENSIONS)?;
            let r = sample::run_sample(&sample::SampleRequest {
                method,
                data: data.clone(),
                steps,
                samples,
                train_steps,
                out: out.clone(),
                seed,
                progress: !json,
            })?;
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
        Command::Train {
            model,
            data,
            optimizer,
            lr,
            weight_decay,
            schedule,
            loss,
            clip,
            tract,
            epochs,
            batch_size,
            seed,
            log,
            checkpoint,
            resume,
            json,
        } => {
            let mut spec = OptimizerSpec::parse(&optimizer)?;
            spec.lr = lr;
            spec.weight_decay = weight_decay;
            spec.module_optimizer()?; // validate before loading anything
            if batch_size == 0 {
                bail!("--batch-size must be at least 1");
            }
            let (train, _) = gradlab_data::images::load_split(&data, seed)?;
            let mut config = TrainConfig::new(spec);
            let total = total_steps(epochs, train.len().div_ceil(batch_size))?;
            config.schedule = Schedule::parse(&schedule, total)?;
            config.loss = LossKind::parse(&loss)?;
            config.clip = clip.as_deref().map(ClipSpec::parse).transpose()?;
            config.tract = tract;
            config.batch_size = batch_size;
            config.seed = seed;
            config.progress = !json;
            config.log = log;
            let report = run_training(&TrainRequest {
                model,
                data,
                config,
                epochs,
                checkpoint,
                resume,
            })?;
            if json {
                outln!("{}", serde_json::to_string(&report)?);
            } else {
                outln!(
                    "{} parameters, {} training and {} test examples",
                    report.parameters,
                    report.train_examples,
                    report.test_examples
                );
                outln!("epoch  step  lr        train loss  train acc  test loss  test acc");
                for s in &report.epochs {
                    outln!(
                        "{:>5}  {:>4}  {:<8.2e}  {:>10.4}  {:>9.4}  {:>9.4}  {:>8.4}",
                        s.epoch,
                        s.step,
                        s.lr,
                        s.train_loss,
                        s.train_acc,
                        s.test_loss,
                        s.test_acc
                    );
                }
            }
            Ok(())
        }
        Command::Optimize {
            optimizer,
            problem,
            x0,
            lr,
            beta1,
            beta2,
            eps,
            momentum,
            steps,
            json,
        } => {
            let f = problem_by_name(&problem, x0.len())?;
            if x0.iter().any(|v| !v.is_finite()) {
                bail!("x0 must be finite");
            }
            if !f.value(&x0).is_finite() {
                bail!("{problem} is not finite at x0 = {x0:?}; start closer to the origin");
            }
            let mut spec = OptimizerSpec::parse(&optimizer)?.with_lr(lr);
            (spec.beta1, spec.beta2, spec.eps, spec.momentum) = (beta1, beta2, eps, momentum);
            let opt = spec.point_optimizer(&x0)?;
            optimize(opt, f.as_ref(), x0, lr, steps, json)
        }
    }
}

/// Run a point optimizer and stream its trajectory to stdout (constant memory at any number of
/// steps): every point as JSON, or about 20 evenly spaced lines of text. In JSON mode a run that
/// diverges still ends the document, with an `"error"` field, before the error exit.
fn optimize(
    mut opt: Box<dyn gradlab_optim::point::PointStep>,
    f: &dyn gradlab_data::functions::Objective,
    x0: Vec<f64>,
    lr: f64,
    steps: usize,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let stride = (steps / 20).max(1);
    let emit = |out: &mut dyn Write, step: usize, x: &[f64], v: f64| -> std::io::Result<()> {
        if json {
            let sep = if step == 0 { "" } else { "," };
            write!(
                out,
                "{sep}{}",
                serde_json::json!({"step": step, "x": x, "f": v})
            )
        } else if step.is_multiple_of(stride) || step == steps {
            writeln!(
                out,
                "step {step:>6}  f = {v:<12.6e}  x = {}",
                serde_json::json!(x)
            )
        } else {
            Ok(())
        }
    };
    if json {
        write!(out, "{{\"trajectory\":[")?;
    }
    let mut x = x0;
    emit(&mut out, 0, &x, f.value(&x))?;
    let mut failure = None;
    for step in 1..=steps {
        x = opt.step(lr, &f.grad(&x));
        let v = f.value(&x);
        if !v.is_finite() || x.iter().any(|c| !c.is_finite()) {
            failure = Some(format!(
                "the iterate became non-finite at step {step}; try a smaller --lr"
            ));
            break;
        }
        emit(&mut out, step, &x, v)?;
    }
    if json {
        match &failure {
            Some(e) => writeln!(out, "],\"error\":{}}}", serde_json::json!(e))?,
            None => writeln!(out, "]}}")?,
        }
    }
    out.flush()?;
    match failure {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}

fn list(json: bool) -> Result<()> {
    let done = experiment_ids();
    if json {
        let rows: Vec<_> = SEED_PAPERS.iter().map(|p| serde_json::json!({"title": p.title, "family": p.family, "experiment": p.experiment, "status": if done.contains(&p.experiment) { "done" } else { "planned" }})).collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    outln!(
        "{:<28} {:<8} {:<11} title",
        "experiment",
        "status",
        "family"
    );
    for p in SEED_PAPERS {
        outln!(
            "{:<28} {:<8} {:<11} {}",
            p.experiment,
            if done.contains(&p.experiment) {
                "done"
            } else {
                "planned"
            },
            p.family,
            p.title
        );
    }
    Ok(())
}

fn run_one(id: &str, quick: bool, seed: u64, out: Option<PathBuf>, json: bool) -> Result<()> {
    let exp = find(id).with_context(|| {
        format!(
            "no experiment '{id}'; implemented: {}",
            experiment_ids().join(", ")
        )
    })?;
    let dir = out.unwrap_or_else(|| PathBuf::from("out").join(id));
    check_output_dir(&dir)?;
    let mut ctx = RunContext::new(quick, seed, &dir);
    ctx.progress = !json;
    let outcome = run_experiment(exp.as_ref(), &ctx)?;
    if json {
        outln!("{}", serde_json::to_string(&outcome)?);
    } else {
        out!("{}", outcome.render());
        outln!("figures and result.json in {}", dir.display());
    }
    Ok(())
}

fn reproduce(quick: bool, only: &[String], seed: u64, out: PathBuf) -> Result<()> {
    let mut exps = experiments();
    if !only.is_empty() {
        let known: Vec<&str> = exps.iter().map(|e| e.info().id).collect();
        if let Some(bad) = only.iter().find(|id| !known.contains(&id.as_str())) {
            bail!(
                "--only: no experiment {bad:?} (experiments: {})",
                known.join(", ")
            );
        }
        exps.retain(|e| only.iter().any(|id| id == e.info().id));
    }
    check_output_dir(&out)?;
    let bar = indicatif::ProgressBar::new(exps.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} experiments {msg} [{elapsed_precise}]",
    )?);
    let mut entries = vec![];
    for exp in &exps {
        let id = exp.info().id;
        bar.set_message(id);
        let dir = out.join(id);
        let result = run_experiment(exp.as_ref(), &RunContext::new(quick, seed, &dir))
            .map_err(|e| e.to_string());
        let line = match &result {
            Ok(o) => format!(
                "{id}: {} ({}/{} checks)",
                o.verdict.label(),
                o.checks.iter().filter(|c| c.passed).count(),
                o.checks.len()
            ),
            Err(e) => format!("{id}: error: {e}"),
        };
        // Without a terminal the bar is hidden and would swallow its lines.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        entries.push(ReportEntry {
            id: id.to_string(),
            dir,
            result,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let index = write_index(&out, &entries)?;
    for e in &entries {
        if let Ok(o) = &e.result {
            outln!("{}", o.render());
        }
    }
    outln!("report: {}", index.display());
    if entries.iter().any(|e| e.result.is_err()) {
        bail!("some experiments failed to run");
    }
    Ok(())
}
