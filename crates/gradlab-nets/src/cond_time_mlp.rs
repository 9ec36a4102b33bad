//! A time-conditioned MLP that also reads a condition: input `[x, c, t-features]`, output of x's
//! width. The restoration models (MRS's IR-SDE, Resfusion) concatenate the noisy state with the
//! degraded input this way (Resfusion's `input_cond`); a class-conditional model passes a one-hot
//! or an embedding as c. The time features are [`crate::time_mlp::time_features`].
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::cond_time_mlp::CondTimeMlpConfig;
//! let dev = Device::flex();
//! let net = CondTimeMlpConfig::new(4, 3).init(&dev, 0);
//! let out = net.forward(Tensor::zeros([5, 4], &dev), Tensor::ones([5, 3], &dev), Tensor::ones([5], &dev));
//! assert_eq!(out.dims(), [5, 4]);
//! assert_eq!((net.dim(), net.cond_dim()), (4, 3));
//! ```

use crate::time_mlp::time_features;
use crate::{Activation, Net, mlp::Mlp, mlp::MlpConfig};
use burn::prelude::*;

/// Conditional time-conditioned MLP configuration.
#[derive(Config, Debug)]
pub struct CondTimeMlpConfig {
    /// Data dimension d (input and output).
    pub dim: usize,
    /// Condition dimension.
    pub cond: usize,
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

/// The conditional time-conditioned MLP.
#[derive(Module, Debug)]
pub struct CondTimeMlp {
    mlp: Mlp,
    #[module(skip)]
    frequencies: usize,
    #[module(skip)]
    cond: usize,
}

impl CondTimeMlpConfig {
    /// Build with weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> CondTimeMlp {
        let mut dims = vec![self.dim + self.cond + 1 + 2 * self.frequencies];
        dims.extend(std::iter::repeat_n(self.hidden, self.layers.max(1)));
        dims.push(self.dim);
        let mlp = MlpConfig::new(dims)
            .with_activation(Activation::Silu)
            .init(device, seed);
        CondTimeMlp {
            mlp,
            frequencies: self.frequencies,
            cond: self.cond,
        }
    }
}

impl CondTimeMlp {
    /// Output for data `x` `[b, d]`, conditions `c` `[b, cond]` at times `t` `[b]`; an error
    /// (not a panic inside burn) for inputs of the wrong widths or batch sizes.
    pub fn try_forward(
        &self,
        x: Tensor<2>,
        c: Tensor<2>,
        t: Tensor<1>,
    ) -> Result<Tensor<2>, String> {
        let ([b, d], [bc, k], [bt]) = (x.dims(), c.dims(), t.dims());
        if d != self.dim() || k != self.cond || bc != b || bt != b {
            return Err(format!(
                "a conditional network of dimension {} and condition {} got x {:?}, c {:?}, t {:?}",
                self.dim(),
                self.cond,
                [b, d],
                [bc, k],
                [bt]
            ));
        }
        Ok(self.forward(x, c, t))
    }

    /// Output for data `x` `[b, d]`, conditions `c` `[b, cond]` at times `t` `[b]`.
    pub fn forward(&self, x: Tensor<2>, c: Tensor<2>, t: Tensor<1>) -> Tensor<2> {
        self.mlp.forward(Tensor::cat(
            vec![x, c, time_features(t, self.frequencies)],
            1,
        ))
    }

    /// The data dimension d.
    pub fn dim(&self) -> usize {
        self.mlp.layers.last().map_or(0, |l| l.weight.dims()[1])
    }

    /// The condition's dimension.
    pub fn cond_dim(&self) -> usize {
        self.cond
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_changes_the_output_and_wrong_widths_are_errors() {
        let dev = Device::flex();
        let net = CondTimeMlpConfig::new(2, 3).init(&dev, 1);
        let x = Tensor::<2>::zeros([1, 2], &dev);
        let t = Tensor::<1>::ones([1], &dev);
        let a = net.forward(x.clone(), Tensor::zeros([1, 3], &dev), t.clone());
        let b = net.forward(x.clone(), Tensor::ones([1, 3], &dev), t.clone());
        let diff = (a - b).abs().sum().into_scalar::<f64>();
        assert!(diff > 1e-4);
        assert!(
            net.try_forward(x.clone(), Tensor::zeros([1, 2], &dev), t.clone())
                .is_err()
        );
        assert!(
            net.try_forward(Tensor::zeros([2, 2], &dev), Tensor::zeros([1, 3], &dev), t)
                .is_err()
        );
    }
}
