//! Target-based surrogate optimization ("Target-based Surrogates for Stochastic Optimization",
//! Lavington et al., ICML 2023) — called SSO in the paper; named `TargetSurrogate` here so it cannot be
//! confused with other optimizers of that acronym.
//!
//! The loss ℓ is expensive, the model f(θ; X) cheap. Each outer step evaluates the loss gradient
//! once, in *output* space, at the current outputs f_t = f(θ_t), then takes m cheap inner steps on
//! the surrogate
//!
//! S(θ) = ⟨∇_f ℓ(f_t), f(θ)⟩ + 1/(2αn)·‖f(θ) − f_t‖²,
//!
//! whose minimiser in output space is the target f_t − α·n·∇_f ℓ(f_t) (a gradient step of size α on
//! each example's loss). Inner steps use an Armijo line search that starts from `init_step` at every
//! outer step, shrinks by β until S(θ − s∇S) ≤ S(θ) − c·s‖∇S‖², and grows by `expand` after each
//! accepted step (the official `optimizers/sgd_fmdopt.py` with `lsopt.py`: c = 0.5, β = 0.9,
//! expand 1.8, initial step 10). The official code writes the surrogate as a mean with a parameter
//! η; α here is the corresponding target step (for a loss with curvature L in output space,
//! α = 1/L: 4 for the logistic loss, 1/(1 − 1/K) for softmax cross-entropy over K classes).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_optim::target_surrogate::TargetSurrogateConfig;
//! // f(θ) = θ (one output per example), ℓ = mean ½(f − 3)²: the target is f − α(f − 3).
//! let opt = TargetSurrogateConfig::new().with_target_step(1.0).with_inner_steps(20).init().unwrap();
//! let model = |t: Tensor<1>| t.reshape([1, 1]);
//! let loss = |f: Tensor<2>| (f.sub_scalar(3.0)).square().mean().mul_scalar(0.5).reshape([1]);
//! let out = opt.step(&[0.0], &model, &loss).unwrap();
//! assert!((out.theta[0] - 3.0).abs() < 1e-3);
//! ```

use crate::error::{OptimError, check_beta};
use burn::prelude::*;
use burn::tensor::DType;

/// Configuration of the target-based surrogate optimizer.
#[derive(Config, Debug)]
pub struct TargetSurrogateConfig {
    /// Target step α > 0 in output space.
    #[config(default = 2.0)]
    pub target_step: f64,
    /// Inner steps m ≥ 1 per loss-gradient evaluation.
    #[config(default = 10)]
    pub inner_steps: usize,
    /// Initial Armijo step at every outer step.
    #[config(default = 10.0)]
    pub init_step: f64,
    /// Armijo constant c ∈ (0, 1).
    #[config(default = 0.5)]
    pub c: f64,
    /// Backtracking factor β ∈ (0, 1).
    #[config(default = 0.9)]
    pub beta: f64,
    /// Growth of the step after an accepted inner step (≥ 1).
    #[config(default = 1.8)]
    pub expand: f64,
    /// Backtracking steps at most per inner step.
    #[config(default = 200)]
    pub max_backtracks: usize,
}

/// The optimizer.
#[derive(Debug, Clone)]
pub struct TargetSurrogate {
    cfg: TargetSurrogateConfig,
    device: Device,
}

/// Result of one outer step.
#[derive(Debug, Clone)]
pub struct OuterStep {
    /// The new parameters.
    pub theta: Vec<f64>,
    /// The loss at the start of the step.
    pub loss: f64,
    /// Backtracking steps taken.
    pub backtracks: usize,
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
        if !(self.target_step > 0.0 && self.target_step.is_finite()) {
            return bad("target_step", self.target_step, "> 0 and finite");
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
        if !(self.expand >= 1.0 && self.expand.is_finite()) {
            return bad("expand", self.expand, ">= 1 and finite");
        }
        Ok(TargetSurrogate {
            cfg: self.clone(),
            device: Device::flex().autodiff(),
        })
    }
}

fn values(t: Tensor<1>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap_or_default()
}

impl TargetSurrogate {
    fn tensor(&self, v: &[f64]) -> Tensor<1> {
        Tensor::<1>::from_data(
            TensorData::new(v.to_vec(), [v.len()]),
            (&self.device, DType::F64),
        )
    }

    /// One outer step from `theta` for the model outputs `model(θ)` (`[n, k]`) and the loss of the
    /// outputs `loss(f)` (a mean over the batch, one element).
    pub fn step(
        &self,
        theta: &[f64],
        model: &impl Fn(Tensor<1>) -> Tensor<2>,
        loss: &impl Fn(Tensor<2>) -> Tensor<1>,
    ) -> crate::Result<OuterStep> {
        let c = &self.cfg;
        let f_t = model(self.tensor(theta).inner()).detach();
        let [n, _] = f_t.dims();
        let f_var = Tensor::<2>::from_inner(f_t.clone()).require_grad();
        let l = loss(f_var.clone());
        let loss_value = l.clone().into_scalar::<f64>();
        if !loss_value.is_finite() {
            return Err(OptimError::Conflict(
                "target surrogate: the loss is not finite",
            ));
        }
        let g = f_var.grad(&l.backward()).ok_or(OptimError::Conflict(
            "target surrogate: the loss does not depend on the outputs",
        ))?;
        let (f_t, g) = (Tensor::<2>::from_inner(f_t), Tensor::<2>::from_inner(g));
        let inv = 1.0 / (2.0 * c.target_step * n as f64);
        let surrogate = |th: Tensor<1>| -> Tensor<1> {
            let f = model(th);
            (g.clone() * f.clone()).sum() + (f - f_t.clone()).square().sum().mul_scalar(inv)
        };
        let mut theta = theta.to_vec();
        let mut s = c.init_step;
        let mut backtracks = 0;
        for _ in 0..c.inner_steps {
            let th = self.tensor(&theta).require_grad();
            let sv = surrogate(th.clone());
            let s0 = sv.clone().into_scalar::<f64>();
            let grad = values(th.grad(&sv.backward()).ok_or(OptimError::Conflict(
                "target surrogate: the model does not depend on θ",
            ))?);
            let gg: f64 = grad.iter().map(|v| v * v).sum();
            if gg <= 1e-24 {
                break;
            }
            let mut accepted = false;
            for _ in 0..=c.max_backtracks {
                let cand: Vec<f64> = theta.iter().zip(&grad).map(|(t, g)| t - s * g).collect();
                let sc = surrogate(self.tensor(&cand).inner().into()).into_scalar::<f64>();
                if sc.is_finite() && sc <= s0 - c.c * s * gg {
                    theta = cand;
                    accepted = true;
                    break;
                }
                s *= c.beta;
                backtracks += 1;
            }
            if !accepted {
                break;
            }
            s *= c.expand;
        }
        Ok(OuterStep {
            theta,
            loss: loss_value,
            backtracks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_inner_step_is_bounded_by_the_target_and_invalid_configs_fail() {
        // Linear model f = Xθ with X = I (2 examples), loss mean ½(f − y)²: with many inner steps the
        // outputs reach the target f_t − α·(f_t − y).
        let opt = TargetSurrogateConfig::new()
            .with_target_step(0.5)
            .with_inner_steps(200)
            .init()
            .unwrap();
        let model = |t: Tensor<1>| t.reshape([2, 1]);
        let y = [1.0, -3.0];
        let loss = move |f: Tensor<2>| {
            let yt = Tensor::<2>::from_data(
                TensorData::new(y.to_vec(), [2, 1]),
                (&f.device(), DType::F64),
            );
            (f - yt).square().mean().mul_scalar(0.5).reshape([1])
        };
        let out = opt.step(&[0.0, 0.0], &model, &loss).unwrap();
        assert!(
            (out.theta[0] - 0.5).abs() < 1e-4 && (out.theta[1] + 1.5).abs() < 1e-4,
            "{:?}",
            out.theta
        );
        assert!((out.loss - 0.5 * (1.0 + 9.0) / 2.0).abs() < 1e-12);
        assert!(
            TargetSurrogateConfig::new()
                .with_target_step(0.0)
                .init()
                .is_err()
        );
        assert!(
            TargetSurrogateConfig::new()
                .with_inner_steps(0)
                .init()
                .is_err()
        );
        assert!(TargetSurrogateConfig::new().with_c(1.0).init().is_err());
    }
}
