//! Small convolutional network for 8×8 to 32×32 images.
//!
//! conv3×3(c→c1) → ReLU → maxpool 2 → conv3×3(c1→c2) → ReLU → maxpool 2 → linear(hidden) → ReLU →
//! linear(classes). Inputs arrive flattened (`[b, c·h·w]`) and are reshaped inside.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::{Net, cnn::SmallCnnConfig};
//! let dev = Device::flex();
//! let net = SmallCnnConfig::new(1, 8, 8, 10).init(&dev, 0);
//! assert_eq!(net.forward(Tensor::zeros([3, 64], &dev)).dims(), [3, 10]);
//! ```

use crate::{Net, init::seeded};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// Small CNN configuration.
#[derive(Config, Debug)]
pub struct SmallCnnConfig {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output classes.
    pub classes: usize,
    /// Channels of the first convolution.
    #[config(default = 16)]
    pub c1: usize,
    /// Channels of the second convolution.
    #[config(default = 32)]
    pub c2: usize,
    /// Width of the hidden dense layer.
    #[config(default = 64)]
    pub hidden: usize,
}

/// The small CNN.
#[derive(Module, Debug)]
pub struct SmallCnn {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    #[module(skip)]
    shape: [usize; 3],
}

pub(crate) fn conv3x3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

impl SmallCnnConfig {
    /// Build with weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> SmallCnn {
        let flat = self.c2 * (self.height / 4) * (self.width / 4);
        seeded(device, seed, || SmallCnn {
            conv1: conv3x3(self.channels, self.c1, 1, device),
            conv2: conv3x3(self.c1, self.c2, 1, device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(flat.max(1), self.hidden).init(device),
            fc2: LinearConfig::new(self.hidden, self.classes).init(device),
            shape: [self.channels, self.height, self.width],
        })
    }
}

impl Net for SmallCnn {
    fn first_layer(&self) -> Option<crate::FirstLayer> {
        Some(crate::FirstLayer::Conv {
            weight: self.conv1.weight.id,
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            input: self.shape,
        })
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [c, h, w] = self.shape;
        let b = x.dims()[0];
        let x = x.reshape([b, c, h, w]);
        let x = self.pool.forward(relu(self.conv1.forward(x)));
        let x = self.pool.forward(relu(self.conv2.forward(x)));
        let x = x.flatten::<2>(1, 3);
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}
