//! Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, with
//! `torch.optim.SGD` semantics:
//!
//! g ← g + λθ;  b₁ = g,  b_t = μ b_{t−1} + (1 − τ) g;  g ← g + μ b (Nesterov) or g ← b;  θ ← θ − η g.
//!
//! ```
//! use gradlab_optim::sgd::SgdConfig;
//! let opt = SgdConfig::new().with_momentum(0.9).init().unwrap();
//! assert!(SgdConfig::new().with_momentum(1.5).init().is_err());
//! ```

use crate::error::{OptimError, check_beta, check_non_negative};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::prelude::*;

/// SGD configuration (PyTorch defaults).
#[derive(Config, Debug)]
pub struct SgdConfig {
    /// Momentum μ ∈ [0, 1).
    #[config(default = 0.0)]
    pub momentum: f64,
    /// Dampening τ ∈ [0, 1] of the momentum.
    #[config(default = 0.0)]
    pub dampening: f64,
    /// Nesterov momentum (needs μ > 0 and τ = 0).
    #[config(default = false)]
    pub nesterov: bool,
    /// L2 weight decay λ ≥ 0 added to the gradient.
    #[config(default = 0.0)]
    pub weight_decay: f64,
}

/// The SGD optimizer.
#[derive(Clone, Debug)]
pub struct Sgd {
    cfg: SgdConfig,
}

/// SGD state: the momentum buffer.
#[derive(Clone, RecordState)]
pub struct SgdState<const D: usize> {
    /// Momentum buffer b.
    pub momentum: Tensor<D>,
}

impl SgdConfig {
    /// Validate and build the per-tensor optimizer.
    pub fn build(&self) -> crate::Result<Sgd> {
        check_beta("momentum", self.momentum)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        if !(0.0..=1.0).contains(&self.dampening) {
            return Err(OptimError::Invalid {
                name: "dampening",
                value: self.dampening,
                requirement: "in [0, 1]",
            });
        }
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(OptimError::Conflict(
                "Nesterov momentum requires momentum > 0 and dampening = 0",
            ));
        }
        Ok(Sgd { cfg: self.clone() })
    }
    /// Validate and build an optimizer for whole modules.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

impl Optimizer for Sgd {
    type State<const D: usize> = SgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<SgdState<D>>,
    ) -> (Tensor<D>, Option<SgdState<D>>) {
        let c = &self.cfg;
        let mut g = if c.weight_decay != 0.0 {
            g + p.clone().mul_scalar(c.weight_decay)
        } else {
            g
        };
        let mut new_state = None;
        if c.momentum != 0.0 {
            let b = match state {
                Some(s) => {
                    s.momentum.mul_scalar(c.momentum) + g.clone().mul_scalar(1.0 - c.dampening)
                }
                None => g.clone(),
            };
            g = if c.nesterov {
                g + b.clone().mul_scalar(c.momentum)
            } else {
                b.clone()
            };
            new_state = Some(SgdState { momentum: b });
        }
        (p - g.mul_scalar(lr), new_state)
    }

    fn to_device<const D: usize>(s: SgdState<D>, device: &Device) -> SgdState<D> {
        SgdState {
            momentum: s.momentum.to_device(device),
        }
    }
}
