//! The diffGrad experiment in quick mode, asserting the verdicts of its checks.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry;

#[test]
fn diffgrad_quick_reproduces_the_analytic_claims() {
    let dir = std::env::temp_dir().join(format!("gradlab-diffgrad-{}", std::process::id()));
    let exp = registry::find("diffgrad").unwrap();
    let out = run_experiment(exp.as_ref(), &RunContext::new(true, 0, &dir)).unwrap();
    println!("{}", out.render());
    // The paper's deterministic claims about where each optimizer ends.
    for key in [
        "f1.diffgrad_distance_to_global",
        "f1.adam_distance_to_local",
        "f2.diffgrad_distance_to_global",
        "f2.adam_distance_to_local",
        "f3.adam_tail_distance",
        "f3.diffgrad_tail_distance",
    ] {
        let c = out
            .check(key)
            .unwrap_or_else(|| panic!("missing check {key}"));
        assert!(c.passed, "{key}: {}", c.describe());
    }
    // The stability and image claims are measured and reported, whichever way they come out.
    // The adaptive optimizers learned something on digits (SGDM, AdaGrad and AdaDelta barely move
    // in six epochs at the paper's lr of 1e-3).
    for (k, v) in &out.metrics {
        if ["adam", "amsgrad", "rmsprop", "diffgrad"]
            .iter()
            .any(|o| k == &format!("images.{o}.test_acc_mean"))
        {
            assert!(*v > 0.5, "{k} = {v}");
        }
    }
    assert!(
        dir.join("result.json").exists()
            && dir.join("analytic_f1.png").exists()
            && dir.join("images_test_accuracy.png").exists()
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_same_seed_gives_the_same_numbers() {
    use gradlab_lab::papers::diffgrad::{ANALYTIC_STEPS, analytic_trajectory, image_run};
    let (train, test) = gradlab_data::images::load_split("digits", 0).unwrap();
    let run = |seed| image_run("diffgrad", &train, &test, 1, seed).unwrap();
    let (a, b) = (run(7), run(7));
    assert_eq!(
        (a[0].train_loss, a[0].test_loss, a[0].test_acc),
        (b[0].train_loss, b[0].test_loss, b[0].test_acc)
    );
    assert_ne!(a[0].test_loss, run(8)[0].test_loss);
    let f1 = gradlab_data::functions::DiffGradF1;
    assert_eq!(
        analytic_trajectory("adam", &f1, ANALYTIC_STEPS).unwrap(),
        analytic_trajectory("adam", &f1, ANALYTIC_STEPS).unwrap()
    );
}
