//! NormGrad saliency ("There and Back Again: Revisiting Backpropagation Saliency Methods",
//! Rebuffi, Fong, Ji and Vedaldi, CVPR 2020; official code `srebuffi/revisiting_saliency` and
//! TorchRay's `norm_grad.py` / `meta_saliency.py`).
//!
//! A virtual identity layer inserted after layer u, x_u ↦ W x_u with W = I, has the weight gradient
//! g_u x_uᵀ at each location (g_u = ∂score/∂x_u, the class score, not its softmax); its norm is
//! the saliency. Phase 1 picks the virtual layer, phase 2 aggregates over channels:
//! - [`Phase1::Conv1x1`] (NormGrad): ‖g_u x_uᵀ‖_F = ‖x_u‖·‖g_u‖ per location;
//! - [`Phase1::Conv3x3`]: the 3×3 neighbourhood of x_u (9C values, zero-padded) instead of x_u;
//! - [`Phase1::Scaling`]: ‖x_u ⊙ g_u‖; [`Phase1::Bias`]: ‖g_u‖;
//! - [`Phase1::Selective`] (TorchRay): ‖max(x_u ⊙ g_u, 0)‖, the positive evidence only.
//!
//! Here the virtual layer is literal: [`SaliencyCnn::probe`] adds a zero tensor δ_u after every
//! block, so one backward pass gives every g_u = ∂score/∂δ_u (the official code hooks the module
//! outputs). Baselines: the plain gradient max_c |∂score/∂image| and Grad-CAM,
//! ReLU(Σ_c mean_hw(g_c)·x_c). [`combine`] multiplies the layers' maps after bilinear upsampling
//! and min–max normalisation (the official multi-layer combination). [`meta_saliency`] takes one
//! SGD step (lr 1e-4) on the cross-entropy of the target class, computes the saliency with the
//! updated weights and leaves the model as it was.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::normgrad::{Phase1, SaliencyCnnConfig};
//! let dev = Device::flex().autodiff();
//! let net = SaliencyCnnConfig::new().init(&dev, 0).unwrap();
//! let probe = net.probe(Tensor::zeros([2, 1, 24, 24], &dev), &[0, 2]).unwrap();
//! let maps = probe.normgrad(1, Phase1::Conv1x1).unwrap();
//! assert_eq!(maps.dims(), [2, 6, 6]);
//! ```

use crate::error::{ParadigmError, invalid};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{GradientsParams, SgdConfig};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::module::{avg_pool2d, interpolate};
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};
use gradlab_nets::init::seeded;
use serde::{Deserialize, Serialize};

/// The virtual identity layer (phase 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase1 {
    /// 1×1 convolution: ‖x‖·‖g‖ (NormGrad).
    Conv1x1,
    /// 3×3 convolution: ‖unfold₃ₓ₃(x)‖·‖g‖.
    Conv3x3,
    /// Per-channel scaling: ‖x ⊙ g‖.
    Scaling,
    /// Bias: ‖g‖.
    Bias,
    /// TorchRay's selective variant: ‖max(x ⊙ g, 0)‖.
    Selective,
}

/// The saliency CNN's configuration: blocks of conv 3×3 (padding 1) + ReLU, with a 2×2 max pool
/// after every block but the last, then global average pooling and a linear classifier.
#[derive(Config, Debug, PartialEq)]
pub struct SaliencyCnnConfig {
    /// Input channels.
    #[config(default = 1)]
    pub channels: usize,
    /// Image side (square images).
    #[config(default = 24)]
    pub size: usize,
    /// Widths of the blocks.
    #[config(default = "vec![8, 16, 32]")]
    pub widths: Vec<usize>,
    /// Classes.
    #[config(default = 3)]
    pub classes: usize,
}

/// A small CNN whose block outputs can be probed ([`SaliencyCnn::probe`]).
#[derive(Module, Debug)]
pub struct SaliencyCnn {
    convs: Vec<Conv2d>,
    pool: MaxPool2d,
    head: Linear,
    #[module(skip)]
    shape: [usize; 3],
}

impl SaliencyCnnConfig {
    /// Check the configuration; the error names the value.
    pub fn validate(&self) -> crate::Result<()> {
        if self.widths.is_empty() || self.widths.contains(&0) {
            return invalid(format!(
                "the saliency CNN needs ≥ 1 block of width ≥ 1, got widths {:?}",
                self.widths
            ));
        }
        if self.channels == 0 || self.classes < 2 {
            return invalid(format!(
                "the saliency CNN needs ≥ 1 channel and ≥ 2 classes, got {} and {}",
                self.channels, self.classes
            ));
        }
        let pools = self.widths.len() - 1;
        if self.size >> pools == 0 || !self.size.is_multiple_of(1 << pools) {
            return invalid(format!(
                "images of side {} do not halve {pools} times (the side must be a multiple of {})",
                self.size,
                1usize << pools
            ));
        }
        Ok(())
    }

    /// Build with weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> crate::Result<SaliencyCnn> {
        self.validate()?;
        Ok(seeded(device, seed, || {
            let mut cin = self.channels;
            let convs = self
                .widths
                .iter()
                .map(|&w| {
                    let c = Conv2dConfig::new([cin, w], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device);
                    cin = w;
                    c
                })
                .collect();
            SaliencyCnn {
                convs,
                pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                head: LinearConfig::new(cin, self.classes).init(device),
                shape: [self.channels, self.size, self.size],
            }
        }))
    }
}

/// One forward pass with a zero probe δ_u added after every block, and the gradients of the
/// summed target scores with respect to the image and to each probe.
#[derive(Debug)]
pub struct Probe {
    /// The image batch [B, C, H, W] (inner device).
    pub image: Tensor<4>,
    /// ∂score/∂image.
    pub image_grad: Tensor<4>,
    /// Each block's output x_u [B, C_u, H_u, W_u] (inner device).
    pub features: Vec<Tensor<4>>,
    /// g_u = ∂score/∂x_u.
    pub grads: Vec<Tensor<4>>,
    /// The logits [B, classes].
    pub logits: Tensor<2>,
}

impl SaliencyCnn {
    /// The input shape [C, H, W] the network takes.
    pub fn input_shape(&self) -> [usize; 3] {
        self.shape
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.head.weight.val().dims()[1]
    }

    /// Number of probed layers (blocks).
    pub fn layers(&self) -> usize {
        self.convs.len()
    }

    fn check_input(&self, x: &Tensor<4>) -> crate::Result<()> {
        let [_, c, h, w] = x.dims();
        if [c, h, w] != self.shape {
            return Err(ParadigmError::Shape(format!(
                "the network takes images of {}×{}×{} (channels × height × width), got {c}×{h}×{w}",
                self.shape[0], self.shape[1], self.shape[2]
            )));
        }
        Ok(())
    }

    /// Logits, with `probes[u]` added to block u's output when given (a zero tensor there
    /// changes nothing but makes g_u its gradient).
    fn forward_probed(
        &self,
        x: Tensor<4>,
        probes: Option<&[Tensor<4>]>,
    ) -> (Tensor<2>, Vec<Tensor<4>>) {
        let last = self.convs.len() - 1;
        let mut feats = Vec::with_capacity(self.convs.len());
        let mut h = x;
        for (u, conv) in self.convs.iter().enumerate() {
            h = relu(conv.forward(h));
            if u < last {
                h = self.pool.forward(h);
            }
            if let Some(p) = probes {
                h = h + p[u].clone();
            }
            feats.push(h.clone());
        }
        let [b, c, _, _] = h.dims();
        (
            self.head.forward(h.mean_dim(3).mean_dim(2).reshape([b, c])),
            feats,
        )
    }

    /// Class logits for images [B, C, H, W].
    pub fn forward(&self, x: Tensor<4>) -> crate::Result<Tensor<2>> {
        self.check_input(&x)?;
        Ok(self.forward_probed(x, None).0)
    }

    /// Probe the network at `images` for the target class of each image (on any device: the probe
    /// runs with autodiff and returns plain tensors).
    pub fn probe(&self, images: Tensor<4>, targets: &[usize]) -> crate::Result<Probe> {
        self.check_input(&images)?;
        let b = images.dims()[0];
        if targets.len() != b {
            return Err(ParadigmError::Shape(format!(
                "{b} images but {} target classes",
                targets.len()
            )));
        }
        if let Some(&t) = targets.iter().find(|&&t| t >= self.classes()) {
            return invalid(format!(
                "target class {t} is outside 0 … {}",
                self.classes() - 1
            ));
        }
        let x = images.clone().autodiff().detach().require_grad();
        let dev = x.device();
        // The shapes of the block outputs, from a forward pass without probes.
        let (_, plain) = self.forward_probed(x.clone().detach(), None);
        let probes: Vec<Tensor<4>> = plain
            .iter()
            .map(|f| Tensor::zeros(f.dims(), &dev).require_grad())
            .collect();
        let (logits, feats) = self.forward_probed(x.clone(), Some(&probes));
        let idx = Tensor::<1, Int>::from_data(
            TensorData::new(targets.iter().map(|&t| t as i64).collect::<Vec<_>>(), [b]),
            &dev,
        );
        let score = logits.clone().gather(1, idx.reshape([b, 1])).sum();
        let grads = score.backward();
        let missing =
            |what: String| ParadigmError::Core(gradlab_core::CoreError::MissingGradient(what));
        let image_grad = x.grad(&grads).ok_or_else(|| missing("the image".into()))?;
        let g = probes
            .iter()
            .enumerate()
            .map(|(u, p)| {
                p.grad(&grads)
                    .ok_or_else(|| missing(format!("block {u}'s probe")))
            })
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Probe {
            image: images.inner(),
            image_grad,
            features: feats.into_iter().map(|f| f.inner()).collect(),
            grads: g,
            logits: logits.inner(),
        })
    }
}

/// Channel-wise L2 norm [B, H, W] of a [B, C, H, W] tensor.
fn channel_norm(t: Tensor<4>) -> Tensor<3> {
    let [b, _, h, w] = t.dims();
    t.powf_scalar(2.0).sum_dim(1).sqrt().reshape([b, h, w])
}

impl Probe {
    /// Phase-1 saliency of block `layer` (aggregated by the L2 norm over channels) [B, H_u, W_u].
    pub fn normgrad(&self, layer: usize, kind: Phase1) -> crate::Result<Tensor<3>> {
        let (x, g) = match (self.features.get(layer), self.grads.get(layer)) {
            (Some(x), Some(g)) => (x.clone(), g.clone()),
            _ => {
                return invalid(format!(
                    "layer {layer} does not exist (the network has {})",
                    self.features.len()
                ));
            }
        };
        Ok(match kind {
            Phase1::Conv1x1 => channel_norm(x) * channel_norm(g),
            Phase1::Conv3x3 => {
                let [b, _, h, w] = x.dims();
                // Σ over the zero-padded 3×3 window of Σ_c x² = 9 × its average with padding counted.
                let sq = x.powf_scalar(2.0).sum_dim(1);
                let window = avg_pool2d(
                    sq,
                    AvgPoolOptions::new([3, 3])
                        .with_stride([1, 1])
                        .with_padding([1, 1])
                        .with_count_include_pad(true),
                );
                window.mul_scalar(9.0).sqrt().reshape([b, h, w]) * channel_norm(g)
            }
            Phase1::Scaling => channel_norm(x * g),
            Phase1::Bias => channel_norm(g),
            Phase1::Selective => channel_norm(relu(x * g)),
        })
    }

    /// The plain gradient map max_c |∂score/∂image| [B, H, W].
    pub fn gradient(&self) -> Tensor<3> {
        let [b, _, h, w] = self.image_grad.dims();
        self.image_grad.clone().abs().max_dim(1).reshape([b, h, w])
    }

    /// Grad-CAM at block `layer`: ReLU(Σ_c mean_hw(g_c)·x_c) [B, H_u, W_u].
    pub fn grad_cam(&self, layer: usize) -> crate::Result<Tensor<3>> {
        let (x, g) = match (self.features.get(layer), self.grads.get(layer)) {
            (Some(x), Some(g)) => (x.clone(), g.clone()),
            _ => {
                return invalid(format!(
                    "layer {layer} does not exist (the network has {})",
                    self.features.len()
                ));
            }
        };
        let [b, _, h, w] = x.dims();
        let weights = g.mean_dim(3).mean_dim(2);
        Ok(relu((x * weights).sum_dim(1)).reshape([b, h, w]))
    }
}

/// Maps [B, h, w] upsampled bilinearly to [B, H, W].
pub fn upsample(map: Tensor<3>, [h, w]: [usize; 2]) -> Tensor<3> {
    let [b, mh, mw] = map.dims();
    if [mh, mw] == [h, w] {
        return map;
    }
    let opts = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_output_size([h, w])
        .with_align_corners(false);
    interpolate(map.reshape([b, 1, mh, mw]), opts).reshape([b, h, w])
}

/// Each map min–max normalised to [0, 1] (a constant map becomes 0).
pub fn normalise(map: Tensor<3>) -> Tensor<3> {
    let [b, h, w] = map.dims();
    let flat = map.reshape([b, h * w]);
    let lo = flat.clone().min_dim(1);
    let hi = flat.clone().max_dim(1);
    let span = (hi - lo.clone()).clamp_min(1e-12);
    ((flat - lo) / span).reshape([b, h, w])
}

/// The official multi-layer combination: each map upsampled to `size`, min–max normalised, and
/// the maps multiplied.
pub fn combine(maps: Vec<Tensor<3>>, size: [usize; 2]) -> crate::Result<Tensor<3>> {
    let mut it = maps.into_iter().map(|m| normalise(upsample(m, size)));
    let first = it
        .next()
        .ok_or_else(|| ParadigmError::Invalid("no maps to combine".into()))?;
    Ok(it.fold(first, |acc, m| acc * m))
}

/// Meta-saliency: `model` after one SGD step (lr `lr`; official 1e-4) on the summed cross-entropy
/// of the target classes, probed at `images` for those classes. `model` itself is not changed
/// (burn modules are values: the step acts on a copy, so the weights are restored by
/// construction).
pub fn meta_saliency(
    model: &SaliencyCnn,
    images: Tensor<4>,
    targets: &[usize],
    lr: f64,
) -> crate::Result<Probe> {
    if !(lr > 0.0 && lr.is_finite()) {
        return invalid(format!("the meta-saliency step needs lr > 0, got {lr}"));
    }
    let model = model.clone().train();
    let images = images.autodiff();
    let logits = model.forward(images.clone())?;
    let b = images.dims()[0];
    if targets.len() != b {
        return Err(ParadigmError::Shape(format!(
            "{b} images but {} target classes",
            targets.len()
        )));
    }
    let idx = Tensor::<1, Int>::from_data(
        TensorData::new(targets.iter().map(|&t| t as i64).collect::<Vec<_>>(), [b]),
        &images.device(),
    );
    let ce = log_softmax(logits, 1)
        .gather(1, idx.reshape([b, 1]))
        .sum()
        .neg();
    let grads = GradientsParams::from_grads(ce.backward(), &model);
    let mut sgd = SgdConfig::new().init();
    let stepped = sgd.step(lr, model, grads);
    stepped.probe(images, targets)
}

/// What a saved saliency model is: its configuration and class names, and what it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaliencyCard {
    /// Input channels.
    pub channels: usize,
    /// Image side.
    pub size: usize,
    /// Block widths.
    pub widths: Vec<usize>,
    /// The class names, in the order of the logits.
    pub class_names: Vec<String>,
    /// The training data's name.
    pub data: String,
    /// Its test accuracy when saved.
    pub test_accuracy: f64,
}

const WEIGHTS: &str = "model.bpk";
const CARD: &str = "saliency.json";

impl SaliencyCard {
    /// The network configuration (checked: a card edited by hand must not make the rebuild panic
    /// or exhaust the memory).
    pub fn config(&self) -> crate::Result<SaliencyCnnConfig> {
        if self.channels > 16
            || self.size > 1024
            || self.widths.len() > 8
            || self.widths.iter().any(|w| *w > 1024)
            || self.class_names.len() > 1000
        {
            return invalid(format!(
                "the saliency card's sizes are out of range (channels {}, side {}, widths {:?}, {} classes)",
                self.channels,
                self.size,
                self.widths,
                self.class_names.len()
            ));
        }
        let cfg = SaliencyCnnConfig::new()
            .with_channels(self.channels)
            .with_size(self.size)
            .with_widths(self.widths.clone())
            .with_classes(self.class_names.len());
        cfg.validate()?;
        Ok(cfg)
    }
}

fn saved_err(dir: &std::path::Path, e: impl std::fmt::Display) -> ParadigmError {
    ParadigmError::Invalid(format!("{}: {e}", dir.display()))
}

/// Save `net` with its card into `dir` (a checksummed generation folder switched atomically, as
/// the training checkpoints: an earlier save stays valid until the new one is complete).
pub fn save_model(
    dir: &std::path::Path,
    net: &SaliencyCnn,
    card: &SaliencyCard,
) -> crate::Result<()> {
    let cfg = card.config()?;
    let widths: Vec<usize> = net.convs.iter().map(|c| c.weight.val().dims()[0]).collect();
    if net.shape != [cfg.channels, cfg.size, cfg.size]
        || widths != cfg.widths
        || net.classes() != cfg.classes
    {
        return invalid(format!(
            "the card describes {}×{}×{} images, widths {:?} and {} classes, the network takes {:?}, widths {widths:?} and {} classes",
            cfg.channels,
            cfg.size,
            cfg.size,
            cfg.widths,
            cfg.classes,
            net.shape,
            net.classes()
        ));
    }
    gradlab_train::checkpoint::save_set(dir, 0, |gdir| {
        let weights = gdir.join(WEIGHTS);
        net.clone()
            .save_file(&weights)
            .map_err(|e| gradlab_train::error::file_err(&weights, e))?;
        let text = serde_json::to_string_pretty(card)
            .map_err(|e| gradlab_train::error::file_err(gdir.join(CARD), e))?;
        std::fs::write(gdir.join(CARD), text)
            .map_err(|e| gradlab_train::error::file_err(gdir.join(CARD), e))
    })
    .map_err(|e| saved_err(dir, e))
}

/// Check that `dir` can take a saved model (new, empty, or an earlier save) before training.
pub fn check_model_destination(dir: &std::path::Path) -> crate::Result<()> {
    gradlab_train::checkpoint::check_destination(dir).map_err(|e| saved_err(dir, e))?;
    gradlab_train::output::check_output_dir(dir).map_err(|e| saved_err(dir, e))
}

/// The model saved in `dir` (inner device) and its card; an error if the files are missing,
/// damaged, not a saliency model, or do not fit the card.
pub fn load_model(dir: &std::path::Path) -> crate::Result<(SaliencyCnn, SaliencyCard)> {
    let gdir = gradlab_train::checkpoint::load_set(dir).map_err(|e| saved_err(dir, e))?;
    let path = gdir.join(CARD);
    let text = std::fs::read_to_string(&path)
        .map_err(|_| saved_err(dir, format!("not a saliency model (no {CARD})")))?;
    let card: SaliencyCard = serde_json::from_str(&text)
        .map_err(|e| saved_err(dir, format!("{CARD} is not a saliency card: {e}")))?;
    let net = card.config()?.init(&Device::flex(), 0)?;
    let net = net.try_load_file(gdir.join(WEIGHTS)).map_err(|e| {
        let first: String = e
            .to_string()
            .chars()
            .take(160)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        saved_err(
            dir,
            format!("the saved weights do not fit the network its card describes ({first}…)"),
        )
    })?;
    if gradlab_core::flat::flatten_host(&net)?
        .iter()
        .any(|v| !v.is_finite())
    {
        return Err(saved_err(dir, "the saved weights are not all finite"));
    }
    Ok((net, card))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_core::bridge::{from_host, to_host};

    fn setup() -> (SaliencyCnn, Tensor<4>, Device) {
        let dev = Device::flex().autodiff();
        let net = SaliencyCnnConfig::new()
            .with_size(8)
            .with_widths(vec![3, 4])
            .init(&dev, 1)
            .unwrap();
        let vals: Vec<f64> = (0..2 * 64).map(|i| ((i * 37 % 11) as f64) / 10.0).collect();
        let x = from_host(&vals, [2, 1, 8, 8], &dev)
            .unwrap()
            .cast(burn::tensor::DType::F32);
        (net, x, dev)
    }

    /// NormGrad is ‖g_u x_uᵀ‖_F: the 1×1 virtual layer's weight gradient built as the dense C×C
    /// outer product at every location, against the ‖x‖·‖g‖ the map uses.
    #[test]
    fn normgrad_is_the_frobenius_norm_of_the_dense_outer_product() {
        let (net, x, _) = setup();
        let p = net.probe(x, &[0, 2]).unwrap();
        for layer in 0..2 {
            let map = to_host(p.normgrad(layer, Phase1::Conv1x1).unwrap()).unwrap();
            let xs = to_host(p.features[layer].clone()).unwrap();
            let gs = to_host(p.grads[layer].clone()).unwrap();
            let [b, c, h, w] = p.features[layer].dims();
            for bi in 0..b {
                for loc in 0..h * w {
                    let at = |v: &[f64], ch: usize| v[((bi * c + ch) * h * w) + loc];
                    let mut fro = 0.0;
                    for i in 0..c {
                        for j in 0..c {
                            fro += (at(&gs, i) * at(&xs, j)).powi(2);
                        }
                    }
                    let m = map[bi * h * w + loc];
                    assert!(
                        (m - fro.sqrt()).abs() < 1e-5 * (1.0 + m),
                        "layer {layer}, image {bi}, location {loc}: {m} vs {}",
                        fro.sqrt()
                    );
                }
            }
        }
    }

    /// g_u from the probe against central differences of the target score in x_u: perturbing
    /// block u's output through the probe itself (f64).
    #[test]
    fn the_probe_gradients_match_finite_differences() {
        let dev = Device::flex().autodiff();
        let net = SaliencyCnnConfig::new()
            .with_size(8)
            .with_widths(vec![3, 4])
            .init(&dev, 1)
            .unwrap();
        let net = net.valid();
        let inner = Device::flex();
        let vals: Vec<f64> = (0..64).map(|i| ((i * 37 % 11) as f64) / 10.0).collect();
        let x = from_host(&vals, [1, 1, 8, 8], &inner)
            .unwrap()
            .cast(burn::tensor::DType::F32);
        let p = net.probe(x.clone(), &[1]).unwrap();
        let score = |probes: &[Tensor<4>]| -> f64 {
            let (logits, _) = net.forward_probed(x.clone(), Some(probes));
            to_host(logits).unwrap()[1]
        };
        for layer in 0..2 {
            let g = to_host(p.grads[layer].clone()).unwrap();
            let dims = p.features[layer].dims();
            let zeros: Vec<Tensor<4>> = p
                .features
                .iter()
                .map(|f| Tensor::zeros(f.dims(), &inner))
                .collect();
            for k in (0..g.len()).step_by(5) {
                let bump = |s: f64| {
                    let mut e = vec![0.0; g.len()];
                    e[k] = s;
                    let mut probes = zeros.clone();
                    probes[layer] = from_host(&e, dims, &inner)
                        .unwrap()
                        .cast(burn::tensor::DType::F32);
                    score(&probes)
                };
                let fd = (bump(1e-2) - bump(-1e-2)) / 2e-2;
                assert!(
                    (fd - g[k]).abs() < 2e-3 * (1.0 + g[k].abs()),
                    "layer {layer}, entry {k}: {fd} vs {}",
                    g[k]
                );
            }
        }
    }

    #[test]
    fn the_variants_follow_their_definitions() {
        let (net, x, _) = setup();
        let p = net.probe(x, &[1, 1]).unwrap();
        let xs = to_host(p.features[1].clone()).unwrap();
        let gs = to_host(p.grads[1].clone()).unwrap();
        let [_, c, h, w] = p.features[1].dims();
        let scaling = to_host(p.normgrad(1, Phase1::Scaling).unwrap()).unwrap();
        let selective = to_host(p.normgrad(1, Phase1::Selective).unwrap()).unwrap();
        let bias = to_host(p.normgrad(1, Phase1::Bias).unwrap()).unwrap();
        let conv3 = to_host(p.normgrad(1, Phase1::Conv3x3).unwrap()).unwrap();
        let gn: Vec<f64> = (0..h * w)
            .map(|l| {
                (0..c)
                    .map(|i| gs[i * h * w + l].powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        for l in 0..h * w {
            let s: f64 = (0..c)
                .map(|i| (xs[i * h * w + l] * gs[i * h * w + l]).powi(2))
                .sum();
            let sel: f64 = (0..c)
                .map(|i| (xs[i * h * w + l] * gs[i * h * w + l]).max(0.0).powi(2))
                .sum();
            assert!(
                (scaling[l] - s.sqrt()).abs() < 1e-5 && (selective[l] - sel.sqrt()).abs() < 1e-5
            );
            assert!((bias[l] - gn[l]).abs() < 1e-5);
            let (r, q) = (l / w, l % w);
            let mut win = 0.0;
            for dr in -1i64..=1 {
                for dq in -1i64..=1 {
                    let (rr, qq) = (r as i64 + dr, q as i64 + dq);
                    if rr >= 0 && qq >= 0 && (rr as usize) < h && (qq as usize) < w {
                        win += (0..c)
                            .map(|i| xs[i * h * w + rr as usize * w + qq as usize].powi(2))
                            .sum::<f64>();
                    }
                }
            }
            assert!(
                (conv3[l] - win.sqrt() * gn[l]).abs() < 1e-4 * (1.0 + conv3[l]),
                "location {l}"
            );
        }
    }

    #[test]
    fn meta_saliency_leaves_the_model_unchanged_and_changes_the_map() {
        let (net, x, _) = setup();
        let before = gradlab_core::flat::flatten_host(&net).unwrap();
        let plain = to_host(
            net.probe(x.clone(), &[0, 1])
                .unwrap()
                .normgrad(0, Phase1::Conv1x1)
                .unwrap(),
        )
        .unwrap();
        let meta = to_host(
            meta_saliency(&net, x, &[0, 1], 0.5)
                .unwrap()
                .normgrad(0, Phase1::Conv1x1)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(before, gradlab_core::flat::flatten_host(&net).unwrap());
        assert!(plain.iter().zip(&meta).any(|(a, b)| (a - b).abs() > 1e-6));
    }

    #[test]
    fn a_saved_model_loads_back_and_damage_is_refused() {
        let (net, _, _) = setup();
        let dir = std::env::temp_dir().join(format!("gradlab-saliency-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        let card = SaliencyCard {
            channels: 1,
            size: 8,
            widths: vec![3, 4],
            class_names: vec!["a".into(), "b".into(), "c".into()],
            data: "test".into(),
            test_accuracy: 0.5,
        };
        save_model(&dir, &net, &card).unwrap();
        let (back, c) = load_model(&dir).unwrap();
        assert_eq!(c, card);
        assert_eq!(
            gradlab_core::flat::flatten_host(&back).unwrap(),
            gradlab_core::flat::flatten_host(&net).unwrap()
        );
        // A card that does not describe the network is refused at saving.
        let wrong = SaliencyCard {
            size: 16,
            ..card.clone()
        };
        assert!(
            save_model(&dir, &net, &wrong)
                .unwrap_err()
                .to_string()
                .contains("16")
        );
        // A damaged card fails its checksum.
        let gdir = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.is_dir())
            .unwrap();
        let text = std::fs::read_to_string(gdir.join(CARD))
            .unwrap()
            .replace("\"size\": 8", "\"size\": 16");
        std::fs::write(gdir.join(CARD), text).unwrap();
        assert!(
            load_model(&dir)
                .unwrap_err()
                .to_string()
                .contains(&dir.display().to_string())
        );
        std::fs::remove_dir_all(&dir).ok();
        assert!(load_model(&dir).is_err());
    }

    #[test]
    fn combination_normalises_and_multiplies() {
        let dev = Device::flex();
        let a = Tensor::<3>::from_floats([[[0.0, 2.0], [4.0, 4.0]]], &dev);
        let b = Tensor::<3>::from_floats([[[1.0, 1.0], [3.0, 2.0]]], &dev);
        let c = to_host(combine(vec![a, b], [2, 2]).unwrap()).unwrap();
        assert_eq!(c, vec![0.0, 0.0, 1.0, 0.5]);
        assert!(combine(vec![], [2, 2]).is_err());
    }

    #[test]
    fn bad_images_targets_and_configs_are_refused_with_the_value() {
        let (net, _, dev) = setup();
        let e = net
            .probe(Tensor::zeros([1, 3, 8, 8], &dev), &[0])
            .unwrap_err()
            .to_string();
        assert!(e.contains("1×8×8") && e.contains("3×8×8"), "{e}");
        assert!(
            net.probe(Tensor::zeros([1, 1, 8, 8], &dev), &[5])
                .unwrap_err()
                .to_string()
                .contains("class 5")
        );
        assert!(
            net.probe(Tensor::zeros([2, 1, 8, 8], &dev), &[0])
                .unwrap_err()
                .to_string()
                .contains("1 target")
        );
        assert!(
            SaliencyCnnConfig::new()
                .with_widths(vec![])
                .init(&dev, 0)
                .is_err()
        );
        assert!(
            SaliencyCnnConfig::new()
                .with_size(10)
                .init(&dev, 0)
                .unwrap_err()
                .to_string()
                .contains("side 10")
        );
    }
}
