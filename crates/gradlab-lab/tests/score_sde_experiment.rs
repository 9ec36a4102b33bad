//! The score-sde experiment in quick mode.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn score_sde_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-scoresde-{}", std::process::id()));
    let out = run_experiment(
        registry::find("score-sde").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // With the exact score every sampler of both SDEs at 100 NFE is within 1.5× the data-vs-data floor, and
    // the trained model's likelihood is a finite number of nats.
    let floor = out.metrics["swd_floor"];
    for s in [
        "reverse diffusion",
        "predictor-corrector",
        "Euler–Maruyama",
        "PF-ODE (Heun)",
    ] {
        for sde in ["vp", "ve"] {
            assert!(
                out.metrics[&format!("{sde}.exact.{s}.swd100")] < 1.5 * floor,
                "{sde} {s}"
            );
        }
    }
    assert!(out.metrics["nll.model"].is_finite() && out.metrics["nll.true"].is_finite());
    assert!(
        dir.join("swd_vs_nfe.png").exists()
            && dir.join("swd_vs_nfe_ve.png").exists()
            && dir.join("samples.png").exists()
    );
    std::fs::remove_dir_all(&dir).ok();
}
