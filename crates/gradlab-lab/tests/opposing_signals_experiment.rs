//! The opposing-signals experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn opposing_signals_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-opposing-{}", std::process::id()));
    let out = run_experiment(
        registry::find("opposing-signals").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // The sharpness was measured along the way and the metrics are in range.
    assert!(out.metrics["peak_sharpness"] > 0.0);
    assert!((0.0..=1.0).contains(&out.metrics["precision"]));
    assert!(out.metrics["spike"] >= 1.0 && out.metrics["control_spike"] >= 1.0);
    assert!(dir.join("group_losses.png").exists() && dir.join("sharpness.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
