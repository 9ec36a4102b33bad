//! # gradlab-curvature
//!
//! Curvature of losses written with burn tensors. burn 0.22 differentiates once only, so
//! Hessian-vector products are central differences of two autodiff gradients, in f64
//! ([`hvp::FiniteDiffHvp`]), behind the [`hvp::HessianVectorProduct`] trait so that an exact
//! provider can replace it later. [`spectrum`] turns HVPs into top eigenvalues (power iteration,
//! Lanczos), spectral densities (SLQ) and traces (Hutchinson); [`opposing_signals`] finds the
//! groups of examples that pull training in opposite directions; [`model`] gives a burn
//! classifier's loss, gradient, per-example gradients and outputs at any flat parameter vector as
//! a [`gradlab_core::problem`] problem, for HVPs and Gauss–Newton products of real networks.

pub mod gauss_newton;
pub mod hvp;
pub mod model;
pub mod opposing_signals;
pub mod sharpness;
pub mod spectrum;

pub use gauss_newton::{GaussNewton, OutputLoss};
pub use hvp::{CurvatureError, FiniteDiffHvp, HessianVectorProduct, OracleHvp};
