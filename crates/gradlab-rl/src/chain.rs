//! The chain MDP of Strens (2000), a classic exploration problem: states 0..n in a row; action 1
//! ("forward") moves one state right (staying at the end, where it pays `big`), action 0 ("back")
//! returns to state 0 and pays `small`; with probability `slip` the other action is taken. The
//! observation is the one-hot state. Myopic policies settle for `small`; the optimum walks right.

use crate::env::{Action, Clock, Env, Space, Step, check_action};
use crate::{Result, ensure};
use rand::prelude::*;

/// The environment.
#[derive(Debug, Clone)]
pub struct Chain {
    n: usize,
    small: f64,
    big: f64,
    slip: f64,
    state: usize,
    rng: StdRng,
    clock: Clock,
}

impl Chain {
    /// A chain of `n` ≥ 2 states.
    pub fn new(n: usize, small: f64, big: f64, slip: f64, limit: usize) -> Result<Self> {
        ensure(n >= 2, "chain length", || format!("{n} (needs ≥ 2)"))?;
        ensure((0.0..=1.0).contains(&slip), "chain slip", || {
            format!("{slip} (must be in [0, 1])")
        })?;
        ensure(
            small.is_finite() && big.is_finite(),
            "chain rewards",
            || format!("{small}, {big}"),
        )?;
        Ok(Self {
            n,
            small,
            big,
            slip,
            state: 0,
            rng: StdRng::seed_from_u64(0),
            clock: Clock::new(limit.max(1)),
        })
    }

    /// Strens' chain: 5 states, back pays 0.2, the end pays 1, slip 0.2, 50 steps.
    pub fn strens() -> Self {
        Self::new(5, 0.2, 1.0, 0.2, 50).expect("valid fixed settings")
    }
}

impl Env for Chain {
    fn name(&self) -> &'static str {
        "chain"
    }
    fn state_dim(&self) -> usize {
        self.n
    }
    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }
    fn reset(&mut self, seed: u64) -> Vec<f64> {
        self.rng = StdRng::seed_from_u64(seed);
        self.state = 0;
        self.clock.reset();
        one_hot(self.n, 0)
    }
    fn step(&mut self, action: &Action) -> Result<Step> {
        self.clock.enter(self.name())?;
        check_action(self.action_space(), action)?;
        let Action::Discrete(mut a) = *action else {
            unreachable!("checked above")
        };
        if self.rng.random::<f64>() < self.slip {
            a = 1 - a;
        }
        let reward = if a == 0 {
            self.state = 0;
            self.small
        } else if self.state + 1 == self.n {
            self.big
        } else {
            self.state += 1;
            0.0
        };
        let done = self.clock.tick(false);
        Ok(Step {
            state: one_hot(self.n, self.state),
            reward,
            done,
            terminal: false,
        })
    }
}

fn one_hot(n: usize, i: usize) -> Vec<f64> {
    let mut v = vec![0.0; n];
    v[i] = 1.0;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_reaches_the_big_reward_and_back_pays_small() {
        let mut c = Chain::new(3, 0.2, 1.0, 0.0, 10).unwrap();
        c.reset(0);
        let r: Vec<f64> = (0..3)
            .map(|_| c.step(&Action::Discrete(1)).unwrap().reward)
            .collect();
        assert_eq!(r, vec![0.0, 0.0, 1.0]);
        let st = c.step(&Action::Discrete(0)).unwrap();
        assert_eq!((st.reward, st.state), (0.2, vec![1.0, 0.0, 0.0]));
        assert!(Chain::new(1, 0.2, 1.0, 0.0, 10).is_err());
    }
}
