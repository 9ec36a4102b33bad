//! The grad-norm-smoothness experiment in quick mode, and its softmax-regression oracle against
//! central differences.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::papers::grad_norm_smoothness::SoftmaxRegression;
use gradlab_lab::registry;
use gradlab_optim::grad_norm_smooth::SecondOrderOracle;

#[test]
fn softmax_regression_derivatives_match_finite_differences() {
    let features: Vec<f32> = (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) / 2.0).collect();
    let f = SoftmaxRegression::new(&features, &[0, 2, 1, 2], 3);
    let w: Vec<f64> = (0..f.dim())
        .map(|i| ((i * 3 % 7) as f64 - 3.0) / 5.0)
        .collect();
    let (g, h, n) = (f.gradient(&w), f.hessian(&w), f.dim());
    let eps = 1e-6;
    for i in 0..n {
        let mut p = w.clone();
        let mut m = w.clone();
        p[i] += eps;
        m[i] -= eps;
        let fd = (f.value(&p) - f.value(&m)) / (2.0 * eps);
        assert!((fd - g[i]).abs() < 1e-7, "gradient {i}: {fd} vs {}", g[i]);
        let (gp, gm) = (f.gradient(&p), f.gradient(&m));
        for j in 0..n {
            let fd = (gp[j] - gm[j]) / (2.0 * eps);
            assert!((fd - h[j * n + i]).abs() < 1e-6, "Hessian {j},{i}");
        }
    }
}

/// The joint optimizer's objective on a linear model (softmax regression as an `Mlp` 64-10, whose
/// flattened parameters are W̃ = [W; b] in the oracle's layout): value, gradient and Gauss–Newton
/// matrix (the exact Hessian for a linear model) against the closed-form oracle.
#[test]
fn model_objective_matches_softmax_regression() {
    use gradlab_lab::joint_newton::ModelObjective;
    use gradlab_lab::papers::grad_norm_smoothness::L2;
    let (train, _) = gradlab_data::images::load_split("digits", 0).unwrap();
    let n = 60;
    let idx: Vec<usize> = (0..n).collect();
    let model = gradlab_nets::mlp::MlpConfig::new(vec![64, 10])
        .init(&gradlab_lab::train::autodiff_device(), 4);
    let theta: Vec<f64> = gradlab_nets::params::flatten(&model)
        .into_iter()
        .map(f64::from)
        .collect();
    let ours = ModelObjective::new(model, &train, &idx, L2).unwrap();
    let labels: Vec<usize> = train.labels[..n].iter().map(|&l| usize::from(l)).collect();
    let exact = SoftmaxRegression::new(&train.images[..n * 64], &labels, 10);
    assert!((ours.value(&theta) - exact.value(&theta)).abs() < 1e-5);
    let (g1, g2) = (ours.gradient(&theta), exact.gradient(&theta));
    let gmax = g2.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in g1.iter().zip(&g2) {
        assert!((a - b).abs() < 1e-4 * gmax, "{a} vs {b}");
    }
    let (h1, h2) = (ours.hessian(&theta), exact.hessian(&theta));
    let hmax = h2.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (a, b) in h1.iter().zip(&h2) {
        assert!((a - b).abs() < 2e-3 * hmax, "{a} vs {b}");
    }
    assert!(
        ModelObjective::new(
            gradlab_nets::mlp::MlpConfig::new(vec![64, 10])
                .init(&gradlab_lab::train::autodiff_device(), 4),
            &train,
            &idx,
            -1.0
        )
        .is_err()
    );
}

#[test]
fn grad_norm_smoothness_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-gns-{}", std::process::id()));
    let out = run_experiment(
        registry::find("grad-norm-smoothness").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    // With the exact Hessian of these strongly convex (L2) problems the regularized Newton step
    // must converge far below what first-order methods reach in 25 iterations; with the
    // approximate Hessian it must at least make progress.
    for (key, bound) in [
        ("logistic", 1e-8),
        ("softmax", 1e-8),
        ("softmax_approx", 0.1),
    ] {
        let g = out.metrics[&format!("{key}.final_grad_norm")];
        assert!(g < bound, "{key}: final ‖∇f‖ {g}");
    }
    // The MLP run made progress (gradient norm falls from ≈0.4).
    assert!(out.metrics["mlp_gn.final_grad_norm"] < 0.1);
    assert!(dir.join("grad_norm.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
