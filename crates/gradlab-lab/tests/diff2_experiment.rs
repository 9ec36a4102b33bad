//! The DIFF2 experiment in quick mode: it runs and measures its claim, and every private method
//! makes progress from the starting point (‖∇f(0)‖²) while staying above non-private GD.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::papers::diff2::LogisticRegression;
use gradlab_lab::registry;

#[test]
fn diff2_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-diff2-{}", std::process::id()));
    let out = run_experiment(
        registry::find("diff2").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    for (key, kappa) in [("isotropic", 1.0), ("ill_conditioned", 30.0)] {
        let p = LogisticRegression::synthetic(1000, 50, 4.0, kappa, 0);
        let start = p.grad_sq_norm(&[0.0; 50]);
        let gd = out.metrics[&format!("{key}.gd.grad_sq_norm")];
        for m in ["dp_gd", "dp_sgd", "diff2"] {
            let v = out.metrics[&format!("{key}.{m}.mean_grad_sq_norm")];
            assert!(
                v < 0.5 * start && v > gd,
                "{key} {m}: {v} (start {start}, GD {gd})"
            );
        }
        for c in ["ratio_diff2_over_dp_gd", "ratio_diff2_over_dp_sgd"] {
            assert!(
                out.check(&format!("{key}.{c}"))
                    .unwrap()
                    .measured
                    .is_finite()
            );
        }
    }
    assert!(dir.join("diff2_grad_norm.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
