//! Run any burn [`Optimizer`] on a plain vector in f64: for analytic test functions, the
//! `gradlab optimize` command, and reference tests. The update is the very code that trains
//! networks, applied to one rank-1 f64 tensor; [`Descent`] runs it on any problem with a
//! gradient through the one solver loop.
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
use gradlab_core::problem::{Gradient, check_point};
use gradlab_core::solve::{Iteration, Solver};

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

/// First-order descent with any optimizer on a problem with a gradient, run by
/// [`gradlab_core::solve::solve`]: x_{k+1} = step(lr_k, ∇f(x_k)) with the optimizer's own update
/// rule (a [`PointStep`] attached to the starting point). A gradient or an iterate that is not
/// finite ends the run with an error.
///
/// ```
/// use gradlab_core::solve::{Control, Iteration, solve};
/// use gradlab_data::functions::Quadratic;
/// use gradlab_optim::point::Descent;
/// use gradlab_optim::spec::OptimizerSpec;
/// let f = Quadratic::diagonal(vec![1.0, 4.0]).unwrap();
/// let x0 = [1.0, 1.0];
/// let opt = OptimizerSpec::parse("sgd").unwrap().point_optimizer(&x0).unwrap();
/// let mut seen = 0;
/// let (end, report) = solve(&mut Descent::new(opt, 0.1), &f, &x0, 50, &mut |_: &Iteration| {
///     seen += 1;
///     Control::Continue
/// })
/// .unwrap();
/// assert!(end.x.iter().all(|v| v.abs() < 0.01) && report.iterations == 50 && seen == 51);
/// ```
pub struct Descent {
    opt: Box<dyn PointStep>,
    lr: Box<dyn Fn(usize) -> f64>,
}

/// The state of [`Descent`].
#[derive(Debug, Clone, PartialEq)]
pub struct DescentState {
    /// The iterate.
    pub x: Vec<f64>,
    /// Steps taken (gradients evaluated).
    pub steps: usize,
}

impl Descent {
    /// `opt` (attached to the starting point) with the constant learning rate `lr`.
    pub fn new(opt: Box<dyn PointStep>, lr: f64) -> Self {
        Self::scheduled(opt, move |_| lr)
    }

    /// `opt` with the learning rate `lr(k)` at step k = 0, 1, ….
    pub fn scheduled(opt: Box<dyn PointStep>, lr: impl Fn(usize) -> f64 + 'static) -> Self {
        Self {
            opt,
            lr: Box::new(lr),
        }
    }
}

impl<P: Gradient + ?Sized> Solver<P> for Descent {
    type State = DescentState;
    type Error = crate::OptimError;

    fn init(&mut self, problem: &P, x0: &[f64]) -> crate::Result<DescentState> {
        check_point(problem, x0)?;
        if self.opt.point()? != x0 {
            return Err(crate::OptimError::Conflict(
                "the optimizer is attached to another starting point than the run's",
            ));
        }
        Ok(DescentState {
            x: x0.to_vec(),
            steps: 0,
        })
    }

    fn converged(&self, _: &DescentState) -> bool {
        false
    }

    fn step(&mut self, problem: &P, state: &mut DescentState) -> crate::Result<()> {
        let g = problem.gradient(&state.x)?;
        let x = self.opt.step((self.lr)(state.steps), &g)?;
        state.steps += 1;
        if x.iter().any(|v| !v.is_finite()) {
            return Err(crate::OptimError::NonFinite {
                what: "iterate",
                step: state.steps,
            });
        }
        state.x = x;
        Ok(())
    }

    fn iteration<'a>(&self, state: &'a DescentState) -> Iteration<'a> {
        Iteration {
            work: state.steps,
            ..Iteration::at(&state.x)
        }
    }
}
