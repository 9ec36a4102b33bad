//! A small time-conditioned U-Net for score and flow models on small images (8×8 digits,
//! 28×28 MNIST): one resolution level down and up with a skip connection,
//!
//! conv3×3(c→w) → Res(w) ─────────────────────────────┐
//!                 └ conv3×3 stride 2 (w→2w) → Res(2w) → Res(2w) → upsample ×2 → conv3×3(2w→w) ─ concat → conv3×3(2w→w) → Res(w) → conv3×3(w→c)
//!
//! Res(n): h = conv(SiLU(x)) + Linear(e); out = x + conv(SiLU(h)), where e is the time embedding
//! MLP(t, sin πkt, cos πkt) shared by all blocks. Inputs and outputs are flattened images
//! `[batch, c·h·w]` (as every model of this crate); the upsampling returns to the input size, so
//! odd sizes work too.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::unet::UNetConfig;
//! let dev = Device::flex();
//! let net = UNetConfig::new(1, 8, 8).with_width(8).init(&dev, 0);
//! let out = net.forward(Tensor::zeros([3, 64], &dev), Tensor::ones([3], &dev));
//! assert_eq!(out.dims(), [3, 64]);
//! ```

use crate::init::seeded;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};

/// U-Net configuration.
#[derive(Config, Debug)]
pub struct UNetConfig {
    /// Image channels.
    pub channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width_px: usize,
    /// Channels at full resolution (twice that at half resolution).
    #[config(default = 32)]
    pub width: usize,
    /// Size of the time embedding.
    #[config(default = 64)]
    pub embedding: usize,
    /// Fourier frequencies of the time input.
    #[config(default = 8)]
    pub frequencies: usize,
    /// Output channels (by default as many as the input has): a conditional model reads the
    /// condition as extra input channels and returns fewer.
    #[config(default = "None")]
    pub out_channels: Option<usize>,
}

/// A residual block conditioned on the time embedding.
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    time: Linear,
}

impl ResBlock {
    fn new(n: usize, emb: usize, device: &Device) -> Self {
        Self {
            conv1: conv3(n, n, 1, device),
            conv2: conv3(n, n, 1, device),
            time: LinearConfig::new(emb, n).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, e: Tensor<2>) -> Tensor<4> {
        let [b, n, _, _] = x.dims();
        let h = self.conv1.forward(silu(x.clone())) + self.time.forward(e).reshape([b, n, 1, 1]);
        x + self.conv2.forward(silu(h))
    }
}

fn conv3(cin: usize, cout: usize, stride: usize, device: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(device)
}

/// The U-Net.
#[derive(Module, Debug)]
pub struct UNet {
    embed1: Linear,
    embed2: Linear,
    conv_in: Conv2d,
    res_in: ResBlock,
    down: Conv2d,
    mid1: ResBlock,
    mid2: ResBlock,
    up: Conv2d,
    merge: Conv2d,
    res_out: ResBlock,
    conv_out: Conv2d,
    #[module(skip)]
    shape: [usize; 3],
    #[module(skip)]
    frequencies: usize,
}

impl UNetConfig {
    /// Build with weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> UNet {
        let (w, e) = (self.width, self.embedding);
        seeded(device, seed, || UNet {
            embed1: LinearConfig::new(1 + 2 * self.frequencies, e).init(device),
            embed2: LinearConfig::new(e, e).init(device),
            conv_in: conv3(self.channels, w, 1, device),
            res_in: ResBlock::new(w, e, device),
            down: conv3(w, 2 * w, 2, device),
            mid1: ResBlock::new(2 * w, e, device),
            mid2: ResBlock::new(2 * w, e, device),
            up: conv3(2 * w, w, 1, device),
            merge: conv3(2 * w, w, 1, device),
            res_out: ResBlock::new(w, e, device),
            conv_out: conv3(w, self.out_channels.unwrap_or(self.channels), 1, device),
            shape: [self.channels, self.height, self.width_px],
            frequencies: self.frequencies,
        })
    }
}

impl UNet {
    /// The image shape [c, h, w] it takes (flattened).
    pub fn image_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// The base width (channels at full resolution).
    pub fn width(&self) -> usize {
        self.conv_in.weight.dims()[0]
    }

    /// The output channels.
    pub fn out_channels(&self) -> usize {
        self.conv_out.weight.dims()[0]
    }

    /// Output for flattened images `x` `[b, c·h·w]` at times `t` `[b]`: `[b, c_out·h·w]` (the
    /// shape of `x` unless the network was built with other output channels).
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        let [b, _] = x.dims();
        let [c, h, w] = self.shape;
        let out = self.forward_image(x.reshape([b, c, h, w]), t);
        out.reshape([b, self.out_channels() * h * w])
    }

    /// Output `[b, c_out, h, w]` for images `[b, c, h, w]` of any size (the configured height and
    /// width are those of [`UNet::forward`]'s flattened input only).
    pub fn forward_image(&self, x: Tensor<4>, t: Tensor<1>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let e = crate::time_mlp::time_features(t, self.frequencies);
        let e = self.embed2.forward(silu(self.embed1.forward(e)));
        let x0 = self.conv_in.forward(x);
        let skip = self.res_in.forward(x0, e.clone());
        let m = self.down.forward(skip.clone());
        let m = self.mid1.forward(m, e.clone());
        let m = self.mid2.forward(m, e.clone());
        let up = interpolate(
            m,
            InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([h, w]),
        );
        let up = self.up.forward(up);
        let merged = self.merge.forward(Tensor::cat(vec![up, skip], 1));
        let out = self.res_out.forward(merged, e);
        self.conv_out.forward(silu(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_for_digits_and_mnist_and_seeded_init() {
        let dev = Device::flex();
        for (h, w) in [(8, 8), (28, 28), (7, 5)] {
            let net = UNetConfig::new(1, h, w).with_width(8).init(&dev, 1);
            let out = net.forward(Tensor::zeros([2, h * w], &dev), Tensor::zeros([2], &dev));
            assert_eq!(out.dims(), [2, h * w]);
        }
        let flat = |seed| {
            gradlab_core::flat::flatten_host(
                &UNetConfig::new(1, 8, 8).with_width(8).init(&dev, seed),
            )
            .unwrap()
        };
        let (a, b) = (flat(4), flat(4));
        assert_eq!(a, b);
        // A conditional network: 4 channels in, 2 out, on images of another size too.
        let net = UNetConfig::new(4, 8, 6)
            .with_width(8)
            .with_out_channels(Some(2))
            .init(&dev, 1);
        assert_eq!(
            net.forward(Tensor::zeros([3, 4 * 48], &dev), Tensor::zeros([3], &dev))
                .dims(),
            [3, 96]
        );
        let img = net.forward_image(
            Tensor::zeros([2, 4, 13, 10], &dev),
            Tensor::zeros([2], &dev),
        );
        assert_eq!(img.dims(), [2, 2, 13, 10]);
    }

    /// The output depends on t and on every input pixel (the receptive field covers the image).
    #[test]
    fn output_depends_on_time_and_input() {
        let dev = Device::flex();
        let net = UNetConfig::new(1, 8, 8).with_width(8).init(&dev, 2);
        let x = Tensor::<2>::random([1, 64], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let at = |x: Tensor<2>, t: f32| {
            net.forward(x, Tensor::from_floats([t], &dev))
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (y0, y1) = (at(x.clone(), 0.1), at(x.clone(), 0.9));
        assert!(y0.iter().zip(&y1).any(|(a, b)| (a - b).abs() > 1e-6));
        // Perturb the corner pixel: the opposite corner's output changes.
        let mut v = x
            .clone()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap();
        v[0] += 1.0;
        let x2 = Tensor::<2>::from_data(TensorData::new(v, [1, 64]), &dev);
        let y2 = at(x2, 0.1);
        assert!((y2[63] - y0[63]).abs() > 1e-7, "{} vs {}", y2[63], y0[63]);
    }
}
