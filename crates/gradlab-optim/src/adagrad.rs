//! AdaGrad (Duchi et al., JMLR 2011) with `torch.optim.Adagrad` semantics:
//!
//! g ← g + λθ,  η_t = η / (1 + (t−1)·decay),  s ← s + g²,  θ ← θ − η_t · g / (√s + ε).
//!
//! Defaults: lr_decay 0, initial accumulator 0, ε = 1e-10.
//!
//! ```
//! use gradlab_optim::adagrad::AdagradConfig;
//! assert!(AdagradConfig::new().init().is_ok());
//! assert!(AdagradConfig::new().with_eps(0.0).init().is_err());
//! ```

use crate::error::{check_eps, check_non_negative};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer, RecordState};
use burn::prelude::*;

/// AdaGrad configuration.
#[derive(Config, Debug)]
pub struct AdagradConfig {
    /// Learning-rate decay per step.
    #[config(default = 0.0)]
    pub lr_decay: f64,
    /// L2 weight decay λ.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Initial value of the accumulator s.
    #[config(default = 0.0)]
    pub initial_accumulator_value: f64,
    /// ε added to √s.
    #[config(default = 1e-10)]
    pub eps: f64,
}

/// AdaGrad optimizer.
#[derive(Clone, Debug)]
pub struct Adagrad {
    cfg: AdagradConfig,
}

/// AdaGrad state.
#[derive(Clone, RecordState)]
pub struct AdagradState<const D: usize> {
    /// Steps taken.
    pub step: usize,
    /// Sum of squared gradients s.
    pub sum: Tensor<D>,
}

impl AdagradConfig {
    /// Validate and build the per-tensor optimizer.
    pub fn build(&self) -> crate::Result<Adagrad> {
        check_non_negative("lr_decay", self.lr_decay)?;
        check_non_negative("weight_decay", self.weight_decay)?;
        check_non_negative("initial_accumulator_value", self.initial_accumulator_value)?;
        check_eps(self.eps)?;
        Ok(Adagrad { cfg: self.clone() })
    }
    /// Validate and build an optimizer for whole modules.
    pub fn init(&self) -> crate::Result<ModuleOptimizer> {
        Ok(ModuleOptimizer::from(self.build()?))
    }
}

impl Optimizer for Adagrad {
    type State<const D: usize> = AdagradState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<AdagradState<D>>,
    ) -> (Tensor<D>, Option<AdagradState<D>>) {
        let c = &self.cfg;
        let g = if c.weight_decay != 0.0 {
            g + p.clone().mul_scalar(c.weight_decay)
        } else {
            g
        };
        let (step, sum) = match state {
            Some(s) => (s.step + 1, s.sum),
            None => (1, g.zeros_like().add_scalar(c.initial_accumulator_value)),
        };
        let clr = lr / (1.0 + (step - 1) as f64 * c.lr_decay);
        let sum = sum + g.clone().square();
        let p = p - g.div(sum.clone().sqrt().add_scalar(c.eps)).mul_scalar(clr);
        (p, Some(AdagradState { step, sum }))
    }

    fn to_device<const D: usize>(s: AdagradState<D>, device: &Device) -> AdagradState<D> {
        AdagradState {
            step: s.step,
            sum: s.sum.to_device(device),
        }
    }
}
