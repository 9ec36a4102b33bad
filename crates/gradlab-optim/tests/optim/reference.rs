//! Reference tests of every optimizer.
//!
//! Each optimizer runs in f64 on a small vector with a fixed, varied gradient sequence and is
//! compared with a scalar transcription of the algorithm box in the PyTorch documentation
//! (torch.optim.*, version 2.x), written independently of the tensor code; first steps are also
//! checked against closed forms. diffGrad and Adam are additionally checked against golden values
//! produced by running the official diffGrad notebook's numpy optimizers (see `diffgrad_golden`).

use gradlab_optim::adadelta::AdadeltaConfig;
use gradlab_optim::adagrad::AdagradConfig;
use gradlab_optim::adam::AdamConfig;
use gradlab_optim::diffgrad::DiffGradConfig;
use gradlab_optim::point::{PointOptimizer, PointStep};
use gradlab_optim::rmsprop::RmspropConfig;
use gradlab_optim::sgd::SgdConfig;
use gradlab_optim::spec::{OPTIMIZERS, OptimizerSpec};

const X0: [f64; 3] = [0.5, -1.5, 2.0];

/// Gradient of step t (0-based) at point x: a quadratic pull plus a time-varying term, so that
/// successive gradients differ (diffGrad's ξ and AMSGrad's max both matter).
fn grad(t: usize, x: &[f64]) -> Vec<f64> {
    x.iter()
        .enumerate()
        .map(|(i, v)| (i as f64 + 1.0) * v + ((t * 3 + i) as f64).sin())
        .collect()
}

fn run(opt: &mut dyn PointStep, lr: f64, steps: usize) -> Vec<f64> {
    let mut x = X0.to_vec();
    for t in 0..steps {
        x = opt.step(lr, &grad(t, &x)).unwrap();
    }
    x
}

/// Run a per-coordinate scalar reference; `update(t, x, g, state) -> x'`.
fn run_ref<S: Default + Clone>(
    steps: usize,
    mut update: impl FnMut(usize, f64, f64, &mut S) -> f64,
) -> Vec<f64> {
    let mut x = X0.to_vec();
    let mut st = vec![S::default(); X0.len()];
    for t in 0..steps {
        let g = grad(t, &x);
        for i in 0..x.len() {
            x[i] = update(t + 1, x[i], g[i], &mut st[i]);
        }
    }
    x
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_momentum_nesterov_weight_decay() {
    for (mom, damp, nesterov, wd) in [
        (0.0, 0.0, false, 0.0),
        (0.9, 0.0, false, 0.01),
        (0.9, 0.1, false, 0.0),
        (0.8, 0.0, true, 0.05),
    ] {
        let cfg = SgdConfig::new()
            .with_momentum(mom)
            .with_dampening(damp)
            .with_nesterov(nesterov)
            .with_weight_decay(wd);
        let got = run(
            &mut PointOptimizer::new(cfg.build().unwrap(), &X0),
            0.05,
            20,
        );
        let want = run_ref::<Option<f64>>(20, |_, x, g, b| {
            let mut g = g + wd * x;
            if mom != 0.0 {
                let nb = match *b {
                    None => g,
                    Some(b) => mom * b + (1.0 - damp) * g,
                };
                *b = Some(nb);
                g = if nesterov { g + mom * nb } else { nb };
            }
            x - 0.05 * g
        });
        close(&got, &want, 1e-12);
    }
}

#[derive(Default, Clone)]
struct AdamRef {
    m: f64,
    v: f64,
    vmax: f64,
}

#[test]
fn adam_adamw_amsgrad_match_pytorch_algorithm() {
    for (wd, decoupled, ams) in [
        (0.0, false, false),
        (0.1, false, false),
        (0.1, true, false),
        (0.0, false, true),
        (0.05, true, true),
    ] {
        let cfg = AdamConfig::new()
            .with_weight_decay(wd)
            .with_decoupled(decoupled)
            .with_amsgrad(ams);
        let lr = 0.01;
        let got = run(&mut PointOptimizer::new(cfg.build().unwrap(), &X0), lr, 30);
        let want = run_ref::<AdamRef>(30, |t, x, g, s| {
            let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
            let mut x = x;
            let mut g = g;
            if decoupled {
                x *= 1.0 - lr * wd;
            } else {
                g += wd * x;
            }
            s.m = b1 * s.m + (1.0 - b1) * g;
            s.v = b2 * s.v + (1.0 - b2) * g * g;
            let bc1 = 1.0 - b1.powi(t as i32);
            let bc2 = 1.0 - b2.powi(t as i32);
            let denom = if ams {
                s.vmax = s.vmax.max(s.v);
                s.vmax.sqrt() / bc2.sqrt() + eps
            } else {
                s.v.sqrt() / bc2.sqrt() + eps
            };
            x - lr / bc1 * s.m / denom
        });
        close(&got, &want, 1e-10);
    }
    // Closed form: Adam's first step moves each coordinate by lr·sign(g) (up to ε).
    let mut opt = PointOptimizer::new(AdamConfig::new().build().unwrap(), &X0);
    let g = grad(0, &X0);
    let x1 = opt.step(0.1, &g).unwrap();
    for i in 0..3 {
        assert!((X0[i] - x1[i] - 0.1 * g[i].signum()).abs() < 1e-7);
    }
}

#[test]
fn adagrad_matches_pytorch_algorithm() {
    for (decay, wd, init) in [(0.0, 0.0, 0.0), (0.01, 0.1, 0.1)] {
        let cfg = AdagradConfig::new()
            .with_lr_decay(decay)
            .with_weight_decay(wd)
            .with_initial_accumulator_value(init);
        let got = run(&mut PointOptimizer::new(cfg.build().unwrap(), &X0), 0.1, 25);
        let want = run_ref::<Option<f64>>(25, |t, x, g, s| {
            let g = g + wd * x;
            let clr = 0.1 / (1.0 + (t - 1) as f64 * decay);
            let sum = s.unwrap_or(init) + g * g;
            *s = Some(sum);
            x - clr * g / (sum.sqrt() + 1e-10)
        });
        close(&got, &want, 1e-12);
    }
}

#[test]
fn adadelta_matches_pytorch_algorithm() {
    let got = run(
        &mut PointOptimizer::new(
            AdadeltaConfig::new()
                .with_weight_decay(0.01)
                .build()
                .unwrap(),
            &X0,
        ),
        1.0,
        25,
    );
    let want = run_ref::<(f64, f64)>(25, |_, x, g, (u, a)| {
        let g = g + 0.01 * x;
        *u = 0.9 * *u + 0.1 * g * g;
        let d = (*a + 1e-6).sqrt() / (*u + 1e-6).sqrt() * g;
        *a = 0.9 * *a + 0.1 * d * d;
        x - d
    });
    close(&got, &want, 1e-12);
}

#[test]
fn rmsprop_matches_pytorch_algorithm() {
    for (mom, centered) in [(0.0, false), (0.9, false), (0.5, true)] {
        let cfg = RmspropConfig::new()
            .with_momentum(mom)
            .with_centered(centered);
        let got = run(
            &mut PointOptimizer::new(cfg.build().unwrap(), &X0),
            0.01,
            25,
        );
        let want = run_ref::<(f64, f64, f64)>(25, |_, x, g, (u, ga, b)| {
            *u = 0.99 * *u + 0.01 * g * g;
            let avg = if centered {
                *ga = 0.99 * *ga + 0.01 * g;
                (*u - *ga * *ga).sqrt() + 1e-8
            } else {
                u.sqrt() + 1e-8
            };
            if mom > 0.0 {
                *b = mom * *b + g / avg;
                x - 0.01 * *b
            } else {
                x - 0.01 * g / avg
            }
        });
        close(&got, &want, 1e-10);
    }
}

#[test]
fn diffgrad_matches_official_v2_update() {
    // Transcription of diffGrad_v2.py's step (eps on the uncorrected √v, step size with √bc2/bc1).
    let cfg = DiffGradConfig::new().with_weight_decay(0.01);
    let got = run(
        &mut PointOptimizer::new(cfg.build().unwrap(), &X0),
        0.01,
        30,
    );
    let want = run_ref::<(f64, f64, f64)>(30, |t, x, g, (m, v, prev)| {
        let g = g + 0.01 * x;
        *m = 0.9 * *m + 0.1 * g;
        *v = 0.999 * *v + 0.001 * g * g;
        let denom = v.sqrt() + 1e-8;
        let dfc = 1.0 / (1.0 + (-(*prev - g).abs()).exp());
        *prev = g;
        let step = 0.01 * (1.0 - 0.999f64.powi(t as i32)).sqrt() / (1.0 - 0.9f64.powi(t as i32));
        x - step * *m * dfc / denom
    });
    close(&got, &want, 1e-10);
}

/// Golden values: the official `diffGrad_analytical.ipynb` (shivram1987/diffGrad) run unmodified
/// with numpy — its `Adam` and `diffGrad` classes, its F1 gradient (2x+0.6 for x ≤ 0, else 2x−0.4),
/// x0 = −1, lr 0.1, β1 0.95, β2 0.999, eps 1e-8 — printing x after iterations 1, 2, 3, 10, 50, 100
/// and 299. The notebook's diffGrad adds ε after the bias-corrected √v̂ and its Adam inside the
/// square root; with ε = 1e-8 both differ from the PyTorch placement by far less than the tolerance.
#[test]
fn diffgrad_golden() {
    let f1 = |x: f64| {
        if x <= 0.0 {
            2.0 * x + 0.6
        } else {
            2.0 * x - 0.4
        }
    };
    let golden_diffgrad = [
        (1, -0.9197816117171304),
        (2, -0.865961128785351),
        (3, -0.813661019214464),
        (10, -0.4640235512134148),
        (50, -0.3776543742592756),
        (100, -0.29538308428558174),
        (299, -0.30007116628983616),
    ];
    let golden_adam = [
        (1, -0.9000000002551021),
        (2, -0.8004874028153037),
        (3, -0.7019480273275297),
        (10, -0.12185208401469051),
        (50, 0.11866199132198992),
    ];
    for (cfg, golden) in [
        (
            OptimizerSpec::parse("diffgrad").unwrap(),
            &golden_diffgrad[..],
        ),
        (OptimizerSpec::parse("adam").unwrap(), &golden_adam[..]),
    ] {
        let mut spec = cfg.with_lr(0.1);
        spec.beta1 = Some(0.95);
        spec.beta2 = Some(0.999);
        let mut opt = spec.point_optimizer(&[-1.0]).unwrap();
        let mut x = -1.0;
        for it in 1..=299 {
            x = opt.step(0.1, &[f1(x)]).unwrap()[0];
            if let Some((_, want)) = golden.iter().find(|(i, _)| *i == it) {
                assert!(
                    (x - want).abs() < 1e-6,
                    "{} at iteration {it}: {x} vs {want}",
                    spec.name()
                );
            }
        }
    }
}

#[test]
fn diffgrad_friction_is_really_applied() {
    // With a constant gradient ξ stays σ(0) = ½ after the first step; with an alternating one it is
    // larger. The aliasing bug of the original diffGrad.py would make both halves equal.
    let opt = DiffGradConfig::new().build().unwrap();
    let mut a = PointOptimizer::new(opt.clone(), &[0.0]);
    let mut b = PointOptimizer::new(opt, &[0.0]);
    a.step(0.1, &[1.0]).unwrap();
    b.step(0.1, &[1.0]).unwrap();
    let xa = a.step(0.1, &[1.0]).unwrap()[0];
    let xb = b.step(0.1, &[3.0]).unwrap()[0];
    // Step 2 of b uses ξ = σ(2), of a ξ = σ(0) = 0.5; their m̂/√v̂ ratios are computable in closed form.
    let (b1, b2) = (0.9f64, 0.999f64);
    let ratio = |g1: f64, g2: f64| {
        let m = b1 * (1.0 - b1) * g1 + (1.0 - b1) * g2;
        let v = b2 * (1.0 - b2) * g1 * g1 + (1.0 - b2) * g2 * g2;
        ((1.0 - b2 * b2).sqrt() / (1.0 - b1 * b1)) * m / (v.sqrt() + 1e-8)
    };
    let x1 = -0.1 / (1.0 + (-1.0f64).exp()) * 0.001f64.sqrt() / (0.001f64.sqrt() + 1e-8);
    assert!((xa - (x1 - 0.1 * 0.5 * ratio(1.0, 1.0))).abs() < 1e-9);
    assert!((xb - (x1 - 0.1 / (1.0 + (-2.0f64).exp()) * ratio(1.0, 3.0))).abs() < 1e-9);
}

#[test]
fn invalid_hyperparameters_are_rejected_with_clear_errors() {
    let e = OptimizerSpec::parse("adam")
        .unwrap()
        .with_lr(0.0)
        .module_optimizer()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("lr") && e.contains("> 0"), "{e}");
    assert!(AdamConfig::new().with_beta2(1.0).build().is_err());
    assert!(AdamConfig::new().with_eps(0.0).build().is_err());
    assert!(AdamConfig::new().with_beta1(f64::NAN).build().is_err());
    assert!(DiffGradConfig::new().with_beta1(-0.1).build().is_err());
    assert!(SgdConfig::new().with_nesterov(true).build().is_err());
    assert!(RmspropConfig::new().with_eps(-1.0).build().is_err());
    assert!(
        AdagradConfig::new()
            .with_weight_decay(-1.0)
            .build()
            .is_err()
    );
    assert!(AdadeltaConfig::new().with_rho(1.2).build().is_err());
    assert!(
        OptimizerSpec::parse("lion")
            .unwrap_err()
            .to_string()
            .contains("diffgrad")
    );
    for (name, _) in OPTIMIZERS {
        assert!(
            OptimizerSpec::parse(name)
                .unwrap()
                .module_optimizer()
                .is_ok()
        );
    }
}

#[test]
fn adam_clip_matches_the_authors_multi_tensor_update() {
    use gradlab_optim::adam_clip::AdamClipConfig;
    // Transcription of `_multi_tensor_adam` in adam_clip.py (weight decay 0): τ is the ⌊N·c⌋-th
    // largest |g| over all coordinates; m takes clip(g, ±τ), v takes g.
    let (measure, opt) = AdamClipConfig::new().with_fraction(0.34).build().unwrap();
    let mut p = PointOptimizer::new(opt, &X0).with_transform(measure);
    let got = run(&mut p, 0.01, 30);
    let mut x = X0.to_vec();
    let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
    for t in 0..30 {
        let g = grad(t, &x);
        let mut mags: Vec<f64> = g.iter().map(|a| a.abs()).collect();
        mags.sort_by(|a, b| b.total_cmp(a));
        let tau = mags[(3.0f64 * 0.34).floor() as usize];
        let step = (t + 1) as i32;
        for i in 0..3 {
            m[i] = 0.9 * m[i] + 0.1 * g[i].clamp(-tau, tau);
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            let denom = v[i].sqrt() / (1.0 - 0.999f64.powi(step)).sqrt() + 1e-8;
            x[i] -= 0.01 / (1.0 - 0.9f64.powi(step)) * m[i] / denom;
        }
    }
    close(&got, &x, 1e-10);
    // With c = 1 every coordinate's momentum input is clipped to the smallest |g|; it differs from Adam.
    let (measure, opt) = AdamClipConfig::new().with_fraction(1.0).build().unwrap();
    let clipped = run(
        &mut PointOptimizer::new(opt, &X0).with_transform(measure),
        0.01,
        30,
    );
    let adam = run(
        &mut PointOptimizer::new(AdamConfig::new().build().unwrap(), &X0),
        0.01,
        30,
    );
    assert!(clipped.iter().zip(&adam).any(|(a, b)| (a - b).abs() > 1e-6));
}
