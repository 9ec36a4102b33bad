//! `gradlab train`: train a classifier on an image set (optimizer, schedule, clipping, TrAct,
//! checkpoint and resume), with a per-epoch table.

use anyhow::{Result, bail};
use gradlab_optim::schedule::Schedule;
use gradlab_optim::spec::OptimizerSpec;
use gradlab_optim::transform::ClipSpec;
use gradlab_train::request::{ModelKind, TrainRequest, run_training};
use gradlab_train::{LossKind, TrainConfig, total_steps};
use std::path::PathBuf;

/// The arguments of `gradlab train`.
#[derive(clap::Args)]
pub struct Args {
    /// The classifier.
    #[arg(long, value_enum, default_value_t = ModelKind::Mlp, ignore_case = true)]
    pub model: ModelKind,
    /// digits, mnist1k, fashion1k, mnist or fashion.
    #[arg(long, default_value = "digits")]
    pub data: String,
    /// sgd, sgdm, adam, adamw, amsgrad, adagrad, adadelta, rmsprop or diffgrad.
    #[arg(long, default_value = "adam")]
    pub optimizer: String,
    /// Learning rate (default: PyTorch's for the optimizer).
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Weight decay.
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// constant, cosine, linear or warmup-linear[:F] (linear warm-up over a fraction F of the
    /// run, 5% by default, then linear decay).
    #[arg(long, default_value = "constant")]
    pub schedule: String,
    /// The training loss.
    #[arg(long, value_enum, default_value_t = LossKind::CrossEntropy, ignore_case = true)]
    pub loss: LossKind,
    /// Gradient clipping before the optimizer: global-norm:C, tensor-norm:C, value:C or top:C
    /// (top: coordinate-wise clipping of the top fraction C).
    #[arg(long)]
    pub clip: Option<String>,
    /// TrAct on the first layer with this λ (mlp and cnn; the paper's default is 0.1).
    #[arg(long, allow_negative_numbers = true)]
    pub tract: Option<f64>,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Minibatch size.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    /// Seed of the split, the initial weights and the batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Append one JSON line per epoch to this file.
    #[arg(long)]
    pub log: Option<PathBuf>,
    /// Save a checkpoint into this directory at the end.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Resume from this checkpoint directory.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Print the per-epoch statistics as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Validate, train, print the table (or JSON).
pub fn run(args: Args) -> Result<()> {
    let Args {
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
    } = args;

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
    config.loss = loss;
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
