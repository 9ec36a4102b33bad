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
    // In every setting Lanczos's top eigenvalue is the one power iteration finds independently on
    // the same Hessian (a wrong Lanczos recurrence or Ritz extraction would not agree).
    for key in ["k=2", "k=5", "k=10", "width=16", "width=64", "spread=2"] {
        let (lanczos, power) = (
            out.metrics[&format!("{key}.top")],
            out.metrics[&format!("{key}.top_power")],
        );
        assert!(
            lanczos > 0.0 && (lanczos - power).abs() < 1e-2 * lanczos,
            "{key}: Lanczos {lanczos} vs power iteration {power}"
        );
    }
    // More clusters, more outliers (the count is measured, not assumed).
    assert!(out.metrics["k=10.outliers"] > out.metrics["k=2.outliers"]);
    assert!(dir.join("top_eigenvalues.png").exists() && dir.join("densities.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
