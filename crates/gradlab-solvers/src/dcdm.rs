//! The deep conjugate direction method (Kaneda, Akar, Chen, Kala, Hyde and Teran, "A Deep
//! Conjugate Direction Method for Iteratively Solving Linear Systems", ICML 2023), as the official
//! `ConjugateGradientSparse.dcdm`:
//!
//! r₀ = b − Ax₀; p₋₁ = p₋₂ = 0, α₋₁ = α₋₂ = 1; each iteration
//! q = f(r/‖r‖), q ← q − p₁(qᵀAp₁)/α₁ − p₀(qᵀAp₀)/α₀ (A-orthogonal to the two latest directions),
//! (p₀, p₁) ← (p₁, q), α₁ = qᵀAq, x ← x + q(qᵀr)/α₁, r ← b − Ax (recomputed, not updated);
//! it stops when ‖r‖ ≤ tol·‖r₀‖ (the official's relative tolerance, on r₀).
//!
//! f approximates A⁻¹ up to scale: a trained network ([`crate::dcdm_net`]), or for reference the
//! exact inverse (one iteration) or the identity (CG's directions, up to rounding).

use crate::{Result, SolverError, System, dot, norm};
use gradlab_core::solve::{Iteration, Solver};

/// The search-direction model f.
pub trait Directions {
    /// A direction for the normalised residual `r` (an unknown vector of the system).
    fn direction(&self, r: &[f64]) -> Result<Vec<f64>>;
}

/// f = I: DCDM then follows CG.
pub struct Identity;

impl Directions for Identity {
    fn direction(&self, r: &[f64]) -> Result<Vec<f64>> {
        Ok(r.to_vec())
    }
}

/// f = A⁻¹ from a dense Cholesky factorisation (tiny systems, for reference).
pub struct DenseInverse {
    n: usize,
    l: Vec<f64>,
}

impl DenseInverse {
    /// Factor A; an error if it is not SPD.
    pub fn new(a: &crate::Csr) -> Result<Self> {
        let n = a.n();
        let d = a.to_dense();
        let mut l = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
                if i == j {
                    let v = d[i * n + i] - s;
                    if v <= 0.0 {
                        return Err(SolverError::NotSpd(format!("Cholesky pivot {i} is {v:e}")));
                    }
                    l[i * n + i] = v.sqrt();
                } else {
                    l[i * n + j] = (d[i * n + j] - s) / l[j * n + j];
                }
            }
        }
        Ok(Self { n, l })
    }
}

impl Directions for DenseInverse {
    fn direction(&self, r: &[f64]) -> Result<Vec<f64>> {
        let n = self.n;
        let mut y = vec![0.0; n];
        for i in 0..n {
            y[i] =
                (r[i] - (0..i).map(|k| self.l[i * n + k] * y[k]).sum::<f64>()) / self.l[i * n + i];
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            x[i] = (y[i] - (i + 1..n).map(|k| self.l[k * n + i] * x[k]).sum::<f64>())
                / self.l[i * n + i];
        }
        Ok(x)
    }
}

/// DCDM with a direction model.
pub struct Dcdm<'m> {
    model: &'m dyn Directions,
    tol: f64,
    target: f64,
}

impl<'m> Dcdm<'m> {
    /// Stop at ‖r‖ ≤ `tol`·‖r₀‖.
    pub fn new(model: &'m dyn Directions, tol: f64) -> Result<Self> {
        if tol.is_nan() || tol <= 0.0 || tol.is_infinite() {
            return Err(SolverError::Invalid {
                what: "tolerance",
                why: format!("{tol} (must be positive)"),
            });
        }
        Ok(Self {
            model,
            tol,
            target: 0.0,
        })
    }
}

/// The iterate and the two latest directions.
#[derive(Debug, Clone)]
pub struct DcdmState {
    /// x.
    pub x: Vec<f64>,
    r: Vec<f64>,
    p: [Vec<f64>; 2],
    ap: [Vec<f64>; 2],
    alpha: [f64; 2],
    /// ‖r‖ after each iteration (‖r₀‖ first).
    pub history: Vec<f64>,
    /// Matrix–vector products so far.
    pub products: usize,
}

impl Solver<System> for Dcdm<'_> {
    type State = DcdmState;
    type Error = SolverError;
    fn init(&mut self, sys: &System, x0: &[f64]) -> Result<DcdmState> {
        gradlab_core::problem::check_point(sys, x0)?;
        let ax = sys.a.mul(x0);
        let r: Vec<f64> = sys.b.iter().zip(&ax).map(|(b, a)| b - a).collect();
        let rn = norm(&r);
        self.target = self.tol * rn;
        let z = vec![0.0; x0.len()];
        Ok(DcdmState {
            x: x0.to_vec(),
            r,
            p: [z.clone(), z.clone()],
            ap: [z.clone(), z],
            alpha: [1.0, 1.0],
            history: vec![rn],
            products: 1,
        })
    }
    fn converged(&self, st: &DcdmState) -> bool {
        st.history.last().is_some_and(|r| *r <= self.target)
    }
    fn step(&mut self, sys: &System, st: &mut DcdmState) -> Result<()> {
        let rn = norm(&st.r);
        let unit: Vec<f64> = st.r.iter().map(|v| v / rn).collect();
        let mut q = self.model.direction(&unit)?;
        if q.len() != unit.len() || !q.iter().all(|v| v.is_finite()) {
            return Err(SolverError::NonFinite(format!(
                "direction from the model (length {})",
                q.len()
            )));
        }
        let c1 = dot(&q, &st.ap[1]) / st.alpha[1];
        let c0 = dot(&q, &st.ap[0]) / st.alpha[0];
        for ((q, p1), p0) in q.iter_mut().zip(&st.p[1]).zip(&st.p[0]) {
            *q -= c1 * p1 + c0 * p0;
        }
        let aq = sys.a.mul(&q);
        let alpha = dot(&q, &aq);
        if alpha.is_nan() || alpha <= 0.0 {
            return Err(SolverError::NotSpd(format!(
                "qᵀAq = {alpha:e} at iteration {} (a zero direction, or A is not SPD)",
                st.history.len()
            )));
        }
        let step = dot(&q, &st.r) / alpha;
        st.x.iter_mut().zip(&q).for_each(|(x, q)| *x += step * q);
        st.p.swap(0, 1);
        st.ap.swap(0, 1);
        st.alpha.swap(0, 1);
        st.p[1] = q;
        st.ap[1] = aq;
        st.alpha[1] = alpha;
        let ax = sys.a.mul(&st.x);
        st.products += 2;
        st.r = sys.b.iter().zip(&ax).map(|(b, a)| b - a).collect();
        let rn = norm(&st.r);
        if !rn.is_finite() {
            return Err(SolverError::NonFinite("residual".into()));
        }
        st.history.push(rn);
        Ok(())
    }
    fn iteration<'a>(&self, st: &'a DcdmState) -> Iteration<'a> {
        let mut it = Iteration::at(&st.x);
        it.grad_norm = st.history.last().copied();
        it.work = st.products;
        it
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cg::Cg;
    use crate::poisson::Poisson;
    use gradlab_core::solve::{Control, Silent, solve};

    fn system() -> System {
        let p = Poisson::with_disc(6, 0.4, 0.6, 0.2).unwrap();
        let b: Vec<f64> = (0..p.a.n()).map(|i| ((i * 7) % 5) as f64 - 2.0).collect();
        System::new(p.a, b).unwrap()
    }

    #[test]
    fn with_the_exact_inverse_it_converges_in_one_iteration() {
        let sys = system();
        let inv = DenseInverse::new(&sys.a).unwrap();
        let (st, rep) = solve(
            &mut Dcdm::new(&inv, 1e-10).unwrap(),
            &sys,
            &vec![0.0; sys.a.n()],
            10,
            &mut Silent,
        )
        .unwrap();
        assert_eq!(rep.iterations, 1);
        assert!(rep.converged && sys.residual_norm(&st.x) < 1e-10 * norm(&sys.b));
    }

    #[test]
    fn with_the_identity_it_follows_cg() {
        let sys = system();
        let n = sys.a.n();
        let mut cg_x = vec![];
        solve(
            &mut Cg::new(1e-14, false).unwrap(),
            &sys,
            &vec![0.0; n],
            6,
            &mut |it: &Iteration| {
                cg_x.push(it.x.to_vec());
                Control::Continue
            },
        )
        .unwrap();
        let mut dc_x = vec![];
        solve(
            &mut Dcdm::new(&Identity, 1e-14).unwrap(),
            &sys,
            &vec![0.0; n],
            6,
            &mut |it: &Iteration| {
                dc_x.push(it.x.to_vec());
                Control::Continue
            },
        )
        .unwrap();
        for (k, (a, b)) in cg_x.iter().zip(&dc_x).enumerate() {
            let d = a
                .iter()
                .zip(b)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(d < 1e-9, "iterate {k}: CG and DCDM(I) differ by {d:e}");
        }
        assert_eq!(dc_x.len(), 7);
    }

    #[test]
    fn a_zero_direction_is_an_error() {
        struct Zero;
        impl Directions for Zero {
            fn direction(&self, r: &[f64]) -> Result<Vec<f64>> {
                Ok(vec![0.0; r.len()])
            }
        }
        let sys = system();
        assert!(
            solve(
                &mut Dcdm::new(&Zero, 1e-6).unwrap(),
                &sys,
                &vec![0.0; sys.a.n()],
                5,
                &mut Silent
            )
            .is_err()
        );
    }
}
