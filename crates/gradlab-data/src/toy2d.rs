//! Two-dimensional toy distributions used by the generative-model papers.
//!
//! Conventions follow the toy data of FFJORD / score-SDE notebooks (scale of a few units around
//! the origin). Where a closed-form density exists ([`Toy2d::EightGaussians`], [`Toy2d::Gmm`],
//! [`Toy2d::Checkerboard`]) [`Toy2d::log_density`] returns it exactly; otherwise it returns `None`.
//!
//! ```
//! use gradlab_data::toy2d::Toy2d;
//! let pts = Toy2d::EightGaussians.sample(1000, 7);
//! assert_eq!(pts.len(), 1000);
//! assert!(Toy2d::EightGaussians.log_density(pts[0]).unwrap().is_finite());
//! ```

use crate::error::{Result, invalid};
use rand::prelude::*;
use rand_distr::StandardNormal;
use std::f64::consts::PI;
use std::str::FromStr;

/// A mixture of 2D Gaussians with arbitrary means, covariances and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Gmm2 {
    weights: Vec<f64>,
    means: Vec<[f64; 2]>,
    covs: Vec<[[f64; 2]; 2]>,
}

impl Gmm2 {
    /// Build a mixture; weights are normalised, covariances must be symmetric positive definite.
    pub fn new(weights: Vec<f64>, means: Vec<[f64; 2]>, covs: Vec<[[f64; 2]; 2]>) -> Result<Self> {
        if weights.is_empty() || weights.len() != means.len() || weights.len() != covs.len() {
            return invalid(
                "a GMM needs the same positive number of weights, means and covariances",
            );
        }
        if weights.iter().any(|w| !(w.is_finite() && *w > 0.0)) {
            return invalid("GMM weights must be positive and finite");
        }
        for c in &covs {
            let det = c[0][0] * c[1][1] - c[0][1] * c[1][0];
            if (c[0][1] - c[1][0]).abs() > 1e-12 || c[0][0] <= 0.0 || det <= 0.0 {
                return invalid(format!(
                    "GMM covariance {c:?} is not symmetric positive definite"
                ));
            }
        }
        let total: f64 = weights.iter().sum();
        Ok(Self {
            weights: weights.iter().map(|w| w / total).collect(),
            means,
            covs,
        })
    }

    /// Isotropic mixture: equal weights, covariance `std² I`.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn isotropic(means: Vec<[f64; 2]>, std: f64) -> Result<Self> {
        if !(std > 0.0) {
            return invalid("GMM standard deviation must be positive");
        }
        let k = means.len();
        let c = [[std * std, 0.0], [0.0, std * std]];
        Self::new(vec![1.0; k], means, vec![c; k])
    }

    /// Mixture weights (normalised).
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }
    /// Component means.
    pub fn means(&self) -> &[[f64; 2]] {
        &self.means
    }
    /// Component covariances.
    pub fn covs(&self) -> &[[[f64; 2]; 2]] {
        &self.covs
    }

    /// Draw `n` points with a seed.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<[f64; 2]> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| self.sample_one(&mut rng)).collect()
    }

    fn sample_one(&self, rng: &mut StdRng) -> [f64; 2] {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let mut k = self.weights.len() - 1;
        for (i, w) in self.weights.iter().enumerate() {
            acc += w;
            if u < acc {
                k = i;
                break;
            }
        }
        let c = self.covs[k];
        // Cholesky factor of a 2x2 SPD matrix.
        let l11 = c[0][0].sqrt();
        let l21 = c[1][0] / l11;
        let l22 = (c[1][1] - l21 * l21).sqrt();
        let z0: f64 = rng.sample(StandardNormal);
        let z1: f64 = rng.sample(StandardNormal);
        [
            self.means[k][0] + l11 * z0,
            self.means[k][1] + l21 * z0 + l22 * z1,
        ]
    }

    /// Exact log-density at `x`.
    pub fn log_density(&self, x: [f64; 2]) -> f64 {
        let terms: Vec<f64> = (0..self.weights.len())
            .map(|k| {
                let c = self.covs[k];
                let det = c[0][0] * c[1][1] - c[0][1] * c[1][0];
                let d = [x[0] - self.means[k][0], x[1] - self.means[k][1]];
                let q = (c[1][1] * d[0] * d[0] - 2.0 * c[0][1] * d[0] * d[1]
                    + c[0][0] * d[1] * d[1])
                    / det;
                self.weights[k].ln() - (2.0 * PI).ln() - 0.5 * det.ln() - 0.5 * q
            })
            .collect();
        log_sum_exp(&terms)
    }

    /// Exact score ∇ log p(x).
    pub fn score(&self, x: [f64; 2]) -> [f64; 2] {
        let lp = self.log_density(x);
        let mut s = [0.0; 2];
        for k in 0..self.weights.len() {
            let c = self.covs[k];
            let det = c[0][0] * c[1][1] - c[0][1] * c[1][0];
            let d = [x[0] - self.means[k][0], x[1] - self.means[k][1]];
            let inv_d = [
                (c[1][1] * d[0] - c[0][1] * d[1]) / det,
                (-c[1][0] * d[0] + c[0][0] * d[1]) / det,
            ];
            let q = d[0] * inv_d[0] + d[1] * inv_d[1];
            let log_comp = self.weights[k].ln() - (2.0 * PI).ln() - 0.5 * det.ln() - 0.5 * q;
            let r = (log_comp - lp).exp();
            s[0] -= r * inv_d[0];
            s[1] -= r * inv_d[1];
        }
        s
    }
}

/// Numerically stable log Σ exp.
pub fn log_sum_exp(xs: &[f64]) -> f64 {
    let m = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + xs.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// The toy distributions.
#[derive(Debug, Clone, PartialEq)]
pub enum Toy2d {
    /// Eight Gaussians on a circle of radius 2√2, std 0.5/√2 (FFJORD's `8gaussians`).
    EightGaussians,
    /// Any Gaussian mixture.
    Gmm(Gmm2),
    /// Two interleaved half circles, noise std 0.1, scaled by 2.
    TwoMoons,
    /// Two interleaved spirals.
    TwoSpirals,
    /// Uniform on 8 squares of a 4×4 checkerboard on [−4, 4]²: density 1/32 on the support.
    Checkerboard,
    /// The 2D swiss roll (x and z of the 3D roll, divided by 5).
    SwissRoll,
    /// Five-armed pinwheel.
    Pinwheel,
    /// Two concentric circles (radii 3 and 1.5) with noise 0.08·3.
    Circles,
}

/// Names accepted by [`Toy2d::from_str`].
pub const TOY2D_NAMES: &[&str] = &[
    "8gaussians",
    "moons",
    "spirals",
    "checkerboard",
    "swissroll",
    "pinwheel",
    "circles",
];

impl FromStr for Toy2d {
    type Err = crate::DataError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "8gaussians" | "eight-gaussians" => Toy2d::EightGaussians,
            "moons" | "two-moons" => Toy2d::TwoMoons,
            "spirals" | "two-spirals" => Toy2d::TwoSpirals,
            "checkerboard" => Toy2d::Checkerboard,
            "swissroll" | "swiss-roll" => Toy2d::SwissRoll,
            "pinwheel" => Toy2d::Pinwheel,
            "circles" => Toy2d::Circles,
            other => {
                return invalid(format!(
                    "unknown 2D data set '{other}'; known: {}",
                    TOY2D_NAMES.join(", ")
                ));
            }
        })
    }
}

impl Toy2d {
    /// The eight-Gaussians mixture as an explicit [`Gmm2`].
    pub fn eight_gaussians_gmm() -> Gmm2 {
        let s = 1.0 / 2f64.sqrt();
        let centers = [
            [1.0, 0.0],
            [-1.0, 0.0],
            [0.0, 1.0],
            [0.0, -1.0],
            [s, s],
            [s, -s],
            [-s, s],
            [-s, -s],
        ];
        let means = centers
            .iter()
            .map(|c| [4.0 * c[0] / 1.414, 4.0 * c[1] / 1.414])
            .collect();
        Gmm2::isotropic(means, 0.5 / 1.414).expect("valid constant mixture")
    }

    /// Draw `n` points with a seed; the same seed gives the same points.
    pub fn sample(&self, n: usize, seed: u64) -> Vec<[f64; 2]> {
        let mut rng = StdRng::seed_from_u64(seed);
        match self {
            Toy2d::EightGaussians => Self::eight_gaussians_gmm().sample(n, seed),
            Toy2d::Gmm(g) => g.sample(n, seed),
            Toy2d::TwoMoons => (0..n)
                .map(|i| {
                    let t = PI * rng.random::<f64>();
                    let (x, y) = if i % 2 == 0 {
                        (t.cos(), t.sin())
                    } else {
                        (1.0 - t.cos(), 0.5 - t.sin())
                    };
                    let nx: f64 = rng.sample(StandardNormal);
                    let ny: f64 = rng.sample(StandardNormal);
                    [2.0 * (x + 0.1 * nx) - 1.0, 2.0 * (y + 0.1 * ny) - 0.2]
                })
                .collect(),
            Toy2d::TwoSpirals => (0..n)
                .map(|i| {
                    let r = rng.random::<f64>().sqrt() * 540.0 * 2.0 * PI / 360.0;
                    let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                    let x = sign * (-r.cos() * r + rng.random::<f64>() * 0.5);
                    let y = sign * (r.sin() * r + rng.random::<f64>() * 0.5);
                    let nx: f64 = rng.sample(StandardNormal);
                    let ny: f64 = rng.sample(StandardNormal);
                    [(x + 0.1 * nx) / 3.0, (y + 0.1 * ny) / 3.0]
                })
                .collect(),
            Toy2d::Checkerboard => (0..n)
                .map(|_| {
                    let x1 = rng.random::<f64>() * 4.0 - 2.0;
                    let x2 = rng.random::<f64>() - 2.0 * f64::from(rng.random_range(0..2u8));
                    let x2 = x2 + (x1.floor().rem_euclid(2.0));
                    [2.0 * x1, 2.0 * x2]
                })
                .collect(),
            Toy2d::SwissRoll => (0..n)
                .map(|_| {
                    let t = 1.5 * PI * (1.0 + 2.0 * rng.random::<f64>());
                    let nx: f64 = rng.sample(StandardNormal);
                    let nz: f64 = rng.sample(StandardNormal);
                    [(t * t.cos() + nx) / 5.0, (t * t.sin() + nz) / 5.0]
                })
                .collect(),
            Toy2d::Pinwheel => (0..n)
                .map(|i| {
                    let k = (i % 5) as f64;
                    let a: f64 = rng.sample(StandardNormal);
                    let b: f64 = rng.sample(StandardNormal);
                    let (f0, f1) = (a * 0.3 + 1.0, b * 0.1);
                    let ang = k * 2.0 * PI / 5.0 + 0.25 * f0.exp();
                    [
                        2.0 * (f0 * ang.cos() - f1 * ang.sin()),
                        2.0 * (f0 * ang.sin() + f1 * ang.cos()),
                    ]
                })
                .collect(),
            Toy2d::Circles => (0..n)
                .map(|i| {
                    let t = 2.0 * PI * rng.random::<f64>();
                    let r = if i % 2 == 0 { 1.0 } else { 0.5 };
                    let nx: f64 = rng.sample(StandardNormal);
                    let ny: f64 = rng.sample(StandardNormal);
                    [
                        3.0 * (r * t.cos() + 0.08 * nx),
                        3.0 * (r * t.sin() + 0.08 * ny),
                    ]
                })
                .collect(),
        }
    }

    /// Exact log-density where it exists in closed form; `None` otherwise.
    pub fn log_density(&self, x: [f64; 2]) -> Option<f64> {
        match self {
            Toy2d::EightGaussians => Some(Self::eight_gaussians_gmm().log_density(x)),
            Toy2d::Gmm(g) => Some(g.log_density(x)),
            Toy2d::Checkerboard => {
                let inside = x.iter().all(|v| (-4.0..4.0).contains(v));
                let on_black =
                    (x[0] / 2.0).floor().rem_euclid(2.0) == (x[1] / 2.0).floor().rem_euclid(2.0);
                Some(if inside && on_black {
                    (1.0f64 / 32.0).ln()
                } else {
                    f64::NEG_INFINITY
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_cov(p: &[[f64; 2]]) -> ([f64; 2], [[f64; 2]; 2]) {
        let n = p.len() as f64;
        let m = [
            p.iter().map(|x| x[0]).sum::<f64>() / n,
            p.iter().map(|x| x[1]).sum::<f64>() / n,
        ];
        let mut c = [[0.0; 2]; 2];
        for x in p {
            for i in 0..2 {
                for j in 0..2 {
                    c[i][j] += (x[i] - m[i]) * (x[j] - m[j]) / n;
                }
            }
        }
        (m, c)
    }

    #[test]
    fn gmm_samples_match_mixture_moments() {
        let g = Gmm2::new(
            vec![1.0, 3.0],
            vec![[-2.0, 0.0], [1.0, 1.0]],
            vec![[[0.5, 0.2], [0.2, 0.3]], [[0.1, 0.0], [0.0, 0.4]]],
        )
        .unwrap();
        let (m, c) = mean_cov(&g.sample(200_000, 1));
        // Mixture mean = Σ w μ; covariance = Σ w (Σ_k + μμᵀ) − mmᵀ.
        let em = [0.25 * -2.0 + 0.75 * 1.0, 0.75 * 1.0];
        assert!(
            (m[0] - em[0]).abs() < 0.01 && (m[1] - em[1]).abs() < 0.01,
            "{m:?}"
        );
        let e00 = 0.25 * (0.5 + 4.0) + 0.75 * (0.1 + 1.0) - em[0] * em[0];
        let e01 = 0.25 * (0.2 + 0.0) + 0.75 * (0.0 + 1.0) - em[0] * em[1];
        assert!(
            (c[0][0] - e00).abs() < 0.02 && (c[0][1] - e01).abs() < 0.02,
            "{c:?}"
        );
    }

    #[test]
    fn densities_integrate_to_one() {
        for d in [Toy2d::EightGaussians, Toy2d::Checkerboard] {
            let h = 0.02;
            let mut total = 0.0;
            let mut x = -6.0;
            while x < 6.0 {
                let mut y = -6.0;
                while y < 6.0 {
                    total += d.log_density([x + h / 2.0, y + h / 2.0]).unwrap().exp() * h * h;
                    y += h;
                }
                x += h;
            }
            assert!((total - 1.0).abs() < 1e-3, "{d:?} integrates to {total}");
        }
    }

    #[test]
    fn checkerboard_samples_lie_on_support() {
        for p in Toy2d::Checkerboard.sample(5000, 3) {
            assert!(
                Toy2d::Checkerboard.log_density(p).unwrap().is_finite(),
                "{p:?}"
            );
        }
    }

    #[test]
    fn gmm_score_matches_finite_differences() {
        let g = Toy2d::eight_gaussians_gmm();
        for x in [[0.3, -1.2], [2.0, 2.0], [-1.0, 0.5]] {
            let s = g.score(x);
            let h = 1e-5;
            let fd0 =
                (g.log_density([x[0] + h, x[1]]) - g.log_density([x[0] - h, x[1]])) / (2.0 * h);
            let fd1 =
                (g.log_density([x[0], x[1] + h]) - g.log_density([x[0], x[1] - h])) / (2.0 * h);
            assert!(
                (s[0] - fd0).abs() < 1e-5 * (1.0 + fd0.abs())
                    && (s[1] - fd1).abs() < 1e-5 * (1.0 + fd1.abs())
            );
        }
    }

    #[test]
    fn same_seed_same_points_and_all_sets_sample() {
        for name in TOY2D_NAMES {
            let d: Toy2d = name.parse().unwrap();
            let a = d.sample(100, 5);
            assert_eq!(a, d.sample(100, 5));
            assert_ne!(a, d.sample(100, 6));
            assert!(a.iter().all(|p| p[0].is_finite() && p[1].abs() < 20.0));
        }
        assert!("nope".parse::<Toy2d>().is_err());
    }

    #[test]
    fn invalid_gmm_is_rejected() {
        assert!(Gmm2::new(vec![1.0], vec![[0.0, 0.0]], vec![[[1.0, 2.0], [2.0, 1.0]]]).is_err());
        assert!(Gmm2::new(vec![-1.0], vec![[0.0, 0.0]], vec![[[1.0, 0.0], [0.0, 1.0]]]).is_err());
        assert!(Gmm2::isotropic(vec![[0.0, 0.0]], 0.0).is_err());
    }
}
