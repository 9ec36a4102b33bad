//! # gradlab-lab
//!
//! One experiment per paper ([`experiments`], by family), each restating the paper's headline claim as
//! measurable [`experiment::Check`]s; the [`registry`] of experiments and seed papers; the
//! figures ([`plot`]) and the HTML report ([`report`]).
//!
//! ```no_run
//! use gradlab_lab::{experiment::{RunContext, run_experiment}, registry};
//! let exp = registry::find("diffgrad").unwrap();
//! let outcome = run_experiment(exp.as_ref(), &RunContext::new(true, 0, "out/diffgrad")).unwrap();
//! println!("{}", outcome.render());
//! ```

pub mod error;
pub mod experiment;
pub mod experiments;
pub mod joint_newton;
pub mod plot;
pub mod probe;
pub mod registry;
pub mod report;
pub mod results;

pub use error::{LabError, Result};

/// The metered allocator, so that experiments can report measured peak memory (every binary that
/// links the lab — `gradlab`, the lab's tests — counts its heap).
#[global_allocator]
static ALLOC: gradlab_core::memory::MeteredAlloc = gradlab_core::memory::MeteredAlloc;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
