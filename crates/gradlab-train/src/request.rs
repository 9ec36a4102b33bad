//! Training runs described by names, as the CLI's `train` command takes them: a model by name
//! ([`with_model`]), a data set by name, checkpoint and resume directories checked before the
//! training starts ([`run_training`]).

use crate::checkpoint::load_set;
use crate::error::{Result, TrainError, file_err};
use crate::output::check_output_dir;
use crate::trainer::{
    CheckpointMeta, EpochStats, TrainConfig, Trainer, autodiff_device, total_steps,
};
use gradlab_core::collective::Collective;
use gradlab_data::ImageSet;
use gradlab_nets::Net;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The classifiers a run can build by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum ModelKind {
    /// An MLP with hidden layers 128-128 (`gradlab_nets::mlp::Mlp`).
    #[default]
    Mlp,
    /// The small CNN (`gradlab_nets::cnn::SmallCnn`).
    Cnn,
    /// The small ResNet (`gradlab_nets::resnet::SmallResNet`).
    Resnet,
}

impl ModelKind {
    /// Every kind.
    pub const ALL: [ModelKind; 3] = [ModelKind::Mlp, ModelKind::Cnn, ModelKind::Resnet];

    /// The name, as parsed.
    pub fn id(self) -> &'static str {
        match self {
            ModelKind::Mlp => "mlp",
            ModelKind::Cnn => "cnn",
            ModelKind::Resnet => "resnet",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for ModelKind {
    type Err = TrainError;
    /// `mlp`, `cnn` or `resnet`, in any case.
    fn from_str(name: &str) -> Result<Self> {
        let lower = name.to_ascii_lowercase();
        ModelKind::ALL
            .into_iter()
            .find(|k| k.id() == lower)
            .ok_or_else(|| {
                TrainError::Invalid(format!("unknown model '{name}'; known: mlp, cnn, resnet"))
            })
    }
}

/// A training run described by names, as the CLI's `train` command takes it.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The classifier.
    pub model: ModelKind,
    /// A name from [`gradlab_data::images::IMAGE_SET_NAMES`].
    pub data: String,
    /// The run's settings.
    pub config: TrainConfig,
    /// Epochs to train.
    pub epochs: usize,
    /// Save a checkpoint here at the end.
    pub checkpoint: Option<PathBuf>,
    /// Resume from this checkpoint first.
    pub resume: Option<PathBuf>,
}

/// Result of [`run_training`].
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Parameters of the model.
    pub parameters: usize,
    /// Training examples.
    pub train_examples: usize,
    /// Test examples.
    pub test_examples: usize,
    /// Per-epoch statistics.
    pub epochs: Vec<EpochStats>,
}

fn fit_model<M: Net>(
    model: M,
    req: &TrainRequest,
    group: Option<Box<dyn Collective>>,
    train: &ImageSet,
    test: &ImageSet,
) -> Result<TrainReport> {
    let parameters = model.num_params();
    let mut trainer = Trainer::new(model, req.config.clone())?;
    if let Some(dir) = &req.resume {
        trainer = trainer.resume(dir)?;
        let bpe = trainer.batches_per_epoch(train.len().max(1));
        let done = trainer.step_count();
        if done >= total_steps(req.epochs, bpe)? {
            return Err(TrainError::Invalid(format!(
                "nothing to do: the checkpoint in {} has trained {} epochs ({done} steps); ask for more than {} --epochs to continue it",
                dir.display(),
                done / bpe,
                done / bpe
            )));
        }
    }
    if let Some(group) = group {
        trainer = trainer.data_parallel(group)?;
    }
    // With --checkpoint, the checkpoint is renewed after every epoch, so that an interrupted
    // run resumes where it stopped (with the same --epochs, the same run as a straight one). In
    // data-parallel training member 0 writes it (every member holds the same model).
    let epochs = trainer.fit_with(train, test, req.epochs, |t, _| match &req.checkpoint {
        Some(dir) if t.member().0 == 0 => t.save_checkpoint(dir),
        _ => Ok(()),
    })?;
    Ok(TrainReport {
        parameters,
        train_examples: train.len(),
        test_examples: test.len(),
        epochs,
    })
}

/// Work to do with a freshly built model of whichever architecture a name picks.
pub trait ModelJob {
    /// What the work returns.
    type Output;
    /// Its error (a model that cannot be built is a [`TrainError`]).
    type Error: From<TrainError>;
    /// Do it with `model`.
    fn run<M: Net>(self, model: M) -> std::result::Result<Self::Output, Self::Error>;
}

/// Build model `name` for images shaped like `set` on the autodiff device, seeded with `seed`
/// (`mlp`: hidden layers 128-128; `cnn`; `resnet`), and hand it to `job`.
pub fn with_model<J: ModelJob>(
    kind: ModelKind,
    set: &ImageSet,
    seed: u64,
    job: J,
) -> std::result::Result<J::Output, J::Error> {
    use gradlab_nets::{cnn::SmallCnnConfig, mlp::MlpConfig, resnet::SmallResNetConfig};
    let dev = autodiff_device();
    let (c, h, w, k) = (set.channels, set.height, set.width, set.classes);
    let fits = |r: std::result::Result<(), String>| {
        r.map_err(|e| TrainError::Invalid(format!("data set '{}': {e}", set.name)))
    };
    fits(gradlab_nets::check_image_input(kind.id(), [c, h, w], 1))?;
    match kind {
        ModelKind::Mlp => {
            job.run(MlpConfig::new(vec![set.feature_dim(), 128, 128, k]).init(&dev, seed))
        }
        ModelKind::Cnn => {
            let cfg = SmallCnnConfig::new(c, h, w, k);
            fits(cfg.validate())?;
            job.run(cfg.init(&dev, seed))
        }
        ModelKind::Resnet => {
            let cfg = SmallResNetConfig::new(c, h, w, k);
            fits(cfg.validate())?;
            job.run(cfg.init(&dev, seed))
        }
    }
}

struct Fit<'a> {
    req: &'a TrainRequest,
    group: Option<Box<dyn Collective>>,
    train: &'a ImageSet,
    test: &'a ImageSet,
}

impl ModelJob for Fit<'_> {
    type Output = TrainReport;
    type Error = TrainError;
    fn run<M: Net>(self, model: M) -> Result<TrainReport> {
        fit_model(model, self.req, self.group, self.train, self.test)
    }
}

/// Load the data, build the model (seeded with the run's seed) and train it. Every output
/// location (checkpoint directory, log file) is checked before the training starts.
pub fn run_training(req: &TrainRequest) -> Result<TrainReport> {
    run_training_in(req, None)
}

/// [`run_training`] as one member of a data-parallel `group` ([`Trainer::data_parallel`]); every
/// member calls it with the same request. Member 0 writes the checkpoint and the log; give the
/// other members neither (and no progress bar).
pub fn run_training_in(
    req: &TrainRequest,
    group: Option<Box<dyn Collective>>,
) -> Result<TrainReport> {
    if req.epochs == 0 {
        return Err(TrainError::Invalid("--epochs must be at least 1".into()));
    }
    if let Some(dir) = &req.checkpoint {
        crate::checkpoint::check_destination(dir)?;
        check_output_dir(dir)?;
    }
    if let Some(log) = &req.config.log {
        check_log_file(log)?;
    }
    let (train, test) = gradlab_data::images::load_split(&req.data, req.config.seed)?;
    let mut req = req.clone();
    if req.config.data.is_none() {
        req.config.data = Some(data_label(&req.data, &train));
    }
    let job = Fit {
        req: &req,
        group,
        train: &train,
        test: &test,
    };
    with_model(req.model, &train, req.config.seed, job)
}

/// The configuration a checkpoint in `dir` was saved with (after verifying its files).
pub fn checkpoint_config(dir: &Path) -> Result<TrainConfig> {
    let gdir = load_set(dir)?;
    let path = gdir.join("trainer.json");
    let text = std::fs::read_to_string(&path).map_err(|e| file_err(&path, e))?;
    let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| file_err(&path, e))?;
    Ok(meta.config)
}

/// A training set's name, size and a checksum of its pixels and labels: what a checkpoint records
/// so that resuming on other data (another `$GRADLAB_DATA`, say) is refused.
pub fn data_label(name: &str, set: &ImageSet) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for v in &set.images {
        h.update(v.to_le_bytes());
    }
    h.update(&set.labels);
    let digest = format!("{:x}", h.finalize());
    format!(
        "{name} ({} images of {}×{}×{}, sha256 {})",
        set.len(),
        set.channels,
        set.height,
        set.width,
        &digest[..12]
    )
}

/// A log file must be appendable: not a directory, in a writable place.
fn check_log_file(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(file_err(path, "is a directory, not a log file"));
    }
    check_output_dir(&crate::output::parent_dir(path))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(drop)
        .map_err(|e| file_err(path, crate::output::io_reason(&e)))
}
