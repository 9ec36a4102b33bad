//! Schedule refinement from "When, Why and How Much? Adaptive Learning Rate Scheduling by
//! Refinement" (Defazio, Cutkosky, Mehta, Mishchenko, arXiv 2310.07831).
//!
//! From the gradient norms ‖g_t‖ of a previous run of T steps:
//! 1. smooth them with a median filter of width τT (odd), as the authors' README prescribes:
//!    pad the end by reflection over twice the width, filter with edge-repeating borders, drop the
//!    padding;
//! 2. weights w_t = ĝ_t⁻²;
//! 3. η_t ∝ w_t · Σ_{p>t} w_p (`find_closed_form_schedule` in the authors' `find_schedule.py`),
//!    with η_{T−1} = 0; here normalised to a maximum of 1, so it multiplies a tuned base rate.
//!
//! With constant gradient norms this is linear decay, the paper's worst-case optimal schedule:
//!
//! ```
//! use gradlab_optim::refinement::refine;
//! let s = refine(&[1.0; 5]).unwrap();
//! assert_eq!(s, vec![1.0, 0.75, 0.5, 0.25, 0.0]);
//! ```
//!
//! For Adam the authors refine from the ℓ1 norms ‖g_t‖₁ with weights w_t = ĝ_t⁻¹ (their
//! `visual.py`, "L1 version", run on the `norm_sequences_l1` of Adam-trained models; checked there):
//! [`refine_from_l1_grad_norms`].

use crate::error::{OptimError, Result};

/// η_t = w_t Σ_{p>t} w_p, normalised to max 1 (zeros if every entry is 0).
pub fn refine(weights: &[f64]) -> Result<Vec<f64>> {
    if weights.len() < 2 {
        return Err(OptimError::Conflict("refinement needs at least two steps"));
    }
    if let Some(w) = weights.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
        return Err(OptimError::Invalid {
            name: "weight",
            value: *w,
            requirement: "> 0 and finite (gradient norms must be positive)",
        });
    }
    let mut tail = 0.0;
    let mut sched = vec![0.0; weights.len()];
    for t in (0..weights.len()).rev() {
        sched[t] = weights[t] * tail;
        tail += weights[t];
    }
    let max = sched.iter().cloned().fold(0.0, f64::max);
    Ok(sched.into_iter().map(|s| s / max).collect())
}

/// Odd median-filter width for a fraction τ of `n` steps: 2⌊⌊τn⌋/2⌋ + 1.
pub fn filter_width(n: usize, tau: f64) -> usize {
    2 * (((tau * n as f64).floor() as usize) / 2) + 1
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median-filtered sequence, with the authors' padding (see the module docs).
pub fn median_filter(values: &[f64], width: usize) -> Vec<f64> {
    let n = values.len();
    let half = width / 2;
    // Reflect-pad the end by 2·width (numpy 'reflect': the edge value is not repeated).
    let pad = 2 * width;
    let mut ext = values.to_vec();
    for k in 1..=pad {
        let idx = if n > 1 {
            (n - 1) as isize - (k as isize % (2 * (n as isize - 1))).min(2 * (n as isize - 1))
        } else {
            0
        };
        let idx = if idx < 0 {
            (-idx) as usize
        } else {
            idx as usize
        };
        ext.push(values[idx.min(n - 1)]);
    }
    // Filter with edge-repeating ('nearest') borders and keep the first n outputs.
    let m = ext.len();
    (0..n)
        .map(|i| {
            let mut win: Vec<f64> = (0..width)
                .map(|j| ext[(i + j).saturating_sub(half).min(m - 1)])
                .collect();
            median(&mut win)
        })
        .collect()
}

/// The refined schedule for SGD from a previous run's ℓ2 gradient norms, filtered over a fraction
/// `tau` of the run (the paper smooths before refining; τ = 0 disables the filter): w_t = ĝ_t⁻².
pub fn refine_from_grad_norms(norms: &[f64], tau: f64) -> Result<Vec<f64>> {
    refine_filtered(norms, tau, -2.0)
}

/// The refined schedule for Adam from a previous run's ℓ1 gradient norms ‖g_t‖₁: w_t = ĝ_t⁻¹.
pub fn refine_from_l1_grad_norms(l1_norms: &[f64], tau: f64) -> Result<Vec<f64>> {
    refine_filtered(l1_norms, tau, -1.0)
}

fn refine_filtered(norms: &[f64], tau: f64, power: f64) -> Result<Vec<f64>> {
    if !(0.0..1.0).contains(&tau) {
        return Err(OptimError::Invalid {
            name: "tau",
            value: tau,
            requirement: "in [0, 1)",
        });
    }
    let smoothed = median_filter(norms, filter_width(norms.len(), tau));
    refine(&smoothed.iter().map(|g| g.powf(power)).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_matches_the_authors_formula() {
        // find_closed_form_schedule: sched[t] = w_t · tail_sums[t+1] / tail_sums[-1], sched[T−1] = 0.
        let g = [2.0f64, 1.0, 0.5, 1.0];
        let w: Vec<f64> = g.iter().map(|x| x.powi(-2)).collect(); // 0.25, 1, 4, 1
        let raw = [0.25 * 6.0, 1.0 * 5.0, 4.0 * 1.0, 0.0]; // divided by w[-1] = 1
        let max = 5.0;
        let want: Vec<f64> = raw.iter().map(|r| r / max).collect();
        assert_eq!(refine(&w).unwrap(), want);
        // Shrinking gradient norms give a warm-up: the peak is not at the start.
        let s = refine(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0]).unwrap();
        assert!(s[0] < s[3]);
        assert!(refine(&[1.0]).is_err() && refine(&[1.0, 0.0]).is_err());
    }

    #[test]
    fn the_adam_variant_weights_by_the_inverse_l1_norm() {
        let g = [2.0f64, 1.0, 0.5, 1.0];
        let w: Vec<f64> = g.iter().map(|x| 1.0 / x).collect();
        assert_eq!(
            refine_from_l1_grad_norms(&g, 0.0).unwrap(),
            refine(&w).unwrap()
        );
        // Constant norms give linear decay for both variants.
        let lin = refine_from_l1_grad_norms(&[3.0; 5], 0.0).unwrap();
        assert_eq!(lin, refine_from_grad_norms(&[3.0; 5], 0.0).unwrap());
        assert!(refine_from_l1_grad_norms(&g, 1.0).is_err());
        assert!(refine_from_l1_grad_norms(&[1.0, 0.0], 0.0).is_err());
    }

    #[test]
    fn median_filter_follows_the_readme_recipe() {
        // Width 3 on [5, 1, 4, 2, 8]: reflect-padded end 2, 4, 1, 5(…); nearest at the start.
        // Windows: [5,5,1]→5, [5,1,4]→4, [1,4,2]→2, [4,2,8]→4, [2,8,2]→2.
        assert_eq!(
            median_filter(&[5.0, 1.0, 4.0, 2.0, 8.0], 3),
            vec![5.0, 4.0, 2.0, 4.0, 2.0]
        );
        assert_eq!(filter_width(100, 0.1), 11);
        assert_eq!(filter_width(100, 0.0), 1);
        assert_eq!(median_filter(&[3.0, 1.0], 1), vec![3.0, 1.0]);
        // An outlier spike is removed.
        let mut v = vec![1.0; 50];
        v[20] = 100.0;
        assert!(median_filter(&v, 5).iter().all(|x| *x == 1.0));
    }
}
