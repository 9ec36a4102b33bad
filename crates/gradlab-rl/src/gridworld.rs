//! A gridworld: a width × height grid with walls, pits and one goal. Actions 0..4 move up, right,
//! down, left; with probability `slip` a uniformly random action is taken instead; moving into a
//! wall or the border stays put. Reaching the goal pays +1 and ends the episode (terminal), a pit
//! pays −1 and ends it, every other step pays `step_reward`. The observation is the one-hot cell
//! (length width·height), so a linear softmax policy on it is tabular.
//!
//! ```
//! use gradlab_rl::gridworld::Gridworld;
//! use gradlab_rl::env::{Action, Env};
//! let mut g = Gridworld::five_by_five();
//! let s = g.reset(0);
//! assert_eq!(Gridworld::cell_of(&s), Some(0)); // the start, top left
//! let st = g.step(&Action::Discrete(1)).unwrap(); // right
//! assert_eq!(Gridworld::cell_of(&st.state), Some(1));
//! ```

use crate::env::{Action, Clock, Env, Space, Step, check_action};
use crate::{Result, RlError, ensure};
use rand::prelude::*;

/// The environment.
#[derive(Debug, Clone)]
pub struct Gridworld {
    width: usize,
    height: usize,
    walls: Vec<usize>,
    pits: Vec<usize>,
    start: usize,
    goal: usize,
    slip: f64,
    step_reward: f64,
    cell: usize,
    rng: StdRng,
    clock: Clock,
}

impl Gridworld {
    /// A grid; cells are (row, column), counted from the top left. An error for cells outside the
    /// grid, a start or goal on a wall or pit, or a slip outside [0, 1].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        width: usize,
        height: usize,
        walls: &[(usize, usize)],
        pits: &[(usize, usize)],
        start: (usize, usize),
        goal: (usize, usize),
        slip: f64,
        step_reward: f64,
        limit: usize,
    ) -> Result<Self> {
        ensure(
            width > 0 && height > 0 && width * height >= 2,
            "gridworld size",
            || format!("{width} × {height}"),
        )?;
        let index = |(r, c): (usize, usize)| -> Result<usize> {
            if r < height && c < width {
                Ok(r * width + c)
            } else {
                Err(RlError::Shape {
                    what: "gridworld cell".into(),
                    expected: format!("row < {height}, column < {width}"),
                    got: format!("({r}, {c})"),
                })
            }
        };
        let walls = walls
            .iter()
            .map(|&w| index(w))
            .collect::<Result<Vec<_>>>()?;
        let pits = pits.iter().map(|&p| index(p)).collect::<Result<Vec<_>>>()?;
        let (start, goal) = (index(start)?, index(goal)?);
        ensure(start != goal, "gridworld", || {
            "the start is the goal".into()
        })?;
        for c in [start, goal] {
            ensure(
                !walls.contains(&c) && !pits.contains(&c),
                "gridworld",
                || format!("cell {c} is the start or goal and also a wall or pit"),
            )?;
        }
        ensure((0.0..=1.0).contains(&slip), "gridworld slip", || {
            format!("{slip} (must be in [0, 1])")
        })?;
        ensure(step_reward.is_finite(), "gridworld step reward", || {
            format!("{step_reward}")
        })?;
        Ok(Self {
            width,
            height,
            walls,
            pits,
            start,
            goal,
            slip,
            step_reward,
            cell: start,
            rng: StdRng::seed_from_u64(0),
            clock: Clock::new(limit.max(1)),
        })
    }

    /// The 5 × 5 grid used by the experiments: start (0, 0), goal (4, 4), a wall segment at
    /// (1, 1)–(1, 3), pits at (3, 1) and (3, 2), slip 0.1, step reward −0.01, 50 steps.
    pub fn five_by_five() -> Self {
        Self::new(
            5,
            5,
            &[(1, 1), (1, 2), (1, 3)],
            &[(3, 1), (3, 2)],
            (0, 0),
            (4, 4),
            0.1,
            -0.01,
            50,
        )
        .expect("a valid fixed layout")
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.width * self.height
    }

    /// The cell index of a one-hot observation (`None` if it is not one-hot).
    pub fn cell_of(obs: &[f64]) -> Option<usize> {
        let mut hot = obs.iter().enumerate().filter(|(_, v)| **v != 0.0);
        match (hot.next(), hot.next()) {
            (Some((i, v)), None) if *v == 1.0 => Some(i),
            _ => None,
        }
    }

    /// The one-hot observation of `cell`.
    pub fn one_hot(&self, cell: usize) -> Vec<f64> {
        let mut v = vec![0.0; self.cells()];
        v[cell] = 1.0;
        v
    }

    /// Whether `cell` is a wall.
    pub fn is_wall(&self, cell: usize) -> bool {
        self.walls.contains(&cell)
    }

    /// Whether `cell` ends an episode (goal or pit).
    pub fn is_terminal(&self, cell: usize) -> bool {
        cell == self.goal || self.pits.contains(&cell)
    }

    /// The cell reached from `cell` by `action` without slipping.
    pub fn moved(&self, cell: usize, action: usize) -> usize {
        let (r, c) = (cell / self.width, cell % self.width);
        let (nr, nc) = match action {
            0 if r > 0 => (r - 1, c),
            1 if c + 1 < self.width => (r, c + 1),
            2 if r + 1 < self.height => (r + 1, c),
            3 if c > 0 => (r, c - 1),
            _ => (r, c),
        };
        let next = nr * self.width + nc;
        if self.is_wall(next) { cell } else { next }
    }

    /// The reward of arriving in `cell`.
    pub fn reward_of(&self, cell: usize) -> f64 {
        if cell == self.goal {
            1.0
        } else if self.pits.contains(&cell) {
            -1.0
        } else {
            self.step_reward
        }
    }

    /// The slip probability.
    pub fn slip(&self) -> f64 {
        self.slip
    }
}

impl Env for Gridworld {
    fn name(&self) -> &'static str {
        "gridworld"
    }
    fn state_dim(&self) -> usize {
        self.cells()
    }
    fn action_space(&self) -> Space {
        Space::Discrete(4)
    }
    fn reset(&mut self, seed: u64) -> Vec<f64> {
        self.rng = StdRng::seed_from_u64(seed);
        self.cell = self.start;
        self.clock.reset();
        self.one_hot(self.cell)
    }
    fn step(&mut self, action: &Action) -> Result<Step> {
        self.clock.enter(self.name())?;
        check_action(self.action_space(), action)?;
        let Action::Discrete(mut a) = *action else {
            unreachable!("checked above")
        };
        if self.rng.random::<f64>() < self.slip {
            a = self.rng.random_range(0..4);
        }
        self.cell = self.moved(self.cell, a);
        let terminal = self.is_terminal(self.cell);
        let done = self.clock.tick(terminal);
        Ok(Step {
            state: self.one_hot(self.cell),
            reward: self.reward_of(self.cell),
            done,
            terminal,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walls_borders_pits_and_the_goal_behave() {
        let g = Gridworld::five_by_five();
        assert_eq!(g.moved(0, 0), 0); // border
        assert_eq!(g.moved(0, 3), 0);
        assert_eq!(g.moved(1, 2), 1); // into the wall at (1, 1)
        assert_eq!(g.moved(0, 2), 5);
        assert!(g.is_terminal(16) && g.reward_of(16) == -1.0);
        assert_eq!(g.reward_of(24), 1.0);
        let mut g = Gridworld::new(2, 1, &[], &[], (0, 0), (0, 1), 0.0, 0.0, 10).unwrap();
        g.reset(0);
        let st = g.step(&Action::Discrete(1)).unwrap();
        assert!(st.done && st.terminal && st.reward == 1.0);
        assert!(matches!(
            g.step(&Action::Discrete(1)),
            Err(RlError::EpisodeOver { .. })
        ));
        assert!(Gridworld::new(3, 3, &[(3, 0)], &[], (0, 0), (2, 2), 0.1, 0.0, 10).is_err());
        assert!(Gridworld::new(3, 3, &[(2, 2)], &[], (0, 0), (2, 2), 0.1, 0.0, 10).is_err());
        assert!(Gridworld::new(3, 3, &[], &[], (0, 0), (2, 2), 1.5, 0.0, 10).is_err());
    }
}
