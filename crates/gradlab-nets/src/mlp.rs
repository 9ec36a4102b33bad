//! Multi-layer perceptron.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::{Net, mlp::MlpConfig};
//! let dev = Device::flex();
//! let net = MlpConfig::new(vec![64, 32, 10]).init(&dev, 0);
//! assert_eq!(net.forward(Tensor::zeros([5, 64], &dev)).dims(), [5, 10]);
//! ```

use crate::{Activation, Net, init::seeded};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// MLP configuration.
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Layer widths: input, hidden…, output (at least two entries).
    pub dims: Vec<usize>,
    /// Hidden nonlinearity.
    #[config(default = "Activation::Relu")]
    pub activation: Activation,
}

/// A stack of linear layers with a nonlinearity between them (none after the last).
#[derive(Module, Debug)]
pub struct Mlp {
    /// The linear layers.
    pub layers: Vec<Linear>,
    #[module(skip)]
    activation: Activation,
}

impl MlpConfig {
    /// Build with PyTorch-style uniform(±1/√fan_in) weights drawn from `seed`.
    ///
    /// Panics if fewer than two widths are given (a programming error, not user input).
    pub fn init(&self, device: &Device, seed: u64) -> Mlp {
        assert!(
            self.dims.len() >= 2,
            "an MLP needs an input and an output width"
        );
        seeded(device, seed, || Mlp {
            layers: self
                .dims
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            activation: self.activation,
        })
    }
}

impl Mlp {
    /// Hidden features before the last layer.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        self.layers[..n - 1]
            .iter()
            .fold(x, |h, l| self.activation.apply(l.forward(h)))
    }
}

impl Net for Mlp {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.layers
            .last()
            .expect("non-empty")
            .forward(self.features(x))
    }

    fn first_layer(&self) -> Option<crate::FirstLayer> {
        self.layers.first().map(|l| crate::FirstLayer::Linear {
            weight: l.weight.id,
        })
    }
}
