//! Distances between two samples of points:
//!
//! - sliced Wasserstein-2: √(mean over random unit directions θ of W₂²(θᵀX, θᵀY)), each 1D W₂
//!   from sorted projections (the samples are cut to the smaller size);
//! - MMD² with a sum of Gaussian kernels k(x, y) = Σ_b exp(−‖x − y‖²/(2b²)) over bandwidths b
//!   (the biased V-statistic, ≥ 0);
//! - energy distance 2E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ (≥ 0, zero iff the laws agree);
//! - exact W₂ between equal-size samples by optimal matching (Hungarian algorithm);
//! - mode coverage against known centres (modes hit, share of points near a mode, the share at
//!   each mode);
//! - improved recall: the share of a real sample inside a generated sample's k-NN balls.
//!
//! ```
//! use gradlab_generative::{metrics::sliced_wasserstein, points::from_rows};
//! let x = from_rows(&[0.0, 1.0, 2.0], 3, 1).unwrap();
//! let y = from_rows(&[1.0, 2.0, 3.0], 3, 1).unwrap();
//! // A shift by 1 in 1D: W₂ = 1 along every direction (±1).
//! assert!((sliced_wasserstein(&x, &y, 10, 0).unwrap() - 1.0).abs() < 1e-12);
//! ```

use crate::points::Rows;
use crate::{Result, invalid};
use burn::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// The bandwidths [`mmd`] uses by default.
pub const MMD_BANDWIDTHS: [f64; 5] = [0.01, 0.1, 1.0, 10.0, 100.0];

/// The host views of two samples, checked: the same dimension, neither empty, all finite.
fn check(x: &Tensor<2>, y: &Tensor<2>) -> Result<(Rows, Rows)> {
    let (x, y) = (Rows::of(x)?, Rows::of(y)?);
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
    Ok((x, y))
}

/// Sliced Wasserstein-2 distance over `projections` seeded random directions.
pub fn sliced_wasserstein(
    x: &Tensor<2>,
    y: &Tensor<2>,
    projections: usize,
    seed: u64,
) -> Result<f64> {
    let (x, y) = check(x, y)?;
    if projections == 0 {
        return invalid("sliced Wasserstein needs at least one projection");
    }
    let n = x.n.min(y.n);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut total = 0.0;
    for _ in 0..projections {
        let dir: Vec<f64> = (0..x.d)
            .map(|_| rng.sample::<f64, _>(StandardNormal))
            .collect();
        let len = dir.iter().map(|v| v * v).sum::<f64>().sqrt();
        let project = |b: &Rows| {
            let mut p: Vec<f64> = (0..n)
                .map(|i| b.row(i).iter().zip(&dir).map(|(a, u)| a * u / len).sum())
                .collect();
            p.sort_by(f64::total_cmp);
            p
        };
        let (px, py) = (project(&x), project(&y));
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

fn mean_kernel(x: &Rows, y: &Rows, k: impl Fn(f64) -> f64) -> f64 {
    let mut s = 0.0;
    for i in 0..x.n {
        for j in 0..y.n {
            s += k(sq_dist(x.row(i), y.row(j)));
        }
    }
    s / (x.n * y.n) as f64
}

/// MMD² with Gaussian kernels of the given bandwidths (use [`MMD_BANDWIDTHS`] by default).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn mmd(x: &Tensor<2>, y: &Tensor<2>, bandwidths: &[f64]) -> Result<f64> {
    let (x, y) = check(x, y)?;
    if bandwidths.is_empty() || bandwidths.iter().any(|b| !(*b > 0.0)) {
        return invalid("MMD bandwidths must be > 0");
    }
    let k = |d2: f64| {
        bandwidths
            .iter()
            .map(|b| (-d2 / (2.0 * b * b)).exp())
            .sum::<f64>()
    };
    Ok((mean_kernel(&x, &x, k) + mean_kernel(&y, &y, k) - 2.0 * mean_kernel(&x, &y, k)).max(0.0))
}

/// Energy distance.
pub fn energy_distance(x: &Tensor<2>, y: &Tensor<2>) -> Result<f64> {
    let (x, y) = check(x, y)?;
    let k = |d2: f64| d2.sqrt();
    Ok((2.0 * mean_kernel(&x, &y, k) - mean_kernel(&x, &x, k) - mean_kernel(&y, &y, k)).max(0.0))
}

/// Exact W₂ between two samples of equal size n (the optimal matching, Hungarian algorithm,
/// O(n³): meant for n up to about a thousand): √(min over permutations of mean ‖xᵢ − y_π(i)‖²).
pub fn wasserstein2_exact(x: &Tensor<2>, y: &Tensor<2>) -> Result<f64> {
    let (x, y) = check(x, y)?;
    if x.n != y.n {
        return invalid(format!(
            "exact W₂ needs equal sample sizes, got {} and {}",
            x.n, y.n
        ));
    }
    let n = x.n;
    let cost = |i: usize, j: usize| sq_dist(x.row(i), y.row(j));
    // Shortest augmenting paths with potentials (rows 1..=n, columns 1..=n; 0 is a sentinel).
    let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
    let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
    for i in 1..=n {
        p[0] = i;
        let mut j0 = 0;
        let mut minv = vec![f64::INFINITY; n + 1];
        let mut used = vec![false; n + 1];
        loop {
            used[j0] = true;
            let (i0, mut delta, mut j1) = (p[j0], f64::INFINITY, 0);
            for j in 1..=n {
                if !used[j] {
                    let cur = cost(i0 - 1, j - 1) - u[i0] - v[j];
                    if cur < minv[j] {
                        minv[j] = cur;
                        way[j] = j0;
                    }
                    if minv[j] < delta {
                        delta = minv[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[p[j]] += delta;
                    v[j] -= delta;
                } else {
                    minv[j] -= delta;
                }
            }
            j0 = j1;
            if p[j0] == 0 {
                break;
            }
        }
        loop {
            let j1 = way[j0];
            p[j0] = p[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let total: f64 = (1..=n).map(|j| cost(p[j] - 1, j - 1)).sum();
    Ok((total / n as f64).sqrt())
}

/// The share of the sample `x` at each known mode centre, and the share near none: a point
/// belongs to its nearest centre if within 3·`std` of it. The shares and the remainder sum to 1.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn mode_shares(x: &Tensor<2>, centres: &[Vec<f64>], std: f64) -> Result<(Vec<f64>, f64)> {
    let x = Rows::of(x)?;
    if centres.is_empty() || centres.iter().any(|c| c.len() != x.d) || !(std > 0.0) {
        return invalid("mode shares need centres of the sample's dimension and std > 0");
    }
    if x.n == 0 || !x.is_finite() {
        return invalid("mode shares need a non-empty, finite sample");
    }
    let mut counts = vec![0usize; centres.len()];
    for i in 0..x.n {
        let (k, d2) = centres
            .iter()
            .enumerate()
            .map(|(k, c)| (k, sq_dist(x.row(i), c)))
            .fold((0, f64::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
        if d2 <= 9.0 * std * std {
            counts[k] += 1;
        }
    }
    let shares: Vec<f64> = counts.iter().map(|&c| c as f64 / x.n as f64).collect();
    let off = 1.0 - shares.iter().sum::<f64>();
    Ok((shares, off))
}

/// Mode coverage of a sample against known mode centres with a common spread `std` (see
/// [`mode_shares`]). Returns (fraction of centres that received at least `min_share` of their fair
/// share n/k of points, fraction of points near some centre).
pub fn mode_coverage(
    x: &Tensor<2>,
    centres: &[Vec<f64>],
    std: f64,
    min_share: f64,
) -> Result<(f64, f64)> {
    let (shares, off) = mode_shares(x, centres, std)?;
    let fair = 1.0 / centres.len() as f64;
    let covered = shares.iter().filter(|&&s| s >= min_share * fair).count();
    Ok((covered as f64 / centres.len() as f64, 1.0 - off))
}

/// Improved recall (Kynkäänniemi et al., NeurIPS 2019): the fraction of the real sample that lies
/// inside the generated sample's k-NN manifold, the union of balls around each generated point
/// with radius the distance to its k-th nearest generated neighbour. O(n·m) distances.
pub fn recall(real: &Tensor<2>, generated: &Tensor<2>, k: usize) -> Result<f64> {
    let (r, g) = check(real, generated)?;
    if k == 0 || k >= g.n {
        return invalid(format!(
            "recall needs 1 ≤ k < {} generated points, got k = {k}",
            g.n
        ));
    }
    let radius2: Vec<f64> = (0..g.n)
        .map(|i| {
            let mut d: Vec<f64> = (0..g.n)
                .filter(|&j| j != i)
                .map(|j| sq_dist(g.row(i), g.row(j)))
                .collect();
            d.select_nth_unstable_by(k - 1, f64::total_cmp);
            d[k - 1]
        })
        .collect();
    let inside = (0..r.n)
        .filter(|&i| (0..g.n).any(|j| sq_dist(r.row(i), g.row(j)) <= radius2[j]))
        .count();
    Ok(inside as f64 / r.n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::points::{from_rows, normal};

    #[test]
    fn distances_vanish_on_identical_samples_and_grow_with_a_shift() {
        let x = normal(300, 2, 3);
        let shift = |s: f64| x.clone() + s;
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
    fn exact_w2_finds_the_optimal_matching() {
        // Brute force over all 5! matchings.
        let (x, y) = (normal(5, 2, 8), normal(5, 2, 9));
        let (xr, yr) = (Rows::of(&x).unwrap(), Rows::of(&y).unwrap());
        let mut best = f64::INFINITY;
        let mut perm: Vec<usize> = (0..5).collect();
        fn permute(k: usize, perm: &mut Vec<usize>, f: &mut dyn FnMut(&[usize])) {
            if k == perm.len() {
                return f(perm);
            }
            for i in k..perm.len() {
                perm.swap(k, i);
                permute(k + 1, perm, f);
                perm.swap(k, i);
            }
        }
        permute(0, &mut perm, &mut |p| {
            let c: f64 = (0..5)
                .map(|i| sq_dist(xr.row(i), yr.row(p[i])))
                .sum::<f64>()
                / 5.0;
            best = best.min(c);
        });
        assert!((wasserstein2_exact(&x, &y).unwrap() - best.sqrt()).abs() < 1e-12);
        // A shifted copy is matched to itself: W₂ = the shift.
        let shifted = x.clone() + 0.25;
        assert!(
            (wasserstein2_exact(&x, &shifted).unwrap() - (2.0f64 * 0.0625).sqrt()).abs() < 1e-12
        );
        assert!(wasserstein2_exact(&x, &normal(4, 2, 10)).is_err());
    }

    #[test]
    fn coverage_counts_modes_and_near_points() {
        let centres = vec![vec![0.0, 0.0], vec![10.0, 0.0]];
        let x = from_rows(&[0.1, 0.0, -0.2, 0.1, 0.0, 0.3, 5.0, 5.0], 4, 2).unwrap();
        let (modes, near) = mode_coverage(&x, &centres, 0.5, 0.5).unwrap();
        assert_eq!((modes, near), (0.5, 0.75));
        assert!(mode_coverage(&x, &[vec![0.0]], 0.5, 0.5).is_err());
    }

    #[test]
    fn recall_counts_real_points_inside_the_generated_balls() {
        // Generated points 0, 1, 3 on a line: with k = 1 their radii are 1, 1 and 2, so the
        // balls cover [−1, 5]; real points at 0.5, 4.5 and 6 → recall 2/3. With k = 2 the radii
        // are 3, 2, 3: 6 is inside too.
        let g = from_rows(&[0.0, 0.0, 1.0, 0.0, 3.0, 0.0], 3, 2).unwrap();
        let r = from_rows(&[0.5, 0.0, 4.5, 0.0, 6.0, 0.0], 3, 2).unwrap();
        assert!((recall(&r, &g, 1).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(recall(&r, &g, 2).unwrap(), 1.0);
        assert!(recall(&r, &g, 3).is_err() && recall(&r, &g, 0).is_err());
        let (shares, off) = mode_shares(&r, &[vec![0.0, 0.0], vec![5.0, 0.0]], 0.2).unwrap();
        assert_eq!(shares, vec![1.0 / 3.0, 1.0 / 3.0]);
        assert!((off - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = from_rows(&[0.0, 1.0], 2, 1).unwrap();
        let y = from_rows(&[0.0, 1.0], 1, 2).unwrap();
        assert!(sliced_wasserstein(&x, &y, 10, 0).is_err());
        assert!(sliced_wasserstein(&x, &x, 0, 0).is_err());
        assert!(mmd(&x, &x, &[0.0]).is_err());
        let nan = from_rows(&[f64::NAN], 1, 1).unwrap();
        let empty = from_rows(&[], 0, 1).unwrap();
        assert!(mmd(&empty, &x, &[1.0]).is_err());
        assert!(energy_distance(&nan, &nan).is_err());
    }
}
