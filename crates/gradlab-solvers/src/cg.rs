//! Conjugate gradients (Hestenes and Stiefel 1952) and Jacobi-preconditioned CG on a [`System`]:
//!
//! r₀ = b − Ax₀, z₀ = M⁻¹r₀, p₀ = z₀; αₖ = rₖᵀzₖ/pₖᵀApₖ, xₖ₊₁ = xₖ + αₖpₖ, rₖ₊₁ = rₖ − αₖApₖ,
//! βₖ = rₖ₊₁ᵀzₖ₊₁/rₖᵀzₖ, pₖ₊₁ = zₖ₊₁ + βₖpₖ, with M = I (CG) or M = diag A (Jacobi). It stops
//! when ‖rₖ‖ ≤ tol·‖b‖. pₖᵀApₖ ≤ 0 means A is not SPD: an error, not a silent stop.
//!
//! ```
//! use gradlab_solvers::{System, poisson::Poisson, cg::Cg};
//! use gradlab_core::solve::{solve, Silent};
//! let p = Poisson::square(8).unwrap();
//! let sys = System::new(p.a.clone(), vec![1.0; 64]).unwrap();
//! let (st, rep) = solve(&mut Cg::new(1e-10, false).unwrap(), &sys, &vec![0.0; 64], 200, &mut Silent).unwrap();
//! assert!(rep.converged && sys.residual_norm(&st.x) <= 1e-10 * 8.0);
//! ```

use crate::{Result, SolverError, System, dot, norm};
use gradlab_core::solve::{Iteration, Solver};

/// CG or Jacobi-PCG with a relative tolerance.
#[derive(Debug, Clone)]
pub struct Cg {
    tol: f64,
    jacobi: bool,
    target: f64,
}

impl Cg {
    /// Stop at ‖r‖ ≤ `tol`·‖b‖; `jacobi` preconditions with diag A.
    pub fn new(tol: f64, jacobi: bool) -> Result<Self> {
        if tol.is_nan() || tol <= 0.0 || tol.is_infinite() {
            return Err(SolverError::Invalid {
                what: "tolerance",
                why: format!("{tol} (must be positive)"),
            });
        }
        Ok(Self {
            tol,
            jacobi,
            target: 0.0,
        })
    }
}

/// The iterate and what CG carries.
#[derive(Debug, Clone)]
pub struct CgState {
    /// x.
    pub x: Vec<f64>,
    r: Vec<f64>,
    z: Vec<f64>,
    p: Vec<f64>,
    rz: f64,
    inv_diag: Vec<f64>,
    /// ‖r‖ after each iteration (‖r₀‖ first).
    pub history: Vec<f64>,
    /// Matrix–vector products so far.
    pub products: usize,
}

impl Solver<System> for Cg {
    type State = CgState;
    type Error = SolverError;
    fn init(&mut self, sys: &System, x0: &[f64]) -> Result<CgState> {
        gradlab_core::problem::check_point(sys, x0)?;
        let inv_diag: Vec<f64> = if self.jacobi {
            sys.a
                .diagonal()
                .iter()
                .map(|d| {
                    if *d > 0.0 {
                        Ok(1.0 / d)
                    } else {
                        Err(SolverError::NotSpd(format!("a diagonal entry is {d}")))
                    }
                })
                .collect::<Result<_>>()?
        } else {
            vec![]
        };
        let ax = sys.a.mul(x0);
        let r: Vec<f64> = sys.b.iter().zip(&ax).map(|(b, a)| b - a).collect();
        let z = if self.jacobi {
            r.iter().zip(&inv_diag).map(|(r, d)| r * d).collect()
        } else {
            r.clone()
        };
        self.target = self.tol * norm(&sys.b);
        let rz = dot(&r, &z);
        let rn = norm(&r);
        Ok(CgState {
            x: x0.to_vec(),
            p: z.clone(),
            z,
            r,
            rz,
            inv_diag,
            history: vec![rn],
            products: 1,
        })
    }
    fn converged(&self, st: &CgState) -> bool {
        st.history.last().is_some_and(|r| *r <= self.target)
    }
    fn step(&mut self, sys: &System, st: &mut CgState) -> Result<()> {
        let ap = sys.a.mul(&st.p);
        st.products += 1;
        let pap = dot(&st.p, &ap);
        if pap.is_nan() || pap <= 0.0 {
            return Err(SolverError::NotSpd(format!(
                "pᵀAp = {pap:e} at iteration {}",
                st.history.len()
            )));
        }
        let alpha = st.rz / pap;
        st.x.iter_mut()
            .zip(&st.p)
            .for_each(|(x, p)| *x += alpha * p);
        st.r.iter_mut().zip(&ap).for_each(|(r, a)| *r -= alpha * a);
        st.z = if self.jacobi {
            st.r.iter().zip(&st.inv_diag).map(|(r, d)| r * d).collect()
        } else {
            st.r.clone()
        };
        let rz = dot(&st.r, &st.z);
        let beta = rz / st.rz;
        st.rz = rz;
        st.p.iter_mut()
            .zip(&st.z)
            .for_each(|(p, z)| *p = z + beta * *p);
        let rn = norm(&st.r);
        if !rn.is_finite() {
            return Err(SolverError::NonFinite("residual".into()));
        }
        st.history.push(rn);
        Ok(())
    }
    fn iteration<'a>(&self, st: &'a CgState) -> Iteration<'a> {
        let mut it = Iteration::at(&st.x);
        it.grad_norm = st.history.last().copied();
        it.work = st.products;
        it
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Csr;
    use gradlab_core::solve::{Silent, solve};

    #[test]
    fn cg_solves_in_at_most_n_steps_and_refuses_an_indefinite_matrix() {
        // A 5 × 5 SPD tridiagonal system: exact solution, ≤ 5 iterations in exact arithmetic.
        let t: Vec<(usize, usize, f64)> = (0..5)
            .flat_map(|i| {
                let mut v = vec![(i, i, 3.0 + i as f64)];
                if i > 0 {
                    v.push((i, i - 1, -1.0));
                    v.push((i - 1, i, -1.0));
                }
                v
            })
            .collect();
        let a = Csr::from_triplets(5, &t).unwrap();
        let x_true = [1.0, -2.0, 0.5, 3.0, -1.0];
        let sys = System::new(a.clone(), a.mul(&x_true)).unwrap();
        for jacobi in [false, true] {
            let (st, rep) = solve(
                &mut Cg::new(1e-12, jacobi).unwrap(),
                &sys,
                &[0.0; 5],
                50,
                &mut Silent,
            )
            .unwrap();
            assert!(rep.converged && rep.iterations <= 6, "{rep:?}");
            assert!(st.x.iter().zip(&x_true).all(|(a, b)| (a - b).abs() < 1e-10));
        }
        let bad =
            Csr::from_triplets(2, &[(0, 0, 1.0), (0, 1, 2.0), (1, 0, 2.0), (1, 1, 1.0)]).unwrap();
        let sys = System::new(bad, vec![1.0, -1.0]).unwrap();
        assert!(matches!(
            solve(
                &mut Cg::new(1e-10, false).unwrap(),
                &sys,
                &[0.0; 2],
                10,
                &mut Silent
            ),
            Err(SolverError::NotSpd(_))
        ));
        assert!(Cg::new(0.0, false).is_err());
    }
}
