//! The (B, W, λ)-bursty straggler model, and a delay model that produces bursty stragglers.
//!
//! **Model** (Ebrahimi et al. 2023, as the official `follows_straggler_model`): in every window of
//! W consecutive rounds at most λ distinct workers straggle (spatial), and a worker straggling in
//! round r did not straggle in rounds r−W+1 … r−B (temporal: its bursts last at most B rounds and
//! are W − B apart).
//!
//! **Delays**: worker i's time in round r is ((c + n·load)/(c + 1))·exp(σZ)·(slowdown if slow),
//! where Z ~ N(0, 1) and "slow" follows a two-state Gilbert–Elliott chain per worker (enter with
//! p_slow, leave with p_recover): bursts of slow rounds, as measured on AWS Lambda. c is the fixed
//! overhead in units of one partition's compute.
//!
//! **Stragglers** (the official wait rule): the master waits min(delay)·(1 + μ); whoever has not
//! answered by then straggles.

use crate::{Result, ensure};
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The (B, W, λ) model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstyModel {
    /// Longest burst B.
    pub b: usize,
    /// Window W.
    pub w: usize,
    /// Distinct stragglers per window λ.
    pub lambda: usize,
}

impl BurstyModel {
    /// A model with 1 ≤ B ≤ W.
    pub fn new(b: usize, w: usize, lambda: usize) -> Result<Self> {
        ensure(b >= 1 && b <= w, "bursty straggler model", || {
            format!("B = {b}, W = {w} (needs 1 ≤ B ≤ W)")
        })?;
        Ok(Self { b, w, lambda })
    }

    /// Whether `current` (a straggler flag per worker) may follow `history` (earlier rounds'
    /// patterns, oldest first); Err says which condition fails.
    pub fn admits(
        &self,
        history: &[Vec<bool>],
        current: &[bool],
    ) -> std::result::Result<(), String> {
        let r = history.len();
        let n = current.len();
        let lo = (r + 1).saturating_sub(self.w);
        let mut seen = current.to_vec();
        for past in &history[lo..r] {
            seen.iter_mut().zip(past).for_each(|(s, p)| *s |= *p);
        }
        let distinct = seen.iter().filter(|s| **s).count();
        if distinct > self.lambda {
            return Err(format!(
                "{distinct} distinct stragglers in the last {} rounds (λ = {})",
                self.w, self.lambda
            ));
        }
        let hi = (r + 1).saturating_sub(self.b).max(lo);
        for i in 0..n {
            if current[i] && history[lo..hi].iter().any(|p| p[i]) {
                return Err(format!(
                    "worker {i} straggles again within W = {} rounds after a burst longer than B = {}",
                    self.w, self.b
                ));
            }
        }
        Ok(())
    }
}

/// Per-round worker times with bursty slow-downs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelayModel {
    /// Workers.
    pub n: usize,
    /// Log-normal spread σ of ordinary rounds.
    pub sigma: f64,
    /// Probability a fast worker turns slow in a round.
    pub p_slow: f64,
    /// Probability a slow worker recovers in a round.
    pub p_recover: f64,
    /// Time factor of a slow round.
    pub slowdown: f64,
    /// Fixed overhead c, in partitions' compute.
    pub overhead: f64,
}

impl DelayModel {
    /// Check the settings.
    pub fn validate(&self) -> Result<()> {
        ensure(self.n >= 1, "delay model", || "needs a worker".into())?;
        ensure(
            self.sigma >= 0.0 && self.sigma.is_finite(),
            "delay spread σ",
            || format!("{}", self.sigma),
        )?;
        for (what, p) in [("p_slow", self.p_slow), ("p_recover", self.p_recover)] {
            ensure((0.0..=1.0).contains(&p), "delay probability", || {
                format!("{what} = {p}")
            })?;
        }
        ensure(
            self.slowdown >= 1.0 && self.slowdown.is_finite(),
            "slow-down",
            || format!("{} (needs ≥ 1)", self.slowdown),
        )?;
        ensure(
            self.overhead >= 0.0 && self.overhead.is_finite(),
            "overhead",
            || format!("{}", self.overhead),
        )
    }

    /// Unit-load times (rounds × n), seeded; the chain starts in its stationary law.
    pub fn sample(&self, rounds: usize, seed: u64) -> Result<Vec<Vec<f64>>> {
        self.validate()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let stationary = if self.p_slow + self.p_recover > 0.0 {
            self.p_slow / (self.p_slow + self.p_recover)
        } else {
            0.0
        };
        let mut slow: Vec<bool> = (0..self.n)
            .map(|_| rng.random::<f64>() < stationary)
            .collect();
        let mut out = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let row = (0..self.n)
                .map(|i| {
                    let z: f64 = rng.sample(StandardNormal);
                    let t = (self.sigma * z).exp() * if slow[i] { self.slowdown } else { 1.0 };
                    slow[i] = if slow[i] {
                        rng.random::<f64>() >= self.p_recover
                    } else {
                        rng.random::<f64>() < self.p_slow
                    };
                    t
                })
                .collect();
            out.push(row);
        }
        Ok(out)
    }

    /// The time factor of a normalised load (1 at load 1/n).
    pub fn load_factor(&self, load: f64) -> f64 {
        (self.overhead + self.n as f64 * load) / (self.overhead + 1.0)
    }
}

/// The official wait rule: stragglers are the workers slower than min·(1 + μ); returns the flags
/// and the waiting time.
pub fn stragglers(delays: &[f64], mu: f64) -> (Vec<bool>, f64) {
    let min = delays.iter().cloned().fold(f64::INFINITY, f64::min);
    let wait = min * (1.0 + mu);
    (delays.iter().map(|d| *d > wait).collect(), wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(s: &str) -> Vec<bool> {
        s.chars().map(|c| c == '1').collect()
    }

    #[test]
    fn the_spatial_and_temporal_conditions() {
        let m = BurstyModel::new(2, 4, 2).unwrap();
        let h = vec![flags("1000"), flags("1000")];
        assert!(m.admits(&h, &flags("0100")).is_ok()); // 2 distinct in the window
        assert!(m.admits(&h, &flags("0110")).is_err()); // 3 distinct
        // worker 0 straggled in rounds 0, 1 (a burst of B = 2); round 2 would make it 3 long
        assert!(m.admits(&h, &flags("1000")).is_err());
        // a burst of 2, then a gap: round 4 is W = 4 after round 0 … still inside [r−W+1, r−B]
        let h = vec![flags("1000"), flags("1000"), flags("0000"), flags("0000")];
        assert!(m.admits(&h, &flags("1000")).is_err());
        let h = vec![
            flags("1000"),
            flags("1000"),
            flags("0000"),
            flags("0000"),
            flags("0000"),
        ];
        assert!(m.admits(&h, &flags("1000")).is_ok());
        assert!(BurstyModel::new(3, 2, 1).is_err());
    }

    #[test]
    fn delays_are_seeded_and_bursty() {
        let d = DelayModel {
            n: 20,
            sigma: 0.02,
            p_slow: 0.05,
            p_recover: 0.5,
            slowdown: 3.0,
            overhead: 4.0,
        };
        let a = d.sample(200, 1).unwrap();
        assert_eq!(a, d.sample(200, 1).unwrap());
        let slow: usize = a.iter().flatten().filter(|t| **t > 2.0).count();
        let frac = slow as f64 / 4000.0;
        // stationary slow fraction 0.05/0.55 ≈ 0.091
        assert!((frac - 0.091).abs() < 0.03, "{frac}");
        let (s, wait) = stragglers(&[1.0, 1.05, 1.2, 3.0], 0.1);
        assert_eq!((s, wait), (vec![false, false, true, true], 1.1));
        assert!(DelayModel { slowdown: 0.5, ..d }.validate().is_err());
    }
}
