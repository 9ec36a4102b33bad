//! Errors of the training paradigms.

/// Why a paradigm's component could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParadigmError {
    /// A configuration or argument outside its range, with the value named.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// Inputs of the wrong shape for the model.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// A loss or output that is not finite.
    #[error("non-finite {what} at step {step}")]
    NonFinite {
        /// What was not finite.
        what: &'static str,
        /// The training step.
        step: usize,
    },
    /// An optimiser (L-BFGS, Adam) refused its settings or failed.
    #[error(transparent)]
    Optim(#[from] gradlab_optim::OptimError),
    /// A tensor could not be read back, a vector does not fit, or a gradient is missing.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ParadigmError>;

/// An [`ParadigmError::Invalid`] error.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(ParadigmError::Invalid(msg.into()))
}
