//! [`TimingSpec`]s run on MPI processes: rank 0 the master, ranks 1 … n the workers (the world
//! must have n + 1 ranks); `gradlab-mpi-check --timing FILE` calls [`run_timing`] and prints rank
//! 0's results as JSON lines, which the `gradient-coding` experiment reads.

use crate::transport::{MpiTransport, serve};
use gradlab_distributed::runtime::{RunConfig, Transport, run, synthetic_least_squares};
use gradlab_distributed::timing::{TimingResult, TimingSpec};
use gradlab_distributed::{DistError, Result};
use mpi::topology::SimpleCommunicator;
use mpi::traits::Communicator;
use std::time::Duration;

/// Run every scheme of `spec` over `world` (rank 0 the master, ranks 1 … n the workers; the
/// world must have n + 1 ranks). Rank 0 returns the measurements; the workers an empty list.
pub fn run_timing(world: &SimpleCommunicator, spec: &TimingSpec) -> Result<Vec<TimingResult>> {
    let schemes = spec.schemes()?;
    let mut results = vec![];
    for (t, scheme) in spec.schemes.iter().zip(&schemes) {
        let grad = synthetic_least_squares(scheme.partitions(), spec.rows, spec.dim);
        // A fresh communicator per scheme (every rank takes part): no message of one run can be
        // mistaken for one of the next.
        let comm = world.duplicate();
        if world.rank() != 0 {
            serve(&comm, &*grad)?;
            continue;
        }
        let mut transport = MpiTransport::master(comm)?;
        if transport_workers(&transport) != scheme.n() {
            return Err(DistError::Transport(format!(
                "{} needs {} workers; this world has {} (run under mpirun -n {})",
                scheme.name(),
                scheme.n(),
                transport_workers(&transport),
                scheme.n() + 1
            )));
        }
        let cfg = RunConfig {
            jobs: spec.jobs,
            mu: spec.mu,
            lr: spec.lr,
            delays: t
                .delays_ms
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|ms| Duration::from_secs_f64(ms / 1e3))
                        .collect()
                })
                .collect(),
            deadline: Duration::from_secs_f64(spec.deadline_s),
        };
        let rep = run(&mut transport, scheme.as_ref(), &vec![0.0; spec.dim], &cfg)?;
        results.push(TimingResult {
            name: scheme.name(),
            wall_s: rep.round_times.iter().map(Duration::as_secs_f64).sum(),
            rounds: rep.round_times.len(),
            waited_for_all: rep.waited_for_all,
        });
    }
    Ok(results)
}

fn transport_workers(t: &MpiTransport) -> usize {
    t.workers()
}
