//! The one shape of an optimisation problem over flat parameter vectors x ∈ ℝᵈ: a capability per
//! trait, in argmin's manner, each returning a [`Result`] — a problem that cannot evaluate a point
//! says why; it never returns a NaN vector or a silent zero.
//!
//! A method states what it needs (`P: Cost + Gradient + Hessian` for a Newton method,
//! `P: PerExampleGradients` for a private or adaptive-batch one, `P: Outputs` for Gauss–Newton
//! curvature), and a problem implements what it can (a closed-form regression all of them; a burn
//! model the value, the gradient, per-example gradients and its outputs; a policy its estimated
//! gradient).
//!
//! ```
//! use gradlab_core::problem::{Cost, Gradient, Hessian, Problem, check_point};
//! /// f(x) = ½‖x − 1‖².
//! struct Bowl;
//! impl Problem for Bowl {
//!     fn dim(&self) -> usize { 2 }
//! }
//! impl Cost for Bowl {
//!     fn cost(&self, x: &[f64]) -> gradlab_core::Result<f64> {
//!         check_point(self, x)?;
//!         Ok(x.iter().map(|v| 0.5 * (v - 1.0).powi(2)).sum())
//!     }
//! }
//! impl Gradient for Bowl {
//!     fn gradient(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
//!         check_point(self, x)?;
//!         Ok(x.iter().map(|v| v - 1.0).collect())
//!     }
//! }
//! assert_eq!(Bowl.cost(&[1.0, 3.0]).unwrap(), 2.0);
//! assert!(Bowl.gradient(&[1.0]).is_err()); // a point of the wrong dimension
//! ```

use crate::{CoreError, Result};

/// A problem over ℝᵈ.
pub trait Problem {
    /// The dimension d.
    fn dim(&self) -> usize;
}

/// f(x).
pub trait Cost: Problem {
    /// The value at `x`.
    fn cost(&self, x: &[f64]) -> Result<f64>;
}

/// ∇f(x).
pub trait Gradient: Problem {
    /// The gradient at `x` (length d).
    fn gradient(&self, x: &[f64]) -> Result<Vec<f64>>;
}

/// ∇²f(x), or a positive semi-definite approximation of it, dense.
pub trait Hessian: Problem {
    /// The d × d matrix at `x`, row-major.
    fn hessian(&self, x: &[f64]) -> Result<Vec<f64>>;
}

/// ∇²f(x)·v without forming the matrix.
pub trait HessianVector: Problem {
    /// The product at `x` with `v` (both length d).
    fn hvp(&self, x: &[f64], v: &[f64]) -> Result<Vec<f64>>;
}

/// A finite sum f = (1/n) Σᵢ fᵢ with the gradients of its terms.
pub trait PerExampleGradients: Problem {
    /// The number of terms n.
    fn examples(&self) -> usize;
    /// ∇fᵢ(x) for each i of `idx`, concatenated row by row (|idx| × d).
    fn example_gradients(&self, x: &[f64], idx: &[usize]) -> Result<Vec<f64>>;
    /// [`PerExampleGradients::example_gradients`] written into `out` (|idx| × d), for methods
    /// that keep their buffers (a problem can override it to avoid the allocation).
    fn example_gradients_into(&self, x: &[f64], idx: &[usize], out: &mut [f64]) -> Result<()> {
        let g = self.example_gradients(x, idx)?;
        if g.len() != out.len() {
            return Err(CoreError::Length {
                what: "per-example gradients",
                expected: out.len(),
                got: g.len(),
            });
        }
        out.copy_from_slice(&g);
        Ok(())
    }
}

/// The outputs fᵢ(x) ∈ ℝᶜ of a model on n fixed examples, and their vector–Jacobian products:
/// what Gauss–Newton curvature needs (G = (1/n) Σᵢ Jᵢᵀ Hᵢ Jᵢ, Jᵢ = ∂fᵢ/∂x).
pub trait Outputs: Problem {
    /// Outputs per example, c.
    fn width(&self) -> usize;
    /// The n × c outputs at `x` (row-major).
    fn outputs(&self, x: &[f64]) -> Result<Vec<f64>>;
    /// Jᵀu = ∇ₓ Σᵢⱼ uᵢⱼ fᵢⱼ(x) for an n × c array `u` (length d).
    fn outputs_vjp(&self, x: &[f64], u: &[f64]) -> Result<Vec<f64>>;
}

/// The mean of |rows| × d row-major `rows`, per coordinate (d zeros for no rows).
pub fn mean_rows(rows: &[f64], d: usize) -> Vec<f64> {
    let mut sum = vec![0.0; d];
    if d == 0 {
        return sum;
    }
    for r in rows.chunks_exact(d) {
        sum.iter_mut().zip(r).for_each(|(s, v)| *s += v);
    }
    let n = (rows.len() / d).max(1) as f64;
    sum.iter_mut().for_each(|s| *s /= n);
    sum
}

/// An error naming `what` unless every value is finite.
pub fn check_finite(what: &str, values: &[f64]) -> Result<()> {
    if values.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(CoreError::NonFinite {
            what: what.into(),
            iteration: 0,
        })
    }
}

/// `x` must have the problem's dimension and be finite.
pub fn check_point(p: &(impl Problem + ?Sized), x: &[f64]) -> Result<()> {
    if x.len() != p.dim() {
        return Err(CoreError::Length {
            what: "a point",
            expected: p.dim(),
            got: x.len(),
        });
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::NonFinite {
            what: "point".into(),
            iteration: 0,
        });
    }
    Ok(())
}

/// Euclidean norm.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}
