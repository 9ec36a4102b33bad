//! What every sampler shares: the seeded noise stream, the observer of steps, the prior draw, and
//! the checks on grids and scores.

use crate::process::Process;
use crate::score::ScoreModel;
use crate::{GenError, Result, invalid};
use burn::prelude::*;
use burn::tensor::DType;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Seeded standard normal noise, drawn in row-major order from one stream: a sampler started
/// from [`prior`] with the same stream draws its prior and then its steps' noise from it, so one
/// seed fixes the whole run.
pub struct Noise {
    rng: StdRng,
}

impl Noise {
    /// A stream seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// N(0, I) of `shape` on `device`, in f64.
    pub fn normal<const D: usize>(&mut self, shape: [usize; D], device: &Device) -> Tensor<D> {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|_| self.rng.sample::<f64, _>(StandardNormal))
            .collect();
        Tensor::from_data(TensorData::new(v, shape), (device, DType::F64))
    }

    /// N(0, I) shaped like `x`, on its device and in its dtype.
    pub fn like<const D: usize>(&mut self, x: &Tensor<D>) -> Tensor<D> {
        self.normal(x.dims(), &x.device()).cast(x.dtype())
    }
}

/// Sees the batch after every step: `(step, time reached, x)`. Any `FnMut(usize, f64, &Tensor<D>)`
/// is one; [`Unobserved`] sees nothing.
pub trait StepObserver<const D: usize> {
    /// Called after step `step` (0-based), which reached time `t`.
    fn observe(&mut self, step: usize, t: f64, x: &Tensor<D>);
}

impl<const D: usize, F: FnMut(usize, f64, &Tensor<D>)> StepObserver<D> for F {
    fn observe(&mut self, step: usize, t: f64, x: &Tensor<D>) {
        self(step, t, x)
    }
}

/// An observer that sees nothing.
pub struct Unobserved;

impl<const D: usize> StepObserver<D> for Unobserved {
    fn observe(&mut self, _: usize, _: f64, _: &Tensor<D>) {}
}

/// A batch from the prior N(0, σ_prior² I) of `shape` (f64).
pub fn prior<const D: usize>(
    process: &impl Process,
    shape: [usize; D],
    noise: &mut Noise,
    device: &Device,
) -> Tensor<D> {
    noise.normal(shape, device) * process.prior_std()
}

/// An error unless `grid` decreases within [0, 1] and holds at least `at_least` times.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub(crate) fn check_grid(grid: &[f64], at_least: usize) -> Result<()> {
    if grid.len() < at_least || grid.windows(2).any(|w| !(w[1] < w[0])) {
        return invalid(format!(
            "the time grid must decrease and hold at least {at_least} times"
        ));
    }
    if grid.iter().any(|t| !(0.0..=1.0).contains(t)) {
        return invalid("grid times must lie in [0, 1]");
    }
    Ok(())
}

/// The model's score at `x`, checked: the same shape, every value finite.
pub(crate) fn checked<const D: usize>(
    model: &impl ScoreModel<D>,
    x: &Tensor<D>,
    t: f64,
    step: usize,
) -> Result<Tensor<D>> {
    let s = model.score(x.clone(), t)?;
    if s.dims() != x.dims() {
        return invalid("the score model changed the batch shape");
    }
    if !crate::ode::all_finite(&s) {
        return Err(GenError::NonFinite {
            what: "score",
            step,
            t,
        });
    }
    Ok(s)
}
