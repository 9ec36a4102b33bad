//! The tensor samplers against the host samplers (same seed, exact Gaussian scores: the same
//! numbers), and the two capabilities the tensor path exists for: ∇ₓ of a loss on x̂₀(x), and a
//! reward's gradient through the last K sampler steps to a model's parameters, each against
//! central finite differences (f64 throughout, so the differences resolve to ~1e-8).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use gradlab_core::{bridge, flat};
use gradlab_generative::diffusion::samplers::{
    Langevin, Noise, Unobserved, denoise, dpm_solver_pp, euler_maruyama, pf_ode_heun,
    predictor_corrector, prior, reverse_diffusion,
};
use gradlab_generative::diffusion::{GaussianScore, Process, TensorScore, denoised};
use gradlab_generative::dpm::{ddim_sample, dpm_solver_pp_sample, time_grid_logsnr};
use gradlab_generative::ode::Solver;
use gradlab_generative::sampler::{
    OdeConfig, PcConfig, Predictor, ode_sample_with, pc_sample, time_grid,
};
use gradlab_generative::score::GaussianOracle;
use gradlab_generative::sde::Sde;

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn tensor_samplers_reproduce_the_host_samplers_number_for_number() {
    let (mean, var) = (vec![1.0, -0.5, 2.0], vec![0.25, 1.0, 0.04]);
    let dev = Device::flex();
    for sde in [Sde::vp(), Sde::ve(), Sde::sub_vp()] {
        let host = GaussianOracle::diagonal(sde, mean.clone(), var.clone()).unwrap();
        let ours = GaussianScore::new(sde, mean.clone(), var.clone()).unwrap();
        let (n, steps, seed) = (64, 12, 7);
        let start = |noise: &mut Noise| prior(&sde, [n, 3], noise, &dev);
        // Reverse diffusion and Euler–Maruyama (no corrector), grid from 1 to t_ε, then 0.
        let grid = time_grid(steps, sde.t_eps());
        for em in [false, true] {
            let cfg = PcConfig::new(steps).with_corrector_steps(0);
            let cfg = if em {
                cfg.with_predictor(Predictor::EulerMaruyama)
            } else {
                cfg
            };
            let (want, _) = pc_sample(&host, n, &cfg, seed).unwrap();
            let mut noise = Noise::new(seed);
            let x = start(&mut noise);
            let got = if em {
                euler_maruyama(&ours, &sde, x, &grid, &mut noise, &mut Unobserved)
            } else {
                reverse_diffusion(&ours, &sde, x, &grid, &mut noise, &mut Unobserved)
            }
            .unwrap();
            let d = max_diff(&bridge::to_host(got).unwrap(), &want.data);
            assert!(d < 1e-12, "{sde:?} em={em}: {d}");
        }
        // Predictor–corrector with the paper's corrector (one Langevin step, r = 0.16).
        let (want, _) = pc_sample(&host, n, &PcConfig::new(steps), seed).unwrap();
        let mut noise = Noise::new(seed);
        let x = start(&mut noise);
        let got = predictor_corrector(
            &ours,
            &sde,
            x,
            &grid,
            Langevin::default(),
            &mut noise,
            &mut Unobserved,
        )
        .unwrap();
        let d = max_diff(&bridge::to_host(got).unwrap(), &want.data);
        assert!(d < 1e-10, "{sde:?} predictor-corrector: {d}");
        // The PF-ODE by Heun with an Euler last step on the uniform grid, then the denoising step.
        let cfg = OdeConfig::new(Solver::Heun(steps)).with_denoise(true);
        let (want, _) = ode_sample_with(&host, n, &cfg, seed).unwrap();
        let t_eps = sde.t_eps();
        let uniform: Vec<f64> = (0..=steps)
            .map(|i| 1.0 + (t_eps - 1.0) * i as f64 / steps as f64)
            .collect();
        let mut noise = Noise::new(seed);
        let x = start(&mut noise);
        let x = pf_ode_heun(&ours, &sde, x, &uniform, &mut Unobserved).unwrap();
        let got = denoise(&ours, &sde, x, t_eps).unwrap();
        let d = max_diff(&bridge::to_host(got).unwrap(), &want.data);
        assert!(d < 1e-10, "{sde:?} PF-ODE Heun: {d}");
        // DDIM and DPM-Solver++(2M) on the logSNR grid.
        let grid = time_grid_logsnr(&sde, steps, sde.t_eps()).unwrap();
        for order in [1, 2] {
            let (want, _) = if order == 1 {
                ddim_sample(&host, n, steps, seed)
            } else {
                dpm_solver_pp_sample(&host, n, steps, seed)
            }
            .unwrap();
            let mut noise = Noise::new(seed);
            let x = start(&mut noise);
            let got = dpm_solver_pp(&ours, &sde, x, &grid, order, &mut Unobserved).unwrap();
            let d = max_diff(&bridge::to_host(got).unwrap(), &want.data);
            assert!(d < 1e-12, "{sde:?} order {order}: {d}");
        }
    }
}

#[test]
fn the_sampler_enum_draws_the_same_on_tensors_and_on_the_host() {
    use gradlab_generative::sampling::Sampler;
    let sde = Sde::vp();
    let (mean, var) = (vec![0.5, -1.0], vec![0.3, 0.7]);
    let host = GaussianOracle::diagonal(sde, mean.clone(), var.clone()).unwrap();
    let ours = GaussianScore::new(sde, mean, var).unwrap();
    let dev = Device::flex();
    for s in [
        Sampler::Pc,
        Sampler::Rd,
        Sampler::Em,
        Sampler::Ode,
        Sampler::Ddim,
        Sampler::Dpm,
    ] {
        let (want, _) = s.sample(&host, 50, 9, 4).unwrap();
        let mut noise = Noise::new(4);
        let x = prior(&sde, [50, 2], &mut noise, &dev);
        let got = s
            .sample_tensor(&ours, &sde, x, 9, &mut noise, &mut Unobserved)
            .unwrap();
        let d = max_diff(&bridge::to_host(got).unwrap(), &want.data);
        assert!(d < 1e-10, "{s}: {d}");
    }
    let x = prior(&sde, [5, 2], &mut Noise::new(0), &dev);
    assert!(
        Sampler::Rk45
            .sample_tensor(&ours, &sde, x, 9, &mut Noise::new(0), &mut Unobserved)
            .is_err()
    );
}

/// A trained network gives the same samples through `NetScore` on tensors as through the host
/// `ScoreNet` (the same f32 network evaluations, the same f64 arithmetic around them).
#[test]
fn a_trained_network_samples_the_same_on_tensors_and_on_the_host() {
    use gradlab_generative::diffusion::NetScore;
    use gradlab_generative::sampling::Sampler;
    use gradlab_generative::training::{Prediction, TrainSettings, train_toy_model};
    let settings = TrainSettings {
        steps: 30,
        hidden: 16,
        layers: 2,
        ..TrainSettings::default()
    };
    let toy: gradlab_data::toy2d::Toy2d = "moons".parse().unwrap();
    let host = train_toy_model(&toy, Sde::vp(), &settings).unwrap();
    let ours = NetScore {
        net: host.net().clone(),
        process: Sde::vp(),
        prediction: Prediction::Noise,
    };
    let dev = Device::flex();
    for s in [Sampler::Pc, Sampler::Em, Sampler::Ode, Sampler::Dpm] {
        let (want, _) = s.sample(&host, 40, 6, 11).unwrap();
        let mut noise = Noise::new(11);
        let x = prior(&Sde::vp(), [40, 2], &mut noise, &dev);
        let got = s
            .sample_tensor(&ours, &Sde::vp(), x, 6, &mut noise, &mut Unobserved)
            .unwrap();
        let d = max_diff(&bridge::to_host(got).unwrap(), &want.data);
        assert!(d < 1e-9, "{s}: {d}");
    }
}

/// A tiny nonlinear score model in f64: s(x, t) = tanh(x·W + b)·c(t) − x, c(t) = 1 + t.
#[derive(Module, Debug)]
struct Tiny {
    w: Param<Tensor<2>>,
    b: Param<Tensor<1>>,
}

impl Tiny {
    fn new(d: usize, dev: &Device) -> Self {
        let w: Vec<f64> = (0..d * d)
            .map(|k| ((k * 7 % 5) as f64 - 2.0) / 3.0)
            .collect();
        let b: Vec<f64> = (0..d).map(|k| 0.1 * k as f64 - 0.05).collect();
        Self {
            w: Param::from_tensor(bridge::from_host(&w, [d, d], dev).unwrap()),
            b: Param::from_tensor(bridge::from_host(&b, [d], dev).unwrap()),
        }
    }
}

impl TensorScore<2> for Tiny {
    fn score(&self, x: Tensor<2>, t: f64) -> gradlab_generative::Result<Tensor<2>> {
        let z = x.clone().matmul(self.w.val()) + self.b.val().unsqueeze_dim(0);
        Ok(z.tanh() * (1.0 + t) - x)
    }
}

fn points(v: &[f64], d: usize, dev: &Device) -> Tensor<2> {
    bridge::from_host(v, [v.len() / d, d], dev).unwrap()
}

/// ∇ₓ of L(x) = Σ (x̂₀(x) − target)² through the model and Tweedie's formula.
#[test]
fn the_gradient_of_a_loss_on_the_data_prediction_matches_finite_differences() {
    let (sde, t, d) = (Sde::vp(), 0.4, 3);
    let dev = Device::flex().autodiff();
    let model = Tiny::new(d, &dev);
    let x0 = [0.3, -1.2, 0.8, 1.5, 0.1, -0.4];
    let target = points(&[1.0, 0.0, -1.0, 0.5, 0.5, 0.5], d, &dev);
    let loss = |x: Tensor<2>| {
        (denoised(&model, &sde, x, t).unwrap() - target.clone())
            .square()
            .sum()
    };
    let x = points(&x0, d, &dev).require_grad();
    let g = bridge::to_host(x.grad(&loss(x.clone()).backward()).unwrap()).unwrap();
    let h = 1e-6;
    for k in 0..x0.len() {
        let (mut p, mut m) = (x0.to_vec(), x0.to_vec());
        p[k] += h;
        m[k] -= h;
        let value = |v: &[f64]| bridge::scalar_to_host(loss(points(v, d, &dev))).unwrap();
        let fd = (value(&p) - value(&m)) / (2.0 * h);
        assert!(
            (fd - g[k]).abs() < 1e-7 * (1.0 + fd.abs()),
            "x[{k}]: {fd} vs {}",
            g[k]
        );
    }
    // The exact Gaussian score's x̂₀ is affine in x: its gradient is the closed form α v/(α² v + σ²).
    let gauss = GaussianScore::new(sde, vec![0.0; d], vec![0.5; d]).unwrap();
    let x = points(&x0, d, &dev).require_grad();
    let s = denoised(&gauss, &sde, x.clone(), t).unwrap().sum();
    let g = bridge::to_host(x.grad(&s.backward()).unwrap()).unwrap();
    let (a, sg) = Process::marginal(&sde, t).unwrap();
    let want = a * 0.5 / (a * a * 0.5 + sg * sg);
    assert!(
        g.iter().all(|v| (v - want).abs() < 1e-12),
        "{g:?} vs {want}"
    );
}

/// AlignProp's truncated backpropagation: DDIM for 6 steps, the graph cut before the last 2, a
/// reward on the sample; its gradient reaches the model's parameters and equals finite
/// differences of the same truncated sampler (the first 4 steps fixed at their values).
#[test]
fn a_reward_gradient_through_the_last_sampler_steps_reaches_the_parameters() {
    let (sde, d, k_last) = (Sde::vp(), 3, 2);
    let dev = Device::flex().autodiff();
    let grid = time_grid_logsnr(&sde, 6, sde.t_eps()).unwrap();
    let (head, tail) = grid.split_at(grid.len() - k_last);
    let tail: Vec<f64> = std::iter::once(head[head.len() - 1])
        .chain(tail.iter().copied())
        .collect();
    let start = prior(&sde, [4, d], &mut Noise::new(3), &dev);
    // The first steps with the model as it is, detached (no graph, as AlignProp's truncation).
    let model = Tiny::new(d, &dev);
    let before = dpm_solver_pp(&model, &sde, start, head, 1, &mut Unobserved)
        .unwrap()
        .detach();
    let reward = |m: &Tiny| {
        let x = dpm_solver_pp(m, &sde, before.clone(), &tail, 1, &mut Unobserved).unwrap();
        // A reward that prefers samples near (1, 1, 1).
        -(x - 1.0).square().sum()
    };
    let grads = GradientsParams::from_grads(reward(&model).backward(), &model);
    let g = flat::flat_grads_host(&model, &grads).unwrap();
    assert!(
        g.iter().any(|v| v.abs() > 1e-3),
        "the reward does not reach the parameters: {g:?}"
    );
    let theta = flat::flatten_host(&model).unwrap();
    let h = 1e-6;
    for k in 0..theta.len() {
        let (mut p, mut m) = (theta.clone(), theta.clone());
        p[k] += h;
        m[k] -= h;
        let at = |v: &[f64]| {
            let shifted = flat::load_host(Tiny::new(d, &dev), v).unwrap();
            bridge::scalar_to_host(reward(&shifted)).unwrap()
        };
        let fd = (at(&p) - at(&m)) / (2.0 * h);
        assert!(
            (fd - g[k]).abs() < 1e-6 * (1.0 + fd.abs()),
            "θ[{k}]: {fd} vs {}",
            g[k]
        );
    }
}
