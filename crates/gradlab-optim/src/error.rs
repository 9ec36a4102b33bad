//! Errors of the optimizer crate.

/// A rejected optimizer configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptimError {
    /// A hyperparameter is outside its valid range.
    #[error("invalid hyperparameter {name} = {value}: must be {requirement}")]
    Invalid {
        /// The hyperparameter.
        name: &'static str,
        /// The rejected value.
        value: f64,
        /// The valid range in words.
        requirement: &'static str,
    },
    /// A tensor could not be read back, or a vector does not fit.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
    /// A computation that cannot go on (a singular system, inputs of the wrong shape).
    #[error("{0}")]
    Failed(&'static str),
    /// Hyperparameters that are valid alone but not together.
    #[error("invalid hyperparameters: {0}")]
    Conflict(&'static str),
    /// A private run whose ε would exceed the budget (found before it starts).
    #[error(
        "the run would spend epsilon = {spent:.4} at delta = {delta:e}, over the budget epsilon = {epsilon}; raise the noise multiplier or take fewer steps"
    )]
    OverBudget {
        /// ε the run would spend.
        spent: f64,
        /// The budget's ε.
        epsilon: f64,
        /// The budget's δ.
        delta: f64,
    },
    /// A linear system that should be positive definite is not (singular or indefinite).
    #[error("{system} is not positive definite at step {step} (damping λ = {damping:e}): {hint}")]
    NotPositiveDefinite {
        /// The system.
        system: &'static str,
        /// The damping it had.
        damping: f64,
        /// The step (iteration or gradient count).
        step: usize,
        /// What to change.
        hint: &'static str,
    },
    /// A non-finite value met during a run.
    #[error("non-finite {what} at step {step}")]
    NonFinite {
        /// What was not finite.
        what: &'static str,
        /// The step.
        step: usize,
    },
    /// A hyperparameter given to an optimizer that does not have it.
    #[error("{optimizer} has no hyperparameter {name} (it has: lr, {has})")]
    NotApplicable {
        /// The hyperparameter.
        name: &'static str,
        /// The optimizer.
        optimizer: &'static str,
        /// The ones it has.
        has: String,
    },
    /// An optimizer or schedule name that does not exist.
    #[error("unknown {what} '{name}'; known: {known}")]
    Unknown {
        /// "optimizer" or "schedule".
        what: &'static str,
        /// The name given.
        name: String,
        /// The names that exist.
        known: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, OptimError>;

fn check(name: &'static str, value: f64, ok: bool, requirement: &'static str) -> Result<()> {
    if ok && value.is_finite() {
        Ok(())
    } else {
        Err(OptimError::Invalid {
            name,
            value,
            requirement,
        })
    }
}

/// lr > 0.
pub fn check_lr(lr: f64) -> Result<()> {
    check("lr", lr, lr > 0.0, "> 0 and finite")
}
/// A decay rate in [0, 1).
pub fn check_beta(name: &'static str, v: f64) -> Result<()> {
    check(name, v, (0.0..1.0).contains(&v), "in [0, 1)")
}
/// ε > 0.
pub fn check_eps(v: f64) -> Result<()> {
    check("eps", v, v > 0.0, "> 0 and finite")
}
/// A value > 0.
pub fn check_positive(name: &'static str, v: f64) -> Result<()> {
    check(name, v, v > 0.0, "> 0 and finite")
}
/// A value ≥ 0.
pub fn check_non_negative(name: &'static str, v: f64) -> Result<()> {
    check(name, v, v >= 0.0, ">= 0 and finite")
}

/// The Adam-family checks: β₁, β₂ in [0, 1), ε > 0, weight decay ≥ 0.
pub fn check_moments(beta1: f64, beta2: f64, eps: f64, weight_decay: f64) -> Result<()> {
    check_beta("beta1", beta1)?;
    check_beta("beta2", beta2)?;
    check_eps(eps)?;
    check_non_negative("weight_decay", weight_decay)
}
