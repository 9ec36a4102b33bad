//! Errors of experiments and training.

use std::path::PathBuf;

/// Anything that stops an experiment or a training run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A data set problem.
    #[error(transparent)]
    Data(#[from] gradlab_data::DataError),
    /// An optimizer configuration problem.
    #[error(transparent)]
    Optim(#[from] gradlab_optim::OptimError),
    /// A training run, checkpoint or output file problem.
    #[error(transparent)]
    Train(#[from] gradlab_train::TrainError),
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A Hessian or spectrum computation failed.
    #[error(transparent)]
    Curvature(#[from] gradlab_curvature::CurvatureError),
    /// A generative-model computation failed.
    #[error(transparent)]
    Generative(#[from] gradlab_generative::GenError),
    /// A training-paradigm component failed.
    #[error(transparent)]
    Paradigm(#[from] gradlab_paradigms::ParadigmError),
    /// A reinforcement-learning component failed.
    #[error(transparent)]
    Rl(#[from] gradlab_rl::RlError),
    /// A distributed-gradient component failed.
    #[error(transparent)]
    Distributed(#[from] gradlab_distributed::DistError),
    /// A linear-solver component failed.
    #[error(transparent)]
    Solver(#[from] gradlab_solvers::SolverError),
    /// A tensor could not be read back, or a vector does not fit.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
    /// An argument outside its range.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, LabError>;

/// Wrap an error with the file it concerns.
pub fn file_err(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> LabError {
    LabError::File {
        path: path.into(),
        reason: e.to_string(),
    }
}
