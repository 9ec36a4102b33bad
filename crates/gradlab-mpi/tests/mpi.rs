//! The MPI checks under `mpirun`, run only with the `mpi` feature (CI runs them after the main
//! suite: `cargo test --workspace --release --features gradlab-mpi/mpi,gradlab-cli/mpi --test mpi
//! -- --test-threads 1`). Each launch has a time limit: a hang is a failure, never a stuck suite.
#![cfg(feature = "mpi")]

use gradlab_distributed::timing::{SchemeSpec, TimedScheme, TimingResult, TimingSpec};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `mpirun -n ranks gradlab-mpi-check args…`, killed after `limit`.
fn mpirun(ranks: usize, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new("mpirun")
        .args([
            "--allow-run-as-root",
            "--oversubscribe",
            "-n",
            &ranks.to_string(),
        ])
        .arg(env!("CARGO_BIN_EXE_gradlab-mpi-check"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpirun (apt-get install -y openmpi-bin)");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            child.kill().ok();
            panic!("mpirun -n {ranks} {args:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn gradient_coding_and_data_parallel_training_pass_on_five_ranks() {
    let out = mpirun(5, &[], Duration::from_secs(240));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // Three gradient-coding checks and three data-parallel ones, none failed.
    assert_eq!(log.matches("PASS").count(), 6, "{log}");
    assert!(!log.contains("FAIL"), "{log}");
    assert!(
        log.contains("equals a group of 5 threads bit for bit"),
        "{log}"
    );
}

#[test]
fn a_failing_worker_is_reported_and_the_run_stops() {
    let out = mpirun(4, &["--fail"], Duration::from_secs(120));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("PASS a failing worker stops the run"), "{log}");
}

#[test]
fn a_timing_spec_runs_on_mpi_processes_and_a_wrong_world_is_refused() {
    let n = 4;
    let scheme = |s| TimedScheme {
        scheme: s,
        delays_ms: vec![vec![1.0; n]; 12],
    };
    let spec = TimingSpec {
        jobs: 6,
        mu: 0.3,
        lr: 0.5,
        rows: 48,
        dim: 4,
        deadline_s: 20.0,
        schemes: vec![
            scheme(SchemeSpec::Gc { n, s: 1 }),
            scheme(SchemeSpec::MSgc {
                n,
                b: 1,
                w: 3,
                lambda: 1,
            }),
        ],
    };
    let file = std::env::temp_dir().join(format!("gradlab-mpi-spec-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string(&spec).unwrap()).unwrap();
    let path = file.to_str().unwrap();
    let out = mpirun(n + 1, &["--timing", path], Duration::from_secs(120));
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    let results: Vec<TimingResult> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{log}");
    assert!(results[0].name.starts_with("GC") && results[1].name.starts_with("M-SGC"));
    // Every round sleeps at least 1 ms in each worker: the wall time is at least the rounds'.
    for r in &results {
        assert!(r.rounds >= 6 && r.wall_s >= 1e-3 * r.rounds as f64, "{r:?}");
    }
    // The same spec in a world with one worker too few is an error, not a hang.
    let out = mpirun(n, &["--timing", path], Duration::from_secs(120));
    assert!(!out.status.success());
    assert!(text(&out).contains("needs 4 workers"), "{}", text(&out));
    std::fs::remove_file(&file).ok();
}
