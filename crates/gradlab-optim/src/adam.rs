//! Adam, AdamW and AMSGrad with `torch.optim.Adam` / `AdamW` semantics (Kingma & Ba,
//! arXiv 1412.6980; Loshchilov & Hutter, arXiv 1711.05101; Reddi et al., ICLR 2018):
//!
//! m ← β₁m + (1−β₁)g,  v ← β₂v + (1−β₂)g²,  v̄ = max(v̄, v) (AMSGrad),
//! θ ← θ − η/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
//!
//! Weight decay λ is L2 (added to g) for Adam and decoupled (θ ← θ(1 − ηλ) first) for AdamW.
//! Defaults are PyTorch's: β = (0.9, 0.999), ε = 1e-8 (burn's own `AdamConfig` defaults to
//! ε = 1e-5, which is why gradlab carries its own, validated, configuration).
//!
//! ```
//! use gradlab_optim::adam::AdamConfig;
//! let adamw = AdamConfig::adamw().init().unwrap();
//! assert!(AdamConfig::new().with_beta1(1.0).init().is_err());
//! ```

use crate::error::check_moments;
use crate::fused;
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::prelude::*;

/// Adam-family configuration.
#[derive(Config, Debug)]
pub struct AdamConfig {
    /// First-moment decay β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Second-moment decay β₂.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// ε added to the bias-corrected √v.
    #[config(default = 1e-8)]
    pub eps: f64,
    /// Weight decay λ.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Decoupled (AdamW) rather than L2 weight decay.
    #[config(default = false)]
    pub decoupled: bool,
    /// AMSGrad: normalise by the running maximum of v.
    #[config(default = false)]
    pub amsgrad: bool,
    /// Step `f32` tensors on the flex device in place with the fused kernels of
    /// [`crate::fused`] (same arithmetic; off: the tensor form everywhere).
    #[config(default = true)]
    pub fused: bool,
}

/// The Adam-family optimizer.
#[derive(Clone, Debug)]
pub struct Adam {
    cfg: AdamConfig,
}

/// Adam state.
#[derive(Clone, RecordState)]
pub struct AdamState<const D: usize> {
    /// Steps taken.
    pub step: usize,
    /// First moment m.
    pub m: Tensor<D>,
    /// Second moment v.
    pub v: Tensor<D>,
    /// Running maximum of v (AMSGrad).
    pub v_max: Option<Tensor<D>>,
}

impl AdamConfig {
    /// AdamW with PyTorch's default weight decay 0.01.
    pub fn adamw() -> Self {
        Self::new().with_decoupled(true).with_weight_decay(0.01)
    }
    /// AMSGrad.
    pub fn amsgrad() -> Self {
        Self::new().with_amsgrad(true)
    }
    /// Validate and build the per-tensor optimizer.
    pub fn build(&self) -> crate::Result<Adam> {
        check_moments(self.beta1, self.beta2, self.eps, self.weight_decay)?;
        Ok(Adam { cfg: self.clone() })
    }
    /// Validate and build an optimizer for whole modules.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let c = &self.cfg;
        let state_tensors = state
            .iter()
            .flat_map(|s| [Some(&s.m), Some(&s.v), s.v_max.as_ref()])
            .flatten();
        let in_place = fused::eligible(&p, &g, state_tensors) && c.fused;
        if in_place {
            return fused_step(c, lr, p, g, state);
        }
        let (p, g) = match (c.weight_decay != 0.0, c.decoupled) {
            (false, _) => (p, g),
            (true, true) => (p.mul_scalar(1.0 - lr * c.weight_decay), g),
            (true, false) => (p.clone(), g + p.mul_scalar(c.weight_decay)),
        };
        let g_m = g.clone();
        moment_step(c, lr, p, g_m, g, state)
    }

    fn to_device<const D: usize>(s: AdamState<D>, device: &Device) -> AdamState<D> {
        AdamState {
            step: s.step,
            m: s.m.to_device(device),
            v: s.v.to_device(device),
            v_max: s.v_max.map(|t| t.to_device(device)),
        }
    }
}

/// The step in place on the host buffers ([`crate::fused`]); same arithmetic as [`moment_step`].
fn fused_step<const D: usize>(
    c: &AdamConfig,
    lr: f64,
    p: Tensor<D>,
    g: Tensor<D>,
    state: Option<AdamState<D>>,
) -> (Tensor<D>, Option<AdamState<D>>) {
    let (step, moments) = match state {
        Some(s) => {
            let moments = fused::Moments {
                m: s.m,
                v: s.v,
                aux: s.v_max,
            };
            (s.step + 1, Some(moments))
        }
        None => (1, None),
    };
    let h = fused::StepParams {
        weight_decay: c.weight_decay as f32,
        decoupled: c.decoupled,
        amsgrad: c.amsgrad,
        ..fused::StepParams::new(
            lr as f32,
            c.beta1 as f32,
            c.beta2 as f32,
            c.eps as f32,
            step as u32,
        )
    };
    let threads = fused::default_threads();
    let (p, s) = fused::in_place(p, g, moments, c.amsgrad, |s, g| {
        fused::adam_slices(&h, s, g, threads)
    });
    let state = AdamState {
        step,
        m: s.m,
        v: s.v,
        v_max: s.aux,
    };
    (p, Some(state))
}

/// The Adam step after weight decay, with the first moment fed `g_m` and the second `g_v`
/// (equal for Adam; AdamClip feeds a clipped gradient to m only).
pub(crate) fn moment_step<const D: usize>(
    c: &AdamConfig,
    lr: f64,
    p: Tensor<D>,
    g_m: Tensor<D>,
    g_v: Tensor<D>,
    state: Option<AdamState<D>>,
) -> (Tensor<D>, Option<AdamState<D>>) {
    let (step, m, v, v_max) = match state {
        Some(s) => (s.step, s.m, s.v, s.v_max),
        None => (0, g_v.zeros_like(), g_v.zeros_like(), None),
    };
    let step = step + 1;
    let m = m.mul_scalar(c.beta1) + g_m.mul_scalar(1.0 - c.beta1);
    let v = v.mul_scalar(c.beta2) + g_v.square().mul_scalar(1.0 - c.beta2);
    let v_max = c.amsgrad.then(|| match v_max {
        Some(vm) => vm.max_pair(v.clone()),
        None => v.clone(),
    });
    let bc1 = 1.0 - c.beta1.powi(step as i32);
    let bc2 = 1.0 - c.beta2.powi(step as i32);
    let denom = v_max
        .clone()
        .unwrap_or_else(|| v.clone())
        .sqrt()
        .div_scalar(bc2.sqrt())
        .add_scalar(c.eps);
    let p = p - m.clone().div(denom).mul_scalar(lr / bc1);
    (p, Some(AdamState { step, m, v, v_max }))
}
