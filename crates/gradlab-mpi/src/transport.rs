//! The MPI transport of the gradient-coding runtime (rsmpi): rank 0 is the master, ranks 1 … n its n
//! workers, so the same binary runs on one machine or many under `mpirun -n (n + 1)`. Messages are
//! the flat buffers of [`gradlab_distributed::wire`]. MPI has no receive with a timeout, so the master polls with
//! a non-blocking probe until its deadline. A worker that fails sends `Failed` and stops serving.
//!
//! ```no_run
//! use gradlab_mpi::transport::{MpiTransport, serve};
//! let universe = mpi::initialize().expect("MPI");
//! let world = universe.world();
//! # let grad: std::sync::Arc<gradlab_distributed::runtime::PartitionGradient> = std::sync::Arc::new(|_, _, w: &[f64]| Ok(vec![0.0; w.len()]));
//! if mpi::traits::Communicator::rank(&world) == 0 {
//!     let mut t = MpiTransport::master(world).unwrap();
//!     // gradlab_distributed::runtime::run(&mut t, &scheme, &w0, &cfg) …
//! } else {
//!     serve(&world, &*grad).unwrap();
//! }
//! ```

use gradlab_distributed::runtime::{FromWorker, PartitionGradient, ToWorker, Transport};
use gradlab_distributed::wire::{
    decode_from_worker, decode_to_worker, encode_from_worker, encode_to_worker,
};
use gradlab_distributed::{DistError, Result};
use mpi::point_to_point::MatchedReceiveVec;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;
use std::time::{Duration, Instant};

/// The master's side.
pub struct MpiTransport {
    world: SimpleCommunicator,
    stopped: bool,
}

impl MpiTransport {
    /// The master on rank 0 of `world`; an error on another rank or in a world without workers.
    pub fn master(world: SimpleCommunicator) -> Result<Self> {
        if world.rank() != 0 {
            return Err(DistError::Transport(format!(
                "the master runs on rank 0, not {}",
                world.rank()
            )));
        }
        if world.size() < 2 {
            return Err(DistError::Transport(
                "an MPI world of one process has no workers (run under mpirun -n k, k ≥ 2)".into(),
            ));
        }
        Ok(Self {
            world,
            stopped: false,
        })
    }
}

impl Transport for MpiTransport {
    fn workers(&self) -> usize {
        self.world.size() as usize - 1
    }
    fn send(&mut self, worker: usize, msg: ToWorker) -> Result<()> {
        if worker >= self.workers() {
            return Err(DistError::Worker {
                worker,
                why: format!("no such worker (the world has {})", self.workers()),
            });
        }
        self.world
            .process_at_rank(worker as i32 + 1)
            .send(&encode_to_worker(&msg)[..]);
        Ok(())
    }
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<FromWorker>> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(probed) = self.world.any_process().immediate_matched_probe() {
                let (buf, status) = probed.matched_receive_vec::<f64>();
                let msg = decode_from_worker(&buf)?;
                let claimed = match &msg {
                    FromWorker::Done { worker, .. } | FromWorker::Failed { worker, .. } => *worker,
                };
                if claimed as i32 + 1 != status.source_rank() {
                    return Err(DistError::Transport(format!(
                        "rank {} answered as worker {claimed}",
                        status.source_rank()
                    )));
                }
                return Ok(Some(msg));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    fn shutdown(&mut self) -> Result<()> {
        if !self.stopped {
            self.stopped = true;
            for w in 0..self.workers() {
                self.world
                    .process_at_rank(w as i32 + 1)
                    .send(&encode_to_worker(&ToWorker::Stop)[..]);
            }
        }
        Ok(())
    }
}

/// A worker's side (ranks ≥ 1): serve the master on rank 0 until it says stop; the newest work
/// replaces stale queued rounds; a failure is reported to the master and returned.
pub fn serve(world: &SimpleCommunicator, grad: &PartitionGradient) -> Result<()> {
    let id = world.rank() as usize - 1;
    let master = world.process_at_rank(0);
    loop {
        let (buf, _) = master.receive_vec::<f64>();
        let mut msg = decode_to_worker(&buf)?;
        while let Some(probed) = master.immediate_matched_probe() {
            let (buf, _) = probed.matched_receive_vec::<f64>();
            let newer = decode_to_worker(&buf)?;
            if matches!(newer, ToWorker::Stop) {
                return Ok(());
            }
            msg = newer;
        }
        let Some(reply) = gradlab_distributed::runtime::answer(id, msg, grad) else {
            return Ok(());
        };
        let failed = match &reply {
            FromWorker::Failed { why, .. } => Some(why.clone()),
            FromWorker::Done { .. } => None,
        };
        master.send(&encode_from_worker(&reply)[..]);
        if let Some(why) = failed {
            return Err(DistError::Worker { worker: id, why });
        }
    }
}
