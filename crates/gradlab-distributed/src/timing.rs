//! Wall-time runs of gradient-coding schemes described as data, so that one process can ask
//! another to run them: a [`TimingSpec`] (written as JSON by the `gradient-coding` experiment,
//! read by `gradlab-mpi-check --timing FILE`, which runs it on MPI processes with
//! `gradlab_mpi::timing::run_timing`) lists the schemes with their injected delays; each runs
//! least-squares gradient descent ([`crate::runtime::synthetic_least_squares`]); the runner reports
//! one [`TimingResult`] per scheme.

use crate::gradient_code::{Convention, GcScheme};
use crate::multiplexed::MSgc;
use crate::selective_repeat::SrSgc;
use crate::simulate::Scheme;
use crate::straggler::BurstyModel;
use crate::{DistError, Result};
use serde::{Deserialize, Serialize};

/// A scheme by its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SchemeSpec {
    /// The classic gradient code for s stragglers (Tandon's ≤ s; s = 0 is uncoded).
    Gc {
        /// Workers.
        n: usize,
        /// Stragglers tolerated.
        s: usize,
    },
    /// Selective-repeat SGC under the (B, W, λ) model.
    SrSgc {
        /// Workers.
        n: usize,
        /// Burst length.
        b: usize,
        /// Window.
        w: usize,
        /// Stragglers per burst.
        lambda: usize,
    },
    /// Multiplexed SGC under the (B, W, λ) model.
    MSgc {
        /// Workers.
        n: usize,
        /// Burst length.
        b: usize,
        /// Window.
        w: usize,
        /// Stragglers per burst.
        lambda: usize,
    },
}

impl SchemeSpec {
    /// The scheme (seed 0, as the thread runs of the experiment build them).
    pub fn build(&self) -> Result<Box<dyn Scheme>> {
        Ok(match *self {
            SchemeSpec::Gc { n, s } => Box::new(GcScheme::new(n, s, Convention::Tandon, 0)?),
            SchemeSpec::SrSgc { n, b, w, lambda } => {
                Box::new(SrSgc::new(n, BurstyModel::new(b, w, lambda)?, 0)?)
            }
            SchemeSpec::MSgc { n, b, w, lambda } => {
                Box::new(MSgc::new(n, BurstyModel::new(b, w, lambda)?, 0)?)
            }
        })
    }
}

/// One timed scheme: its parameters and the delay injected into each worker in each round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedScheme {
    /// The scheme.
    pub scheme: SchemeSpec,
    /// `delays_ms[round][worker]`: the worker's sleep before answering, in milliseconds.
    pub delays_ms: Vec<Vec<f64>>,
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingSpec {
    /// Jobs (decoded gradients) per scheme.
    pub jobs: usize,
    /// The wait rule's μ.
    pub mu: f64,
    /// Gradient-descent step.
    pub lr: f64,
    /// Rows and features of the least-squares problem.
    pub rows: usize,
    /// Features.
    pub dim: usize,
    /// Seconds the master waits for a round before the run is an error.
    pub deadline_s: f64,
    /// The schemes, run in this order.
    pub schemes: Vec<TimedScheme>,
}

/// One scheme's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimingResult {
    /// The scheme's name.
    pub name: String,
    /// Total wall time of its rounds, in seconds.
    pub wall_s: f64,
    /// Rounds.
    pub rounds: usize,
    /// Rounds in which the master waited for every worker.
    pub waited_for_all: usize,
}

impl TimingSpec {
    /// Every scheme built and checked: the same number of workers everywhere, a delay for every
    /// worker in every round the scheme runs, delays finite and non-negative.
    pub fn schemes(&self) -> Result<Vec<Box<dyn Scheme>>> {
        let bad = |why: String| DistError::Invalid {
            what: "timing spec",
            why,
        };
        if self.schemes.is_empty() || self.jobs == 0 {
            return Err(bad("no schemes or no jobs".into()));
        }
        if !(self.deadline_s > 0.0 && self.deadline_s <= 3600.0) {
            return Err(bad(format!(
                "deadline_s {} is not in (0, 3600] seconds",
                self.deadline_s
            )));
        }
        if !(self.mu.is_finite() && self.mu >= 0.0 && self.lr.is_finite())
            || self.rows == 0
            || self.dim == 0
        {
            return Err(bad(
                "mu must be finite and ≥ 0, lr finite, rows and dim at least 1".into(),
            ));
        }
        let mut out = vec![];
        for t in &self.schemes {
            let s = t.scheme.build()?;
            let rounds = self.jobs + s.lag();
            if t.delays_ms.len() < rounds
                || t.delays_ms.iter().any(|r| r.len() != s.n())
                || t.delays_ms
                    .iter()
                    .flatten()
                    .any(|d| !d.is_finite() || *d < 0.0)
            {
                return Err(bad(format!(
                    "{} needs {rounds} rounds of {} finite non-negative delays",
                    s.name(),
                    s.n()
                )));
            }
            if s.n() != out.first().map_or(s.n(), |f: &Box<dyn Scheme>| f.n()) {
                return Err(bad("the schemes have different numbers of workers".into()));
            }
            out.push(s);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips_through_json_and_bad_delays_are_refused() {
        let mut spec = TimingSpec {
            jobs: 2,
            mu: 0.3,
            lr: 0.5,
            rows: 48,
            dim: 4,
            deadline_s: 20.0,
            schemes: vec![TimedScheme {
                scheme: SchemeSpec::MSgc {
                    n: 4,
                    b: 1,
                    w: 3,
                    lambda: 1,
                },
                delays_ms: vec![vec![1.0; 4]; 8],
            }],
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert!(text.contains("\"kind\":\"m-sgc\""), "{text}");
        let back: TimingSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        assert_eq!(back.schemes().unwrap()[0].n(), 4);
        spec.schemes[0].delays_ms[1][2] = f64::NAN;
        assert!(spec.schemes().is_err());
        spec.schemes[0].delays_ms = vec![vec![1.0; 4]; 1]; // fewer rounds than the run needs
        assert!(spec.schemes().is_err());
        spec.schemes[0].delays_ms = vec![vec![1.0; 4]; 8];
        assert!(spec.schemes().is_ok());
        for deadline in [f64::NAN, -1.0, 0.0, 1e300] {
            spec.deadline_s = deadline;
            assert!(spec.schemes().is_err(), "deadline {deadline}");
        }
    }
}
