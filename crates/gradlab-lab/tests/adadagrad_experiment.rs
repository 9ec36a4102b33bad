//! The adadagrad experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn adadagrad_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-adadagrad-{}", std::process::id()));
    let out = run_experiment(
        registry::find("adadagrad").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    for c in &out.checks {
        assert!(c.passed, "{}: {}", c.key, c.describe());
    }
    assert!(dir.join("batch_size.png").exists() && dir.join("loss_vs_samples.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
