//! Errors of the data layer.

use std::path::PathBuf;

/// Everything that can go wrong while reading or building a data set.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A data set file is not on disk.
    #[error("data set file {path} is missing: run `{hint}` to fetch it")]
    Missing {
        /// The path that was looked for.
        path: PathBuf,
        /// The command that fetches it.
        hint: String,
    },
    /// A file exists but its content is not what the format requires.
    #[error("malformed file {file} at byte {offset}: {reason}")]
    Malformed {
        /// The file (or embedded resource) name.
        file: String,
        /// Byte offset in the (decompressed) content where the problem was found.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// An I/O error other than a missing file.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// The path being read.
        path: PathBuf,
        /// What went wrong (the I/O error's text; not chained as a source, so it prints once).
        reason: String,
    },
    /// An argument is outside its valid range.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DataError>;

/// Reject an invalid argument with a message.
pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(DataError::Invalid(msg.into()))
}
