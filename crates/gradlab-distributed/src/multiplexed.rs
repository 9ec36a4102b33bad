//! Multiplexed SGC (M-SGC; Ebrahimi et al., ICLR 2023, as the official `multiplexed_sgc.py`).
//!
//! Each job's data is split into D1, n(W − 1) chunks, W − 1 per worker and uncoded, and D2, B
//! groups of n partitions, each group coded with GC(n, λ). A job's work runs along a diagonal: its
//! minitask m (m = 0 … W − 2 + B) is done in round job + m, each round carrying W − 1 + B minitasks
//! of as many jobs. Minitasks m < W − 1 are a worker's D1 chunks in order; each later minitask is
//! the worker's D2 task of group m − (W − 1) if all its D1 chunks have arrived, else a retry of its
//! first missing chunk. A job decodes (at round job + W − 2 + B) when every worker's D1 chunks
//! arrived and every D2 group has n − λ results. With a D1 chunk λ + 1 times a D2 partition, the
//! load is (λ+1)(W−1+B)/(n(B + (W−1)(λ+1))).
//!
//! The official simulator looks back `state[:, 0, r+1−W : r]`, which for r < W − 1 is a negative
//! numpy slice and so empty: in the first W − 1 rounds it ignores earlier stragglers. This applies
//! the model's window from round 0.

use crate::code::Task;
use crate::gradient_code::GradientCode;
use crate::simulate::{Log, Scheme};
use crate::straggler::BurstyModel;
use crate::{Result, ensure};

/// The scheme.
#[derive(Debug, Clone)]
pub struct MSgc {
    model: BurstyModel,
    n: usize,
    code: GradientCode,
}

impl MSgc {
    /// M-SGC for `n` workers under `model` (needs B < W and λ < n).
    pub fn new(n: usize, model: BurstyModel, seed: u64) -> Result<Self> {
        ensure(model.b < model.w, "M-SGC", || {
            format!("B = {} must be below W = {}", model.b, model.w)
        })?;
        ensure(model.lambda < n, "M-SGC", || {
            format!("λ = {} must be below n = {n}", model.lambda)
        })?;
        Ok(Self {
            model,
            n,
            code: GradientCode::new(n, model.lambda, seed)?,
        })
    }

    /// Normalised load (λ+1)(W−1+B)/(n(B + (W−1)(λ+1))).
    pub fn load_of(n: usize, model: BurstyModel) -> f64 {
        let (b, w, l) = (model.b as f64, model.w as f64, model.lambda as f64);
        (l + 1.0) * (w - 1.0 + b) / (n as f64 * (b + (w - 1.0) * (l + 1.0)))
    }

    fn d1(&self) -> usize {
        self.model.w - 1
    }

    fn minitasks(&self) -> usize {
        self.model.w - 1 + self.model.b
    }

    /// Partition index of worker i's D1 chunk c.
    fn chunk(&self, i: usize, c: usize) -> usize {
        i * self.d1() + c
    }

    /// The chunks of worker `i` for `job` that have arrived.
    fn arrived_chunks(&self, job: usize, i: usize, log: &Log) -> Vec<bool> {
        let mut got = vec![false; self.d1()];
        let end = (job + self.minitasks()).min(log.tasks.len());
        for r in job.min(end)..end {
            if log.stragglers[r][i] {
                continue;
            }
            for t in log.tasks[r][i]
                .iter()
                .filter(|t| t.job == job && t.coeffs.len() == 1)
            {
                let p = t.coeffs[0].0;
                if p < self.n * self.d1() {
                    got[p - i * self.d1()] = true;
                }
            }
        }
        got
    }
}

impl Scheme for MSgc {
    fn name(&self) -> String {
        format!(
            "M-SGC(B = {}, W = {}, λ = {})",
            self.model.b, self.model.w, self.model.lambda
        )
    }
    fn n(&self) -> usize {
        self.n
    }
    fn load(&self) -> f64 {
        Self::load_of(self.n, self.model)
    }
    fn lag(&self) -> usize {
        self.model.w - 2 + self.model.b
    }
    fn partitions(&self) -> usize {
        self.n * self.d1() + self.model.b * self.n
    }
    fn assign(&self, round: usize, jobs: usize, log: &Log) -> Vec<Vec<Task>> {
        (0..self.n)
            .map(|i| {
                (0..self.minitasks())
                    .filter_map(|m| {
                        let job = round.checked_sub(m).filter(|j| *j < jobs)?;
                        if m < self.d1() {
                            return Some(Task {
                                job,
                                coeffs: vec![(self.chunk(i, m), 1.0)],
                            });
                        }
                        let got = self.arrived_chunks(job, i, log);
                        Some(match got.iter().position(|g| !g) {
                            Some(c) => Task {
                                job,
                                coeffs: vec![(self.chunk(i, c), 1.0)],
                            },
                            None => self.code.task(
                                job,
                                i,
                                self.n * self.d1() + (m - self.d1()) * self.n,
                            ),
                        })
                    })
                    .collect()
            })
            .collect()
    }
    fn tolerates(
        &self,
        history: &[Vec<bool>],
        current: &[bool],
    ) -> std::result::Result<(), String> {
        self.model.admits(history, current)
    }
    fn decodable(&self, job: usize, log: &Log) -> bool {
        if (0..self.n).any(|i| self.arrived_chunks(job, i, log).iter().any(|g| !g)) {
            return false;
        }
        let base = self.n * self.d1();
        let mut per_group = vec![0usize; self.model.b];
        for (_, _, _, t) in log.received(job, self.lag()) {
            if t.coeffs.len() > 1 || (self.model.lambda == 0 && t.coeffs[0].0 >= base) {
                per_group[(t.coeffs[0].0 - base) / self.n] += 1;
            }
        }
        per_group.iter().all(|&c| c >= self.n - self.model.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient_code::{Convention, GcScheme};
    use crate::selective_repeat::SrSgc;
    use crate::simulate::run_patterns;

    /// Every sequence of straggler patterns over `rounds` rounds that `scheme` tolerates (depth
    /// first, extending only admitted prefixes).
    fn admitted(scheme: &dyn Scheme, rounds: usize) -> Vec<Vec<Vec<bool>>> {
        let n = scheme.n();
        let all: Vec<Vec<bool>> = (0u32..1 << n)
            .map(|m| (0..n).map(|i| m >> i & 1 == 1).collect())
            .collect();
        let mut out = vec![];
        let mut stack = vec![vec![]];
        while let Some(prefix) = stack.pop() {
            if prefix.len() == rounds {
                out.push(prefix);
                continue;
            }
            for p in &all {
                if scheme.tolerates(&prefix, p).is_ok() {
                    let mut next = prefix.clone();
                    next.push(p.clone());
                    stack.push(next);
                }
            }
        }
        out
    }

    /// Least-squares gradients Xₚᵀ(Xₚw − yₚ) of partition p of job j (a different w per job).
    fn ls_gradient(job: usize, p: usize) -> Vec<f64> {
        let x: Vec<[f64; 2]> = (0..3)
            .map(|k| {
                [
                    ((p * 5 + k * 3 + job) % 7) as f64 - 3.0,
                    ((p + 2 * k) % 5) as f64 - 2.0,
                ]
            })
            .collect();
        let y: Vec<f64> = (0..3).map(|k| ((p * 3 + k) % 4) as f64 - 1.5).collect();
        let w = [0.5 + job as f64 * 0.1, -1.0];
        let mut g = vec![0.0; 2];
        for (xi, yi) in x.iter().zip(&y) {
            let r = xi[0] * w[0] + xi[1] * w[1] - yi;
            g[0] += xi[0] * r;
            g[1] += xi[1] * r;
        }
        g
    }

    fn check_all(scheme: &dyn Scheme, jobs: usize) -> usize {
        let patterns = admitted(scheme, jobs + scheme.lag());
        for pat in &patterns {
            let got = run_patterns(scheme, pat, jobs, 2, &ls_gradient)
                .unwrap_or_else(|e| panic!("{}: {e} under {pat:?}", scheme.name()));
            for (j, g) in got.iter().enumerate() {
                let full: Vec<f64> = (0..2)
                    .map(|d| (0..scheme.partitions()).map(|p| ls_gradient(j, p)[d]).sum())
                    .collect();
                assert!(
                    g.iter().zip(&full).all(|(a, b)| (a - b).abs() < 1e-8),
                    "{}: job {j} {g:?} vs {full:?}",
                    scheme.name()
                );
            }
        }
        patterns.len()
    }

    #[test]
    fn every_admitted_pattern_decodes_the_full_gradient_exactly() {
        // n = 4 workers; all admitted straggler sequences over the jobs' rounds.
        let m = BurstyModel::new(1, 3, 2).unwrap();
        assert!(check_all(&SrSgc::new(4, m, 1).unwrap(), 3) > 100);
        let m = BurstyModel::new(2, 3, 2).unwrap();
        assert!(check_all(&MSgc::new(4, m, 1).unwrap(), 2) > 100);
        let m = BurstyModel::new(1, 2, 1).unwrap();
        assert!(check_all(&MSgc::new(4, m, 2).unwrap(), 3) > 10);
        assert!(check_all(&GcScheme::new(4, 2, Convention::Tandon, 0).unwrap(), 2) > 10);
    }

    #[test]
    fn a_pattern_outside_the_model_is_refused() {
        let m = BurstyModel::new(1, 3, 1).unwrap();
        let s = MSgc::new(4, m, 1).unwrap();
        let two = vec![true, true, false, false];
        let none = vec![false; 4];
        let err = run_patterns(&s, &[two, none.clone(), none], 1, 2, &ls_gradient).unwrap_err();
        assert!(
            matches!(err, crate::DistError::OutsideModel { round: 0, .. }),
            "{err}"
        );
        assert!(MSgc::new(4, BurstyModel::new(2, 2, 1).unwrap(), 0).is_err());
        assert!(SrSgc::new(4, BurstyModel::new(2, 4, 1).unwrap(), 0).is_err()); // B ∤ W − 1
    }

    #[test]
    fn the_load_formula() {
        let m = BurstyModel::new(2, 3, 1).unwrap();
        // (2)(4)/(4·(2 + 2·2)) = 8/24
        assert!((MSgc::load_of(4, m) - 1.0 / 3.0).abs() < 1e-15);
    }
}
