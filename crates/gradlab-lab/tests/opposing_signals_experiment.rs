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
    // Properties a broken run or detector violates (not the claim's thresholds): gradient descent
    // trains both nets; the loss-change detector finds the planted examples well above their base
    // rate (a random or inverted ranking would not); and the measured sharpness of a run that did
    // not diverge stays below twice the 2/η that GD can sustain (a mis-scaled HVP would not).
    for run in ["run", "control"] {
        let (a, b) = (
            out.metrics[&format!("{run}.initial_loss")],
            out.metrics[&format!("{run}.final_loss")],
        );
        assert!(b < 0.5 * a, "{run}: loss {a} → {b}");
    }
    assert!(out.metrics["precision"] > 2.0 * out.metrics["base_rate"]);
    let late = out.metrics["late_sharpness"];
    assert!(
        late > 0.0 && late < 2.0 * out.metrics["edge"],
        "late sharpness {late}"
    );
    assert!(dir.join("group_losses.png").exists() && dir.join("sharpness.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
