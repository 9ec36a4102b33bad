//! The MPI checks, run under `mpirun -n (n + 1)`: rank 0 runs M-SGC least-squares gradient descent
//! over the n worker ranks with injected stragglers and checks every decoded gradient, and the
//! final model, against the same run on the thread transport and against the full gradient; then
//! that a scheme of the wrong size is refused. With `--fail`, worker 1 fails on its first task and
//! the master must report it and stop (never hang). Exit status 0 only if every check holds.

use gradlab_distributed::DistError;
use gradlab_distributed::mpi_transport::{MpiTransport, serve};
use gradlab_distributed::multiplexed::MSgc;
use gradlab_distributed::runtime::{PartitionGradient, RunConfig, ThreadTransport, run};
use gradlab_distributed::simulate::Scheme;
use gradlab_distributed::straggler::BurstyModel;
use mpi::traits::*;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Least squares on fixed data (8 rows per partition): the gradient of partition p at w.
fn least_squares(fail_worker_one: bool) -> Arc<PartitionGradient> {
    Arc::new(move |_job, p, w: &[f64]| {
        if fail_worker_one && p == 2 {
            return Err(DistError::Invalid {
                what: "data",
                why: "partition 2 is unreadable (injected)".into(),
            });
        }
        let mut g = vec![0.0; w.len()];
        for k in 0..8 {
            let row = p * 8 + k;
            let x: Vec<f64> = (0..w.len())
                .map(|d| (((row * 7 + d * 3) % 11) as f64 - 5.0) / 5.0)
                .collect();
            let y = ((row % 5) as f64 - 2.0) / 2.0;
            let r: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() - y;
            g.iter_mut().zip(&x).for_each(|(g, x)| *g += r * x);
        }
        Ok(g)
    })
}

fn main() -> ExitCode {
    let fail = std::env::args().any(|a| a == "--fail");
    let Some(universe) = mpi::initialize() else {
        eprintln!("MPI could not be initialised");
        return ExitCode::FAILURE;
    };
    let world = universe.world();
    let grad = least_squares(fail);
    if world.rank() != 0 {
        return match serve(&world, &*grad) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if fail => {
                eprintln!("worker {}: stopped as injected: {e}", world.rank() - 1);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("worker {}: {e}", world.rank() - 1);
                ExitCode::FAILURE
            }
        };
    }
    let n = world.size() as usize - 1;
    let mut mpi_t = match MpiTransport::master(world) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let scheme = match MSgc::new(
        n,
        BurstyModel {
            b: 1,
            w: 3,
            lambda: 1,
        },
        3,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e} (run with at least 3 processes)");
            return ExitCode::FAILURE;
        }
    };
    let jobs = 6;
    let delays: Vec<Vec<Duration>> = (0..jobs + scheme.lag())
        .map(|r| {
            (0..n)
                .map(|i| Duration::from_millis(if (r, i) == (1, n - 1) { 80 } else { 3 }))
                .collect()
        })
        .collect();
    let cfg = RunConfig {
        jobs,
        mu: 1.0,
        lr: 0.01,
        delays,
        deadline: Duration::from_secs(20),
    };
    let w0 = [0.1, -0.2, 0.3];
    let mut ok = true;
    let got = run(&mut mpi_t, &scheme, &w0, &cfg);
    if fail {
        return match got {
            Err(DistError::Worker { worker, why }) => {
                println!("PASS a failing worker stops the run: worker {worker}: {why}");
                ExitCode::SUCCESS
            }
            other => {
                println!("FAIL a failing worker was not reported: {other:?}");
                ExitCode::FAILURE
            }
        };
    }
    let mpi_rep = match got {
        Ok(r) => r,
        Err(e) => {
            println!("FAIL the MPI run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut threads = ThreadTransport::spawn(n, least_squares(false));
    let thr_rep = match run(&mut threads, &scheme, &w0, &cfg) {
        Ok(r) => r,
        Err(e) => {
            println!("FAIL the thread run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let diff = mpi_rep
        .model
        .iter()
        .zip(&thr_rep.model)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let same = diff < 1e-12 && mpi_rep.gradients.len() == jobs;
    ok &= same;
    println!(
        "{} MPI and threads give the same {} decoded gradients and model (max difference {diff:e}); {} rounds waited for all",
        if same { "PASS" } else { "FAIL" },
        mpi_rep.gradients.len(),
        mpi_rep.waited_for_all
    );
    // The first job's gradient is the full gradient at w0.
    let full: Vec<f64> = (0..3)
        .map(|d| {
            (0..scheme.partitions())
                .map(|p| grad(0, p, &w0).map(|g| g[d]).unwrap_or(f64::NAN))
                .sum()
        })
        .collect();
    let exact = mpi_rep
        .gradients
        .first()
        .is_some_and(|g| g.iter().zip(&full).all(|(a, b)| (a - b).abs() < 1e-9));
    ok &= exact;
    println!(
        "{} the decoded gradient of job 0 is the full gradient",
        if exact { "PASS" } else { "FAIL" }
    );
    let wrong = MSgc::new(
        n + 1,
        BurstyModel {
            b: 1,
            w: 3,
            lambda: 1,
        },
        3,
    )
    .expect("a valid scheme");
    let refused = matches!(
        run(&mut mpi_t, &wrong, &w0, &cfg),
        Err(DistError::Transport(_))
    );
    ok &= refused;
    println!(
        "{} a scheme of {} workers is refused in a world of {n}",
        if refused { "PASS" } else { "FAIL" },
        n + 1
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
