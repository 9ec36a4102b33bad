//! Time-conditioned MLP for score and flow models on low-dimensional data.
//!
//! Input `[x, t, sin(π k t), cos(π k t)]` for k = 1, 2, …, K, then an MLP with SiLU activations;
//! output has the data dimension (a score, noise, x₀ or velocity). The lowest frequency has period
//! 2, so every t ∈ [0, 1] has its own embedding (with period 1, t = 0 and t = 1 — data and
//! noise — would look alike).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::time_mlp::TimeMlpConfig;
//! let dev = Device::flex();
//! let net = TimeMlpConfig::new(2).init(&dev, 0);
//! let out = net.forward(Tensor::zeros([4, 2], &dev), Tensor::ones([4], &dev));
//! assert_eq!(out.dims(), [4, 2]);
//! ```

use crate::{Activation, Net, mlp::Mlp, mlp::MlpConfig};
use burn::prelude::*;

/// Time-conditioned MLP configuration.
#[derive(Config, Debug)]
pub struct TimeMlpConfig {
    /// Data dimension (input and output).
    pub dim: usize,
    /// Hidden width.
    #[config(default = 128)]
    pub hidden: usize,
    /// Hidden layers.
    #[config(default = 3)]
    pub layers: usize,
    /// Number of Fourier frequencies K for the time embedding.
    #[config(default = 8)]
    pub frequencies: usize,
}

/// The time-conditioned MLP.
#[derive(Module, Debug)]
pub struct TimeMlp {
    mlp: Mlp,
    #[module(skip)]
    frequencies: usize,
}

impl TimeMlpConfig {
    /// Build with weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> TimeMlp {
        let mut dims = vec![self.dim + 1 + 2 * self.frequencies];
        dims.extend(std::iter::repeat_n(self.hidden, self.layers.max(1)));
        dims.push(self.dim);
        let mlp = MlpConfig::new(dims)
            .with_activation(Activation::Silu)
            .init(device, seed);
        TimeMlp {
            mlp,
            frequencies: self.frequencies,
        }
    }
}

impl TimeMlp {
    /// Output for data `x` `[b, d]` at times `t` `[b]`.
    pub fn forward(&self, x: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        self.mlp
            .forward(Tensor::cat(vec![x, time_features(t, self.frequencies)], 1))
    }

    /// The data dimension d.
    pub fn dim(&self) -> usize {
        self.mlp.layers.last().map_or(0, |l| l.weight.dims()[1])
    }

    /// The MLP behind it (its input is `[x, time_features(t)]`).
    pub fn mlp(&self) -> &Mlp {
        &self.mlp
    }

    /// The number of Fourier frequencies of the time embedding.
    pub fn frequencies(&self) -> usize {
        self.frequencies
    }

    /// The same network with other layers (the same widths), e.g. LoRA-merged weights.
    pub fn with_layers(&self, layers: Vec<burn::nn::Linear>) -> Result<Self, String> {
        let widths =
            |ls: &[burn::nn::Linear]| ls.iter().map(|l| l.weight.dims()).collect::<Vec<_>>();
        if widths(&layers) != widths(&self.mlp.layers) {
            return Err("replacement layers differ in shape".into());
        }
        Ok(Self {
            mlp: self.mlp.with_layers(layers),
            frequencies: self.frequencies,
        })
    }
}

/// `[t, sin(πkt), cos(πkt)]` for k = 1…K, `[b, 1 + 2K]`: the time input of the time-conditioned
/// networks (period 2, so every t ∈ [0, 1] has its own embedding).
pub fn time_features(t: Tensor<1>, frequencies: usize) -> Tensor<2> {
    let b = t.dims()[0];
    let freqs: Vec<f32> = (1..=frequencies)
        .map(|k| std::f32::consts::PI * k as f32)
        .collect();
    let f = Tensor::<1>::from_data(TensorData::new(freqs, [frequencies]), &t.device())
        .reshape([1, frequencies]);
    let t = t.reshape([b, 1]);
    let arg = t.clone().matmul(f);
    Tensor::cat(vec![t, arg.clone().sin(), arg.cos()], 1)
}
