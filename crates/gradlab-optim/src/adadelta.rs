//! AdaDelta (Zeiler, arXiv 1212.5701) with `torch.optim.Adadelta` semantics:
//!
//! g ← g + λθ,  u ← ρu + (1−ρ)g²,  Δ = √(a + ε)/√(u + ε) · g,  a ← ρa + (1−ρ)Δ²,  θ ← θ − η Δ.
//!
//! Defaults: ρ = 0.9, ε = 1e-6, and PyTorch's lr = 1.0.
//!
//! ```
//! use gradlab_optim::adadelta::AdadeltaConfig;
//! assert!(AdadeltaConfig::new().init().is_ok());
//! assert!(AdadeltaConfig::new().with_rho(1.0).init().is_err());
//! ```

use crate::error::{check_beta, check_eps, check_non_negative};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::prelude::*;

/// AdaDelta configuration.
#[derive(Config, Debug)]
pub struct AdadeltaConfig {
    /// Decay ρ of both running averages.
    #[config(default = 0.9)]
    pub rho: f64,
    /// ε inside both square roots.
    #[config(default = 1e-6)]
    pub eps: f64,
    /// L2 weight decay λ.
    #[config(default = 0.0)]
    pub weight_decay: f64,
}

/// AdaDelta optimizer.
#[derive(Clone, Debug)]
pub struct Adadelta {
    cfg: AdadeltaConfig,
}

/// AdaDelta state.
#[derive(Clone, RecordState)]
pub struct AdadeltaState<const D: usize> {
    /// Running average of g², u.
    pub square_avg: Tensor<D>,
    /// Running average of Δ², a.
    pub acc_delta: Tensor<D>,
}

impl AdadeltaConfig {
    /// Validate and build the per-tensor optimizer.
    pub fn build(&self) -> crate::Result<Adadelta> {
        check_beta("rho", self.rho)?;
        check_eps(self.eps)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        Ok(Adadelta { cfg: self.clone() })
    }
    /// Validate and build an optimizer for whole modules.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

impl Optimizer for Adadelta {
    type State<const D: usize> = AdadeltaState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<AdadeltaState<D>>,
    ) -> (Tensor<D>, Option<AdadeltaState<D>>) {
        let c = &self.cfg;
        let g = if c.weight_decay != 0.0 {
            g + p.clone().mul_scalar(c.weight_decay)
        } else {
            g
        };
        let (u, a) = match state {
            Some(s) => (s.square_avg, s.acc_delta),
            None => (g.zeros_like(), g.zeros_like()),
        };
        let u = u.mul_scalar(c.rho) + g.clone().square().mul_scalar(1.0 - c.rho);
        let delta = a
            .clone()
            .add_scalar(c.eps)
            .sqrt()
            .div(u.clone().add_scalar(c.eps).sqrt())
            .mul(g);
        let a = a.mul_scalar(c.rho) + delta.clone().square().mul_scalar(1.0 - c.rho);
        (
            p - delta.mul_scalar(lr),
            Some(AdadeltaState {
                square_avg: u,
                acc_delta: a,
            }),
        )
    }

    fn to_device<const D: usize>(s: AdadeltaState<D>, device: &Device) -> AdadeltaState<D> {
        AdadeltaState {
            square_avg: s.square_avg.to_device(device),
            acc_delta: s.acc_delta.to_device(device),
        }
    }
}
