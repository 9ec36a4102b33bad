//! Learning-rate schedules as pure functions of the step, so that a resumed run continues with
//! exactly the rate it would have had.
//!
//! ```
//! use gradlab_optim::schedule::Schedule;
//! let s = Schedule::Cosine { total: 100, min_factor: 0.0 };
//! assert_eq!(s.factor(0), 1.0);
//! assert!(s.factor(100).abs() < 1e-12);
//! ```

use crate::error::{OptimError, Result};

/// A multiplicative factor on the base learning rate, per step (0-based).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Schedule {
    /// Factor 1.
    Constant,
    /// Cosine from 1 to `min_factor` over `total` steps (constant after).
    Cosine {
        /// Steps of the decay.
        total: usize,
        /// Final factor.
        min_factor: f64,
    },
    /// Linear decay 1 − t/T to 0 over `total` steps.
    Linear {
        /// Steps of the decay.
        total: usize,
    },
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Interval.
        every: usize,
        /// Factor per interval.
        gamma: f64,
    },
}

/// Names accepted by [`Schedule::parse`].
pub const SCHEDULE_NAMES: &[&str] = &["constant", "cosine", "linear"];

impl Schedule {
    /// The factor at `step`.
    pub fn factor(&self, step: usize) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::Cosine { total, min_factor } => {
                let p = (step as f64 / total.max(1) as f64).min(1.0);
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Schedule::Linear { total } => (1.0 - step as f64 / total.max(1) as f64).max(0.0),
            Schedule::Step { every, gamma } => gamma.powi((step / every.max(1)) as i32),
        }
    }

    /// A schedule by name for a run of `total` steps.
    pub fn parse(name: &str, total: usize) -> Result<Self> {
        match name {
            "constant" => Ok(Schedule::Constant),
            "cosine" => Ok(Schedule::Cosine {
                total,
                min_factor: 0.0,
            }),
            "linear" => Ok(Schedule::Linear { total }),
            other => Err(OptimError::Unknown {
                what: "schedule",
                name: other.into(),
                known: SCHEDULE_NAMES.join(", "),
            }),
        }
    }
}
