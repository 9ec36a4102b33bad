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

use crate::kinks::{max_pool, relu};
use crate::{Net, init::seeded};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

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
    /// Whether the network can take these images: both 2×2 poolings need at least 4×4 pixels.
    pub fn validate(&self) -> Result<(), String> {
        crate::check_image_input("cnn", [self.channels, self.height, self.width], 4)
    }

    /// Build with weights drawn from `seed` (see [`SmallCnnConfig::validate`] for the sizes it
    /// takes).
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

impl SmallCnn {
    /// Per-example gradients of each example's cross-entropy, one row per example in the order of
    /// [`gradlab_core::flat::flatten`] (conv1, conv2, fc1, fc2; each weight then bias).
    ///
    /// One forward and one backward pass: zero probes on every pre-activation give the per-example
    /// δ; a convolution's per-example weight gradient is δ_i (`[out, L]`) times the example's
    /// unfolded input patches (`[L, c·3·3]`), a linear layer's the outer product of its input and δ_i.
    /// `x` must live on an autodiff device.
    fn per_example_rows(
        &self,
        x: Tensor<2>,
        y: Tensor<1, Int>,
    ) -> gradlab_core::Result<Vec<Vec<f64>>> {
        use burn::tensor::module::unfold4d;
        use burn::tensor::ops::UnfoldOptions;
        let [c, h, w] = self.shape;
        let b = x.dims()[0];
        let device = x.device();
        let probe4 = |dims: [usize; 4]| Tensor::<4>::zeros(dims, &device).require_grad();
        let probe2 = |dims: [usize; 2]| Tensor::<2>::zeros(dims, &device).require_grad();
        let x0 = x.reshape([b, c, h, w]);
        let z1 = self.conv1.forward(x0.clone());
        let p1 = probe4(z1.dims());
        let x1 = max_pool(&self.pool, relu(z1 + p1.clone()));
        let z2 = self.conv2.forward(x1.clone());
        let p2 = probe4(z2.dims());
        let x2 = max_pool(&self.pool, relu(z2 + p2.clone())).flatten::<2>(1, 3);
        let z3 = self.fc1.forward(x2.clone());
        let p3 = probe2(z3.dims());
        let x3 = relu(z3 + p3.clone());
        let z4 = self.fc2.forward(x3.clone());
        let p4 = probe2(z4.dims());
        let logp = burn::tensor::activation::log_softmax(z4 + p4.clone(), 1);
        let grads = logp.gather(1, y.reshape([b, 1])).sum().neg().backward();
        let host = gradlab_core::bridge::to_host::<3>;
        let missing =
            |what: &str| gradlab_core::CoreError::MissingGradient(format!("the probe of {what}"));
        let mut rows = vec![Vec::with_capacity(self.num_params()); b];
        for (input, probe) in [(x0, p1), (x1, p2)] {
            let d = probe.grad(&grads).ok_or_else(|| missing("a convolution"))?;
            let [_, out, ph, pw] = d.dims();
            let patches = unfold4d(
                input.inner(),
                [3, 3],
                UnfoldOptions::new([1, 1], [1, 1], [1, 1]),
            );
            let n = patches.dims()[1];
            let delta = d.reshape([b, out, ph * pw]);
            let gw = host(delta.clone().matmul(patches.swap_dims(1, 2)))?;
            let gb = host(delta.sum_dim(2))?;
            for (i, row) in rows.iter_mut().enumerate() {
                row.extend_from_slice(&gw[i * out * n..(i + 1) * out * n]);
                row.extend_from_slice(&gb[i * out..(i + 1) * out]);
            }
        }
        for (input, probe) in [(x2, p3), (x3, p4)] {
            let d = probe.grad(&grads).ok_or_else(|| missing("a dense layer"))?;
            let [_, out] = d.dims();
            let din = input.dims()[1];
            let a = host(input.inner().reshape([b, din, 1]))?;
            let dv = host(d.reshape([b, 1, out]))?;
            for (i, row) in rows.iter_mut().enumerate() {
                for p in 0..din {
                    row.extend((0..out).map(|q| a[i * din + p] * dv[i * out + q]));
                }
                row.extend_from_slice(&dv[i * out..(i + 1) * out]);
            }
        }
        Ok(rows)
    }
}

impl Net for SmallCnn {
    /// One forward and one backward pass for the batch (`per_example_rows`).
    fn per_example_grads(&self, x: Tensor<2>, y: Tensor<1, Int>) -> gradlab_core::Result<Vec<f64>> {
        Ok(self.per_example_rows(x, y)?.concat())
    }

    fn input_features(&self) -> usize {
        self.shape.iter().product()
    }

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
        let x = max_pool(&self.pool, relu(self.conv1.forward(x)));
        let x = max_pool(&self.pool, relu(self.conv2.forward(x)));
        let x = x.flatten::<2>(1, 3);
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}
