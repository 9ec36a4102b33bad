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
    /// The nonlinearity between layers.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// The same nonlinearity with other layers.
    pub(crate) fn with_layers(&self, layers: Vec<Linear>) -> Mlp {
        Mlp {
            layers,
            activation: self.activation,
        }
    }

    /// Hidden features before the last layer.
    pub fn features(&self, x: Tensor<2>) -> Tensor<2> {
        let n = self.layers.len();
        self.layers[..n - 1]
            .iter()
            .fold(x, |h, l| self.activation.apply(l.forward(h)))
    }
}

impl Mlp {
    /// Per-example gradients of the cross-entropy of each example, one row per example in the order
    /// of [`gradlab_core::flat::flatten`] (each layer's weight `[in, out]` row-major, then its bias).
    ///
    /// Efficient: one forward and one backward pass. Each layer's pre-activation gets an additive
    /// zero probe whose gradient is the per-example δ_l = ∂ℓ_i/∂z_l; the weight gradient of example i
    /// is then the outer product a_l,iᵀ δ_l,i of the layer's input and δ (Goodfellow, 2015).
    /// `x` must live on an autodiff device.
    fn per_example_rows(
        &self,
        x: Tensor<2>,
        y: Tensor<1, Int>,
    ) -> gradlab_core::Result<Vec<Vec<f64>>> {
        let [b, _] = x.dims();
        let device = x.device();
        let n = self.layers.len();
        let mut inputs = vec![];
        let mut probes = vec![];
        let mut a = x;
        for (l, layer) in self.layers.iter().enumerate() {
            inputs.push(a.clone().detach());
            let out = layer.weight.val().dims()[1];
            let probe = Tensor::<2>::zeros([b, out], &device).require_grad();
            let z = layer.forward(a) + probe.clone();
            probes.push(probe);
            a = if l + 1 < n {
                self.activation.apply(z)
            } else {
                z
            };
        }
        let logp = burn::tensor::activation::log_softmax(a, 1);
        let loss = logp.gather(1, y.reshape([b, 1])).sum().neg();
        let grads = loss.backward();
        let host = gradlab_core::bridge::to_host::<2>;
        let mut rows = vec![Vec::with_capacity(self.num_params()); b];
        for (l, layer) in self.layers.iter().enumerate() {
            let [din, dout] = layer.weight.val().dims();
            let av = host(inputs[l].clone().inner())?;
            let probe = probes[l].grad(&grads).ok_or_else(|| {
                gradlab_core::CoreError::MissingGradient(format!("the probe of layer {l}"))
            })?;
            let dv = host(probe)?;
            for (i, row) in rows.iter_mut().enumerate() {
                for p in 0..din {
                    row.extend((0..dout).map(|q| av[i * din + p] * dv[i * dout + q]));
                }
                if layer.bias.is_some() {
                    row.extend_from_slice(&dv[i * dout..(i + 1) * dout]);
                }
            }
        }
        Ok(rows)
    }
}

impl Net for Mlp {
    /// One forward and one backward pass for the batch (`per_example_rows`).
    fn per_example_grads(&self, x: Tensor<2>, y: Tensor<1, Int>) -> gradlab_core::Result<Vec<f64>> {
        Ok(self.per_example_rows(x, y)?.concat())
    }

    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.layers
            .last()
            .expect("non-empty")
            .forward(self.features(x))
    }

    fn input_features(&self) -> usize {
        self.layers.first().map_or(0, |l| l.weight.dims()[0])
    }

    fn first_layer(&self) -> Option<crate::FirstLayer> {
        self.layers.first().map(|l| crate::FirstLayer::Linear {
            weight: l.weight.id,
        })
    }
}
