//! Opposing-signal detection (Rosenfeld & Risteski, "Outliers with Opposing Signals Have an
//! Outsized Effect on Neural Network Optimization", ICLR 2024): the training examples whose loss
//! changes most between steps come in pairs of groups that pull one strong feature in opposite
//! directions; as one group's loss falls the other's rises, and their oscillation drives
//! sharpening and loss spikes.
//!
//! Given per-example losses before and after a step (or over an interval),
//! [`opposing_groups`] takes the `k` examples with the largest |Δℓᵢ| and splits them by the sign
//! of Δℓᵢ; [`GroupTracker`] follows named groups' mean losses over training, and
//! [`change_correlation`] measures whether two groups move against each other (negative) or
//! together (positive).
//!
//! ```
//! use gradlab_curvature::opposing_signals::opposing_groups;
//! let before = [1.0, 1.0, 1.0, 1.0];
//! let after = [1.01, 2.5, 0.2, 0.99];
//! let g = opposing_groups(&before, &after, 2).unwrap();
//! assert_eq!((g.rising, g.falling), (vec![1], vec![2]));
//! ```

use crate::hvp::CurvatureError;

type Result<T> = std::result::Result<T, CurvatureError>;

/// The examples with the largest loss change, split by its sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpposingGroups {
    /// Examples whose loss rose, largest rise first.
    pub rising: Vec<usize>,
    /// Examples whose loss fell, largest fall first.
    pub falling: Vec<usize>,
}

/// Δℓᵢ = after − before, checked for equal lengths and finite values.
pub fn loss_changes(before: &[f64], after: &[f64]) -> Result<Vec<f64>> {
    if before.len() != after.len() {
        return Err(CurvatureError::Shape {
            expected: before.len(),
            got: after.len(),
        });
    }
    if before.iter().chain(after).any(|v| !v.is_finite()) {
        return Err(CurvatureError::NonFinite {
            what: "per-example loss",
        });
    }
    Ok(after.iter().zip(before).map(|(a, b)| a - b).collect())
}

/// The `k` examples with the largest |Δℓᵢ| between `before` and `after`, split by sign (examples
/// with Δℓᵢ = 0 are never chosen).
pub fn opposing_groups(before: &[f64], after: &[f64], k: usize) -> Result<OpposingGroups> {
    let delta = loss_changes(before, after)?;
    if k == 0 || k > delta.len() {
        return Err(CurvatureError::Invalid(format!(
            "k = {k} examples must be between 1 and the number of examples {}",
            delta.len()
        )));
    }
    let mut order: Vec<usize> = (0..delta.len()).filter(|&i| delta[i] != 0.0).collect();
    order.sort_by(|&a, &b| delta[b].abs().total_cmp(&delta[a].abs()));
    order.truncate(k);
    let (rising, falling) = order.into_iter().partition(|&i| delta[i] > 0.0);
    Ok(OpposingGroups { rising, falling })
}

/// The `k` examples with the largest total variation Σₜ|ℓᵢ(t+1) − ℓᵢ(t)| over a history of
/// per-example losses (one row per recorded step): the examples most affected by training's
/// oscillations, largest first.
pub fn most_variable(history: &[Vec<f64>], k: usize) -> Result<Vec<usize>> {
    let n = history.first().map_or(0, Vec::len);
    if k == 0 || k > n {
        return Err(CurvatureError::Invalid(format!(
            "k = {k} examples must be between 1 and the number of examples {n}"
        )));
    }
    let mut total = vec![0.0; n];
    for pair in history.windows(2) {
        for (t, d) in total.iter_mut().zip(loss_changes(&pair[0], &pair[1])?) {
            *t += d.abs();
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| total[b].total_cmp(&total[a]));
    order.truncate(k);
    Ok(order)
}

/// Mean losses of named groups of examples, recorded over training.
#[derive(Debug, Clone, Default)]
pub struct GroupTracker {
    groups: Vec<(String, Vec<usize>)>,
    history: Vec<Vec<f64>>,
}

impl GroupTracker {
    /// Follow `groups` (name, example indices); every group must be non-empty.
    pub fn new(groups: Vec<(String, Vec<usize>)>) -> Result<Self> {
        if let Some((name, _)) = groups.iter().find(|(_, g)| g.is_empty()) {
            return Err(CurvatureError::Invalid(format!("group '{name}' is empty")));
        }
        Ok(Self {
            groups,
            history: vec![],
        })
    }

    /// Record each group's mean of `losses` (all examples' losses at one step).
    pub fn record(&mut self, losses: &[f64]) -> Result<()> {
        let mut row = Vec::with_capacity(self.groups.len());
        for (name, idx) in &self.groups {
            if let Some(&bad) = idx.iter().find(|&&i| i >= losses.len()) {
                return Err(CurvatureError::Invalid(format!(
                    "group '{name}' names example {bad} of {}",
                    losses.len()
                )));
            }
            row.push(idx.iter().map(|&i| losses[i]).sum::<f64>() / idx.len() as f64);
        }
        self.history.push(row);
        Ok(())
    }

    /// The recorded mean losses of the group `name`, one per `record`.
    pub fn curve(&self, name: &str) -> Option<Vec<f64>> {
        let j = self.groups.iter().position(|(n, _)| n == name)?;
        Some(self.history.iter().map(|row| row[j]).collect())
    }

    /// The groups' names.
    pub fn names(&self) -> Vec<&str> {
        self.groups.iter().map(|(n, _)| n.as_str()).collect()
    }
}

/// Pearson correlation of the step-to-step changes of two curves: near −1 when one falls as the
/// other rises. NaN when either does not change.
pub fn change_correlation(a: &[f64], b: &[f64]) -> f64 {
    let da: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
    let db: Vec<f64> = b.windows(2).map(|w| w[1] - w[0]).collect();
    let n = da.len().min(db.len());
    if n < 2 {
        return f64::NAN;
    }
    let mean = |v: &[f64]| v[..n].iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(&da), mean(&db));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let (x, y) = (da[i] - ma, db[i] - mb);
        sab += x * y;
        saa += x * x;
        sbb += y * y;
    }
    sab / (saa * sbb).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_the_largest_changes_by_sign() {
        let before = [0.5, 0.5, 0.5, 0.5, 0.5, 0.5];
        let after = [0.6, 1.5, 0.1, 0.5, 2.0, 0.45];
        let g = opposing_groups(&before, &after, 3).unwrap();
        assert_eq!(g.rising, vec![4, 1]);
        assert_eq!(g.falling, vec![2]);
        assert!(opposing_groups(&before, &after, 0).is_err());
        assert!(opposing_groups(&before, &after, 7).is_err());
        assert!(matches!(
            opposing_groups(&before, &after[..5], 1),
            Err(CurvatureError::Shape {
                expected: 6,
                got: 5
            })
        ));
        assert!(opposing_groups(&[f64::NAN], &[1.0], 1).is_err());
    }

    #[test]
    fn total_variation_ranks_the_oscillating_examples() {
        // Example 2 oscillates, 0 drifts once, 1 stays.
        let h = vec![
            vec![1.0, 1.0, 1.0],
            vec![0.8, 1.0, 2.0],
            vec![0.8, 1.0, 1.0],
            vec![0.8, 1.0, 2.0],
        ];
        assert_eq!(most_variable(&h, 2).unwrap(), vec![2, 0]);
        assert!(most_variable(&h, 4).is_err());
    }

    #[test]
    fn tracker_means_and_opposition() {
        let mut t =
            GroupTracker::new(vec![("a".into(), vec![0, 1]), ("b".into(), vec![2])]).unwrap();
        for s in 0..6 {
            let x = if s % 2 == 0 { 1.0 } else { 0.0 };
            t.record(&[x, x + 1.0, 1.0 - x]).unwrap();
        }
        assert_eq!(t.curve("a").unwrap(), vec![1.5, 0.5, 1.5, 0.5, 1.5, 0.5]);
        let c = change_correlation(&t.curve("a").unwrap(), &t.curve("b").unwrap());
        assert!((c + 1.0).abs() < 1e-12, "{c}");
        assert!(t.curve("c").is_none());
        assert!(t.record(&[1.0, 2.0]).is_err());
        assert!(GroupTracker::new(vec![("e".into(), vec![])]).is_err());
        assert!(change_correlation(&[1.0, 1.0, 1.0], &[0.0, 1.0, 0.0]).is_nan());
    }
}
