//! AlignProp's reward backpropagation through the sampler (Prabhudesai et al., "Aligning
//! Text-to-Image Diffusion Models with Reward Backpropagation", 2023), as
//! mihirp1998/AlignProp has it (`sd_pipeline.py::pipeline_step_with_grad`).
//!
//! - **Sampler**: DDIM with η (the official η = 1, stochastic, its noise reparameterised):
//!   x̂₀ = (x − σ_t ε̂)/α_t, c = η (σ_n/σ_t) √(1 − α_t²/α_n²), x_n = α_n x̂₀ + √(σ_n² − c²) ε̂ + c z.
//! - **Truncation**: before step K the noise prediction is detached (`noise_pred.detach()` for
//!   i < K); the states are not, so the gradient still flows through every x, but only the last
//!   N − K steps depend on the parameters. K is drawn as the official loop does
//!   ([`Truncation::draw`]): resampled until 1 ≤ K ≤ N − 1 (official: N(42, 5) for N = 50).
//! - **Checkpointing** ([`Memory::Recompute`]): the forward pass keeps only the states; the
//!   backward pass recomputes one step at a time with its graph and carries the cotangent
//!   ∂L/∂x_i back, summing the parameters' gradients — the graph of one step is alive at a time
//!   instead of N − K (the official wraps each UNet call in `torch.utils.checkpoint`).
//!
//! ```
//! use gradlab_generative::alignprop::Truncation;
//! use rand::SeedableRng;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let k = Truncation::official().draw(50, &mut rng).unwrap();
//! assert!((1..50).contains(&k));
//! assert!(Truncation::Fixed(50).draw(50, &mut rng).is_err()); // K must leave a step to train
//! ```

use crate::process::Process;
use crate::sampling::Noise;
use crate::score::ScoreModel;
use crate::{GenError, Result, invalid};
use burn::module::Module;
use burn::optim::GradientsParams;
use burn::prelude::*;
use gradlab_core::bridge::copy_to;
use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};

/// How K, the first step whose noise prediction keeps its gradient, is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Truncation {
    /// ⌊N(mean, std)⌋ (the official `gaussian` strategy: mean 42, std 5).
    Gaussian {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// U{min, …, max − 1} (the official `uniform`).
    Uniform {
        /// Smallest K.
        min: usize,
        /// One past the largest K.
        max: usize,
    },
    /// A fixed K (the official `fixed`: 49 of 50 is "K = 1", the last step only).
    Fixed(usize),
}

impl Truncation {
    /// The official default: N(42, 5) (for 50 steps: about the last 8 steps keep their gradient).
    pub fn official() -> Self {
        Self::Gaussian {
            mean: 42.0,
            std: 5.0,
        }
    }

    /// Draw K for `steps` sampler steps, resampling until 1 ≤ K ≤ steps − 1 as the official loop.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a > b)` is meant: NaN must fail the check
    pub fn draw(&self, steps: usize, rng: &mut StdRng) -> Result<usize> {
        if steps < 2 {
            return invalid(format!(
                "truncated backpropagation needs at least 2 steps, got {steps}"
            ));
        }
        let ok = |k: i64| k >= 1 && k < steps as i64;
        match *self {
            Self::Fixed(k) if ok(k as i64) => Ok(k),
            Self::Fixed(k) => invalid(format!(
                "K = {k} must lie in 1..={} for {steps} steps",
                steps - 1
            )),
            Self::Uniform { min, max } if min < max && max > 1 && min < steps => loop {
                let k = rng.random_range(min..max) as i64;
                if ok(k) {
                    return Ok(k as usize);
                }
            },
            Self::Uniform { min, max } => invalid(format!(
                "K ~ U{{{min}..{max}}} never lies in 1..={}",
                steps - 1
            )),
            Self::Gaussian { mean, std } => {
                if !(std > 0.0 && std.is_finite() && mean.is_finite()) {
                    return invalid(format!(
                        "K ~ N({mean}, {std}) needs a finite mean and std > 0"
                    ));
                }
                let normal =
                    Normal::new(mean, std).map_err(|e| GenError::Invalid(e.to_string()))?;
                for _ in 0..100_000 {
                    // `int(...)` of the official: truncation towards zero.
                    let k = normal.sample(rng).trunc() as i64;
                    if ok(k) {
                        return Ok(k as usize);
                    }
                }
                invalid(format!(
                    "K ~ N({mean}, {std}) almost never lies in 1..={}",
                    steps - 1
                ))
            }
        }
    }
}

/// Whether the backward pass keeps every step's graph or recomputes them one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memory {
    /// Keep the graph of the whole chain (one backward pass).
    Store,
    /// Recompute each step during the backward pass (gradient checkpointing).
    Recompute,
}

/// One DDIM step with η from `t` to `t_next` (`z` the step's noise), ε̂ detached if `detach`.
#[allow(clippy::too_many_arguments)]
fn ddim_step(
    model: &impl ScoreModel<2>,
    process: &impl Process,
    x: Tensor<2>,
    t: f64,
    t_next: f64,
    eta: f64,
    z: Tensor<2>,
    detach: bool,
) -> Result<Tensor<2>> {
    let ((a, s), (an, sn)) = (process.marginal(t)?, process.marginal(t_next)?);
    let mut eps = model.score(x.clone(), t)? * (-s);
    if detach {
        eps = eps.detach();
    }
    let x0 = (x - eps.clone() * s) / a;
    let c = eta * (sn / s) * (1.0 - (a / an).powi(2)).max(0.0).sqrt();
    Ok(x0 * an + eps * (sn * sn - c * c).max(0.0).sqrt() + z * c)
}

/// The sampler's settings: a decreasing `grid` of times (its last the end time), η and K.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardSampler {
    /// Times from the prior down to the end, N + 1 of them.
    pub grid: Vec<f64>,
    /// DDIM's η (official 1).
    pub eta: f64,
}

impl RewardSampler {
    /// N = grid.len() − 1 steps; η in [0, 1].
    pub fn new(grid: Vec<f64>, eta: f64) -> Result<Self> {
        crate::sampling::check_grid(&grid, 2)?;
        if !(0.0..=1.0).contains(&eta) {
            return invalid(format!("η must lie in [0, 1], got {eta}"));
        }
        Ok(Self { grid, eta })
    }

    /// N, the number of steps.
    pub fn steps(&self) -> usize {
        self.grid.len() - 1
    }

    /// Step `i`'s Gaussian transition from `x`: its mean (with the graph of the model call) and
    /// standard deviation c — what a score-function (DDPO/REINFORCE) baseline differentiates.
    pub fn transition(
        &self,
        model: &impl ScoreModel<2>,
        process: &impl Process,
        x: Tensor<2>,
        i: usize,
    ) -> Result<(Tensor<2>, f64)> {
        if i >= self.steps() {
            return invalid(format!("step {i} of a {}-step sampler", self.steps()));
        }
        let (t, t_next) = (self.grid[i], self.grid[i + 1]);
        let ((a, s), (an, sn)) = (process.marginal(t)?, process.marginal(t_next)?);
        let c = self.eta * (sn / s) * (1.0 - (a / an).powi(2)).max(0.0).sqrt();
        let zero = Tensor::zeros_like(&x);
        Ok((
            ddim_step(model, process, x, t, t_next, self.eta, zero, false)?,
            c,
        ))
    }

    /// Sample from `x` (the prior draw) with the chain's noises `zs` (one per step), ε̂
    /// detached before step `k`: the result carries the graph of the last N − k steps.
    pub fn sample(
        &self,
        model: &impl ScoreModel<2>,
        process: &impl Process,
        x: Tensor<2>,
        zs: &[Tensor<2>],
        k: usize,
    ) -> Result<Tensor<2>> {
        self.check(zs, k)?;
        let mut x = x;
        for (i, (w, z)) in self.grid.windows(2).zip(zs).enumerate() {
            x = ddim_step(model, process, x, w[0], w[1], self.eta, z.clone(), i < k)?;
        }
        Ok(x)
    }

    fn check(&self, zs: &[Tensor<2>], k: usize) -> Result<()> {
        if zs.len() != self.steps() {
            return invalid(format!(
                "{} noise draws for {} steps",
                zs.len(),
                self.steps()
            ));
        }
        if k > self.steps() {
            return invalid(format!(
                "K = {k} is larger than the number of steps ({})",
                self.steps()
            ));
        }
        Ok(())
    }

    /// The noises of one chain: `steps` draws of `shape` from `noise`, on `device`.
    pub fn noises(&self, shape: [usize; 2], noise: &mut Noise, device: &Device) -> Vec<Tensor<2>> {
        (0..self.steps())
            .map(|_| noise.normal(shape, device).cast(burn::tensor::DType::F32))
            .collect()
    }

    /// The mean reward of the chain from `x` and the gradient of the loss −mean reward with
    /// respect to `module`'s parameters (flattened in the module's order, as
    /// [`gradlab_core::flat`]), ε̂ detached before step `k`. `model` scores with `module`, which
    /// lives on the autodiff device like `x` and the noises. With [`Memory::Recompute`],
    /// `untracked` — the same function on the inner device (e.g. built from `module.valid()`) —
    /// runs the forward pass without building a graph; without it the forward pass uses `model`,
    /// whose autodiff graph burn may keep until a backward pass (correct, but not lean).
    #[allow(clippy::too_many_arguments)]
    pub fn reward_gradient<M: Module>(
        &self,
        module: &M,
        model: &impl ScoreModel<2>,
        untracked: Option<&dyn ScoreModel<2>>,
        process: &impl Process,
        x: Tensor<2>,
        zs: &[Tensor<2>],
        k: usize,
        reward: &dyn Fn(Tensor<2>) -> Tensor<2>,
        memory: Memory,
    ) -> Result<(f64, Vec<f64>)> {
        self.check(zs, k)?;
        let loss_of = |x: Tensor<2>| -> Result<(Tensor<1>, f64)> {
            let r = reward(x).mean();
            let value = gradlab_core::bridge::scalar_to_host(r.clone())?;
            Ok((-r, value))
        };
        if k == self.steps() {
            // Every noise prediction is detached: the parameters get no gradient.
            let out = self.sample(model, process, x, zs, k)?;
            let (_, value) = loss_of(out.detach())?;
            return Ok((
                value,
                vec![0.0; gradlab_core::flat::flatten_host(module)?.len()],
            ));
        }
        match memory {
            Memory::Store => {
                let out = self.sample(model, process, x, zs, k)?;
                let (loss, value) = loss_of(out)?;
                let grads = GradientsParams::from_grads(loss.backward(), module);
                Ok((value, gradlab_core::flat::flat_grads_host(module, &grads)?))
            }
            Memory::Recompute => {
                // Forward: the states only, on the untracked model's device when there is one.
                let (fwd, fwd_dev): (&dyn ScoreModel<2>, Device) = match untracked {
                    Some(m) => (m, Device::flex()),
                    None => (model, x.device()),
                };
                let mut states = vec![copy_to(x.clone(), &fwd_dev)?];
                for (i, (w, z)) in self.grid.windows(2).zip(zs).enumerate() {
                    let next = ddim_step(
                        &fwd,
                        process,
                        states[i].clone(),
                        w[0],
                        w[1],
                        self.eta,
                        copy_to(z.clone(), &fwd_dev)?,
                        true,
                    )?;
                    states.push(next.detach());
                }
                let states: Vec<Tensor<2>> = states
                    .iter()
                    .map(|t| Ok(copy_to(t.clone(), &x.device())?))
                    .collect::<Result<_>>()?;
                let last = states[self.steps()].clone().require_grad();
                let (loss, value) = loss_of(last.clone())?;
                let mut cot = last.grad(&loss.backward()).ok_or_else(|| {
                    GenError::Invalid("the reward does not depend on the sample".into())
                })?;
                let mut total: Option<Vec<f64>> = None;
                // Backward: step i recomputed with its graph, ⟨x_{i+1}, ∂L/∂x_{i+1}⟩ differentiated.
                for i in (k..self.steps()).rev() {
                    let xi = states[i].clone().require_grad();
                    let out = ddim_step(
                        model,
                        process,
                        xi.clone(),
                        self.grid[i],
                        self.grid[i + 1],
                        self.eta,
                        zs[i].clone(),
                        false,
                    )?;
                    let cot_t = copy_to(cot.clone(), &out.device())?.cast(out.dtype());
                    let grads = (out * cot_t).sum().backward();
                    let next = xi.grad(&grads).ok_or_else(|| {
                        GenError::Invalid("a step does not depend on its state".into())
                    })?;
                    let g = gradlab_core::flat::flat_grads_host(
                        module,
                        &GradientsParams::from_grads(grads, module),
                    )?;
                    total = Some(match total {
                        Some(t) => t.iter().zip(&g).map(|(a, b)| a + b).collect(),
                        None => g,
                    });
                    cot = next;
                }
                let total =
                    total.ok_or_else(|| GenError::Invalid("no step keeps its gradient".into()))?;
                Ok((value, total))
            }
        }
    }
}

/// A time-conditioned MLP with low-rank adapters as an ε-prediction score model under a
/// process: s = −ε̂(x, t)/σ_t with ε̂ the adapted network's output (f32, on the input's device).
#[derive(Debug, Clone)]
pub struct LoraScore<'a, P> {
    /// The frozen base network.
    pub base: &'a gradlab_nets::time_mlp::TimeMlp,
    /// The adapters.
    pub lora: &'a gradlab_nets::lora::Lora,
    /// The process the base was trained for.
    pub process: P,
}

impl<P: Process> ScoreModel<2> for LoraScore<'_, P> {
    fn score(&self, x: Tensor<2>, t: f64) -> Result<Tensor<2>> {
        let (_, s) = self.process.marginal(t)?;
        let [n, _] = x.dims();
        let dtype = x.dtype();
        let input = x.cast(burn::tensor::DType::F32);
        let times = Tensor::<1>::full([n], t as f32, &input.device());
        let eps = self
            .lora
            .forward(self.base, input, times)
            .map_err(GenError::Invalid)?;
        Ok(crate::score::div(eps.cast(dtype), -s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Sde;
    use burn::module::Param;
    use gradlab_core::bridge::{from_host, to_host};
    use rand::SeedableRng;

    /// A tiny nonlinear score model in f64: s(x, t) = tanh(x·W + b)·(1 + t) − x.
    #[derive(Module, Debug)]
    struct Tiny {
        w: Param<Tensor<2>>,
        b: Param<Tensor<1>>,
    }

    impl Tiny {
        fn new(dev: &Device, shift: f64) -> Self {
            Self {
                w: Param::from_tensor(
                    from_host(&[0.3 + shift, -0.5, 0.2, 0.4], [2, 2], dev).unwrap(),
                ),
                b: Param::from_tensor(from_host(&[0.1, -0.2], [2], dev).unwrap()),
            }
        }
    }

    impl ScoreModel<2> for Tiny {
        fn score(&self, x: Tensor<2>, t: f64) -> Result<Tensor<2>> {
            let z = x.clone().matmul(self.w.val()) + self.b.val().unsqueeze_dim(0);
            Ok(z.tanh() * (1.0 + t) - x)
        }
    }

    fn setup(dev: &Device) -> (RewardSampler, Tensor<2>, Vec<Tensor<2>>) {
        let sampler =
            RewardSampler::new(crate::sampling::grid::uniform(6, 1e-3).unwrap(), 1.0).unwrap();
        let mut noise = Noise::new(3);
        let x = noise.normal([3, 2], dev);
        let zs: Vec<Tensor<2>> = (0..6).map(|_| noise.normal([3, 2], dev)).collect();
        (sampler, x, zs)
    }

    /// (mean reward, gradient) of the chain with the model itself as the module.
    fn gradient(
        sampler: &RewardSampler,
        model: &Tiny,
        untracked: Option<&dyn ScoreModel<2>>,
        x: &Tensor<2>,
        zs: &[Tensor<2>],
        k: usize,
        memory: Memory,
    ) -> Result<(f64, Vec<f64>)> {
        sampler.reward_gradient(
            model,
            model,
            untracked,
            &Sde::vp(),
            x.clone(),
            zs,
            k,
            &reward,
            memory,
        )
    }

    fn reward(x: Tensor<2>) -> Tensor<2> {
        // −‖x − (1, −1)‖², per example.
        let dev = x.device();
        let c = from_host(&[1.0, -1.0], [1, 2], &dev)
            .unwrap()
            .cast(x.dtype());
        -(x - c).square().sum_dim(1)
    }

    /// The stored and the recomputed backward passes agree, and both match central finite
    /// differences of the mean reward in the first weight (f64).
    #[test]
    fn checkpointed_gradients_equal_stored_ones_and_finite_differences() {
        let dev = Device::flex().autodiff();
        let model = Tiny::new(&dev, 0.0);
        // The same function on the inner device runs the recomputing forward pass.
        let untracked = Tiny::new(&Device::flex(), 0.0);
        let (sampler, x, zs) = setup(&dev);
        for k in [0, 2, 5] {
            let (r1, g1) = gradient(&sampler, &model, None, &x, &zs, k, Memory::Store).unwrap();
            let (r2, g2) = gradient(
                &sampler,
                &model,
                Some(&untracked),
                &x,
                &zs,
                k,
                Memory::Recompute,
            )
            .unwrap();
            assert!((r1 - r2).abs() < 1e-12);
            for (a, b) in g1.iter().zip(&g2) {
                assert!(
                    (a - b).abs() < 1e-10 * (1.0 + a.abs()),
                    "K = {k}: {a} vs {b}"
                );
            }
            if k == 0 {
                // All steps train: d(−R)/dW₀₀ by central differences of the full chain.
                let h = 1e-6;
                let value = |shift: f64| {
                    let m = Tiny::new(&dev, shift);
                    let out = sampler.sample(&m, &Sde::vp(), x.clone(), &zs, 0).unwrap();
                    -gradlab_core::bridge::scalar_to_host(reward(out).mean()).unwrap()
                };
                let fd = (value(h) - value(-h)) / (2.0 * h);
                // `flat` orders parameters as the module declares them: w first.
                assert!(
                    (fd - g1[0]).abs() < 1e-7 * (1.0 + fd.abs()),
                    "{fd} vs {}",
                    g1[0]
                );
            }
        }
    }

    /// Truncation: K = N leaves no step with a parameter gradient; K = N − 1 keeps only the last.
    #[test]
    fn truncation_cuts_the_parameter_gradient_but_not_the_states() {
        let dev = Device::flex().autodiff();
        let model = Tiny::new(&dev, 0.0);
        let (sampler, x, zs) = setup(&dev);
        let (_, none) = gradient(&sampler, &model, None, &x, &zs, 6, Memory::Store).unwrap();
        assert!(none.iter().all(|g| *g == 0.0));
        let (_, last) = gradient(&sampler, &model, None, &x, &zs, 5, Memory::Store).unwrap();
        let (_, all) = gradient(&sampler, &model, None, &x, &zs, 0, Memory::Store).unwrap();
        assert!(last.iter().any(|g| g.abs() > 1e-8) && last != all);
        // The states keep their graph: the reward's gradient reaches the prior draw even when
        // every noise prediction is detached.
        let x0 = x.clone().require_grad();
        let out = sampler
            .sample(&model, &Sde::vp(), x0.clone(), &zs, 6)
            .unwrap();
        let g = x0.grad(&reward(out).mean().backward()).unwrap();
        assert!(to_host(g).unwrap().iter().any(|v| v.abs() > 1e-6));
        assert!(gradient(&sampler, &model, None, &x, &zs, 7, Memory::Store).is_err());
    }

    #[test]
    fn k_is_drawn_as_the_official_loop() {
        let mut rng = StdRng::seed_from_u64(1);
        let ks: Vec<usize> = (0..20_000)
            .map(|_| Truncation::official().draw(50, &mut rng).unwrap())
            .collect();
        assert!(ks.iter().all(|k| (1..50).contains(k)));
        // X ~ N(42, 5) kept while 1 ≤ ⌊X⌋ ≤ 49, i.e. X < 50: E[X | X < 50] = 42 − 5φ(1.6)/Φ(1.6)
        // = 41.41, and ⌊·⌋ takes ≈ ½ off a smooth density: 40.91 (20,000 draws: s.e. 0.03).
        let mean = ks.iter().sum::<usize>() as f64 / ks.len() as f64;
        assert!((mean - 40.91).abs() < 0.1, "{mean}");
        assert_eq!(Truncation::Fixed(49).draw(50, &mut rng).unwrap(), 49);
        assert!(Truncation::Fixed(0).draw(50, &mut rng).is_err());
        assert!(
            Truncation::Uniform { min: 60, max: 70 }
                .draw(50, &mut rng)
                .is_err()
        );
        assert!(
            Truncation::Gaussian {
                mean: 42.0,
                std: f64::NAN
            }
            .draw(50, &mut rng)
            .is_err()
        );
        assert!(Truncation::official().draw(1, &mut rng).is_err());
        assert!(RewardSampler::new(vec![1.0, 0.5], 1.5).is_err());
    }
}
