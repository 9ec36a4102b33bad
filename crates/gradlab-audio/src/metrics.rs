//! Speech-enhancement metrics.
//!
//! SI-SDR (Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019): with the reference s
//! and the estimate ŝ both made zero-mean, the target α·s with α = ⟨ŝ, s⟩/‖s‖² and the rest
//! e = ŝ − α·s, SI-SDR = 10 log₁₀(‖α s‖²/‖e‖²) dB. It ignores the estimate's scale.
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
    let centred = |x: &[f32]| {
        let m = x.iter().map(|v| *v as f64).sum::<f64>() / x.len() as f64;
        x.iter().map(|v| *v as f64 - m).collect::<Vec<f64>>()
    };
    let (e, s) = (centred(estimate), centred(reference));
    let ss: f64 = s.iter().map(|v| v * v).sum();
    if ss == 0.0 {
        return invalid("SI-SDR against a silent reference");
    }
    let alpha = e.iter().zip(&s).map(|(a, b)| a * b).sum::<f64>() / ss;
    let target: f64 = alpha * alpha * ss;
    let residual: f64 = e.iter().zip(&s).map(|(a, b)| (a - alpha * b).powi(2)).sum();
    Ok(10.0 * (target / residual.max(1e-300)).log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_sdr_has_its_closed_form_for_orthogonal_noise() {
        // s and n orthogonal and zero-mean: ŝ = s + n gives α = 1, e = n, SI-SDR = 10 log(‖s‖²/‖n‖²).
        let s: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin()).collect();
        let n: Vec<f32> = (0..1000)
            .map(|i| if i % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        let dot: f64 = s
            .iter()
            .zip(&n)
            .map(|(a, b)| (*a as f64) * (*b as f64))
            .sum();
        let est: Vec<f32> = s.iter().zip(&n).map(|(a, b)| a + b).collect();
        let ss: f64 = s.iter().map(|v| (*v as f64).powi(2)).sum();
        let nn: f64 = n.iter().map(|v| (*v as f64).powi(2)).sum();
        // The two are nearly but not exactly orthogonal: compare with the exact projection.
        let m_s = s.iter().map(|v| *v as f64).sum::<f64>() / 1000.0;
        assert!(m_s.abs() < 0.01 && (dot / (ss * nn).sqrt()).abs() < 0.01);
        let got = si_sdr(&est, &s).unwrap();
        assert!((got - 10.0 * (ss / nn).log10()).abs() < 0.1, "{got}");
        assert!(si_sdr(&est, &s[..10]).is_err());
        assert!(si_sdr(&est, &vec![0.0; 1000]).is_err());
    }
}
