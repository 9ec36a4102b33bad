//! RMSProp (Tieleman & Hinton, 2012) with `torch.optim.RMSprop` semantics:
//!
//! g ← g + λθ,  u ← αu + (1−α)g²,  ḡ ← αḡ + (1−α)g (centered),
//! d = √(u − ḡ²) + ε (centered) or √u + ε,  b ← μb + g/d,  θ ← θ − η b  (μ = 0: θ ← θ − η g/d).
//!
//! Defaults: α = 0.99, ε = 1e-8, μ = 0, not centered.
//!
//! ```
//! use gradlab_optim::rmsprop::RmspropConfig;
//! assert!(RmspropConfig::new().with_centered(true).init().is_ok());
//! assert!(RmspropConfig::new().with_alpha(-0.1).init().is_err());
//! ```

use crate::error::{check_beta, check_eps, check_non_negative};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::prelude::*;

/// RMSProp configuration.
#[derive(Config, Debug)]
pub struct RmspropConfig {
    /// Smoothing constant α.
    #[config(default = 0.99)]
    pub alpha: f64,
    /// ε added after the square root.
    #[config(default = 1e-8)]
    pub eps: f64,
    /// L2 weight decay λ.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Momentum μ.
    #[config(default = 0.0)]
    pub momentum: f64,
    /// Normalise by the variance estimate rather than the second moment.
    #[config(default = false)]
    pub centered: bool,
}

/// RMSProp optimizer.
#[derive(Clone, Debug)]
pub struct Rmsprop {
    cfg: RmspropConfig,
}

/// RMSProp state.
#[derive(Clone, RecordState)]
pub struct RmspropState<const D: usize> {
    /// Running average of g², u.
    pub square_avg: Tensor<D>,
    /// Running average of g (centered only).
    pub grad_avg: Option<Tensor<D>>,
    /// Momentum buffer (μ > 0 only).
    pub buf: Option<Tensor<D>>,
}

impl RmspropConfig {
    /// Validate and build the per-tensor optimizer.
    pub fn build(&self) -> crate::Result<Rmsprop> {
        check_beta("alpha", self.alpha)?;
        check_eps(self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        check_beta("momentum", self.momentum)?;
        Ok(Rmsprop { cfg: self.clone() })
    }
    /// Validate and build an optimizer for whole modules.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

impl Optimizer for Rmsprop {
    type State<const D: usize> = RmspropState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<RmspropState<D>>,
    ) -> (Tensor<D>, Option<RmspropState<D>>) {
        let c = &self.cfg;
        let g = if c.weight_decay != 0.0 {
            g + p.clone().mul_scalar(c.weight_decay)
        } else {
            g
        };
        let (u, ga, buf) = match state {
            Some(s) => (s.square_avg, s.grad_avg, s.buf),
            None => (g.zeros_like(), None, None),
        };
        let u = u.mul_scalar(c.alpha) + g.clone().square().mul_scalar(1.0 - c.alpha);
        let ga = c.centered.then(|| {
            ga.unwrap_or_else(|| g.zeros_like()).mul_scalar(c.alpha)
                + g.clone().mul_scalar(1.0 - c.alpha)
        });
        let d = match &ga {
            Some(ga) => (u.clone() - ga.clone().square()).sqrt().add_scalar(c.eps),
            None => u.clone().sqrt().add_scalar(c.eps),
        };
        let step = g.div(d);
        let (step, buf) = if c.momentum > 0.0 {
            let b = buf
                .map(|b| b.mul_scalar(c.momentum))
                .map_or(step.clone(), |b| b + step);
            (b.clone(), Some(b))
        } else {
            (step, None)
        };
        (
            p - step.mul_scalar(lr),
            Some(RmspropState {
                square_avg: u,
                grad_avg: ga,
                buf,
            }),
        )
    }

    fn to_device<const D: usize>(s: RmspropState<D>, device: &Device) -> RmspropState<D> {
        RmspropState {
            square_avg: s.square_avg.to_device(device),
            grad_avg: s.grad_avg.map(|t| t.to_device(device)),
            buf: s.buf.map(|t| t.to_device(device)),
        }
    }
}
