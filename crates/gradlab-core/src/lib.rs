//! # gradlab-core
//!
//! The two conversions every gradlab crate needs, written once and returning errors instead of
//! empty or NaN vectors: tensors to and from host vectors ([`bridge`]), and a module's float
//! parameters, or their gradients, as one flat vector on the device ([`flat`], the visitor/mapper
//! pair of burn's own L-BFGS); and the one shape of an optimisation problem over flat vectors
//! ([`problem`]: a capability per trait, in argmin's manner) with the one loop that runs an
//! iterative method on it and reports every iteration to an observer ([`solve`]).

pub mod bridge;
pub mod collective;
pub mod flat;
pub mod memory;
pub mod problem;
pub mod solve;

/// Why a conversion failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CoreError {
    /// The tensor's data could not be read back to the host.
    #[error("reading a tensor back to the host failed: {0}")]
    Read(String),
    /// A vector of the wrong length.
    #[error("{what}: {got} values where {expected} are needed")]
    Length {
        /// What the values were for.
        what: &'static str,
        /// The length needed.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A parameter has no gradient (it is not on the loss's path, or the gradients are stale).
    #[error("parameter {0} has no gradient")]
    MissingGradient(String),
    /// A problem's value, gradient or curvature is not finite.
    #[error("non-finite {what} at iteration {iteration}")]
    NonFinite {
        /// What was not finite.
        what: String,
        /// The iteration (0: the starting point).
        iteration: usize,
    },
    /// A problem or method could not do what was asked (a failed factorisation, a model that
    /// could not be evaluated), with the reason.
    #[error("{0}")]
    Failed(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;
