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

#[test]
fn grad_norm_smoothness_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-gns-{}", std::process::id()));
    let out = run_experiment(
        registry::find("grad-norm-smoothness").unwrap().as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    for key in ["logistic", "softmax", "softmax_approx"] {
        assert!(
            out.check(&format!("{key}.linear_rate"))
                .unwrap()
                .measured
                .is_finite()
        );
        assert!(out.metrics[&format!("{key}.final_grad_norm")] < 0.1);
    }
    assert!(dir.join("grad_norm.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
