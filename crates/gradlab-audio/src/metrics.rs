//! Speech-enhancement metrics.
//!
//! SI-SDR as SGMSE's evaluation computes it (`sgmse/util/other.py::si_sdr`, and
//! `energy_ratios` of its `calc_metrics.py`): with the reference s and the estimate ŝ, the target
//! α·s with α = ⟨ŝ, s⟩/‖s‖² and the rest e = ŝ − α·s, SI-SDR = 10 log₁₀(‖α s‖²/‖e‖²) dB. It
//! ignores the estimate's scale. Le Roux et al. ("SDR – half-baked or well done?", ICASSP 2019)
//! also remove both signals' means first; for speech without a DC offset the two agree.
//!
//! ```
//! use gradlab_audio::metrics::si_sdr;
//! let s = [1.0f32, -1.0, 0.5, -0.5];
//! let louder: Vec<f32> = s.iter().map(|v| 3.0 * v).collect();
//! assert!(si_sdr(&louder, &s).unwrap() > 100.0); // scale does not matter
//! ```

use crate::{Result, invalid};

/// SI-SDR in dB of `estimate` against `reference` (equal lengths, the reference not silent).
pub fn si_sdr(estimate: &[f32], reference: &[f32]) -> Result<f64> {
    if estimate.len() != reference.len() || estimate.is_empty() {
        return invalid(format!(
            "SI-SDR needs signals of equal, non-zero length; got {} and {}",
            estimate.len(),
            reference.len()
        ));
    }
    if estimate.iter().chain(reference).any(|v| !v.is_finite()) {
        return invalid("SI-SDR of non-finite samples");
    }
    let (e, s): (Vec<f64>, Vec<f64>) = (
        estimate.iter().map(|v| *v as f64).collect(),
        reference.iter().map(|v| *v as f64).collect(),
    );
    let ss: f64 = s.iter().map(|v| v * v).sum();
    if ss == 0.0 {
        return invalid("SI-SDR against a silent reference");
    }
    let alpha = e.iter().zip(&s).map(|(a, b)| a * b).sum::<f64>() / ss;
    let target: f64 = alpha * alpha * ss;
    let residual: f64 = e.iter().zip(&s).map(|(a, b)| (a - alpha * b).powi(2)).sum();
    Ok(10.0 * (target / residual.max(1e-300)).log10())
}
