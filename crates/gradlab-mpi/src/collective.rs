//! [`Collective`] over an MPI communicator: every rank gathers every rank's buffer
//! (`MPI_Allgather`) and sums them in rank order, so the sum is bit-identical on every rank and
//! equal to [`gradlab_core::collective::ThreadGroup`]'s (MPI's own `MPI_SUM` reduction may
//! associate differently from one rank or library to the next).
//!
//! ```no_run
//! use gradlab_core::collective::Collective;
//! use gradlab_mpi::collective::MpiCollective;
//! let universe = mpi::initialize().expect("MPI");
//! let mut group = MpiCollective::new(universe.world());
//! let mut buf = vec![group.rank() as f64];
//! group.all_reduce_sum(&mut buf).unwrap(); // 0 + 1 + … + (size − 1) on every rank
//! ```

use gradlab_core::collective::Collective;
use gradlab_core::{CoreError, Result};
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

/// This process's membership of the group of all ranks of a communicator.
pub struct MpiCollective {
    comm: SimpleCommunicator,
}

impl MpiCollective {
    /// The group of all ranks of `comm` (the world, usually).
    pub fn new(comm: SimpleCommunicator) -> Self {
        Self { comm }
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.comm.rank() as usize
    }
    fn size(&self) -> usize {
        self.comm.size() as usize
    }
    fn all_reduce_sum(&mut self, buf: &mut [f64]) -> Result<()> {
        let size = self.size();
        // MPI cannot report buffers of different lengths (it is undefined behaviour), so the
        // lengths are compared first, in a gather of one value each.
        let mut lens = vec![0u64; size];
        self.comm
            .all_gather_into(&(buf.len() as u64), &mut lens[..]);
        if let Some(r) = lens.iter().position(|&l| l != buf.len() as u64) {
            return Err(CoreError::Failed(format!(
                "all-reduce with buffers of different lengths ({} on rank {}, {} on rank {r})",
                buf.len(),
                self.rank(),
                lens[r]
            )));
        }
        let mut all = vec![0.0; buf.len() * size];
        self.comm.all_gather_into(&*buf, &mut all[..]);
        buf.iter_mut().for_each(|b| *b = 0.0);
        for part in all.chunks(buf.len().max(1)).take(size) {
            for (b, v) in buf.iter_mut().zip(part) {
                *b += v;
            }
        }
        Ok(())
    }
}
