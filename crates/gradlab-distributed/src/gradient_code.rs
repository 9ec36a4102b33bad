//! The classic gradient code (Tandon, Lei, Dimakis and Karampatziakis, "Gradient Coding", ICML
//! 2017), cyclic-repetition construction: n workers, n partitions, worker i holds partitions
//! i, i+1, …, i+s (mod n) and sends Σₖ B_{ik} gₖ; the rows of B lie in the null space of a random
//! H (s × n) with H·1 = 0, so any n − s rows span 1 and the full gradient decodes from any n − s
//! workers. Load per worker (s + 1)/n.
//!
//! The official SGC simulator (`gradient_coding.py`) treats a round as decodable only with fewer
//! than s stragglers (`num_stragglers < s`), one fewer than the code tolerates; [`Convention`]
//! names both, and experiments report both.
//!
//! ```
//! use gradlab_distributed::gradient_code::GradientCode;
//! use gradlab_distributed::code::decode;
//! let gc = GradientCode::new(5, 2, 7).unwrap();
//! let grads: Vec<Vec<f64>> = (0..5).map(|p| vec![p as f64, 1.0]).collect(); // partition gradients
//! let tasks = gc.tasks(0);
//! let results: Vec<Vec<f64>> = tasks.iter().map(|t| t.evaluate(2, |p| grads[p].clone()).unwrap()).collect();
//! // workers 1 and 3 straggle: the other three suffice
//! let ok = [0, 2, 4];
//! let g = decode(0, &ok.map(|i| &tasks[i]), &ok.map(|i| results[i].as_slice()), 5).unwrap();
//! assert!((g[0] - 10.0).abs() < 1e-9 && (g[1] - 5.0).abs() < 1e-9);
//! ```

use crate::code::Task;
use crate::{Result, ensure};
use rand::prelude::*;
use rand_distr::StandardNormal;

/// How many stragglers a GC(n, s) round is taken to tolerate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Convention {
    /// Up to s (what the code decodes).
    Tandon,
    /// Fewer than s (the official SGC simulator's check).
    Official,
}

impl Convention {
    /// Whether `stragglers` stragglers are tolerated by a code for s.
    pub fn tolerates(self, stragglers: usize, s: usize) -> bool {
        match self {
            Convention::Tandon => stragglers <= s,
            Convention::Official => stragglers < s,
        }
    }
}

/// GC(n, s): the encoding matrix B (n × n, row-major).
#[derive(Debug, Clone)]
pub struct GradientCode {
    n: usize,
    s: usize,
    b: Vec<f64>,
}

impl GradientCode {
    /// A code for `n` workers tolerating `s` < n stragglers; `seed` draws H.
    pub fn new(n: usize, s: usize, seed: u64) -> Result<Self> {
        ensure(n >= 1 && s < n, "gradient code", || {
            format!("n = {n}, s = {s} (needs s < n)")
        })?;
        let mut rng = StdRng::seed_from_u64(seed);
        // H (s × n) with zero row sums.
        let mut h = vec![0.0; s * n];
        for r in 0..s {
            let mut sum = 0.0;
            for c in 0..n - 1 {
                let v: f64 = rng.sample(StandardNormal);
                h[r * n + c] = v;
                sum += v;
            }
            h[r * n + n - 1] = -sum;
        }
        let mut b = vec![0.0; n * n];
        for i in 0..n {
            b[i * n + i] = 1.0;
            if s == 0 {
                continue;
            }
            let rest: Vec<usize> = (1..=s).map(|k| (i + k) % n).collect();
            // H[:, rest] x = −H[:, i]
            let mut m: Vec<f64> = (0..s)
                .flat_map(|r| rest.iter().map(|&c| h[r * n + c]).collect::<Vec<_>>())
                .collect();
            let mut rhs: Vec<f64> = (0..s).map(|r| -h[r * n + i]).collect();
            let x = solve_dense(&mut m, &mut rhs, s).ok_or_else(|| crate::DistError::Invalid {
                what: "gradient code",
                why: format!("a singular draw for row {i} (try another seed)"),
            })?;
            for (k, &c) in rest.iter().enumerate() {
                b[i * n + c] = x[k];
            }
        }
        Ok(Self { n, s, b })
    }

    /// Workers n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Stragglers tolerated s.
    pub fn s(&self) -> usize {
        self.s
    }

    /// Normalised load per worker, (s + 1)/n.
    pub fn load(&self) -> f64 {
        (self.s + 1) as f64 / self.n as f64
    }

    /// B_{ik}.
    pub fn coeff(&self, i: usize, k: usize) -> f64 {
        self.b[i * self.n + k]
    }

    /// Worker `i`'s task for `job` over partitions `offset..offset + n`.
    pub fn task(&self, job: usize, i: usize, offset: usize) -> Task {
        let coeffs = (0..=self.s)
            .map(|k| (i + k) % self.n)
            .map(|p| (offset + p, self.coeff(i, p)))
            .collect();
        Task { job, coeffs }
    }

    /// Every worker's task for `job` (partitions 0..n).
    pub fn tasks(&self, job: usize) -> Vec<Task> {
        (0..self.n).map(|i| self.task(job, i, 0)).collect()
    }
}

/// Solve M x = r (k × k, row-major) by Gaussian elimination with partial pivoting; None if
/// singular.
pub(crate) fn solve_dense(m: &mut [f64], r: &mut [f64], k: usize) -> Option<Vec<f64>> {
    for col in 0..k {
        let piv =
            (col..k).max_by(|&a, &b| m[a * k + col].abs().total_cmp(&m[b * k + col].abs()))?;
        if m[piv * k + col].abs() < 1e-12 {
            return None;
        }
        if piv != col {
            for j in 0..k {
                m.swap(piv * k + j, col * k + j);
            }
            r.swap(piv, col);
        }
        for row in col + 1..k {
            let f = m[row * k + col] / m[col * k + col];
            for j in col..k {
                m[row * k + j] -= f * m[col * k + j];
            }
            r[row] -= f * r[col];
        }
    }
    let mut x = vec![0.0; k];
    for i in (0..k).rev() {
        let s: f64 = (i + 1..k).map(|j| m[i * k + j] * x[j]).sum();
        x[i] = (r[i] - s) / m[i * k + i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::decode;

    /// Every subset of `n − stragglers` workers, as index lists.
    fn subsets(n: usize, keep: usize) -> Vec<Vec<usize>> {
        (0u32..1 << n)
            .filter(|m| m.count_ones() as usize == keep)
            .map(|m| (0..n).filter(|i| m >> i & 1 == 1).collect())
            .collect()
    }

    #[test]
    fn any_n_minus_s_workers_decode_the_full_gradient_exactly() {
        // A least-squares gradient split into n partitions; every pattern of ≤ s stragglers.
        let (n, dim) = (7, 3);
        let grads: Vec<Vec<f64>> = (0..n)
            .map(|p| {
                (0..dim)
                    .map(|d| ((p * 7 + d * 3) % 11) as f64 - 5.0)
                    .collect()
            })
            .collect();
        let full: Vec<f64> = (0..dim).map(|d| grads.iter().map(|g| g[d]).sum()).collect();
        for s in 0..n {
            let gc = GradientCode::new(n, s, 3).unwrap();
            let tasks = gc.tasks(0);
            let results: Vec<Vec<f64>> = tasks
                .iter()
                .map(|t| t.evaluate(dim, |p| grads[p].clone()).unwrap())
                .collect();
            for keep in subsets(n, n - s) {
                let t: Vec<&Task> = keep.iter().map(|&i| &tasks[i]).collect();
                let r: Vec<&[f64]> = keep.iter().map(|&i| results[i].as_slice()).collect();
                let g = decode(0, &t, &r, n).unwrap();
                for d in 0..dim {
                    assert!(
                        (g[d] - full[d]).abs() < 1e-8,
                        "s = {s}, workers {keep:?}: {g:?} vs {full:?}"
                    );
                }
            }
            // one more straggler than s: some pattern fails (the code is tight)
            if s + 1 < n {
                assert!(subsets(n, n - s - 1).iter().any(|keep| {
                    decode(
                        0,
                        &keep.iter().map(|&i| &tasks[i]).collect::<Vec<_>>(),
                        &keep
                            .iter()
                            .map(|&i| results[i].as_slice())
                            .collect::<Vec<_>>(),
                        n,
                    )
                    .is_err()
                }));
            }
        }
    }

    #[test]
    fn the_two_conventions_differ_by_one() {
        assert!(Convention::Tandon.tolerates(2, 2) && !Convention::Official.tolerates(2, 2));
        assert!(Convention::Official.tolerates(1, 2));
        assert!(GradientCode::new(4, 4, 0).is_err());
        assert!((GradientCode::new(8, 3, 0).unwrap().load() - 0.5).abs() < 1e-15);
    }
}

/// GC(n, s) as a round-by-round scheme (job r in round r), tolerating s stragglers per round
/// under `convention`; s = 0 is the uncoded scheme.
#[derive(Debug, Clone)]
pub struct GcScheme {
    code: GradientCode,
    convention: Convention,
}

impl GcScheme {
    /// The scheme.
    pub fn new(n: usize, s: usize, convention: Convention, seed: u64) -> Result<Self> {
        Ok(Self {
            code: GradientCode::new(n, s, seed)?,
            convention,
        })
    }
}

impl crate::simulate::Scheme for GcScheme {
    fn name(&self) -> String {
        if self.code.s == 0 {
            "uncoded".into()
        } else {
            format!(
                "GC(s = {}{})",
                self.code.s,
                if self.convention == Convention::Official {
                    ", official < s"
                } else {
                    ""
                }
            )
        }
    }
    fn n(&self) -> usize {
        self.code.n
    }
    fn load(&self) -> f64 {
        self.code.load()
    }
    fn lag(&self) -> usize {
        0
    }
    fn partitions(&self) -> usize {
        self.code.n
    }
    fn assign(&self, round: usize, jobs: usize, _: &crate::simulate::Log) -> Vec<Vec<Task>> {
        (0..self.code.n)
            .map(|i| {
                if round < jobs {
                    vec![self.code.task(round, i, 0)]
                } else {
                    vec![]
                }
            })
            .collect()
    }
    fn tolerates(&self, _: &[Vec<bool>], current: &[bool]) -> std::result::Result<(), String> {
        let k = current.iter().filter(|s| **s).count();
        if self.convention.tolerates(k, self.code.s) {
            Ok(())
        } else {
            Err(format!(
                "{k} stragglers, more than {} tolerates",
                self.name()
            ))
        }
    }
    fn decodable(&self, job: usize, log: &crate::simulate::Log) -> bool {
        log.stragglers
            .get(job)
            .is_some_and(|lost| lost.iter().filter(|l| !**l).count() >= self.code.n - self.code.s)
    }
}
