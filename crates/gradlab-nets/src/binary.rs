//! Binary (1-bit weight, 1-bit activation) layers and the estimators that train them, from
//! "Estimator Meets Equilibrium Perspective: A Rectified Straight Through Estimator for Binary
//! Neural Networks Training" (Wu, Zheng, Liu, Zheng, ICCV 2023), as the official
//! `binarized_modules.py` (DravenALG/ReSTE) defines them:
//!
//! - forward: sign(x) in every case;
//! - [`Estimator::ClippedSte`] backward: 1 for |x| ≤ 1, else 0 (the code's "STE");
//! - [`Estimator::ReSte`] backward: (1/o)|x|^{(1−o)/o} for 0.1 < |x| ≤ t, the constant 0.1^{1/o}/0.1
//!   for |x| ≤ 0.1, 0 beyond t (t = 1.5); the exponent o grows over training as
//!   o = 1 + (1 − cos(π/2 · e/E))(o_end − 1) ([`reste_o`], o_end = 3).
//!
//! The estimators use the detach trick: `h(x) + (sign(x) − h(x)).detach()` has the forward of sign
//! and the gradient of h, where h is the estimator's "equivalent forward" function.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::binary::{Estimator, binarize};
//! let dev = Device::flex().autodiff();
//! let x = Tensor::<1>::from_floats([0.05, 0.5, -2.0], &dev).require_grad();
//! let y = binarize(x.clone(), Estimator::ReSte { o: 2.0, t: 1.5 });
//! assert_eq!(y.clone().into_data().try_to_vec::<f32>().unwrap(), vec![1.0, 1.0, -1.0]);
//! let g = x.grad(&y.sum().backward()).unwrap().into_data().try_to_vec::<f32>().unwrap();
//! // 0.1^{1/2}/0.1, (1/2)·0.5^{-1/2}, 0.
//! assert!((g[0] - 3.1623).abs() < 1e-3 && (g[1] - 0.7071).abs() < 1e-3 && g[2] == 0.0);
//! ```

use crate::{Net, init::seeded};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

/// How the gradient of sign(x) is estimated.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Estimator {
    /// Identity gradient.
    Ste,
    /// Identity gradient for |x| ≤ 1, zero beyond.
    ClippedSte,
    /// The rectified power-function estimator with exponent `o` ≥ 1 and cut-off `t`.
    ReSte {
        /// Exponent o (1 is a clipped STE of slope 1 up to t).
        o: f64,
        /// Cut-off t (1.5 in the paper).
        t: f64,
    },
}

/// The ReSTE exponent at epoch `epoch` of `epochs`: 1 + (1 − cos(π/2 · e/E))(o_end − 1).
pub fn reste_o(epoch: usize, epochs: usize, o_end: f64) -> f64 {
    let beta = 1.0 - (std::f64::consts::FRAC_PI_2 * epoch as f64 / epochs.max(1) as f64).cos();
    1.0 + beta * (o_end - 1.0)
}

/// sign(x)·|x|^{1/o}: ReSTE's equivalent forward without the cut-off (`ReSTE_Forward` in the
/// official `utils/tools.py`, used for the estimating-error indicator).
pub fn power_forward<const D: usize>(x: Tensor<D>, o: f64) -> Tensor<D> {
    x.clone().sign() * x.abs().powf_scalar(1.0 / o)
}

/// sign(x) forward, the estimator's gradient backward.
pub fn binarize<const D: usize>(x: Tensor<D>, est: Estimator) -> Tensor<D> {
    let h = match est {
        Estimator::Ste => x.clone(),
        Estimator::ClippedSte => x.clone().clamp(-1.0, 1.0),
        Estimator::ReSte { o, t } => {
            let slope = 0.1f64.powf(1.0 / o) / 0.1;
            let lin = x.clone().clamp(-0.1, 0.1).mul_scalar(slope);
            let pow = x.clone().sign() * x.clone().abs().clamp(0.1, t).powf_scalar(1.0 / o);
            let inner = x.clone().abs().lower_equal_elem(0.1);
            pow.mask_where(inner, lin)
        }
    };
    h.clone() + (x.sign() - h).detach()
}

/// A linear layer with binarised weights (scaled by mean |W|, as the official code) applied to
/// binarised inputs.
fn binary_linear(layer: &Linear, x: Tensor<2>, est: Estimator) -> Tensor<2> {
    let w = layer.weight.val();
    let scale = w.clone().abs().mean();
    let wb = binarize(w, est) * scale.unsqueeze::<2>();
    let y = binarize(x, est).matmul(wb);
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze::<2>(),
        None => y,
    }
}

/// Binary MLP configuration: a real-valued first and last layer around 1W/1A hidden layers.
#[derive(Config, Debug)]
pub struct BinaryMlpConfig {
    /// Widths: input, hidden…, output (at least three entries).
    pub dims: Vec<usize>,
}

/// The binary MLP; set [`BinaryMlp::estimator`] (e.g. every epoch for ReSTE's schedule).
#[derive(Module, Debug)]
pub struct BinaryMlp {
    /// First (real) layer, then binary layers, then the last (real) layer.
    pub layers: Vec<Linear>,
    /// The gradient estimator of the binary layers.
    #[module(skip)]
    pub estimator: Estimator,
}

impl BinaryMlpConfig {
    /// Build with weights drawn from `seed`, estimator `est`.
    ///
    /// Panics with fewer than three widths (a programming error).
    pub fn init(&self, device: &Device, seed: u64, est: Estimator) -> BinaryMlp {
        assert!(
            self.dims.len() >= 3,
            "a binary MLP needs input, hidden and output widths"
        );
        seeded(device, seed, || BinaryMlp {
            layers: self
                .dims
                .windows(2)
                .map(|w| LinearConfig::new(w[0], w[1]).init(device))
                .collect(),
            estimator: est,
        })
    }
}

impl BinaryMlp {
    /// The binary (hidden) layers.
    pub fn binary_layers(&self) -> &[Linear] {
        &self.layers[1..self.layers.len() - 1]
    }
}

impl Net for BinaryMlp {
    fn input_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.weight.dims()[0])
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        let h = self.layers[0].forward(x);
        let h = self.layers[1..n - 1]
            .iter()
            .fold(h, |h, l| binary_linear(l, h, self.estimator));
        self.layers[n - 1].forward(binarize(h, self.estimator))
    }
}

/// A binary network whose estimator can be changed between epochs.
pub trait BinaryNet: Net {
    /// Use `est` for the binary layers from now on.
    fn set_estimator(&mut self, est: Estimator);
}

impl BinaryNet for BinaryMlp {
    fn set_estimator(&mut self, est: Estimator) {
        self.estimator = est;
    }
}

impl BinaryNet for BinaryCnn {
    fn set_estimator(&mut self, est: Estimator) {
        self.estimator = est;
    }
}

/// Binary CNN configuration: a real 3×3 convolution, a 1W/1A 3×3 convolution, 2×2 max pooling
/// after each, and a real linear classifier (the first and last layers stay real-valued, as in the
/// paper's networks).
#[derive(Config, Debug)]
pub struct BinaryCnnConfig {
    /// Input channels.
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output classes.
    pub classes: usize,
    /// Channels of both convolutions.
    #[config(default = 32)]
    pub width_channels: usize,
}

/// The binary CNN; set [`BinaryCnn::estimator`] as for [`BinaryMlp`].
#[derive(Module, Debug)]
pub struct BinaryCnn {
    conv1: burn::nn::conv::Conv2d,
    conv2: burn::nn::conv::Conv2d,
    pool: burn::nn::pool::MaxPool2d,
    head: Linear,
    #[module(skip)]
    shape: [usize; 3],
    /// The gradient estimator of the binary convolution.
    #[module(skip)]
    pub estimator: Estimator,
}

impl BinaryCnnConfig {
    /// Build with weights drawn from `seed`, estimator `est`.
    pub fn init(&self, device: &Device, seed: u64, est: Estimator) -> BinaryCnn {
        let c = self.width_channels;
        let flat = c * (self.height / 4) * (self.width / 4);
        seeded(device, seed, || BinaryCnn {
            conv1: crate::cnn::conv3x3(self.channels, c, 1, device),
            conv2: crate::cnn::conv3x3(c, c, 1, device),
            pool: burn::nn::pool::MaxPool2dConfig::new([2, 2]).init(),
            head: LinearConfig::new(flat.max(1), self.classes).init(device),
            shape: [self.channels, self.height, self.width],
            estimator: est,
        })
    }
}

impl BinaryCnn {
    /// The 1W/1A convolution: binarised inputs against sign(W) scaled by mean |W| (as the
    /// official code), plus the bias.
    fn binary_conv(&self, x: Tensor<4>) -> Tensor<4> {
        let wt = self.conv2.weight.val();
        let scale = wt.clone().abs().mean();
        let wb = binarize(wt, self.estimator) * scale.unsqueeze::<4>();
        let options = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let bias = self.conv2.bias.as_ref().map(|p| p.val());
        burn::tensor::module::conv2d(binarize(x, self.estimator), wb, bias, options)
    }

    /// The weight of the binary convolution.
    pub fn binary_weight(&self) -> &burn::module::Param<Tensor<4>> {
        &self.conv2.weight
    }
}

impl Net for BinaryCnn {
    fn input_features(&self) -> usize {
        self.shape.iter().product()
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [c, h, w] = self.shape;
        let b = x.dims()[0];
        let x = self
            .pool
            .forward(self.conv1.forward(x.reshape([b, c, h, w])));
        let x = self.pool.forward(self.binary_conv(x));
        self.head
            .forward(binarize(x, self.estimator).flatten::<2>(1, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grad_of(est: Estimator, xs: &[f32]) -> Vec<f32> {
        let dev = Device::flex().autodiff();
        let x = Tensor::<1>::from_floats(xs, &dev).require_grad();
        let y = binarize(x.clone(), est);
        x.grad(&y.sum().backward())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    #[test]
    fn estimators_match_the_official_backward() {
        let xs = [-2.0, -1.2, -0.5, -0.05, 0.0, 0.05, 0.3, 1.0, 1.4, 1.6];
        // Transcription of Binary_ReSTE.backward for o = 3, t = 1.5.
        let o = 3.0f64;
        let want: Vec<f64> = xs
            .iter()
            .map(|&x: &f64| {
                let a = x.abs();
                if a <= 0.1 {
                    0.1f64.powf(1.0 / o) / 0.1
                } else if a <= 1.5 {
                    (1.0 / o) * a.powf((1.0 - o) / o)
                } else {
                    0.0
                }
            })
            .collect();
        let xs32: Vec<f32> = xs.iter().map(|v| *v as f32).collect();
        let got = grad_of(Estimator::ReSte { o, t: 1.5 }, &xs32);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-4 * (1.0 + w.abs()),
                "{got:?} vs {want:?}"
            );
        }
        assert_eq!(
            grad_of(Estimator::ClippedSte, &xs32),
            vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
        );
        assert_eq!(grad_of(Estimator::Ste, &xs32), vec![1.0; 10]);
    }

    #[test]
    fn o_schedule_and_model_shapes() {
        assert_eq!(reste_o(0, 10, 3.0), 1.0);
        assert!((reste_o(10, 10, 3.0) - 3.0).abs() < 1e-12);
        let dev = Device::flex();
        let net = BinaryMlpConfig::new(vec![64, 32, 32, 10]).init(&dev, 0, Estimator::ClippedSte);
        assert_eq!(net.forward(Tensor::zeros([3, 64], &dev)).dims(), [3, 10]);
        assert_eq!(net.binary_layers().len(), 1);
        let cnn =
            BinaryCnnConfig::new(1, 8, 8, 10).init(&dev, 0, Estimator::ReSte { o: 2.0, t: 1.5 });
        assert_eq!(cnn.forward(Tensor::zeros([2, 64], &dev)).dims(), [2, 10]);
    }

    #[test]
    fn binary_layers_use_signs_scaled_by_the_mean_magnitude() {
        let dev = Device::flex();
        // Linear: y = sign(x)·(mean|W|·sign(W)) + b, by hand on a 2 × 3 weight.
        let mut layer = burn::nn::LinearConfig::new(2, 3).init(&dev);
        let w = [0.5f32, -2.0, 0.1, -0.3, 1.0, 0.9]; // [in 2, out 3]
        layer.weight = burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(w.to_vec(), [2, 3]),
            &dev,
        ));
        let bias = [0.1f32, -0.2, 0.05];
        layer.bias = Some(burn::module::Param::from_tensor(Tensor::from_data(
            TensorData::new(bias.to_vec(), [3]),
            &dev,
        )));
        let x = Tensor::<2>::from_data(TensorData::new(vec![0.7f32, -0.2], [1, 2]), &dev);
        let y: Vec<f32> = binary_linear(&layer, x, Estimator::ClippedSte)
            .into_data()
            .try_to_vec()
            .unwrap();
        let scale = w.iter().map(|v| v.abs()).sum::<f32>() / 6.0; // 0.8 ≠ 1
        let xs = [1.0f32, -1.0];
        for j in 0..3 {
            let want = scale * (xs[0] * w[j].signum() + xs[1] * w[3 + j].signum()) + bias[j];
            assert!((y[j] - want).abs() < 1e-6, "{j}: {} vs {want}", y[j]);
        }
        // Convolution: mean|W| times the convolution of the signs, plus the bias.
        let cnn = BinaryCnnConfig::new(1, 8, 8, 10)
            .with_width_channels(4)
            .init(&dev, 1, Estimator::ClippedSte);
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..2 * 4 * 4 * 4)
                    .map(|i| ((i * 13 % 17) as f32 - 8.0) / 8.0)
                    .collect::<Vec<_>>(),
                [2, 4, 4, 4],
            ),
            &dev,
        );
        let got: Vec<f32> = cnn.binary_conv(x.clone()).into_data().try_to_vec().unwrap();
        let wt = cnn.conv2.weight.val();
        let scale = wt.clone().abs().mean().into_scalar::<f32>();
        assert!(
            (scale - 1.0).abs() > 0.1,
            "the test needs mean|W| away from 1: {scale}"
        );
        let options = burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let bias = cnn.conv2.bias.as_ref().map(|p| p.val());
        let plain = burn::tensor::module::conv2d(x.sign(), wt.sign(), None, options);
        let want = plain.mul_scalar(scale)
            + bias.map_or_else(
                || Tensor::zeros([1, 4, 1, 1], &dev),
                |b| b.reshape([1, 4, 1, 1]),
            );
        let want: Vec<f32> = want.into_data().try_to_vec().unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
    }
}
