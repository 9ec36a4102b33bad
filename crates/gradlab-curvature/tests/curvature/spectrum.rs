//! Spectral tools against dense computations: Jacobi eigenpairs checked by their residuals, power
//! iteration and Lanczos against a matrix of chosen spectrum and against the dense Hessian of a
//! small MLP (built from central-difference HVPs), SLQ's quadrature against vᵀHᵖv and tr(Hᵖ)/n,
//! Hutchinson against the dense trace.

use burn::prelude::*;
use gradlab_curvature::spectrum::{
    DenseHessian, hutchinson_trace, lanczos, lanczos_eigenvalues, power_iteration, slq_density,
    symmetric_eigen,
};
use gradlab_curvature::{CurvatureError, FiniteDiffHvp, HessianVectorProduct};

/// Q diag(λ) Qᵀ with Q = H₁H₂ a product of two Householder reflections Hₖ = I − 2vvᵀ/vᵀv (an
/// orthogonal matrix in closed form, independent of the eigensolvers under test).
fn with_spectrum(lambda: &[f64]) -> DenseHessian {
    let n = lambda.len();
    let reflect = |v: &[f64], m: &mut Vec<f64>| {
        // m ← H m (columns of m reflected).
        let vv: f64 = v.iter().map(|x| x * x).sum();
        for c in 0..n {
            let d: f64 = (0..n).map(|r| v[r] * m[r * n + c]).sum();
            for r in 0..n {
                m[r * n + c] -= 2.0 * v[r] * d / vv;
            }
        }
    };
    let v1: Vec<f64> = (0..n).map(|i| 1.0 + i as f64).collect();
    let v2: Vec<f64> = (0..n).map(|i| ((i * 5 + 2) % 7) as f64 - 3.0).collect();
    let mut q = vec![0.0; n * n];
    (0..n).for_each(|i| q[i * n + i] = 1.0);
    reflect(&v2, &mut q);
    reflect(&v1, &mut q);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            a[i * n + j] = (0..n)
                .map(|k| q[i * n + k] * lambda[k] * q[j * n + k])
                .sum();
        }
    }
    DenseHessian::new(a, n).unwrap()
}

#[test]
fn jacobi_eigenpairs_match_a_tridiagonal_toeplitz_matrix_in_closed_form() {
    // tridiag(b, a, b) of size n has eigenvalues a + 2b·cos(kπ/(n + 1)), k = 1 … n.
    let (n, a, b) = (7, 1.5, -0.8);
    let mut t = vec![0.0; n * n];
    for i in 0..n {
        t[i * n + i] = a;
        if i + 1 < n {
            t[i * n + i + 1] = b;
            t[(i + 1) * n + i] = b;
        }
    }
    let (values, vectors) = symmetric_eigen(&t, n);
    let mut want: Vec<f64> = (1..=n)
        .map(|k| a + 2.0 * b * (k as f64 * std::f64::consts::PI / (n + 1) as f64).cos())
        .collect();
    want.sort_by(|x, y| y.total_cmp(x));
    for (got, want) in values.iter().zip(&want) {
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    }
    let h = DenseHessian::new(t, n).unwrap();
    for (j, lam) in values.iter().enumerate() {
        let v: Vec<f64> = (0..n).map(|k| vectors[k * n + j]).collect();
        let av = h.hvp(&v).unwrap();
        let res: f64 = av.iter().zip(&v).map(|(x, y)| (x - lam * y).powi(2)).sum();
        assert!(res.sqrt() < 1e-10, "residual {res}");
    }
    // The same on a dense matrix of chosen spectrum.
    let h = with_spectrum(&[4.0, -2.0, 1.0, 0.5, 0.25, 3.0]);
    let (values, _) = symmetric_eigen(&h.dense().unwrap(), 6);
    let rounded: Vec<f64> = values.iter().map(|v| (v * 1e9).round() / 1e9).collect();
    assert_eq!(rounded, vec![4.0, 3.0, 1.0, 0.5, 0.25, -2.0]);
}

#[test]
fn power_iteration_and_lanczos_find_a_chosen_spectrum() {
    let lambda = [10.0, -6.0, 3.0, 1.0, 0.5, 0.2, 0.1, 0.05];
    let h = with_spectrum(&lambda);
    let top = power_iteration(&h, 3, 10_000, 1e-14, 1).unwrap();
    for (p, want) in top.iter().zip([10.0, -6.0, 3.0]) {
        assert!((p.value - want).abs() < 1e-8, "{} vs {want}", p.value);
    }
    let ritz = lanczos_eigenvalues(&h, 8, 2).unwrap();
    let mut sorted = lambda.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    for (r, want) in ritz.iter().zip(&sorted) {
        assert!((r - want).abs() < 1e-9, "{r} vs {want}");
    }
    // Five steps already give the extremes well.
    let few = lanczos_eigenvalues(&h, 5, 2).unwrap();
    assert!(
        (few[0] - 10.0).abs() < 1e-3 && (few[4] + 6.0).abs() < 1e-3,
        "{few:?}"
    );
}

#[test]
fn slq_is_an_exact_quadrature_per_probe_and_estimates_normalised_traces() {
    let lambda: Vec<f64> = (1..=10).map(f64::from).collect();
    let h = with_spectrum(&lambda);
    // One probe, m = n: Σ τᵢ² θᵢᵖ = vᵀHᵖv exactly.
    let v: Vec<f64> = (0..10).map(|i| ((i * 7 + 3) % 5) as f64 - 2.0).collect();
    let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let u: Vec<f64> = v.iter().map(|x| x / nv).collect();
    let (theta, tau) = lanczos(&h, 10, &u).unwrap().eigen();
    let hu = h.hvp(&u).unwrap();
    let q1: f64 = theta.iter().zip(&tau).map(|(t, w)| w * t).sum();
    let q2: f64 = theta.iter().zip(&tau).map(|(t, w)| w * t * t).sum();
    assert!((q1 - u.iter().zip(&hu).map(|(a, b)| a * b).sum::<f64>()).abs() < 1e-10);
    assert!((q2 - hu.iter().map(|x| x * x).sum::<f64>()).abs() < 1e-9);
    // Averaged over probes: tr(H)/n = 5.5 and tr(H²)/n = 38.5 (standard errors ≈ 1%).
    let d = slq_density(&h, 10, 500, 3).unwrap();
    assert!((d.weights.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!((d.moment(1) / 5.5 - 1.0).abs() < 0.05, "{}", d.moment(1));
    assert!((d.moment(2) / 38.5 - 1.0).abs() < 0.08, "{}", d.moment(2));
    let grid: Vec<f64> = (0..1200).map(|i| -1.0 + i as f64 * 0.01).collect();
    let smooth = d.smoothed(&grid, 0.1);
    let mass: f64 = smooth.iter().sum::<f64>() * 0.01;
    assert!((mass - 1.0).abs() < 1e-3, "{mass}");
}

/// Mean squared error of a 2-4-2 tanh MLP on six fixed points, as a function of its 22 parameters.
fn mlp_loss(t: Tensor<1>) -> Tensor<1> {
    let dev = t.device();
    let f64s = |v: Vec<f64>| {
        Tensor::<2>::from_data(TensorData::new(v, [6, 2]), (&dev, burn::tensor::DType::F64))
    };
    let x = f64s(vec![
        1.0, 0.5, -0.3, 0.8, 0.2, -1.0, -0.7, -0.4, 0.9, 0.1, -0.5, 0.6,
    ]);
    let y = f64s(vec![
        1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0,
    ]);
    let w1 = t.clone().slice(0..8).reshape([2, 4]);
    let b1 = t.clone().slice(8..12).reshape([1, 4]);
    let w2 = t.clone().slice(12..20).reshape([4, 2]);
    let b2 = t.slice(20..22).reshape([1, 2]);
    let hid = (x.matmul(w1) + b1).tanh();
    let out = hid.matmul(w2) + b2;
    (out - y).square().mean().reshape([1])
}

type LossFn = fn(Tensor<1>) -> Tensor<1>;

fn mlp_hvp() -> FiniteDiffHvp<LossFn> {
    let theta: Vec<f64> = (0..22)
        .map(|i| ((i * 37 % 11) as f64 - 5.0) / 6.0)
        .collect();
    FiniteDiffHvp::new(theta, mlp_loss as LossFn)
}

#[test]
fn spectral_tools_agree_with_the_dense_hessian_of_an_mlp() {
    let h = mlp_hvp();
    let n = h.dim();
    let mut dense = h.dense().unwrap();
    // Symmetrise the central-difference matrix (its asymmetry is ~1e-9).
    for i in 0..n {
        for j in 0..i {
            let m = 0.5 * (dense[i * n + j] + dense[j * n + i]);
            dense[i * n + j] = m;
            dense[j * n + i] = m;
        }
    }
    let (values, _) = symmetric_eigen(&dense, n);
    let trace: f64 = (0..n).map(|i| dense[i * n + i]).sum();
    let largest = values
        .iter()
        .cloned()
        .fold(0.0f64, |a, v| if v.abs() > a.abs() { v } else { a });

    let top = power_iteration(&h, 1, 5000, 1e-13, 0).unwrap();
    assert!(
        (top[0].value - largest).abs() < 1e-5 * largest.abs(),
        "{} vs {largest}",
        top[0].value
    );
    let ritz = lanczos_eigenvalues(&h, n, 0).unwrap();
    for (r, want) in ritz.iter().zip(&values) {
        assert!((r - want).abs() < 1e-5 * values[0].abs(), "{r} vs {want}");
    }
    let (est, se) = hutchinson_trace(&h, 200, 0).unwrap();
    assert!(
        (est - trace).abs() < 4.0 * se + 1e-9,
        "{est} ± {se} vs {trace}"
    );
    let d = slq_density(&h, n, 200, 1).unwrap();
    let mean = trace / n as f64;
    assert!((d.moment(1) - mean).abs() < 0.1 * mean.abs() + 1e-3);
}

#[test]
fn bad_requests_are_clear_errors() {
    let h = with_spectrum(&[1.0, 2.0, 3.0]);
    for err in [
        power_iteration(&h, 4, 10, 1e-6, 0).unwrap_err(),
        power_iteration(&h, 0, 10, 1e-6, 0).unwrap_err(),
        power_iteration(&h, 1, 10, 0.0, 0).unwrap_err(),
        lanczos_eigenvalues(&h, 0, 0).unwrap_err(),
        lanczos_eigenvalues(&h, 5, 0).unwrap_err(),
        slq_density(&h, 2, 0, 0).unwrap_err(),
        hutchinson_trace(&h, 0, 0).unwrap_err(),
        lanczos(&h, 2, &[0.0; 3]).unwrap_err(),
    ] {
        assert!(matches!(err, CurvatureError::Invalid(_)), "{err}");
    }
    let msg = lanczos_eigenvalues(&h, 5, 0).unwrap_err().to_string();
    assert!(msg.contains('5') && msg.contains('3'), "{msg}");
    assert!(matches!(
        lanczos(&h, 2, &[1.0; 2]),
        Err(CurvatureError::Shape { .. })
    ));
    let nan = DenseHessian::new(vec![f64::NAN, 0.0, 0.0, 1.0], 2).unwrap();
    assert!(matches!(
        power_iteration(&nan, 1, 10, 1e-6, 0),
        Err(CurvatureError::NonFinite { .. })
    ));
    assert!(DenseHessian::new(vec![1.0; 3], 2).is_err());
}

#[test]
fn empirical_fisher_products_match_the_dense_matrix() {
    use gradlab_curvature::spectrum::EmpiricalFisher;
    let rows = vec![1.0, 2.0, 0.0, -1.0, 0.5, 3.0];
    let f = EmpiricalFisher::new(rows.clone(), 3).unwrap();
    let dense = f.dense().unwrap();
    // (1/2)(g₁g₁ᵀ + g₂g₂ᵀ).
    for i in 0..3 {
        for j in 0..3 {
            let want = 0.5 * (rows[i] * rows[j] + rows[3 + i] * rows[3 + j]);
            assert!((dense[i * 3 + j] - want).abs() < 1e-15);
        }
    }
    // Full Lanczos gives the spectrum; rank 2, so the smallest eigenvalue is 0.
    let ritz = lanczos_eigenvalues(&f, 3, 0).unwrap();
    let (values, _) = symmetric_eigen(&dense, 3);
    assert!((ritz[0] - values[0]).abs() < 1e-10 && values[2].abs() < 1e-12);
    assert!(EmpiricalFisher::new(vec![1.0; 4], 3).is_err());
    assert!(EmpiricalFisher::new(vec![f64::NAN; 3], 3).is_err());
}

#[test]
fn pyhessian_convention_matches_its_density_generate_point_by_point() {
    use gradlab_curvature::spectrum::SpectralDensity;
    // Golden values from PyHessian's own `density_generate` (amirgholami/PyHessian,
    // density_plot.py at de8cf23, numpy 2, defaults num_bins = 10000, sigma_squared = 1e-5,
    // overhead = 0.01) on two runs: eigenvalues [[-0.3, 1.2, 4.0], [-0.25, 1.0, 3.6]] with
    // weights [[0.2, 0.5, 0.3], [0.1, 0.6, 0.3]]. Our weights are divided by the number of runs.
    let d = SpectralDensity {
        nodes: vec![-0.3, 1.2, 4.0, -0.25, 1.0, 3.6],
        weights: vec![0.1, 0.25, 0.15, 0.05, 0.3, 0.15],
        run_lengths: vec![3, 3],
    };
    let (grid, dens) = d.pyhessian_density(10_000).unwrap();
    let golden = [
        (0, -0.28500000000000003, 0.5321153052817068),
        (2, -0.28418091809180923, 0.39097469660819195),
        (3134, 0.9985013501350134, 24.228857408386947),
        (3138, 1.000139513951395, 24.896564310697084),
        (3142, 1.0017776777677767, 23.959913074785725),
        (3626, 1.1999954995499547, 20.752063090523624),
        (3630, 1.2016336633663367, 20.086725034025367),
        (9486, 3.5999054905490544, 12.449883071849642),
        (9490, 3.601543654365436, 12.094193170862956),
    ];
    assert_eq!(grid.len(), 10_000);
    assert!((grid[9999] - 3.8099999999999996).abs() < 1e-12);
    for (i, x, want) in golden {
        assert!((grid[i] - x).abs() < 1e-12, "grid {i}: {} vs {x}", grid[i]);
        assert!(
            (dens[i] - want).abs() < 1e-9 * want.max(1.0),
            "density {i}: {} vs {want}",
            dens[i]
        );
    }
    assert!(d.pyhessian_density(1).is_err());
}
