//! AdamClip from "Toward Understanding Why Adam Converges Faster Than SGD for Transformers"
//! (Pan & Li, arXiv 2306.00204): Adam whose first moment is fed the coordinate-clipped gradient
//! while the second moment sees the raw one,
//!
//! τ = ⌊N·c⌋-th largest |g| over all parameters,  m ← β₁m + (1−β₁)·clip(g, ±τ),  v ← β₂v + (1−β₂)g²,
//!
//! then the usual bias-corrected Adam step. Default c = 0.5 (the paper's choice for Adam).
//!
//! The threshold is a joint statistic of all parameters while burn optimizers see one tensor at a
//! time, so AdamClip comes as a pair: a [`MeasureThreshold`] transformation that computes τ from all
//! gradients (leaving them unchanged) and the per-tensor [`AdamClip`] optimizer that reads it.
//! [`AdamClipConfig::init`] wires both into a [`TransformedOptimizer`].
//!
//! Note on the authors' code (`torch_optimizer/adam_clip.py`): clipping happens only in the
//! `foreach` (multi-tensor) path; with PyTorch's default `foreach=None` the single-tensor path runs
//! and nothing is clipped. L2 weight decay, which the authors add before clipping, is not offered
//! here (the threshold is measured on the raw gradients).
//!
//! ```
//! use gradlab_optim::adam_clip::AdamClipConfig;
//! let opt = AdamClipConfig::new().init().unwrap();
//! assert!(AdamClipConfig::new().with_fraction(0.0).init().is_err());
//! ```

use crate::adam::{AdamConfig, AdamState, moment_step};
use crate::transform::{ClipTopCoordinates, GradSet, GradientTransform, TransformedOptimizer};
use burn::optim::{LearningRate, ModuleOptimizer, Optimizer};
use burn::prelude::*;
use std::sync::{Arc, Mutex};

/// AdamClip configuration.
#[derive(Config, Debug)]
pub struct AdamClipConfig {
    /// Fraction c ∈ (0, 1] of the largest coordinates clipped in the first-moment input.
    #[config(default = 0.5)]
    pub fraction: f64,
    /// First-moment decay β₁.
    #[config(default = 0.9)]
    pub beta1: f64,
    /// Second-moment decay β₂.
    #[config(default = 0.999)]
    pub beta2: f64,
    /// ε added to the bias-corrected √v.
    #[config(default = 1e-8)]
    pub eps: f64,
}

/// The threshold shared between [`MeasureThreshold`] and [`AdamClip`].
#[derive(Clone, Debug, Default)]
pub struct SharedThreshold(Arc<Mutex<f64>>);

impl SharedThreshold {
    fn get(&self) -> f64 {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set(&self, v: f64) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }
}

/// Measures τ over all gradients and leaves them unchanged.
pub struct MeasureThreshold {
    clip: ClipTopCoordinates,
    cell: SharedThreshold,
}

impl GradientTransform for MeasureThreshold {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        self.cell.set(self.clip.threshold(&grads)?);
        Ok(grads)
    }
}

/// The per-tensor AdamClip step; reads τ from the paired [`MeasureThreshold`].
#[derive(Clone, Debug)]
pub struct AdamClip {
    adam: AdamConfig,
    cell: SharedThreshold,
}

impl AdamClipConfig {
    /// Validate and build the measuring transformation and the optimizer.
    pub fn build(&self) -> crate::Result<(MeasureThreshold, AdamClip)> {
        let clip = ClipTopCoordinates::new(self.fraction)?;
        let adam = AdamConfig::new()
            .with_beta1(self.beta1)
            .with_beta2(self.beta2)
            .with_eps(self.eps);
        adam.build()?;
        let cell = SharedThreshold::default();
        Ok((
            MeasureThreshold {
                clip,
                cell: cell.clone(),
            },
            AdamClip { adam, cell },
        ))
    }

    /// Validate and build the pair as one optimizer for whole modules.
    pub fn init(&self) -> crate::Result<TransformedOptimizer> {
        let (measure, optim) = self.build()?;
        Ok(TransformedOptimizer::new(
            measure,
            ModuleOptimizer::from(optim),
        ))
    }
}

impl Optimizer for AdamClip {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        p: Tensor<D>,
        g: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> (Tensor<D>, Option<AdamState<D>>) {
        let tau = self.cell.get();
        let g_m = if tau.is_finite() {
            g.clone().clamp(-tau, tau)
        } else {
            g.clone()
        };
        moment_step(&self.adam, lr, p, g_m, g, state)
    }

    fn to_device<const D: usize>(s: AdamState<D>, device: &Device) -> AdamState<D> {
        <crate::adam::Adam as Optimizer>::to_device(s, device)
    }
}
