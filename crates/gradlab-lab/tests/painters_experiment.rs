//! The painters experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn painters_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-painters-{}", std::process::id()));
    let out = run_experiment(
        registry::find("painters").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // The trained sampler works: 50-NFE samples within 3× the data-vs-data floor.
    assert!(out.metrics["full.swd_nfe50"] < 3.0 * out.metrics["swd_floor"]);
    assert!(dir.join("progress.png").exists() && dir.join("teleport.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
