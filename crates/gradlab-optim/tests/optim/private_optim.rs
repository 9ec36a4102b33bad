//! Reference tests of DP-SGD and DIFF2: noiseless runs against gradient descent in closed form,
//! DIFF2 with T = 1 against DP-GD, the noise scale against its formula, Poisson sampling against
//! its rate, and the budget check before the first step.

use gradlab_core::problem::{PerExampleGradients, Problem, mean_rows as mean_of};
use gradlab_optim::OptimError;
use gradlab_optim::diff2::Diff2Config;
use gradlab_optim::dp_sgd::DpSgdConfig;
use gradlab_optim::privacy::PrivacyBudget;
use std::cell::Cell;

/// Logistic regression on fixed pseudo-random data: fᵢ(x) = log(1 + exp(−yᵢ aᵢᵀx)); counts calls.
struct Logistic {
    a: Vec<Vec<f64>>,
    y: Vec<f64>,
    calls: Cell<usize>,
}

impl Logistic {
    fn new(n: usize, d: usize) -> Self {
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let a: Vec<Vec<f64>> = (0..n).map(|_| (0..d).map(|_| next()).collect()).collect();
        let y = (0..n)
            .map(|_| if next() > 0.0 { 1.0 } else { -1.0 })
            .collect();
        Self {
            a,
            y,
            calls: Cell::new(0),
        }
    }
}

impl Logistic {
    fn len(&self) -> usize {
        self.a.len()
    }
    fn example_grad(&self, x: &[f64], i: usize, out: &mut [f64]) {
        self.calls.set(self.calls.get() + 1);
        let z: f64 = self.a[i].iter().zip(x).map(|(a, b)| a * b).sum::<f64>() * self.y[i];
        let s = -self.y[i] / (1.0 + z.exp());
        out.iter_mut().zip(&self.a[i]).for_each(|(o, a)| *o = s * a);
    }
    fn full_grad(&self, x: &[f64]) -> Vec<f64> {
        let all: Vec<usize> = (0..self.len()).collect();
        mean_of(&self.example_gradients(x, &all).unwrap(), self.dim())
    }
}

impl Problem for Logistic {
    fn dim(&self) -> usize {
        self.a[0].len()
    }
}

impl PerExampleGradients for Logistic {
    fn examples(&self) -> usize {
        self.len()
    }
    fn example_gradients(&self, x: &[f64], idx: &[usize]) -> gradlab_core::Result<Vec<f64>> {
        let d = self.dim();
        let mut out = vec![0.0; idx.len() * d];
        for (row, &i) in out.chunks_exact_mut(d).zip(idx) {
            self.example_grad(x, i, row);
        }
        Ok(out)
    }
}

/// Gradient descent with the exact full gradient: the noiseless, unclipped reference.
fn gd(p: &Logistic, x0: &[f64], lr: f64, steps: usize) -> Vec<f64> {
    let mut x = x0.to_vec();
    for _ in 0..steps {
        let g = p.full_grad(&x);
        x.iter_mut().zip(&g).for_each(|(a, b)| *a -= lr * b);
    }
    x
}

fn budget() -> PrivacyBudget {
    PrivacyBudget::unlimited()
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn noiseless_unclipped_runs_are_gradient_descent() {
    let p = Logistic::new(40, 5);
    let x0 = vec![0.3; 5];
    let reference = gd(&p, &x0, 0.7, 30);
    let dp = DpSgdConfig::new(0.7, 1e9, 1.0, 30)
        .with_noise_multiplier(0.0)
        .run(&p, &x0, &budget(), |_, _| {})
        .unwrap();
    assert!(max_diff(&dp.x, &reference) < 1e-12);
    // DIFF2's running sum of differences telescopes to the full gradient.
    let diff2 = Diff2Config::new(0.7, 1e9, 1e9, 7, 30)
        .with_noise(0.0, 0.0)
        .run(&p, &x0, &budget(), |_, _| {})
        .unwrap();
    assert!(
        max_diff(&diff2.x, &reference) < 1e-12,
        "{}",
        max_diff(&diff2.x, &reference)
    );
}

#[test]
fn diff2_with_period_one_is_dp_gd() {
    let p = Logistic::new(30, 4);
    let x0 = vec![0.0; 4];
    let b = PrivacyBudget::new(2.0, 1e-3).unwrap();
    let dp = DpSgdConfig::new(0.5, 0.2, 1.0, 25)
        .calibrated(&b)
        .unwrap()
        .with_seed(9);
    let diff2 = Diff2Config::new(0.5, 0.2, 0.01, 1, 25)
        .with_noise(dp.noise_multiplier, 0.0)
        .with_seed(9);
    let a = dp.run(&p, &x0, &b, |_, _| {}).unwrap();
    let c = diff2.run(&p, &x0, &b, |_, _| {}).unwrap();
    assert_eq!(a.x, c.x);
    assert!((a.epsilon - c.epsilon).abs() < 1e-12 && a.epsilon <= 2.0);
}

/// Per-example gradients at x, each clipped to norm `c` (by hand, for the references below).
fn clipped(p: &Logistic, x: &[f64], c: f64) -> Vec<Vec<f64>> {
    (0..p.len())
        .map(|i| {
            let mut g = vec![0.0; p.dim()];
            p.example_grad(x, i, &mut g);
            let n = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            g.iter().map(|v| v * (c / n).min(1.0)).collect()
        })
        .collect()
}

fn mean_rows(rows: &[Vec<f64>]) -> Vec<f64> {
    let n = rows.len() as f64;
    (0..rows[0].len())
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect()
}

#[test]
fn noiseless_diff2_matches_clipped_gd_and_step_scaled_difference_clipping_by_hand() {
    let p = Logistic::new(20, 3);
    let x0 = vec![0.5, -0.2, 0.1];
    let (lr, c1) = (0.8, 0.3);
    // T = 1, no noise: every round is clipped full-batch GD, computed here by hand.
    let mut x = x0.clone();
    for _ in 0..6 {
        let g = mean_rows(&clipped(&p, &x, c1));
        x.iter_mut().zip(&g).for_each(|(a, b)| *a -= lr * b);
    }
    let run = Diff2Config::new(lr, c1, 1.0, 1, 6)
        .with_noise(0.0, 0.0)
        .run(&p, &x0, &budget(), |_, _| {})
        .unwrap();
    assert!(max_diff(&run.x, &x) < 1e-14, "{:?} vs {x:?}", run.x);
    // T = 2: round 1 clips each difference at C₂·‖x₁ − x₀‖ (the paper's rule), here small
    // enough to bind; with a fixed C₂ the same run clips at C₂.
    let c2 = 0.05;
    let v0 = mean_rows(&clipped(&p, &x0, c1));
    let x1: Vec<f64> = x0.iter().zip(&v0).map(|(a, b)| a - lr * b).collect();
    let dist = x1
        .iter()
        .zip(&x0)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    for (mode, bound) in [
        (gradlab_optim::diff2::DiffClip::StepScaled, c2 * dist),
        (gradlab_optim::diff2::DiffClip::Fixed, c2),
    ] {
        let diffs: Vec<Vec<f64>> = (0..p.len())
            .map(|i| {
                let (mut a, mut b) = (vec![0.0; 3], vec![0.0; 3]);
                p.example_grad(&x1, i, &mut a);
                p.example_grad(&x0, i, &mut b);
                let d: Vec<f64> = a.iter().zip(&b).map(|(u, v)| u - v).collect();
                let n = d.iter().map(|v| v * v).sum::<f64>().sqrt();
                d.iter().map(|v| v * (bound / n).min(1.0)).collect()
            })
            .collect();
        let v1: Vec<f64> = v0
            .iter()
            .zip(mean_rows(&diffs))
            .map(|(a, b)| a + b)
            .collect();
        let x2: Vec<f64> = x1.iter().zip(&v1).map(|(a, b)| a - lr * b).collect();
        let run = Diff2Config::new(lr, c1, c2, 2, 2)
            .with_diff_clip(mode)
            .with_noise(0.0, 0.0)
            .run(&p, &x0, &budget(), |_, _| {})
            .unwrap();
        assert!(
            max_diff(&run.x, &x2) < 1e-14,
            "{mode:?}: {:?} vs {x2:?}",
            run.x
        );
    }
}

#[test]
fn clipping_bounds_each_example() {
    // One step from x = 0: every per-example gradient is −yᵢaᵢ/2; clipped at C the step is at
    // most ηC in norm, and equals the mean of the clipped rows.
    let p = Logistic::new(20, 3);
    let c = 0.05;
    let run = DpSgdConfig::new(1.0, c, 1.0, 1)
        .with_noise_multiplier(0.0)
        .run(&p, &[0.0; 3], &budget(), |_, _| {})
        .unwrap();
    let mut expect = [0.0; 3];
    for i in 0..20 {
        let mut g = [0.0; 3];
        p.example_grad(&[0.0; 3], i, &mut g);
        let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
        let s = (c / norm).min(1.0);
        for j in 0..3 {
            expect[j] -= s * g[j] / 20.0;
        }
    }
    assert!(max_diff(&run.x, &expect) < 1e-15);
}

/// fᵢ = 0: a step is pure noise.
struct Zero(usize, usize);
impl Problem for Zero {
    fn dim(&self) -> usize {
        self.1
    }
}
impl PerExampleGradients for Zero {
    fn examples(&self) -> usize {
        self.0
    }
    fn example_gradients(&self, _: &[f64], idx: &[usize]) -> gradlab_core::Result<Vec<f64>> {
        Ok(vec![0.0; idx.len() * self.1])
    }
}

#[test]
fn noise_has_the_stated_scale() {
    // DP-SGD: std of a coordinate's step = η σ C / (q n); DIFF2's restart round: η σ₁ C₁ / n.
    let (n, d) = (50, 20_000);
    let std = |x: &[f64]| (x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64).sqrt();
    let dp = DpSgdConfig::new(2.0, 0.5, 0.5, 1)
        .with_noise_multiplier(3.0)
        .run(&Zero(n, d), &vec![0.0; d], &budget(), |_, _| {})
        .unwrap();
    let want = 2.0 * 3.0 * 0.5 / (0.5 * n as f64);
    assert!(
        (std(&dp.x) / want - 1.0).abs() < 0.03,
        "{} vs {want}",
        std(&dp.x)
    );
    let diff2 = Diff2Config::new(2.0, 0.5, 0.1, 10, 1)
        .with_noise(3.0, 1.0)
        .run(&Zero(n, d), &vec![0.0; d], &budget(), |_, _| {})
        .unwrap();
    let want = 2.0 * 3.0 * 0.5 / n as f64;
    assert!((std(&diff2.x) / want - 1.0).abs() < 0.03);
}

#[test]
fn poisson_sampling_touches_a_q_fraction() {
    let p = Logistic::new(200, 2);
    DpSgdConfig::new(0.1, 1.0, 0.25, 40)
        .with_noise_multiplier(1.0)
        .run(&p, &[0.0; 2], &budget(), |_, _| {})
        .unwrap();
    let frac = p.calls.get() as f64 / (200.0 * 40.0);
    // 8000 Bernoulli(0.25) draws: std of the fraction ≈ 0.005.
    assert!((frac - 0.25).abs() < 0.02, "{frac}");
}

#[test]
fn same_seed_same_run() {
    let p = Logistic::new(30, 3);
    let cfg = Diff2Config::new(0.3, 1.0, 0.1, 4, 12).with_seed(5);
    let a = cfg.run(&p, &[0.0; 3], &budget(), |_, _| {}).unwrap();
    let b = cfg.run(&p, &[0.0; 3], &budget(), |_, _| {}).unwrap();
    assert_eq!(a, b);
    let c = cfg
        .with_seed(6)
        .run(&p, &[0.0; 3], &budget(), |_, _| {})
        .unwrap();
    assert_ne!(a.x, c.x);
}

#[test]
fn calibrated_runs_spend_the_budget_and_overspending_is_refused_before_the_start() {
    let p = Logistic::new(100, 3);
    let b = PrivacyBudget::new(1.0, 1e-2).unwrap();
    let dp = DpSgdConfig::new(0.5, 1.0, 0.1, 200).calibrated(&b).unwrap();
    let eps = dp.run(&p, &[0.0; 3], &b, |_, _| {}).unwrap().epsilon;
    assert!(eps <= 1.0 && eps > 0.99, "{eps}");
    let diff2 = Diff2Config::new(0.5, 1.0, 0.1, 10, 100)
        .calibrated(&b, 0.3)
        .unwrap();
    let eps = diff2.run(&p, &[0.0; 3], &b, |_, _| {}).unwrap().epsilon;
    assert!((eps - 1.0).abs() < 1e-3, "{eps}");

    p.calls.set(0);
    let greedy = dp.with_noise_multiplier(dp.noise_multiplier * 0.9);
    match greedy.run(&p, &[0.0; 3], &b, |_, _| {}) {
        Err(OptimError::OverBudget { spent, .. }) => assert!(spent > 1.0),
        other => panic!("expected OverBudget, got {other:?}"),
    }
    let greedy = diff2.with_noise(diff2.noise_grad, diff2.noise_diff * 0.9);
    assert!(matches!(
        greedy.run(&p, &[0.0; 3], &b, |_, _| {}),
        Err(OptimError::OverBudget { .. })
    ));
    assert_eq!(
        p.calls.get(),
        0,
        "no gradient may be touched before the budget check"
    );
}

#[test]
fn invalid_configurations_are_errors() {
    let p = Logistic::new(10, 2);
    let b = budget();
    let x0 = [0.0; 2];
    let bad_dp = [
        DpSgdConfig::new(0.0, 1.0, 1.0, 1),
        DpSgdConfig::new(0.1, 0.0, 1.0, 1),
        DpSgdConfig::new(0.1, 1.0, 0.0, 1),
        DpSgdConfig::new(0.1, 1.0, 1.5, 1),
        DpSgdConfig::new(0.1, 1.0, 1.0, 1).with_noise_multiplier(-1.0),
    ];
    for cfg in bad_dp {
        assert!(cfg.run(&p, &x0, &b, |_, _| {}).is_err(), "{cfg:?}");
    }
    let bad_diff2 = [
        Diff2Config::new(0.1, 1.0, 0.0, 1, 1),
        Diff2Config::new(0.1, 1.0, 1.0, 0, 1),
        Diff2Config::new(0.1, 1.0, 1.0, 1, 1).with_noise(1.0, -0.5),
    ];
    for cfg in bad_diff2 {
        assert!(cfg.run(&p, &x0, &b, |_, _| {}).is_err(), "{cfg:?}");
    }
    let ok = Diff2Config::new(0.1, 1.0, 1.0, 2, 4);
    assert!(ok.calibrated(&b, 0.0).is_err() && ok.calibrated(&b, 1.0).is_err());
    assert!(ok.run(&p, &[0.0; 3], &b, |_, _| {}).is_err());
    assert!(ok.run(&p, &[f64::NAN, 0.0], &b, |_, _| {}).is_err());
    assert!(PrivacyBudget::new(1.0, 0.0).is_err());
    assert!(PrivacyBudget::new(1.0, 1.0).is_err());
    assert!(PrivacyBudget::new(0.0, 1e-5).is_err());
    let nan = Logistic {
        a: vec![vec![f64::NAN, 1.0]; 3],
        y: vec![1.0; 3],
        calls: Cell::new(0),
    };
    assert!(matches!(
        ok.run(&nan, &x0, &b, |_, _| {}),
        Err(OptimError::NonFinite { step: 1, .. })
    ));
}
