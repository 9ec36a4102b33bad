//! The adam-vs-sgd experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn adam_vs_sgd_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-adam-vs-sgd-{}", std::process::id()));
    let out = run_experiment(
        registry::find("adam-vs-sgd").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    for c in &out.checks {
        assert!(c.passed, "{}: {}", c.key, c.describe());
    }
    assert!(dir.join("loss_curves.png").exists() && dir.join("lr_sweep.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
