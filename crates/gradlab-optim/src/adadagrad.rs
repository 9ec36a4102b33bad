//! AdAdaGrad and AdAdaGrad-Norm (Lau, Liu, Kolar, "AdAdaGrad: Adaptive Batch Size Schemes for
//! Adaptive Gradient Methods", arXiv 2402.11215): AdaGrad(-Norm) steps whose batch size grows
//! when the per-example gradients of the current batch are too noisy for its mean gradient ḡ.
//!
//! - Norm test: b ← max(b, ⌈Σ_j Var_i(∂_j f_i) / (η²‖ḡ‖²)⌉).
//! - Augmented inner-product test: b ← max(b, ⌈max(Var_i⟨∇f_i, ḡ⟩ / (θ²‖ḡ‖⁴),
//!   Σ_j Var_i((∇f_i)^⊥_j) / (ν²‖ḡ‖²))⌉), with ⊥ the component orthogonal to ḡ.
//!
//! Variances are unbiased (÷(b−1)) and the new size is capped at `max_batch`, as in the official
//! `tests.py` (timlautk/AdAdaGrad); the official code sums the inner-product and orthogonal
//! variances per parameter tensor, here they are taken over all parameters at once, as the paper
//! writes them. Defaults from the README: η = 0.1, θ = 0.5, ν = 1.
//!
//! AdaGrad-Norm: b_t² = b_0² + Σ_{s≤t} ‖ḡ_s‖², x ← x − α ḡ/b_t (the paper's scalar form).
//!
//! ```
//! use gradlab_optim::adadagrad::{BatchTest, PerExampleGrads};
//! // Two examples with gradients (1, 0) and (3, 0): ḡ = (2, 0), Σ Var = 2, ‖ḡ‖² = 4.
//! let g = PerExampleGrads::new(vec![1.0, 0.0, 3.0, 0.0], 2).unwrap();
//! assert_eq!(BatchTest::Norm { eta: 0.5 }.required(&g), 2); // 2 / (0.25 · 4) = 2
//! ```

use crate::error::{OptimError, Result};

/// Per-example gradients: b rows of d coordinates.
#[derive(Debug, Clone)]
pub struct PerExampleGrads {
    data: Vec<f64>,
    d: usize,
}

impl PerExampleGrads {
    /// Rows of length `d` (at least two rows, for variances).
    pub fn new(data: Vec<f64>, d: usize) -> Result<Self> {
        if d == 0 || data.len() % d != 0 || data.len() / d < 2 {
            return Err(OptimError::Conflict(
                "per-example gradients need at least two rows of equal length",
            ));
        }
        Ok(Self { data, d })
    }
    /// Number of examples.
    pub fn batch(&self) -> usize {
        self.data.len() / self.d
    }
    /// Number of coordinates d.
    pub fn dim(&self) -> usize {
        self.d
    }
    /// Example i's gradient.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
    /// Per-example clipping (DP-SGD): every row scaled to norm at most `max_norm` > 0.
    pub fn clip_rows(mut self, max_norm: f64) -> Result<Self> {
        crate::error::check_positive("clip", max_norm)?;
        self.data
            .chunks_exact_mut(self.d)
            .for_each(|row| crate::privacy::clip_to_norm(row, max_norm));
        Ok(self)
    }
    /// The mean gradient ḡ.
    pub fn mean(&self) -> Vec<f64> {
        let b = self.batch() as f64;
        (0..self.d)
            .map(|j| (0..self.batch()).map(|i| self.row(i)[j]).sum::<f64>() / b)
            .collect()
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The batch-size test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchTest {
    /// The norm test with η.
    Norm {
        /// η > 0.
        eta: f64,
    },
    /// The augmented inner-product test with θ and ν.
    InnerProduct {
        /// θ > 0.
        theta: f64,
        /// ν > 0.
        nu: f64,
    },
}

impl BatchTest {
    /// Validate the constants.
    pub fn validate(&self) -> Result<()> {
        let ok = |v: f64| v > 0.0 && v.is_finite();
        match *self {
            BatchTest::Norm { eta } if !ok(eta) => Err(OptimError::Invalid {
                name: "eta",
                value: eta,
                requirement: "> 0 and finite",
            }),
            BatchTest::InnerProduct { theta, .. } if !ok(theta) => Err(OptimError::Invalid {
                name: "theta",
                value: theta,
                requirement: "> 0 and finite",
            }),
            BatchTest::InnerProduct { nu, .. } if !ok(nu) => Err(OptimError::Invalid {
                name: "nu",
                value: nu,
                requirement: "> 0 and finite",
            }),
            _ => Ok(()),
        }
    }

    /// The batch size the test asks for (at least the current one).
    pub fn required(&self, g: &PerExampleGrads) -> usize {
        let b = g.batch();
        let bf = b as f64;
        let mean = g.mean();
        let gg = dot(&mean, &mean);
        if gg == 0.0 {
            return b;
        }
        let sq_norms: f64 = (0..b).map(|i| dot(g.row(i), g.row(i))).sum();
        // Σ_j Var_i = (Σ_i ‖g_i‖² − b‖ḡ‖²)/(b − 1).
        let var_sum = (sq_norms - bf * gg) / (bf - 1.0);
        let need = match *self {
            BatchTest::Norm { eta } => var_sum / (eta * eta * gg),
            BatchTest::InnerProduct { theta, nu } => {
                let ips: Vec<f64> = (0..b).map(|i| dot(g.row(i), &mean)).collect();
                let ip_mean = ips.iter().sum::<f64>() / bf;
                let ip_var = ips.iter().map(|v| (v - ip_mean).powi(2)).sum::<f64>() / (bf - 1.0);
                // The orthogonal parts have mean zero; Σ_j Var = Σ_i ‖g_i^⊥‖² / (b − 1).
                let ortho = (sq_norms - ips.iter().map(|v| v * v).sum::<f64>() / gg) / (bf - 1.0);
                (ip_var / (theta * theta * gg * gg)).max(ortho / (nu * nu * gg))
            }
        };
        if need.is_finite() {
            b.max(need.ceil() as usize)
        } else {
            b
        }
    }
}

/// AdaGrad-Norm's scalar step size state.
#[derive(Debug, Clone)]
pub struct AdaGradNorm {
    lr: f64,
    b_sq: f64,
}

impl AdaGradNorm {
    /// α > 0 and b₀ > 0.
    pub fn new(lr: f64, b0: f64) -> Result<Self> {
        crate::error::check_lr(lr)?;
        if !(b0 > 0.0 && b0.is_finite()) {
            return Err(OptimError::Invalid {
                name: "b0",
                value: b0,
                requirement: "> 0 and finite",
            });
        }
        Ok(Self { lr, b_sq: b0 * b0 })
    }
    /// Update `x` in place with the mean gradient `g`.
    pub fn step(&mut self, x: &mut [f64], g: &[f64]) {
        self.b_sq += dot(g, g);
        let s = self.lr / self.b_sq.sqrt();
        x.iter_mut().zip(g).for_each(|(x, g)| *x -= s * g);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(g: &PerExampleGrads) -> (f64, f64, f64) {
        // Coordinate-wise unbiased variances, summed, from the definition.
        let (b, d) = (g.batch(), g.d);
        let m = g.mean();
        let var: f64 = (0..d)
            .map(|j| (0..b).map(|i| (g.row(i)[j] - m[j]).powi(2)).sum::<f64>() / (b - 1) as f64)
            .sum();
        let gg = dot(&m, &m);
        let ips: Vec<f64> = (0..b).map(|i| dot(g.row(i), &m)).collect();
        let ipm = ips.iter().sum::<f64>() / b as f64;
        let ipv = ips.iter().map(|v| (v - ipm).powi(2)).sum::<f64>() / (b - 1) as f64;
        let orth: Vec<Vec<f64>> = (0..b)
            .map(|i| (0..d).map(|j| g.row(i)[j] - ips[i] / gg * m[j]).collect())
            .collect();
        let om: Vec<f64> = (0..d)
            .map(|j| orth.iter().map(|r| r[j]).sum::<f64>() / b as f64)
            .collect();
        let ov: f64 = (0..d)
            .map(|j| orth.iter().map(|r| (r[j] - om[j]).powi(2)).sum::<f64>() / (b - 1) as f64)
            .sum();
        (var / gg, ipv / (gg * gg), ov / gg)
    }

    #[test]
    fn tests_match_their_definitions() {
        let data: Vec<f64> = (0..5 * 4)
            .map(|i| (((i * 37) % 11) as f64 - 4.0) / 3.0 + if i % 4 == 0 { 2.0 } else { 0.0 })
            .collect();
        let g = PerExampleGrads::new(data, 4).unwrap();
        let (norm, ip, orth) = brute(&g);
        assert_eq!(
            BatchTest::Norm { eta: 0.1 }.required(&g),
            5usize.max((norm / 0.01).ceil() as usize)
        );
        let want = (ip / 0.25).max(orth / 1.0);
        assert_eq!(
            BatchTest::InnerProduct {
                theta: 0.5,
                nu: 1.0
            }
            .required(&g),
            5usize.max(want.ceil() as usize)
        );
        assert!(PerExampleGrads::new(vec![1.0, 2.0], 2).is_err());
        let clipped = PerExampleGrads::new(vec![3.0, 4.0, 0.3, 0.4], 2)
            .unwrap()
            .clip_rows(1.0)
            .unwrap();
        let m = clipped.mean();
        assert!(
            (m[0] - 0.45).abs() < 1e-15 && (m[1] - 0.6).abs() < 1e-15,
            "{m:?}"
        );
        assert!(
            PerExampleGrads::new(vec![1.0; 4], 2)
                .unwrap()
                .clip_rows(0.0)
                .is_err()
        );
        assert!(BatchTest::Norm { eta: 0.0 }.validate().is_err());
    }

    #[test]
    fn adagrad_norm_accumulates_the_squared_norm() {
        let mut a = AdaGradNorm::new(1.0, 1.0).unwrap();
        let mut x = vec![0.0, 0.0];
        a.step(&mut x, &[3.0, 4.0]);
        // b² = 1 + 25 → step 1/√26 · (3, 4).
        assert!((x[0] + 3.0 / 26f64.sqrt()).abs() < 1e-12);
        assert!(AdaGradNorm::new(1.0, 0.0).is_err());
    }
}
