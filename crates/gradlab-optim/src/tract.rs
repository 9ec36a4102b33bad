//! TrAct (Petersen, Borgelt, Ermon, "TrAct: Making First-layer Pre-Activations Trainable",
//! NeurIPS 2024): the first layer's weight gradient is replaced by
//!
//! ∇W ← (AᵀA/N + λI)⁻¹ · ∇W,  with ∇W = AᵀG_z the ordinary gradient,
//!
//! where A holds the layer's N input rows (a batch for a linear layer; all unfolded patches for a
//! convolution) and λ = 0.1 by default. It is the weight update that moves the *pre-activations*
//! by a gradient step, regularised by λ. The bias gradient is unchanged. When N is smaller than the
//! input width n, the n×n system is replaced by an N×N one through the Woodbury identity,
//! (AᵀA/N + λI)⁻¹ = λ⁻¹[I − Aᵀ(NλI + AAᵀ)⁻¹A], as the official `src/tract.py` does.
//!
//! ```
//! use gradlab_optim::tract::TrAct;
//! let t = TrAct::new(0.1).unwrap();
//! // One input row a = (1, 0) (N = 1): M = aᵀa + 0.1 I = diag(1.1, 0.1).
//! let g = t.precondition(&[1.0, 0.0], 1, 2, &[1.1, 0.2], 1).unwrap();
//! assert!((g[0] - 1.0).abs() < 1e-12 && (g[1] - 2.0).abs() < 1e-12);
//! ```

use crate::error::{OptimError, Result};

/// The TrAct preconditioner with regularisation λ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrAct {
    lambda: f64,
}

/// Solve S X = B in place for a symmetric positive-definite S (m×m) and B (m×k), row-major.
fn cholesky_solve(s: &mut [f64], m: usize, b: &mut [f64], k: usize) -> Result<()> {
    for j in 0..m {
        let mut d = s[j * m + j];
        for p in 0..j {
            d -= s[j * m + p] * s[j * m + p];
        }
        if !(d > 0.0 && d.is_finite()) {
            return Err(OptimError::Failed(
                "TrAct: the regularised input Gram matrix is not positive definite (are the inputs finite?)",
            ));
        }
        let d = d.sqrt();
        s[j * m + j] = d;
        for i in j + 1..m {
            let mut v = s[i * m + j];
            for p in 0..j {
                v -= s[i * m + p] * s[j * m + p];
            }
            s[i * m + j] = v / d;
        }
    }
    for c in 0..k {
        for i in 0..m {
            let mut v = b[i * k + c];
            for p in 0..i {
                v -= s[i * m + p] * b[p * k + c];
            }
            b[i * k + c] = v / s[i * m + i];
        }
        for i in (0..m).rev() {
            let mut v = b[i * k + c];
            for p in i + 1..m {
                v -= s[p * m + i] * b[p * k + c];
            }
            b[i * k + c] = v / s[i * m + i];
        }
    }
    Ok(())
}

impl TrAct {
    /// λ > 0 (the paper's default is 0.1).
    pub fn new(lambda: f64) -> Result<Self> {
        // The preconditioner is applied to f32 gradients: outside [1e-8, 1e8] it under- or
        // overflows them (λ enters as 1/λ and next to input Gram matrices of order 1).
        if (1e-8..=1e8).contains(&lambda) {
            Ok(Self { lambda })
        } else {
            Err(OptimError::Invalid {
                name: "lambda",
                value: lambda,
                requirement: "in [1e-8, 1e8] (the paper's default is 0.1)",
            })
        }
    }

    /// λ.
    pub fn lambda(&self) -> f64 {
        self.lambda
    }

    /// (AᵀA/N + λI)⁻¹ G for inputs `a` (N×n, row-major) and a gradient `g` (n×k, row-major).
    pub fn precondition(
        &self,
        a: &[f64],
        rows: usize,
        n: usize,
        g: &[f64],
        k: usize,
    ) -> Result<Vec<f64>> {
        if a.len() != rows * n || g.len() != n * k || rows == 0 {
            return Err(OptimError::Failed(
                "TrAct: input and gradient shapes do not match",
            ));
        }
        let lam = self.lambda;
        if rows < n {
            // Woodbury: λ⁻¹[G − Aᵀ (NλI + AAᵀ)⁻¹ (A G)].
            let mut s = vec![0.0; rows * rows];
            for i in 0..rows {
                for j in 0..rows {
                    s[i * rows + j] = (0..n).map(|p| a[i * n + p] * a[j * n + p]).sum::<f64>()
                        + if i == j { rows as f64 * lam } else { 0.0 };
                }
            }
            let mut ag: Vec<f64> = (0..rows * k)
                .map(|ic| {
                    let (i, c) = (ic / k, ic % k);
                    (0..n).map(|p| a[i * n + p] * g[p * k + c]).sum()
                })
                .collect();
            cholesky_solve(&mut s, rows, &mut ag, k)?;
            Ok((0..n * k)
                .map(|pc| {
                    let (p, c) = (pc / k, pc % k);
                    (g[pc] - (0..rows).map(|i| a[i * n + p] * ag[i * k + c]).sum::<f64>()) / lam
                })
                .collect())
        } else {
            let mut s = vec![0.0; n * n];
            for p in 0..n {
                for q in 0..n {
                    s[p * n + q] = (0..rows).map(|i| a[i * n + p] * a[i * n + q]).sum::<f64>()
                        / rows as f64
                        + if p == q { lam } else { 0.0 };
                }
            }
            let mut out = g.to_vec();
            cholesky_solve(&mut s, n, &mut out, k)?;
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pseudo(n: usize, seed: u64) -> Vec<f64> {
        (0..n)
            .map(|i| (((i as u64 + 1) * 2654435761 + seed * 97) % 1000) as f64 / 250.0 - 2.0)
            .collect()
    }

    /// (AᵀA/N + λI) · result must give back G: an independent check of both code paths.
    fn residual(a: &[f64], rows: usize, n: usize, g: &[f64], k: usize, x: &[f64], lam: f64) -> f64 {
        let mut worst: f64 = 0.0;
        for p in 0..n {
            for c in 0..k {
                let mx: f64 = (0..n)
                    .map(|q| {
                        ((0..rows).map(|i| a[i * n + p] * a[i * n + q]).sum::<f64>() / rows as f64
                            + if p == q { lam } else { 0.0 })
                            * x[q * k + c]
                    })
                    .sum();
                worst = worst.max((mx - g[p * k + c]).abs());
            }
        }
        worst
    }

    #[test]
    fn both_paths_solve_the_regularised_system() {
        let t = TrAct::new(0.1).unwrap();
        for (rows, n, k) in [(3, 8, 2), (30, 8, 5), (8, 8, 3)] {
            let a = pseudo(rows * n, 1);
            let g = pseudo(n * k, 2);
            let x = t.precondition(&a, rows, n, &g, k).unwrap();
            assert!(residual(&a, rows, n, &g, k, &x, 0.1) < 1e-9, "{rows}x{n}");
        }
        assert!(TrAct::new(0.0).is_err());
        assert!(t.precondition(&[1.0], 1, 2, &[1.0, 1.0], 1).is_err());
        assert!(
            t.precondition(&[f64::NAN, 0.0], 1, 2, &[1.0, 1.0], 1)
                .is_err()
        );
    }
}
