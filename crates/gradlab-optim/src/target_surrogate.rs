//! Target-based surrogate optimization ("Target-based Surrogates for Stochastic Optimization",
//! Lavington et al., ICML 2023) — called SSO in the paper; named `TargetSurrogate` here so it cannot be
//! confused with other optimizers of that acronym. The semantics are those of the official
//! `optimizers/sgd_fmdopt.py` with its inner line search `optimizers/lsopt.py`
//! (WilderLavington/Target-Based-Surrogates-For-Stochastic-Optimization), read line by line.
//!
//! The loss ℓ is expensive, the model f(θ; X) cheap. Each outer step evaluates the gradient of the
//! *summed* loss once, in output space, at the current outputs f_t = f(θ_t): g_i = ∇ℓ_i(f_t) for
//! each example i. Then m cheap inner steps minimise the surrogate, a mean over the n × k outputs,
//!
//! S(θ) = mean( s·g ⊙ f(θ) + (f(θ) − f_t)² ),
//!
//! whose minimiser in output space is the target f_t − (s/2)·g (no ½ on the regulariser: the
//! target step is half the "step size" s). The paper's "optimal" s is 1/4 for the squared loss,
//! 2 for the logistic loss and 1/(1 − 1/K) for K-class cross-entropy; the official minibatch
//! sweeps tune s on a log grid instead. The outer schedule of s is constant, `stochastic`
//! (s/√t at outer step t) or `exponential` (s·(1/T)^{t/T}).
//!
//! Inner steps are gradient steps on S with an Armijo line search (defaults as the official runs
//! pass them: c = 0.1, β = 0.9, growth 2 per epoch):
//! - at every outer step the step size is reset to 10;
//! - before every inner step it grows by expand^(1/batches per epoch);
//! - up to 100 trials accept the first step size t with S(θ − t∇S) ≤ S(θ) − c·t‖∇S‖², shrinking
//!   t by β after each failure and stopping early once t < 10⁻⁶;
//! - the step is then taken whatever happened: after the last failed trial, with the size shrunk
//!   once more;
//! - the step size carries over to the next inner step;
//! - the inner loop ends early once ‖∇S‖ ≤ 10⁻⁶ (measured before that step, which is still taken).
//!
//! [`TargetSurrogate`] is a [`Solver`] over an [`OutputModel`] — the model's outputs on outer step
//! k's batch as a differentiable function of θ, and the batch's loss of the outputs — run by
//! [`gradlab_core::solve::solve`]; [`TargetSurrogate::step`] takes one outer step with the two as
//! closures.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_optim::target_surrogate::TargetSurrogateConfig;
//! // f(θ) = θ (one output per example), ℓ = ½(f − 3)²: the target is f − (s/2)(f − 3).
//! let mut opt = TargetSurrogateConfig::new().with_step_size(2.0).with_inner_steps(50).init().unwrap();
//! let model = |t: Tensor<1>| t.reshape([1, 1]);
//! let loss = |f: Tensor<2>| (f.sub_scalar(3.0)).square().mean().mul_scalar(0.5).reshape([1]);
//! let out = opt.step(&[0.0], &model, &loss).unwrap();
//! assert!((out.theta[0] - 3.0).abs() < 1e-3);
//! ```

use crate::error::{OptimError, check_beta};
use burn::prelude::*;
use burn::tensor::DType;
use gradlab_core::problem::{Problem, check_point};
use gradlab_core::solve::{Iteration, Solver};

/// The outer schedule of the target step size s.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum StepSchedule {
    /// s at every outer step.
    Constant,
    /// s/√t at outer step t = 1, 2, … (the official `stochastic`).
    InvSqrt,
    /// s·(1/T)^{t/T} over T outer steps (the official `exponential`).
    Exponential {
        /// T, the planned number of outer steps.
        total: usize,
    },
}

impl StepSchedule {
    /// The factor on s at outer step `t` (from 1).
    pub fn factor(&self, t: usize) -> f64 {
        let t = t.max(1) as f64;
        match *self {
            StepSchedule::Constant => 1.0,
            StepSchedule::InvSqrt => 1.0 / t.sqrt(),
            StepSchedule::Exponential { total } => {
                let total = total.max(1) as f64;
                (1.0 / total).powf(t / total)
            }
        }
    }
}

/// Configuration of the target-based surrogate optimizer.
#[derive(Config, Debug)]
pub struct TargetSurrogateConfig {
    /// The step size s > 0 of the surrogate's linear term (the target step is s/2).
    #[config(default = 2.0)]
    pub step_size: f64,
    /// The outer schedule of s.
    #[config(default = "StepSchedule::Constant")]
    pub schedule: StepSchedule,
    /// Inner steps m ≥ 1 per loss-gradient evaluation.
    #[config(default = 10)]
    pub inner_steps: usize,
    /// The line search's step size at the start of every outer step (the official 10).
    #[config(default = 10.0)]
    pub init_step: f64,
    /// Armijo constant c ∈ (0, 1) (the official runs' 0.1).
    #[config(default = 0.1)]
    pub c: f64,
    /// Backtracking factor β ∈ (0, 1).
    #[config(default = 0.9)]
    pub beta: f64,
    /// Growth of the line search's step per epoch (> 1); per inner step it grows by
    /// expand^(1/batches_per_epoch).
    #[config(default = 2.0)]
    pub expand: f64,
    /// Minibatches per epoch, n / batch size (1 for full-batch runs).
    #[config(default = 1.0)]
    pub batches_per_epoch: f64,
    /// Line-search trials at most per inner step.
    #[config(default = 100)]
    pub max_trials: usize,
}

/// The optimizer (it counts its outer steps for the schedule).
#[derive(Debug, Clone)]
pub struct TargetSurrogate {
    cfg: TargetSurrogateConfig,
    device: Device,
    outer: usize,
}

/// Result of one outer step.
#[derive(Debug, Clone)]
pub struct OuterStep {
    /// The new parameters.
    pub theta: Vec<f64>,
    /// The loss at the start of the step.
    pub loss: f64,
    /// Failed line-search trials over the inner steps.
    pub backtracks: usize,
    /// Inner steps whose line search found no step satisfying Armijo's condition (taken anyway,
    /// as the official code does).
    pub unsatisfied: usize,
    /// The line search's step size at the end of the outer step.
    pub last_step: f64,
}

impl TargetSurrogateConfig {
    /// Validate and build.
    pub fn init(&self) -> crate::Result<TargetSurrogate> {
        let bad = |name: &'static str, value: f64, requirement: &'static str| {
            Err(OptimError::Invalid {
                name,
                value,
                requirement,
            })
        };
        if !(self.step_size > 0.0 && self.step_size.is_finite()) {
            return bad("step_size", self.step_size, "> 0 and finite");
        }
        if self.inner_steps == 0 {
            return bad("inner_steps", 0.0, ">= 1");
        }
        if !(self.init_step > 0.0 && self.init_step.is_finite()) {
            return bad("init_step", self.init_step, "> 0 and finite");
        }
        if !(self.c > 0.0 && self.c < 1.0) {
            return bad("c", self.c, "in (0, 1)");
        }
        check_beta("beta", self.beta)?;
        if self.beta == 0.0 {
            return bad("beta", 0.0, "in (0, 1)");
        }
        if !(self.expand > 1.0 && self.expand.is_finite()) {
            return bad("expand", self.expand, "> 1 and finite");
        }
        if !(self.batches_per_epoch >= 1.0 && self.batches_per_epoch.is_finite()) {
            return bad(
                "batches_per_epoch",
                self.batches_per_epoch,
                ">= 1 and finite",
            );
        }
        if self.max_trials == 0 {
            return bad("max_trials", 0.0, ">= 1");
        }
        if let StepSchedule::Exponential { total: 0 } = self.schedule {
            return bad("schedule total", 0.0, ">= 1");
        }
        Ok(TargetSurrogate {
            cfg: self.clone(),
            device: Device::flex().autodiff(),
            outer: 0,
        })
    }
}

impl TargetSurrogate {
    fn tensor(&self, v: &[f64]) -> Tensor<1> {
        Tensor::<1>::from_data(
            TensorData::new(v.to_vec(), [v.len()]),
            (&self.device, DType::F64),
        )
    }

    /// Outer steps taken.
    pub fn outer_steps(&self) -> usize {
        self.outer
    }

    /// The step size s of the next outer step (after the schedule).
    pub fn current_step_size(&self) -> f64 {
        self.cfg.step_size * self.cfg.schedule.factor(self.outer + 1)
    }

    /// One outer step from `theta` for the model outputs `model(θ)` (`[n, k]`) and the loss of the
    /// outputs `loss(f)` as a **mean** over the batch (one element; it is scaled by n to the
    /// official summed loss).
    pub fn step(
        &mut self,
        theta: &[f64],
        model: &impl Fn(Tensor<1>) -> Tensor<2>,
        loss: &impl Fn(Tensor<2>) -> Tensor<1>,
    ) -> crate::Result<OuterStep> {
        let s_outer = self.current_step_size();
        let c = self.cfg.clone();
        let f_t = model(self.tensor(theta).inner()).detach();
        let [n, _] = f_t.dims();
        let f_var = Tensor::<2>::from_inner(f_t.clone()).require_grad();
        let l = loss(f_var.clone());
        let loss_value = l.clone().into_scalar::<f64>();
        if !loss_value.is_finite() {
            return Err(OptimError::NonFinite {
                what: "target surrogate loss",
                step: self.outer,
            });
        }
        let g = f_var.grad(&l.backward()).ok_or(OptimError::Failed(
            "target surrogate: the loss does not depend on the outputs",
        ))?;
        // The gradient of the summed loss: n times that of the mean.
        let (f_t, g) = (
            Tensor::<2>::from_inner(f_t),
            Tensor::<2>::from_inner(g).mul_scalar(s_outer * n as f64),
        );
        let surrogate = |th: Tensor<1>| -> Tensor<1> {
            let f = model(th);
            (g.clone() * f.clone() + (f - f_t.clone()).square()).mean()
        };
        let grow = c.expand.powf(1.0 / c.batches_per_epoch);
        let mut theta = theta.to_vec();
        let mut t = c.init_step;
        let (mut backtracks, mut unsatisfied) = (0, 0);
        for _ in 0..c.inner_steps {
            t *= grow;
            let th = self.tensor(&theta).require_grad();
            let sv = surrogate(th.clone());
            let s0 = sv.clone().into_scalar::<f64>();
            let grad = gradlab_core::bridge::to_host(th.grad(&sv.backward()).ok_or(
                OptimError::Failed("target surrogate: the model does not depend on θ"),
            )?)?;
            let gg: f64 = grad.iter().map(|v| v * v).sum();
            if !(s0.is_finite() && gg.is_finite()) {
                return Err(OptimError::NonFinite {
                    what: "target surrogate or its gradient",
                    step: self.outer,
                });
            }
            let mut found = false;
            for _ in 0..c.max_trials {
                let cand: Vec<f64> = theta.iter().zip(&grad).map(|(p, g)| p - t * g).collect();
                let sc = surrogate(self.tensor(&cand).inner()).into_scalar::<f64>();
                if sc <= s0 - c.c * t * gg {
                    found = true;
                    break;
                }
                t *= c.beta;
                backtracks += 1;
                if t < 1e-6 {
                    break;
                }
            }
            unsatisfied += usize::from(!found);
            theta.iter_mut().zip(&grad).for_each(|(p, g)| *p -= t * g);
            if gg.sqrt() <= 1e-6 {
                break;
            }
        }
        self.outer += 1;
        Ok(OuterStep {
            theta,
            loss: loss_value,
            backtracks,
            unsatisfied,
            last_step: t,
        })
    }
}

/// A model in output space, batch by batch, as the target surrogate needs it (the method's
/// problem capability: the surrogate is built from the outputs and the loss's gradient in output
/// space, not from the loss's gradient in θ).
pub trait OutputModel: Problem {
    /// The outputs `[n, k]` of outer step `step`'s batch at θ (an f64 tensor on any device;
    /// differentiable on an autodiff device).
    fn batch_outputs(&self, theta: Tensor<1>, step: usize) -> Tensor<2>;
    /// The batch's loss of `outputs` as a **mean** over the batch (one element).
    fn batch_loss(&self, outputs: Tensor<2>, step: usize) -> Tensor<1>;
}

/// The state of a [`TargetSurrogate`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct SurrogateState {
    /// The iterate.
    pub x: Vec<f64>,
    /// Outer steps taken (loss-gradient evaluations).
    pub outer: usize,
    /// The batch loss at the start of the last outer step.
    pub last_loss: Option<f64>,
    /// Failed line-search trials so far.
    pub backtracks: usize,
    /// Inner steps whose line search found no step satisfying Armijo's condition, so far.
    pub unsatisfied: usize,
}

impl<P: OutputModel + ?Sized> Solver<P> for TargetSurrogate {
    type State = SurrogateState;
    type Error = OptimError;

    fn init(&mut self, problem: &P, x0: &[f64]) -> crate::Result<SurrogateState> {
        check_point(problem, x0)?;
        Ok(SurrogateState {
            x: x0.to_vec(),
            outer: 0,
            last_loss: None,
            backtracks: 0,
            unsatisfied: 0,
        })
    }

    fn converged(&self, _: &SurrogateState) -> bool {
        false
    }

    fn step(&mut self, problem: &P, s: &mut SurrogateState) -> crate::Result<()> {
        let k = s.outer;
        let model = |t: Tensor<1>| problem.batch_outputs(t, k);
        let loss = |f: Tensor<2>| problem.batch_loss(f, k);
        let out = TargetSurrogate::step(self, &s.x, &model, &loss)?;
        s.outer += 1;
        if out.theta.iter().any(|v| !v.is_finite()) {
            return Err(OptimError::NonFinite {
                what: "target surrogate iterate",
                step: s.outer,
            });
        }
        s.x = out.theta;
        s.last_loss = Some(out.loss);
        s.backtracks += out.backtracks;
        s.unsatisfied += out.unsatisfied;
        Ok(())
    }

    fn iteration<'a>(&self, s: &'a SurrogateState) -> Iteration<'a> {
        Iteration {
            work: s.outer,
            ..Iteration::at(&s.x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// f(θ) = θ (n examples, one output each) and ℓ = mean ½(f − y)².
    fn identity_problem(
        y: Vec<f64>,
    ) -> (
        impl Fn(Tensor<1>) -> Tensor<2>,
        impl Fn(Tensor<2>) -> Tensor<1>,
    ) {
        let n = y.len();
        let model = move |t: Tensor<1>| t.reshape([n, 1]);
        let loss = move |f: Tensor<2>| {
            let yt = Tensor::<2>::from_data(
                TensorData::new(y.clone(), [n, 1]),
                (&f.device(), DType::F64),
            );
            (f - yt).square().mean().mul_scalar(0.5).reshape([1])
        };
        (model, loss)
    }

    #[test]
    fn the_inner_steps_reach_the_official_target_f_minus_half_s_grad() {
        // Per-example gradients g_i = f_t − y; the target is f_t − (s/2)·g (not f_t − s·g).
        let (model, loss) = identity_problem(vec![1.0, -3.0]);
        let mut opt = TargetSurrogateConfig::new()
            .with_step_size(0.5)
            .with_inner_steps(200)
            .init()
            .unwrap();
        let out = opt.step(&[0.0, 0.0], &model, &loss).unwrap();
        assert!(
            (out.theta[0] - 0.25).abs() < 1e-6 && (out.theta[1] + 0.75).abs() < 1e-6,
            "{:?}",
            out.theta
        );
        assert!((out.loss - 0.5 * (1.0 + 9.0) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_line_search_follows_the_official_constants() {
        // S(θ) = mean(s g θ + (θ − f_t)²) over n = 2 outputs is quadratic with Hessian I, so
        // S(θ − t∇S) − S(θ) = −t‖∇S‖²(1 − t/2): Armijo holds iff t ≤ 2(1 − c), i.e. 1.8 for the
        // official c = 0.1 (1.0 for the constructor default 0.5 that the official runs override).
        let (model, loss) = identity_problem(vec![1.0, -3.0]);
        let (s, theta0) = (0.5, [0.0f64, 0.0]);
        let grad0: Vec<f64> = theta0
            .iter()
            .zip([1.0, -3.0])
            .map(|(th, y)| (s * (th - y) + 2.0 * th) / 2.0) // ∇S at θ₀ = f_t
            .collect();
        // Batches per epoch 4: growth 2^(1/4) before the first trial, from the reset value 10.
        let first = 10.0 * 2f64.powf(0.25);
        let backtrack = |mut t: f64, bound: f64| {
            while t > bound {
                t *= 0.9;
            }
            t
        };
        let accepted = |bound: f64| backtrack(first, bound);
        for (c, bound) in [(0.1, 1.8), (0.5, 1.0)] {
            let mut opt = TargetSurrogateConfig::new()
                .with_step_size(s)
                .with_inner_steps(1)
                .with_c(c)
                .with_batches_per_epoch(4.0)
                .init()
                .unwrap();
            let out = opt.step(&theta0, &model, &loss).unwrap();
            let t = accepted(bound);
            assert!(
                (out.last_step - t).abs() < 1e-12,
                "c {c}: {} vs {t}",
                out.last_step
            );
            for k in 0..2 {
                assert!((out.theta[k] - (theta0[k] - t * grad0[k])).abs() < 1e-12);
            }
            assert_eq!(out.unsatisfied, 0);
        }
        // With 3 trials and none accepted, the step is still taken, at 10·2^(1/4)·0.9³.
        let mut opt = TargetSurrogateConfig::new()
            .with_step_size(s)
            .with_inner_steps(1)
            .with_max_trials(3)
            .with_batches_per_epoch(4.0)
            .init()
            .unwrap();
        let out = opt.step(&theta0, &model, &loss).unwrap();
        let t = first * 0.9f64.powi(3);
        assert!((out.last_step - t).abs() < 1e-12 && out.unsatisfied == 1);
        assert!((out.theta[0] - (theta0[0] - t * grad0[0])).abs() < 1e-12);
        // The step size carries over and grows by 2^(1/4) before the next inner step: the second
        // step's first trial is 1.785·2^(1/4) = 2.12 > 1.8, so it backtracks from there (not
        // from 10).
        let mut opt = TargetSurrogateConfig::new()
            .with_step_size(s)
            .with_inner_steps(2)
            .with_batches_per_epoch(4.0)
            .init()
            .unwrap();
        let out = opt.step(&theta0, &model, &loss).unwrap();
        let t2 = backtrack(accepted(1.8) * 2f64.powf(0.25), 1.8);
        assert!(
            (out.last_step - t2).abs() < 1e-12,
            "{} vs {t2}",
            out.last_step
        );
    }

    /// f(θ) = θ on a batch that alternates between two targets, through the solver loop.
    struct Alternating;
    impl Problem for Alternating {
        fn dim(&self) -> usize {
            2
        }
    }
    impl OutputModel for Alternating {
        fn batch_outputs(&self, theta: Tensor<1>, _: usize) -> Tensor<2> {
            theta.reshape([2, 1])
        }
        fn batch_loss(&self, f: Tensor<2>, step: usize) -> Tensor<1> {
            let y = if step.is_multiple_of(2) {
                [1.0, -3.0]
            } else {
                [2.0, 0.0]
            };
            identity_problem(y.to_vec()).1(f)
        }
    }

    #[test]
    fn the_solver_takes_the_outer_steps_of_its_batches() {
        use gradlab_core::solve::{Silent, solve};
        let cfg = TargetSurrogateConfig::new()
            .with_step_size(0.5)
            .with_inner_steps(20);
        let (end, report) = solve(
            &mut cfg.init().unwrap(),
            &Alternating,
            &[0.0, 0.0],
            3,
            &mut Silent,
        )
        .unwrap();
        // By hand: the same outer steps with the closures of each batch.
        let mut opt = cfg.init().unwrap();
        let mut theta = vec![0.0, 0.0];
        for k in 0..3usize {
            let y = if k.is_multiple_of(2) {
                vec![1.0, -3.0]
            } else {
                vec![2.0, 0.0]
            };
            let (model, loss) = identity_problem(y);
            theta = opt.step(&theta, &model, &loss).unwrap().theta;
        }
        assert_eq!((end.x, end.outer, report.iterations), (theta, 3, 3));
        assert!(
            solve(
                &mut cfg.init().unwrap(),
                &Alternating,
                &[0.0],
                3,
                &mut Silent
            )
            .is_err()
        );
    }

    #[test]
    fn schedules_and_invalid_configs() {
        assert_eq!(StepSchedule::Constant.factor(9), 1.0);
        assert!((StepSchedule::InvSqrt.factor(4) - 0.5).abs() < 1e-15);
        let e = StepSchedule::Exponential { total: 100 };
        assert!((e.factor(100) - 0.01).abs() < 1e-15 && (e.factor(50) - 0.1).abs() < 1e-12);
        let (model, loss) = identity_problem(vec![1.0]);
        let mut opt = TargetSurrogateConfig::new()
            .with_schedule(StepSchedule::InvSqrt)
            .with_step_size(1.0)
            .init()
            .unwrap();
        opt.step(&[0.0], &model, &loss).unwrap();
        assert!((opt.current_step_size() - 1.0 / 2f64.sqrt()).abs() < 1e-15);
        for bad in [
            TargetSurrogateConfig::new().with_step_size(0.0),
            TargetSurrogateConfig::new().with_inner_steps(0),
            TargetSurrogateConfig::new().with_c(1.0),
            TargetSurrogateConfig::new().with_expand(1.0),
            TargetSurrogateConfig::new().with_batches_per_epoch(0.5),
            TargetSurrogateConfig::new().with_max_trials(0),
            TargetSurrogateConfig::new().with_schedule(StepSchedule::Exponential { total: 0 }),
        ] {
            assert!(bad.init().is_err(), "{bad:?}");
        }
    }
}
