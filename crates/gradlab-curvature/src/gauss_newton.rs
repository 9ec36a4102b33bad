//! Generalised Gauss–Newton products G v = (1/n) Σᵢ Jᵢᵀ Hᵢ Jᵢ v, where Jᵢ = ∂fᵢ/∂θ is the Jacobian
//! of example i's outputs (logits) and Hᵢ = ∂²ℓ/∂fᵢ² the Hessian of the loss in the outputs:
//! diag(pᵢ) − pᵢpᵢᵀ for softmax cross-entropy (p = softmax(fᵢ)), 2I for the squared error
//! Σⱼ(fᵢⱼ − tᵢⱼ)². G is positive semi-definite and equals the Hessian when the outputs are linear
//! in θ; it drops the term Σ ∂ℓ/∂f · ∇²f.
//!
//! J v is a central difference of the outputs along v (exact for outputs linear in θ, O(h²)
//! otherwise); Jᵀu is one reverse-mode pass ([`Outputs::outputs_vjp`]) of any problem with
//! [`Outputs`] (a burn model's logits: [`crate::model::ModelOutputs`]).

use crate::hvp::{CurvatureError, HessianVectorProduct};
use gradlab_core::problem::Outputs;

type Result<T> = std::result::Result<T, CurvatureError>;

/// The loss whose output Hessian Hᵢ the product uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputLoss {
    /// Softmax cross-entropy: Hᵢ = diag(p) − ppᵀ.
    SoftmaxCrossEntropy,
    /// Squared error summed over outputs: Hᵢ = 2I.
    SquaredError,
}

impl OutputLoss {
    /// Hᵢ w for one example with outputs `f`.
    fn mul(self, f: &[f64], w: &[f64]) -> Vec<f64> {
        match self {
            OutputLoss::SquaredError => w.iter().map(|x| 2.0 * x).collect(),
            OutputLoss::SoftmaxCrossEntropy => {
                let max = f.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = f.iter().map(|x| (x - max).exp()).collect();
                let z: f64 = e.iter().sum();
                let p: Vec<f64> = e.into_iter().map(|x| x / z).collect();
                let pw: f64 = p.iter().zip(w).map(|(a, b)| a * b).sum();
                p.iter().zip(w).map(|(pi, wi)| pi * (wi - pw)).collect()
            }
        }
    }
}

/// Gauss–Newton products of the mean loss over the examples of a problem's [`Outputs`] at θ.
pub struct GaussNewton<O> {
    oracle: O,
    theta: Vec<f64>,
    loss: OutputLoss,
    eps: f64,
    outputs: Vec<f64>,
}

impl<O: Outputs> GaussNewton<O> {
    /// Products at `theta`; `eps` > 0 is the relative step of the J v difference (1e-5 for f64
    /// models, 1e-3 for f32 ones).
    pub fn new(oracle: O, theta: Vec<f64>, loss: OutputLoss, eps: f64) -> Result<Self> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(CurvatureError::Invalid(format!(
                "finite-difference step must be > 0, got {eps}"
            )));
        }
        let outputs = oracle.outputs(&theta)?;
        let c = oracle.width();
        if c == 0 || outputs.is_empty() || outputs.len() % c != 0 {
            return Err(CurvatureError::Invalid(format!(
                "{} outputs are not whole rows of {c} classes",
                outputs.len()
            )));
        }
        if outputs.iter().any(|v| !v.is_finite()) {
            return Err(CurvatureError::NonFinite { what: "outputs" });
        }
        Ok(Self {
            oracle,
            theta,
            loss,
            eps,
            outputs,
        })
    }

    /// J v by central differences of the outputs.
    fn jvp(&self, v: &[f64]) -> Result<Vec<f64>> {
        let vn = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        let tn = self.theta.iter().map(|a| a * a).sum::<f64>().sqrt();
        let h = self.eps * tn.max(1.0) / vn;
        let at =
            |s: f64| -> Vec<f64> { self.theta.iter().zip(v).map(|(t, v)| t + s * v).collect() };
        let (fp, fm) = (self.oracle.outputs(&at(h))?, self.oracle.outputs(&at(-h))?);
        Ok(fp
            .iter()
            .zip(&fm)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect())
    }
}

impl<O: Outputs> HessianVectorProduct for GaussNewton<O> {
    fn dim(&self) -> usize {
        self.theta.len()
    }

    fn hvp(&self, v: &[f64]) -> Result<Vec<f64>> {
        if v.len() != self.theta.len() {
            return Err(CurvatureError::Shape {
                expected: self.theta.len(),
                got: v.len(),
            });
        }
        if v.iter().all(|x| *x == 0.0) {
            return Ok(vec![0.0; v.len()]);
        }
        let c = self.oracle.width();
        let n = self.outputs.len() / c;
        let jv = self.jvp(v)?;
        let mut u = Vec::with_capacity(jv.len());
        for (f, w) in self.outputs.chunks(c).zip(jv.chunks(c)) {
            u.extend(self.loss.mul(f, w).into_iter().map(|x| x / n as f64));
        }
        let out = self.oracle.outputs_vjp(&self.theta, &u)?;
        if out.iter().all(|x| x.is_finite()) {
            Ok(out)
        } else {
            Err(CurvatureError::NonFinite {
                what: "Gauss–Newton product",
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spectrum::symmetric_eigen;

    /// Softmax regression f = W x (W: c × d, θ = W row-major) on fixed examples, with its exact
    /// Jacobian: the outputs are linear in θ, so G is the exact Hessian of the mean cross-entropy.
    struct Linear {
        x: Vec<Vec<f64>>,
        c: usize,
    }

    impl gradlab_core::problem::Problem for Linear {
        fn dim(&self) -> usize {
            self.c * self.x[0].len()
        }
    }

    impl Outputs for Linear {
        fn outputs(&self, t: &[f64]) -> gradlab_core::Result<Vec<f64>> {
            let d = self.x[0].len();
            Ok(self
                .x
                .iter()
                .flat_map(|x| (0..self.c).map(move |k| (0..d).map(|j| t[k * d + j] * x[j]).sum()))
                .collect())
        }
        fn outputs_vjp(&self, _: &[f64], u: &[f64]) -> gradlab_core::Result<Vec<f64>> {
            let d = self.x[0].len();
            let mut g = vec![0.0; self.c * d];
            for (i, x) in self.x.iter().enumerate() {
                for k in 0..self.c {
                    for j in 0..d {
                        g[k * d + j] += u[i * self.c + k] * x[j];
                    }
                }
            }
            Ok(g)
        }
        fn width(&self) -> usize {
            self.c
        }
    }

    #[test]
    fn linear_outputs_give_the_closed_form_cross_entropy_hessian() {
        let (c, d) = (3, 2);
        let x = vec![
            vec![1.0, 0.5],
            vec![-0.3, 2.0],
            vec![0.7, -1.1],
            vec![0.2, 0.2],
        ];
        let theta = vec![0.1, -0.4, 0.3, 0.2, -0.5, 0.6];
        let oracle = Linear { x: x.clone(), c };
        let gn =
            GaussNewton::new(oracle, theta.clone(), OutputLoss::SoftmaxCrossEntropy, 1e-5).unwrap();
        // H = (1/n) Σᵢ (diag pᵢ − pᵢpᵢᵀ) ⊗ xᵢxᵢᵀ in the row-major (k, j) order of θ.
        let p_of = |x: &[f64]| {
            let f: Vec<f64> = (0..c)
                .map(|k| (0..d).map(|j| theta[k * d + j] * x[j]).sum())
                .collect();
            let z: f64 = f.iter().map(|v| v.exp()).sum();
            f.iter().map(|v| v.exp() / z).collect::<Vec<f64>>()
        };
        let n = c * d;
        let mut h = vec![0.0; n * n];
        for xi in &x {
            let p = p_of(xi);
            for (a, b) in (0..n).flat_map(|a| (0..n).map(move |b| (a, b))) {
                let (k, j, l, m) = (a / d, a % d, b / d, b % d);
                let s = if k == l { p[k] } else { 0.0 } - p[k] * p[l];
                h[a * n + b] += s * xi[j] * xi[m] / x.len() as f64;
            }
        }
        let dense = gn.dense().unwrap();
        for (a, b) in dense.iter().zip(&h) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // Positive semi-definite, with the null direction of softmax (all classes alike).
        let (vals, _) = symmetric_eigen(&dense, n);
        assert!(vals.iter().all(|v| *v > -1e-10), "{vals:?}");
    }

    #[test]
    fn squared_error_is_twice_jtj_and_bad_input_is_an_error() {
        let oracle = Linear {
            x: vec![vec![1.0, 2.0]],
            c: 1,
        };
        let gn = GaussNewton::new(oracle, vec![0.3, 0.1], OutputLoss::SquaredError, 1e-5).unwrap();
        // J = xᵀ: G = 2 x xᵀ.
        let g = gn.dense().unwrap();
        for (a, b) in g.iter().zip([2.0, 4.0, 4.0, 8.0]) {
            assert!((a - b).abs() < 1e-8, "{g:?}");
        }
        assert!(matches!(gn.hvp(&[1.0]), Err(CurvatureError::Shape { .. })));
        let bad = Linear {
            x: vec![vec![1.0]],
            c: 1,
        };
        assert!(GaussNewton::new(bad, vec![0.0], OutputLoss::SquaredError, 0.0).is_err());
    }
}
