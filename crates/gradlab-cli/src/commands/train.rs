//! `gradlab train`: train a classifier on an image set (optimizer, schedule, clipping, TrAct,
//! checkpoint and resume), with a per-epoch table.

use anyhow::{Result, bail};
use gradlab_optim::schedule::Schedule;
use gradlab_optim::spec::OptimizerSpec;
use gradlab_optim::transform::ClipSpec;
use gradlab_train::request::{ModelKind, TrainRequest, run_training_in};
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
    /// Data-parallel training over the MPI processes this command was launched on
    /// (`mpirun -n 4 gradlab train --distributed …`): each process computes the gradient of its
    /// share of every minibatch, the gradients are summed across processes, and every process
    /// takes the same step. Process 0 prints, logs and checkpoints. Needs gradlab built with the
    /// `mpi` feature.
    #[arg(long)]
    pub distributed: bool,
}

/// MPI's environment (finalised when dropped); nothing without the `mpi` feature.
#[cfg(feature = "mpi")]
type Universe = mpi::environment::Universe;
#[cfg(not(feature = "mpi"))]
type Universe = ();

/// In a job of several processes, print the error and stop them all (a process that only
/// returned would leave the others waiting in their next all-reduce); alone, return the error.
#[cfg(feature = "mpi")]
fn stop_group(universe: &Universe, e: anyhow::Error) -> anyhow::Error {
    use mpi::traits::Communicator;
    if universe.world().size() > 1 {
        eprintln!("error: {e:#}");
        universe.world().abort(1)
    }
    e
}
#[cfg(not(feature = "mpi"))]
fn stop_group(_: &Universe, e: anyhow::Error) -> anyhow::Error {
    e
}

/// The data-parallel group of this process: the MPI world (kept alive by the returned universe).
#[cfg(feature = "mpi")]
fn mpi_group() -> Result<(Universe, Box<dyn gradlab_core::collective::Collective>)> {
    let Some(universe) = mpi::initialize() else {
        bail!("MPI could not be initialised (was it already initialised in this process?)");
    };
    // A panic on one process must stop the job: unwinding into MPI_Finalize would leave the
    // others waiting in their next all-reduce.
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        mpi::traits::Communicator::abort(&mpi::topology::SimpleCommunicator::world(), 101);
    }));
    let group = gradlab_mpi::collective::MpiCollective::new(universe.world());
    Ok((universe, Box::new(group)))
}

#[cfg(not(feature = "mpi"))]
fn mpi_group() -> Result<(Universe, Box<dyn gradlab_core::collective::Collective>)> {
    bail!(
        "--distributed needs gradlab built with MPI: install it (apt-get install -y libopenmpi-dev openmpi-bin libclang-dev), build with `cargo build --release -p gradlab-cli --features mpi`, and launch with `mpirun -n 4 target/release/gradlab train --distributed …`"
    )
}

/// Validate, train, print the table (or JSON).
pub fn run(args: Args) -> Result<()> {
    let mut spec = OptimizerSpec::parse(&args.optimizer)?;
    spec.lr = args.lr;
    spec.weight_decay = args.weight_decay;
    spec.module_optimizer()?; // validate before loading anything
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    if args.distributed && args.tract.is_some() {
        bail!(
            "--tract preconditions with the whole minibatch's inputs; it is not available with --distributed"
        );
    }
    // The MPI group first: every process must reach the same collective calls. From here on, an
    // error on one process stops the whole job (a process that only returned would leave the
    // others waiting in their next all-reduce).
    let (universe, group) = match args.distributed {
        true => {
            let (u, g) = mpi_group()?;
            (Some(u), Some(g))
        }
        false => (None, None),
    };
    let trained = train_and_report(args, spec, group);
    match (trained, &universe) {
        (Err(e), Some(u)) => Err(stop_group(u, e)),
        (result, _) => result,
    }
}

/// Train with the validated optimizer `spec` (as one member of `group`, if given) and print the
/// report on process 0.
fn train_and_report(
    args: Args,
    spec: OptimizerSpec,
    group: Option<Box<dyn gradlab_core::collective::Collective>>,
) -> Result<()> {
    let Args {
        model,
        data,
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
        ..
    } = args;
    let distributed = group.is_some();
    let (rank, size) = group.as_ref().map_or((0, 1), |g| (g.rank(), g.size()));
    if batch_size < size {
        bail!(
            "--batch-size {batch_size} is smaller than the {size} processes: every process needs a share of each minibatch"
        );
    }
    // Process 0 speaks for the group; the others train silently.
    let (log, checkpoint, quiet) = match rank {
        0 => (log, checkpoint, json),
        _ => (None, None, true),
    };
    let (train, _) = gradlab_data::images::load_split(&data, seed)?;
    let mut config = TrainConfig::new(spec);
    let total = total_steps(epochs, train.len().div_ceil(batch_size))?;
    config.schedule = Schedule::parse(&schedule, total)?;
    config.loss = loss;
    config.clip = clip.as_deref().map(ClipSpec::parse).transpose()?;
    config.tract = tract;
    config.batch_size = batch_size;
    config.seed = seed;
    config.progress = !quiet;
    config.log = log;
    let request = TrainRequest {
        model,
        data,
        config,
        epochs,
        checkpoint,
        resume,
    };
    let report = run_training_in(&request, group)?;
    if rank != 0 {
        return Ok(());
    }
    if json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        outln!(
            "{} parameters, {} training and {} test examples{}",
            report.parameters,
            report.train_examples,
            report.test_examples,
            if distributed {
                format!(
                    ", data-parallel over {size} process{}",
                    if size == 1 { "" } else { "es" }
                )
            } else {
                String::new()
            }
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
