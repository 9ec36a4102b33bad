//! RevCol: reversible column networks (Cai, Zhou, Liang, Zhou, Chen and Zhang, "Reversible Column
//! Networks", ICLR 2023; official code `megvii-research/RevCol`, `models/revcol.py` and
//! `models/revcol_function.py::ReverseFunction`).
//!
//! N columns of T levels share one stem output x. Level t of a column fuses the new level below
//! (or x at t = 0) with the previous column's level above, and adds the previous column's own
//! level scaled per channel:
//!
//! c_t ← α_t ⊙ c_t + F_t(c_{t−1}^new, c_{t+1}^old),   F_t(a, b) = h + conv(gelu(conv(h))),
//! h = down(a) + up(b)
//!
//! (down: a 2×2 stride-2 convolution, the identity at t = 0; up: a 1×1 convolution and nearest
//! ×2 upsampling; the first column has no up term and no α, its c starting at 0; the top level has
//! no up term). Every column is invertible, c_t^old = (c_t − F_t(c_{t−1}^new, c_{t+1}^old)) / α_t
//! from the top level down, so [`RevCol::reversible_backward`] stores only x and the last column
//! and rebuilds each earlier column while it back-propagates, in the official order: for t = T−1
//! … 0 recompute o_t = F_t with gradients, take the upstream gradient through it, reconstruct
//! c_t^old, and give α_t its gradient Σ g ⊙ c_t^old. As the official code, |α| is kept ≥ 1e−3 with
//! its sign: the official clamps the stored parameters in place before every forward; here
//! [`RevCol::project_alphas`] does that (call it after each optimiser step) and the forward clamps
//! too, with the gradient passing straight through.
//!
//! Differences from the paper's networks: 3×3-convolution levels instead of ConvNeXt blocks (no
//! layer scale, no drop-path), no layer norm, a 3×3 stride-1 stem (official: 4×4 stride 4), PyTorch's
//! default uniform initialisation (official: truncated normal, std 0.02), no intermediate
//! supervision (one linear head on the last column's top level); the first column has no α
//! parameters (the official creates them, but they multiply the initial 0 and never matter).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::loss::LossKind;
//! use gradlab_paradigms::revcol::RevColConfig;
//! let dev = Device::flex().autodiff();
//! let net = RevColConfig::new().with_columns(2).init(&dev, 0).unwrap();
//! let images = Tensor::<4>::zeros([3, 1, 8, 8], &dev);
//! let labels = Tensor::<1, Int>::from_ints([0, 1, 2], &dev);
//! let (loss, grads) = net
//!     .reversible_backward(images, |logits| LossKind::CrossEntropy.forward(logits, labels))
//!     .unwrap();
//! assert!(loss.is_finite() && !grads.is_empty());
//! ```

use crate::error::{ParadigmError, invalid};
use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::gelu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, TensorData};
use gradlab_core::bridge::scalar_to_host;
use gradlab_nets::upsample2;
use rand::prelude::*;

/// The smallest |α| (the official `_clamp_abs(…, 1e-3)`).
pub const ALPHA_FLOOR: f64 = 1e-3;

/// A RevCol's shape.
#[derive(Config, Debug, PartialEq)]
pub struct RevColConfig {
    /// Columns N.
    #[config(default = 4)]
    pub columns: usize,
    /// Channels of the levels (T = its length), from the finest.
    #[config(default = "vec![8, 16, 32]")]
    pub channels: Vec<usize>,
    /// Input channels.
    #[config(default = 1)]
    pub in_channels: usize,
    /// Input side (square images), divisible by 2^(T−1).
    #[config(default = 8)]
    pub size: usize,
    /// Classes of the head.
    #[config(default = 10)]
    pub classes: usize,
    /// The α's initial value (official 0.5).
    #[config(default = 0.5)]
    pub alpha: f64,
}

impl RevColConfig {
    /// A clear error for a shape the network cannot take.
    pub fn validate(&self) -> crate::Result<()> {
        let levels = self.channels.len();
        if self.columns == 0 || levels == 0 || self.channels.contains(&0) {
            return invalid(format!(
                "RevCol needs ≥ 1 column and ≥ 1 level of ≥ 1 channel, got {} columns and channels {:?}",
                self.columns, self.channels
            ));
        }
        if self.in_channels == 0 || self.classes < 2 {
            return invalid(format!(
                "RevCol needs ≥ 1 input channel and ≥ 2 classes, got {} and {}",
                self.in_channels, self.classes
            ));
        }
        let step = 1usize.checked_shl(levels as u32 - 1).unwrap_or(0);
        if levels > 16 || self.size == 0 || step == 0 || !self.size.is_multiple_of(step) {
            return invalid(format!(
                "a RevCol of {levels} levels halves the side {} times: the side {} is not divisible by 2^{}",
                levels - 1,
                self.size,
                levels - 1
            ));
        }
        if !self.alpha.is_finite() || self.alpha.abs() < ALPHA_FLOOR {
            return invalid(format!(
                "α must be finite with |α| ≥ {ALPHA_FLOOR}, got {}",
                self.alpha
            ));
        }
        Ok(())
    }

    /// The network in f32 on `device` (an autodiff device to train it).
    pub fn init(&self, device: &Device, seed: u64) -> crate::Result<RevCol> {
        self.init_with_dtype(device, seed, DType::F32)
    }

    /// The network with parameters of `dtype` (f32 or f64); weights and biases uniform in
    /// ±1/√fan-in as PyTorch's default.
    pub fn init_with_dtype(
        &self,
        device: &Device,
        seed: u64,
        dtype: DType,
    ) -> crate::Result<RevCol> {
        self.validate()?;
        if !matches!(dtype, DType::F32 | DType::F64) {
            return invalid(format!("RevCol parameters are f32 or f64, got {dtype:?}"));
        }
        let mut init = Init {
            rng: StdRng::seed_from_u64(seed),
            device,
            dtype,
        };
        let ch = &self.channels;
        let levels = ch.len();
        let stem = init.conv(self.in_channels, ch[0], 3, 1, 1);
        let columns = (0..self.columns)
            .map(|j| Column {
                levels: (0..levels)
                    .map(|t| Level {
                        down: (t > 0).then(|| init.conv(ch[t - 1], ch[t], 2, 2, 0)),
                        up: (j > 0 && t + 1 < levels).then(|| init.conv(ch[t + 1], ch[t], 1, 1, 0)),
                        conv1: init.conv(ch[t], ch[t], 3, 1, 1),
                        conv2: init.conv(ch[t], ch[t], 3, 1, 1),
                        alpha: (j > 0).then(|| init.param(vec![self.alpha; ch[t]], [ch[t]])),
                    })
                    .collect(),
            })
            .collect();
        let top = ch[levels - 1];
        let bound = 1.0 / (top as f64).sqrt();
        Ok(RevCol {
            stem,
            columns,
            head_w: init.uniform([top, self.classes], bound),
            head_b: init.uniform([self.classes], bound),
            shape: [self.in_channels, self.size, self.size],
        })
    }
}

/// Parameter initialisation from one seeded stream.
struct Init<'a> {
    rng: StdRng,
    device: &'a Device,
    dtype: DType,
}

impl Init<'_> {
    fn param<const D: usize>(&self, values: Vec<f64>, shape: [usize; D]) -> Param<Tensor<D>> {
        let t = Tensor::<D>::from_data(TensorData::new(values, shape), (self.device, DType::F64));
        Param::from_tensor(t.cast(self.dtype))
    }

    fn uniform<const D: usize>(&mut self, shape: [usize; D], bound: f64) -> Param<Tensor<D>> {
        let n = shape.iter().product();
        let v = (0..n)
            .map(|_| self.rng.random_range(-bound..bound))
            .collect();
        self.param(v, shape)
    }

    fn conv(&mut self, cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Conv {
        let bound = 1.0 / ((cin * k * k) as f64).sqrt();
        Conv {
            w: self.uniform([cout, cin, k, k], bound),
            b: self.uniform([cout], bound),
            stride,
            pad,
        }
    }
}

/// A 2-D convolution with bias.
#[derive(Module, Debug)]
pub struct Conv {
    w: Param<Tensor<4>>,
    b: Param<Tensor<1>>,
    #[module(skip)]
    stride: usize,
    #[module(skip)]
    pad: usize,
}

impl Conv {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let options = ConvOptions::new([self.stride; 2], [self.pad; 2], [1, 1], 1);
        conv2d(x, self.w.val(), Some(self.b.val()), options)
    }
}

/// One level of one column.
#[derive(Module, Debug)]
pub struct Level {
    down: Option<Conv>,
    up: Option<Conv>,
    conv1: Conv,
    conv2: Conv,
    alpha: Option<Param<Tensor<1>>>,
}

impl Level {
    /// F_t(a, b) = h + conv2(gelu(conv1(h))), h = down(a) + up(b).
    fn fuse(&self, a: Tensor<4>, b: Option<Tensor<4>>) -> Tensor<4> {
        let mut h = match &self.down {
            Some(d) => d.forward(a),
            None => a,
        };
        if let (Some(up), Some(b)) = (&self.up, b) {
            h = h + upsample2(up.forward(b));
        }
        h.clone() + self.conv2.forward(gelu(self.conv1.forward(h)))
    }

    /// α as a [1, C, 1, 1] tensor, clamped as [`clamp_abs`] (straight-through: the gradient
    /// passes unclamped, as it reaches the official parameter once its value is clamped).
    fn alpha(&self) -> Option<Tensor<4>> {
        self.alpha.as_ref().map(|a| {
            let a = a.val();
            let c = a.dims()[0];
            (a.clone() + (clamp_abs(a.clone()) - a).detach()).reshape([1, c, 1, 1])
        })
    }
}

/// |α| clamped to ≥ [`ALPHA_FLOOR`] keeping its sign; 0 becomes +[`ALPHA_FLOOR`] (the official
/// `_clamp_abs` leaves an exact 0 at 0, and its backward then divides by it).
fn clamp_abs(a: Tensor<1>) -> Tensor<1> {
    let sign = a.clone().greater_equal_elem(0.0).float().cast(a.dtype()) * 2.0 - 1.0;
    a.abs().clamp_min(ALPHA_FLOOR) * sign
}

/// One column: its levels from the finest.
#[derive(Module, Debug)]
pub struct Column {
    levels: Vec<Level>,
}

impl Column {
    /// The column's levels from x and the previous column's (none for the first column).
    fn forward(&self, x: Tensor<4>, prev: Option<&[Tensor<4>]>) -> Vec<Tensor<4>> {
        let mut out: Vec<Tensor<4>> = Vec::with_capacity(self.levels.len());
        for (t, level) in self.levels.iter().enumerate() {
            let a = if t == 0 {
                x.clone()
            } else {
                out[t - 1].clone()
            };
            let b = prev.and_then(|p| p.get(t + 1)).cloned();
            let o = level.fuse(a, b);
            out.push(match (prev, level.alpha()) {
                (Some(p), Some(alpha)) => alpha * p[t].clone() + o,
                _ => o,
            });
        }
        out
    }
}

/// A reversible column network with a linear head on the last column's top level.
#[derive(Module, Debug)]
pub struct RevCol {
    stem: Conv,
    columns: Vec<Column>,
    head_w: Param<Tensor<2>>,
    head_b: Param<Tensor<1>>,
    #[module(skip)]
    shape: [usize; 3],
}

impl RevCol {
    /// Columns N.
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    /// The network with every α parameter projected to |α| ≥ [`ALPHA_FLOOR`], sign kept, as the
    /// official code does to the stored parameters before every forward: call it after each
    /// optimiser step, so that the optimiser's next step starts from the clamped value. (The
    /// forward clamps as well, so a network not projected still computes the same outputs.)
    pub fn project_alphas(mut self) -> Self {
        for level in self.columns.iter_mut().flat_map(|c| c.levels.iter_mut()) {
            if let Some(a) = level.alpha.take() {
                level.alpha = Some(a.map(|t| {
                    let (tracked, autodiff) = (t.is_require_grad(), t.is_autodiff());
                    let p = clamp_abs(t.without_autodiff());
                    match (autodiff, tracked) {
                        (true, true) => Tensor::from_inner(p).require_grad(),
                        (true, false) => Tensor::from_inner(p),
                        _ => p,
                    }
                }));
            }
        }
        self
    }

    /// Refuses images that are not [B ≥ 1, channels, size, size].
    pub fn check_input(&self, images: &Tensor<4>) -> crate::Result<()> {
        let [b, c, h, w] = images.dims();
        if b == 0 || [c, h, w] != self.shape {
            return Err(ParadigmError::Shape(format!(
                "RevCol takes images [batch ≥ 1, {}, {}, {}], got [{b}, {c}, {h}, {w}]",
                self.shape[0], self.shape[1], self.shape[2]
            )));
        }
        let (got, want) = (images.dtype(), self.head_b.val().dtype());
        if got != want {
            return invalid(format!(
                "RevCol's parameters are {want:?} but the images are {got:?}"
            ));
        }
        Ok(())
    }

    /// The last column's levels, through ordinary autodiff (every column's activations kept).
    pub fn features(&self, images: Tensor<4>) -> crate::Result<Vec<Tensor<4>>> {
        self.check_input(&images)?;
        let x = self.stem.forward(images);
        let mut c: Option<Vec<Tensor<4>>> = None;
        for col in &self.columns {
            c = Some(col.forward(x.clone(), c.as_deref()));
        }
        Ok(c.expect("≥ 1 column"))
    }

    fn head(&self, top: Tensor<4>) -> Tensor<2> {
        let [b, ch, _, _] = top.dims();
        let pooled = top.mean_dim(3).mean_dim(2).reshape([b, ch]);
        pooled.matmul(self.head_w.val()) + self.head_b.val().unsqueeze_dim(0)
    }

    /// Logits [B, classes] (ordinary autodiff: backward stores every column's activations).
    pub fn forward(&self, images: Tensor<4>) -> crate::Result<Tensor<2>> {
        let top = self.features(images)?.pop().expect("≥ 1 level");
        Ok(self.head(top))
    }

    /// The loss and every parameter's gradient, by the reversible backward: the forward keeps
    /// only the stem output and the last column; the backward rebuilds each earlier column from
    /// the next (see the module docs). `loss` maps the logits to a scalar. `self` must be on an
    /// autodiff device.
    pub fn reversible_backward(
        &self,
        images: Tensor<4>,
        loss: impl FnOnce(Tensor<2>) -> Tensor<1>,
    ) -> crate::Result<(f64, GradientsParams)> {
        self.check_input(&images)?;
        if !self.head_w.val().is_require_grad() {
            return invalid(
                "reversible_backward needs the network on an autodiff device with gradients on (init on Device::flex().autodiff(), or .train())",
            );
        }
        let images = images.without_autodiff();
        // Forward without gradients: x and the last column only.
        let plain = self.valid();
        let x = plain.stem.forward(images.clone());
        let mut c: Option<Vec<Tensor<4>>> = None;
        for col in &plain.columns {
            c = Some(col.forward(x.clone(), c.as_deref()));
        }
        drop(plain);
        let mut c = c.expect("≥ 1 column");
        let levels = c.len();

        // The head, and the gradient at the last column's top level.
        let top = Tensor::from_inner(c[levels - 1].clone()).require_grad();
        let value = loss(self.head(top.clone()));
        let loss_value = scalar_to_host(value.clone())?;
        if !loss_value.is_finite() {
            return Err(ParadigmError::NonFinite {
                what: "RevCol loss",
                step: 0,
            });
        }
        let grads = value.backward();
        let g_top = top.grad(&grads).ok_or_else(|| missing("the top level"))?;
        let mut total = GradientsParams::new();
        accumulate(&mut total, GradientsParams::from_grads(grads, self), self);

        let mut g_new: Vec<Option<Tensor<4>>> = vec![None; levels];
        g_new[levels - 1] = Some(g_top);
        let mut g_x: Option<Tensor<4>> = None;
        for (j, col) in self.columns.iter().enumerate().rev() {
            let mut prev: Vec<Option<Tensor<4>>> = vec![None; levels];
            let mut g_prev: Vec<Option<Tensor<4>>> = vec![None; levels];
            for t in (0..levels).rev() {
                let level = &col.levels[t];
                let a = Tensor::from_inner(if t == 0 { x.clone() } else { c[t - 1].clone() })
                    .require_grad();
                let b = match (&level.up, &prev.get(t + 1)) {
                    (Some(_), Some(Some(p))) => Some(Tensor::from_inner(p.clone()).require_grad()),
                    (Some(_), _) => return Err(missing("a reconstructed upper level")),
                    _ => None,
                };
                let o = level.fuse(a.clone(), b.clone());
                let o_value = o.clone().inner();
                let g = g_new[t]
                    .take()
                    .ok_or_else(|| missing("a level's upstream gradient"))?;
                let grads = (o * Tensor::from_inner(g.clone())).sum().backward();
                let ga = a.grad(&grads).ok_or_else(|| missing("a level's input"))?;
                if t == 0 {
                    add_to(&mut g_x, ga);
                } else {
                    add_to(&mut g_new[t - 1], ga);
                }
                if let Some(b) = b {
                    let gb = b
                        .grad(&grads)
                        .ok_or_else(|| missing("a level's upper input"))?;
                    add_to(&mut g_prev[t + 1], gb);
                }
                accumulate(&mut total, GradientsParams::from_grads(grads, level), level);
                if let (Some(param), Some(alpha)) = (&level.alpha, level.alpha()) {
                    let alpha = alpha.inner();
                    let old = (c[t].clone() - o_value) / alpha.clone();
                    let ch = alpha.dims()[1];
                    let g_alpha = (g.clone() * old.clone())
                        .sum_dim(0)
                        .sum_dim(2)
                        .sum_dim(3)
                        .reshape([ch]);
                    add_param(&mut total, param.id, g_alpha);
                    add_to(&mut g_prev[t], g * alpha);
                    prev[t] = Some(old);
                }
            }
            if j > 0 {
                c = prev
                    .into_iter()
                    .map(|p| p.ok_or_else(|| missing("a reconstructed level")))
                    .collect::<crate::Result<_>>()?;
                g_new = g_prev;
            }
        }
        let g_x = g_x.ok_or_else(|| missing("the stem output"))?;
        // Rebuilding divides by α at every column: a tiny |α| can overflow it.
        if !scalar_to_host(g_x.clone().abs().sum())?.is_finite() {
            return Err(ParadigmError::NonFinite {
                what: "RevCol reversible gradient (a tiny |α| amplifies the rebuild)",
                step: 0,
            });
        }
        let xs = self.stem.forward(Tensor::from_inner(images));
        let grads = (xs * Tensor::from_inner(g_x)).sum().backward();
        accumulate(
            &mut total,
            GradientsParams::from_grads(grads, &self.stem),
            &self.stem,
        );
        Ok((loss_value, total))
    }
}

impl Column {
    /// The previous column's levels rebuilt from this column's outputs `c` (top level first), as
    /// the reversible backward does; the first column has none.
    fn invert(&self, x: &Tensor<4>, c: &[Tensor<4>]) -> Option<Vec<Tensor<4>>> {
        let levels = self.levels.len();
        let mut prev: Vec<Option<Tensor<4>>> = vec![None; levels];
        for t in (0..levels).rev() {
            let level = &self.levels[t];
            let a = if t == 0 { x.clone() } else { c[t - 1].clone() };
            let o = level.fuse(a, prev.get(t + 1).cloned().flatten());
            prev[t] = Some((c[t].clone() - o) / level.alpha()?);
        }
        prev.into_iter().collect()
    }
}

impl RevCol {
    /// How well the first column is rebuilt from the last by inverting the columns one by one
    /// (no gradients): max over levels of ‖ĉ − c‖ / ‖c‖. The rebuild divides by α at every
    /// column, so the error grows as |α| shrinks.
    pub fn reconstruction_error(&self, images: Tensor<4>) -> crate::Result<f64> {
        self.check_input(&images)?;
        let plain = self.valid();
        let x = plain.stem.forward(images.without_autodiff());
        let mut all: Vec<Vec<Tensor<4>>> = vec![];
        for col in &plain.columns {
            let c = col.forward(x.clone(), all.last().map(Vec::as_slice));
            all.push(c);
        }
        let mut c = all.last().expect("≥ 1 column").clone();
        for col in plain.columns.iter().skip(1).rev() {
            c = col
                .invert(&x, &c)
                .ok_or_else(|| missing("α of a later column"))?;
        }
        let mut worst: f64 = 0.0;
        for (rebuilt, truth) in c.into_iter().zip(&all[0]) {
            let err = scalar_to_host((rebuilt - truth.clone()).powi_scalar(2).sum().sqrt())?;
            let norm = scalar_to_host(truth.clone().powi_scalar(2).sum().sqrt())?;
            worst = worst.max(err / norm);
        }
        Ok(worst)
    }
}

fn missing(what: &str) -> ParadigmError {
    ParadigmError::Core(gradlab_core::CoreError::MissingGradient(format!(
        "{what} (reversible backward)"
    )))
}

fn add_to(slot: &mut Option<Tensor<4>>, g: Tensor<4>) {
    *slot = Some(match slot.take() {
        Some(s) => s + g,
        None => g,
    });
}

fn add_param<const D: usize>(total: &mut GradientsParams, id: burn::module::ParamId, g: Tensor<D>) {
    let sum = match total.remove::<D>(id) {
        Some(s) => s + g,
        None => g,
    };
    total.register(id, sum);
}

/// Adds the gradients in `part` of `module`'s parameters into `total`.
fn accumulate<M: Module>(total: &mut GradientsParams, mut part: GradientsParams, module: &M) {
    struct Add<'a> {
        total: &'a mut GradientsParams,
        part: &'a mut GradientsParams,
    }
    impl ModuleVisitor for Add<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if let Some(g) = self.part.remove::<D>(p.id) {
                add_param(self.total, p.id, g);
            }
        }
    }
    module.visit(&mut Add {
        total,
        part: &mut part,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_core::flat::flat_grads_host;
    use gradlab_nets::loss::LossKind;

    fn images(dev: &Device, dtype: DType, b: usize, side: usize) -> Tensor<4> {
        let mut rng = StdRng::seed_from_u64(7);
        let v: Vec<f64> = (0..b * side * side)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Tensor::<4>::from_data(TensorData::new(v, [b, 1, side, side]), (dev, DType::F64))
            .cast(dtype)
    }

    fn relative(a: &[f64], b: &[f64]) -> f64 {
        let d: f64 = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
        d / b.iter().map(|y| y * y).sum::<f64>().sqrt()
    }

    /// The reversible backward's loss and gradients equal ordinary autodiff's through the same
    /// network (f64, relative error < 1e-10), with α of either sign.
    #[test]
    fn the_reversible_backward_equals_autodiff() {
        let dev = Device::flex().autodiff();
        for alpha in [0.6, -0.4] {
            let cfg = RevColConfig::new()
                .with_columns(3)
                .with_channels(vec![3, 4, 5])
                .with_size(4)
                .with_classes(3)
                .with_alpha(alpha);
            let net = cfg.init_with_dtype(&dev, 1, DType::F64).unwrap();
            let x = images(&dev, DType::F64, 2, 4);
            let y = Tensor::<1, Int>::from_ints([2, 0], &dev);
            let (loss, grads) = net
                .reversible_backward(x.clone(), |l| LossKind::CrossEntropy.forward(l, y.clone()))
                .unwrap();
            let plain_loss = LossKind::CrossEntropy.forward(net.forward(x).unwrap(), y);
            let plain_value = scalar_to_host(plain_loss.clone()).unwrap();
            let plain = GradientsParams::from_grads(plain_loss.backward(), &net);
            let (g_rev, g_plain) = (
                flat_grads_host(&net, &grads).unwrap(),
                flat_grads_host(&net, &plain).unwrap(),
            );
            assert!((loss - plain_value).abs() < 1e-12 * plain_value.abs());
            assert!(g_plain.iter().all(|g| g.is_finite()) && g_plain.iter().any(|g| *g != 0.0));
            let err = relative(&g_rev, &g_plain);
            assert!(err < 1e-10, "α = {alpha}: relative gradient error {err:e}");
        }
    }

    /// Rebuilding the first column from the last is exact up to rounding at α = 0.5 and loses
    /// digits as α → 1e-3 (each column divides by α).
    #[test]
    fn reconstruction_error_grows_as_alpha_shrinks() {
        let dev = Device::flex();
        let x = images(&dev, DType::F32, 4, 8);
        let err = |alpha: f64| {
            let net = RevColConfig::new().with_alpha(alpha).init(&dev, 3).unwrap();
            net.reconstruction_error(x.clone()).unwrap()
        };
        let (big, small) = (err(0.5), err(1e-3));
        assert!(big < 1e-5, "α = 0.5: {big:e}");
        assert!(small > 100.0 * big, "α = 1e-3: {small:e} against {big:e}");
        // One column has nothing to rebuild.
        let one = RevColConfig::new().with_columns(1).init(&dev, 0).unwrap();
        assert_eq!(one.reconstruction_error(x).unwrap(), 0.0);
    }

    /// Projection clamps the α parameters only, keeping their sign, ids and gradient tracking.
    #[test]
    fn projection_clamps_alpha_like_the_official() {
        let dev = Device::flex().autodiff();
        let net = RevColConfig::new().with_columns(2).init(&dev, 0).unwrap();
        let n = gradlab_core::flat::flatten_host(&net).unwrap().len();
        let net = gradlab_core::flat::load_host(net, &vec![-4e-4; n]).unwrap();
        let ids: Vec<_> = net.columns[1]
            .levels
            .iter()
            .map(|l| l.alpha.as_ref().unwrap().id)
            .collect();
        let net = net.project_alphas();
        for (level, id) in net.columns[1].levels.iter().zip(ids) {
            let a = level.alpha.as_ref().unwrap();
            assert_eq!(a.id, id);
            assert!(a.val().is_require_grad());
            let v = gradlab_core::bridge::to_host(a.val()).unwrap();
            assert!(v.iter().all(|x| (x + ALPHA_FLOOR).abs() < 1e-9), "{v:?}");
        }
        let w = gradlab_core::bridge::to_host(net.head_w.val()).unwrap();
        assert!(w.iter().all(|x| (x + 4e-4).abs() < 1e-9));
        // Zero goes to +floor.
        let z = gradlab_core::bridge::to_host(clamp_abs(Tensor::<1>::zeros([2], &Device::flex())))
            .unwrap();
        assert_eq!(
            z.iter().map(|x| (x * 1e6).round()).collect::<Vec<_>>(),
            vec![1e3, 1e3]
        );
    }

    #[test]
    fn bad_shapes_are_refused_with_the_value() {
        let dev = Device::flex().autodiff();
        let msg = |c: RevColConfig| c.init(&dev, 0).unwrap_err().to_string();
        assert!(msg(RevColConfig::new().with_columns(0)).contains("0 columns"));
        assert!(msg(RevColConfig::new().with_channels(vec![])).contains("[]"));
        assert!(msg(RevColConfig::new().with_size(6)).contains("side 6"));
        assert!(msg(RevColConfig::new().with_alpha(0.0)).contains("got 0"));
        assert!(msg(RevColConfig::new().with_classes(1)).contains("1"));
        let net = RevColConfig::new().init(&dev, 0).unwrap();
        let y = Tensor::<1, Int>::from_ints([0], &dev);
        let wrong = Tensor::<4>::zeros([1, 3, 8, 8], &dev);
        let e = net
            .reversible_backward(wrong, |l| LossKind::CrossEntropy.forward(l, y.clone()))
            .unwrap_err();
        assert!(e.to_string().contains("[1, 3, 8, 8]"), "{e}");
        let f64_images = Tensor::<4>::zeros([1, 1, 8, 8], &dev).cast(DType::F64);
        let e = net.forward(f64_images).unwrap_err();
        assert!(e.to_string().contains("F64"), "{e}");
        let inner = RevColConfig::new().init(&Device::flex(), 0).unwrap();
        let e = inner
            .reversible_backward(Tensor::<4>::zeros([1, 1, 8, 8], &Device::flex()), |l| {
                l.sum()
            })
            .unwrap_err();
        assert!(e.to_string().contains("autodiff"), "{e}");
    }
}
