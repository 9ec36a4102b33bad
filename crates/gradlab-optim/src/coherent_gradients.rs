//! Per-example gradient statistics and robust aggregations from "On the Generalization Mystery in
//! Deep Learning" (Chatterjee & Zielinski, arXiv 2203.10036; coherent gradients): gradients of
//! examples that agree add up, those of single (e.g. mislabelled) examples do not, so
//! suppressing what only a few examples want slows memorisation.
//!
//! - m-coherence of a batch: ‖Σᵢ gᵢ‖² / Σᵢ ‖gᵢ‖² (m when all m gradients are equal, ≈ 1 when they
//!   are orthogonal, 0 when they cancel);
//! - winsorized mean: per coordinate, the per-example values are clamped to the c-th smallest and
//!   c-th largest of them before averaging;
//! - M3, median of means: per coordinate, the median of the means of 3 disjoint sub-batches;
//! - RM3, running median: per coordinate, the median of the last 3 minibatch gradients (a
//!   gradient transformation, [`RunningMedian3`]).
//!
//! ```
//! use gradlab_optim::adadagrad::PerExampleGrads;
//! use gradlab_optim::coherent_gradients::m_coherence;
//! let same = PerExampleGrads::new(vec![1.0, 2.0, 1.0, 2.0, 1.0, 2.0], 2).unwrap();
//! assert!((m_coherence(&same) - 3.0).abs() < 1e-12);
//! let orthogonal = PerExampleGrads::new(vec![1.0, 0.0, 0.0, 1.0], 2).unwrap();
//! assert!((m_coherence(&orthogonal) - 1.0).abs() < 1e-12);
//! ```

use crate::adadagrad::PerExampleGrads;
use crate::error::{OptimError, Result};
use crate::transform::{GradSet, GradientTransform};

/// ‖Σᵢ gᵢ‖² / Σᵢ ‖gᵢ‖² (0 for an all-zero batch).
pub fn m_coherence(g: &PerExampleGrads) -> f64 {
    let b = g.batch() as f64;
    let sum_sq: f64 = g.mean().iter().map(|m| (m * b).powi(2)).sum();
    let sq_sum: f64 = (0..g.batch())
        .map(|i| g.row(i).iter().map(|v| v * v).sum::<f64>())
        .sum();
    if sq_sum == 0.0 { 0.0 } else { sum_sq / sq_sum }
}

fn column(g: &PerExampleGrads, j: usize) -> Vec<f64> {
    (0..g.batch()).map(|i| g.row(i)[j]).collect()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The winsorized mean: per coordinate, values clamped to [c-th smallest, c-th largest], then
/// averaged. `c` ≥ 1 and 2c ≤ batch (c = 1 is the plain mean).
pub fn winsorized_mean(g: &PerExampleGrads, c: usize) -> Result<Vec<f64>> {
    let b = g.batch();
    if c == 0 || 2 * c > b {
        return Err(OptimError::Invalid {
            name: "c",
            value: c as f64,
            requirement: ">= 1 and at most half the batch",
        });
    }
    Ok((0..g.dim())
        .map(|j| {
            let mut col = column(g, j);
            col.sort_by(f64::total_cmp);
            let (lo, hi) = (col[c - 1], col[b - c]);
            col.iter().map(|v| v.clamp(lo, hi)).sum::<f64>() / b as f64
        })
        .collect())
}

/// M3: per coordinate, the median of the means of 3 disjoint sub-batches (examples split in
/// order into groups of ⌈b/3⌉; needs b ≥ 3).
pub fn median_of_means(g: &PerExampleGrads) -> Result<Vec<f64>> {
    let b = g.batch();
    if b < 3 {
        return Err(OptimError::Invalid {
            name: "batch",
            value: b as f64,
            requirement: ">= 3 for three sub-batches",
        });
    }
    let size = b.div_ceil(3);
    let groups: Vec<std::ops::Range<usize>> = (0..3)
        .map(|k| (k * size).min(b)..((k + 1) * size).min(b))
        .collect();
    Ok((0..g.dim())
        .map(|j| {
            let mut means: Vec<f64> = groups
                .iter()
                .map(|r| r.clone().map(|i| g.row(i)[j]).sum::<f64>() / r.len().max(1) as f64)
                .collect();
            median(&mut means)
        })
        .collect())
}

/// RM3 as a gradient transformation: each coordinate becomes the median of its values in this
/// and the two previous steps' gradients (the first steps use what there is: the gradient
/// itself, then the mean of two).
#[derive(Debug, Clone, Default)]
pub struct RunningMedian3 {
    history: Vec<Vec<f64>>,
}

impl GradientTransform for RunningMedian3 {
    fn update(&mut self, grads: GradSet) -> crate::Result<GradSet> {
        let g = grads.to_values()?;
        if self.history.first().is_some_and(|h| h.len() != g.len()) {
            self.history.clear();
        }
        self.history.push(g);
        if self.history.len() > 3 {
            self.history.remove(0);
        }
        let n = self.history[0].len();
        let out: Vec<f64> = (0..n)
            .map(|j| {
                let mut v: Vec<f64> = self.history.iter().map(|h| h[j]).collect();
                median(&mut v)
            })
            .collect();
        Ok(grads.with_values(&out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    fn grads() -> PerExampleGrads {
        // 6 examples × 2 coordinates; coordinate 0 has an outlier (100).
        PerExampleGrads::new(
            vec![
                1.0, -1.0, 2.0, 0.0, 100.0, 1.0, 3.0, 2.0, 4.0, -2.0, 5.0, 3.0,
            ],
            2,
        )
        .unwrap()
    }

    #[test]
    fn statistics_match_their_definitions() {
        let g = grads();
        // Σg = (115, 3); Σ‖gᵢ‖² = 2 + 4 + 10001 + 13 + 20 + 34.
        let want = (115.0f64.powi(2) + 9.0) / 10074.0;
        assert!((m_coherence(&g) - want).abs() < 1e-12);
        // c = 2: coordinate 0 sorted 1,2,3,4,5,100 → clamp to [2, 5]: 2,2,5,3,4,5 → 21/6.
        let w = winsorized_mean(&g, 2).unwrap();
        assert!((w[0] - 3.5).abs() < 1e-12, "{w:?}");
        // Coordinate 1 sorted −2,−1,0,1,2,3 → clamp to [−1, 2]: −1,0,1,2,−1,2 → 3/6.
        assert!((w[1] - 0.5).abs() < 1e-12);
        assert_eq!(winsorized_mean(&g, 1).unwrap(), g.mean());
        // M3: groups {0,1}, {2,3}, {4,5}: coordinate 0 means 1.5, 51.5, 4.5 → 4.5.
        let m = median_of_means(&g).unwrap();
        assert!(
            (m[0] - 4.5).abs() < 1e-12 && (m[1] - 0.5).abs() < 1e-12,
            "{m:?}"
        );
        assert!(winsorized_mean(&g, 0).is_err() && winsorized_mean(&g, 4).is_err());
        let two = PerExampleGrads::new(vec![1.0, 2.0], 1).unwrap();
        assert!(median_of_means(&two).is_err());
    }

    #[test]
    fn running_median_ignores_a_one_step_spike() {
        let dev = Device::flex();
        let mut t = RunningMedian3::default();
        let mut last = vec![];
        for g in [[1.0, 0.0], [1.2, 0.1], [50.0, -9.0], [0.9, 0.2]] {
            last = t
                .update(GradSet::from_values(&g, &dev))
                .unwrap()
                .to_values()
                .unwrap();
            assert!(last[0] < 2.0, "{last:?}");
        }
        // Median of (1.2, 50, 0.9) and (0.1, −9, 0.2).
        assert!((last[0] - 1.2).abs() < 1e-12 && (last[1] - 0.1).abs() < 1e-12);
    }
}
