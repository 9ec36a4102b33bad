//! Run any burn [`Optimizer`] on a plain vector in f64: for analytic test functions, the
//! `gradlab optimize` command, and reference tests. The update is the very code that trains
//! networks, applied to one rank-1 f64 tensor.
//!
//! ```
//! use gradlab_optim::{point::{PointOptimizer, PointStep}, sgd::SgdConfig};
//! let mut opt = PointOptimizer::new(SgdConfig::new().build().unwrap(), &[1.0, 2.0]);
//! let x = opt.step(0.5, &[2.0, 4.0]).unwrap();
//! assert_eq!(x, vec![0.0, 0.0]);
//! ```

use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::DType;

/// An optimizer attached to one f64 vector.
pub struct PointOptimizer<O: Optimizer> {
    optim: O,
    transform: Option<Box<dyn crate::transform::GradientTransform>>,
    x: Tensor<1>,
    state: Option<O::State<1>>,
    device: Device,
}

/// Object-safe view of a [`PointOptimizer`].
pub trait PointStep {
    /// Apply one update with gradient `grad` at the current point; return the new point. A
    /// gradient of the wrong length, or a transformation that fails, is an error.
    fn step(&mut self, lr: f64, grad: &[f64]) -> crate::Result<Vec<f64>>;
    /// The current point.
    fn point(&self) -> crate::Result<Vec<f64>>;
}

/// A rank-1 f64 tensor on `device`.
pub fn f64_tensor(values: &[f64], device: &Device) -> Tensor<1> {
    Tensor::<1>::from_data(
        TensorData::new(values.to_vec(), [values.len()]),
        (device, DType::F64),
    )
}

impl<O: Optimizer> PointOptimizer<O> {
    /// Attach `optim` to the starting point `x0`.
    pub fn new(optim: O, x0: &[f64]) -> Self {
        let device = Device::flex();
        Self {
            optim,
            transform: None,
            x: f64_tensor(x0, &device),
            state: None,
            device,
        }
    }
}

impl<O: Optimizer> PointOptimizer<O> {
    /// Transform every gradient with `t` before the optimizer sees it.
    pub fn with_transform(mut self, t: impl crate::transform::GradientTransform + 'static) -> Self {
        self.transform = Some(Box::new(t));
        self
    }
}

impl<O: Optimizer> PointStep for PointOptimizer<O> {
    fn step(&mut self, lr: f64, grad: &[f64]) -> crate::Result<Vec<f64>> {
        let n = self.x.dims()[0];
        if grad.len() != n {
            return Err(gradlab_core::CoreError::Length {
                what: "a gradient",
                expected: n,
                got: grad.len(),
            }
            .into());
        }
        let g = match &mut self.transform {
            Some(t) => f64_tensor(
                &t.update(crate::transform::GradSet::from_values(grad, &self.device))?
                    .to_values()?,
                &self.device,
            ),
            None => f64_tensor(grad, &self.device),
        };
        let (x, state) = self.optim.step(lr, self.x.clone(), g, self.state.take());
        self.x = x;
        self.state = state;
        self.point()
    }
    fn point(&self) -> crate::Result<Vec<f64>> {
        Ok(gradlab_core::bridge::to_host(self.x.clone())?)
    }
}
