//! The mfac experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn mfac_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-mfac-{}", std::process::id()));
    let out = run_experiment(
        registry::find("mfac").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // Every optimizer trained both models past chance (10 classes) and every pruning level was
    // evaluated; the verdict itself is the experiment's measurement.
    for model in ["softmax", "mlp"] {
        for opt in ["sgd", "adam", "m-fac"] {
            assert!(
                out.metrics[&format!("{model}.{opt}.test_acc")] > 0.5,
                "{model} {opt}"
            );
        }
    }
    for s in [50, 75, 90] {
        let (m, o) = (
            out.metrics[&format!("prune.{s}.magnitude")],
            out.metrics[&format!("prune.{s}.mfac")],
        );
        assert!((0.0..=1.0).contains(&m) && (0.0..=1.0).contains(&o));
    }
    // Pruning more cannot be free: 90% sparsity costs accuracy against 50%.
    assert!(out.metrics["prune.90.magnitude"] < out.metrics["prune.50.magnitude"]);
    assert!(dir.join("pruning.png").exists() && dir.join("mlp_loss_vs_time.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
