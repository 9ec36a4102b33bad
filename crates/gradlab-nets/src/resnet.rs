//! Small residual network for 8×8 to 32×32 images.
//!
//! stem conv3×3(c→w) → [block(w)] → conv3×3 stride 2 (w→2w) → [block(2w)] → global average pool →
//! linear(classes), with `block(x) = relu(x + conv(relu(conv(x))))` (He et al., 2016, without
//! normalisation layers, so that no running statistics enter checkpoints).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::{Net, resnet::SmallResNetConfig};
//! let dev = Device::flex();
//! let net = SmallResNetConfig::new(1, 8, 8, 10).init(&dev, 0);
//! assert_eq!(net.forward(Tensor::zeros([2, 64], &dev)).dims(), [2, 10]);
//! ```

use crate::cnn::conv3x3;
use crate::kinks::relu;
use crate::{Net, init::seeded};
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// Small ResNet configuration.
#[derive(Config, Debug)]
pub struct SmallResNetConfig {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output classes.
    pub classes: usize,
    /// Width of the first stage.
    #[config(default = 16)]
    pub width_base: usize,
}

/// One residual block.
#[derive(Module, Debug)]
pub struct BasicBlock {
    conv1: Conv2d,
    conv2: Conv2d,
}

impl BasicBlock {
    fn new(ch: usize, device: &Device) -> Self {
        Self {
            conv1: conv3x3(ch, ch, 1, device),
            conv2: conv3x3(ch, ch, 1, device),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(x.clone() + self.conv2.forward(relu(self.conv1.forward(x))))
    }
}

/// The small ResNet.
#[derive(Module, Debug)]
pub struct SmallResNet {
    stem: Conv2d,
    block1: BasicBlock,
    down: Conv2d,
    block2: BasicBlock,
    head: Linear,
    #[module(skip)]
    shape: [usize; 3],
}

impl SmallResNetConfig {
    /// Whether the network can take these images (any non-empty size: the stride-2 convolution is
    /// padded and the pooling is global).
    pub fn validate(&self) -> Result<(), String> {
        crate::check_image_input("resnet", [self.channels, self.height, self.width], 1)
    }

    /// Build with weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> SmallResNet {
        let w = self.width_base;
        seeded(device, seed, || SmallResNet {
            stem: conv3x3(self.channels, w, 1, device),
            block1: BasicBlock::new(w, device),
            down: conv3x3(w, 2 * w, 2, device),
            block2: BasicBlock::new(2 * w, device),
            head: LinearConfig::new(2 * w, self.classes).init(device),
            shape: [self.channels, self.height, self.width],
        })
    }
}

impl Net for SmallResNet {
    fn input_features(&self) -> usize {
        self.shape.iter().product()
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [c, h, w] = self.shape;
        let b = x.dims()[0];
        let x = relu(self.stem.forward(x.reshape([b, c, h, w])));
        let x = self
            .block2
            .forward(relu(self.down.forward(self.block1.forward(x))));
        let ch = x.dims()[1];
        self.head
            .forward(x.mean_dim(3).mean_dim(2).reshape([b, ch]))
    }
}
