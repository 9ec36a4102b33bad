//! Rounds of a coded scheme: what each worker is asked, who straggles, when a job decodes, how
//! long each round takes.
//!
//! A [`Scheme`] assigns tasks per round from the master's [`Log`] (what was asked and who
//! answered), says whether a straggler pattern is within what it tolerates, and when a job is
//! decodable. [`simulate`] drives it with a delay matrix and the official wait rule: when the
//! round's stragglers are tolerated the round lasts min·(1 + μ) and the stragglers' results are
//! lost; otherwise the master waits for everyone (the slowest delay) and nothing is lost.
//! [`run_patterns`] drives it with explicit straggler patterns instead and decodes every job's
//! gradient with the generic decoder: the exact check.

use crate::code::{Task, decode, decoding_weights};
use crate::straggler::stragglers;
use crate::{DistError, Result};

/// What the master has seen: per round, each worker's tasks and whether it straggled.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// `tasks[r][i]`: worker i's tasks in round r.
    pub tasks: Vec<Vec<Vec<Task>>>,
    /// `stragglers[r][i]`: whether worker i's results of round r were lost.
    pub stragglers: Vec<Vec<bool>>,
}

impl Log {
    /// The tasks of `job` whose results arrived in rounds job ..= job + `lag` (where a scheme of
    /// that lag places them), with (round, worker, index within the round).
    pub fn received(&self, job: usize, lag: usize) -> Vec<(usize, usize, usize, &Task)> {
        let mut out = vec![];
        let end = (job + lag + 1).min(self.tasks.len());
        for r in job.min(end)..end {
            let (tasks, lost) = (&self.tasks[r], &self.stragglers[r]);
            for (i, (ts, l)) in tasks.iter().zip(lost).enumerate() {
                if *l {
                    continue;
                }
                for (k, t) in ts.iter().enumerate() {
                    if t.job == job {
                        out.push((r, i, k, t));
                    }
                }
            }
        }
        out
    }
}

/// A coded scheme for n workers.
pub trait Scheme {
    /// Its name and parameters.
    fn name(&self) -> String;
    /// Workers.
    fn n(&self) -> usize;
    /// Normalised load per worker per round.
    fn load(&self) -> f64;
    /// Rounds after a job's first round by which it decodes (GC 0, SR-SGC B, M-SGC W − 2 + B).
    fn lag(&self) -> usize;
    /// Partitions of a job's data.
    fn partitions(&self) -> usize;
    /// Each worker's tasks in `round` (jobs ≥ `jobs` are not assigned).
    fn assign(&self, round: usize, jobs: usize, log: &Log) -> Vec<Vec<Task>>;
    /// Whether `current` stragglers are tolerated after `history` (Err: why not).
    fn tolerates(&self, history: &[Vec<bool>], current: &[bool])
    -> std::result::Result<(), String>;
    /// The scheme's own decodability rule for `job` (the official combinatorial check).
    fn decodable(&self, job: usize, log: &Log) -> bool;
}

/// A simulated run.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    /// Duration of each round.
    pub durations: Vec<f64>,
    /// Rounds in which the master waited for everyone (a pattern outside the scheme's tolerance).
    pub waited_for_all: usize,
    /// Jobs the scheme lost although every pattern was inside its tolerance; each cost a recovery
    /// round in which every worker redid its part of the job (the slowest delay of the round).
    pub recoveries: usize,
}

impl Run {
    /// Total time.
    pub fn total(&self) -> f64 {
        self.durations.iter().sum()
    }
}

/// Run `jobs` jobs of `scheme` on unit-load `delays` (rounds × n; at least jobs + lag rows),
/// scaled by `factor` (the load's time factor), with wait rule μ. A job the scheme loses inside its
/// tolerance is not skipped: it is counted in [`Run::recoveries`] and costs a recovery round (the
/// round's slowest delay). An error if the delays are too few.
pub fn simulate(
    scheme: &dyn Scheme,
    delays: &[Vec<f64>],
    factor: f64,
    mu: f64,
    jobs: usize,
) -> Result<Run> {
    let rounds = jobs + scheme.lag();
    if delays.len() < rounds || delays.iter().any(|d| d.len() != scheme.n()) {
        return Err(DistError::Shape {
            what: "delay rows (rounds × workers)",
            expected: rounds * scheme.n(),
            got: delays.iter().map(Vec::len).sum(),
        });
    }
    let mut log = Log::default();
    let mut run = Run {
        durations: vec![],
        waited_for_all: 0,
        recoveries: 0,
    };
    for (r, row) in delays.iter().take(rounds).enumerate() {
        let tasks = scheme.assign(r, jobs, &log);
        let scaled: Vec<f64> = row.iter().map(|d| d * factor).collect();
        let (flags, wait) = stragglers(&scaled, mu);
        let (lost, duration) = if scheme.tolerates(&log.stragglers, &flags).is_ok() {
            (flags, wait)
        } else {
            run.waited_for_all += 1;
            (
                vec![false; scheme.n()],
                scaled.iter().cloned().fold(0.0, f64::max),
            )
        };
        log.tasks.push(tasks);
        log.stragglers.push(lost);
        let mut duration = duration;
        if let Some(job) = r.checked_sub(scheme.lag()).filter(|j| *j < jobs)
            && !scheme.decodable(job, &log)
        {
            run.recoveries += 1;
            duration += scaled.iter().cloned().fold(0.0, f64::max);
        }
        run.durations.push(duration);
    }
    Ok(run)
}

/// Run `scheme` under explicit straggler `patterns` (one per round, jobs + lag of them), compute
/// every task from `partition_gradient(job, partition)`, and decode each job's gradient with the
/// generic decoder. An error if a pattern is outside the scheme's tolerance, or a job does not
/// decode (both the scheme's rule and the decoder are consulted, and must agree).
pub fn run_patterns(
    scheme: &dyn Scheme,
    patterns: &[Vec<bool>],
    jobs: usize,
    dim: usize,
    partition_gradient: &dyn Fn(usize, usize) -> Vec<f64>,
) -> Result<Vec<Vec<f64>>> {
    let rounds = jobs + scheme.lag();
    if patterns.len() != rounds {
        return Err(DistError::Shape {
            what: "straggler patterns (one per round)",
            expected: rounds,
            got: patterns.len(),
        });
    }
    let mut log = Log::default();
    let mut results: Vec<Vec<Vec<Vec<f64>>>> = vec![];
    let mut out = vec![];
    for (r, p) in patterns.iter().enumerate() {
        if p.len() != scheme.n() {
            return Err(DistError::Shape {
                what: "straggler pattern",
                expected: scheme.n(),
                got: p.len(),
            });
        }
        scheme
            .tolerates(&log.stragglers, p)
            .map_err(|why| DistError::OutsideModel { round: r, why })?;
        let tasks = scheme.assign(r, jobs, &log);
        let res = tasks
            .iter()
            .map(|ts| {
                ts.iter()
                    .map(|t| t.evaluate(dim, |q| partition_gradient(t.job, q)))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        log.tasks.push(tasks);
        log.stragglers.push(p.clone());
        results.push(res);
        if let Some(job) = r.checked_sub(scheme.lag()).filter(|j| *j < jobs) {
            let got = log.received(job, scheme.lag());
            let ts: Vec<&Task> = got.iter().map(|g| g.3).collect();
            let rs: Vec<&[f64]> = got
                .iter()
                .map(|&(rr, i, k, _)| results[rr][i][k].as_slice())
                .collect();
            let rule = scheme.decodable(job, &log);
            let exact = decoding_weights(job, &ts, scheme.partitions()).is_ok();
            if rule != exact {
                return Err(DistError::Undecodable {
                    job,
                    why: format!(
                        "{}: the scheme's rule says {rule}, the decoder {exact}",
                        scheme.name()
                    ),
                });
            }
            out.push(decode(job, &ts, &rs, scheme.partitions())?);
        }
    }
    Ok(out)
}

/// The (B, W, λ) of SR-SGC whose load is at most GC(n, s)'s, W ≤ `w_max` (the official
/// `srsgc_combinations`, with W capped).
pub fn sr_sgc_models(n: usize, s: usize, w_max: usize) -> Vec<crate::straggler::BurstyModel> {
    let mut out = vec![];
    for w in 2..=w_max.min(n) {
        for b in (1..w).filter(|b| (w - 1) % b == 0) {
            for lambda in 1..=n {
                let s_sr = (b * lambda).div_ceil(w - 1 + b);
                if s_sr <= s && s_sr < n {
                    out.push(crate::straggler::BurstyModel { b, w, lambda });
                }
            }
        }
    }
    out
}

/// The (B, W, λ) of M-SGC whose load is at most GC(n, s)'s, W ≤ `w_max` (the official
/// `msgc_combinations`, with W capped).
pub fn m_sgc_models(n: usize, s: usize, w_max: usize) -> Vec<crate::straggler::BurstyModel> {
    let gc = (s + 1) as f64 / n as f64;
    let mut out = vec![];
    for w in 2..=w_max.min(n) {
        for b in 1..w {
            for lambda in 0..n {
                let m = crate::straggler::BurstyModel { b, w, lambda };
                if crate::multiplexed::MSgc::load_of(n, m) <= gc + 1e-12 {
                    out.push(m);
                }
            }
        }
    }
    out
}
