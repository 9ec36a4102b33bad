//! The two capabilities the tensor path exists for, each against central finite differences
//! (f64 throughout, so the differences resolve to ~1e-8): ∇ₓ of a loss on x̂₀(x) (guidance), and a
//! reward's gradient through the last K sampler steps to a model's parameters (AlignProp's
//! truncated backpropagation).

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use gradlab_core::{bridge, flat};
use gradlab_generative::process::{Process, Sde};
use gradlab_generative::sampling::{Noise, Unobserved, dpm_solver_pp, grid, prior};
use gradlab_generative::score::{GaussianOracle, ScoreModel, denoised};

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

impl ScoreModel<2> for Tiny {
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
    let gauss = GaussianOracle::diagonal(sde, vec![0.0; d], vec![0.5; d]).unwrap();
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
    let grid = grid::logsnr(&sde, 6, sde.t_eps()).unwrap();
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
