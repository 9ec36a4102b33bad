//! The environment interface: a seeded reset, a deterministic step, and an error (never a silent
//! reset) when stepped after the episode's end.
//!
//! ```
//! use gradlab_rl::env::{Action, Env};
//! use gradlab_rl::cartpole::CartPole;
//! let mut env = CartPole::new(200);
//! let s0 = env.reset(3);
//! assert_eq!(s0, CartPole::new(200).reset(3)); // the same seed, the same start
//! let mut done = false;
//! while !done {
//!     done = env.step(&Action::Discrete(0)).unwrap().done; // always push left: falls quickly
//! }
//! assert!(env.step(&Action::Discrete(0)).is_err()); // stepped after the end
//! ```

use crate::{Result, RlError};

/// An action: an index for discrete spaces, a vector for continuous ones.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// One of `n` actions.
    Discrete(usize),
    /// A point of ℝᵐ.
    Continuous(Vec<f64>),
}

/// An action space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// `n` discrete actions.
    Discrete(usize),
    /// ℝᵐ (environments clip where their dynamics do).
    Continuous(usize),
}

/// What a step returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The next observation.
    pub state: Vec<f64>,
    /// The reward of this transition.
    pub reward: f64,
    /// Whether the episode ended (a terminal state or the time limit).
    pub done: bool,
    /// Whether it ended in a terminal state (not merely at the time limit): what bootstrapping
    /// needs.
    pub terminal: bool,
}

/// A seeded episodic environment.
pub trait Env: Clone {
    /// Its name, for errors.
    fn name(&self) -> &'static str;
    /// Observation length.
    fn state_dim(&self) -> usize;
    /// Its actions.
    fn action_space(&self) -> Space;
    /// Start an episode; the same seed gives the same start and, with the same actions, the same
    /// episode.
    fn reset(&mut self, seed: u64) -> Vec<f64>;
    /// One transition; an error after the episode ended or for an action outside the space.
    fn step(&mut self, action: &Action) -> Result<Step>;
}

/// An [`RlError::Shape`] unless `action` belongs to `space`.
pub fn check_action(space: Space, action: &Action) -> Result<()> {
    match (space, action) {
        (Space::Discrete(n), Action::Discrete(a)) if *a < n => Ok(()),
        (Space::Continuous(m), Action::Continuous(v)) if v.len() == m => {
            crate::check_finite("action", v)
        }
        _ => Err(RlError::Shape {
            what: "action".into(),
            expected: format!("{space:?}"),
            got: format!("{action:?}"),
        }),
    }
}

/// Episode bookkeeping shared by the environments: the step count, the limit, and whether the
/// episode is over.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    pub(crate) t: usize,
    pub(crate) limit: usize,
    pub(crate) started: bool,
    pub(crate) over: bool,
}

impl Clock {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            t: 0,
            limit,
            started: false,
            over: false,
        }
    }
    pub(crate) fn reset(&mut self) {
        (self.t, self.started, self.over) = (0, true, false);
    }
    /// Check that a step is allowed.
    pub(crate) fn enter(&self, env: &'static str) -> Result<()> {
        if !self.started {
            Err(RlError::NotReset { env })
        } else if self.over {
            Err(RlError::EpisodeOver { env })
        } else {
            Ok(())
        }
    }
    /// Count a step; returns whether the episode is over (terminal or at the limit).
    pub(crate) fn tick(&mut self, terminal: bool) -> bool {
        self.t += 1;
        self.over = terminal || self.t >= self.limit;
        self.over
    }
}
