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
use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

/// A multiplicative factor on the base learning rate, per step (0-based).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    /// Linear warm-up (t + 1)/W over the first `warmup` steps, then linear decay
    /// 1 − (t − W)/(T − W) to 0 at `total` (the baseline of the refinement paper's figures).
    WarmupLinear {
        /// Warm-up steps W (≥ 1, < `total`).
        warmup: usize,
        /// Total steps T.
        total: usize,
    },
    /// A factor per step, e.g. from [`crate::refinement`]; 0 after the table ends.
    Table(Vec<f64>),
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Interval.
        every: usize,
        /// Factor per interval.
        gamma: f64,
    },
}

/// Names accepted by [`Schedule::parse`].
pub const SCHEDULE_NAMES: &[&str] = &["constant", "cosine", "linear", "warmup-linear[:F]"];

impl Schedule {
    /// The factor at `step`.
    pub fn factor(&self, step: usize) -> f64 {
        match *self {
            Schedule::Table(ref t) => t.get(step).copied().unwrap_or(0.0),
            Schedule::Constant => 1.0,
            Schedule::Cosine { total, min_factor } => {
                let p = (step as f64 / total.max(1) as f64).min(1.0);
                min_factor + (1.0 - min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
            }
            Schedule::Linear { total } => (1.0 - step as f64 / total.max(1) as f64).max(0.0),
            Schedule::WarmupLinear { warmup, total } => {
                let w = warmup.max(1);
                if step < w {
                    (step + 1) as f64 / w as f64
                } else {
                    (1.0 - (step - w) as f64 / total.saturating_sub(w).max(1) as f64).max(0.0)
                }
            }
            Schedule::Step { every, gamma } => gamma.powi((step / every.max(1)) as i32),
        }
    }

    /// A schedule by name for a run of `total` steps; `warmup-linear:F` warms up over a fraction
    /// F in (0, 1) of the run (5% without `:F`).
    pub fn parse(name: &str, total: usize) -> Result<Self> {
        if let Some(rest) = name.strip_prefix("warmup-linear") {
            let fraction = match rest.strip_prefix(':') {
                Some(f) => f.parse::<f64>().map_err(|_| OptimError::Unknown {
                    what: "schedule",
                    name: name.into(),
                    known: SCHEDULE_NAMES.join(", "),
                })?,
                None if rest.is_empty() => 0.05,
                None => {
                    return Err(OptimError::Unknown {
                        what: "schedule",
                        name: name.into(),
                        known: SCHEDULE_NAMES.join(", "),
                    });
                }
            };
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(OptimError::Invalid {
                    name: "warm-up fraction",
                    value: fraction,
                    requirement: "in (0, 1)",
                });
            }
            let warmup = ((fraction * total as f64).round() as usize).clamp(1, total.max(2) - 1);
            return Ok(Schedule::WarmupLinear { warmup, total });
        }
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

/// A [`Schedule`] on a base learning rate as burn's [`LrScheduler`], for burn's `Learner` and any
/// loop that asks a scheduler for the next rate. Its state is the step count.
#[derive(Debug, Clone)]
pub struct ScheduledLr {
    base: f64,
    schedule: Schedule,
    step: usize,
}

impl ScheduledLr {
    /// `base · schedule.factor(t)` at step t = 0, 1, ….
    pub fn new(base: f64, schedule: Schedule) -> Result<Self> {
        crate::error::check_lr(base)?;
        Ok(Self {
            base,
            schedule,
            step: 0,
        })
    }
}

/// The saved state of a [`ScheduledLr`].
#[derive(Clone, Debug, burn::optim::RecordState)]
pub struct ScheduledLrState {
    step: usize,
}

impl LrScheduler for ScheduledLr {
    fn step(&mut self) -> LearningRate {
        let lr = self.base * self.schedule.factor(self.step);
        self.step += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::from_state(&ScheduledLrState { step: self.step })
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(s) = record.into_state::<ScheduledLrState>() {
            self.step = s.step;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_follows_the_factors_and_resumes() {
        let mut s = ScheduledLr::new(0.5, Schedule::Table(vec![1.0, 0.5, 0.25])).unwrap();
        assert_eq!((s.step(), s.step()), (0.5, 0.25));
        let rec = s.to_record();
        let mut r = ScheduledLr::new(0.5, Schedule::Table(vec![1.0, 0.5, 0.25])).unwrap();
        r.load_record(rec);
        assert_eq!(r.step(), 0.125);
        assert_eq!(r.step(), 0.0);
        let lin = Schedule::Linear { total: 4 };
        assert_eq!(
            (0..5).map(|t| lin.factor(t)).collect::<Vec<_>>(),
            vec![1.0, 0.75, 0.5, 0.25, 0.0]
        );
        assert!(ScheduledLr::new(0.0, Schedule::Constant).is_err());
    }

    #[test]
    fn warmup_then_linear_decay() {
        // W = 2, T = 6: 1/2, 1, then 1 − (t − 2)/4.
        let s = Schedule::WarmupLinear {
            warmup: 2,
            total: 6,
        };
        assert_eq!(
            (0..7).map(|t| s.factor(t)).collect::<Vec<_>>(),
            vec![0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
        );
        assert_eq!(
            Schedule::parse("warmup-linear:0.25", 8).unwrap(),
            Schedule::WarmupLinear {
                warmup: 2,
                total: 8
            }
        );
        assert_eq!(
            Schedule::parse("warmup-linear", 100).unwrap(),
            Schedule::WarmupLinear {
                warmup: 5,
                total: 100
            }
        );
        assert!(Schedule::parse("warmup-linear:1.5", 8).is_err());
        assert!(Schedule::parse("warmup-linear:x", 8).is_err());
        assert!(Schedule::parse("warmup-linearx", 8).is_err());
    }
}
