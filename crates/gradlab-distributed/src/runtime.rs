//! A master and n workers running a coded scheme for real, over a [`Transport`].
//!
//! Each round the master sends every worker its tasks (with the model each task's job is computed
//! at, and an injected delay to sleep first); workers answer with their results. The master applies
//! the official wait rule to real arrival times: it waits (1 + μ) times the first answer's latency;
//! workers not heard from by then straggle. If the scheme tolerates that pattern it goes on
//! without them (their late answers are dropped by round), otherwise it waits for everyone. A job
//! whose decoding round has come is decoded with the generic decoder and applied.
//!
//! Transports: [`ThreadTransport`] (threads and channels in one process); MPI behind the `mpi`
//! feature (`crate::mpi_transport`, the same messages flattened by [`crate::wire`]). A worker that fails reports it; a worker that goes silent past the deadline is an
//! error naming it; either way the master stops the others and returns the error, never hangs.

use crate::code::{Task, decode};
use crate::simulate::{Log, Scheme};
use crate::{DistError, Result};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

/// Master → worker.
#[derive(Debug, Clone)]
pub enum ToWorker {
    /// Do `tasks` of `round`, the model of each task's job in `models` (job, weights), after
    /// sleeping `delay`.
    Work {
        /// The round.
        round: usize,
        /// The tasks.
        tasks: Vec<Task>,
        /// (job, model) pairs.
        models: Vec<(usize, Vec<f64>)>,
        /// Injected delay.
        delay: Duration,
    },
    /// Finish.
    Stop,
}

/// Worker → master.
#[derive(Debug, Clone)]
pub enum FromWorker {
    /// Results of `round`, one per task.
    Done {
        /// The worker.
        worker: usize,
        /// The round.
        round: usize,
        /// One vector per task.
        results: Vec<Vec<f64>>,
    },
    /// The worker could not go on.
    Failed {
        /// The worker.
        worker: usize,
        /// Why.
        why: String,
    },
}

/// How the master reaches its workers.
pub trait Transport {
    /// Number of workers.
    fn workers(&self) -> usize;
    /// Send to one worker.
    fn send(&mut self, worker: usize, msg: ToWorker) -> Result<()>;
    /// The next answer, or None after `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<FromWorker>>;
    /// Tell every worker to stop and wait for them.
    fn shutdown(&mut self) -> Result<()>;
}

/// What a worker computes: the gradient of one data partition of a job at a model.
pub type PartitionGradient = dyn Fn(usize, usize, &[f64]) -> Result<Vec<f64>> + Send + Sync;

/// Least squares on fixed synthetic data, for runtime measurements and examples: `rows` rows of
/// `dim` features xᵣ (a fixed pattern in [−1, 1]) with targets yᵣ = Σ_d (d − 1.5)·xᵣ,d plus a small
/// fixed residual, split into `parts` equal partitions; partition p's gradient of
/// (1/2·rows)·Σᵣ (xᵣ·w − yᵣ)² over its rows (so the partitions' gradients sum to the full one).
pub fn synthetic_least_squares(
    parts: usize,
    rows: usize,
    dim: usize,
) -> std::sync::Arc<PartitionGradient> {
    std::sync::Arc::new(move |_job, p, w: &[f64]| {
        if p >= parts || w.len() != dim {
            return Err(DistError::Invalid {
                what: "least-squares call",
                why: format!(
                    "partition {p} of {parts} with a model of {} values (needs {dim})",
                    w.len()
                ),
            });
        }
        let (lo, hi) = (p * rows / parts, (p + 1) * rows / parts);
        let mut g = vec![0.0; dim];
        for row in lo..hi {
            let x: Vec<f64> = (0..dim)
                .map(|d| (((row * 13 + d * 7) % 17) as f64 - 8.0) / 8.0)
                .collect();
            let y = x
                .iter()
                .enumerate()
                .map(|(d, v)| v * (d as f64 - 1.5))
                .sum::<f64>()
                + (((row * 5) % 3) as f64 - 1.0) * 0.1;
            let r: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - y;
            g.iter_mut()
                .zip(&x)
                .for_each(|(g, x)| *g += r * x / rows as f64);
        }
        Ok(g)
    })
}

/// A worker's loop: take the newest work (skipping stale rounds), sleep its delay, compute every
/// task, answer; stop on `Stop` or when the master is gone.
pub fn worker_loop(
    id: usize,
    rx: &Receiver<ToWorker>,
    tx: &Sender<FromWorker>,
    grad: &PartitionGradient,
) {
    while let Ok(mut msg) = rx.recv() {
        while let Ok(newer) = rx.try_recv() {
            msg = newer;
        }
        let Some(reply) = answer(id, msg, grad) else {
            return;
        };
        let failed = matches!(reply, FromWorker::Failed { .. });
        if tx.send(reply).is_err() || failed {
            return;
        }
    }
}

/// A worker's answer to `msg` (any transport): none for `Stop`; for work, sleep its injected
/// delay, then [`compute`].
pub fn answer(id: usize, msg: ToWorker, grad: &PartitionGradient) -> Option<FromWorker> {
    let ToWorker::Work {
        round,
        tasks,
        models,
        delay,
    } = msg
    else {
        return None;
    };
    std::thread::sleep(delay);
    Some(compute(id, round, &tasks, &models, grad))
}

/// A worker's answer to the tasks of `round`: every task computed at its job's model, or the
/// first failure.
pub fn compute(
    id: usize,
    round: usize,
    tasks: &[Task],
    models: &[(usize, Vec<f64>)],
    grad: &PartitionGradient,
) -> FromWorker {
    let run = || -> Result<Vec<Vec<f64>>> {
        tasks
            .iter()
            .map(|t| {
                let w = models
                    .iter()
                    .find(|m| m.0 == t.job)
                    .map(|m| m.1.as_slice())
                    .ok_or_else(|| DistError::Worker {
                        worker: id,
                        why: format!("no model for job {}", t.job),
                    })?;
                let dim = w.len();
                let mut err = None;
                let v = t.evaluate(dim, |p| {
                    grad(t.job, p, w).unwrap_or_else(|e| {
                        err = Some(e);
                        vec![0.0; dim]
                    })
                })?;
                err.map_or(Ok(v), Err)
            })
            .collect()
    };
    match run() {
        Ok(results) => FromWorker::Done {
            worker: id,
            round,
            results,
        },
        Err(e) => FromWorker::Failed {
            worker: id,
            why: e.to_string(),
        },
    }
}

/// Threads and channels: n worker threads in this process.
pub struct ThreadTransport {
    to: Vec<Sender<ToWorker>>,
    from: Receiver<FromWorker>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl ThreadTransport {
    /// Start `n` workers computing with `grad`.
    pub fn spawn(n: usize, grad: std::sync::Arc<PartitionGradient>) -> Self {
        let (tx, from) = channel();
        let mut to = vec![];
        let mut handles = vec![];
        for id in 0..n {
            let (wtx, wrx) = channel();
            to.push(wtx);
            let (tx, grad) = (tx.clone(), grad.clone());
            handles.push(std::thread::spawn(move || {
                // A panic inside the worker is reported as a failure, not a silent hang.
                let guard = PanicReport { id, tx: tx.clone() };
                worker_loop(id, &wrx, &tx, &*grad);
                std::mem::forget(guard);
            }));
        }
        Self { to, from, handles }
    }
}

/// Sends `Failed` if dropped during a panic.
struct PanicReport {
    id: usize,
    tx: Sender<FromWorker>,
}

impl Drop for PanicReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.tx.send(FromWorker::Failed {
                worker: self.id,
                why: "panicked".into(),
            });
        }
    }
}

impl Transport for ThreadTransport {
    fn workers(&self) -> usize {
        self.to.len()
    }
    fn send(&mut self, worker: usize, msg: ToWorker) -> Result<()> {
        self.to[worker].send(msg).map_err(|_| DistError::Worker {
            worker,
            why: "its channel is closed (the thread ended)".into(),
        })
    }
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<FromWorker>> {
        match self.from.recv_timeout(timeout) {
            Ok(m) => Ok(Some(m)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => {
                Err(DistError::Transport("every worker is gone".into()))
            }
        }
    }
    fn shutdown(&mut self) -> Result<()> {
        for t in &self.to {
            let _ = t.send(ToWorker::Stop);
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
        Ok(())
    }
}

/// Settings of a real run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Jobs (gradient steps).
    pub jobs: usize,
    /// Wait rule μ.
    pub mu: f64,
    /// Step size.
    pub lr: f64,
    /// Injected delays (rounds × workers), already in time units.
    pub delays: Vec<Vec<Duration>>,
    /// How long to wait for a worker before calling it dead.
    pub deadline: Duration,
}

/// What a real run measured.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The final model.
    pub model: Vec<f64>,
    /// Each decoded job's gradient.
    pub gradients: Vec<Vec<f64>>,
    /// Wall time of each round.
    pub round_times: Vec<Duration>,
    /// Rounds in which the master waited for everyone.
    pub waited_for_all: usize,
}

/// Run `scheme` for real: gradient descent w ← w − lr·g_j as each job j decodes (jobs are computed
/// at the model current in their first round, so a scheme with lag T applies gradients T rounds
/// late). On any error the workers are stopped before it is returned.
pub fn run(
    transport: &mut dyn Transport,
    scheme: &dyn Scheme,
    w0: &[f64],
    cfg: &RunConfig,
) -> Result<RunReport> {
    let result = run_inner(transport, scheme, w0, cfg);
    let down = transport.shutdown();
    let report = result?;
    down?;
    Ok(report)
}

fn run_inner(
    transport: &mut dyn Transport,
    scheme: &dyn Scheme,
    w0: &[f64],
    cfg: &RunConfig,
) -> Result<RunReport> {
    let n = scheme.n();
    if transport.workers() != n {
        return Err(DistError::Transport(format!(
            "{} workers for a scheme of {n}",
            transport.workers()
        )));
    }
    let rounds = cfg.jobs + scheme.lag();
    if cfg.delays.len() < rounds || cfg.delays.iter().any(|d| d.len() != n) {
        return Err(DistError::Shape {
            what: "injected delays (rounds × workers)",
            expected: rounds * n,
            got: cfg.delays.iter().map(Vec::len).sum(),
        });
    }
    crate::ensure(cfg.mu >= 0.0 && cfg.mu.is_finite(), "wait rule μ", || {
        format!("{}", cfg.mu)
    })?;
    let mut w = w0.to_vec();
    let mut models: Vec<Vec<f64>> = vec![];
    let mut log = Log::default();
    let mut results: Vec<Vec<Option<Vec<Vec<f64>>>>> = vec![];
    let mut report = RunReport {
        model: vec![],
        gradients: vec![],
        round_times: vec![],
        waited_for_all: 0,
    };
    for r in 0..rounds {
        if r < cfg.jobs {
            models.push(w.clone());
        }
        let tasks = scheme.assign(r, cfg.jobs, &log);
        let start = Instant::now();
        for (i, ts) in tasks.iter().enumerate() {
            let mut jobs: Vec<usize> = ts.iter().map(|t| t.job).collect();
            jobs.dedup();
            let ms = jobs.iter().map(|&j| (j, models[j].clone())).collect();
            transport.send(
                i,
                ToWorker::Work {
                    round: r,
                    tasks: ts.clone(),
                    models: ms,
                    delay: cfg.delays[r][i],
                },
            )?;
        }
        // Collect: the first answer fixes the wait.
        let mut got: Vec<Option<Vec<Vec<f64>>>> = vec![None; n];
        let mut until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let timeout = match until {
                Some(t) if now >= t => break,
                Some(t) => t - now,
                None => cfg.deadline,
            };
            match transport.recv_timeout(timeout)? {
                Some(FromWorker::Done {
                    worker,
                    round,
                    results,
                }) if round == r => {
                    if until.is_none() {
                        until = Some(start + start.elapsed().mul_f64(1.0 + cfg.mu));
                    }
                    got[worker] = Some(results);
                    if got.iter().all(Option::is_some) {
                        break;
                    }
                }
                Some(FromWorker::Done { .. }) => {} // a late answer of an earlier round
                Some(FromWorker::Failed { worker, why }) => {
                    return Err(DistError::Worker { worker, why });
                }
                None if until.is_none() => {
                    return Err(DistError::Worker {
                        worker: 0,
                        why: format!("no worker answered round {r} within {:?}", cfg.deadline),
                    });
                }
                None => break,
            }
        }
        let mut lost: Vec<bool> = got.iter().map(Option::is_none).collect();
        if scheme.tolerates(&log.stragglers, &lost).is_err() {
            report.waited_for_all += 1;
            while let Some(i) = got.iter().position(Option::is_none) {
                match transport.recv_timeout(cfg.deadline)? {
                    Some(FromWorker::Done {
                        worker,
                        round,
                        results,
                    }) if round == r => got[worker] = Some(results),
                    Some(FromWorker::Done { .. }) => {}
                    Some(FromWorker::Failed { worker, why }) => {
                        return Err(DistError::Worker { worker, why });
                    }
                    None => {
                        return Err(DistError::Worker {
                            worker: i,
                            why: format!("silent for {:?} in round {r}", cfg.deadline),
                        });
                    }
                }
            }
            lost = vec![false; n];
        }
        report.round_times.push(start.elapsed());
        log.tasks.push(tasks);
        log.stragglers.push(lost.clone());
        results.push(
            got.into_iter()
                .zip(&lost)
                .map(|(g, l)| if *l { None } else { g })
                .collect(),
        );
        if let Some(job) = r.checked_sub(scheme.lag()).filter(|j| *j < cfg.jobs) {
            let rec = log.received(job, scheme.lag());
            let ts: Vec<&Task> = rec.iter().map(|x| x.3).collect();
            let rs: Vec<&[f64]> = rec
                .iter()
                .map(|&(rr, i, k, _)| {
                    results[rr][i]
                        .as_ref()
                        .map(|v| v[k].as_slice())
                        .unwrap_or(&[])
                })
                .collect();
            let g = decode(job, &ts, &rs, scheme.partitions())?;
            if g.len() != w.len() || !g.iter().all(|v| v.is_finite()) {
                return Err(DistError::Undecodable {
                    job,
                    why: "the decoded gradient is not a finite vector of the model's size".into(),
                });
            }
            w.iter_mut().zip(&g).for_each(|(w, g)| *w -= cfg.lr * g);
            report.gradients.push(g);
        }
    }
    report.model = w;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradient_code::{Convention, GcScheme};
    use crate::multiplexed::MSgc;
    use crate::straggler::BurstyModel;
    use std::sync::Arc;

    /// Least squares on fixed data split into `parts` partitions: gradient of partition p at w.
    fn ls(parts: usize) -> Arc<PartitionGradient> {
        Arc::new(move |_job, p, w: &[f64]| {
            let mut g = vec![0.0; w.len()];
            for k in 0..4 {
                let row = p * 4 + k;
                let x: Vec<f64> = (0..w.len())
                    .map(|d| (((row * 7 + d * 3) % 11) as f64 - 5.0) / 5.0)
                    .collect();
                let y = ((row % 5) as f64 - 2.0) / 2.0;
                let r: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - y;
                g.iter_mut().zip(&x).for_each(|(g, x)| *g += r * x);
            }
            let _ = parts;
            Ok(g)
        })
    }

    fn delays(rounds: usize, n: usize, slow: &[(usize, usize)]) -> Vec<Vec<Duration>> {
        (0..rounds)
            .map(|r| {
                (0..n)
                    .map(|i| Duration::from_millis(if slow.contains(&(r, i)) { 60 } else { 2 }))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn decoded_gradients_equal_the_full_gradient_at_the_jobs_model() {
        let n = 4;
        let model = BurstyModel::new(1, 3, 1).unwrap();
        let scheme = MSgc::new(n, model, 3).unwrap();
        let grad = ls(scheme.partitions());
        let mut t = ThreadTransport::spawn(n, grad.clone());
        let cfg = RunConfig {
            jobs: 5,
            mu: 0.5,
            lr: 0.01,
            delays: delays(5 + scheme.lag(), n, &[(1, 2)]),
            deadline: Duration::from_secs(10),
        };
        let rep = run(&mut t, &scheme, &[0.1, -0.2, 0.3], &cfg).unwrap();
        // Replay: the same updates computed directly.
        let mut w = vec![0.1, -0.2, 0.3];
        let mut models = vec![];
        for r in 0..cfg.jobs + scheme.lag() {
            if r < cfg.jobs {
                models.push(w.clone());
            }
            if let Some(j) = r.checked_sub(scheme.lag()).filter(|j| *j < cfg.jobs) {
                let full: Vec<f64> = (0..3)
                    .map(|d| {
                        (0..scheme.partitions())
                            .map(|p| grad(j, p, &models[j]).unwrap()[d])
                            .sum()
                    })
                    .collect();
                assert!(
                    full.iter()
                        .zip(&rep.gradients[j])
                        .all(|(a, b)| (a - b).abs() < 1e-9),
                    "job {j}"
                );
                w.iter_mut().zip(&full).for_each(|(w, g)| *w -= 0.01 * g);
            }
        }
        assert!(w.iter().zip(&rep.model).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn a_failing_worker_stops_the_run_with_its_name() {
        let n = 4;
        let bad: Arc<PartitionGradient> = Arc::new(|_j, p, w: &[f64]| {
            if p == 2 {
                Err(DistError::Invalid {
                    what: "data",
                    why: "partition 2 is corrupt".into(),
                })
            } else {
                Ok(vec![0.0; w.len()])
            }
        });
        let scheme = GcScheme::new(n, 1, Convention::Tandon, 0).unwrap();
        let mut t = ThreadTransport::spawn(n, bad);
        let cfg = RunConfig {
            jobs: 3,
            mu: 0.5,
            lr: 0.1,
            delays: delays(3, n, &[]),
            deadline: Duration::from_secs(5),
        };
        let err = run(&mut t, &scheme, &[0.0], &cfg).unwrap_err();
        assert!(matches!(err, DistError::Worker { .. }), "{err}");
        // a panicking worker is reported too
        let boom: Arc<PartitionGradient> = Arc::new(|_j, p, w: &[f64]| {
            if p == 1 {
                panic!("boom")
            } else {
                Ok(vec![0.0; w.len()])
            }
        });
        let mut t = ThreadTransport::spawn(n, boom);
        assert!(matches!(
            run(&mut t, &scheme, &[0.0], &cfg).unwrap_err(),
            DistError::Worker { .. }
        ));
        // the wrong number of workers
        let mut t = ThreadTransport::spawn(3, ls(4));
        assert!(matches!(
            run(&mut t, &scheme, &[0.0], &cfg).unwrap_err(),
            DistError::Transport(_)
        ));
    }
}
