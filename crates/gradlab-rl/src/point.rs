//! A continuous toy task: a point in the square [−1, 1]² moves by 0.1·a (a ∈ [−1, 1]², clipped;
//! plus N(0, 0.01²) noise) towards a goal disc of radius 0.15 at (0.6, 0.6); reward −‖s′ − goal‖
//! per step (0 in the goal, which ends the episode); start uniform in [−1, −0.6]². The walls clip
//! the position.

use crate::Result;
use crate::env::{Action, Clock, Env, Space, Step, check_action};
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The goal centre.
pub const GOAL: [f64; 2] = [0.6, 0.6];

/// The environment.
#[derive(Debug, Clone)]
pub struct PointMass {
    s: [f64; 2],
    rng: StdRng,
    clock: Clock,
}

impl PointMass {
    /// The task with a time limit of `limit` steps.
    pub fn new(limit: usize) -> Self {
        Self {
            s: [0.0; 2],
            rng: StdRng::seed_from_u64(0),
            clock: Clock::new(limit.max(1)),
        }
    }
}

/// Distance to the goal centre.
pub fn distance(s: &[f64]) -> f64 {
    ((s[0] - GOAL[0]).powi(2) + (s[1] - GOAL[1]).powi(2)).sqrt()
}

impl Env for PointMass {
    fn name(&self) -> &'static str {
        "point mass"
    }
    fn state_dim(&self) -> usize {
        2
    }
    fn action_space(&self) -> Space {
        Space::Continuous(2)
    }
    fn reset(&mut self, seed: u64) -> Vec<f64> {
        self.rng = StdRng::seed_from_u64(seed);
        self.s = [
            self.rng.random_range(-1.0..-0.6),
            self.rng.random_range(-1.0..-0.6),
        ];
        self.clock.reset();
        self.s.to_vec()
    }
    fn step(&mut self, action: &Action) -> Result<Step> {
        self.clock.enter(self.name())?;
        check_action(self.action_space(), action)?;
        let Action::Continuous(a) = action else {
            unreachable!("checked above")
        };
        for (s, a) in self.s.iter_mut().zip(a) {
            let noise: f64 = self.rng.sample(StandardNormal);
            *s = (*s + 0.1 * a.clamp(-1.0, 1.0) + 0.01 * noise).clamp(-1.0, 1.0);
        }
        let d = distance(&self.s);
        let terminal = d < 0.15;
        let done = self.clock.tick(terminal);
        Ok(Step {
            state: self.s.to_vec(),
            reward: if terminal { 0.0 } else { -d },
            done,
            terminal,
        })
    }
}
