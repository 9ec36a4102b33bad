//! Distances between two samples of points:
//!
//! - sliced Wasserstein-2: √(mean over random unit directions θ of W₂²(θᵀX, θᵀY)), each 1D W₂
//!   from sorted projections (the samples are cut to the smaller size);
//! - MMD² with a sum of Gaussian kernels k(x, y) = Σ_b exp(−‖x − y‖²/(2b²)) over bandwidths b
//!   (the biased V-statistic, ≥ 0);
//! - energy distance 2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ (≥ 0, zero iff the laws agree).
//!
//! ```
//! use gradlab_generative::{Batch, metrics::sliced_wasserstein};
//! let x = Batch::new(3, 1, vec![0.0, 1.0, 2.0]).unwrap();
//! let y = Batch::new(3, 1, vec![1.0, 2.0, 3.0]).unwrap();
//! // A shift by 1 in 1D: W₂ = 1 along every direction (±1).
//! assert!((sliced_wasserstein(&x, &y, 10, 0).unwrap() - 1.0).abs() < 1e-12);
//! ```

use crate::{Batch, Result, invalid};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// The bandwidths [`mmd`] uses by default.
pub const MMD_BANDWIDTHS: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

fn check(x: &Batch, y: &Batch) -> Result<()> {
    if x.d != y.d {
        return invalid(format!(
            "samples of dimensions {} and {} cannot be compared",
            x.d, y.d
        ));
    }
    if x.n == 0 || y.n == 0 {
        return invalid("a sample is empty");
    }
    if !(x.is_finite() && y.is_finite()) {
        return invalid("a sample has non-finite values");
    }
    Ok(())
}

/// Sliced Wasserstein-2 distance over `projections` seeded random directions.
pub fn sliced_wasserstein(x: &Batch, y: &Batch, projections: usize, seed: u64) -> Result<f64> {
    check(x, y)?;
    if projections == 0 {
        return invalid("sliced Wasserstein needs at least one projection");
    }
    let n = x.n.min(y.n);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..projections {
        let dir = Batch::gaussian(1, x.d, &mut rng).data;
        let len = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        let project = |b: &Batch| {
            let mut p: Vec<f64> = (0..n)
                .map(|i| b.row(i).iter().zip(&dir).map(|(a, u)| a * u / len).sum())
                .collect();
            p.sort_by(f64::total_cmp);
            p
        };
        let (px, py) = (project(x), project(y));
        total += px
            .iter()
            .zip(&py)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / n as f64;
    }
    Ok((total / projections as f64).sqrt())
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

fn mean_kernel(x: &Batch, y: &Batch, k: impl Fn(f64) -> f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.n {
        for j in 0..y.n {
            s += k(sq_dist(x.row(i), y.row(j)));
        }
    }
    s / (x.n * y.n) as f64
}

/// MMD² with Gaussian kernels of the given bandwidths (use [`MMD_BANDWIDTHS`] by default).
pub fn mmd(x: &Batch, y: &Batch, bandwidths: &[f64]) -> Result<f64> {
    check(x, y)?;
    if bandwidths.is_empty() || bandwidths.iter().any(|b| !(*b > 0.0)) {
        return invalid("MMD bandwidths must be > 0");
    }
    let k = |d2: f64| {
        bandwidths
            .iter()
            .map(|b| (-d2 / (2.0 * b * b)).exp())
            .sum::<f64>()
    };
    Ok((mean_kernel(x, x, k) + mean_kernel(y, y, k) - 2.0 * mean_kernel(x, y, k)).max(0.0))
}

/// Energy distance.
pub fn energy_distance(x: &Batch, y: &Batch) -> Result<f64> {
    check(x, y)?;
    let k = |d2: f64| d2.sqrt();
    Ok((2.0 * mean_kernel(x, y, k) - mean_kernel(x, x, k) - mean_kernel(y, y, k)).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_vanish_on_identical_samples_and_grow_with_a_shift() {
        let mut rng = StdRng::seed_from_u64(3);
        let x = Batch::gaussian(300, 2, &mut rng);
        let shift = |s: f64| Batch {
            data: x.data.iter().map(|v| v + s).collect(),
            ..x.clone()
        };
        assert!(sliced_wasserstein(&x, &x, 50, 0).unwrap() < 1e-12);
        assert!(mmd(&x, &x, &MMD_BANDWIDTHS).unwrap() < 1e-12);
        assert!(energy_distance(&x, &x).unwrap() < 1e-12);
        // A shift by s along (1, 1): projected shift s(u₁ + u₂), E[(u₁ + u₂)²] = 1 → SWD ≈ s.
        let swd = sliced_wasserstein(&x, &shift(0.5), 2000, 1).unwrap();
        assert!((swd - 0.5).abs() < 0.03, "{swd}");
        let (m1, m2) = (
            mmd(&x, &shift(0.2), &MMD_BANDWIDTHS).unwrap(),
            mmd(&x, &shift(1.0), &MMD_BANDWIDTHS).unwrap(),
        );
        assert!(0.0 < m1 && m1 < m2);
        assert!(
            energy_distance(&x, &shift(0.2)).unwrap() < energy_distance(&x, &shift(1.0)).unwrap()
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = Batch::new(2, 1, vec![0.0, 1.0]).unwrap();
        let y = Batch::new(1, 2, vec![0.0, 1.0]).unwrap();
        assert!(sliced_wasserstein(&x, &y, 10, 0).is_err());
        assert!(sliced_wasserstein(&x, &x, 0, 0).is_err());
        assert!(mmd(&x, &x, &[0.0]).is_err());
        let nan = Batch::new(1, 1, vec![f64::NAN]).unwrap();
        assert!(energy_distance(&nan, &nan).is_err());
    }
}
