//! # gradlab-train
//!
//! The supervised training loop for any [`gradlab_nets::Net`] on an image set ([`trainer`]):
//! optimizer, gradient transforms and schedule by value, seeded minibatches, per-epoch statistics,
//! a JSONL log, a progress bar, exact checkpoint/resume ([`checkpoint`]), and a clear error naming
//! the step when the loss or a gradient stops being finite. Output files are checked before work
//! starts and written atomically ([`output`]).
//!
//! The example is in [`trainer`].

pub mod checkpoint;
pub mod error;
pub mod output;
pub mod request;
pub mod trainer;

pub use error::{Result, TrainError};
pub use gradlab_nets::{LossKind, autodiff_device};
pub use trainer::{EpochStats, StepStats, TrainConfig, Trainer, evaluate, total_steps};
