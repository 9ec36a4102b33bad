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
