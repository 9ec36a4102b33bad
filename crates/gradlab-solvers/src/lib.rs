//! # gradlab-solvers
//!
//! Sparse symmetric positive definite systems A x = b and iterative solvers for them:
//!
//! - [`csr`]: compressed sparse rows (only the products and checks the solvers need; a
//!   general-purpose sparse crate would add a large build for one matrix–vector product);
//! - [`poisson`]: the 2-D Poisson equation on an n × n grid with Dirichlet boundaries and solid
//!   obstacles (Neumann walls), its eigenvectors where they are known in closed form;
//! - [`mtx`]: Matrix Market files (coordinate, real or integer, general or symmetric) and
//!   right-hand sides, with errors that name the line;
//! - [`cg`]: conjugate gradients, plain and Jacobi-preconditioned, with residual histories;
//! - [`dcdm`]: the deep conjugate direction method (Kaneda et al., ICML 2023), the solver that
//!   A-orthogonalises each network direction against the previous two, and [`dcdm_net`], its
//!   convolutional network trained with the scale-invariant loss.
//!
//! The solvers are [`gradlab_core::solve::Solver`]s over a [`System`]: `solve` runs them and
//! observers see every iterate (residual norms in `Iteration::grad_norm`).

pub mod cg;
pub mod csr;
pub mod dcdm;
pub mod dcdm_net;
pub mod mtx;
pub mod poisson;

pub use csr::Csr;

/// Why a solver or a system could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SolverError {
    /// A malformed matrix or vector file, with the line.
    #[error("{path}, line {line}: {why}")]
    Parse {
        /// The file.
        path: String,
        /// The line (1-based; 0 when the file itself is the problem).
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// Shapes that do not fit.
    #[error("{what}: {got} where {expected} is needed")]
    Shape {
        /// What it was.
        what: String,
        /// Needed.
        expected: String,
        /// Given.
        got: String,
    },
    /// The matrix is not symmetric positive definite (found by a check or by a solver).
    #[error("the matrix is not symmetric positive definite: {0}")]
    NotSpd(String),
    /// An invalid setting.
    #[error("invalid {what}: {why}")]
    Invalid {
        /// The setting.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// A non-finite value.
    #[error("non-finite {0}")]
    NonFinite(String),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// From the solve loop, the bridge or the network.
    #[error(transparent)]
    Core(#[from] gradlab_core::CoreError),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, SolverError>;

/// A linear system A x = b: what the solvers run on.
#[derive(Debug, Clone)]
pub struct System {
    /// A (square, symmetric positive definite for these solvers).
    pub a: Csr,
    /// b.
    pub b: Vec<f64>,
}

impl System {
    /// A system; an error when b does not fit A or is not finite.
    pub fn new(a: Csr, b: Vec<f64>) -> Result<Self> {
        if b.len() != a.n() {
            return Err(SolverError::Shape {
                what: "right-hand side".into(),
                expected: format!("{} values (A is {0} × {0})", a.n()),
                got: b.len().to_string(),
            });
        }
        if !b.iter().all(|v| v.is_finite()) {
            return Err(SolverError::NonFinite("right-hand side".into()));
        }
        Ok(Self { a, b })
    }

    /// ‖b − A x‖.
    pub fn residual_norm(&self, x: &[f64]) -> f64 {
        let ax = self.a.mul(x);
        self.b
            .iter()
            .zip(&ax)
            .map(|(b, a)| (b - a) * (b - a))
            .sum::<f64>()
            .sqrt()
    }
}

impl gradlab_core::problem::Problem for System {
    fn dim(&self) -> usize {
        self.a.n()
    }
}

/// u·v.
pub fn dot(u: &[f64], v: &[f64]) -> f64 {
    u.iter().zip(v).map(|(a, b)| a * b).sum()
}

/// ‖v‖₂.
pub fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}
