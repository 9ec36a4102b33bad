//! ViWS-Net at small scale ("Video Adverse-Weather-Component Suppression Network via Weather
//! Messenger and Adversarial Backpropagation", Yang et al., ICCV 2023; official code
//! `scott-yjyang/ViWS-Net`: `modeling/model.py`, `modeling/wsal.py`, `modeling/functions.py`).
//!
//! One network restores videos degraded by any of several weathers:
//! - a shared frame encoder (two 3×3 convolutions, the second of stride 2);
//! - **weather messengers**, as the official Shunted-Transformer encoder has them: M learned tokens
//!   (one starting value shared by every clip, initialised N(0, 0.02²)) copied to every frame, and
//!   one attention block over each frame's patch tokens and its messengers together (patches and
//!   messengers read each other within the frame); the messengers then exchange information across
//!   frames only by the official temporal channel shift (the channels in six folds rolled along
//!   the frames by 1, 0, −1, 2, 0, −2). The updated patch features f are the shared features;
//! - **adversarial backpropagation**: a weather discriminator (the official `WSAL`: average pool per
//!   frame, gated-attention pooling over the frames with bias-free tanh and sigmoid branches and a
//!   bias-free score, a linear classifier without bias) reads f through a gradient reversal layer,
//!   so the single optimiser step that trains it to name the weather pushes f, and the messengers
//!   that wrote into f, to hide the weather;
//! - the decoder fuses the centre frame's features with the clip's temporal mean; the centre
//!   frame's messengers query its features (the official `Attention_dec`: messengers are the
//!   queries, the M outputs nearest-resized to the positions) and are added; then upsampling and a
//!   residual: restored = degraded centre frame − residual;
//! - the loss, as `main_multi.py`, supervises only the centre frame:
//!   SmoothL1(restored, clean centre) + w · CE(discriminator, weather), w = 0.001 officially (the
//!   VGG perceptual term is left out here).
//!
//! Differences from the paper: convolutions and one attention block instead of the four-stage
//! Transformer encoder (messengers in every block) and its decoder, one channel, no tanh-bounded
//! residual, 3-D convolution tail or refinement network. The features the reversal acts on are
//! also the ones the decoder reads (as the official decoder reads the last encoder stage).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::viws_net::ViwsNetConfig;
//! let dev = Device::flex().autodiff();
//! let net = ViwsNetConfig::new().init(&dev, 0).unwrap();
//! let clips = Tensor::<4>::zeros([2, 5, 16, 16], &dev); // [clips, frames, side, side]
//! let out = net.forward(clips, 1.0).unwrap();
//! assert_eq!(out.restored.dims(), [2, 1, 16, 16]);
//! assert_eq!(out.weather_logits.dims(), [2, 3]);
//! ```

use crate::error::{ParadigmError, invalid};
use crate::gradient_reversal::reverse_gradient;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{gelu, sigmoid, softmax};
use gradlab_nets::init::seeded;
use gradlab_nets::loss::LossKind;
use gradlab_nets::upsample2;

/// The network's shape.
#[derive(Config, Debug, PartialEq)]
pub struct ViwsNetConfig {
    /// Frames per clip (the official 5); the centre frame T/2 is restored.
    #[config(default = 5)]
    pub frames: usize,
    /// Frame side (even).
    #[config(default = 16)]
    pub size: usize,
    /// Feature channels.
    #[config(default = 16)]
    pub width: usize,
    /// Weather messenger tokens (0: none).
    #[config(default = 4)]
    pub messengers: usize,
    /// Weathers the discriminator tells apart.
    #[config(default = 3)]
    pub weathers: usize,
    /// Width of the discriminator's gated attention (the official 128).
    #[config(default = 32)]
    pub attention: usize,
}

impl ViwsNetConfig {
    /// The network on `device`, its weights drawn from `seed`.
    pub fn init(&self, device: &Device, seed: u64) -> crate::Result<ViwsNet> {
        let ok = self.frames >= 1
            && self.size >= 4
            && self.size.is_multiple_of(2)
            && self.width >= 1
            && self.weathers >= 2
            && self.attention >= 1;
        if !ok {
            return invalid(format!(
                "ViWS-Net needs ≥ 1 frame, an even side ≥ 4, ≥ 1 channel, ≥ 2 weathers and ≥ 1 attention unit, got {} frames, side {}, {} channels, {} weathers, {} attention units",
                self.frames, self.size, self.width, self.weathers, self.attention
            ));
        }
        let w = self.width;
        let conv = |cin: usize, cout: usize, k: usize, stride: usize| {
            let p = k / 2;
            Conv2dConfig::new([cin, cout], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(device)
        };
        let lin =
            |a: usize, b: usize, bias: bool| LinearConfig::new(a, b).with_bias(bias).init(device);
        let m = self.messengers;
        Ok(seeded(device, seed, || ViwsNet {
            enc1: conv(1, w, 3, 1),
            enc2: conv(w, w, 3, 2),
            tokens: (m > 0).then(|| {
                Param::from_tensor(Tensor::random(
                    [m, w],
                    burn::tensor::Distribution::Normal(0.0, 0.02),
                    device,
                ))
            }),
            mix: (m > 0).then(|| Attention::new(w, &lin)),
            query: (m > 0).then(|| Attention::new(w, &lin)),
            fuse: conv(2 * w, w, 1, 1),
            dec1: conv(2 * w, w, 3, 1),
            dec2: conv(w, 1, 3, 1),
            disc: Discriminator {
                v: lin(w, self.attention, false),
                u: lin(w, self.attention, false),
                score: lin(self.attention, 1, false),
                classify: lin(w, self.weathers, false),
            },
            shape: [self.frames, self.size, w],
        }))
    }
}

/// Single-head attention of queries over keys and values (linear maps of width w).
#[derive(Module, Debug)]
pub struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
}

impl Attention {
    fn new(w: usize, lin: &impl Fn(usize, usize, bool) -> Linear) -> Self {
        Attention {
            q: lin(w, w, false),
            k: lin(w, w, false),
            v: lin(w, w, false),
        }
    }

    /// softmax(q kᵀ / √w) v for queries [B, Q, w] over items [B, N, w].
    fn forward(&self, queries: Tensor<3>, items: Tensor<3>) -> Tensor<3> {
        let w = queries.dims()[2] as f64;
        let (q, k, v) = (
            self.q.forward(queries),
            self.k.forward(items.clone()),
            self.v.forward(items),
        );
        softmax(q.matmul(k.swap_dims(1, 2)) / w.sqrt(), 2).matmul(v)
    }
}

/// The official `WSAL` weather discriminator: gated-attention pooling over frames, then a linear
/// classifier without bias.
#[derive(Module, Debug)]
pub struct Discriminator {
    v: Linear,
    u: Linear,
    score: Linear,
    classify: Linear,
}

impl Discriminator {
    /// Logits [B, weathers] from per-frame pooled features [B, T, w].
    fn forward(&self, frames: Tensor<3>) -> Tensor<2> {
        let gate = self.v.forward(frames.clone()).tanh() * sigmoid(self.u.forward(frames.clone()));
        let weights = softmax(self.score.forward(gate), 1); // [B, T, 1], over the frames
        let [b, _, w] = frames.dims();
        let pooled = (frames * weights).sum_dim(1).reshape([b, w]);
        self.classify.forward(pooled)
    }
}

/// What one forward pass gives.
#[derive(Debug, Clone)]
pub struct ViwsOutput {
    /// The restored centre frames [B, 1, side, side].
    pub restored: Tensor<4>,
    /// The discriminator's weather logits [B, weathers] (through the reversal layer).
    pub weather_logits: Tensor<2>,
    /// The clip's shared features, pooled over frames and space [B, w].
    pub pooled: Tensor<2>,
    /// The centre frame's shared features [B, w, side/2, side/2].
    pub centre_features: Tensor<4>,
    /// The messengers after the encoder block and the temporal shift, averaged over the frames
    /// [B, M, w] (None without messengers).
    pub messengers: Option<Tensor<3>>,
}

/// ViWS-Net at small scale (see the module docs).
#[derive(Module, Debug)]
pub struct ViwsNet {
    enc1: Conv2d,
    enc2: Conv2d,
    tokens: Option<Param<Tensor<2>>>,
    mix: Option<Attention>,
    query: Option<Attention>,
    fuse: Conv2d,
    dec1: Conv2d,
    dec2: Conv2d,
    disc: Discriminator,
    #[module(skip)]
    shape: [usize; 3],
}

/// SmoothL1 (β = 1), the mean over all entries.
pub fn smooth_l1(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let d = (a - b).abs();
    let q = d.clone().clamp_max(1.0);
    (q.clone() * q * 0.5 + d.clone() - d.clamp_max(1.0)).mean()
}

/// The official temporal shift of the messengers [B, T, M, C]: the channels in six folds of
/// ⌊C/6⌋, fold k rolled along the frames by (1, 0, −1, 2, 0, −2)[k] (frame t takes frame t − shift,
/// cyclically); the remaining channels stay.
pub fn temporal_shift(m: Tensor<4>) -> Tensor<4> {
    let [_, t, _, c] = m.dims();
    let fold = c / 6;
    if fold == 0 || t == 1 {
        return m;
    }
    let mut parts = vec![];
    for (k, shift) in [1i64, 0, -1, 2, 0, -2].into_iter().enumerate() {
        let part = m.clone().narrow(3, k * fold, fold);
        let s = shift.rem_euclid(t as i64) as usize;
        parts.push(if s == 0 {
            part
        } else {
            Tensor::cat(
                vec![part.clone().narrow(1, t - s, s), part.narrow(1, 0, t - s)],
                1,
            )
        });
    }
    if 6 * fold < c {
        parts.push(m.narrow(3, 6 * fold, c - 6 * fold));
    }
    Tensor::cat(parts, 3)
}

impl ViwsNet {
    /// Refuses clips that are not [B ≥ 1, frames, side, side].
    pub fn check_clips(&self, clips: &Tensor<4>) -> crate::Result<()> {
        let [b, t, h, w] = clips.dims();
        let [frames, side, _] = self.shape;
        if b == 0 || [t, h, w] != [frames, side, side] {
            return Err(ParadigmError::Shape(format!(
                "ViWS-Net takes clips [batch ≥ 1, {frames} frames, {side}, {side}], got [{b}, {t}, {h}, {w}]"
            )));
        }
        Ok(())
    }

    /// Restore the centre frames of `clips` [B, T, side, side]; the discriminator reads the shared
    /// features through a reversal layer of weight `alpha`.
    pub fn forward(&self, clips: Tensor<4>, alpha: f64) -> crate::Result<ViwsOutput> {
        self.check_clips(&clips)?;
        let [b, t, s, _] = clips.dims();
        let w = self.shape[2];
        let centre = clips.clone().narrow(1, t / 2, 1); // [B, 1, s, s]
        let frames = clips.reshape([b * t, 1, s, s]);
        let e1 = gelu(self.enc1.forward(frames)); // [BT, w, s, s]
        let f0 = gelu(self.enc2.forward(e1.clone())); // [BT, w, h, h]
        let h = s / 2;
        let (f, messengers) = match (&self.tokens, &self.mix) {
            (Some(tokens), Some(mix)) => {
                let m = tokens.dims()[0];
                let patches = f0.permute([0, 2, 3, 1]).reshape([b * t, h * h, w]);
                let copies = tokens.val().unsqueeze_dim::<3>(0).repeat_dim(0, b * t);
                let joint = Tensor::cat(vec![patches, copies], 1);
                let joint = joint.clone() + mix.forward(joint.clone(), joint);
                let patches = joint.clone().narrow(1, 0, h * h);
                let msgs = temporal_shift(joint.narrow(1, h * h, m).reshape([b, t, m, w]));
                let f = patches.reshape([b * t, h, h, w]).permute([0, 3, 1, 2]);
                (f, Some(msgs))
            }
            _ => (f0, None),
        };
        let per_frame = f.clone().mean_dim(3).mean_dim(2).reshape([b, t, w]);
        let weather_logits = self
            .disc
            .forward(reverse_gradient(per_frame.clone(), alpha)?);
        let pooled = per_frame.mean_dim(1).reshape([b, w]);

        let clip_f = f.reshape([b, t, w, h, h]);
        let centre_f = clip_f.clone().narrow(1, t / 2, 1).reshape([b, w, h, h]);
        let centre_features = centre_f.clone();
        let mean_f = clip_f.mean_dim(1).reshape([b, w, h, h]);
        let mut z = gelu(
            self.fuse
                .forward(Tensor::cat(vec![centre_f.clone(), mean_f], 1)),
        );
        if let (Some(msgs), Some(query)) = (&messengers, &self.query) {
            // The centre frame's messengers query its features; output n of the h² positions
            // takes messenger ⌊M·n / h²⌋ (the official nearest resize of the queries).
            let m = msgs.dims()[2];
            let centre_m = msgs.clone().narrow(1, t / 2, 1).reshape([b, m, w]);
            let items = centre_f.permute([0, 2, 3, 1]).reshape([b, h * h, w]);
            let read = query.forward(centre_m, items); // [B, M, w]
            let idx: Vec<i64> = (0..h * h).map(|n| (m * n / (h * h)) as i64).collect();
            let idx = Tensor::<1, Int>::from_data(TensorData::new(idx, [h * h]), &read.device());
            let spread = read.select(1, idx); // [B, h², w]
            z = z + spread.reshape([b, h, h, w]).permute([0, 3, 1, 2]);
        }
        let messengers = messengers.map(|m| {
            let [b, _, k, w] = m.dims();
            m.mean_dim(1).reshape([b, k, w])
        });
        let skip = e1
            .reshape([b, t, w, s, s])
            .narrow(1, t / 2, 1)
            .reshape([b, w, s, s]);
        let up = Tensor::cat(vec![upsample2(z), skip], 1);
        let residual = self.dec2.forward(gelu(self.dec1.forward(up)));
        Ok(ViwsOutput {
            restored: centre - residual,
            weather_logits,
            pooled,
            centre_features,
            messengers,
        })
    }

    /// The training loss: SmoothL1(restored, clean centre frames [B, 1, side, side]) +
    /// `ce_weight` · CE(weather logits, `weather` [B]); also returns the forward pass.
    pub fn loss(
        &self,
        clips: Tensor<4>,
        clean_centre: Tensor<4>,
        weather: Tensor<1, Int>,
        alpha: f64,
        ce_weight: f64,
    ) -> crate::Result<(Tensor<1>, ViwsOutput)> {
        if !(ce_weight.is_finite() && ce_weight >= 0.0) {
            return invalid(format!(
                "the discriminator's loss weight must be ≥ 0, got {ce_weight}"
            ));
        }
        let out = self.forward(clips, alpha)?;
        let [b, _, s, _] = out.restored.dims();
        if clean_centre.dims() != [b, 1, s, s] || weather.dims() != [b] {
            return Err(ParadigmError::Shape(format!(
                "targets [{b}, 1, {s}, {s}] and [{b}] expected, got {:?} and {:?}",
                clean_centre.dims(),
                weather.dims()
            )));
        }
        let ce = LossKind::CrossEntropy.forward(out.weather_logits.clone(), weather);
        let loss = smooth_l1(out.restored.clone(), clean_centre) + ce * ce_weight;
        Ok((loss, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::GradientsParams;
    use gradlab_core::bridge::to_host;

    fn clips(dev: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..2 * 5 * 16 * 16)
            .map(|i| ((i * 37) % 101) as f32 / 101.0)
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, [2, 5, 16, 16]), dev)
    }

    /// The reversal flips the sign of the discriminator loss's gradient at the encoder and leaves
    /// the discriminator's own gradient alone: with α = 1 against α = −1 the encoder's gradient
    /// from the CE term changes sign, the classifier's does not.
    #[test]
    fn reversal_flips_only_the_encoders_gradient() {
        let dev = Device::flex().autodiff();
        let net = ViwsNetConfig::new().init(&dev, 1).unwrap();
        let y = Tensor::<1, Int>::from_ints([0, 2], &dev);
        let grads = |alpha: f64| {
            let ce = net.forward(clips(&dev), alpha).unwrap().weather_logits;
            let loss = LossKind::CrossEntropy.forward(ce, y.clone());
            let g = GradientsParams::from_grads(loss.backward(), &net);
            let enc = to_host(g.get::<4>(net.enc2.weight.id).unwrap()).unwrap();
            let cls = to_host(g.get::<2>(net.disc.classify.weight.id).unwrap()).unwrap();
            (enc, cls)
        };
        let ((e1, c1), (e2, c2)) = (grads(1.0), grads(-1.0));
        assert!(e1.iter().any(|v| v.abs() > 1e-8));
        for (a, b) in e1.iter().zip(&e2) {
            assert!((a + b).abs() <= 1e-6 * (1.0 + a.abs()), "{a} vs {b}");
        }
        assert_eq!(c1, c2);
        // The restoration path does not depend on α.
        let r = |a| to_host(net.forward(clips(&dev), a).unwrap().restored).unwrap();
        assert_eq!(r(0.0), r(1.0));
    }

    #[test]
    fn messengers_are_optional_and_shapes_are_checked() {
        let dev = Device::flex();
        let net = ViwsNetConfig::new()
            .with_messengers(0)
            .init(&dev, 0)
            .unwrap();
        let out = net.forward(clips(&dev), 0.0).unwrap();
        assert!(out.messengers.is_none());
        let with = ViwsNetConfig::new()
            .init(&dev, 0)
            .unwrap()
            .forward(clips(&dev), 0.0)
            .unwrap();
        assert_eq!(with.messengers.unwrap().dims(), [2, 4, 16]);
        let e = net
            .forward(Tensor::<4>::zeros([2, 3, 16, 16], &dev), 0.0)
            .unwrap_err();
        assert!(e.to_string().contains("[2, 3, 16, 16]"), "{e}");
        let e = ViwsNetConfig::new()
            .with_size(15)
            .init(&dev, 0)
            .unwrap_err();
        assert!(e.to_string().contains("side 15"), "{e}");
        let y = Tensor::<1, Int>::from_ints([0, 1, 2], &dev);
        let clean = Tensor::<4>::zeros([2, 1, 16, 16], &dev);
        let e = net
            .loss(clips(&dev), clean.clone(), y, 0.0, 0.001)
            .unwrap_err();
        assert!(e.to_string().contains("[3]"), "{e}");
        let y = Tensor::<1, Int>::from_ints([0, 1], &dev);
        assert!(
            net.loss(clips(&dev), clean, y, 0.0, -1.0)
                .unwrap_err()
                .to_string()
                .contains("-1")
        );
    }

    /// Fold k of the channels moves by (1, 0, −1, 2, 0, −2)[k] frames, cyclically; the rest stay.
    #[test]
    fn temporal_shift_rolls_the_channel_folds() {
        let dev = Device::flex();
        // [1, T = 3, 1, C = 7]: value = 10·t + c.
        let v: Vec<f32> = (0..3)
            .flat_map(|t| (0..7).map(move |c| (10 * t + c) as f32))
            .collect();
        let m = Tensor::<4>::from_data(TensorData::new(v, [1, 3, 1, 7]), &dev);
        let out = to_host(temporal_shift(m)).unwrap();
        let at = |t: usize, c: usize| out[t * 7 + c];
        for t in 0..3 {
            let from = |shift: i64| ((t as i64 - shift).rem_euclid(3) * 10) as f64;
            for (c, shift) in [1i64, 0, -1, 2, 0, -2].into_iter().enumerate() {
                assert_eq!(at(t, c), from(shift) + c as f64, "t {t}, c {c}");
            }
            assert_eq!(at(t, 6), (10 * t + 6) as f64);
        }
    }

    #[test]
    fn smooth_l1_is_huber_with_beta_1() {
        let dev = Device::flex();
        let a = Tensor::<4>::from_floats([[[[0.5, 3.0]]]], &dev);
        let b = Tensor::<4>::zeros([1, 1, 1, 2], &dev);
        let v = to_host(smooth_l1(a, b)).unwrap()[0];
        assert!((v - (0.125 + 2.5) / 2.0).abs() < 1e-6, "{v}");
    }
}
