//! diffGrad (Dubey et al., "diffGrad: An Optimization Method for Convolutional Neural Networks",
//! IEEE TNNLS 2019, arXiv 1909.11015), exactly as the authors' corrected `diffGrad_v2.py`:
//!
//! g ← g + λθ (L2),  m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,
//! ξ = σ(|g_{t−1} − g_t|) ∈ [½, 1)  with g₀ = 0 (the diffGrad friction coefficient),
//! θ ← θ − η·√(1−β₂ᵗ)/(1−β₁ᵗ) · ξ ⊙ m / (√v + ε).
//!
//! Note where ε sits: it is added to the *uncorrected* √v, as in the official code, so the step is
//! m̂ξ/(√v̂ + ε/√(1−β₂ᵗ)). Defaults: η = 1e-3, β = (0.9, 0.999), ε = 1e-8, λ = 0.
//!
//! **Two traps in the Python ecosystem.**
//! - The default path of the popular `pytorch_optimizer.DiffGrad` (kozistr/pytorch_optimizer,
//!   `rectify=False`) computes ξ⊙m but then updates with the plain m (`p.addcdiv_(exp_avg, …)`), so ξ
//!   is never applied: that path is Adam (read in the repository's `optimizer/diffgrad.py`, 2025).
//! - The authors' first file, `diffGrad.py` (used for the arXiv and journal versions), stores
//!   `previous_grad = grad` without a copy, so |g_{t−1} − g_t| is always 0 and ξ ≡ σ(0) = ½: Adam at
//!   half the learning rate. `diffGrad_v2.py` fixes this with `grad.clone()`.
//!
//! This implementation applies ξ with a real copy of the previous gradient (tested in
//! `tests/reference.rs`, `diffgrad_friction_is_really_applied`).
//!
//! ```
//! use burn::prelude::*;
//! use burn::optim::Optimizer;
//! use gradlab_optim::diffgrad::DiffGradConfig;
//! let opt = DiffGradConfig::new().build().unwrap();
//! let dev = Device::flex();
//! let x = Tensor::<1>::from_floats([1.0], &dev);
//! let g = Tensor::<1>::from_floats([2.0], &dev);
//! let (x, state) = opt.step(0.1, x, g, None);
//! // First step: m̂ = g, √v̂ = |g|, ξ = σ(|0 − 2|): x = 1 − 0.1·σ(2).
//! let expected = 1.0 - 0.1 / (1.0 + (-2.0f32).exp());
//! assert!((x.into_scalar::<f32>() - expected).abs() < 1e-6);
//! ```

use crate::error::check_moments;
use crate::fused;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

/// diffGrad configuration.
#[derive(Config, Debug)]
pub struct DiffGradConfig {
    /// First-moment decay β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Second-moment decay β₂.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// ε added to √v.
    #[config(default = 1e-8)]
    pub eps: f64,
    /// L2 weight decay λ (added to the gradient, before ξ is computed, as in the official code).
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Step `f32` tensors on the flex device in place with the fused kernels of
    /// [`crate::fused`] (same arithmetic; off: the tensor form everywhere).
    #[config(default = true)]
    pub fused: bool,
}

/// The diffGrad optimizer.
#[derive(Clone, Debug)]
pub struct DiffGrad {
    cfg: DiffGradConfig,
}

/// diffGrad state.
#[derive(Clone, RecordState)]
pub struct DiffGradState<const D: usize> {
    /// Steps taken.
    pub step: usize,
    /// First moment m.
    pub m: Tensor<D>,
    /// Second moment v.
    pub v: Tensor<D>,
    /// The previous (weight-decayed) gradient g_{t−1}.
    pub prev_grad: Tensor<D>,
}

impl DiffGradConfig {
    /// Validate and build the per-tensor optimizer.
    pub fn build(&self) -> crate::Result<DiffGrad> {
        check_moments(self.beta1, self.beta2, self.eps, self.weight_decay)?;
        Ok(DiffGrad { cfg: self.clone() })
    }
    /// Validate and build an optimizer for whole modules.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

/// The step in place on the host buffers ([`crate::fused`]); same arithmetic as the tensor form.
fn fused_step<const D: usize>(
    c: &DiffGradConfig,
    lr: f64,
    p: Tensor<D>,
    g: Tensor<D>,
    state: Option<DiffGradState<D>>,
) -> (Tensor<D>, Option<DiffGradState<D>>) {
    let (step, moments) = match state {
        Some(s) => {
            let moments = fused::Moments {
                m: s.m,
                v: s.v,
                aux: Some(s.prev_grad),
            };
            (s.step + 1, Some(moments))
        }
        None => (1, None),
    };
    let h = fused::StepParams {
        weight_decay: c.weight_decay as f32,
        ..fused::StepParams::new(
            lr as f32,
            c.beta1 as f32,
            c.beta2 as f32,
            c.eps as f32,
            step as u32,
        )
    };
    let threads = fused::default_threads();
    let (p, s) = fused::in_place(p, g, moments, true, |s, g| {
        fused::diffgrad_slices(&h, s, g, threads)
    });
    let prev_grad = s.aux.expect("diffGrad's step keeps the previous gradient");
    let state = DiffGradState {
        step,
        m: s.m,
        v: s.v,
        prev_grad,
    };
    (p, Some(state))
}

impl Optimizer for DiffGrad {
    type State<const D: usize> = DiffGradState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<DiffGradState<D>>,
    ) -> (Tensor<D>, Option<DiffGradState<D>>) {
        let c = &self.cfg;
        let state_tensors = state.iter().flat_map(|s| [&s.m, &s.v, &s.prev_grad]);
        let in_place = fused::eligible(&p, &g, state_tensors) && c.fused;
        if in_place {
            return fused_step(c, lr, p, g, state);
        }
        let g = if c.weight_decay != 0.0 {
            g + p.clone().mul_scalar(c.weight_decay)
        } else {
            g
        };
        let (step, m, v, prev) = match state {
            Some(s) => (s.step, s.m, s.v, s.prev_grad),
            None => (0, g.zeros_like(), g.zeros_like(), g.zeros_like()),
        };
        let step = step + 1;
        let m = m.mul_scalar(c.beta1) + g.clone().mul_scalar(1.0 - c.beta1);
        let v = v.mul_scalar(c.beta2) + g.clone().square().mul_scalar(1.0 - c.beta2);
        let xi = sigmoid((prev - g.clone()).abs());
        let step_size =
            lr * (1.0 - c.beta2.powi(step as i32)).sqrt() / (1.0 - c.beta1.powi(step as i32));
        let p = p
            - (m.clone() * xi)
                .div(v.clone().sqrt().add_scalar(c.eps))
                .mul_scalar(step_size);
        (
            p,
            Some(DiffGradState {
                step,
                m,
                v,
                prev_grad: g,
            }),
        )
    }

    fn to_device<const D: usize>(s: DiffGradState<D>, device: &Device) -> DiffGradState<D> {
        DiffGradState {
            step: s.step,
            m: s.m.to_device(device),
            v: s.v.to_device(device),
            prev_grad: s.prev_grad.to_device(device),
        }
    }
}
