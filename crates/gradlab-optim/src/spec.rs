//! Optimizers by name, with PyTorch's default learning rates, for the CLI, the training loop and
//! the experiments.
//!
//! ```
//! use gradlab_optim::spec::OptimizerSpec;
//! let spec = OptimizerSpec::parse("diffgrad").unwrap();
//! assert_eq!(spec.lr(), 1e-3);
//! let module_opt = spec.module_optimizer().unwrap();
//! assert!(OptimizerSpec::parse("adamw").unwrap().with_lr(-1.0).module_optimizer().is_err());
//! // A hyperparameter the optimizer does not have is refused, not ignored.
//! let mut sgd = OptimizerSpec::parse("sgd").unwrap();
//! sgd.beta1 = Some(0.9);
//! assert!(sgd.module_optimizer().is_err());
//! ```

use crate::adadelta::AdadeltaConfig;
use crate::adagrad::AdagradConfig;
use crate::adam::AdamConfig;
use crate::diffgrad::DiffGradConfig;
use crate::error::{OptimError, Result, check_lr};
use crate::point::{PointOptimizer, PointStep};
use crate::rmsprop::RmspropConfig;
use crate::sgd::SgdConfig;
use burn::optim::ModuleOptimizer;

/// The optimizers gradlab builds by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OptimizerKind {
    /// Plain SGD.
    Sgd,
    /// SGD with momentum 0.9 (the "SGDM" of the papers).
    SgdMomentum,
    /// Adam.
    Adam,
    /// AdamW.
    AdamW,
    /// AMSGrad.
    AmsGrad,
    /// AdaGrad.
    AdaGrad,
    /// AdaDelta.
    AdaDelta,
    /// RMSProp.
    RmsProp,
    /// diffGrad.
    DiffGrad,
}

/// (name, kind) pairs accepted by [`OptimizerSpec::parse`].
pub const OPTIMIZERS: &[(&str, OptimizerKind)] = &[
    ("sgd", OptimizerKind::Sgd),
    ("sgdm", OptimizerKind::SgdMomentum),
    ("adam", OptimizerKind::Adam),
    ("adamw", OptimizerKind::AdamW),
    ("amsgrad", OptimizerKind::AmsGrad),
    ("adagrad", OptimizerKind::AdaGrad),
    ("adadelta", OptimizerKind::AdaDelta),
    ("rmsprop", OptimizerKind::RmsProp),
    ("diffgrad", OptimizerKind::DiffGrad),
];

/// An optimizer with its hyperparameters; unset ones take PyTorch's defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OptimizerSpec {
    /// Which optimizer.
    pub kind: OptimizerKind,
    /// Learning rate (default: PyTorch's for the optimizer).
    pub lr: Option<f64>,
    /// β₁ (Adam family, diffGrad).
    pub beta1: Option<f64>,
    /// β₂ (Adam family, diffGrad).
    pub beta2: Option<f64>,
    /// ε.
    pub eps: Option<f64>,
    /// Momentum (SGD, RMSProp).
    pub momentum: Option<f64>,
    /// Weight decay.
    pub weight_decay: Option<f64>,
}

impl OptimizerSpec {
    /// A spec with all defaults.
    pub fn new(kind: OptimizerKind) -> Self {
        Self {
            kind,
            lr: None,
            beta1: None,
            beta2: None,
            eps: None,
            momentum: None,
            weight_decay: None,
        }
    }

    /// Parse a name from [`OPTIMIZERS`].
    pub fn parse(name: &str) -> Result<Self> {
        OPTIMIZERS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, k)| Self::new(*k))
            .ok_or_else(|| OptimError::Unknown {
                what: "optimizer",
                name: name.into(),
                known: OPTIMIZERS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The canonical name.
    pub fn name(&self) -> &'static str {
        OPTIMIZERS
            .iter()
            .find(|(_, k)| *k == self.kind)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Set the learning rate.
    pub fn with_lr(mut self, lr: f64) -> Self {
        self.lr = Some(lr);
        self
    }

    /// The learning rate in use: the one set, or PyTorch's default (SGD has none in PyTorch; 0.01 here).
    pub fn lr(&self) -> f64 {
        self.lr.unwrap_or(match self.kind {
            OptimizerKind::Sgd
            | OptimizerKind::SgdMomentum
            | OptimizerKind::AdaGrad
            | OptimizerKind::RmsProp => 1e-2,
            OptimizerKind::AdaDelta => 1.0,
            _ => 1e-3,
        })
    }

    fn adam(&self, base: AdamConfig) -> AdamConfig {
        let mut c = base;
        if let Some(b) = self.beta1 {
            c.beta1 = b;
        }
        if let Some(b) = self.beta2 {
            c.beta2 = b;
        }
        if let Some(e) = self.eps {
            c.eps = e;
        }
        if let Some(w) = self.weight_decay {
            c.weight_decay = w;
        }
        c
    }

    /// The optional hyperparameters this optimizer has (besides the learning rate).
    pub fn applicable(&self) -> &'static [&'static str] {
        use OptimizerKind::*;
        match self.kind {
            Sgd | SgdMomentum => &["momentum", "weight_decay"],
            Adam | AdamW | AmsGrad | DiffGrad => &["beta1", "beta2", "eps", "weight_decay"],
            AdaGrad | AdaDelta => &["eps", "weight_decay"],
            RmsProp => &["eps", "momentum", "weight_decay"],
        }
    }

    /// Refuse hyperparameters that the optimizer does not have (`beta1` for SGD, say): they would
    /// otherwise be ignored without a word.
    pub fn check_applicable(&self) -> Result<()> {
        let set = [
            ("beta1", self.beta1.is_some()),
            ("beta2", self.beta2.is_some()),
            ("eps", self.eps.is_some()),
            ("momentum", self.momentum.is_some()),
            ("weight_decay", self.weight_decay.is_some()),
        ];
        match set
            .iter()
            .find(|(name, given)| *given && !self.applicable().contains(name))
        {
            Some((name, _)) => Err(OptimError::NotApplicable {
                name,
                optimizer: self.name(),
                has: self.applicable().join(", "),
            }),
            None => Ok(()),
        }
    }

    fn built(&self) -> Result<Built> {
        check_lr(self.lr())?;
        self.check_applicable()?;
        let wd = self.weight_decay.unwrap_or(0.0);
        Ok(match self.kind {
            OptimizerKind::Sgd | OptimizerKind::SgdMomentum => {
                let mom = self
                    .momentum
                    .unwrap_or(if self.kind == OptimizerKind::SgdMomentum {
                        0.9
                    } else {
                        0.0
                    });
                Built::Sgd(
                    SgdConfig::new()
                        .with_momentum(mom)
                        .with_weight_decay(wd)
                        .build()?,
                )
            }
            OptimizerKind::Adam => Built::Adam(self.adam(AdamConfig::new()).build()?),
            OptimizerKind::AdamW => Built::Adam(self.adam(AdamConfig::adamw()).build()?),
            OptimizerKind::AmsGrad => Built::Adam(self.adam(AdamConfig::amsgrad()).build()?),
            OptimizerKind::AdaGrad => {
                let mut c = AdagradConfig::new().with_weight_decay(wd);
                if let Some(e) = self.eps {
                    c.eps = e;
                }
                Built::Adagrad(c.build()?)
            }
            OptimizerKind::AdaDelta => {
                let mut c = AdadeltaConfig::new().with_weight_decay(wd);
                if let Some(e) = self.eps {
                    c.eps = e;
                }
                Built::Adadelta(c.build()?)
            }
            OptimizerKind::RmsProp => {
                let mut c = RmspropConfig::new()
                    .with_weight_decay(wd)
                    .with_momentum(self.momentum.unwrap_or(0.0));
                if let Some(e) = self.eps {
                    c.eps = e;
                }
                Built::Rmsprop(c.build()?)
            }
            OptimizerKind::DiffGrad => {
                let mut c = DiffGradConfig::new().with_weight_decay(wd);
                c.beta1 = self.beta1.unwrap_or(c.beta1);
                c.beta2 = self.beta2.unwrap_or(c.beta2);
                c.eps = self.eps.unwrap_or(c.eps);
                Built::DiffGrad(c.build()?)
            }
        })
    }

    /// Validate and build an optimizer for burn modules.
    pub fn module_optimizer(&self) -> Result<ModuleOptimizer> {
        Ok(match self.built()? {
            Built::Sgd(o) => o.into(),
            Built::Adam(o) => o.into(),
            Built::Adagrad(o) => o.into(),
            Built::Adadelta(o) => o.into(),
            Built::Rmsprop(o) => o.into(),
            Built::DiffGrad(o) => o.into(),
        })
    }

    /// Validate and build an optimizer attached to the vector `x0`.
    pub fn point_optimizer(&self, x0: &[f64]) -> Result<Box<dyn PointStep>> {
        Ok(match self.built()? {
            Built::Sgd(o) => Box::new(PointOptimizer::new(o, x0)),
            Built::Adam(o) => Box::new(PointOptimizer::new(o, x0)),
            Built::Adagrad(o) => Box::new(PointOptimizer::new(o, x0)),
            Built::Adadelta(o) => Box::new(PointOptimizer::new(o, x0)),
            Built::Rmsprop(o) => Box::new(PointOptimizer::new(o, x0)),
            Built::DiffGrad(o) => Box::new(PointOptimizer::new(o, x0)),
        })
    }
}

enum Built {
    Sgd(crate::sgd::Sgd),
    Adam(crate::adam::Adam),
    Adagrad(crate::adagrad::Adagrad),
    Adadelta(crate::adadelta::Adadelta),
    Rmsprop(crate::rmsprop::Rmsprop),
    DiffGrad(crate::diffgrad::DiffGrad),
}
