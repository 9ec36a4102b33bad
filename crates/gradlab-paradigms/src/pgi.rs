//! Programmable gradient information (YOLOv9: "Learning What You Want to Learn Using Programmable
//! Gradient Information", Wang, Yeh and Liao, 2024; official `WongKinYiu/yolov9`,
//! `models/detect/yolov9-c.yaml`, `utils/loss_tal_dual.py`) around a GELAN classifier.
//!
//! The main branch is a GELAN network (stem, then stages of ADown and RepNCSPELAN4 blocks from
//! [`gradlab_nets::gelan`], global pooling, a linear head). PGI adds, for training only, an
//! auxiliary reversible branch: a second column of the same stages from the input, into which
//! every main stage's features are projected by a `CBLinear` (a plain 1×1 convolution split into
//! one group per shallower-or-equal auxiliary stage) and added by `CBFuse` (nearest-resized to the
//! auxiliary stage's side) after its downsampling, as the official layers 23–37; the auxiliary
//! column has its own head, and its loss (weight 0.25, as the official 0.25·aux + main) reaches
//! the main branch only through the CBLinear projections. At inference the auxiliary branch is
//! dropped: the deployed network is exactly the main branch.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::pgi::PgiNetConfig;
//! let dev = Device::flex();
//! let net = PgiNetConfig::new().init(&dev, 0).unwrap();
//! let x = Tensor::<4>::zeros([2, 1, 24, 24], &dev);
//! let (main, aux) = net.forward_train(x.clone()).unwrap();
//! assert_eq!((main.dims(), aux.unwrap().dims()), ([2, 3], [2, 3]));
//! assert_eq!(net.forward(x).unwrap().dims(), [2, 3]);
//! assert!(net.main_params() < net.total_params());
//! ```

use crate::error::{ParadigmError, invalid};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_sigmoid;
use gradlab_nets::gelan::{ADown, CbLinear, ConvBn, RepNCspElan4, cb_fuse, trainable_params};
use gradlab_nets::init::seeded;

/// The network's shape.
#[derive(Config, Debug, PartialEq)]
pub struct PgiNetConfig {
    /// Input channels.
    #[config(default = 1)]
    pub channels: usize,
    /// Input side (square), at least 2^(stages − 1).
    #[config(default = 24)]
    pub size: usize,
    /// Channels of each stage (even), from the first.
    #[config(default = "vec![8, 16, 16]")]
    pub widths: Vec<usize>,
    /// RepNCSPELAN4 blocks per stage (depth).
    #[config(default = 2)]
    pub blocks: usize,
    /// Outputs (logits) of the heads.
    #[config(default = 3)]
    pub outputs: usize,
    /// Whether the auxiliary reversible branch exists (PGI) or not (the plain network).
    #[config(default = true)]
    pub auxiliary: bool,
}

impl PgiNetConfig {
    /// The network, its weights drawn from `seed` (the main branch's first, so that a plain and a
    /// PGI network of the same seed start from the same main weights).
    pub fn init(&self, device: &Device, seed: u64) -> crate::Result<PgiNet> {
        let w = &self.widths;
        let ok = !w.is_empty()
            && w.iter().all(|c| *c >= 2 && c.is_multiple_of(2))
            && self.blocks >= 1
            && self.channels >= 1
            && self.outputs >= 1
            && self.size >> (w.len() - 1).min(31) >= 1;
        if !ok {
            return invalid(format!(
                "a PGI network needs even stage widths ≥ 2, ≥ 1 block per stage, ≥ 1 channel and output, and a side ≥ 2^(stages − 1); got widths {:?}, {} blocks, {} channels, {} outputs, side {}",
                w, self.blocks, self.channels, self.outputs, self.size
            ));
        }
        let column = |dev: &Device| Column::new(self.channels, w, self.blocks, self.outputs, dev);
        let main = seeded(device, seed, || column(device));
        let aux = self.auxiliary.then(|| {
            seeded(device, seed ^ 0xA0C5, || Auxiliary {
                column: column(device),
                links: (0..w.len())
                    .map(|i| CbLinear::new(w[i], w[..=i].to_vec(), device))
                    .collect(),
            })
        });
        Ok(PgiNet {
            main,
            aux,
            shape: [self.channels, self.size],
        })
    }
}

/// A GELAN column: stem, stages, pooled linear head.
#[derive(Module, Debug)]
pub struct Column {
    stem: ConvBn,
    stages: Vec<(Option<ADown>, Vec<RepNCspElan4>)>,
    head: Linear,
}

impl Column {
    fn new(channels: usize, w: &[usize], blocks: usize, outputs: usize, device: &Device) -> Self {
        Column {
            stem: ConvBn::new(channels, w[0], 3, 1, device),
            stages: (0..w.len())
                .map(|i| {
                    let down = (i > 0).then(|| ADown::new(w[i - 1], w[i], device));
                    let elans = (0..blocks)
                        .map(|_| RepNCspElan4::new(w[i], w[i], w[i], w[i] / 2, 1, device))
                        .collect();
                    (down, elans)
                })
                .collect(),
            head: LinearConfig::new(w[w.len() - 1], outputs).init(device),
        }
    }

    fn head(&self, x: Tensor<4>) -> Tensor<2> {
        let [b, c, _, _] = x.dims();
        self.head.forward(x.mean_dim(3).mean_dim(2).reshape([b, c]))
    }

    /// The stages' outputs; `fuse(i, x)` is applied after stage i's downsampling.
    fn stages(
        &self,
        x: Tensor<4>,
        mut fuse: impl FnMut(usize, Tensor<4>) -> Tensor<4>,
    ) -> Vec<Tensor<4>> {
        let mut h = self.stem.forward(x);
        let mut outs = vec![];
        for (i, (down, elans)) in self.stages.iter().enumerate() {
            if let Some(d) = down {
                h = d.forward(h);
            }
            h = fuse(i, h);
            h = elans.iter().fold(h, |h, e| e.forward(h));
            outs.push(h.clone());
        }
        outs
    }
}

/// PGI's auxiliary reversible branch: its own column and the CBLinear links from the main stages.
#[derive(Module, Debug)]
pub struct Auxiliary {
    column: Column,
    links: Vec<CbLinear>,
}

/// A GELAN classifier with (or without) PGI's auxiliary branch.
#[derive(Module, Debug)]
pub struct PgiNet {
    main: Column,
    aux: Option<Auxiliary>,
    #[module(skip)]
    shape: [usize; 2],
}

impl PgiNet {
    fn check(&self, x: &Tensor<4>) -> crate::Result<()> {
        let [b, c, h, w] = x.dims();
        let [ch, side] = self.shape;
        if b == 0 || [c, h, w] != [ch, side, side] {
            return Err(ParadigmError::Shape(format!(
                "the network takes images [batch ≥ 1, {ch}, {side}, {side}], got [{b}, {c}, {h}, {w}]"
            )));
        }
        Ok(())
    }

    /// Inference: the main branch only (the auxiliary branch is never evaluated).
    pub fn forward(&self, x: Tensor<4>) -> crate::Result<Tensor<2>> {
        self.check(&x)?;
        let last = self.main.stages(x, |_, h| h).pop().expect("≥ 1 stage");
        Ok(self.main.head(last))
    }

    /// Training: the main logits and, with PGI, the auxiliary head's logits.
    pub fn forward_train(&self, x: Tensor<4>) -> crate::Result<(Tensor<2>, Option<Tensor<2>>)> {
        self.check(&x)?;
        let feats = self.main.stages(x.clone(), |_, h| h);
        let main = self.main.head(feats.last().expect("≥ 1 stage").clone());
        let aux = self.aux.as_ref().map(|aux| {
            // Stage i's projection holds one group per auxiliary stage j ≤ i.
            let mut groups: Vec<Vec<Tensor<4>>> = feats
                .iter()
                .zip(&aux.links)
                .map(|(f, link)| link.forward(f.clone()))
                .collect();
            let last = aux
                .column
                .stages(x, |j, h| {
                    let parts = groups.iter_mut().skip(j).map(|g| g[j].clone()).collect();
                    cb_fuse(parts, h)
                })
                .pop()
                .expect("≥ 1 stage");
            aux.column.head(last)
        });
        Ok((main, aux))
    }

    /// The trainable parameters deployed: the main branch's.
    pub fn main_params(&self) -> usize {
        trainable_params(&self.main)
    }

    /// All trainable parameters (the auxiliary branch's too).
    pub fn total_params(&self) -> usize {
        trainable_params(self)
    }
}

/// Mean binary cross-entropy of `logits` [B, K] against 0/1 `targets` [B, K].
pub fn bce_with_logits(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    let pos = log_sigmoid(logits.clone());
    let neg = log_sigmoid(logits.neg());
    (targets.clone() * pos + (targets.neg() + 1.0) * neg)
        .mean()
        .neg()
}

/// The official dual loss for multi-label targets: BCE(main) + `aux_weight`·BCE(aux) (0.25).
pub fn pgi_loss(
    main: Tensor<2>,
    aux: Option<Tensor<2>>,
    targets: Tensor<2>,
    aux_weight: f64,
) -> Tensor<1> {
    let l = bce_with_logits(main, targets.clone());
    match aux {
        Some(a) => l + bce_with_logits(a, targets) * aux_weight,
        None => l,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::GradientsParams;
    use gradlab_core::bridge::to_host;
    use gradlab_core::flat::{flatten_host, load_host};

    fn images(dev: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..2 * 24 * 24)
            .map(|i| ((i * 53) % 97) as f32 / 97.0)
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, [2, 1, 24, 24]), dev)
    }

    /// What is deployed is the main branch alone: changing every auxiliary weight leaves the
    /// inference output unchanged, a plain network of the same seed has the same main weights and
    /// output, and its parameter count is the PGI network's main count.
    #[test]
    fn inference_ignores_the_auxiliary_branch() {
        let dev = Device::flex();
        let net = PgiNetConfig::new().init(&dev, 3).unwrap();
        let plain = PgiNetConfig::new()
            .with_auxiliary(false)
            .init(&dev, 3)
            .unwrap();
        let y = to_host(net.valid().forward(images(&dev)).unwrap()).unwrap();
        assert_eq!(
            y,
            to_host(plain.valid().forward(images(&dev)).unwrap()).unwrap()
        );
        assert_eq!(plain.total_params(), net.main_params());
        let PgiNet { main, aux, shape } = net;
        let aux = aux.unwrap();
        let n = flatten_host(&aux).unwrap().len();
        let aux = load_host(aux, &vec![0.3; n]).unwrap();
        let moved = PgiNet {
            main,
            aux: Some(aux),
            shape,
        };
        assert_eq!(
            y,
            to_host(moved.valid().forward(images(&dev)).unwrap()).unwrap()
        );
    }

    /// The auxiliary loss reaches the main branch's backbone, and only through CBLinear: its
    /// gradient at the main stem is non-zero, and zero once the links are cut (weights 0).
    #[test]
    fn the_auxiliary_gradient_reaches_the_main_branch_through_cblinear() {
        let dev = Device::flex().autodiff();
        let stem_grad = |cut: bool| {
            let mut net = PgiNetConfig::new().init(&dev, 1).unwrap();
            if cut {
                let mut aux = net.aux.take().unwrap();
                let links = std::mem::take(&mut aux.links);
                aux.links = links
                    .into_iter()
                    .map(|l| {
                        let n = flatten_host(&l).unwrap().len();
                        load_host(l, &vec![0.0; n]).unwrap()
                    })
                    .collect();
                net.aux = Some(aux);
            }
            let (_, aux) = net.forward_train(images(&dev)).unwrap();
            let t = Tensor::<2>::from_floats([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], &dev);
            let g = GradientsParams::from_grads(bce_with_logits(aux.unwrap(), t).backward(), &net);
            g.get::<4>(net.main.stem.conv_weight_id())
                .map(|t| to_host(t).unwrap().iter().map(|v| v.abs()).sum::<f64>())
                .unwrap_or(0.0)
        };
        assert!(stem_grad(false) > 1e-6);
        assert_eq!(stem_grad(true), 0.0);
    }

    #[test]
    fn bce_matches_the_formula_and_bad_shapes_are_refused() {
        let dev = Device::flex();
        let l = Tensor::<2>::from_floats([[2.0, -1.0]], &dev);
        let t = Tensor::<2>::from_floats([[1.0, 1.0]], &dev);
        let v = to_host(bce_with_logits(l, t)).unwrap()[0];
        let want = ((1.0 + (-2.0f64).exp()).ln() + (1.0 + 1.0f64.exp()).ln()) / 2.0;
        assert!((v - want).abs() < 1e-6);
        let net = PgiNetConfig::new().init(&dev, 0).unwrap();
        let e = net
            .forward(Tensor::<4>::zeros([1, 3, 24, 24], &dev))
            .unwrap_err();
        assert!(e.to_string().contains("[1, 3, 24, 24]"), "{e}");
        let e = PgiNetConfig::new()
            .with_widths(vec![8, 7])
            .init(&dev, 0)
            .unwrap_err();
        assert!(e.to_string().contains("[8, 7]"), "{e}");
        let e = PgiNetConfig::new()
            .with_blocks(0)
            .init(&dev, 0)
            .unwrap_err();
        assert!(e.to_string().contains("0 blocks"), "{e}");
    }
}
