//! Low-rank adapters (LoRA; Hu et al., ICLR 2022) for the time-conditioned MLP, as AlignProp
//! fine-tunes its UNet: every linear layer's weight W (`in × out`) acts as W + (α/r)·A B with
//! A (`in × r`) and B (`r × out`); the base stays frozen and only A, B train. B starts at zero
//! (so the adapted network starts equal to the base) and A at N(0, 1/in), as PEFT's LoRA (its
//! default draws A Kaiming-uniform; any A with B = 0 gives the same start).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::lora::Lora;
//! use gradlab_nets::time_mlp::TimeMlpConfig;
//! let dev = Device::flex();
//! let base = TimeMlpConfig::new(2).with_hidden(16).init(&dev, 0);
//! let lora = Lora::new(&base, 4, 4.0, &dev, 1).unwrap();
//! let (x, t) = (Tensor::<2>::ones([3, 2], &dev), Tensor::<1>::ones([3], &dev));
//! let same = (lora.forward(&base, x.clone(), t.clone()).unwrap() - base.forward(x, t)).abs().max();
//! assert_eq!(same.into_scalar::<f64>(), 0.0); // B = 0: the base network exactly
//! ```

use crate::time_mlp::{TimeMlp, time_features};
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::Distribution;

/// The adapters of every layer of a [`TimeMlp`].
#[derive(Module, Debug)]
pub struct Lora {
    a: Vec<Param<Tensor<2>>>,
    b: Vec<Param<Tensor<2>>>,
    #[module(skip)]
    scale: f64,
}

impl Lora {
    /// Adapters of rank `rank` and scale `alpha / rank` for `base`, A drawn from `seed`.
    pub fn new(
        base: &TimeMlp,
        rank: usize,
        alpha: f64,
        device: &Device,
        seed: u64,
    ) -> Result<Self, String> {
        if rank == 0 || !(alpha.is_finite() && alpha > 0.0) {
            return Err(format!(
                "LoRA needs rank ≥ 1 and α > 0, got rank {rank}, α {alpha}"
            ));
        }
        let scale = alpha / rank as f64;
        Ok(crate::init::seeded(device, seed, || {
            let (mut a, mut b) = (vec![], vec![]);
            for layer in &base.mlp().layers {
                let [i, o] = layer.weight.dims();
                let std = 1.0 / (i as f64).sqrt();
                a.push(Param::from_tensor(Tensor::random(
                    [i, rank],
                    Distribution::Normal(0.0, std),
                    device,
                )));
                b.push(Param::from_tensor(Tensor::zeros([rank, o], device)));
            }
            Self { a, b, scale }
        }))
    }

    fn check(&self, base: &TimeMlp) -> Result<(), String> {
        let layers = &base.mlp().layers;
        let fits = layers.len() == self.a.len()
            && layers
                .iter()
                .zip(self.a.iter().zip(&self.b))
                .all(|(l, (a, b))| {
                    let [i, o] = l.weight.dims();
                    a.dims()[0] == i && b.dims()[1] == o
                });
        if fits {
            Ok(())
        } else {
            Err("the adapters were made for another network".into())
        }
    }

    /// The adapted network's output for data `x` `[b, d]` at times `t` `[b]`.
    pub fn forward(&self, base: &TimeMlp, x: Tensor<2>, t: Tensor<1>) -> Result<Tensor<2>, String> {
        self.check(base)?;
        let mlp = base.mlp();
        let n = mlp.layers.len();
        let mut h = Tensor::cat(vec![x, time_features(t, base.frequencies())], 1);
        for (k, layer) in mlp.layers.iter().enumerate() {
            let low = h.clone().matmul(self.a[k].val()).matmul(self.b[k].val()) * self.scale;
            h = layer.forward(h) + low;
            if k + 1 < n {
                h = mlp.activation().apply(h);
            }
        }
        Ok(h)
    }

    /// The base with the adapters merged into its weights (W + (α/r)·A B): the same function,
    /// no adapter cost at inference.
    pub fn merged(&self, base: &TimeMlp) -> Result<TimeMlp, String> {
        self.check(base)?;
        let layers: Vec<Linear> = base
            .mlp()
            .layers
            .iter()
            .zip(self.a.iter().zip(&self.b))
            .map(|(l, (a, b))| {
                let delta = a.val().matmul(b.val()) * self.scale;
                Linear {
                    weight: Param::from_tensor((l.weight.val() + delta).detach()),
                    bias: l.bias.clone(),
                }
            })
            .collect();
        base.with_layers(layers)
    }

    /// The number of trainable values.
    pub fn len(&self) -> usize {
        self.a
            .iter()
            .chain(&self.b)
            .map(|p| p.dims().iter().product::<usize>())
            .sum()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time_mlp::TimeMlpConfig;
    use burn::optim::GradientsParams;

    #[test]
    fn adapted_equals_merged_and_only_the_adapters_train() {
        let dev = Device::flex().autodiff();
        let base = TimeMlpConfig::new(2)
            .with_hidden(8)
            .with_layers(2)
            .init(&dev, 3);
        let mut lora = Lora::new(&base, 2, 2.0, &dev, 4).unwrap();
        // Give B values so the adapters matter.
        lora.b = lora
            .b
            .iter()
            .map(|b| {
                Param::from_tensor(Tensor::random(
                    b.dims(),
                    Distribution::Normal(0.0, 0.5),
                    &dev,
                ))
            })
            .collect();
        let x = Tensor::<2>::random([5, 2], Distribution::Normal(0.0, 1.0), &dev);
        let t = Tensor::<1>::random([5], Distribution::Uniform(0.0, 1.0), &dev);
        let adapted = lora.forward(&base, x.clone(), t.clone()).unwrap();
        let merged = lora.merged(&base).unwrap().forward(x.clone(), t.clone());
        let gap = (adapted.clone() - merged.clone())
            .abs()
            .max()
            .into_scalar::<f64>();
        let size = merged.abs().max().into_scalar::<f64>();
        assert!(gap < 1e-5 * (1.0 + size), "adapted vs merged: {gap}");
        let base_out = base.forward(x, t);
        assert!(
            (adapted.clone() - base_out)
                .abs()
                .max()
                .into_scalar::<f64>()
                > 1e-3
        );
        // The adapters get gradients; extracting them for the adapters leaves the base out.
        let grads = GradientsParams::from_grads(adapted.sum().backward(), &lora);
        assert_eq!(grads.len(), 2 * lora.a.len());
        // Input 2 + 1 + 2·8 time features = 19; layers 19→8→8→2; rank 2.
        assert_eq!(
            lora.len(),
            (19 * 2 + 2 * 8) + (8 * 2 + 2 * 8) + (8 * 2 + 2 * 2)
        );
        let other = TimeMlpConfig::new(3)
            .with_hidden(8)
            .with_layers(2)
            .init(&dev, 3);
        assert!(
            lora.forward(
                &other,
                Tensor::zeros([1, 3], &dev),
                Tensor::zeros([1], &dev)
            )
            .is_err()
        );
        assert!(Lora::new(&base, 0, 1.0, &dev, 0).is_err());
    }
}
