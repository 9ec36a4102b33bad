//! `gradlab train --distributed` under `mpirun`, run only with the `mpi` feature (CI runs it after
//! the main suite: `cargo test --workspace --release --features gradlab-mpi/mpi,gradlab-cli/mpi
//! --test mpi -- --test-threads 1`). Each launch has a time limit: a hang is a failure.
#![cfg(feature = "mpi")]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `command`, killed after `limit`.
fn run_limited(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > limit {
            child.kill().ok();
            panic!("{command:?} ran past {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn gradlab_on(ranks: Option<usize>, args: &[&str]) -> Output {
    let bin = env!("CARGO_BIN_EXE_gradlab");
    let command = match ranks {
        Some(n) => {
            let mut c = Command::new("mpirun");
            c.args([
                "--allow-run-as-root",
                "--oversubscribe",
                "-n",
                &n.to_string(),
                bin,
            ]);
            c.args(args);
            c
        }
        None => {
            let mut c = Command::new(bin);
            c.args(args);
            c
        }
    };
    run_limited(command, Duration::from_secs(300))
}

fn epochs(out: &Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    // One JSON report: process 0's; the other processes print nothing.
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(lines.len(), 1, "{text}");
    let report: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    report["epochs"].as_array().unwrap().clone()
}

#[test]
fn train_distributed_on_four_processes_equals_one_process() {
    let dir = std::env::temp_dir().join(format!("gradlab-mpi-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.jsonl");
    let args = [
        "train",
        "--data",
        "digits",
        "--optimizer",
        "adam",
        "--epochs",
        "2",
        "--batch-size",
        "30",
        "--json",
    ];
    let one = epochs(&gradlab_on(None, &args));
    let mut dist_args = args.to_vec();
    let log_s = log.to_str().unwrap();
    dist_args.extend(["--distributed", "--log", log_s]);
    let four = epochs(&gradlab_on(Some(4), &dist_args));
    assert_eq!(one.len(), 2);
    for (a, b) in one.iter().zip(&four) {
        for key in ["train_loss", "test_loss", "test_acc"] {
            let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
            assert!((x - y).abs() < 1e-4, "{key}: one process {x}, four {y}");
        }
        assert_eq!(a["step"], b["step"]);
    }
    // Process 0 alone writes the log: one line per epoch.
    let lines = std::fs::read_to_string(&log).unwrap();
    assert_eq!(lines.lines().count(), 2, "{lines}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failure_on_one_process_stops_the_job_with_its_error() {
    // A batch smaller than the world, then a checkpoint directory that is a file: both refused
    // with the reason, and mpirun returns (never hangs).
    let out = gradlab_on(
        Some(4),
        &[
            "train",
            "--epochs",
            "1",
            "--batch-size",
            "2",
            "--distributed",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("smaller than the 4 processes"));
    let file = std::env::temp_dir().join(format!("gradlab-mpi-notadir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let out = gradlab_on(
        Some(3),
        &[
            "train",
            "--epochs",
            "1",
            "--distributed",
            "--checkpoint",
            file.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(file.to_str().unwrap()),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).ok();
}
