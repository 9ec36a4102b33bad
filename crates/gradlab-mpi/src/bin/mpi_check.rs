//! The MPI checks, run under `mpirun -n (n + 1)`:
//!
//! 1. gradient coding: rank 0 runs M-SGC least-squares gradient descent over the n worker ranks
//!    with injected stragglers and checks every decoded gradient, and the final model, against
//!    the same run on the thread transport and against the full gradient; then that a scheme of
//!    the wrong size is refused;
//! 2. data-parallel training: all n + 1 ranks train one MLP on digits with Adam (global batch 30,
//!    one epoch); every rank must end with the same model, equal bit for bit to a thread group of
//!    the same size and, up to float rounding, to single-process training with the same batch.
//!
//! With `--fail`, worker 1 fails on its first task and the master must report it and stop (never
//! hang). Exit status 0 only if every check holds.
//!
//! With `--timing FILE`, it runs the gradient-coding schemes of a [`gradlab_distributed::timing::TimingSpec`]
//! (the `gradient-coding` experiment writes one) and prints one JSON line per scheme instead.

use gradlab_core::collective::{Collective, ThreadGroup};
use gradlab_distributed::DistError;
use gradlab_distributed::multiplexed::MSgc;
use gradlab_distributed::runtime::{PartitionGradient, RunConfig, ThreadTransport, run};
use gradlab_distributed::simulate::Scheme;
use gradlab_distributed::straggler::BurstyModel;
use gradlab_mpi::collective::MpiCollective;
use gradlab_mpi::transport::{MpiTransport, serve};
use gradlab_nets::mlp::MlpConfig;
use gradlab_optim::spec::OptimizerSpec;
use gradlab_train::{TrainConfig, Trainer, autodiff_device};
use mpi::topology::SimpleCommunicator;
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
    // A panic on one rank stops the job (unwinding into MPI_Finalize would leave the others
    // waiting for it).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        SimpleCommunicator::world().abort(101);
    }));
    let args: Vec<String> = std::env::args().collect();
    let code = if let Some(k) = args.iter().position(|a| a == "--timing") {
        timing(&universe.world(), args.get(k + 1))
    } else {
        let coding = gradient_coding(universe.world(), fail);
        match fail || coding != ExitCode::SUCCESS {
            true => coding,
            false if data_parallel(universe.world()) => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        }
    };
    // A failed rank aborts the job: returning (and finalising MPI) would leave the other ranks
    // waiting for it.
    if code != ExitCode::SUCCESS {
        universe.world().abort(1);
    }
    code
}

/// `--timing FILE`: run the spec's schemes; rank 0 prints the measurements as JSON lines.
fn timing(world: &SimpleCommunicator, file: Option<&String>) -> ExitCode {
    let Some(file) = file else {
        eprintln!("--timing needs a spec file");
        return ExitCode::FAILURE;
    };
    let spec: gradlab_distributed::timing::TimingSpec = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match gradlab_mpi::timing::run_timing(world, &spec) {
        Ok(results) => {
            for r in results {
                match serde_json::to_string(&r) {
                    Ok(line) => println!("{line}"),
                    Err(e) => {
                        eprintln!("{e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rank {}: {e}", world.rank());
            ExitCode::FAILURE
        }
    }
}

/// One member's training: MLP 64-32-10 (seed 3), Adam, global batch 30, one epoch of digits.
fn train_digits(group: Option<Box<dyn Collective>>) -> Result<Vec<f64>, String> {
    let (train, test) = gradlab_data::images::digits_split(0.2, 0).map_err(|e| e.to_string())?;
    let model = MlpConfig::new(vec![64, 32, 10]).init(&autodiff_device(), 3);
    let mut cfg = TrainConfig::new(OptimizerSpec::parse("adam").map_err(|e| e.to_string())?);
    cfg.batch_size = 30;
    let mut t = Trainer::new(model, cfg).map_err(|e| e.to_string())?;
    if let Some(g) = group {
        t = t.data_parallel(g).map_err(|e| e.to_string())?;
    }
    t.fit(&train, &test, 1).map_err(|e| e.to_string())?;
    gradlab_core::flat::flatten_host(&t.model).map_err(|e| e.to_string())
}

/// Data-parallel training over every rank; rank 0 compares with threads and one process.
fn data_parallel(world: SimpleCommunicator) -> bool {
    let (rank, size) = (world.rank(), world.size() as usize);
    let mut check = MpiCollective::new(world.duplicate());
    let mpi = match train_digits(Some(Box::new(MpiCollective::new(world)))) {
        Ok(p) => p,
        Err(e) => {
            println!("FAIL rank {rank}: data-parallel training stopped: {e}");
            return false;
        }
    };
    let alike = check.all_agree(&mpi).unwrap_or(false);
    if rank != 0 {
        return alike;
    }
    println!(
        "{} all {size} ranks end data-parallel training with the same model",
        if alike { "PASS" } else { "FAIL" }
    );
    let threads: Vec<Result<Vec<f64>, String>> = match ThreadGroup::new(size) {
        Ok(members) => std::thread::scope(|s| {
            let handles: Vec<_> = members
                .into_iter()
                .map(|m| s.spawn(move || train_digits(Some(Box::new(m)))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a thread panicked".into())))
                .collect()
        }),
        Err(e) => vec![Err(e.to_string())],
    };
    let same_as_threads = matches!(threads.first(), Some(Ok(t)) if *t == mpi);
    println!(
        "{} MPI equals a group of {size} threads bit for bit",
        if same_as_threads { "PASS" } else { "FAIL" }
    );
    let single = match train_digits(None) {
        Ok(p) => p,
        Err(e) => {
            println!("FAIL single-process training: {e}");
            return false;
        }
    };
    let worst = mpi
        .iter()
        .zip(&single)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let close = mpi.len() == single.len() && worst < 1e-4;
    println!(
        "{} data-parallel over {size} ranks equals one process with the same global batch (max parameter difference {worst:.2e} after 48 Adam steps)",
        if close { "PASS" } else { "FAIL" }
    );
    alike && same_as_threads && close
}

/// The gradient-coding checks (rank 0 the master, the other ranks its workers).
fn gradient_coding(world: SimpleCommunicator, fail: bool) -> ExitCode {
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
