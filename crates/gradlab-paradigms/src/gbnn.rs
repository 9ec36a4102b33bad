//! Gradient-boosted neural networks, GBNN ("Sequential Training of Neural Networks with Gradient
//! Boosting", Emami and Martínez-Muñoz, IEEE Access 2023, arXiv 1909.12098; official code
//! `GAA-UAM/GBNN`, `gbnn/GBNN.py`).
//!
//! The hidden units of a one-hidden-layer network are trained one round at a time. Round m fits a
//! network with one logistic unit ([`OneHidden`] d → 1 → k) by L-BFGS (at most 200 iterations,
//! gradient tol 0 and SciPy's relative-decrease stop, L2 α = 1e-4, scikit-learn's `MLPRegressor`
//! settings) to the pseudo-residuals on a 50% subsample
//! drawn without replacement, predicts f_m on all the data, and adds ρ_m f_m with a Newton step ρ_m
//! computed on all the data:
//! - regression: F₀ = mean y, r = y − F, ρ = η;
//! - binary (labels ±1, loss log(1 + e^{−2yF})): F₀ = ½ ln((1 + ȳ)/(1 − ȳ)), r = 2y/(1 + e^{2yF}),
//!   ρ = η Σ r f / Σ r f² (2y − r), p(y = 1) = 1/(1 + e^{−2F});
//! - multi-class (one-hot Y): F₀ = 0 (the official code's, not the log prior), R = Y − softmax(F),
//!   one scalar ρ = −η Σ f (Y − P) / Σ f² P (P − 1) shared by all classes (the denominator is the
//!   Hessian's diagonal only: not the exact Newton step, as coded).
//!
//! [`Gbnn::to_network`] stacks the units into one ordinary network (the official `to_NN`): output
//! weights W₂·ρ·c and bias c·(F₀ + Σ b₂ ρ), c = 2 for binary (so that logistic of the output is p),
//! 1 otherwise. [`Gbnn::decision`] with fewer units switches the last-trained ones off.
//!
//! ```
//! use gradlab_paradigms::gbnn::{Gbnn, GbnnConfig, Targets};
//! let x: Vec<f64> = (0..40).map(|i| i as f64 / 20.0 - 1.0).collect();
//! let labels: Vec<usize> = x.iter().map(|v| usize::from(*v > 0.1)).collect();
//! let cfg = GbnnConfig { units: 5, ..GbnnConfig::default() };
//! let model = Gbnn::fit(&cfg, &x, 1, Targets::Classes { labels: &labels, classes: 2 }).unwrap();
//! let acc = model.accuracy(&x, &labels, 5).unwrap();
//! assert!(acc > 0.9);
//! ```

use crate::error::{ParadigmError, invalid};
use crate::one_hidden::{OneHidden, SquaredFit, logistic, softmax_rows};
use gradlab_core::solve::{Silent, solve};
use gradlab_optim::lbfgs::Lbfgs;
use rand::prelude::*;
use rand::seq::index::sample;

/// SciPy's L-BFGS-B default relative-decrease tolerance (factr 1e7 × machine ε), which
/// scikit-learn's `lbfgs` solver inherits.
pub const SCIPY_FTOL: f64 = 1e7 * f64::EPSILON;

/// Pseudo-residuals at or below this everywhere end the boosting (see [`Gbnn::stopped_early`]).
pub const RESIDUAL_FLOOR: f64 = 1e-12;

/// GBNN's settings (the official defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GbnnConfig {
    /// Hidden units, one per round (`total_nn`, 200).
    pub units: usize,
    /// Shrinkage η (1.0).
    pub eta: f64,
    /// Fraction of the data each unit is fitted on, drawn without replacement (0.5).
    pub subsample: f64,
    /// L-BFGS iterations per unit (`max_iter`, 200; tol 0).
    pub max_iter: usize,
    /// L2 strength of each unit's fit (scikit-learn's default 1e-4).
    pub alpha: f64,
    /// Seed of the subsamples and the units' initialisations.
    pub seed: u64,
}

impl Default for GbnnConfig {
    fn default() -> Self {
        Self {
            units: 200,
            eta: 1.0,
            subsample: 0.5,
            max_iter: 200,
            alpha: 1e-4,
            seed: 0,
        }
    }
}

/// What GBNN fits.
#[derive(Debug, Clone, Copy)]
pub enum Targets<'a> {
    /// Real targets, squared loss.
    Regression(&'a [f64]),
    /// Class labels in 0 … classes − 1: binary log-exponential loss for two classes, multi-class
    /// cross-entropy for more.
    Classes {
        /// The labels.
        labels: &'a [usize],
        /// The number of classes.
        classes: usize,
    },
}

/// The loss a fitted model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GbnnTask {
    /// Squared loss.
    Regression,
    /// Two classes, labels ±1.
    Binary,
    /// K classes.
    MultiClass(usize),
}

impl GbnnTask {
    /// Columns of F (1, 1 or K).
    pub fn outputs(self) -> usize {
        match self {
            GbnnTask::MultiClass(k) => k,
            _ => 1,
        }
    }

    /// The factor c of [`Gbnn::to_network`].
    pub fn multiplier(self) -> f64 {
        if self == GbnnTask::Binary { 2.0 } else { 1.0 }
    }
}

/// A fitted GBNN: F₀ and the units with their steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Gbnn {
    task: GbnnTask,
    d: usize,
    f0: Vec<f64>,
    /// Each unit's parameters (a [`OneHidden`] d → 1 → k) and its step ρ, in training order.
    pub units: Vec<(Vec<f64>, f64)>,
}

/// The targets as the loss sees them [n × k]: y, ±1, or one-hot.
fn encode(targets: Targets<'_>, n: usize) -> crate::Result<(GbnnTask, Vec<f64>)> {
    match targets {
        Targets::Regression(y) => {
            if y.len() != n {
                return Err(ParadigmError::Shape(format!(
                    "{n} inputs but {} targets",
                    y.len()
                )));
            }
            if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                return invalid(format!("target {i} is {}", y[i]));
            }
            Ok((GbnnTask::Regression, y.to_vec()))
        }
        Targets::Classes { labels, classes } => {
            if labels.len() != n {
                return Err(ParadigmError::Shape(format!(
                    "{n} inputs but {} labels",
                    labels.len()
                )));
            }
            if classes < 2 {
                return invalid(format!("classification needs ≥ 2 classes, got {classes}"));
            }
            if let Some(i) = labels.iter().position(|&l| l >= classes) {
                return invalid(format!(
                    "label {} at row {i} is outside 0 … {}",
                    labels[i],
                    classes - 1
                ));
            }
            if classes == 2 {
                let y: Vec<f64> = labels
                    .iter()
                    .map(|&l| if l == 1 { 1.0 } else { -1.0 })
                    .collect();
                let mean = y.iter().sum::<f64>() / n as f64;
                if mean.abs() == 1.0 {
                    return invalid(
                        "binary GBNN needs both classes in the training labels (F₀ = ½ ln((1 + ȳ)/(1 − ȳ)) is infinite)",
                    );
                }
                Ok((GbnnTask::Binary, y))
            } else {
                let mut y = vec![0.0; n * classes];
                labels
                    .iter()
                    .enumerate()
                    .for_each(|(i, &l)| y[i * classes + l] = 1.0);
                Ok((GbnnTask::MultiClass(classes), y))
            }
        }
    }
}

/// The pseudo-residuals at F.
fn residuals(task: GbnnTask, y: &[f64], f: &[f64]) -> Vec<f64> {
    match task {
        GbnnTask::Regression => y.iter().zip(f).map(|(y, f)| y - f).collect(),
        GbnnTask::Binary => y
            .iter()
            .zip(f)
            .map(|(y, f)| 2.0 * y / (1.0 + (2.0 * y * f).exp()))
            .collect(),
        GbnnTask::MultiClass(k) => {
            let mut p = f.to_vec();
            softmax_rows(&mut p, k);
            y.iter().zip(&p).map(|(y, p)| y - p).collect()
        }
    }
}

/// The Newton step (before η) for the new predictions `fm`, on all the data.
fn newton_step(task: GbnnTask, y: &[f64], r: &[f64], fm: &[f64]) -> f64 {
    match task {
        GbnnTask::Regression => 1.0,
        GbnnTask::Binary => {
            let num: f64 = r.iter().zip(fm).map(|(r, f)| r * f).sum();
            let den: f64 = r
                .iter()
                .zip(fm)
                .zip(y)
                .map(|((r, f), y)| r * f * f * (2.0 * y - r))
                .sum();
            num / den
        }
        GbnnTask::MultiClass(_) => {
            // p = y − r; ρ = −Σ f (y − p) / Σ f² p (p − 1).
            let num: f64 = r.iter().zip(fm).map(|(r, f)| f * r).sum();
            let den: f64 = y
                .iter()
                .zip(r)
                .zip(fm)
                .map(|((y, r), f)| {
                    let p = y - r;
                    f * f * p * (p - 1.0)
                })
                .sum();
            -num / den
        }
    }
}

impl Gbnn {
    /// Fit on the rows of `x` [n × d].
    pub fn fit(cfg: &GbnnConfig, x: &[f64], d: usize, targets: Targets<'_>) -> crate::Result<Gbnn> {
        Self::fit_observed(cfg, x, d, targets, |_| {})
    }

    /// [`Gbnn::fit`], calling `on_unit(m)` after every round (for progress).
    pub fn fit_observed(
        cfg: &GbnnConfig,
        x: &[f64],
        d: usize,
        targets: Targets<'_>,
        mut on_unit: impl FnMut(usize),
    ) -> crate::Result<Gbnn> {
        if cfg.units == 0 || cfg.max_iter == 0 {
            return invalid(format!(
                "GBNN needs ≥ 1 unit and ≥ 1 L-BFGS iteration, got {} and {}",
                cfg.units, cfg.max_iter
            ));
        }
        let valid = cfg.eta > 0.0
            && cfg.eta.is_finite()
            && cfg.subsample > 0.0
            && cfg.subsample <= 1.0
            && cfg.alpha >= 0.0;
        if !valid {
            return invalid(format!(
                "GBNN needs η > 0, a subsample in (0, 1] and α ≥ 0, got η = {}, subsample = {}, α = {}",
                cfg.eta, cfg.subsample, cfg.alpha
            ));
        }
        if d == 0 || x.is_empty() || !x.len().is_multiple_of(d) {
            return Err(ParadigmError::Shape(format!(
                "{} input values do not make rows of {d}",
                x.len()
            )));
        }
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return invalid(format!("input value {i} is {}", x[i]));
        }
        let n = x.len() / d;
        let (task, y) = encode(targets, n)?;
        let k = task.outputs();
        let f0 = match task {
            GbnnTask::Regression => vec![y.iter().sum::<f64>() / n as f64],
            GbnnTask::Binary => {
                let m = y.iter().sum::<f64>() / n as f64;
                vec![0.5 * ((1.0 + m) / (1.0 - m)).ln()]
            }
            GbnnTask::MultiClass(k) => vec![0.0; k],
        };
        let mut f: Vec<f64> = (0..n).flat_map(|_| f0.iter().copied()).collect();
        let unit = OneHidden::new(d, 1, k)?;
        let m = ((cfg.subsample * n as f64) as usize).max(1);
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut units = Vec::with_capacity(cfg.units);
        for round in 0..cfg.units {
            let r = residuals(task, &y, &f);
            if r.iter().all(|v| v.abs() <= RESIDUAL_FLOOR) {
                // The training loss's gradient has vanished to float precision (every example
                // fitted, with saturated margins): the Newton step would be 0/0. Boosting ends
                // here, and the model says so ([`Gbnn::stopped_early`]).
                break;
            }
            let idx = if m < n {
                sample(&mut rng, n, m).into_vec()
            } else {
                (0..n).collect()
            };
            let xs: Vec<f64> = idx
                .iter()
                .flat_map(|&i| x[i * d..(i + 1) * d].iter().copied())
                .collect();
            let rs: Vec<f64> = idx
                .iter()
                .flat_map(|&i| r[i * k..(i + 1) * k].iter().copied())
                .collect();
            let fit = SquaredFit {
                net: unit,
                x: &xs,
                targets: &rs,
                alpha: cfg.alpha,
            };
            let p0 = unit.init(rng.random());
            let mut lbfgs = Lbfgs::new(10, 0.0)?.with_ftol(SCIPY_FTOL)?;
            let (end, _) = solve(&mut lbfgs, &fit, &p0, cfg.max_iter, &mut Silent)?;
            let fm = unit.forward(&end.x, x)?;
            let rho = cfg.eta * newton_step(task, &y, &r, &fm);
            if !rho.is_finite() {
                // The official code would carry the NaN or ∞ into every later prediction. Seen
                // when the multi-class diagonal-Hessian step overshoots until the softmax
                // saturates (P exactly 0 or 1, denominator 0): boosting diverged.
                return Err(ParadigmError::NonFinite {
                    what: "GBNN Newton step (boosting diverged; a smaller η can help)",
                    step: round,
                });
            }
            f.iter_mut().zip(&fm).for_each(|(f, u)| *f += rho * u);
            units.push((end.x, rho));
            on_unit(round);
        }
        Ok(Gbnn { task, d, f0, units })
    }

    /// Whether boosting ended before `requested` rounds because every pseudo-residual on the
    /// training data fell to [`RESIDUAL_FLOOR`] (the official code would divide 0 by 0 there and
    /// turn every later prediction into NaN); `units.len()` rounds were fitted.
    pub fn stopped_early(&self, requested: usize) -> bool {
        self.units.len() < requested
    }

    /// The task.
    pub fn task(&self) -> GbnnTask {
        self.task
    }

    /// The raw prediction F [n × k] of the first `upto` units (the rest switched off).
    pub fn decision(&self, x: &[f64], upto: usize) -> crate::Result<Vec<f64>> {
        if !x.len().is_multiple_of(self.d) {
            return Err(ParadigmError::Shape(format!(
                "{} input values do not make rows of {}",
                x.len(),
                self.d
            )));
        }
        if upto > self.units.len() {
            return invalid(format!(
                "the model has {} units, asked for {upto}",
                self.units.len()
            ));
        }
        let k = self.task.outputs();
        let unit = OneHidden::new(self.d, 1, k)?;
        let mut f: Vec<f64> = (0..x.len() / self.d)
            .flat_map(|_| self.f0.iter().copied())
            .collect();
        for (p, rho) in &self.units[..upto] {
            f.iter_mut()
                .zip(unit.forward(p, x)?)
                .for_each(|(f, u)| *f += rho * u);
        }
        Ok(f)
    }

    /// Predicted classes with the first `upto` units.
    pub fn predict_classes(&self, x: &[f64], upto: usize) -> crate::Result<Vec<usize>> {
        let f = self.decision(x, upto)?;
        Ok(match self.task {
            GbnnTask::Regression => return invalid("a regression model has no classes"),
            GbnnTask::Binary => f
                .iter()
                .map(|v| usize::from(logistic(2.0 * v) > 0.5))
                .collect(),
            GbnnTask::MultiClass(k) => f.chunks(k).map(argmax).collect(),
        })
    }

    /// Accuracy against `labels` with the first `upto` units.
    pub fn accuracy(&self, x: &[f64], labels: &[usize], upto: usize) -> crate::Result<f64> {
        let pred = self.predict_classes(x, upto)?;
        if pred.len() != labels.len() || labels.is_empty() {
            return Err(ParadigmError::Shape(format!(
                "{} rows but {} labels",
                pred.len(),
                labels.len()
            )));
        }
        Ok(pred.iter().zip(labels).filter(|(p, l)| p == l).count() as f64 / labels.len() as f64)
    }

    /// The units merged into one [`OneHidden`] network d → units → k (the official `to_NN`):
    /// its output is c·F, c = 2 for binary and 1 otherwise.
    pub fn to_network(&self) -> crate::Result<(OneHidden, Vec<f64>)> {
        let (h, k, d) = (self.units.len(), self.task.outputs(), self.d);
        let net = OneHidden::new(d, h, k)?;
        let c = self.task.multiplier();
        let mut w1 = Vec::with_capacity(h * d);
        let mut b1 = Vec::with_capacity(h);
        let mut w2 = vec![0.0; k * h];
        let mut b2: Vec<f64> = self.f0.iter().map(|v| c * v).collect();
        for (j, (p, rho)) in self.units.iter().enumerate() {
            // A unit's layout: w₁ [d], b₁ [1], w₂ [k × 1], b₂ [k].
            w1.extend_from_slice(&p[..d]);
            b1.push(p[d]);
            for o in 0..k {
                w2[o * h + j] = p[d + 1 + o] * rho * c;
                b2[o] += p[d + 1 + k + o] * rho * c;
            }
        }
        Ok((net, [w1, b1, w2, b2].concat()))
    }
}

/// Index of the largest entry.
pub fn argmax(row: &[f64]) -> usize {
    row.iter()
        .enumerate()
        .fold(0, |best, (i, v)| if *v > row[best] { i } else { best })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize, classes: usize, seed: u64) -> (Vec<f64>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
        let x = labels
            .iter()
            .flat_map(|&l| {
                let a = l as f64 * std::f64::consts::TAU / classes as f64;
                [
                    a.cos() * 2.0 + rng.random_range(-0.8..0.8),
                    a.sin() * 2.0 + rng.random_range(-0.8..0.8),
                    rng.random_range(-1.0..1.0),
                ]
            })
            .collect();
        (x, labels)
    }

    /// The official `to_NN` check: the merged network computes c·F of the boosted sum, for every
    /// task (1e-10).
    #[test]
    fn the_merged_network_predicts_what_the_boosted_sum_predicts() {
        let cfg = GbnnConfig {
            units: 12,
            max_iter: 50,
            ..GbnnConfig::default()
        };
        let (x, labels) = blobs(90, 3, 1);
        let y: Vec<f64> = x.chunks(3).map(|r| r[0].sin() + r[1]).collect();
        let two: Vec<usize> = labels.iter().map(|l| usize::from(*l == 0)).collect();
        for targets in [
            Targets::Classes {
                labels: &labels,
                classes: 3,
            },
            Targets::Classes {
                labels: &two,
                classes: 2,
            },
            Targets::Regression(&y),
        ] {
            let model = Gbnn::fit(&cfg, &x, 3, targets).unwrap();
            let (net, p) = model.to_network().unwrap();
            let merged = net.forward(&p, &x).unwrap();
            let boosted = model.decision(&x, model.units.len()).unwrap();
            let c = model.task().multiplier();
            let worst = merged
                .iter()
                .zip(&boosted)
                .map(|(a, b)| (a - c * b).abs())
                .fold(0.0, f64::max);
            assert!(worst < 1e-10, "{:?}: {worst:e}", model.task());
        }
    }

    /// The steps against the losses by finite differences along ρ. Binary: exactly Newton's
    /// ρ = −L'(0)/L''(0) of L(ρ) = loss(F + ρ f). Multi-class: the official step divides −L'(0) by
    /// the Hessian's diagonal Σ f² p (1 − p), which leaves out the softmax's cross terms, so it is
    /// not the exact Newton step (checked: the two differ here).
    #[test]
    fn the_steps_are_newtons_step_with_the_officials_diagonal_for_multi_class() {
        let mut rng = StdRng::seed_from_u64(3);
        let n = 7;
        let f: Vec<f64> = (0..n * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let fm: Vec<f64> = (0..n * 3).map(|_| rng.random_range(-1.0..1.0)).collect();
        let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
        let (task, y) = encode(
            Targets::Classes {
                labels: &labels,
                classes: 3,
            },
            n,
        )
        .unwrap();
        let loss = |rho: f64| -> f64 {
            let mut z: Vec<f64> = f.iter().zip(&fm).map(|(a, b)| a + rho * b).collect();
            softmax_rows(&mut z, 3);
            -(0..n).map(|i| z[i * 3 + labels[i]].ln()).sum::<f64>()
        };
        let h = 1e-4;
        let slope = (loss(h) - loss(-h)) / (2.0 * h);
        let curvature = (loss(h) - 2.0 * loss(0.0) + loss(-h)) / (h * h);
        let mut p = f.clone();
        softmax_rows(&mut p, 3);
        let diagonal: f64 = fm.iter().zip(&p).map(|(f, p)| f * f * p * (1.0 - p)).sum();
        let rho = newton_step(task, &y, &residuals(task, &y, &f), &fm);
        assert!(
            (rho + slope / diagonal).abs() < 1e-6,
            "{rho} vs {}",
            -slope / diagonal
        );
        assert!(
            (rho + slope / curvature).abs() > 1e-3,
            "the diagonal step happens to be exact here"
        );

        let (f1, fm1) = (&f[..n], &fm[..n]);
        let ys: Vec<f64> = (0..n)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let loss = |rho: f64| -> f64 {
            (0..n)
                .map(|i| (1.0 + (-2.0 * ys[i] * (f1[i] + rho * fm1[i])).exp()).ln())
                .sum()
        };
        let newton =
            -(loss(h) - loss(-h)) / (2.0 * h) / ((loss(h) - 2.0 * loss(0.0) + loss(-h)) / (h * h));
        let rho = newton_step(
            GbnnTask::Binary,
            &ys,
            &residuals(GbnnTask::Binary, &ys, f1),
            fm1,
        );
        assert!(
            (rho - newton).abs() < 1e-5 * newton.abs().max(1.0),
            "{rho} vs {newton}"
        );
    }

    #[test]
    fn it_learns_blobs_and_early_units_carry_most_of_it() {
        let (x, labels) = blobs(150, 3, 2);
        let cfg = GbnnConfig {
            units: 20,
            max_iter: 100,
            ..GbnnConfig::default()
        };
        let model = Gbnn::fit(
            &cfg,
            &x,
            3,
            Targets::Classes {
                labels: &labels,
                classes: 3,
            },
        )
        .unwrap();
        assert!(model.accuracy(&x, &labels, 20).unwrap() > 0.9);
        assert!(model.accuracy(&x, &labels, 10).unwrap() > 0.85);
        // F₀ = 0: no units predicts class 0 everywhere.
        assert!((model.accuracy(&x, &labels, 0).unwrap() - 1.0 / 3.0).abs() < 1e-12);
        // The same seed gives the same model.
        assert_eq!(
            model,
            Gbnn::fit(
                &cfg,
                &x,
                3,
                Targets::Classes {
                    labels: &labels,
                    classes: 3
                }
            )
            .unwrap()
        );
    }

    /// Residuals that vanish end the boosting instead of dividing 0 by 0: constant regression
    /// targets are fitted by F₀ alone, and widely separated classes saturate the softmax.
    #[test]
    fn boosting_stops_when_the_residuals_vanish() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let cfg = GbnnConfig {
            units: 5,
            max_iter: 20,
            ..GbnnConfig::default()
        };
        let model = Gbnn::fit(&cfg, &x, 1, Targets::Regression(&[2.5; 4])).unwrap();
        assert!(model.units.is_empty() && model.stopped_early(5));
        assert_eq!(model.decision(&x, 0).unwrap(), vec![2.5; 4]);

        let (x, labels) = blobs(60, 3, 1);
        let far: Vec<f64> = x.iter().map(|v| v * 20.0).collect();
        let cfg = GbnnConfig {
            units: 300,
            max_iter: 50,
            ..GbnnConfig::default()
        };
        let t = Targets::Classes {
            labels: &labels,
            classes: 3,
        };
        let model = Gbnn::fit(&cfg, &far, 3, t).unwrap();
        assert!(model.stopped_early(300), "all 300 units fitted");
        let fitted = model.units.len();
        let f = model.decision(&far, fitted).unwrap();
        assert!(f.iter().all(|v| v.is_finite()));
        assert_eq!(model.accuracy(&far, &labels, fitted).unwrap(), 1.0);
    }

    #[test]
    fn bad_input_is_refused_with_the_value() {
        let x = [0.0, 1.0, 2.0, 3.0];
        let fit = |cfg: GbnnConfig, t| Gbnn::fit(&cfg, &x, 1, t).unwrap_err().to_string();
        let ok = GbnnConfig {
            units: 2,
            max_iter: 5,
            ..GbnnConfig::default()
        };
        assert!(fit(GbnnConfig { units: 0, ..ok }, Targets::Regression(&x)).contains("got 0"));
        assert!(
            fit(
                GbnnConfig {
                    subsample: 1.5,
                    ..ok
                },
                Targets::Regression(&x)
            )
            .contains("1.5")
        );
        assert!(fit(ok, Targets::Regression(&x[..3])).contains("3 targets"));
        assert!(
            fit(
                ok,
                Targets::Classes {
                    labels: &[0, 1, 7, 0],
                    classes: 2
                }
            )
            .contains("label 7")
        );
        assert!(
            fit(
                ok,
                Targets::Classes {
                    labels: &[1, 1, 1, 1],
                    classes: 2
                }
            )
            .contains("both classes")
        );
        assert!(
            Gbnn::fit(&ok, &[0.0, f64::NAN], 1, Targets::Regression(&[0.0, 1.0]))
                .unwrap_err()
                .to_string()
                .contains("NaN")
        );
        let m = Gbnn::fit(&ok, &x, 1, Targets::Regression(&x)).unwrap();
        assert!(
            m.decision(&x, 3)
                .unwrap_err()
                .to_string()
                .contains("2 units, asked for 3")
        );
        assert!(m.decision(&x, 1).is_ok());
    }
}
