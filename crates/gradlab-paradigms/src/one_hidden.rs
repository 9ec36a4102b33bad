//! A one-hidden-layer network d → h (logistic) → k in f64 on the host, with scikit-learn's
//! MLP conventions: Glorot-uniform initialisation (bound √(2/(fan_in + fan_out)) for the logistic
//! activation, intercepts included) and an L2 penalty ½α‖W‖²/n on the weights (not the
//! intercepts). It is the unit that [`crate::gbnn`] fits each round and the full-batch baseline
//! that L-BFGS or Adam trains, as two [`gradlab_core::problem`]s: [`SquaredFit`] (multi-output
//! regression) and [`SoftmaxFit`] (classification).
//!
//! Parameter layout (flat): W₁ [h × d] row-major, b₁ [h], W₂ [k × h] row-major, b₂ [k].
//!
//! ```
//! use gradlab_paradigms::one_hidden::OneHidden;
//! let net = OneHidden::new(2, 3, 1).unwrap();
//! let p = net.init(0);
//! assert_eq!(p.len(), net.num_params());
//! assert_eq!(net.forward(&p, &[0.5, -1.0]).unwrap().len(), 1);
//! ```

use crate::error::{ParadigmError, invalid};
use gradlab_core::problem::{Cost, Gradient, Problem, check_point};
use rand::prelude::*;

/// The shape of a one-hidden-layer logistic network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneHidden {
    /// Inputs.
    pub d: usize,
    /// Hidden units.
    pub h: usize,
    /// Outputs.
    pub k: usize,
}

/// The logistic function.
pub fn logistic(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl OneHidden {
    /// A network of the given widths (each ≥ 1).
    pub fn new(d: usize, h: usize, k: usize) -> crate::Result<Self> {
        if d == 0 || h == 0 || k == 0 {
            return invalid(format!(
                "a one-hidden-layer network needs widths ≥ 1, got {d} → {h} → {k}"
            ));
        }
        Ok(Self { d, h, k })
    }

    /// Number of parameters, h(d + 1) + k(h + 1).
    pub fn num_params(&self) -> usize {
        self.h * (self.d + 1) + self.k * (self.h + 1)
    }

    /// scikit-learn's initialisation for the logistic activation, drawn from `seed`.
    pub fn init(&self, seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed);
        let b1 = (2.0 / (self.d + self.h) as f64).sqrt();
        let b2 = (2.0 / (self.h + self.k) as f64).sqrt();
        let n1 = self.h * (self.d + 1);
        (0..self.num_params())
            .map(|i| {
                let b = if i < n1 { b1 } else { b2 };
                rng.random_range(-b..b)
            })
            .collect()
    }

    fn split<'a>(&self, p: &'a [f64]) -> (&'a [f64], &'a [f64], &'a [f64], &'a [f64]) {
        let (w1, rest) = p.split_at(self.h * self.d);
        let (b1, rest) = rest.split_at(self.h);
        let (w2, b2) = rest.split_at(self.k * self.h);
        (w1, b1, w2, b2)
    }

    fn check(&self, p: &[f64], x: &[f64]) -> crate::Result<usize> {
        if p.len() != self.num_params() {
            return Err(ParadigmError::Shape(format!(
                "{} parameters where the network has {}",
                p.len(),
                self.num_params()
            )));
        }
        if !x.len().is_multiple_of(self.d) {
            return Err(ParadigmError::Shape(format!(
                "{} input values do not make rows of {}",
                x.len(),
                self.d
            )));
        }
        Ok(x.len() / self.d)
    }

    /// Hidden activations [n × h] and outputs [n × k] for the rows of `x` [n × d].
    pub fn activations(&self, p: &[f64], x: &[f64]) -> crate::Result<(Vec<f64>, Vec<f64>)> {
        let n = self.check(p, x)?;
        let (w1, b1, w2, b2) = self.split(p);
        let mut hidden = vec![0.0; n * self.h];
        let mut out = vec![0.0; n * self.k];
        for i in 0..n {
            let xi = &x[i * self.d..(i + 1) * self.d];
            let hi = &mut hidden[i * self.h..(i + 1) * self.h];
            for (j, hj) in hi.iter_mut().enumerate() {
                *hj = logistic(b1[j] + dot(&w1[j * self.d..(j + 1) * self.d], xi));
            }
            for (c, o) in out[i * self.k..(i + 1) * self.k].iter_mut().enumerate() {
                *o = b2[c] + dot(&w2[c * self.h..(c + 1) * self.h], hi);
            }
        }
        Ok((hidden, out))
    }

    /// The outputs [n × k] for the rows of `x`.
    pub fn forward(&self, p: &[f64], x: &[f64]) -> crate::Result<Vec<f64>> {
        Ok(self.activations(p, x)?.1)
    }

    /// The gradient of Σ_i Σ_c δ_ic · out_ic with respect to the parameters, given the hidden
    /// activations and the output deltas δ [n × k].
    fn backward(&self, p: &[f64], x: &[f64], hidden: &[f64], delta: &[f64]) -> Vec<f64> {
        let (_, _, w2, _) = self.split(p);
        let n = x.len() / self.d;
        let mut g = vec![0.0; self.num_params()];
        let (gw1, rest) = g.split_at_mut(self.h * self.d);
        let (gb1, rest) = rest.split_at_mut(self.h);
        let (gw2, gb2) = rest.split_at_mut(self.k * self.h);
        let mut dh = vec![0.0; self.h];
        for i in 0..n {
            let (xi, hi, di) = (
                &x[i * self.d..(i + 1) * self.d],
                &hidden[i * self.h..(i + 1) * self.h],
                &delta[i * self.k..(i + 1) * self.k],
            );
            dh.iter_mut().for_each(|v| *v = 0.0);
            for (c, &dc) in di.iter().enumerate() {
                gb2[c] += dc;
                let row = &w2[c * self.h..(c + 1) * self.h];
                for j in 0..self.h {
                    gw2[c * self.h + j] += dc * hi[j];
                    dh[j] += dc * row[j];
                }
            }
            for j in 0..self.h {
                let dz = dh[j] * hi[j] * (1.0 - hi[j]);
                gb1[j] += dz;
                gw1[j * self.d..(j + 1) * self.d]
                    .iter_mut()
                    .zip(xi)
                    .for_each(|(g, xv)| *g += dz * xv);
            }
        }
        g
    }

    /// ½α‖W‖²/n and its gradient added to `g` (weights only, as scikit-learn).
    fn penalty(&self, p: &[f64], alpha: f64, n: usize, g: Option<&mut [f64]>) -> f64 {
        let n1 = self.h * self.d;
        let w2 = n1 + self.h..n1 + self.h + self.k * self.h;
        let weights = (0..n1).chain(w2);
        let scale = alpha / n as f64;
        let mut value = 0.0;
        match g {
            Some(g) => weights.for_each(|i| {
                value += p[i] * p[i];
                g[i] += scale * p[i];
            }),
            None => weights.for_each(|i| value += p[i] * p[i]),
        }
        0.5 * scale * value
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Least squares on multi-output targets: ½·(1/n)·Σ_i ‖out_i − t_i‖² + ½α‖W‖²/n, the objective whose
/// gradient scikit-learn's `MLPRegressor` computes (its reported loss divides by k as well; the
/// two agree for one output).
#[derive(Debug, Clone)]
pub struct SquaredFit<'a> {
    /// The network.
    pub net: OneHidden,
    /// Inputs [n × d].
    pub x: &'a [f64],
    /// Targets [n × k].
    pub targets: &'a [f64],
    /// L2 strength α.
    pub alpha: f64,
}

impl Problem for SquaredFit<'_> {
    fn dim(&self) -> usize {
        self.net.num_params()
    }
}

impl SquaredFit<'_> {
    fn residuals(&self, p: &[f64]) -> gradlab_core::Result<(Vec<f64>, Vec<f64>, usize)> {
        check_point(self, p)?;
        let (hidden, out) = self
            .net
            .activations(p, self.x)
            .map_err(|e| gradlab_core::CoreError::Failed(e.to_string()))?;
        if out.len() != self.targets.len() {
            return Err(gradlab_core::CoreError::Length {
                what: "targets",
                expected: out.len(),
                got: self.targets.len(),
            });
        }
        let r = out.iter().zip(self.targets).map(|(o, t)| o - t).collect();
        Ok((hidden, r, self.x.len() / self.net.d))
    }
}

impl Cost for SquaredFit<'_> {
    fn cost(&self, p: &[f64]) -> gradlab_core::Result<f64> {
        let (_, r, n) = self.residuals(p)?;
        Ok(0.5 * dot(&r, &r) / n as f64 + self.net.penalty(p, self.alpha, n, None))
    }
}

impl Gradient for SquaredFit<'_> {
    fn gradient(&self, p: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        let (hidden, r, n) = self.residuals(p)?;
        let delta: Vec<f64> = r.iter().map(|v| v / n as f64).collect();
        let mut g = self.net.backward(p, self.x, &hidden, &delta);
        self.net.penalty(p, self.alpha, n, Some(&mut g));
        Ok(g)
    }
}

/// Mean softmax cross-entropy of the outputs against class labels, + ½α‖W‖²/n; [`SoftmaxFit::rows`]
/// restricts it to a minibatch.
#[derive(Debug, Clone)]
pub struct SoftmaxFit<'a> {
    /// The network (k = the number of classes).
    pub net: OneHidden,
    /// Inputs [n × d].
    pub x: &'a [f64],
    /// Labels in 0 … k − 1.
    pub labels: &'a [usize],
    /// L2 strength α.
    pub alpha: f64,
}

/// Softmax of each row of `out` [n × k], in place.
pub fn softmax_rows(out: &mut [f64], k: usize) {
    for row in out.chunks_mut(k) {
        let m = row.iter().fold(f64::NEG_INFINITY, |a, b| a.max(*b));
        row.iter_mut().for_each(|v| *v = (*v - m).exp());
        let s: f64 = row.iter().sum();
        row.iter_mut().for_each(|v| *v /= s);
    }
}

impl SoftmaxFit<'_> {
    /// The loss and gradient on the rows `idx` (all rows when None).
    pub fn rows(&self, p: &[f64], idx: Option<&[usize]>) -> gradlab_core::Result<(f64, Vec<f64>)> {
        check_point(self, p)?;
        let (d, k) = (self.net.d, self.net.k);
        let all: Vec<usize>;
        let idx = match idx {
            Some(i) => i,
            None => {
                all = (0..self.labels.len()).collect();
                &all
            }
        };
        let x: Vec<f64> = idx
            .iter()
            .flat_map(|&i| self.x[i * d..(i + 1) * d].iter().copied())
            .collect();
        let (hidden, mut prob) = self
            .net
            .activations(p, &x)
            .map_err(|e| gradlab_core::CoreError::Failed(e.to_string()))?;
        softmax_rows(&mut prob, k);
        let n = idx.len();
        let mut loss = 0.0;
        for (r, &i) in idx.iter().enumerate() {
            let y = self.labels[i];
            if y >= k {
                return Err(gradlab_core::CoreError::Failed(format!(
                    "label {y} at row {i} is outside 0 … {}",
                    k - 1
                )));
            }
            loss -= prob[r * k + y].max(1e-300).ln();
            prob[r * k + y] -= 1.0;
        }
        prob.iter_mut().for_each(|v| *v /= n as f64);
        let mut g = self.net.backward(p, &x, &hidden, &prob);
        let pen = self.net.penalty(p, self.alpha, n, Some(&mut g));
        Ok((loss / n as f64 + pen, g))
    }
}

impl Problem for SoftmaxFit<'_> {
    fn dim(&self) -> usize {
        self.net.num_params()
    }
}

impl Cost for SoftmaxFit<'_> {
    fn cost(&self, p: &[f64]) -> gradlab_core::Result<f64> {
        Ok(self.rows(p, None)?.0)
    }
}

impl Gradient for SoftmaxFit<'_> {
    fn gradient(&self, p: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        Ok(self.rows(p, None)?.1)
    }
}

/// How [`fit_classifier`] trains: scikit-learn's `MLPClassifier` solvers at their defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClassifierSolver {
    /// Full-batch L-BFGS for at most `max_iter` iterations (tol 0, SciPy's relative-decrease stop).
    Lbfgs {
        /// Iterations (scikit-learn: 200).
        max_iter: usize,
    },
    /// Minibatch Adam (β = (0.9, 0.999), ε = 1e-8) at a constant `lr` for `epochs` shuffled passes.
    Adam {
        /// Learning rate (scikit-learn: 1e-3).
        lr: f64,
        /// Minibatch size (scikit-learn: min(200, n)).
        batch: usize,
        /// Passes over the data (scikit-learn: `max_iter` = 200).
        epochs: usize,
    },
}

/// Train a [`SoftmaxFit`] classifier from scikit-learn's initialisation drawn with `seed`; returns
/// its parameters.
pub fn fit_classifier(
    fit: &SoftmaxFit<'_>,
    solver: ClassifierSolver,
    seed: u64,
) -> crate::Result<Vec<f64>> {
    let p0 = fit.net.init(seed);
    match solver {
        ClassifierSolver::Lbfgs { max_iter } => {
            let mut lbfgs =
                gradlab_optim::lbfgs::Lbfgs::new(10, 0.0)?.with_ftol(crate::gbnn::SCIPY_FTOL)?;
            let (end, _) = gradlab_core::solve::solve(
                &mut lbfgs,
                fit,
                &p0,
                max_iter,
                &mut gradlab_core::solve::Silent,
            )?;
            Ok(end.x)
        }
        ClassifierSolver::Adam { lr, batch, epochs } => {
            if batch == 0 || epochs == 0 || !(lr > 0.0 && lr.is_finite()) {
                return invalid(format!(
                    "Adam needs batch ≥ 1, epochs ≥ 1 and lr > 0, got {batch}, {epochs}, {lr}"
                ));
            }
            let mut spec = gradlab_optim::spec::OptimizerSpec::parse("adam")?.with_lr(lr);
            spec.eps = Some(1e-8);
            let mut opt = spec.point_optimizer(&p0)?;
            let n = fit.labels.len();
            let mut p = p0;
            for epoch in 0..epochs {
                for idx in gradlab_data::batch::epoch_batches(n, batch, seed, epoch) {
                    let (_, g) = fit.rows(&p, Some(&idx))?;
                    p = opt.step(lr, &g)?;
                }
            }
            if p.iter().any(|v| !v.is_finite()) {
                return Err(ParadigmError::NonFinite {
                    what: "Adam iterate",
                    step: epochs,
                });
            }
            Ok(p)
        }
    }
}

/// Accuracy of the classifier with parameters `p` on the rows of `x`.
pub fn classifier_accuracy(
    net: OneHidden,
    p: &[f64],
    x: &[f64],
    labels: &[usize],
) -> crate::Result<f64> {
    let out = net.forward(p, x)?;
    if out.len() != labels.len() * net.k || labels.is_empty() {
        return Err(ParadigmError::Shape(format!(
            "{} rows but {} labels",
            out.len() / net.k,
            labels.len()
        )));
    }
    let hits = out
        .chunks(net.k)
        .zip(labels)
        .filter(|(row, l)| crate::gbnn::argmax(row) == **l)
        .count();
    Ok(hits as f64 / labels.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd_check(cost: impl Fn(&[f64]) -> f64, grad: &[f64], p: &[f64]) {
        for i in 0..p.len() {
            let (mut a, mut b) = (p.to_vec(), p.to_vec());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let fd = (cost(&a) - cost(&b)) / 2e-6;
            assert!(
                (fd - grad[i]).abs() < 1e-7 * (1.0 + fd.abs()),
                "parameter {i}: {fd} vs {}",
                grad[i]
            );
        }
    }

    /// Both objectives' gradients against central differences, penalty included.
    #[test]
    fn the_gradients_match_finite_differences() {
        let net = OneHidden::new(3, 4, 2).unwrap();
        let p = net.init(1);
        let x = [0.3, -1.0, 2.0, 0.5, 0.1, -0.7, -1.2, 0.4, 0.9];
        let t = [1.0, -0.5, 0.2, 0.3, -1.0, 2.0];
        let sq = SquaredFit {
            net,
            x: &x,
            targets: &t,
            alpha: 0.3,
        };
        fd_check(|q| sq.cost(q).unwrap(), &sq.gradient(&p).unwrap(), &p);
        let labels = [1, 0, 1];
        let ce = SoftmaxFit {
            net,
            x: &x,
            labels: &labels,
            alpha: 0.3,
        };
        fd_check(|q| ce.cost(q).unwrap(), &ce.gradient(&p).unwrap(), &p);
        // A minibatch is the same objective on its rows.
        let sub = SoftmaxFit {
            net,
            x: &x[3..9],
            labels: &labels[1..3],
            alpha: 0.3,
        };
        assert_eq!(
            ce.rows(&p, Some(&[1, 2])).unwrap(),
            sub.rows(&p, None).unwrap()
        );
    }

    #[test]
    fn both_solvers_fit_a_separable_problem() {
        let x: Vec<f64> = (0..60)
            .flat_map(|i| [(i % 3) as f64 + 0.1 * (i as f64).sin(), 1.0])
            .collect();
        let labels: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let net = OneHidden::new(2, 8, 3).unwrap();
        let fit = SoftmaxFit {
            net,
            x: &x,
            labels: &labels,
            alpha: 1e-4,
        };
        for solver in [
            ClassifierSolver::Lbfgs { max_iter: 200 },
            ClassifierSolver::Adam {
                lr: 0.05,
                batch: 16,
                epochs: 100,
            },
        ] {
            let p = fit_classifier(&fit, solver, 1).unwrap();
            assert!(
                fit.cost(&p).unwrap() < fit.cost(&net.init(1)).unwrap() * 0.2,
                "{solver:?}"
            );
            assert_eq!(
                classifier_accuracy(net, &p, &x, &labels).unwrap(),
                1.0,
                "{solver:?}"
            );
        }
    }

    #[test]
    fn bad_shapes_and_labels_are_refused() {
        assert!(
            OneHidden::new(0, 2, 1)
                .unwrap_err()
                .to_string()
                .contains("0 → 2 → 1")
        );
        let net = OneHidden::new(2, 2, 2).unwrap();
        assert!(net.forward(&[0.0; 3], &[0.0, 0.0]).is_err());
        assert!(
            net.forward(&net.init(0), &[0.0; 3])
                .unwrap_err()
                .to_string()
                .contains("rows of 2")
        );
        let ce = SoftmaxFit {
            net,
            x: &[0.0, 0.0],
            labels: &[5],
            alpha: 0.0,
        };
        assert!(
            ce.cost(&net.init(0))
                .unwrap_err()
                .to_string()
                .contains("label 5")
        );
    }
}
