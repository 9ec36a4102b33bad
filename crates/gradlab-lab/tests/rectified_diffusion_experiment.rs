//! The rectified-diffusion experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn rectified_diffusion_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-rd-{}", std::process::id()));
    let out = run_experiment(
        registry::find("rectified-diffusion").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // Every model sampled, and more steps help the first-order samplers.
    for m in ["teacher (DDIM)", "rectified diffusion (DDIM)"] {
        assert!(
            out.metrics[&format!("{m}.swd4")] < out.metrics[&format!("{m}.swd1")],
            "{m}"
        );
    }
    assert!(out.metrics["classic reflow (Euler).swd1"].is_finite());
    assert!(dir.join("few_steps.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
