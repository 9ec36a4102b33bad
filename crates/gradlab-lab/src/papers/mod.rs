//! One module per paper: the experiment that checks its claim.

pub mod adadagrad;
pub mod adam_vs_sgd;
pub mod coherent_gradients;
pub mod diff2;
mod diff2_net;
pub mod diffgrad;
pub mod grad_norm_smoothness;
pub mod hessian_spectrum;
pub mod lr_refinement;
pub mod mfac;
pub mod opposing_signals;
pub mod optimizers_alter_solutions;
pub mod painters;
pub mod rectified_diffusion;
pub mod rectified_flow;
pub mod reste;
pub mod score_sde;
mod score_sde_images;
pub mod target_surrogates;
pub mod tract;
