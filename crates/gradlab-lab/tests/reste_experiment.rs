//! The reste experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn reste_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-reste-{}", std::process::id()));
    let out = run_experiment(
        registry::find("reste").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // The equilibrium between estimating error and gradient stability is a property of the
    // estimators and shows on any seed; the accuracy comparison is measured and reported (both
    // estimators must train the binary network well: a broken estimator would not).
    for key in ["estimating_error_ratio", "gradient_variance_ratio"] {
        let c = out.check(key).unwrap();
        assert!(c.passed, "{key}: {}", c.describe());
    }
    assert!(out.metrics["ste.test_acc"] > 0.9 && out.metrics["reste.test_acc"] > 0.9);
    assert!(dir.join("reste_accuracy.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
