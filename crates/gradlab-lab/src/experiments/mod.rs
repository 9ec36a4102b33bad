//! The experiments, one file per paper, grouped by the family of the method they check:
//! `optim/` (optimizers and schedules), `nets/` (networks and estimators), `curvature/`
//! (Hessians and training dynamics), `generative/` (score, flow and diffusion models), `rl/`
//! (policy gradients and offline RL), `distributed/` (coded distributed gradients), `solvers/`
//! (learned linear solvers).
//!
//! A new paper's experiment is its own file in its family's folder and one line in that folder's
//! `register!` list; its title comes from [`crate::registry::SEED_PAPERS`], its claim from its
//! [`PaperInfo`](crate::experiment::PaperInfo), and its quick-mode test is generated from the
//! registry (`tests/quick_experiments.rs`).

/// Declare a family's experiment modules and list them, in order, as `experiments()`: one
/// `module::Type` per experiment.
macro_rules! register {
    ($($module:ident :: $ty:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// This family's experiments, in the order they are registered.
        pub fn experiments() -> Vec<Box<dyn crate::experiment::Experiment>> {
            vec![$(Box::new($module::$ty)),*]
        }
    };
}

pub mod curvature;
pub mod distributed;
pub mod generative;
pub mod nets;
pub mod optim;
pub mod rl;
pub mod solvers;
