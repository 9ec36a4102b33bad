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
            "invalid value 'vgg' for '--model",
        ),
        (vec!["run", "nope"], "no experiment"),
        (
            vec!["sample", "--method", "xx"],
            "invalid value 'xx' for '--method",
        ),
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
    // The checkpoint's loss is on its own data and split: another set is refused.
    let (ok, _, stderr) = gradlab(&[
        "hessian",
        "--model",
        "cnn",
        "--data",
        "mnist1k",
        "--checkpoint",
        ck.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("trained on digits"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
/// The report loop and index, on two fast experiments: every experiment's quick run is already
/// asserted by its own test, so running all of them again here would only double CI's time.
fn reproduce_quick_writes_the_report() {
    let dir = std::env::temp_dir().join(format!("gradlab-reproduce-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    let (ok, stdout, stderr) = gradlab(&[
        "reproduce",
        "--quick",
        "--only",
        "painters,diffgrad",
        "--out",
        out,
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("verdict:") && stdout.contains("index.html"));
    // Registry order (diffgrad first), each once, and nothing else run.
    let (d, p) = (
        stderr.find("diffgrad:").unwrap(),
        stderr.find("painters:").unwrap(),
    );
    assert!(d < p, "{stderr}");
    assert!(dir.join("diffgrad/result.json").exists() && dir.join("painters/result.json").exists());
    assert!(!dir.join("tract").exists());
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(
        html.contains("diffgrad")
            && html.contains("data:image/png;base64,")
            && html.contains("All seed papers")
    );
    // RESULTS.md has both quick blocks with their checks; `gradlab results` merges the runs'
    // result.json into another file, and refuses one it did not write.
    let results = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(results.contains("quick-diffgrad") && results.contains("quick-painters"));
    assert!(results.contains("### tract: not run in quick mode yet"));
    let merged = dir.join("merged.md");
    let m = merged.to_str().unwrap();
    let (ok, _, stderr) = gradlab(&["results", out, "--into", m]);
    assert!(ok, "{stderr}");
    let text = std::fs::read_to_string(&merged).unwrap();
    assert!(
        text.contains("quick-diffgrad") && text.contains("| ✓ |"),
        "{text}"
    );
    std::fs::write(&merged, "my notes").unwrap();
    let (ok, _, stderr) = gradlab(&["results", out, "--into", m]);
    assert!(!ok && stderr.contains("not a results file"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), "my notes");
    std::fs::remove_dir_all(&dir).ok();
    // An unknown id is refused before anything runs or is written.
    let (ok, _, stderr) = gradlab(&[
        "reproduce",
        "--quick",
        "--only",
        "diffgrad,nope",
        "--out",
        out,
    ]);
    assert!(
        !ok && stderr.contains("\"nope\"") && stderr.contains("diffgrad"),
        "{stderr}"
    );
    assert!(!dir.exists());
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

/// An IDX image file of `n` images of `rows`×`cols` and its label file, in MNIST's layout.
fn write_idx(dir: &std::path::Path, prefix: &str, n: u32, rows: u32, cols: u32) {
    std::fs::create_dir_all(dir).unwrap();
    let mut img = vec![];
    for v in [2051u32, n, rows, cols] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    img.extend((0..n * rows * cols).map(|i| (i % 251) as u8));
    std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), img).unwrap();
    let mut lab = vec![];
    for v in [2049u32, n] {
        lab.extend_from_slice(&v.to_be_bytes());
    }
    lab.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), lab).unwrap();
}

fn gradlab_with_data(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
        .args(args)
        .env("GRADLAB_DATA", data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn user_data_files_of_the_wrong_shape_are_clear_errors() {
    let root = std::env::temp_dir().join(format!("gradlab-idx-{}", std::process::id()));
    let mnist = root.join("mnist");
    let train = ["train", "--data", "mnist", "--epochs", "1"];
    // Test images of another size than the training images.
    write_idx(&mnist, "train", 20, 28, 28);
    write_idx(&mnist, "t10k", 10, 20, 20);
    let (ok, err) = gradlab_with_data(&root, &train);
    assert!(
        !ok && err.contains("28×28") && err.contains("20×20") && err.contains("t10k-images"),
        "{err}"
    );
    // Images with zero rows.
    write_idx(&mnist, "t10k", 10, 0, 28);
    let (ok, err) = gradlab_with_data(&root, &train);
    assert!(
        !ok && err.contains("0×28") && err.contains("no pixels"),
        "{err}"
    );
    // Images smaller than the CNN's receptive field.
    write_idx(&mnist, "train", 20, 2, 2);
    write_idx(&mnist, "t10k", 10, 2, 2);
    let (ok, err) = gradlab_with_data(
        &root,
        &[
            "train", "--model", "cnn", "--data", "mnist", "--epochs", "1",
        ],
    );
    assert!(
        !ok && err.contains("2×2") && err.contains("too small"),
        "{err}"
    );
    // A directory where a file should be: the reason is said once.
    std::fs::remove_file(mnist.join("train-images-idx3-ubyte")).unwrap();
    std::fs::create_dir_all(mnist.join("train-images-idx3-ubyte")).unwrap();
    let (ok, err) = gradlab_with_data(&root, &train);
    assert!(!ok && err.matches("directory").count() == 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn hostile_arguments_fail_before_the_work_with_one_clear_line() {
    let tmp = std::env::temp_dir().join(format!("gradlab-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let file = tmp.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let f = file.to_str().unwrap();
    let svg = tmp.join("plot.svg");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        // Each would train or multiply for hours if the check came after the work.
        (
            vec!["train", "--epochs", "100000", "--checkpoint", f],
            "not a directory",
        ),
        (
            vec![
                "train",
                "--epochs",
                "100000",
                "--log",
                tmp.to_str().unwrap(),
            ],
            "is a directory",
        ),
        (
            vec![
                "hessian",
                "--density",
                "--lanczos-steps",
                "100000",
                "--out",
                svg.to_str().unwrap(),
            ],
            "unsupported file type",
        ),
        (
            vec![
                "sample",
                "--train-steps",
                "1000000",
                "--out",
                svg.to_str().unwrap(),
            ],
            "unsupported file type",
        ),
        (vec!["run", "diffgrad", "--out", f], "not a directory"),
        (vec!["reproduce", "--out", f], "not a directory"),
        (vec!["hessian", "--trace-samples", "0"], "at least 2"),
        (vec!["hessian", "--trace-samples", "1"], "at least 2"),
        (
            vec!["train", "--epochs", "18446744073709551615"],
            "more steps than",
        ),
        (
            vec![
                "optimize",
                "--optimizer",
                "sgd",
                "--problem",
                "f1",
                "--x0",
                "-1",
                "--lr",
                "0.1",
                "--beta1",
                "5",
            ],
            "sgd has no hyperparameter beta1",
        ),
        (
            vec![
                "optimize",
                "--optimizer",
                "adam",
                "--problem",
                "f1",
                "--x0",
                "-1",
                "--lr",
                "0.1",
                "--momentum",
                "0.9",
            ],
            "adam has no hyperparameter momentum",
        ),
        (vec!["hessian", "--top-k", "0"], "--top-k 0"),
        (
            vec!["hessian", "--lanczos-steps", "1", "--top-k", "3"],
            "--lanczos-steps 1",
        ),
        (
            vec!["sample", "--steps", "18446744073709551615"],
            "above the limit",
        ),
        (
            vec!["sample", "--samples", "10000000000"],
            "above the limit",
        ),
        (vec!["sample", "--steps", "0"], "--steps must be at least 1"),
        (vec!["sample", "--data", "nowhere"], "unknown 2D data set"),
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
                "0.1",
                "--steps",
                "1000001",
            ],
            "above the limit",
        ),
        (
            vec!["train", "--epochs", "0"],
            "--epochs must be at least 1",
        ),
        (vec!["train", "--tract", "1e308"], "lambda"),
        (
            vec![
                "optimize",
                "--optimizer",
                "adam",
                "--problem",
                "f1",
                "--x0",
                "-1",
                "--lr",
                "-0.1",
            ],
            "lr = -0.1",
        ),
        (
            vec![
                "optimize",
                "--optimizer",
                "adam",
                "--problem",
                "quadratic",
                "--x0",
                "1e160",
                "--lr",
                "0.1",
            ],
            "not finite at x0",
        ),
        (
            vec![
                "train",
                "--epochs",
                "1",
                "--checkpoint",
                tmp.to_str().unwrap(),
            ],
            "no checkpoint in it",
        ),
    ];
    for (args, needle) in cases {
        let (ok, _, stderr) = gradlab(&args);
        assert!(
            !ok && stderr.contains(needle) && stderr.trim().lines().count() == 1,
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("curvature computation failed"),
            "{stderr}"
        );
    }
    let (ok, stdout, _) = gradlab(&["train", "--help"]);
    assert!(ok && stdout.contains("warmup-linear"));
    // stdout that cannot be written is an error, not a panic.
    let full = std::fs::File::create("/dev/full");
    if let Ok(full) = full {
        let out = Command::new(env!("CARGO_BIN_EXE_gradlab"))
            .args(["list"])
            .stdout(full)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() == Some(1) && !stderr.contains("panicked"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&tmp).ok();
}

#[test]
fn optimize_streams_and_a_diverging_json_run_still_ends_its_document() {
    let (ok, stdout, stderr) = gradlab(&[
        "optimize",
        "--optimizer",
        "sgd",
        "--problem",
        "quadratic",
        "--x0",
        "1,1",
        "--lr",
        "10",
        "--steps",
        "100000",
        "--json",
    ]);
    assert!(!ok && stderr.contains("non-finite"), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert!(v["error"].as_str().unwrap().contains("non-finite"));
    let traj = v["trajectory"].as_array().unwrap();
    assert!(traj.len() > 10 && traj.len() < 1000, "{}", traj.len());
    // Text mode prints about twenty lines whatever the number of steps.
    let (ok, stdout, stderr) = gradlab(&[
        "optimize",
        "--optimizer",
        "adam",
        "--problem",
        "rosenbrock",
        "--x0",
        "0,0",
        "--lr",
        "0.01",
        "--steps",
        "200000",
    ]);
    assert!(ok, "{stderr}");
    let lines = stdout.lines().count();
    assert!((20..=22).contains(&lines), "{lines} lines");
    assert!(stdout.lines().last().unwrap().starts_with("step 200000"));
}

#[test]
fn a_saved_generative_model_samples_without_training_and_the_same() {
    let dir = std::env::temp_dir().join(format!("gradlab-saved-{}", std::process::id()));
    let (model, out) = (dir.join("model"), dir.join("a.png"));
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    let common = ["--steps", "8", "--samples", "400", "--out", o, "--json"];
    let run = |extra: &[&str]| gradlab(&[&["sample"], extra, &common[..]].concat());
    let (ok, trained, stderr) = run(&["--data", "moons", "--train-steps", "200", "--save", m]);
    assert!(ok, "{stderr}");
    let (ok, loaded, stderr) = run(&["--model", m]);
    assert!(ok, "{stderr}");
    let field = |s: &str, k: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()[k].clone();
    // The same model and the same sampler seed: the same samples, hence the same distances.
    assert_eq!(field(&trained, "swd"), field(&loaded, "swd"));
    assert_eq!(field(&trained, "mmd"), field(&loaded, "mmd"));
    assert_eq!(field(&loaded, "train_seconds"), 0.0);
    // The data and the kind of model are the saved ones; a corrupt save is an error.
    for (extra, needle) in [
        (vec!["--model", m, "--data", "spirals"], "trained on moons"),
        (vec!["--model", m, "--method", "rf"], "cannot be sampled"),
        (
            vec!["--model", m, "--train-steps", "5"],
            "cannot be used with",
        ),
    ] {
        let (ok, _, stderr) = run(&extra);
        assert!(!ok && stderr.contains(needle), "{extra:?}: {stderr}");
    }
    // A model card edited by hand (with its checksum updated, so that only the sizes are wrong)
    // is refused with one line, not a panic or an allocation that exhausts the memory.
    for (field, value) in [
        ("hidden", "0"),
        ("hidden", "18446744073709551615"),
        ("dim", "3"),
    ] {
        let edited = dir.join(format!("edited-{field}-{value}"));
        copy_dir(&model, &edited);
        edit_card(&edited, field, value);
        let e = edited.to_str().unwrap();
        let (ok, _, stderr) = run(&["--model", e]);
        assert!(
            !ok && stderr.trim().lines().count() == 1 && !stderr.contains("panicked"),
            "{field} = {value}: {stderr}"
        );
    }
    // A saved rectified flow samples with its own method when none is given, and a failed
    // request leaves no output folder behind.
    let flow = dir.join("flow");
    let f = flow.to_str().unwrap();
    let (ok, _, stderr) = run(&[
        "--data",
        "moons",
        "--method",
        "rf",
        "--train-steps",
        "50",
        "--save",
        f,
    ]);
    assert!(ok, "{stderr}");
    let (ok, report, stderr) = run(&["--model", f]);
    assert!(ok && field(&report, "method") == "rf", "{stderr}");
    let fresh = dir.join("fresh");
    let png = fresh.join("x.png");
    let (ok, _, _) = gradlab(&[
        "sample",
        "--model",
        "no-such-model",
        "--out",
        png.to_str().unwrap(),
    ]);
    assert!(!ok && !fresh.exists());
    std::fs::write(model.join("manifest.json"), "junk").unwrap();
    let (ok, _, stderr) = run(&["--model", m]);
    assert!(!ok && stderr.contains("corrupt"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// A copy of the folder `from` (and its sub-folders) at `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Set `field` of the architecture in the saved model's card to `value`, and the card's size and
/// SHA-256 in the manifest to match, so that the checkpoint still verifies.
fn edit_card(dir: &std::path::Path, field: &str, value: &str) {
    use sha2::{Digest, Sha256};
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let generation = dir.join(manifest["generation"].as_str().unwrap());
    let card_path = generation.join("model.json");
    let card = std::fs::read_to_string(&card_path).unwrap();
    let pattern = format!("\"{field}\": ");
    let start = card.find(&pattern).unwrap() + pattern.len();
    let end = start + card[start..].find([',', '\n', '}']).unwrap();
    let card = format!("{}{value}{}", &card[..start], &card[end..]);
    std::fs::write(&card_path, &card).unwrap();
    manifest["files"]["model.json"] = serde_json::json!({
        "bytes": card.len(),
        "sha256": format!("{:x}", Sha256::digest(card.as_bytes())),
    });
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
}

/// `gradlab enhance` with a small untrained model: a mono file at the model's rate is enhanced
/// and written; a stereo, empty, corrupt or 16 kHz file, a missing model and an existing output
/// are clear errors that leave no output behind.
#[test]
fn enhance_writes_a_wav_and_refuses_bad_audio() {
    use gradlab_audio::wav::{Audio, write_wav};
    use gradlab_generative::sgmse::{
        Enhancer, EnhancerCard, PcSettings, SpecSettings, save_enhancer,
    };
    let dir = std::env::temp_dir().join(format!("gradlab-cli-enhance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = SpecSettings {
        rate: 8000,
        n_fft: 126,
        hop: 32,
        ..SpecSettings::official()
    };
    let net = gradlab_nets::unet::UNetConfig::new(4, spec.bins(), 8)
        .with_width(2)
        .with_out_channels(Some(2))
        .init(&burn::prelude::Device::flex(), 0);
    let enhancer = Enhancer {
        net,
        param: gradlab_generative::sgmse::Parameterisation::Noise,
        process: gradlab_generative::process::Ouve::official(),
        spec,
    };
    let model = dir.join("model");
    save_enhancer(
        &model,
        &enhancer,
        &EnhancerCard::of(&enhancer, "denoising", &PcSettings::official(), 0, 0),
    )
    .unwrap();
    let tone: Vec<f32> = (0..4000).map(|i| (i as f32 * 0.05).sin() * 0.5).collect();
    let noisy = dir.join("noisy.wav");
    write_wav(
        &noisy,
        &Audio {
            rate: 8000,
            samples: tone.clone(),
        },
    )
    .unwrap();
    let m = model.to_str().unwrap();
    let out = dir.join("clean.wav");
    let o = out.to_str().unwrap();
    let (ok, stdout, stderr) = gradlab(&[
        "enhance",
        "--model",
        m,
        "--in",
        noisy.to_str().unwrap(),
        "--out",
        o,
        "--steps",
        "3",
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("NFE 6"), "{stdout}");
    let back = gradlab_audio::wav::read_wav(&out).unwrap();
    assert_eq!((back.rate, back.samples.len()), (8000, 4000));
    let (ok, _, stderr) = gradlab(&[
        "enhance",
        "--model",
        m,
        "--in",
        noisy.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    let fast = dir.join("fast.wav");
    write_wav(
        &fast,
        &Audio {
            rate: 16000,
            samples: tone.clone(),
        },
    )
    .unwrap();
    let stereo = dir.join("stereo.wav");
    let mut w = hound::WavWriter::create(
        &stereo,
        hound::WavSpec {
            channels: 2,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )
    .unwrap();
    for _ in 0..200 {
        w.write_sample(1i16).unwrap();
    }
    w.finalize().unwrap();
    let corrupt = dir.join("corrupt.wav");
    std::fs::write(&corrupt, b"RIFF....WAVEjunk").unwrap();
    let empty = dir.join("empty.wav");
    hound::WavWriter::create(
        &empty,
        hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        },
    )
    .unwrap()
    .finalize()
    .unwrap();
    let target = dir.join("never.wav");
    for (input, model, needle) in [
        (&fast, m, "8000 Hz"),
        (&stereo, m, "2 channels"),
        (&corrupt, m, "not a readable WAV"),
        (&empty, m, "no samples"),
        (&dir.join("missing.wav"), m, "cannot open"),
        (&noisy, dir.to_str().unwrap(), "manifest"),
    ] {
        let (ok, _, stderr) = gradlab(&[
            "enhance",
            "--model",
            model,
            "--in",
            input.to_str().unwrap(),
            "--out",
            target.to_str().unwrap(),
        ]);
        assert!(
            !ok && stderr.contains(needle) && !stderr.contains("panicked"),
            "{needle}: {stderr}"
        );
        assert!(!target.exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `gradlab saliency` with a small untrained model: a grayscale PNG of the model's size gets a
/// heat map; an RGB image, another size, a corrupt or missing file, a model folder of another
/// kind, an unknown class, a block out of range and an existing output are clear errors that leave
/// no output behind.
#[test]
fn saliency_draws_a_heat_map_and_refuses_bad_images() {
    use gradlab_paradigms::normgrad::{SaliencyCard, SaliencyCnnConfig, save_model};
    let dir = std::env::temp_dir().join(format!("gradlab-cli-saliency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let net = SaliencyCnnConfig::new()
        .with_size(8)
        .with_widths(vec![2, 3])
        .init(&burn::prelude::Device::flex(), 0)
        .unwrap();
    let card = SaliencyCard {
        channels: 1,
        size: 8,
        widths: vec![2, 3],
        class_names: vec!["a".into(), "b".into(), "c".into()],
        data: "test".into(),
        test_accuracy: 0.0,
    };
    let model = dir.join("model");
    save_model(&model, &net, &card).unwrap();
    let gray = dir.join("gray.png");
    image::GrayImage::from_fn(8, 8, |x, y| image::Luma([((x * 30 + y * 7) % 255) as u8]))
        .save(&gray)
        .unwrap();
    let rgb = dir.join("rgb.png");
    image::RgbImage::new(8, 8).save(&rgb).unwrap();
    let big = dir.join("big.png");
    image::GrayImage::new(9, 8).save(&big).unwrap();
    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let (m, out) = (model.to_str().unwrap(), dir.join("map.png"));
    let o = out.to_str().unwrap();
    let run = |image: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "saliency",
            "--model",
            m,
            "--image",
            image.to_str().unwrap(),
            "--out",
            o,
            "--scale",
            "2",
        ];
        args.extend_from_slice(extra);
        gradlab(&args)
    };
    let (ok, stdout, stderr) = run(&gray, &["--class", "b", "--meta-lr", "1e-4"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("for class b with meta-saliency"),
        "{stdout}"
    );
    let map = image::open(&out).unwrap();
    assert_eq!((map.width(), map.height()), (16, 16));
    let (ok, _, stderr) = run(&gray, &[]);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    std::fs::remove_file(&out).unwrap();
    for (image, extra, message) in [
        (&rgb, &[][..], "3 channels"),
        (&big, &[][..], "9×8 pixels; the model takes 8×8"),
        (&corrupt, &[][..], "not a readable PNG"),
        (&dir.join("missing.png"), &[][..], "cannot read"),
        (&gray, &["--class", "zebra"][..], "--class zebra"),
        (
            &gray,
            &["--method", "normgrad", "--layer", "3"][..],
            "1..=2",
        ),
        (&gray, &["--layer", "1"][..], "per-block methods"),
    ] {
        let (ok, _, stderr) = run(image, extra);
        assert!(!ok && stderr.contains(message), "{extra:?}: {stderr}");
        assert!(!out.exists(), "{extra:?} left an output");
    }
    let (ok, _, stderr) = gradlab(&[
        "saliency",
        "--model",
        dir.to_str().unwrap(),
        "--image",
        gray.to_str().unwrap(),
        "--out",
        o,
    ]);
    assert!(!ok && !out.exists(), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without the `mpi` feature, `--distributed` says how to get it (and trains nothing).
#[cfg(not(feature = "mpi"))]
#[test]
fn train_distributed_without_mpi_says_how_to_build_it() {
    let (ok, stdout, stderr) = gradlab(&["train", "--epochs", "1", "--distributed"]);
    assert!(!ok);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("--features mpi") && stderr.contains("mpirun"),
        "{stderr}"
    );
}

#[test]
fn hessian_reports_ordered_eigenvalues_a_density_and_a_psd_gauss_newton_part() {
    let dir = std::env::temp_dir().join(format!("gradlab-hessian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec![
            "hessian",
            "--top-k",
            "3",
            "--lanczos-steps",
            "20",
            "--examples",
            "300",
            "--trace-samples",
            "10",
            "--json",
        ];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = gradlab(&args);
        assert!(ok, "{stderr}");
        serde_json::from_str::<serde_json::Value>(stdout.trim()).unwrap()
    };
    let numbers = |v: &serde_json::Value, key: &str| -> Vec<f64> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    for style in ["gradlab", "pyhessian"] {
        let plot = dir.join(format!("density-{style}.png"));
        let v = run(&[
            "--density",
            "--density-style",
            style,
            "--out",
            plot.to_str().unwrap(),
        ]);
        let top = numbers(&v, "top_eigenvalues");
        assert_eq!(top.len(), 3);
        assert!(
            top.windows(2).all(|w| w[0] >= w[1]) && top[0] > 0.0,
            "{top:?}"
        );
        assert!(plot.is_file(), "{style}: no density plot");
    }
    // The Gauss–Newton part is PSD: every zᵀGz ≥ 0, so the trace estimate is positive.
    let gn = run(&["--matrix", "gauss-newton"]);
    assert!(numbers(&gn, "top_eigenvalues")[0] > 0.0);
    assert!(numbers(&gn, "trace")[0] > 0.0, "{gn}");
    let missing = dir.join("missing");
    let (ok, _, _) = gradlab(&["hessian", "--checkpoint", missing.to_str().unwrap()]);
    assert!(!ok);
    std::fs::remove_dir_all(&dir).ok();
}
