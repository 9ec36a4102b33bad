//! The rectified-flow experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn rectified_flow_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-rf-{}", std::process::id()));
    let out = run_experiment(
        registry::find("rectified-flow").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // The 100-step 1-RF sampler is a working generator: within 3× the data-vs-data SWD floor.
    let floor = out.metrics["8gaussians.swd_floor"];
    assert!(out.metrics["8gaussians.1-RF.swd100"] < 3.0 * floor);
    assert!(out.metrics["8gaussians.1-RF.straightness"] > 0.0);
    assert!(dir.join("samples.png").exists() && dir.join("swd_vs_steps.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
