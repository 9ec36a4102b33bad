//! # gradlab-rl
//!
//! Reinforcement learning for gradlab, in plain `f64` (the policies are linear in their features,
//! so scores and Hessians are closed forms and every estimator can be checked exactly):
//!
//! - environments with a seeded, deterministic step that refuses to step after the end ([`env`]):
//!   a linear-quadratic regulator with the exact return of a linear Gaussian policy ([`lqr`]),
//!   CartPole ([`cartpole`]), Pendulum ([`pendulum`]), a gridworld ([`gridworld`]) and a chain
//!   MDP ([`chain`]);
//! - linear Gaussian and softmax policies with their scores and score Hessians ([`policy`]);
//! - trajectories and the policy-gradient problem ([`rollout`]);
//! - REINFORCE and GPOMDP ([`reinforce`]), N-PG-IGT ([`npg_igt`]) and (N)-HARPG with the paper's
//!   Hessian-aided correction ([`harpg`]), each a [`gradlab_core::solve::Solver`].
//!
//! ```
//! use gradlab_rl::lqr::Lqr;
//! use gradlab_rl::policy::{Features, GaussianLinear};
//! use gradlab_rl::rollout::PgProblem;
//! use gradlab_rl::npg_igt::NPgIgt;
//! use gradlab_core::solve::{solve, Silent};
//! // x′ = 0.9x + 0.5u + 0.1ε, cost x² + 0.1u², horizon 20; policy u = θx + 0.5ξ from θ = 0
//! let lqr = Lqr::scalar(0.9, 0.5, 1.0, 0.1, 0.1, 1.0, 20, 0.99).unwrap();
//! let problem = PgProblem::new(lqr.clone(), GaussianLinear::new(1, 1, 0.5, Features::Raw).unwrap(), 20, 0.99).unwrap();
//! let (state, _) = solve(&mut NPgIgt::new(0.3, 1.0, 7).unwrap(), &problem, &[0.0], 2000, &mut Silent).unwrap();
//! let (_, j_star) = lqr.optimal_gain(0.5).unwrap(); // the exact optimum
//! let gap0 = j_star - lqr.exact_return(&[0.0], 0.5).unwrap();
//! let gap = j_star - lqr.exact_return(&state.theta, 0.5).unwrap();
//! assert!(gap < 0.1 * gap0, "gap {gap} of {gap0}"); // 2,000 one-trajectory steps
//! ```

pub mod cartpole;
pub mod chain;
pub mod env;
pub mod gridworld;
pub mod harpg;
pub mod lqr;
pub mod npg_igt;
pub mod odice;
pub mod offline;
pub mod pendulum;
pub mod point;
pub mod policy;
pub mod reinforce;
pub mod rollout;

/// Why an RL component could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RlError {
    /// An environment was stepped after its episode ended (call `reset` first).
    #[error("{env}: stepped after the episode ended (reset it first)")]
    EpisodeOver {
        /// The environment.
        env: &'static str,
    },
    /// An environment was stepped before its first reset.
    #[error("{env}: stepped before reset")]
    NotReset {
        /// The environment.
        env: &'static str,
    },
    /// A value of the wrong length or out of range.
    #[error("{what}: {got} where {expected} is needed")]
    Shape {
        /// What it was.
        what: String,
        /// What is needed.
        expected: String,
        /// What was given.
        got: String,
    },
    /// An invalid setting.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why it is invalid.
        why: String,
    },
    /// A non-finite value (a state, a return, a gradient).
    #[error("non-finite {what}")]
    NonFinite {
        /// What was not finite.
        what: String,
    },
    /// A file could not be read or written, or is malformed.
    #[error("{0}")]
    Data(String),
    /// From the solve loop or a problem.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, RlError>;

/// An [`RlError::Invalid`] unless `ok`.
pub(crate) fn ensure(ok: bool, what: &'static str, why: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(RlError::Invalid { what, why: why() })
    }
}

/// An [`RlError::NonFinite`] unless every value is finite.
pub(crate) fn check_finite(what: &str, v: &[f64]) -> Result<()> {
    if v.iter().all(|x| x.is_finite()) {
        Ok(())
    } else {
        Err(RlError::NonFinite { what: what.into() })
    }
}
