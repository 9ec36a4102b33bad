//! Gradient transformations in the style of optax: each maps the gradients of *all* parameters
//! to new ones, and transformations chain in front of any optimizer:
//!
//! ```
//! use gradlab_optim::transform::{ClipGlobalNorm, ClipTopCoordinates, GradientTransform, GradSet};
//! use burn::prelude::*;
//! let mut t = ClipTopCoordinates::new(0.25).unwrap().then(ClipGlobalNorm::new(1.0).unwrap());
//! let g = GradSet::from_values(&[4.0, -3.0, 0.5, 0.1], &Device::flex());
//! let out = t.update(g).unwrap().to_values().unwrap();
//! // Top 25% clipped at the 2nd largest |g| (3), then the global norm scaled to 1.
//! let n = (9.0f64 + 9.0 + 0.25 + 0.01).sqrt();
//! assert!((out[0] - 3.0 / n).abs() < 1e-6 && (out[2] - 0.5 / n).abs() < 1e-6);
//! ```
//!
//! A [`GradSet`] holds one flattened gradient per parameter; [`TransformedOptimizer`] applies a
//! transformation between `backward` and any burn [`ModuleOptimizer`], and
//! [`crate::point::PointOptimizer::with_transform`] does the same for vectors.
//!
//! Naming makes the scope explicit: [`ClipGlobalNorm`] clips the norm of all gradients together
//! (PyTorch's `clip_grad_norm_`), [`ClipNormPerTensor`] each parameter's own norm (what burn's
//! `GradientClipping::Norm` does), [`ClipValue`] each coordinate at a fixed bound, and
//! [`ClipTopCoordinates`] each coordinate at an adaptive bound over all parameters.

use crate::error::{OptimError, Result, check_non_negative, check_positive};
use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::optim::{GradientsParams, LearningRate, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::DType;
use rand::prelude::*;
use rand_distr::StandardNormal;

/// One parameter's gradient, flattened.
#[derive(Debug, Clone)]
pub struct GradItem {
    /// The parameter, when the gradient came from a module.
    pub id: Option<ParamId>,
    /// The parameter's shape.
    pub dims: Vec<usize>,
    /// The gradient as a rank-1 tensor.
    pub grad: Tensor<1>,
}

/// The gradients of a set of parameters, each flattened.
#[derive(Debug, Clone, Default)]
pub struct GradSet {
    /// One entry per parameter, in the module's visiting order.
    pub items: Vec<GradItem>,
}

struct Take<'a> {
    grads: &'a mut GradientsParams,
    items: Vec<GradItem>,
}
impl ModuleVisitor for Take<'_> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(p.id) {
            let dims = g.dims().to_vec();
            let n: usize = dims.iter().product();
            self.items.push(GradItem {
                id: Some(p.id),
                dims,
                grad: g.reshape([n]),
            });
        }
    }
}

struct Give {
    items: std::vec::IntoIter<GradItem>,
    pending: Option<GradItem>,
    out: GradientsParams,
}
impl ModuleVisitor for Give {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if self.pending.is_none() {
            self.pending = self.items.next();
        }
        if let Some(item) = self.pending.take_if(|i| i.id == Some(p.id)) {
            let dims: [usize; D] = std::array::from_fn(|k| item.dims[k]);
            self.out.register::<D>(p.id, item.grad.reshape(dims));
        }
    }
}

impl GradSet {
    /// Move the gradients of `module`'s parameters out of `grads`.
    pub fn take<M: Module>(module: &M, grads: &mut GradientsParams) -> Self {
        let mut t = Take {
            grads,
            items: vec![],
        };
        module.visit(&mut t);
        Self { items: t.items }
    }

    /// Turn back into burn's per-parameter gradients for `module`.
    pub fn into_grads<M: Module>(self, module: &M) -> GradientsParams {
        let mut g = Give {
            items: self.items.into_iter(),
            pending: None,
            out: GradientsParams::new(),
        };
        module.visit(&mut g);
        g.out
    }

    /// A single f64 gradient vector.
    pub fn from_values(values: &[f64], device: &Device) -> Self {
        let grad = Tensor::<1>::from_data(
            TensorData::new(values.to_vec(), [values.len()]),
            (device, DType::F64),
        );
        Self {
            items: vec![GradItem {
                id: None,
                dims: vec![values.len()],
                grad,
            }],
        }
    }

    /// All coordinates, concatenated, as f64.
    pub fn to_values(&self) -> crate::Result<Vec<f64>> {
        let mut out = Vec::with_capacity(self.numel());
        for i in &self.items {
            out.extend(gradlab_core::bridge::to_host(i.grad.clone())?);
        }
        Ok(out)
    }

    /// The same parameters with new coordinates (`values` concatenated in item order, as
    /// [`GradSet::to_values`] gives them; its length must be [`GradSet::numel`]), on each item's
    /// device and dtype.
    pub fn with_values(mut self, values: &[f64]) -> Self {
        let mut offset = 0;
        for item in &mut self.items {
            let n: usize = item.dims.iter().product();
            let chunk = values[offset..offset + n].to_vec();
            offset += n;
            let (device, dtype) = (item.grad.device(), item.grad.dtype());
            item.grad = Tensor::<1>::from_data(TensorData::new(chunk, [n]), (&device, DType::F64))
                .cast(dtype);
        }
        self
    }

    /// Number of coordinates.
    pub fn numel(&self) -> usize {
        self.items
            .iter()
            .map(|i| i.dims.iter().product::<usize>())
            .sum()
    }

    /// Squared Euclidean norm of all coordinates.
    pub fn sq_norm(&self) -> f64 {
        self.items
            .iter()
            .map(|i| i.grad.clone().square().sum().into_scalar::<f64>())
            .sum()
    }

    /// Apply `f` to every parameter's gradient.
    pub fn map(mut self, mut f: impl FnMut(Tensor<1>) -> Tensor<1>) -> Self {
        for item in &mut self.items {
            item.grad = f(item.grad.clone());
        }
        self
    }
}

/// A transformation of the gradients of all parameters.
pub trait GradientTransform: Send {
    /// Transform one step's gradients; a transformation that cannot do its work (a failed
    /// factorisation, gradients that cannot be read) returns an error, never its input unchanged.
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet>;

    /// Apply `self`, then `next`.
    fn then<T: GradientTransform + 'static>(self, next: T) -> Chain
    where
        Self: Sized + 'static,
    {
        Chain(vec![Box::new(self), Box::new(next)])
    }
}

/// Transformations applied in order.
pub struct Chain(pub Vec<Box<dyn GradientTransform>>);

impl GradientTransform for Chain {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        self.0.iter_mut().try_fold(grads, |g, t| t.update(g))
    }
    fn then<T: GradientTransform + 'static>(mut self, next: T) -> Chain {
        self.0.push(Box::new(next));
        self
    }
}

/// The scaling min(1, c / (‖g‖ + 1e-6)) of PyTorch's `clip_grad_norm_`.
fn norm_clip_coef(max_norm: f64, sq_norm: f64) -> f64 {
    (max_norm / (sq_norm.sqrt() + 1e-6)).min(1.0)
}

/// Scale all gradients by min(1, c / (‖g‖ + 1e-6)), ‖g‖ over all parameters together
/// (PyTorch's `clip_grad_norm_`).
#[derive(Debug, Clone)]
pub struct ClipGlobalNorm {
    max_norm: f64,
}

impl ClipGlobalNorm {
    /// Clip the global norm at `max_norm` > 0.
    pub fn new(max_norm: f64) -> Result<Self> {
        check_positive("max_norm", max_norm)?;
        Ok(Self { max_norm })
    }
}

impl GradientTransform for ClipGlobalNorm {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        let coef = norm_clip_coef(self.max_norm, grads.sq_norm());
        Ok(if coef < 1.0 {
            grads.map(|g| g.mul_scalar(coef))
        } else {
            grads
        })
    }
}

/// Scale each parameter's gradient by min(1, c / (‖g_p‖ + 1e-6)) separately.
#[derive(Debug, Clone)]
pub struct ClipNormPerTensor {
    max_norm: f64,
}

impl ClipNormPerTensor {
    /// Clip every parameter's gradient norm at `max_norm` > 0.
    pub fn new(max_norm: f64) -> Result<Self> {
        check_positive("max_norm", max_norm)?;
        Ok(Self { max_norm })
    }
}

impl GradientTransform for ClipNormPerTensor {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        Ok(grads.map(|g| {
            let coef = norm_clip_coef(self.max_norm, g.clone().square().sum().into_scalar::<f64>());
            if coef < 1.0 { g.mul_scalar(coef) } else { g }
        }))
    }
}

/// Clamp every coordinate to [−c, c].
#[derive(Debug, Clone)]
pub struct ClipValue {
    bound: f64,
}

impl ClipValue {
    /// Clamp at `bound` > 0.
    pub fn new(bound: f64) -> Result<Self> {
        check_positive("bound", bound)?;
        Ok(Self { bound })
    }
}

impl GradientTransform for ClipValue {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        Ok(grads.map(|g| g.clamp(-self.bound, self.bound)))
    }
}

/// Coordinate-wise clipping of "Toward Understanding Why Adam Converges Faster Than SGD for
/// Transformers" (Pan & Li, arXiv 2306.00204): the threshold τ is the ⌊N·c⌋-th largest |g|
/// (0-based, over all N coordinates of all parameters, as `_get_top_coordinates_threshold` in the
/// authors' `torch_optimizer/sgd_clip.py`), and g ← sign(g)·min(|g|, τ). The paper's defaults are
/// c = 0.1 in front of SGD and c = 0.5 in front of Adam.
///
/// c = 1 uses the smallest |g| as τ (every coordinate clipped to it); the authors' code uses τ = 0
/// there, which zeroes the gradient.
///
/// Note on the authors' code: `SGDClip` clips only in its `foreach` (multi-tensor) path. Built with
/// PyTorch's default `foreach=None`, as their `train_utils.py` builds it, it runs the single-tensor
/// path, which receives `coordinate_clip` but never uses it: their "SGD, clip 0.1" convergence runs
/// are plain SGD (`normalized_sgd.py` and `adam_clip.py` share the pattern).
#[derive(Debug, Clone)]
pub struct ClipTopCoordinates {
    fraction: f64,
}

impl ClipTopCoordinates {
    /// Clip the top `fraction` ∈ (0, 1] of coordinates by magnitude.
    pub fn new(fraction: f64) -> Result<Self> {
        if fraction > 0.0 && fraction <= 1.0 {
            Ok(Self { fraction })
        } else {
            Err(OptimError::Invalid {
                name: "c",
                value: fraction,
                requirement: "in (0, 1]",
            })
        }
    }

    /// The threshold τ for `grads`.
    pub fn threshold(&self, grads: &GradSet) -> crate::Result<f64> {
        let mut mags: Vec<f64> = grads.to_values()?.into_iter().map(f64::abs).collect();
        if mags.is_empty() {
            return Ok(f64::INFINITY);
        }
        let k = ((mags.len() as f64 * self.fraction).floor() as usize).min(mags.len() - 1);
        let (_, kth, _) = mags.select_nth_unstable_by(k, |a, b| b.total_cmp(a));
        Ok(*kth)
    }
}

impl GradientTransform for ClipTopCoordinates {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        let tau = self.threshold(&grads)?;
        Ok(grads.map(|g| g.clamp(-tau, tau)))
    }
}

/// Add independent N(0, σ²) noise to every coordinate, drawn from a seeded generator (the same
/// seed gives the same noise sequence). The Gaussian mechanism of DP-SGD, after per-example
/// clipping and averaging.
#[derive(Debug, Clone)]
pub struct GaussianNoise {
    std: f64,
    rng: StdRng,
}

impl GaussianNoise {
    /// Noise of standard deviation `std` ≥ 0.
    pub fn new(std: f64, seed: u64) -> Result<Self> {
        check_non_negative("sigma", std)?;
        Ok(Self {
            std,
            rng: StdRng::seed_from_u64(seed),
        })
    }
}

impl GradientTransform for GaussianNoise {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        if self.std == 0.0 {
            return Ok(grads);
        }
        Ok(grads.map(|g| {
            let n = g.dims()[0];
            let noise: Vec<f64> = (0..n)
                .map(|_| self.std * self.rng.sample::<f64, _>(StandardNormal))
                .collect();
            let t = Tensor::<1>::from_data(TensorData::new(noise, [n]), (&g.device(), g.dtype()));
            g + t
        }))
    }
}

/// A stateless clipping transformation by value, for configurations and the command line.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ClipSpec {
    /// [`ClipGlobalNorm`].
    GlobalNorm(f64),
    /// [`ClipNormPerTensor`].
    NormPerTensor(f64),
    /// [`ClipValue`].
    Value(f64),
    /// [`ClipTopCoordinates`].
    TopCoordinates(f64),
}

impl ClipSpec {
    /// Parse `global-norm:C`, `tensor-norm:C`, `value:C` or `top:C`.
    pub fn parse(arg: &str) -> Result<Self> {
        let unknown = || OptimError::Unknown {
            what: "clipping",
            name: arg.into(),
            known: "global-norm:C, tensor-norm:C, value:C, top:C".into(),
        };
        let (kind, value) = arg.split_once(':').ok_or_else(unknown)?;
        let v: f64 = value.trim().parse().map_err(|_| unknown())?;
        let spec = match kind {
            "global-norm" => ClipSpec::GlobalNorm(v),
            "tensor-norm" => ClipSpec::NormPerTensor(v),
            "value" => ClipSpec::Value(v),
            "top" => ClipSpec::TopCoordinates(v),
            _ => return Err(unknown()),
        };
        spec.build()?;
        Ok(spec)
    }

    /// Validate and build the transformation.
    pub fn build(&self) -> Result<Box<dyn GradientTransform>> {
        Ok(match *self {
            ClipSpec::GlobalNorm(c) => Box::new(ClipGlobalNorm::new(c)?),
            ClipSpec::NormPerTensor(c) => Box::new(ClipNormPerTensor::new(c)?),
            ClipSpec::Value(c) => Box::new(ClipValue::new(c)?),
            ClipSpec::TopCoordinates(c) => Box::new(ClipTopCoordinates::new(c)?),
        })
    }
}

/// `transform` applied to the gradients of `module`, as burn gradients again (what
/// [`TransformedOptimizer::step`] and a training loop with its own optimizer do before a step).
pub fn apply<M: Module>(
    transform: &mut (impl GradientTransform + ?Sized),
    module: &M,
    mut grads: GradientsParams,
) -> Result<GradientsParams> {
    let set = transform.update(GradSet::take(module, &mut grads))?;
    Ok(set.into_grads(module))
}

/// A transformation in front of a burn optimizer.
pub struct TransformedOptimizer {
    transform: Box<dyn GradientTransform>,
    optim: ModuleOptimizer,
}

impl TransformedOptimizer {
    /// Apply `transform` to the gradients before every step of `optim`.
    pub fn new(transform: impl GradientTransform + 'static, optim: ModuleOptimizer) -> Self {
        Self {
            transform: Box::new(transform),
            optim,
        }
    }

    /// One step: transform the gradients of `module`, then let the optimizer update it (a
    /// transformation that fails is the step's error; the module is then not updated).
    pub fn step<M: Module>(
        &mut self,
        lr: LearningRate,
        module: M,
        grads: GradientsParams,
    ) -> Result<M> {
        let grads = apply(self.transform.as_mut(), &module, grads)?;
        Ok(self.optim.step(lr, module, grads))
    }

    /// The wrapped optimizer (for saving its state).
    pub fn optimizer(&self) -> &ModuleOptimizer {
        &self.optim
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[f64]) -> GradSet {
        GradSet::from_values(v, &Device::flex())
    }

    #[test]
    fn top_coordinate_threshold_matches_sorting() {
        // Sorted |g| descending: 9, 7, 5, 3, 2, 1, 0.5, 0.1 (N = 8).
        let g = set(&[1.0, -9.0, 0.5, 7.0, -3.0, 2.0, 0.1, -5.0]);
        for (c, tau) in [(0.1, 9.0), (0.25, 5.0), (0.5, 2.0), (0.9, 0.1), (1.0, 0.1)] {
            let t = ClipTopCoordinates::new(c).unwrap();
            assert_eq!(t.threshold(&g).unwrap(), tau, "c = {c}");
        }
        let out = ClipTopCoordinates::new(0.25)
            .unwrap()
            .update(g)
            .unwrap()
            .to_values()
            .unwrap();
        assert_eq!(out, vec![1.0, -5.0, 0.5, 5.0, -3.0, 2.0, 0.1, -5.0]);
        assert!(ClipTopCoordinates::new(0.0).is_err() && ClipTopCoordinates::new(1.5).is_err());
    }

    #[test]
    fn norms_and_values() {
        let g = set(&[3.0, 4.0]);
        let out = ClipGlobalNorm::new(1.0)
            .unwrap()
            .update(g.clone())
            .unwrap()
            .to_values()
            .unwrap();
        assert!((out[0] - 0.6 / (1.0 + 1e-6 / 5.0)).abs() < 1e-9);
        assert_eq!(
            ClipGlobalNorm::new(10.0)
                .unwrap()
                .update(g.clone())
                .unwrap()
                .to_values()
                .unwrap(),
            vec![3.0, 4.0]
        );
        assert_eq!(
            ClipValue::new(3.5)
                .unwrap()
                .update(g)
                .unwrap()
                .to_values()
                .unwrap(),
            vec![3.0, 3.5]
        );
        assert!(ClipGlobalNorm::new(-1.0).is_err() && ClipValue::new(f64::NAN).is_err());
    }

    #[test]
    fn global_and_per_tensor_norms_differ_on_a_module() {
        use burn::nn::{Linear, LinearConfig};
        let dev = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(3, 2).init(&dev);
        let x = Tensor::<2>::ones([4, 3], &dev).mul_scalar(10.0);
        let grads =
            |m: &Linear| GradientsParams::from_grads(m.forward(x.clone()).sum().backward(), m);
        let mut g = grads(&model);
        let raw = GradSet::take(&model, &mut g);
        assert_eq!(raw.items.len(), 2);
        let global = ClipGlobalNorm::new(1.0)
            .unwrap()
            .update(raw.clone())
            .unwrap();
        assert!((global.sq_norm().sqrt() - 1.0).abs() < 1e-4);
        let per = ClipNormPerTensor::new(1.0)
            .unwrap()
            .update(raw.clone())
            .unwrap();
        assert!((per.sq_norm().sqrt() - 2f64.sqrt()).abs() < 1e-4);
        // Round trip back to burn's gradients keeps shapes and values.
        let back = raw.clone().into_grads(&model);
        let w: Tensor<2> = back.get::<2>(model.weight.id).unwrap();
        assert_eq!(w.dims(), [3, 2]);
        assert_eq!(
            GradSet::take(&model, &mut { back }).to_values(),
            raw.to_values()
        );
    }

    #[test]
    fn transformed_optimizer_steps_with_clipped_gradients() {
        use crate::sgd::SgdConfig;
        use burn::nn::{Linear, LinearConfig};
        let dev = Device::flex().autodiff();
        let model: Linear = LinearConfig::new(2, 1).init(&dev);
        let before = model
            .weight
            .val()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap();
        let x = Tensor::<2>::from_floats([[100.0, 1.0]], &dev);
        let g = GradientsParams::from_grads(model.forward(x).sum().backward(), &model);
        let mut opt = TransformedOptimizer::new(
            ClipValue::new(0.5).unwrap(),
            SgdConfig::new().init().unwrap(),
        );
        let model = opt.step(1.0, model, g).unwrap();
        let after = model
            .weight
            .val()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap();
        // d(sum)/dW = x = (100, 1) clipped to (0.5, 0.5).
        assert!(
            (before[0] - after[0] - 0.5).abs() < 1e-6 && (before[1] - after[1] - 0.5).abs() < 1e-6
        );
    }

    #[test]
    fn clip_specs_parse_and_validate() {
        assert_eq!(
            ClipSpec::parse("top:0.1").unwrap(),
            ClipSpec::TopCoordinates(0.1)
        );
        assert_eq!(
            ClipSpec::parse("global-norm:1").unwrap(),
            ClipSpec::GlobalNorm(1.0)
        );
        assert!(
            ClipSpec::parse("top:2").is_err()
                && ClipSpec::parse("norm").is_err()
                && ClipSpec::parse("value:x").is_err()
        );
    }

    #[test]
    fn noise_is_seeded_with_the_requested_spread() {
        let zeros = vec![0.0; 20000];
        let a = GaussianNoise::new(0.5, 3)
            .unwrap()
            .update(set(&zeros))
            .unwrap()
            .to_values()
            .unwrap();
        let b = GaussianNoise::new(0.5, 3)
            .unwrap()
            .update(set(&zeros))
            .unwrap()
            .to_values()
            .unwrap();
        assert_eq!(a, b);
        let sd = (a.iter().map(|v| v * v).sum::<f64>() / a.len() as f64).sqrt();
        assert!((sd - 0.5).abs() < 0.01, "{sd}");
        assert!(GaussianNoise::new(-1.0, 0).is_err());
    }
}
