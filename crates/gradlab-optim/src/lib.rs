//! # gradlab-optim
//!
//! Optimizers as burn [`burn::optim::Optimizer`]s, so they drop into any burn training loop
//! through [`burn::optim::ModuleOptimizer`]:
//!
//! - baselines with PyTorch semantics and validated configurations: [`sgd`], [`adam`] (Adam,
//!   AdamW, AMSGrad), [`adagrad`], [`adadelta`], [`rmsprop`];
//! - the papers' methods: [`diffgrad`], [`adam_clip`] and the coordinate clipping of
//!   [`transform`] (Adam vs SGD), [`refinement`] of schedules, [`adadagrad`] batch-size tests,
//!   [`tract`], [`target_surrogate`], differentially private [`dp_sgd`] and [`diff2`] with the
//!   Rényi-DP accountant of [`privacy`], the [`mfac`] inverse-Fisher preconditioner,
//!   gradient-regularized Newton ([`grad_norm_smooth`]), [`coherent_gradients`] statistics and
//!   robust aggregations;
//! - a flat-vector [`lbfgs`] (L-BFGS with an Armijo line search) for full-batch baselines;
//! - optax-style gradient [`transform`]ations that chain in front of any optimizer;
//! - [`schedule`]s (also as burn `LrScheduler`s), optimizers by name ([`spec`]) and a vector
//!   runner ([`point`]).
//!
//! Three shapes, one per idea: an element-wise update rule is a burn `Optimizer` (on flat vectors
//! through [`point::PointOptimizer`] and [`point::Descent`]); a transformation of the whole
//! gradient is a [`transform::GradientTransform`]; a method that owns its iterate and needs more
//! than one gradient (Hessians, per-example gradients, outputs, a privacy budget) is a
//! [`gradlab_core::solve::Solver`] over the [`gradlab_core::problem`] capabilities it needs —
//! [`grad_norm_smooth`], [`dp_sgd`], [`diff2`], [`adadagrad::AdAdaGrad`],
//! [`target_surrogate`], [`point::Descent`]. Hyperparameters are `#[derive(Config)]` structs whose
//! `init()` validates them.
//!
//! ```
//! use burn::prelude::*;
//! use burn::nn::{Linear, LinearConfig};
//! use burn::optim::GradientsParams;
//! use gradlab_optim::diffgrad::DiffGradConfig;
//!
//! let dev = Device::flex().autodiff();
//! let mut model: Linear = LinearConfig::new(3, 1).init(&dev);
//! let mut opt = DiffGradConfig::new().init().unwrap();
//! let x = Tensor::<2>::ones([4, 3], &dev);
//! for _ in 0..3 {
//!     let loss = model.forward(x.clone()).square().mean();
//!     let grads = GradientsParams::from_grads(loss.backward(), &model);
//!     model = opt.step(1e-3, model, grads);
//! }
//! ```

// `#[derive(RecordState)]` expands to paths under the crate root.
#[allow(unused_imports)]
use burn::optim::{RecordState, StateSink, StateSource, join_path};

pub mod adadagrad;
pub mod adadelta;
pub mod adagrad;
pub mod adam;
pub mod adam_clip;
pub mod coherent_gradients;
pub mod diff2;
pub mod diffgrad;
pub mod dp_sgd;
pub mod error;
pub mod fused;
pub mod grad_norm_smooth;
pub mod lbfgs;
pub mod linalg;
pub mod mfac;
pub mod point;
pub mod privacy;
pub mod refinement;
pub mod rmsprop;
pub mod schedule;
pub mod sgd;
pub mod spec;
pub mod target_surrogate;
pub mod tract;
pub mod transform;

pub use error::{OptimError, Result};
