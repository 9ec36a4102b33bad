//! Errors of training runs, checkpoints and output files.

use std::path::PathBuf;

/// Anything that stops a training run, a checkpoint or an output file.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A data set problem.
    #[error(transparent)]
    Data(#[from] gradlab_data::DataError),
    /// An optimizer configuration problem.
    #[error(transparent)]
    Optim(#[from] gradlab_optim::OptimError),
    /// The loss or a gradient stopped being finite.
    #[error("training diverged at step {step}: {what} is not finite")]
    NonFinite {
        /// The step (0-based) at which it happened.
        step: usize,
        /// What was not finite ("the loss", "the gradient of layers.0.weight", …).
        what: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A checkpoint that does not fit the run.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint directory.
        path: PathBuf,
        /// What does not fit.
        reason: String,
    },
    /// A gradient that a method needs was not computed.
    #[error("missing gradient: {0}")]
    MissingGradient(String),
    /// An argument outside its range.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Data-parallel training: members that do not agree, or a member that failed.
    #[error("data-parallel training: {0}")]
    Distributed(String),
    /// A tensor could not be read back, or a vector does not fit.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

/// Wrap an error with the file it concerns.
pub fn file_err(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> TrainError {
    TrainError::File {
        path: path.into(),
        reason: e.to_string(),
    }
}
