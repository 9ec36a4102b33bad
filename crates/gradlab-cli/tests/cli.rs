//! The command line, end to end.

use std::process::Command;

fn gradlab(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .output()
        .expect("run gradlab");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn optimize_prints_a_json_trajectory_and_nothing_else() {
    let (ok, stdout, stderr) = gradlab(&[
        "optimize",
        "--optimizer",
        "diffgrad",
        "--problem",
        "f1",
        "--x0",
        "-1",
        "--lr",
        "0.1",
        "--beta1",
        "0.95",
        "--beta2",
        "0.999",
        "--steps",
        "300",
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("stdout is one JSON document");
    let traj = v["trajectory"].as_array().unwrap();
    assert_eq!(traj.len(), 301);
    assert_eq!(traj[0]["x"][0].as_f64(), Some(-1.0));
    let last = traj[300]["x"][0].as_f64().unwrap();
    assert!((last + 0.3).abs() < 0.01, "diffGrad on F1 ends at {last}");
}

#[test]
fn bad_input_is_a_clear_error_not_a_panic() {
    for (args, needle) in [
        (
            vec![
                "optimize",
                "--optimizer",
                "adam",
                "--problem",
                "f1",
                "--x0",
                "1",
                "--lr",
                "-0.1",
                "--steps",
                "3",
            ],
            "lr",
        ),
        (
            vec![
                "optimize",
                "--optimizer",
                "adam",
                "--problem",
                "f1",
                "--x0",
                "1,2",
                "--lr",
                "0.1",
            ],
            "one-dimensional",
        ),
        (
            vec![
                "optimize",
                "--optimizer",
                "nadam",
                "--problem",
                "f1",
                "--x0",
                "1",
                "--lr",
                "0.1",
            ],
            "unknown optimizer",
        ),
        (
            vec![
                "optimize",
                "--optimizer",
                "adam",
                "--problem",
                "rosenbrock",
                "--x0",
                "1,1",
                "--lr",
                "0.1",
                "--beta1",
                "1.0",
            ],
            "beta1",
        ),
        (
            vec!["train", "--data", "cifar100"],
            "unknown image data set",
        ),
        (
            vec!["train", "--model", "vgg", "--epochs", "1"],
            "unknown model",
        ),
        (vec!["run", "nope"], "no experiment"),
        (vec!["sample", "--method", "xx"], "unknown sampler 'xx'"),
        (vec!["sample", "--data", "foo"], "unknown 2D data set 'foo'"),
        (vec!["sample", "--steps", "0"], "must be at least 1"),
    ] {
        let (ok, _, stderr) = gradlab(&args);
        assert!(
            !ok && stderr.contains(needle) && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
    let dir = std::env::temp_dir().join(format!("gradlab-missing-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["train", "--data", "mnist", "--epochs", "1"])
        .env("GRADLAB_DATA", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("scripts/fetch-datasets.sh"),
        "{stderr}"
    );
    // The same for sampling on the full set.
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(["sample", "--data", "mnist", "--train-steps", "1"])
        .env("GRADLAB_DATA", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && stderr.contains("scripts/fetch-datasets.sh")
            && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn list_names_all_thirty_six_papers() {
    let (ok, stdout, _) = gradlab(&["list", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 36);
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|p| p["experiment"] == "diffgrad" && p["status"] == "done")
    );
}

#[test]
fn train_writes_a_log_and_a_checkpoint_that_resumes() {
    let dir = std::env::temp_dir().join(format!("gradlab-cli-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("log.jsonl");
    let ck = dir.join("ck");
    let (ok, stdout, stderr) = gradlab(&[
        "train",
        "--model",
        "cnn",
        "--optimizer",
        "diffgrad",
        "--epochs",
        "2",
        "--log",
        log.to_str().unwrap(),
        "--checkpoint",
        ck.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["epochs"].as_array().unwrap().len(), 2);
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 2);
    // Resuming after 2 of 3 epochs trains exactly one more.
    let (ok, stdout, stderr) = gradlab(&[
        "train",
        "--model",
        "cnn",
        "--optimizer",
        "diffgrad",
        "--epochs",
        "3",
        "--resume",
        ck.to_str().unwrap(),
        "--json",
    ]);
    // The schedule depends on the number of epochs only through cosine/linear; constant is identical.
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(v["epochs"][0]["epoch"], 3);
    // The Hessian of the trained model differs from that of the initial weights.
    let hessian = |extra: &[&str]| {
        let mut args = vec![
            "hessian",
            "--model",
            "cnn",
            "--top-k",
            "2",
            "--lanczos-steps",
            "8",
            "--examples",
            "100",
            "--trace-samples",
            "4",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = gradlab(&args);
        assert!(ok, "{stderr}");
        let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        let top: Vec<f64> = v["top_eigenvalues"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(top.len(), 2);
        top
    };
    assert_ne!(
        hessian(&["--checkpoint", ck.to_str().unwrap()]),
        hessian(&[])
    );
    let (ok, _, stderr) = gradlab(&["hessian", "--top-k", "0"]);
    assert!(!ok && stderr.contains("--top-k 0"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn reproduce_quick_writes_the_report() {
    let dir = std::env::temp_dir().join(format!("gradlab-reproduce-{}", std::process::id()));
    let (ok, stdout, stderr) = gradlab(&["reproduce", "--quick", "--out", dir.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("verdict:") && stdout.contains("index.html"));
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains("diffgrad")
            && html.contains("data:image/png;base64,")
            && html.contains("All seed papers")
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sample_trains_samples_and_plots() {
    let dir = std::env::temp_dir().join(format!("gradlab-sample-{}", std::process::id()));
    let png = dir.join("s.png");
    let (ok, stdout, stderr) = gradlab(&[
        "sample",
        "--method",
        "dpm",
        "--steps",
        "10",
        "--train-steps",
        "300",
        "--samples",
        "500",
        "--json",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(r["nfe"], 10);
    assert!(r["swd"].as_f64().unwrap().is_finite());
    assert!(png.exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sample_on_digits_trains_a_unet_and_writes_an_image_grid() {
    let dir = std::env::temp_dir().join(format!("gradlab-sample-img-{}", std::process::id()));
    // A score model sampled by DDIM, and a rectified flow sampled by Euler steps.
    for method in ["ddim", "rf"] {
        let png = dir.join(format!("digits-{method}.png"));
        let (ok, stdout, stderr) = gradlab(&[
            "sample",
            "--data",
            "digits",
            "--method",
            method,
            "--steps",
            "5",
            "--train-steps",
            "20",
            "--samples",
            "32",
            "--json",
            "--out",
            png.to_str().unwrap(),
        ]);
        assert!(ok, "{method}: {stderr}");
        let r: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(r["nfe"], 5, "{method}");
        assert!(r["swd"].as_f64().unwrap().is_finite(), "{method}");
        assert!(png.exists(), "{method}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
