//! The Ornstein–Uhlenbeck variance-exploding SDE of SGMSE+ (Richter et al., "Speech Enhancement
//! and Dereverberation with Diffusion-based Generative Models", TASLP 2023), as
//! `sgmse/sdes.py::OUVESDE` of sp-uhh/sgmse has it:
//!
//!   dx = γ (y − x) dt + g(t) dw,   g(t) = σ_min (σ_max/σ_min)ᵗ √(2L),   L = ln(σ_max/σ_min)
//!
//! (the docstring's "−θ(y − x)" is a sign slip; the code's drift is +γ(y − x)), with y the noisy
//! spectrogram. In u = x − y it is a plain Gaussian process:
//!
//!   u_t = e^{−γt} u₀ + std(t)·z,   std(t)² = σ_min² e^{−2γt} (e^{2(γ+L)t} − 1) L/(γ + L),
//!
//! and [`Ouve`] is that [`Process`] on u. The official code works on complex STFT bins with
//! complex noise of E|z|² = 1; here a complex bin is two real coordinates, each with half that
//! variance, so the marginal σ_t, g and the prior std are the official ones divided by √2 (and
//! the score in real coordinates is twice the official complex one). The prior is N(0, std(1)²/2)
//! per coordinate — the official `prior_sampling` y + std(1)·z, not σ_max.
//!
//! ```
//! use gradlab_generative::process::{Ouve, Process};
//! let p = Ouve::official();
//! let (alpha, sigma) = p.marginal(1.0).unwrap();
//! assert!((alpha - (-1.5f64).exp()).abs() < 1e-12);
//! assert!((p.prior_std() - sigma).abs() < 1e-12);
//! assert!(sigma < 0.5 / 2f64.sqrt()); // std(1) is below σ_max
//! ```

use super::{Process, check_time};
use crate::{Result, invalid};

/// The OUVE SDE on u = x − y; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ouve {
    gamma: f64,
    sigma_min: f64,
    sigma_max: f64,
}

impl Ouve {
    /// Stiffness γ > 0 and 0 < σ_min < σ_max.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    pub fn new(gamma: f64, sigma_min: f64, sigma_max: f64) -> Result<Self> {
        if !(gamma > 0.0
            && gamma.is_finite()
            && sigma_min > 0.0
            && sigma_min < sigma_max
            && sigma_max.is_finite())
        {
            return invalid(format!(
                "the OUVE SDE needs γ > 0 and 0 < σ_min < σ_max, got {gamma}, {sigma_min}, {sigma_max}"
            ));
        }
        Ok(Self {
            gamma,
            sigma_min,
            sigma_max,
        })
    }

    /// The official defaults: γ = 1.5, σ_min = 0.05, σ_max = 0.5.
    pub fn official() -> Self {
        Self::new(1.5, 0.05, 0.5).expect("valid defaults")
    }

    /// (γ, σ_min, σ_max).
    pub fn parameters(&self) -> (f64, f64, f64) {
        (self.gamma, self.sigma_min, self.sigma_max)
    }

    fn log_ratio(&self) -> f64 {
        (self.sigma_max / self.sigma_min).ln()
    }

    /// The official (complex) std(t).
    pub fn complex_std(&self, t: f64) -> f64 {
        let (g, l, s) = (self.gamma, self.log_ratio(), self.sigma_min);
        (s * s * (-2.0 * g * t).exp() * ((2.0 * (g + l) * t).exp() - 1.0) * l / (g + l)).sqrt()
    }
}

impl Process for Ouve {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        Ok(((-self.gamma * t).exp(), self.complex_std(t) / 2f64.sqrt()))
    }

    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        check_time(t)?;
        let g = self.sigma_min
            * (self.sigma_max / self.sigma_min).powf(t)
            * (2.0 * self.log_ratio()).sqrt();
        Ok((-self.gamma, g / 2f64.sqrt()))
    }

    fn prior_std(&self) -> f64 {
        self.complex_std(1.0) / 2f64.sqrt()
    }

    /// The official t_ε = 0.03 (training times and the sampler's last time).
    fn t_eps(&self) -> f64 {
        0.03
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed-form std against the variance ODE dv/dt = −2γ v + g(t)² integrated by RK4.
    #[test]
    fn the_std_solves_the_variance_ode() {
        for p in [Ouve::official(), Ouve::new(0.5, 0.1, 2.0).unwrap()] {
            let rhs = |t: f64, v: f64| {
                let (f, g) = p.coefficients(t).unwrap();
                2.0 * f * v + g * g
            };
            let (mut v, n) = (0.0, 4000);
            let h = 1.0 / n as f64;
            for i in 0..n {
                let t = i as f64 * h;
                let k1 = rhs(t, v);
                let k2 = rhs(t + h / 2.0, v + h / 2.0 * k1);
                let k3 = rhs(t + h / 2.0, v + h / 2.0 * k2);
                let k4 = rhs(t + h, v + h * k3);
                v += h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4);
                if (i + 1) % 1000 == 0 {
                    let s = p.marginal(t + h).unwrap().1;
                    assert!((v.sqrt() - s).abs() < 1e-9, "{} vs {s}", v.sqrt());
                }
            }
        }
        assert!(Ouve::new(1.5, 0.5, 0.05).is_err() && Ouve::new(0.0, 0.05, 0.5).is_err());
    }
}
