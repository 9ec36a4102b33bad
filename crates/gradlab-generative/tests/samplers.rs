//! Samplers against Gaussian data, whose noised marginals and probability-flow map are known in
//! closed form: every sampler's output must have the data's mean and variance (within sampling
//! error), and the ODE solvers must reproduce the exact flow map.

use gradlab_generative::ode::Solver;
use gradlab_generative::sampler::{PcConfig, Predictor, ode_map, ode_sample, pc_sample};
use gradlab_generative::score::GaussianOracle;
use gradlab_generative::sde::Sde;
use gradlab_generative::{Batch, GenError};

const MEAN: [f64; 2] = [1.0, -2.0];
const VAR: [f64; 2] = [0.25, 4.0];

fn oracle(sde: Sde) -> GaussianOracle {
    GaussianOracle::diagonal(sde, MEAN.to_vec(), VAR.to_vec()).unwrap()
}

/// Mean within 4 standard errors and variance within 8% of p_{t_ε}.
fn assert_matches(o: &GaussianOracle, x: &Batch, what: &str) {
    let (m, v) = o.marginal(o_t_eps(o)).unwrap();
    let (got_m, cov) = (x.mean(), x.covariance());
    for k in 0..2 {
        let se = (v[k] / x.n as f64).sqrt();
        assert!(
            (got_m[k] - m[k]).abs() < 4.0 * se,
            "{what}: mean {k} {} vs {}",
            got_m[k],
            m[k]
        );
        let rel = cov[k * 2 + k] / v[k] - 1.0;
        assert!(
            rel.abs() < 0.08,
            "{what}: variance {k} {} vs {} ({rel:+.3})",
            cov[k * 2 + k],
            v[k]
        );
    }
}

fn o_t_eps(o: &GaussianOracle) -> f64 {
    use gradlab_generative::score::ScoreModel;
    o.sde().t_eps()
}

#[test]
fn stochastic_samplers_reach_the_data_distribution() {
    for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
        let o = oracle(sde);
        for (name, cfg) in [
            ("predictor-corrector", PcConfig::new(500)),
            (
                "reverse diffusion",
                PcConfig::new(500).with_corrector_steps(0),
            ),
            (
                "Euler–Maruyama",
                PcConfig::new(500)
                    .with_predictor(Predictor::EulerMaruyama)
                    .with_corrector_steps(0),
            ),
        ] {
            let (x, nfe) = pc_sample(&o, 4000, &cfg, 7).unwrap();
            assert_eq!(nfe, 500 * (1 + cfg.corrector_steps));
            assert_matches(&o, &x, &format!("{sde:?} {name}"));
        }
    }
}

#[test]
fn ode_samplers_reach_the_data_distribution() {
    for sde in [Sde::vp(), Sde::ve()] {
        let o = oracle(sde);
        for solver in [
            Solver::Heun(200),
            Solver::Rk45 {
                rtol: 1e-5,
                atol: 1e-5,
            },
        ] {
            let (x, _) = ode_sample(&o, 4000, solver, 3).unwrap();
            assert_matches(&o, &x, &format!("{sde:?} {solver:?}"));
        }
    }
}

/// The PF-ODE of Gaussian data is affine per coordinate:
/// x_t = α_t μ + √((α_t² v + σ_t²)/(α_T² v + σ_T²)) (x_T − α_T μ).
#[test]
fn rk45_reproduces_the_closed_form_flow_map() {
    for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
        let o = oracle(sde);
        let (t0, t1) = (1.0, 0.05);
        let x = Batch::new(3, 2, vec![0.3, -1.0, 2.0, 0.5, -1.5, 3.0]).unwrap();
        let (y, nfe) = ode_map(
            &o,
            x.clone(),
            t0,
            t1,
            Solver::Rk45 {
                rtol: 1e-9,
                atol: 1e-9,
            },
        )
        .unwrap();
        let (a0, s0) = sde.marginal(t0).unwrap();
        let (a1, s1) = sde.marginal(t1).unwrap();
        for i in 0..3 {
            for k in 0..2 {
                let ratio = ((a1 * a1 * VAR[k] + s1 * s1) / (a0 * a0 * VAR[k] + s0 * s0)).sqrt();
                let want = a1 * MEAN[k] + ratio * (x.row(i)[k] - a0 * MEAN[k]);
                let got = y.row(i)[k];
                assert!(
                    (got - want).abs() < 1e-6 * want.abs().max(1.0),
                    "{sde:?}: {got} vs {want} ({nfe} NFE)"
                );
            }
        }
    }
}

#[test]
fn bad_settings_and_non_finite_scores_are_errors() {
    let o = oracle(Sde::vp());
    assert!(pc_sample(&o, 10, &PcConfig::new(0), 0).is_err());
    let mut cfg = PcConfig::new(10);
    cfg.t_eps = Some(0.0);
    assert!(pc_sample(&o, 10, &cfg, 0).is_err());
    cfg.t_eps = Some(1e-3);
    cfg.snr = -1.0;
    assert!(pc_sample(&o, 10, &cfg, 0).is_err());
    assert!(
        ode_sample(
            &o,
            10,
            Solver::Rk45 {
                rtol: -1.0,
                atol: 1e-5
            },
            0
        )
        .is_err()
    );

    /// A model whose score turns NaN below t = 0.5.
    struct Broken;
    impl gradlab_generative::score::ScoreModel for Broken {
        fn dim(&self) -> usize {
            1
        }
        fn sde(&self) -> Sde {
            Sde::vp()
        }
        fn score(&self, x: &Batch, t: f64) -> gradlab_generative::Result<Batch> {
            let v = if t < 0.5 { f64::NAN } else { 0.0 };
            Ok(Batch {
                data: vec![v; x.data.len()],
                ..x.clone()
            })
        }
    }
    match pc_sample(&Broken, 4, &PcConfig::new(10).with_corrector_steps(0), 0) {
        Err(GenError::NonFinite {
            what: "score",
            step,
            t,
        }) => assert!(step == 5 && t < 0.5, "{step} {t}"),
        other => panic!("{other:?}"),
    }
}

/// Two nearly discrete modes at (±1, 0) (std 1e-3, ten times below σ(t_ε) of VP): the last step
/// of a sampler must denoise, not overshoot. Returns the RMS distance of the samples to the nearest
/// mode and the share of samples at the left mode.
fn last_step_error(
    sampler: &dyn Fn(&gradlab_generative::score::GmmOracle) -> Batch,
    sde: Sde,
) -> (f64, f64) {
    use gradlab_data::toy2d::Gmm2;
    let gmm = Gmm2::isotropic(vec![[-1.0, 0.0], [1.0, 0.0]], 1e-3).unwrap();
    let o = gradlab_generative::score::GmmOracle::new(sde, gmm).unwrap();
    let x = sampler(&o);
    let (mut sq, mut left) = (0.0, 0usize);
    for i in 0..x.n {
        let r = x.row(i);
        let m = if r[0] < 0.0 { -1.0 } else { 1.0 };
        left += usize::from(r[0] < 0.0);
        sq += (r[0] - m).powi(2) + r[1].powi(2);
    }
    ((sq / x.n as f64).sqrt(), left as f64 / x.n as f64)
}

#[test]
fn the_last_step_denoises_nearly_discrete_data_at_any_number_of_steps() {
    // With the exact score, reverse diffusion (with or without the corrector) ends within the
    // data's spread (RMS distance to the nearest mode below 3 stds) at N = 20, 50 and 1000. A last
    // step that moves by more than σ²(t_ε)·s multiplies the remaining noise (σ(t_ε) ≈ 0.01 for
    // VP) by 1 − G²/σ²(t_ε): −267 at N = 20 with the earlier rule, −18 at N = 50 with the
    // official one. Euler–Maruyama's last step (g²(t_ε)·t_ε ≈ 1.08 σ²(t_ε) for VP) cannot fully
    // remove the large noise its coarse earlier steps leave at N = 20, but must not amplify it:
    // its bound is a twentieth of the distance between the modes (with dt = the previous spacing,
    // as before, the last step multiplied that noise by about −56).
    // (The VE SDE's marginal at t = 0 keeps σ_min = 0.01 of noise, which Euler–Maruyama's
    // samples carry; the reverse-diffusion chain ends on clean data, as the official one. Sub-VP
    // is left out: its σ(t_ε) = 1.1e-4 is below these data's spread, so they are not nearly
    // discrete at its last step, and at N = 20 the reverse-diffusion predictor's noise G·z of the
    // step before, which it cannot remove, is what remains.)
    for sde in [Sde::vp(), Sde::ve()] {
        let sigma0 = sde.marginal(0.0).unwrap().1;
        let spread = (2.0 * (1e-6 + sigma0 * sigma0)).sqrt();
        for steps in [20, 50, 1000] {
            for (name, predictor, corrector, bound) in [
                ("rd", Predictor::ReverseDiffusion, 0, 3e-3),
                (
                    "em",
                    Predictor::EulerMaruyama,
                    0,
                    if steps < 1000 { 0.1 } else { 3.0 * spread },
                ),
                ("pc", Predictor::ReverseDiffusion, 1, 3e-3),
            ] {
                let cfg = PcConfig::new(steps)
                    .with_predictor(predictor)
                    .with_corrector_steps(corrector);
                let (rms, left) = last_step_error(&|o| pc_sample(o, 400, &cfg, 3).unwrap().0, sde);
                assert!(
                    rms < bound,
                    "{sde:?} {name} N = {steps}: RMS distance {rms}"
                );
                assert!(
                    (left - 0.5).abs() < 0.1,
                    "{sde:?} {name} N = {steps}: {left} at the left mode"
                );
            }
        }
    }
}

#[test]
fn the_pf_ode_sampler_neither_overshoots_at_t_eps_nor_keeps_its_noise_when_denoising() {
    use gradlab_generative::sampler::{OdeConfig, ode_sample_with};
    // Heun's corrector at t_ε would multiply the error there by ≈ 27 at 10 steps (the PF-ODE's
    // Lipschitz constant is ≈ 545 at t_ε); its last step is an Euler step instead.
    let heun = |steps, denoise| {
        let cfg = OdeConfig::new(Solver::Heun(steps)).with_denoise(denoise);
        move |o: &gradlab_generative::score::GmmOracle| ode_sample_with(o, 400, &cfg, 3).unwrap().0
    };
    let (plain, _) = last_step_error(&heun(10, false), Sde::vp());
    // Without denoising the samples keep the noise of t_ε, σ(t_ε)·√2 ≈ 0.015 in RMS, plus the
    // solver's error.
    assert!(plain < 0.1, "Heun(10) ends {plain} from the modes");
    for steps in [10, 50] {
        let (rms, left) = last_step_error(&heun(steps, true), Sde::vp());
        assert!(
            rms < 3e-3 && (left - 0.5).abs() < 0.1,
            "Heun({steps}) + denoising: {rms}, {left}"
        );
    }
    let (x, nfe) = ode_sample_with(
        &GaussianOracle::diagonal(Sde::vp(), vec![0.0], vec![1.0]).unwrap(),
        10,
        &OdeConfig::new(Solver::Heun(10)).with_denoise(true),
        0,
    )
    .unwrap();
    assert_eq!((x.n, nfe), (10, 2 * 10 - 1 + 1));
}
