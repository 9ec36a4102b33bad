//! Model Hessians: central-difference HVPs of a burn model's f32 gradients against the closed-form
//! Hessian of softmax regression, H = (1/N) Σᵢ (diag(pᵢ) − pᵢpᵢᵀ) ⊗ x̃ᵢx̃ᵢᵀ with x̃ = [x; 1];
//! Gauss–Newton products of a small MLP; ReLU networks against PyHessian.

use gradlab_curvature::model::{ModelGradient, ModelOutputs};
use gradlab_curvature::spectrum::lanczos_eigenvalues;
use gradlab_curvature::spectrum::power_iteration;
use gradlab_curvature::{GaussNewton, HessianVectorProduct, OracleHvp, OutputLoss};
use gradlab_nets::mlp::MlpConfig;
use gradlab_nets::{LossKind, autodiff_device};

#[test]
fn model_hvps_match_the_softmax_regression_hessian() {
    let (train, _) = gradlab_data::images::load_split("digits", 0).unwrap();
    let (d, k, n) = (64, 10, 200);
    let model = MlpConfig::new(vec![d, k]).init(&autodiff_device(), 3);
    let theta = gradlab_core::flat::flatten_host(&model).unwrap();
    assert_eq!(theta.len(), d * k + k);
    let idx: Vec<usize> = (0..n).collect();
    let oracle = ModelGradient::new(model.clone(), &train, &idx, LossKind::CrossEntropy);
    let hvp = OracleHvp::new(oracle, theta.clone(), 1e-3).unwrap();
    // Logits linear in θ: the Gauss–Newton matrix is the Hessian too.
    let outputs = ModelOutputs::new(model, &train, &idx);
    let gn = GaussNewton::new(
        outputs,
        theta.clone(),
        OutputLoss::SoftmaxCrossEntropy,
        1e-3,
    )
    .unwrap();

    // Closed form: weights are [in, out] row-major (index j·K + a), then the bias (d·K + a).
    let dim = theta.len();
    let index = |j: usize, a: usize| if j < d { j * k + a } else { d * k + a };
    let mut h = vec![0.0; dim * dim];
    for &i in &idx {
        let x: Vec<f64> = train
            .image(i)
            .iter()
            .map(|v| f64::from(*v))
            .chain([1.0])
            .collect();
        let z: Vec<f64> = (0..k)
            .map(|a| (0..=d).map(|j| x[j] * theta[index(j, a)]).sum())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        let p: Vec<f64> = e.iter().map(|v| v / s).collect();
        for a in 0..k {
            for b in 0..k {
                let c = if a == b { p[a] } else { 0.0 } - p[a] * p[b];
                for j in 0..=d {
                    for l in 0..=d {
                        h[index(j, a) * dim + index(l, b)] += c * x[j] * x[l] / n as f64;
                    }
                }
            }
        }
    }
    let mut s = 11u64;
    for _ in 0..3 {
        let v: Vec<f64> = (0..dim)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect();
        let want: Vec<f64> = h
            .chunks(dim)
            .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        for got in [hvp.hvp(&v).unwrap(), gn.hvp(&v).unwrap()] {
            let err = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            let scale = want.iter().map(|a| a * a).sum::<f64>().sqrt();
            assert!(err < 2e-3 * scale, "relative error {}", err / scale);
        }
    }
    // The top eigenvalue from model HVPs against the closed form's.
    let dense = gradlab_curvature::spectrum::DenseHessian::new(h, dim).unwrap();
    let exact = power_iteration(&dense, 1, 2000, 1e-12, 0).unwrap()[0].value;
    let approx = power_iteration(&hvp, 1, 200, 1e-8, 0).unwrap()[0].value;
    assert!((approx - exact).abs() < 1e-2 * exact, "{approx} vs {exact}");
}

/// For a nonlinear MLP the Gauss–Newton matrix stays positive semi-definite (the Hessian need
/// not: it adds the residual-weighted term Σ ∂ℓ/∂f · ∇²f).
#[test]
fn gauss_newton_of_an_mlp_is_psd() {
    let (train, _) = gradlab_data::images::load_split("digits", 0).unwrap();
    let model = MlpConfig::new(vec![64, 16, 10]).init(&autodiff_device(), 5);
    let theta = gradlab_core::flat::flatten_host(&model).unwrap();
    let idx: Vec<usize> = (0..100).collect();
    let outputs = ModelOutputs::new(model, &train, &idx)
        .frozen_at(&theta)
        .unwrap();
    let gn = GaussNewton::new(outputs, theta, OutputLoss::SoftmaxCrossEntropy, 1e-3).unwrap();
    let ritz = lanczos_eigenvalues(&gn, 30, 1).unwrap();
    let (top, bottom) = (ritz[0], *ritz.last().unwrap());
    assert!(top > 0.0);
    assert!(
        bottom > -1e-3 * top,
        "smallest Ritz value {bottom} (top {top})"
    );
}

/// A ReLU MLP's Hessian against PyHessian (exact double-backward HVPs), on the same weights.
///
/// Golden values: PyHessian 0.1 (pip) with torch 2.x on CPU, the MLP 64-256-256-128-10 (ReLU)
/// with gradlab's seed-0 initial weights (written by `examples/hessian_timing.rs`, loaded into
/// torch as `bench/hessian_vs_pyhessian.py` does), mean cross-entropy over the first 1,000
/// digits, `hessian.eigenvalues(top_n=3, maxIter=2000, tol=1e-7)`.
/// Without frozen kinks the central differences do not converge here (top "eigenvalue" 0.54,
/// 1.34, 2.37, 6.38 at relative steps 1e-2 … 1e-5).
#[test]
fn relu_mlp_top_eigenvalues_match_pyhessian() {
    const PYHESSIAN_TOP: [f64; 2] = [0.28338372707366943, 0.26874488592147827];
    let set = gradlab_data::images::digits();
    let idx: Vec<usize> = (0..1000).collect();
    let model = MlpConfig::new(vec![64, 256, 256, 128, 10]).init(&autodiff_device(), 0);
    let theta = gradlab_core::flat::flatten_host(&model).unwrap();
    let oracle = ModelGradient::new(model, &set, &idx, LossKind::CrossEntropy)
        .frozen_at(&theta)
        .unwrap();
    let ritz = lanczos_eigenvalues(&OracleHvp::new(oracle, theta, 1e-3).unwrap(), 40, 0).unwrap();
    for (got, want) in ritz.iter().zip(PYHESSIAN_TOP) {
        assert!(
            (got - want).abs() < 1e-3 * want,
            "{got} vs PyHessian {want}"
        );
    }
}

/// With frozen kinks the differences converge: the step size no longer matters.
#[test]
fn frozen_kinks_make_relu_hvps_step_independent() {
    let (train, _) = gradlab_data::images::load_split("digits", 0).unwrap();
    let model = MlpConfig::new(vec![64, 32, 10]).init(&autodiff_device(), 2);
    let theta = gradlab_core::flat::flatten_host(&model).unwrap();
    let idx: Vec<usize> = (0..200).collect();
    let top = |eps: f64| {
        let oracle = ModelGradient::new(model.clone(), &train, &idx, LossKind::CrossEntropy)
            .frozen_at(&theta)
            .unwrap();
        let h = OracleHvp::new(oracle, theta.clone(), eps).unwrap();
        power_iteration(&h, 1, 300, 1e-9, 0).unwrap()[0].value
    };
    let (coarse, fine) = (top(1e-2), top(1e-4));
    assert!((coarse - fine).abs() < 2e-3 * fine, "{coarse} vs {fine}");
}
