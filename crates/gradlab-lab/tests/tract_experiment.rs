//! The tract experiment in quick mode: it runs, both checks are measured, figures are written.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn tract_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-tract-{}", std::process::id()));
    let out = run_experiment(
        registry::find("tract").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // With a linear first layer the paper's lower bound of a 25% speed-up is met.
    let mlp = out.check("mlp.speedup").unwrap();
    assert!(mlp.passed, "{}", mlp.describe());
    // TrAct does not cost accuracy on either model (a wrong preconditioner would: the CNN's
    // speed-up is measured and reported either way).
    for m in ["mlp", "cnn"] {
        assert!(
            out.metrics[&format!("{m}.final_acc_tract")]
                >= out.metrics[&format!("{m}.final_acc_baseline")] - 0.02
        );
    }
    assert!(dir.join("tract_accuracy.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
