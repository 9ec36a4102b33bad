//! # gradlab-mpi
//!
//! gradlab across MPI processes, so that a program that outgrows one machine keeps its code:
//! launch the same binary with `mpirun -n k`.
//!
//! - `transport`: the gradient-coding runtime's [`gradlab_distributed::runtime::Transport`] over
//!   MPI (rank 0 the master, ranks 1 … n the workers);
//! - `collective`: the all-reduce of data-parallel training
//!   ([`gradlab_core::collective::Collective`]) over an MPI communicator, for
//!   [`gradlab_train::Trainer::data_parallel`] and `gradlab train --distributed`;
//! - `timing`: wall-time runs of gradient-coding schemes with injected delays
//!   ([`gradlab_distributed::timing::TimingSpec`]), for the `gradient-coding` experiment.
//!
//! These modules need the cargo feature `mpi` (rsmpi, which needs an MPI library and libclang:
//! `apt-get install -y libopenmpi-dev openmpi-bin libclang-dev`). Without it the crate is empty,
//! so `cargo test --workspace` needs no MPI. `gradlab-mpi-check` runs the checks under `mpirun`:
//!
//! ```text
//! cargo build --release -p gradlab-mpi --features mpi --bin gradlab-mpi-check
//! mpirun --allow-run-as-root --oversubscribe -n 5 target/release/gradlab-mpi-check
//! ```

#[cfg(feature = "mpi")]
pub mod collective;
#[cfg(feature = "mpi")]
pub mod timing;
#[cfg(feature = "mpi")]
pub mod transport;
