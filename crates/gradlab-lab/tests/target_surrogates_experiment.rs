//! The target-surrogates experiment in quick mode: it runs and measures its claim; the optimizer
//! makes progress from the starting loss ln 2 in both regimes.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn target_surrogates_quick() {
    let dir =
        std::env::temp_dir().join(format!("gradlab-target-surrogates-{}", std::process::id()));
    let out = run_experiment(
        registry::find("target-surrogates").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    for key in ["noisy", "separable"] {
        assert!(
            out.check(&format!("{key}.loss_ratio_m10_over_m1"))
                .unwrap()
                .measured
                .is_finite()
        );
        for m in ["m1", "m10"] {
            assert!(out.metrics[&format!("{key}.{m}.final_loss")] < 0.9 * std::f64::consts::LN_2);
        }
    }
    assert!(dir.join("surrogate_loss.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
