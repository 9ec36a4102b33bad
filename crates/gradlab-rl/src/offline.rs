//! Offline data sets: transitions (s, a, r, s′, done) collected by a behaviour policy, and the
//! file format a user can bring their own in.
//!
//! **Format** (CSV, one transition per line, a header naming the columns):
//! `s0,…,s{S−1},a0,…,a{A−1},r,ns0,…,ns{S−1},done`, where a discrete action is one column `a0`
//! holding its index, `done` is 0 or 1 (1 for a terminal next state; a time-limit end is 0), and
//! every value is a finite number. The header fixes S and A; a discrete data set marks its action
//! column `a0:discrete:N` with N actions. Lines starting with `#` are comments.
//!
//! ```
//! use gradlab_rl::offline::Dataset;
//! let text = "s0,s1,a0:discrete:4,r,ns0,ns1,done\n1,0,2,-0.01,0,1,0\n";
//! let d = Dataset::parse(text, "d.csv").unwrap();
//! assert_eq!((d.state_dim, d.transitions.len()), (2, 1));
//! assert!(Dataset::parse("s0,a0,r,ns0,done\n1,2,x,0,0\n", "d.csv").is_err()); // names line 2
//! ```

use crate::env::{Action, Env, Space};
use crate::{Result, RlError};
use rand::prelude::*;
use std::path::Path;

/// One transition.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// s.
    pub s: Vec<f64>,
    /// a.
    pub a: Action,
    /// r.
    pub r: f64,
    /// s′.
    pub s2: Vec<f64>,
    /// Whether s′ is terminal.
    pub done: bool,
}

/// A data set.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// S.
    pub state_dim: usize,
    /// The action space.
    pub actions: Space,
    /// The transitions.
    pub transitions: Vec<Transition>,
}

fn perr(path: &str, line: usize, why: impl std::fmt::Display) -> RlError {
    RlError::Data(format!("{path}, line {line}: {why}"))
}

impl Dataset {
    /// Collect `episodes` episodes of `env` under `behaviour(state, rng) -> action`, seeded.
    pub fn collect<E: Env>(
        env: &E,
        episodes: usize,
        horizon: usize,
        seed: u64,
        mut behaviour: impl FnMut(&[f64], usize, &mut StdRng) -> Action,
    ) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut transitions = vec![];
        for ep in 0..episodes {
            let mut e = env.clone();
            let mut s = e.reset(rng.random());
            for _ in 0..horizon {
                let a = behaviour(&s, ep, &mut rng);
                let st = e.step(&a)?;
                transitions.push(Transition {
                    s: s.clone(),
                    a,
                    r: st.reward,
                    s2: st.state.clone(),
                    done: st.terminal,
                });
                s = st.state;
                if st.done {
                    break;
                }
            }
        }
        Ok(Self {
            state_dim: env.state_dim(),
            actions: env.action_space(),
            transitions,
        })
    }

    /// The CSV text of the module docs.
    pub fn to_csv(&self) -> String {
        let s = self.state_dim;
        let mut cols: Vec<String> = (0..s).map(|i| format!("s{i}")).collect();
        match self.actions {
            Space::Discrete(n) => cols.push(format!("a0:discrete:{n}")),
            Space::Continuous(m) => cols.extend((0..m).map(|i| format!("a{i}"))),
        }
        cols.push("r".into());
        cols.extend((0..s).map(|i| format!("ns{i}")));
        cols.push("done".into());
        let mut out = cols.join(",") + "\n";
        for t in &self.transitions {
            let mut v: Vec<String> = t.s.iter().map(|x| format!("{x}")).collect();
            match &t.a {
                Action::Discrete(i) => v.push(i.to_string()),
                Action::Continuous(a) => v.extend(a.iter().map(|x| format!("{x}"))),
            }
            v.push(format!("{}", t.r));
            v.extend(t.s2.iter().map(|x| format!("{x}")));
            v.push(if t.done { "1".into() } else { "0".into() });
            out += &(v.join(",") + "\n");
        }
        out
    }

    /// Write the data set (beside, then renamed into place).
    pub fn write(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, self.to_csv())
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                RlError::Data(format!("{}: {e}", path.display()))
            })
    }

    /// Read a data set file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RlError::Data(format!("{}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse the CSV text (`path` only names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let (hl, header) = lines
            .next()
            .ok_or_else(|| perr(path, 0, "the file is empty"))?;
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let count = |p: &str| {
            cols.iter()
                .filter(|c| {
                    c.strip_prefix(p)
                        .and_then(|d| d.split(':').next())
                        .is_some_and(|d| d.parse::<usize>().is_ok())
                })
                .count()
        };
        let (s, a) = (count("s"), count("a"));
        let ns = count("ns");
        let discrete = cols
            .iter()
            .find_map(|c| c.strip_prefix("a0:discrete:"))
            .map(|n| n.parse::<usize>());
        let actions = match discrete {
            Some(Ok(n)) if n >= 1 && a == 1 => Space::Discrete(n),
            Some(_) => {
                return Err(perr(
                    path,
                    hl,
                    "a discrete action is one column `a0:discrete:N` with N ≥ 1",
                ));
            }
            None => Space::Continuous(a),
        };
        let expected = 2 * s + a + 2;
        if s == 0
            || a == 0
            || ns != s
            || cols.len() != expected
            || cols[s + a] != "r"
            || cols[expected - 1] != "done"
        {
            return Err(perr(
                path,
                hl,
                format!("header {header:?}: expected s0..s{{S-1}}, a0.., r, ns0..ns{{S-1}}, done"),
            ));
        }
        let mut transitions = vec![];
        for (ln, line) in lines {
            let vals: Vec<f64> = line
                .split(',')
                .map(|t| {
                    t.trim()
                        .parse::<f64>()
                        .map_err(|_| perr(path, ln, format!("{t:?} is not a number")))
                })
                .collect::<Result<_>>()?;
            if vals.len() != expected {
                return Err(perr(
                    path,
                    ln,
                    format!(
                        "{} values where the header has {expected} columns",
                        vals.len()
                    ),
                ));
            }
            if let Some(v) = vals.iter().find(|v| !v.is_finite()) {
                return Err(perr(path, ln, format!("{v} is not finite")));
            }
            let act = match actions {
                Space::Discrete(n) => {
                    let x = vals[s];
                    if x < 0.0 || x.fract() != 0.0 || x as usize >= n {
                        return Err(perr(
                            path,
                            ln,
                            format!("action {x} is not an index below {n}"),
                        ));
                    }
                    Action::Discrete(x as usize)
                }
                Space::Continuous(_) => Action::Continuous(vals[s..s + a].to_vec()),
            };
            let done = vals[expected - 1];
            if done != 0.0 && done != 1.0 {
                return Err(perr(path, ln, format!("done is {done}, not 0 or 1")));
            }
            transitions.push(Transition {
                s: vals[..s].to_vec(),
                a: act,
                r: vals[s + a],
                s2: vals[s + a + 1..expected - 1].to_vec(),
                done: done == 1.0,
            });
        }
        if transitions.is_empty() {
            return Err(perr(path, 0, "no transitions"));
        }
        Ok(Self {
            state_dim: s,
            actions,
            transitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gridworld::Gridworld;
    use crate::point::PointMass;

    #[test]
    fn collected_data_round_trip_through_the_file_format() {
        let g = Gridworld::five_by_five();
        let d = Dataset::collect(&g, 5, 30, 1, |_, _, rng| {
            Action::Discrete(rng.random_range(0..4))
        })
        .unwrap();
        assert_eq!(Dataset::parse(&d.to_csv(), "x").unwrap(), d);
        let p = PointMass::new(40);
        let d = Dataset::collect(&p, 3, 40, 2, |_, _, rng| {
            Action::Continuous(vec![
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
            ])
        })
        .unwrap();
        let back = Dataset::parse(&d.to_csv(), "x").unwrap();
        assert_eq!(back.transitions.len(), d.transitions.len());
        assert!(
            back.transitions
                .iter()
                .zip(&d.transitions)
                .all(|(a, b)| a.s == b.s && a.a == b.a && a.r == b.r)
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        for (text, line) in [
            ("", "line 0"),
            ("s0,a0,r,done\n", "line 1"),
            ("s0,a0:discrete:4,r,ns0,done\n1,4,0,0,0\n", "line 2"),
            ("s0,a0:discrete:4,r,ns0,done\n1,1,0,0,2\n", "line 2"),
            ("s0,a0,r,ns0,done\n1,0.5,0,0\n", "line 2"),
            ("# c\ns0,a0,r,ns0,done\n1,0.5,inf,0,0\n", "line 3"),
            ("s0,a0,r,ns0,done\n", "line 0"),
        ] {
            let e = Dataset::parse(text, "d.csv").unwrap_err().to_string();
            assert!(e.contains(line), "{text:?}: {e}");
        }
    }
}
