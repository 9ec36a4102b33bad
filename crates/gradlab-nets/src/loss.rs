//! Classification losses on logits, and the device models train on.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::loss::LossKind;
//! let dev = Device::flex();
//! let logits = Tensor::<2>::from_data([[0.0, 0.0]], &dev);
//! let y = Tensor::<1, Int>::from_data([1], &dev);
//! let ce = LossKind::CrossEntropy.forward(logits, y).into_scalar::<f64>();
//! assert!((ce - 2f64.ln()).abs() < 1e-6);
//! assert_eq!("MSE".parse::<LossKind>(), Ok(LossKind::MseOneHot));
//! ```

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The device models train on: burn's CPU backend with autodiff.
pub fn autodiff_device() -> Device {
    Device::flex().autodiff()
}

/// The training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LossKind {
    /// Mean cross-entropy of softmax(logits) against the labels.
    #[default]
    #[cfg_attr(feature = "clap", value(name = "cross-entropy", alias = "ce"))]
    CrossEntropy,
    /// Squared error between the logits and one-hot labels, summed over classes, averaged over the batch.
    #[cfg_attr(feature = "clap", value(name = "mse"))]
    MseOneHot,
}

impl LossKind {
    /// The names [`LossKind::from_str`](std::str::FromStr) takes (any case).
    pub const NAMES: &[&str] = &["cross-entropy", "ce", "mse"];

    /// The mean loss of `logits` `[b, k]` against labels `y` `[b]`, as a one-element tensor.
    pub fn forward(self, logits: Tensor<2>, y: Tensor<1, Int>) -> Tensor<1> {
        let [b, k] = logits.dims();
        match self {
            LossKind::CrossEntropy => burn::tensor::activation::log_softmax(logits, 1)
                .gather(1, y.reshape([b, 1]))
                .mean()
                .neg(),
            LossKind::MseOneHot => (logits - y.one_hot(k).float())
                .square()
                .sum()
                .div_scalar(b as f64)
                .reshape([1]),
        }
    }
}

impl std::str::FromStr for LossKind {
    type Err = String;
    /// `cross-entropy` (or `ce`) or `mse`, in any case.
    fn from_str(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "cross-entropy" | "ce" => Ok(LossKind::CrossEntropy),
            "mse" => Ok(LossKind::MseOneHot),
            _ => Err(format!("unknown loss '{name}'; known: cross-entropy, mse")),
        }
    }
}
