//! # gradlab-nets
//!
//! Small models sized for 8×8 to 32×32 inputs on a CPU: [`mlp::Mlp`], [`cnn::SmallCnn`],
//! [`resnet::SmallResNet`] (all classifiers over flattened inputs, see [`Net`]), and the
//! time-conditioned [`time_mlp::TimeMlp`] and [`unet::UNet`] for generative models ([`TimeNet`]). Initialisation is seeded
//! ([`init::seeded`]): the same seed gives the same weights.

pub mod binary;
pub mod cnn;
pub mod cond_time_mlp;
pub mod gelan;
pub mod init;
pub mod kinks;
pub mod lora;
pub mod loss;
pub mod mlp;
pub mod resnet;
pub mod time_mlp;
pub mod unet;

pub use loss::{LossKind, autodiff_device};

use burn::prelude::*;

/// A classifier over flattened inputs `[batch, features]` returning logits `[batch, classes]`.
pub trait Net: Module {
    /// Logits for a batch of flattened inputs.
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;

    /// The first layer, which sees the raw inputs (for first-layer methods such as TrAct).
    fn first_layer(&self) -> Option<FirstLayer> {
        None
    }

    /// The number of input features the network takes (`c·h·w` for image networks), so that a
    /// caller can refuse a batch of another shape with an error instead of a panic.
    fn input_features(&self) -> usize;

    /// Per-example gradients of each example's cross-entropy, |batch| × P row-major, each row in
    /// the order of [`gradlab_core::flat::flatten`]. `x` must live on an autodiff device. This
    /// default takes one backward pass per example; [`mlp::Mlp`] and [`cnn::SmallCnn`] compute
    /// them in one pass for the batch.
    fn per_example_grads(&self, x: Tensor<2>, y: Tensor<1, Int>) -> gradlab_core::Result<Vec<f64>>
    where
        Self: Sized,
    {
        let b = x.dims()[0];
        let mut rows = Vec::with_capacity(b * self.num_params());
        for i in 0..b {
            let logp =
                burn::tensor::activation::log_softmax(self.forward(x.clone().slice(i..i + 1)), 1);
            let yi = y.clone().slice(i..i + 1).reshape([1, 1]);
            let loss = logp.gather(1, yi).sum().neg();
            let grads = burn::optim::GradientsParams::from_grads(loss.backward(), self);
            rows.extend(gradlab_core::flat::flat_grads_host(self, &grads)?);
        }
        Ok(rows)
    }
}

/// Nearest-neighbour ×2 upsampling of [B, C, H, W] (each value repeated in a 2×2 block).
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .expand([b, c, h, 2, w, 2])
        .reshape([b, c, 2 * h, 2 * w])
}

/// Why an image network cannot take `c×h×w` inputs: empty images, or images smaller than its
/// receptive field needs (`min_side` on each side).
pub fn check_image_input(
    model: &str,
    [c, h, w]: [usize; 3],
    min_side: usize,
) -> Result<(), String> {
    if c == 0 || h == 0 || w == 0 {
        return Err(format!("{model}: images of {c}×{h}×{w} have no pixels"));
    }
    if h < min_side || w < min_side {
        return Err(format!(
            "{model}: images of {h}×{w} are too small (it needs at least {min_side}×{min_side})"
        ));
    }
    Ok(())
}

/// A time-conditioned network over flattened data `[batch, d]` and times `[batch]`, returning
/// `[batch, d]` (a score, noise, x₀ or velocity): [`time_mlp::TimeMlp`], [`unet::UNet`].
pub trait TimeNet: Module {
    /// The output for `x` at times `t`.
    fn forward_time(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2>;
    /// The length d of one (flattened) example it takes; 0 if any (a caller checks inputs
    /// against it, since a wrong width panics inside burn).
    fn data_dim(&self) -> usize;
}

impl TimeNet for time_mlp::TimeMlp {
    fn forward_time(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        self.forward(x, t)
    }
    fn data_dim(&self) -> usize {
        self.dim()
    }
}

impl TimeNet for unet::UNet {
    fn forward_time(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        self.forward(x, t)
    }
    fn data_dim(&self) -> usize {
        self.image_shape().iter().product()
    }
}

/// The first layer of a [`Net`], as first-layer methods need to know it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FirstLayer {
    /// A linear layer applied to the flattened input.
    Linear {
        /// Its weight (`[in, out]`).
        weight: burn::module::ParamId,
    },
    /// A 2D convolution applied to the input reshaped to `[b, c, h, w]`.
    Conv {
        /// Its weight (`[out, c, kh, kw]`).
        weight: burn::module::ParamId,
        /// Kernel size.
        kernel: [usize; 2],
        /// Stride.
        stride: [usize; 2],
        /// Zero padding.
        padding: [usize; 2],
        /// Input shape (c, h, w).
        input: [usize; 3],
    },
}

/// Hidden-layer nonlinearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// tanh(x)
    Tanh,
    /// x·σ(x)
    Silu,
    /// 1/(1+e^{−x})
    Sigmoid,
}

impl Activation {
    /// Apply the nonlinearity.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        use burn::tensor::activation as a;
        match self {
            Activation::Relu => crate::kinks::relu(x),
            Activation::Tanh => x.tanh(),
            Activation::Silu => a::silu(x),
            Activation::Sigmoid => a::sigmoid(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{cnn::SmallCnnConfig, mlp::MlpConfig, resnet::SmallResNetConfig};

    #[test]
    fn seeds_fix_the_weights() {
        let dev = Device::flex();
        let flat = |seed| {
            gradlab_core::flat::flatten_host(&SmallCnnConfig::new(1, 8, 8, 10).init(&dev, seed))
                .unwrap()
        };
        let (a, b, c) = (flat(1), flat(1), flat(2));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn linear_init_matches_pytorch_bound() {
        // PyTorch's nn.Linear draws weights and biases from U(−1/√fan_in, 1/√fan_in).
        let net = MlpConfig::new(vec![100, 50]).init(&Device::flex(), 0);
        let w = gradlab_core::flat::flatten_host(&net).unwrap();
        let bound = 0.1;
        assert!(w.iter().all(|v| v.abs() <= bound));
        assert!(w.iter().any(|v| v.abs() > 0.9 * bound));
    }

    /// The gradient of each example's cross-entropy alone, by ordinary autodiff, in the
    /// visiting order of `gradlab_core::flat::flatten`: the independent reference for `per_example_grads`.
    fn one_at_a_time<M: Net>(net: &M, xs: &[f32], ys: &[i64], dim: usize) -> Vec<Vec<f64>> {
        use burn::module::{ModuleVisitor, Param};
        use burn::optim::GradientsParams;
        struct Collect<'a>(&'a GradientsParams, Vec<f64>);
        impl ModuleVisitor for Collect<'_> {
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(p.id) {
                    self.1
                        .extend(g.into_data().convert::<f64>().try_to_vec::<f64>().unwrap());
                }
            }
        }
        let dev = Device::flex().autodiff();
        (0..ys.len())
            .map(|i| {
                let xi = Tensor::<2>::from_data(
                    TensorData::new(xs[i * dim..(i + 1) * dim].to_vec(), [1, dim]),
                    &dev,
                );
                let logp = burn::tensor::activation::log_softmax(net.forward(xi), 1);
                let y = ys[i] as usize;
                let loss = logp.slice([0..1, y..y + 1]).sum().neg();
                let grads = GradientsParams::from_grads(loss.backward(), net);
                let mut c = Collect(&grads, vec![]);
                net.visit(&mut c);
                c.1
            })
            .collect()
    }

    fn assert_rows_close(got: &[f64], want: &[Vec<f64>]) {
        let p = want.first().map_or(1, |w| w.len());
        assert_eq!(got.len(), want.len() * p);
        for (i, (g, w)) in got.chunks(p).zip(want).enumerate() {
            assert_eq!(g.len(), w.len());
            for (k, (a, b)) in g.iter().zip(w).enumerate() {
                assert!(
                    (a - b).abs() < 1e-5,
                    "example {i}, coordinate {k}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn per_example_gradients_match_one_example_at_a_time() {
        let dev = Device::flex().autodiff();
        let net = MlpConfig::new(vec![5, 4, 3])
            .with_activation(Activation::Tanh)
            .init(&dev, 2);
        let xs: Vec<f32> = (0..3 * 5)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
            .collect();
        let ys = [2i64, 0, 1];
        let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [3, 5]), &dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys.to_vec(), [3]), &dev);
        assert_rows_close(
            &net.per_example_grads(x, y).unwrap(),
            &one_at_a_time(&net, &xs, &ys, 5),
        );
    }

    #[test]
    fn cnn_per_example_gradients_match_one_example_at_a_time() {
        let dev = Device::flex().autodiff();
        let net = SmallCnnConfig::new(1, 8, 8, 3)
            .with_c1(2)
            .with_c2(3)
            .with_hidden(4)
            .init(&dev, 5);
        let xs: Vec<f32> = (0..2 * 64)
            .map(|i| ((i * 29 % 23) as f32 - 11.0) / 9.0)
            .collect();
        let ys = [1i64, 2];
        let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [2, 64]), &dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys.to_vec(), [2]), &dev);
        assert_rows_close(
            &net.per_example_grads(x, y).unwrap(),
            &one_at_a_time(&net, &xs, &ys, 64),
        );
    }

    #[test]
    fn the_default_per_example_gradients_match_one_example_at_a_time() {
        // SmallResNet has no batched method of its own: the trait's default, one backward pass
        // per example, against the independent visitor-based reference.
        let dev = Device::flex().autodiff();
        let net = SmallResNetConfig::new(1, 8, 8, 3).init(&dev, 4);
        let xs: Vec<f32> = (0..2 * 64)
            .map(|i| ((i * 13 % 17) as f32 - 8.0) / 7.0)
            .collect();
        let ys = [0i64, 2];
        let x = Tensor::<2>::from_data(TensorData::new(xs.clone(), [2, 64]), &dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys.to_vec(), [2]), &dev);
        assert_rows_close(
            &net.per_example_grads(x, y).unwrap(),
            &one_at_a_time(&net, &xs, &ys, 64),
        );
    }

    #[test]
    fn flatten_and_load_round_trip() {
        use gradlab_core::flat::{flatten_host, load_host};
        let net = SmallResNetConfig::new(1, 8, 8, 10).init(&Device::flex(), 0);
        let flat = flatten_host(&net).unwrap();
        assert_eq!(flat.len(), net.num_params());
        // Values representable in f32 come back exactly from the f32 parameters.
        let shifted: Vec<f64> = flat.iter().map(|v| f64::from(*v as f32 + 1.0)).collect();
        let net2 = load_host(net.clone(), &shifted).unwrap();
        assert_eq!(flatten_host(&net2).unwrap(), shifted);
        assert!(load_host(net, &shifted[1..]).is_err());
    }
}

#[cfg(test)]
mod shape_tests {
    use super::*;
    use crate::{cnn::SmallCnnConfig, resnet::SmallResNetConfig};

    #[test]
    fn cnn_and_resnet_handle_8_to_32_pixel_inputs() {
        let dev = Device::flex();
        for (c, h, w) in [(1, 8, 8), (1, 28, 28), (3, 32, 32)] {
            let x = Tensor::<2>::zeros([2, c * h * w], &dev);
            assert_eq!(
                SmallCnnConfig::new(c, h, w, 10)
                    .init(&dev, 0)
                    .forward(x.clone())
                    .dims(),
                [2, 10]
            );
            assert_eq!(
                SmallResNetConfig::new(c, h, w, 10)
                    .init(&dev, 0)
                    .forward(x)
                    .dims(),
                [2, 10]
            );
        }
    }
}
