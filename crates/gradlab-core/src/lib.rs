//! # gradlab-core
//!
//! The two conversions every gradlab crate needs, written once and returning errors instead of
//! empty or NaN vectors: tensors to and from host vectors ([`bridge`]), and a module's float
//! parameters, or their gradients, as one flat vector on the device ([`flat`], the visitor/mapper
//! pair of burn's own L-BFGS).

pub mod bridge;
pub mod flat;

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
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, CoreError>;
