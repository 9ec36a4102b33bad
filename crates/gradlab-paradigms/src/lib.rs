//! # gradlab-paradigms
//!
//! Training without end-to-end backprop, and networks built around their gradients, each as a
//! reusable burn component with a reference test:
//! - [`noprop`]: NoProp-DT, blocks trained to denoise label embeddings, no backprop between them;
//! - [`gbnn`]: gradient-boosted networks, hidden units fitted round by round to pseudo-residuals
//!   and merged into one network, on the host [`one_hidden`] network;
//! - [`normgrad`]: NormGrad saliency (virtual identity layers), Grad-CAM, gradient and meta-saliency;
//! - [`revcol`]: reversible column networks and their reconstructing backward pass;
//! - [`sorting`]: differentiable sorting networks (odd–even, bitonic) returning soft permutations;
//! - [`groco`]: the GroCo group-ordering loss built on them, and the NT-Xent baselines;
//! - [`pgi`]: YOLOv9's programmable gradient information around a GELAN classifier;
//! - [`gradient_reversal`]: the gradient reversal layer and its progress schedule;
//! - [`viws_net`]: ViWS-Net at small scale: weather messengers and a reversed weather
//!   discriminator around one restoration network.
//!
//! Depends on `gradlab-optim` for L-BFGS, which GBNN fits each unit with.

pub mod error;
pub mod gbnn;
pub mod gradient_reversal;
pub mod groco;
pub mod noprop;
pub mod normgrad;
pub mod one_hidden;
pub mod pgi;
pub mod revcol;
pub mod sorting;
pub mod viws_net;

pub use error::{ParadigmError, Result};
