//! The hessian-spectrum experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn hessian_spectrum_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-hspec-{}", std::process::id()));
    let out = run_experiment(
        registry::find("hessian-spectrum").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // Every setting produced a positive top eigenvalue and a trace estimate.
    for key in ["k=2", "k=5", "k=10", "width=16", "width=64", "spread=2"] {
        assert!(out.metrics[&format!("{key}.top")] > 0.0, "{key}");
        assert!(
            out.metrics[&format!("{key}.bulk_share")].is_finite(),
            "{key}"
        );
    }
    // More clusters, more outliers (the count is measured, not assumed).
    assert!(out.metrics["k=10.outliers"] > out.metrics["k=2.outliers"]);
    assert!(dir.join("top_eigenvalues.png").exists() && dir.join("densities.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
