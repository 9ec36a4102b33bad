//! CartPole with Gym's `CartPole-v1` dynamics (Barto, Sutton and Anderson 1983): gravity 9.8, cart
//! 1.0 kg, pole 0.1 kg of half-length 0.5, force ±10, Euler steps of 0.02 s; reward 1 per step;
//! the episode ends when |x| > 2.4 or |ϑ| > 12°, or at the time limit (200 in the policy-gradient
//! paper's runs). Start state uniform in ±0.05. Actions: 0 pushes left, 1 right.

use crate::Result;
use crate::env::{Action, Clock, Env, Space, Step, check_action};
use rand::prelude::*;

/// The environment.
#[derive(Debug, Clone)]
pub struct CartPole {
    s: [f64; 4],
    clock: Clock,
}

impl CartPole {
    /// CartPole with a time limit of `limit` steps.
    pub fn new(limit: usize) -> Self {
        Self {
            s: [0.0; 4],
            clock: Clock::new(limit.max(1)),
        }
    }
}

impl Env for CartPole {
    fn name(&self) -> &'static str {
        "CartPole"
    }
    fn state_dim(&self) -> usize {
        4
    }
    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }
    fn reset(&mut self, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        self.s = std::array::from_fn(|_| rng.random_range(-0.05..0.05));
        self.clock.reset();
        self.s.to_vec()
    }
    fn step(&mut self, action: &Action) -> Result<Step> {
        self.clock.enter(self.name())?;
        check_action(self.action_space(), action)?;
        let force = if *action == Action::Discrete(1) {
            10.0
        } else {
            -10.0
        };
        let (g, mc, mp, l, tau) = (9.8, 1.0, 0.1, 0.5, 0.02);
        let total = mc + mp;
        let [x, xd, th, thd] = self.s;
        let (sin, cos) = th.sin_cos();
        let temp = (force + mp * l * thd * thd * sin) / total;
        let thacc = (g * sin - cos * temp) / (l * (4.0 / 3.0 - mp * cos * cos / total));
        let xacc = temp - mp * l * thacc * cos / total;
        self.s = [
            x + tau * xd,
            xd + tau * xacc,
            th + tau * thd,
            thd + tau * thacc,
        ];
        let terminal =
            self.s[0].abs() > 2.4 || self.s[2].abs() > 12.0 * 2.0 * std::f64::consts::PI / 360.0;
        let done = self.clock.tick(terminal);
        Ok(Step {
            state: self.s.to_vec(),
            reward: 1.0,
            done,
            terminal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_matches_the_gym_equations_by_hand() {
        let mut env = CartPole::new(200);
        env.reset(0);
        env.s = [0.0, 0.0, 0.1, 0.0];
        let st = env.step(&Action::Discrete(1)).unwrap();
        // By hand: temp = 10/1.1; θ̈ = (9.8 sin .1 − cos .1·temp)/(0.5(4/3 − 0.1cos²(.1)/1.1)).
        let temp = 10.0 / 1.1;
        let thacc = (9.8 * 0.1f64.sin() - 0.1f64.cos() * temp)
            / (0.5 * (4.0 / 3.0 - 0.1 * 0.1f64.cos().powi(2) / 1.1));
        let xacc = temp - 0.05 * thacc * 0.1f64.cos() / 1.1;
        assert_eq!(st.state, vec![0.0, 0.02 * xacc, 0.1, 0.02 * thacc]);
        assert!(!st.done);
    }

    #[test]
    fn the_time_limit_and_the_fall_end_an_episode() {
        let mut env = CartPole::new(3);
        env.reset(1);
        for k in 0..3 {
            let st = env.step(&Action::Discrete(k % 2)).unwrap();
            assert_eq!(st.done, k == 2);
            assert!(!st.terminal);
        }
        assert!(env.step(&Action::Discrete(0)).is_err());
        let mut env = CartPole::new(500);
        env.reset(1);
        let mut n = 0;
        while !env.step(&Action::Discrete(1)).unwrap().terminal {
            n += 1;
        }
        assert!(
            n < 100,
            "always pushing right falls within a few dozen steps ({n})"
        );
        assert!(env.step(&Action::Discrete(2)).is_err());
    }
}
