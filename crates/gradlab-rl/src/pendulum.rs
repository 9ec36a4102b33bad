//! Pendulum with Gym's `Pendulum-v1` dynamics: g 10, m 1, l 1, dt 0.05; torque clipped to ±2,
//! angular speed to ±8; θ̇′ = θ̇ + (3g/(2l) sin θ + 3u/(ml²)) dt, θ′ = θ + θ̇′ dt; reward
//! −(norm(θ)² + 0.1 θ̇² + 0.001 u²) with θ normalised to [−π, π); observation (cos θ, sin θ, θ̇);
//! start θ ~ U(−π, π), θ̇ ~ U(−1, 1); no terminal state, only the time limit (200).

use crate::Result;
use crate::env::{Action, Clock, Env, Space, Step, check_action};
use rand::prelude::*;
use std::f64::consts::PI;

/// The environment.
#[derive(Debug, Clone)]
pub struct Pendulum {
    th: f64,
    thd: f64,
    clock: Clock,
}

impl Pendulum {
    /// Pendulum with a time limit of `limit` steps (Gym's is 200).
    pub fn new(limit: usize) -> Self {
        Self {
            th: 0.0,
            thd: 0.0,
            clock: Clock::new(limit.max(1)),
        }
    }
    fn obs(&self) -> Vec<f64> {
        vec![self.th.cos(), self.th.sin(), self.thd]
    }
}

/// θ mapped to [−π, π).
fn normalise(th: f64) -> f64 {
    (th + PI).rem_euclid(2.0 * PI) - PI
}

impl Env for Pendulum {
    fn name(&self) -> &'static str {
        "Pendulum"
    }
    fn state_dim(&self) -> usize {
        3
    }
    fn action_space(&self) -> Space {
        Space::Continuous(1)
    }
    fn reset(&mut self, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        self.th = rng.random_range(-PI..PI);
        self.thd = rng.random_range(-1.0..1.0);
        self.clock.reset();
        self.obs()
    }
    fn step(&mut self, action: &Action) -> Result<Step> {
        self.clock.enter(self.name())?;
        check_action(self.action_space(), action)?;
        let Action::Continuous(u) = action else {
            unreachable!("checked above")
        };
        let u = u[0].clamp(-2.0, 2.0);
        let (g, m, l, dt) = (10.0, 1.0, 1.0, 0.05);
        let cost = normalise(self.th).powi(2) + 0.1 * self.thd * self.thd + 0.001 * u * u;
        self.thd = (self.thd + (3.0 * g / (2.0 * l) * self.th.sin() + 3.0 / (m * l * l) * u) * dt)
            .clamp(-8.0, 8.0);
        self.th += self.thd * dt;
        let done = self.clock.tick(false);
        Ok(Step {
            state: self.obs(),
            reward: -cost,
            done,
            terminal: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_follows_the_gym_update_and_clips_the_torque() {
        let mut env = Pendulum::new(200);
        env.reset(0);
        (env.th, env.thd) = (0.5, 0.2);
        let st = env.step(&Action::Continuous(vec![5.0])).unwrap();
        let thd = 0.2 + (15.0 * 0.5f64.sin() + 3.0 * 2.0) * 0.05;
        let th = 0.5 + thd * 0.05;
        assert_eq!(st.state, vec![th.cos(), th.sin(), thd]);
        assert_eq!(st.reward, -(0.25 + 0.1 * 0.04 + 0.001 * 4.0));
        assert_eq!(normalise(3.0 * PI), -PI);
        assert!((normalise(-0.5) + 0.5).abs() < 1e-15);
    }
}
