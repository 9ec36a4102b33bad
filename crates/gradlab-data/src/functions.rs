//! Optimizer test problems with exact values and gradients.
//!
//! Includes the three one-dimensional non-convex functions of the diffGrad paper
//! (Dubey et al., "diffGrad: An Optimization Method for Convolutional Neural Networks",
//! arXiv 1909.11015, eqs. 24–26). Checked against the official notebook
//! `diffGrad_analytical.ipynb` (shivram1987/diffGrad): F1 and F3 there use exactly the gradients of
//! the paper's equations; for F2 the notebook's gradient is `x·cos 8x + sin 8x + 3x²`, which is
//! *not* the derivative of the paper's `x³ + x·sin 8x + 0.85` (that is `3x² + sin 8x + 8x·cos 8x`).
//! [`DiffGradF2`] follows the paper's equation with its exact gradient; the paper's claim about F2
//! (Adam stops in a local minimum, diffGrad reaches the global one) holds for it. As printed, F2
//! also jumps by ≈0.015 at x = −0.9 (−40x − 35.15 gives 0.85, the cubic branch ≈0.835); the
//! gradient, which is all the optimizers see, is the paper's on both sides.

//!
//! Every function is a [`gradlab_core::problem`] problem: [`Cost`] and [`Gradient`] (the quadratic
//! also [`Hessian`]) check the point's dimension and finiteness and return an error, never a NaN;
//! [`TestFunction`] adds the name and the known minimum.
//!
//! ```
//! use gradlab_core::problem::{Cost, Gradient};
//! use gradlab_data::functions::{Rosenbrock, TestFunction};
//! let f = Rosenbrock(2);
//! assert_eq!(f.cost(&[1.0, 1.0]).unwrap(), 0.0);
//! assert_eq!(f.gradient(&[1.0, 1.0]).unwrap(), vec![0.0, 0.0]);
//! assert!(f.cost(&[1.0]).is_err()); // a point of the wrong dimension
//! assert_eq!(f.global_min().unwrap().0, vec![1.0, 1.0]);
//! ```

use crate::error::{Result, invalid};
use gradlab_core::problem::{Cost, Gradient, Hessian, Problem, check_finite, check_point};
use rand::prelude::*;
use rand_distr::StandardNormal;
use std::f64::consts::PI;

/// A differentiable test function: a problem with a value and a gradient, a name and, where known,
/// its global minimum.
pub trait TestFunction: Cost + Gradient + Send + Sync {
    /// A short name.
    fn name(&self) -> String;
    /// The global minimiser and minimum, where known.
    fn global_min(&self) -> Option<(Vec<f64>, f64)> {
        None
    }
}

/// The formulas of a test function on a point of the right dimension; [`Cost`] and [`Gradient`]
/// check the point and the results around them.
trait Formula {
    fn dim(&self) -> usize;
    fn value(&self, x: &[f64]) -> f64;
    fn grad(&self, x: &[f64]) -> Vec<f64>;
}

/// [`Problem`], [`Cost`] and [`Gradient`] of types with a [`Formula`].
macro_rules! problem {
    ($($t:ty),*) => {$(
        impl Problem for $t {
            fn dim(&self) -> usize {
                Formula::dim(self)
            }
        }
        impl Cost for $t {
            fn cost(&self, x: &[f64]) -> gradlab_core::Result<f64> {
                check_point(self, x)?;
                let v = Formula::value(self, x);
                check_finite("value", &[v])?;
                Ok(v)
            }
        }
        impl Gradient for $t {
            fn gradient(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
                check_point(self, x)?;
                let g = Formula::grad(self, x);
                check_finite("gradient", &g)?;
                Ok(g)
            }
        }
    )*};
}

/// f(x) = ½ (Qx)ᵀ diag(λ) (Qx) with a chosen spectrum λ and an orthogonal Q (identity or random).
#[derive(Debug, Clone)]
pub struct Quadratic {
    spectrum: Vec<f64>,
    /// Row-major orthogonal matrix, `None` for the identity.
    rotation: Option<Vec<f64>>,
}

impl Quadratic {
    /// Axis-aligned quadratic with eigenvalues `spectrum`.
    pub fn diagonal(spectrum: Vec<f64>) -> Result<Self> {
        if spectrum.is_empty() || spectrum.iter().any(|l| !l.is_finite()) {
            return invalid("a quadratic needs a non-empty finite spectrum");
        }
        Ok(Self {
            spectrum,
            rotation: None,
        })
    }

    /// Quadratic with eigenvalues `spectrum` in a random orthonormal basis drawn with `seed`.
    pub fn rotated(spectrum: Vec<f64>, seed: u64) -> Result<Self> {
        let mut q = Self::diagonal(spectrum)?;
        let n = q.spectrum.len();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut rows: Vec<Vec<f64>> = Vec::with_capacity(n);
        while rows.len() < n {
            let mut v: Vec<f64> = (0..n).map(|_| rng.sample(StandardNormal)).collect();
            for r in &rows {
                let d: f64 = v.iter().zip(r).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(r).for_each(|(a, b)| *a -= d * b);
            }
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm > 1e-8 {
                rows.push(v.into_iter().map(|a| a / norm).collect());
            }
        }
        q.rotation = Some(rows.concat());
        Ok(q)
    }

    /// The eigenvalues.
    pub fn spectrum(&self) -> &[f64] {
        &self.spectrum
    }

    fn rotate(&self, x: &[f64]) -> Vec<f64> {
        match &self.rotation {
            None => x.to_vec(),
            Some(q) => {
                let n = x.len();
                (0..n)
                    .map(|i| (0..n).map(|j| q[i * n + j] * x[j]).sum())
                    .collect()
            }
        }
    }

    fn rotate_back(&self, y: &[f64]) -> Vec<f64> {
        match &self.rotation {
            None => y.to_vec(),
            Some(q) => {
                let n = y.len();
                (0..n)
                    .map(|j| (0..n).map(|i| q[i * n + j] * y[i]).sum())
                    .collect()
            }
        }
    }
}

/// The constant Hessian QᵀΛQ (row-major).
impl Hessian for Quadratic {
    fn hessian(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        check_point(self, x)?;
        let n = self.spectrum.len();
        let mut h = vec![0.0; n * n];
        for j in 0..n {
            let mut e = vec![0.0; n];
            e[j] = 1.0;
            let col = self.grad(&e);
            for i in 0..n {
                h[i * n + j] = col[i];
            }
        }
        Ok(h)
    }
}

impl TestFunction for Quadratic {
    fn name(&self) -> String {
        format!("quadratic{}", self.spectrum.len())
    }
    fn global_min(&self) -> Option<(Vec<f64>, f64)> {
        self.spectrum
            .iter()
            .all(|l| *l > 0.0)
            .then(|| (vec![0.0; self.spectrum.len()], 0.0))
    }
}

impl Formula for Quadratic {
    fn dim(&self) -> usize {
        self.spectrum.len()
    }
    fn value(&self, x: &[f64]) -> f64 {
        let y = self.rotate(x);
        0.5 * y
            .iter()
            .zip(&self.spectrum)
            .map(|(y, l)| l * y * y)
            .sum::<f64>()
    }
    fn grad(&self, x: &[f64]) -> Vec<f64> {
        let y = self.rotate(x);
        let ly: Vec<f64> = y.iter().zip(&self.spectrum).map(|(y, l)| l * y).collect();
        self.rotate_back(&ly)
    }
}

/// Rosenbrock in n ≥ 2 dimensions: Σ 100(x_{i+1} − x_i²)² + (1 − x_i)², minimum 0 at (1, …, 1).
#[derive(Debug, Clone, Copy)]
pub struct Rosenbrock(pub usize);

impl Formula for Rosenbrock {
    fn dim(&self) -> usize {
        self.0
    }
    fn value(&self, x: &[f64]) -> f64 {
        x.windows(2)
            .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
            .sum()
    }
    fn grad(&self, x: &[f64]) -> Vec<f64> {
        let mut g = vec![0.0; x.len()];
        for i in 0..x.len().saturating_sub(1) {
            let r = x[i + 1] - x[i] * x[i];
            g[i] += -400.0 * x[i] * r - 2.0 * (1.0 - x[i]);
            g[i + 1] += 200.0 * r;
        }
        g
    }
}

impl TestFunction for Rosenbrock {
    fn name(&self) -> String {
        "rosenbrock".into()
    }
    fn global_min(&self) -> Option<(Vec<f64>, f64)> {
        Some((vec![1.0; self.0], 0.0))
    }
}

/// Rastrigin: 10n + Σ x_i² − 10 cos(2πx_i), minimum 0 at the origin.
#[derive(Debug, Clone, Copy)]
pub struct Rastrigin(pub usize);

impl Formula for Rastrigin {
    fn dim(&self) -> usize {
        self.0
    }
    fn value(&self, x: &[f64]) -> f64 {
        10.0 * x.len() as f64
            + x.iter()
                .map(|v| v * v - 10.0 * (2.0 * PI * v).cos())
                .sum::<f64>()
    }
    fn grad(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .map(|v| 2.0 * v + 20.0 * PI * (2.0 * PI * v).sin())
            .collect()
    }
}

impl TestFunction for Rastrigin {
    fn name(&self) -> String {
        "rastrigin".into()
    }
    fn global_min(&self) -> Option<(Vec<f64>, f64)> {
        Some((vec![0.0; self.0], 0.0))
    }
}

problem!(Quadratic, Rosenbrock, Rastrigin);

macro_rules! one_d {
    ($name:ident, $label:expr, $doc:expr, $value:expr, $grad:expr, $argmin:expr) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;
        impl Formula for $name {
            fn dim(&self) -> usize {
                1
            }
            fn value(&self, x: &[f64]) -> f64 {
                let f: fn(f64) -> f64 = $value;
                f(x[0])
            }
            fn grad(&self, x: &[f64]) -> Vec<f64> {
                let g: fn(f64) -> f64 = $grad;
                vec![g(x[0])]
            }
        }
        impl TestFunction for $name {
            fn name(&self) -> String {
                $label.into()
            }
            fn global_min(&self) -> Option<(Vec<f64>, f64)> {
                let x: f64 = $argmin;
                Some((vec![x], Formula::value(self, &[x])))
            }
        }
        problem!($name);
    };
}

one_d!(
    DiffGradF1,
    "f1",
    "diffGrad F1 (eq. 24): (x+0.3)² for x ≤ 0, (x−0.2)² + 0.05 for x > 0. Global minimum 0 at −0.3, local minimum 0.05 at 0.2.",
    |x| if x <= 0.0 {
        (x + 0.3).powi(2)
    } else {
        (x - 0.2).powi(2) + 0.05
    },
    |x| if x <= 0.0 {
        2.0 * x + 0.6
    } else {
        2.0 * x - 0.4
    },
    -0.3
);

one_d!(
    DiffGradF2,
    "f2",
    "diffGrad F2 (eq. 25): −40x − 35.15 for x ≤ −0.9, x³ + x·sin 8x + 0.85 for x > −0.9. Global minimum ≈ 1.2e-4 at x ≈ −0.64292; local minima at 0 (0.85) and ≈ 0.588.",
    |x| if x <= -0.9 {
        -40.0 * x - 35.15
    } else {
        x.powi(3) + x * (8.0 * x).sin() + 0.85
    },
    |x| if x <= -0.9 {
        -40.0
    } else {
        3.0 * x * x + (8.0 * x).sin() + 8.0 * x * (8.0 * x).cos()
    },
    -0.642_918_598_915_261_7
);

one_d!(
    DiffGradF3,
    "f3",
    "diffGrad F3 (eq. 26): x² (x ≤ −0.5), 0.75 + x, −7x/8, 7x/8, 0.75 − x, x² (x > 0.5), breaks at −0.5, −0.4, 0, 0.4, 0.5. Global minimum 0 at 0; local minima 0.25 at ±0.5.",
    |x| {
        if x <= -0.5 {
            x * x
        } else if x <= -0.4 {
            0.75 + x
        } else if x <= 0.0 {
            -7.0 * x / 8.0
        } else if x <= 0.4 {
            7.0 * x / 8.0
        } else if x <= 0.5 {
            0.75 - x
        } else {
            x * x
        }
    },
    |x| {
        if x <= -0.5 {
            2.0 * x
        } else if x <= -0.4 {
            1.0
        } else if x <= 0.0 {
            -7.0 / 8.0
        } else if x <= 0.4 {
            7.0 / 8.0
        } else if x <= 0.5 {
            -1.0
        } else {
            2.0 * x
        }
    },
    0.0
);

/// Names accepted by [`problem_by_name`].
pub const PROBLEM_NAMES: &[&str] = &["f1", "f2", "f3", "rosenbrock", "rastrigin", "quadratic"];

/// Build a problem by name for a given dimension (`quadratic` gets the spectrum 1, 2, …, n).
pub fn problem_by_name(name: &str, dim: usize) -> Result<Box<dyn TestFunction>> {
    let one_d = |p: Box<dyn TestFunction>| {
        if dim == 1 {
            Ok(p)
        } else {
            invalid(format!(
                "problem '{name}' is one-dimensional, but x0 has {dim} coordinates"
            ))
        }
    };
    match name {
        "f1" => one_d(Box::new(DiffGradF1)),
        "f2" => one_d(Box::new(DiffGradF2)),
        "f3" => one_d(Box::new(DiffGradF3)),
        "rosenbrock" if dim >= 2 => Ok(Box::new(Rosenbrock(dim))),
        "rosenbrock" => invalid("rosenbrock needs at least 2 coordinates"),
        "rastrigin" if dim >= 1 => Ok(Box::new(Rastrigin(dim))),
        "quadratic" if dim >= 1 => Ok(Box::new(Quadratic::diagonal(
            (1..=dim).map(|i| i as f64).collect(),
        )?)),
        _ if dim == 0 => invalid("x0 must have at least one coordinate"),
        other => invalid(format!(
            "unknown problem '{other}'; known: {}",
            PROBLEM_NAMES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_fd(p: &dyn TestFunction, x: &[f64]) {
        let g = p.gradient(x).unwrap();
        for i in 0..x.len() {
            let h = 1e-6;
            let mut a = x.to_vec();
            let mut b = x.to_vec();
            a[i] += h;
            b[i] -= h;
            let fd = (p.cost(&a).unwrap() - p.cost(&b).unwrap()) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                "{} at {x:?}: fd {fd} vs {}",
                p.name(),
                g[i]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        check_fd(&Rosenbrock(4), &[0.3, -0.2, 1.1, 0.7]);
        check_fd(&Rastrigin(3), &[0.3, -1.2, 2.05]);
        check_fd(
            &Quadratic::rotated(vec![1.0, 10.0, 100.0], 3).unwrap(),
            &[0.3, -1.2, 2.0],
        );
        for x in [-1.0, -0.7, -0.45, -0.2, 0.2, 0.45, 0.8] {
            check_fd(&DiffGradF1, &[x]);
            check_fd(&DiffGradF2, &[x]);
            check_fd(&DiffGradF3, &[x]);
        }
    }

    #[test]
    fn diffgrad_functions_are_continuous_with_stated_minima() {
        for (f, breaks) in [
            (&DiffGradF1 as &dyn TestFunction, vec![0.0]),
            // F2 as printed in the paper is not continuous at −0.9 (0.85 vs ≈0.835); no break is checked.
            (&DiffGradF2, vec![]),
            (&DiffGradF3, vec![-0.5, -0.4, 0.0, 0.4, 0.5]),
        ] {
            for b in breaks {
                assert!(
                    (f.cost(&[b]).unwrap() - f.cost(&[b + 1e-9]).unwrap()).abs() < 1e-6,
                    "{} jumps at {b}",
                    f.name()
                );
            }
            let (xm, fm) = f.global_min().unwrap();
            // The stated global minimum is the lowest value on a fine grid over [−1, 1].
            let grid_min = (0..=20000)
                .map(|i| f.cost(&[-1.0 + i as f64 * 1e-4]).unwrap())
                .fold(f64::INFINITY, f64::min);
            assert!(
                (grid_min - fm).abs() < 1e-6,
                "{}: grid {grid_min} vs {fm} at {xm:?}",
                f.name()
            );
        }
        assert!(DiffGradF2.gradient(&[-0.642_918_598_915_261_7]).unwrap()[0].abs() < 1e-9);
    }

    #[test]
    fn rotated_quadratic_has_the_chosen_spectrum() {
        let q = Quadratic::rotated(vec![1.0, 4.0, 9.0], 11).unwrap();
        let h = q.hessian(&[0.0; 3]).unwrap();
        let trace = h[0] + h[4] + h[8];
        let fro2: f64 = h.iter().map(|v| v * v).sum();
        assert!((trace - 14.0).abs() < 1e-10 && (fro2 - 98.0).abs() < 1e-9);
    }

    #[test]
    fn problems_by_name() {
        assert!(problem_by_name("f1", 1).is_ok());
        assert!(problem_by_name("f1", 2).is_err());
        assert!(problem_by_name("rosenbrock", 1).is_err());
        assert!(problem_by_name("nope", 2).is_err());
        assert_eq!(problem_by_name("rastrigin", 3).unwrap().dim(), 3);
    }

    #[test]
    fn bad_points_and_overflows_are_errors_not_nans() {
        // A point of the wrong dimension (the one-dimensional functions used to panic on an
        // empty point, the diagonal quadratic to truncate it).
        assert!(DiffGradF1.cost(&[]).is_err() && DiffGradF3.gradient(&[0.1, 0.2]).is_err());
        let q = Quadratic::diagonal(vec![1.0, 2.0]).unwrap();
        assert!(q.cost(&[1.0]).is_err() && q.hessian(&[1.0, 2.0, 3.0]).is_err());
        assert!(Rosenbrock(2).gradient(&[f64::NAN, 0.0]).is_err());
        // A finite point whose value overflows.
        assert!(Rosenbrock(2).cost(&[1e200, 0.0]).is_err());
        assert!(Rastrigin(1).gradient(&[1e300]).is_ok());
    }
}
