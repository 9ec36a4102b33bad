//! Model Hessians: central-difference HVPs of a burn model's f32 gradients against the closed-form
//! Hessian of softmax regression, H = (1/N) Σᵢ (diag(pᵢ) − pᵢpᵢᵀ) ⊗ x̃ᵢx̃ᵢᵀ with x̃ = [x; 1];
//! and the report's pieces on a small MLP.

use gradlab_curvature::spectrum::lanczos_eigenvalues;
use gradlab_curvature::spectrum::power_iteration;
use gradlab_curvature::{GaussNewton, HessianVectorProduct, OracleHvp, OutputLoss};
use gradlab_lab::hessian::{CurvatureMatrix, HessianRequest, ModelGradient, ModelOutputs, analyze};
use gradlab_lab::train::{LossKind, autodiff_device};
use gradlab_nets::{mlp::MlpConfig, params};

#[test]
fn model_hvps_match_the_softmax_regression_hessian() {
    let (train, _) = gradlab_data::images::load_split("digits", 0).unwrap();
    let (d, k, n) = (64, 10, 200);
    let model = MlpConfig::new(vec![d, k]).init(&autodiff_device(), 3);
    let theta: Vec<f64> = params::flatten(&model).into_iter().map(f64::from).collect();
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
    let theta: Vec<f64> = params::flatten(&model).into_iter().map(f64::from).collect();
    let idx: Vec<usize> = (0..100).collect();
    let gn = GaussNewton::new(
        ModelOutputs::new(model, &train, &idx),
        theta,
        OutputLoss::SoftmaxCrossEntropy,
        1e-3,
    )
    .unwrap();
    let ritz = lanczos_eigenvalues(&gn, 30, 1).unwrap();
    let (top, bottom) = (ritz[0], *ritz.last().unwrap());
    assert!(top > 0.0);
    assert!(
        bottom > -1e-3 * top,
        "smallest Ritz value {bottom} (top {top})"
    );
}

#[test]
fn the_report_runs_and_bad_requests_are_errors() {
    let dir = std::env::temp_dir().join(format!("gradlab-hessian-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plot = dir.join("density.png");
    let mut req = HessianRequest {
        matrix: Default::default(),
        model: "mlp".into(),
        data: "digits".into(),
        checkpoint: None,
        top_k: 3,
        lanczos_steps: 20,
        density_plot: Some(plot.clone()),
        examples: 300,
        trace_samples: 10,
        seed: 0,
        progress: false,
    };
    let r = analyze(&req).unwrap();
    assert_eq!(r.top_eigenvalues.len(), 3);
    assert!(r.top_eigenvalues.windows(2).all(|w| w[0] >= w[1]));
    assert!(r.top_eigenvalues[0] > 0.0 && r.trace.0.is_finite());
    assert!(plot.exists());
    req.top_k = 0;
    assert!(analyze(&req).unwrap_err().to_string().contains("--top-k 0"));
    req.top_k = 3;
    // The Gauss–Newton part is PSD: every zᵀGz ≥ 0, so the trace estimate is positive.
    req.matrix = CurvatureMatrix::GaussNewton;
    req.density_plot = None;
    let gn = analyze(&req).unwrap();
    assert_eq!(gn.matrix, CurvatureMatrix::GaussNewton);
    assert!(gn.top_eigenvalues[0] > 0.0 && gn.trace.0 > 0.0);
    req.checkpoint = Some(dir.join("missing"));
    assert!(analyze(&req).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
