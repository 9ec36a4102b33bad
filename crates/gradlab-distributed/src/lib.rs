//! # gradlab-distributed
//!
//! Sequential gradient coding (Ebrahimi et al., "Sequential Gradient Coding For Straggler
//! Mitigation", ICLR 2023) and what it runs on:
//!
//! - [`code`]: a job's gradient as the sum of partition gradients, tasks as linear combinations of
//!   partitions, and the one generic decoder (find a with Σ aₖ·taskₖ = Σ partitions, by least
//!   squares; a job is decodable exactly when such a exists);
//! - [`gradient_code`]: the classic gradient code of Tandon et al. (cyclic support, any n − s
//!   workers suffice), with the official simulator's `< s` convention beside Tandon's `≤ s`;
//! - [`straggler`]: the (B, W, λ)-bursty straggler model and a delay model (lognormal per-round
//!   times with Gilbert–Elliott bursts of slow rounds);
//! - [`selective_repeat`] (SR-SGC) and [`multiplexed`] (M-SGC): the sequential codes;
//! - [`simulate`]: rounds driven by a delay matrix with the official wait rule;
//! - [`runtime`]: a master and workers exchanging tasks and results over a [`runtime::Transport`]
//!   (threads and channels here; MPI in the `gradlab-mpi` crate, launched with `mpirun`, messages
//!   flattened by [`wire`]); [`timing`]: wall-time runs described as data (JSON), for a runner in
//!   another process.

pub mod code;
pub mod gradient_code;
pub mod multiplexed;
pub mod runtime;
pub mod selective_repeat;
pub mod simulate;
pub mod straggler;
pub mod timing;
pub mod wire;

/// Why a distributed component could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DistError {
    /// An invalid setting.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// A job could not be decoded from what arrived.
    #[error("job {job} cannot be decoded from the results that arrived ({why})")]
    Undecodable {
        /// The job.
        job: usize,
        /// What was missing.
        why: String,
    },
    /// A straggler pattern that the scheme's model does not admit was asked of it.
    #[error("straggler pattern at round {round} is outside the model: {why}")]
    OutsideModel {
        /// The round.
        round: usize,
        /// Which condition failed.
        why: String,
    },
    /// A worker failed or disappeared.
    #[error("worker {worker} failed: {why}")]
    Worker {
        /// The worker.
        worker: usize,
        /// What happened.
        why: String,
    },
    /// The transport failed (a closed channel, an MPI error, a world of the wrong size).
    #[error("transport: {0}")]
    Transport(String),
    /// Vectors of the wrong length.
    #[error("{what}: {got} values where {expected} are needed")]
    Shape {
        /// What they were.
        what: &'static str,
        /// Needed.
        expected: usize,
        /// Given.
        got: usize,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, DistError>;

pub(crate) fn ensure(ok: bool, what: &'static str, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(DistError::Invalid { what, why: why() })
    }
}
