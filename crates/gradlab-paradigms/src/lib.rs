//! # gradlab-paradigms
//!
//! Training without end-to-end backprop, and networks built around their gradients, each as a
//! reusable burn component with a reference test:
//! - [`noprop`]: NoProp-DT, blocks trained to denoise label embeddings, no backprop between them;
//! - [`gbnn`]: gradient-boosted networks, hidden units fitted round by round to pseudo-residuals
//!   and merged into one network, on the host [`one_hidden`] network;
//! - [`normgrad`]: NormGrad saliency (virtual identity layers), Grad-CAM, gradient and meta-saliency.
//!
//! Depends on `gradlab-optim` for L-BFGS, which GBNN fits each unit with.

pub mod error;
pub mod gbnn;
pub mod noprop;
pub mod normgrad;
pub mod one_hidden;

pub use error::{ParadigmError, Result};
