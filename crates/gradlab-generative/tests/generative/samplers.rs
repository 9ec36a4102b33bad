//! Samplers against Gaussian data, whose noised marginals and probability-flow map are known in
//! closed form: every sampler's output must have the data's mean and variance (within sampling
//! error), and the ODE solvers must reproduce the exact flow map; nearly discrete data check that
//! the last step denoises instead of overshooting.

use burn::prelude::*;
use gradlab_generative::GenError;
use gradlab_generative::ode::Solver;
use gradlab_generative::points::{Rows, from_rows, moments};
use gradlab_generative::process::{Process, Sde};
use gradlab_generative::sampling::{
    Langevin, Noise, Sampler, Unobserved, euler_maruyama, grid, pf_ode, pf_ode_sample,
    predictor_corrector, prior, reverse_diffusion,
};
use gradlab_generative::score::{Counted, GaussianOracle, GmmOracle, ScoreModel};

const MEAN: [f64; 2] = [1.0, -2.0];
const VAR: [f64; 2] = [0.25, 4.0];

fn oracle(sde: Sde) -> GaussianOracle<Sde> {
    GaussianOracle::diagonal(sde, MEAN.to_vec(), VAR.to_vec()).unwrap()
}

/// Mean within 4 standard errors and variance within 8% of p_{t_ε}.
fn assert_matches(o: &GaussianOracle<Sde>, x: &Tensor<2>, what: &str) {
    let (m, v) = o.marginal(o.process().t_eps()).unwrap();
    let (got_m, cov) = moments(x).unwrap();
    let n = x.dims()[0] as f64;
    for k in 0..2 {
        let se = (v[k] / n).sqrt();
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

/// The sampler by name with `steps` steps on 4,000 points; the samples and the NFE.
fn run(name: &str, o: &GaussianOracle<Sde>, steps: usize, seed: u64) -> (Tensor<2>, usize) {
    let sde = *o.process();
    let counted = Counted::new(o);
    let mut noise = Noise::new(seed);
    let x = prior(&sde, [4000, 2], &mut noise, &Device::flex());
    let g = grid::chain(steps, sde.t_eps());
    let (m, n, u) = (&counted, &mut noise, &mut Unobserved);
    let y = match name {
        "predictor-corrector" => predictor_corrector(m, &sde, x, &g, Langevin::default(), n, u),
        "reverse diffusion" => reverse_diffusion(m, &sde, x, &g, n, u),
        _ => euler_maruyama(m, &sde, x, &g, n, u),
    }
    .unwrap();
    (y, counted.calls())
}

#[test]
fn stochastic_samplers_reach_the_data_distribution() {
    for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
        let o = oracle(sde);
        for (name, per_step) in [
            ("predictor-corrector", 2),
            ("reverse diffusion", 1),
            ("Euler–Maruyama", 1),
        ] {
            let (x, nfe) = run(name, &o, 500, 7);
            assert_eq!(nfe, 500 * per_step);
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
            let x = prior(&sde, [4000, 2], &mut Noise::new(3), &Device::flex());
            let (x, _) = pf_ode_sample(&o, &sde, x, solver, false, &mut Unobserved).unwrap();
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
        let x = from_rows(&[0.3, -1.0, 2.0, 0.5, -1.5, 3.0], 3, 2).unwrap();
        let solver = Solver::Rk45 {
            rtol: 1e-9,
            atol: 1e-9,
        };
        let (y, nfe) = pf_ode(&o, &sde, x.clone(), (t0, t1), solver, &mut Unobserved).unwrap();
        let (x, y) = (Rows::of(&x).unwrap(), Rows::of(&y).unwrap());
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

/// Images keep their shape through every sampler, and the samples have the data's moments.
#[test]
fn image_shaped_batches_keep_their_shape_through_every_sampler() {
    let sde = Sde::vp();
    let o = GaussianOracle::diagonal(sde, vec![0.5; 4], vec![0.1; 4]).unwrap();
    for s in Sampler::ALL.into_iter().filter(|s| *s != Sampler::Rf) {
        let (x, nfe) = s.draw(&o, &sde, [500, 1, 2, 2], 30, 4).unwrap();
        assert_eq!(x.dims(), [500, 1, 2, 2], "{s}");
        assert!(nfe >= 30, "{s}: {nfe}");
        let mean = gradlab_core::bridge::scalar_to_host(x.mean()).unwrap();
        assert!((mean - 0.5).abs() < 0.02, "{s}: mean {mean}");
    }
}

#[test]
fn bad_settings_and_non_finite_scores_are_errors() {
    let sde = Sde::vp();
    let o = oracle(sde);
    let x = || prior(&sde, [10, 2], &mut Noise::new(0), &Device::flex());
    let mut noise = Noise::new(0);
    assert!(reverse_diffusion(&o, &sde, x(), &[], &mut noise, &mut Unobserved).is_err());
    assert!(reverse_diffusion(&o, &sde, x(), &[0.5, 0.7], &mut noise, &mut Unobserved).is_err());
    assert!(euler_maruyama(&o, &sde, x(), &[1.5, 0.5], &mut noise, &mut Unobserved).is_err());
    let bad_snr = Langevin {
        steps: 1,
        snr: -1.0,
    };
    let g = grid::chain(10, 1e-3);
    assert!(predictor_corrector(&o, &sde, x(), &g, bad_snr, &mut noise, &mut Unobserved).is_err());
    let bad = Solver::Rk45 {
        rtol: -1.0,
        atol: 1e-5,
    };
    assert!(pf_ode_sample(&o, &sde, x(), bad, true, &mut Unobserved).is_err());
    assert!(Sampler::Pc.draw(&o, &sde, [10, 2], 0, 0).is_err());
    assert!(Sampler::Rf.draw(&o, &sde, [10, 2], 10, 0).is_err());
    // Points of the wrong dimension for the model.
    assert!(Sampler::Dpm.draw(&o, &sde, [10, 3], 10, 0).is_err());

    /// A model whose score turns NaN below t = 0.5.
    struct Broken;
    impl ScoreModel<2> for Broken {
        fn score(&self, x: Tensor<2>, t: f64) -> gradlab_generative::Result<Tensor<2>> {
            Ok(x.zeros_like() + if t < 0.5 { f64::NAN } else { 0.0 })
        }
    }
    match reverse_diffusion(&Broken, &sde, x(), &g, &mut noise, &mut Unobserved) {
        Err(GenError::NonFinite {
            what: "score",
            step,
            t,
        }) => assert!(step == 5 && t < 0.5, "{step} {t}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Sampler::Ddim.draw(&Broken, &sde, [4, 2], 10, 0),
        Err(GenError::NonFinite { .. })
    ));
}

/// Two nearly discrete modes at (±1, 0) (std 1e-3, ten times below σ(t_ε) of VP): the last step
/// of a sampler must denoise, not overshoot. Returns the RMS distance of the samples to the nearest
/// mode and the share of samples at the left mode.
fn last_step_error(sampler: &dyn Fn(&GmmOracle<Sde>) -> Tensor<2>, sde: Sde) -> (f64, f64) {
    use gradlab_data::toy2d::Gmm2;
    let gmm = Gmm2::isotropic(vec![[-1.0, 0.0], [1.0, 0.0]], 1e-3).unwrap();
    let o = GmmOracle::new(sde, gmm).unwrap();
    let x = Rows::of(&sampler(&o)).unwrap();
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
            for (sampler, bound) in [
                (Sampler::Rd, 3e-3),
                (Sampler::Em, if steps < 1000 { 0.1 } else { 3.0 * spread }),
                (Sampler::Pc, 3e-3),
            ] {
                let draw =
                    |o: &GmmOracle<Sde>| sampler.draw(o, &sde, [400, 2], steps, 3).unwrap().0;
                let (rms, left) = last_step_error(&draw, sde);
                assert!(
                    rms < bound,
                    "{sde:?} {sampler} N = {steps}: RMS distance {rms}"
                );
                assert!(
                    (left - 0.5).abs() < 0.1,
                    "{sde:?} {sampler} N = {steps}: {left} at the left mode"
                );
            }
        }
    }
}

#[test]
fn the_pf_ode_sampler_neither_overshoots_at_t_eps_nor_keeps_its_noise_when_denoising() {
    // Heun's corrector at t_ε would multiply the error there by ≈ 27 at 10 steps (the PF-ODE's
    // Lipschitz constant is ≈ 545 at t_ε); its last step is an Euler step instead.
    let sde = Sde::vp();
    let heun = |steps, denoise| {
        move |o: &GmmOracle<Sde>| {
            let x = prior(&sde, [400, 2], &mut Noise::new(3), &Device::flex());
            let solver = Solver::Heun(steps);
            pf_ode_sample(o, &sde, x, solver, denoise, &mut Unobserved)
                .unwrap()
                .0
        }
    };
    let (plain, _) = last_step_error(&heun(10, false), sde);
    // Without denoising the samples keep the noise of t_ε, σ(t_ε)·√2 ≈ 0.015 in RMS, plus the
    // solver's error.
    assert!(plain < 0.1, "Heun(10) ends {plain} from the modes");
    for steps in [10, 50] {
        let (rms, left) = last_step_error(&heun(steps, true), sde);
        assert!(
            rms < 3e-3 && (left - 0.5).abs() < 0.1,
            "Heun({steps}) + denoising: {rms}, {left}"
        );
    }
    let o = GaussianOracle::diagonal(sde, vec![0.0], vec![1.0]).unwrap();
    let (x, nfe) = Sampler::Ode.draw(&o, &sde, [10, 1], 10, 0).unwrap();
    assert_eq!((x.dims()[0], nfe), (10, 2 * 10 - 1 + 1));
    // The observer sees every step, ending at t_ε.
    let x = prior(&sde, [10, 1], &mut Noise::new(0), &Device::flex());
    let mut times = vec![];
    let mut seen = |_: usize, t: f64, _: &Tensor<2>| times.push(t);
    pf_ode_sample(&o, &sde, x, Solver::Heun(10), true, &mut seen).unwrap();
    assert_eq!(times.len(), 10);
    assert_eq!(times.last().copied(), Some(sde.t_eps()));
}
