//! The forward noising processes: dx = f(t)·x dt + g(t) dw on t ∈ [0, 1] (data at 0, prior at 1)
//! with Gaussian marginals x_t | x₀ ~ N(α_t x₀, σ_t² I), behind the one trait [`Process`].
//!
//! The three SDEs of "Score-Based Generative Modeling through Stochastic Differential Equations"
//! (Song et al., ICLR 2021; checked against `sde_lib.py` of yang-song/score_sde_pytorch) are
//! three types, each in its own file:
//!
//! | SDE | f(t) | g(t)² | x_t given x₀ |
//! |---|---|---|---|
//! | [`Ve`] | 0 | σ(t)²·2 ln(σ_max/σ_min), σ(t) = σ_min (σ_max/σ_min)ᵗ | N(x₀, σ(t)² I) |
//! | [`Vp`] | −½β(t) | β(t) = β_min + t(β_max − β_min) | N(e^{m(t)} x₀, (1 − e^{2m(t)}) I) |
//! | [`SubVp`] | −½β(t) | β(t)(1 − e^{−2∫₀ᵗβ}) | N(e^{m(t)} x₀, (1 − e^{2m(t)})² I) |
//!
//! with m(t) = −¼t²(β_max − β_min) − ½tβ_min. As in the official code, the VE marginal's std is
//! σ(t) itself, σ_min at t = 0 (the data are taken as already perturbed by σ_min). [`Sde`] names
//! the three for a command line or a saved model; every sampler, score model and loss is generic
//! over [`Process`], so a new process (mean-reverting, OUVE, residual) is one file implementing
//! [`Process::marginal`] and [`Process::coefficients`], and inherits the chain step and the prior.
//!
//! ```
//! use gradlab_generative::process::{Process, Sde, Vp};
//! let (alpha, sigma) = Vp::default().marginal(1.0).unwrap();
//! assert!(alpha < 0.01 && (sigma - 1.0).abs() < 1e-4); // ≈ the prior N(0, I)
//! /// A toy process with α = 1 − t, σ = t (rectified flow's path, as an SDE-free schedule).
//! struct Linear;
//! impl Process for Linear {
//!     fn marginal(&self, t: f64) -> gradlab_generative::Result<(f64, f64)> { Ok((1.0 - t, t)) }
//!     fn coefficients(&self, t: f64) -> gradlab_generative::Result<(f64, f64)> {
//!         Ok((-1.0 / (1.0 - t), (2.0 * t / (1.0 - t)).sqrt()))
//!     }
//!     fn prior_std(&self) -> f64 { 1.0 }
//! }
//! let (f, g) = Linear.discretize(0.5, 0.25).unwrap(); // the chain step of the new process
//! assert!(f < 0.0 && g > 0.0);
//! assert_eq!(Sde::vp().marginal(0.3).unwrap(), Vp::default().marginal(0.3).unwrap());
//! ```

mod mean_reverting;
mod ouve;
mod sub_vp;
mod ve;
mod vp;

pub use mean_reverting::MeanReverting;
pub use ouve::Ouve;
pub use sub_vp::SubVp;
pub use ve::Ve;
pub use vp::Vp;

use crate::{Result, invalid};

/// The official code's ε for training (t ~ U(ε, 1) in `losses.py`) and for likelihoods (the
/// PF-ODE is integrated from ε in `likelihood.py`), for every SDE. Sampling stops earlier, at
/// [`Process::t_eps`].
pub const OFFICIAL_EPS: f64 = 1e-5;

/// A forward noising process with Gaussian marginals; see the module docs.
pub trait Process {
    /// (α_t, σ_t) with x_t | x₀ ~ N(α_t x₀, σ_t² I).
    fn marginal(&self, t: f64) -> Result<(f64, f64)>;
    /// (f(t), g(t)): the drift is f(t)·x, the diffusion g(t).
    fn coefficients(&self, t: f64) -> Result<(f64, f64)>;
    /// The prior's standard deviation (the prior is N(0, σ² I)).
    fn prior_std(&self) -> f64;
    /// Where samplers stop (1e-3 unless the process says otherwise).
    fn t_eps(&self) -> f64 {
        1e-3
    }
    /// The Langevin corrector's α at grid time `t` (next grid time `t_next`): 1 unless the process
    /// says otherwise ([`Vp`]: 1 − β_i).
    fn langevin_alpha(&self, t: f64, _t_next: f64) -> Result<f64> {
        check_time(t)?;
        Ok(1.0)
    }
    /// log N(z; 0, σ_prior² I) of one point.
    fn prior_log_density(&self, z: &[f64]) -> f64 {
        let s2 = self.prior_std().powi(2);
        let d = z.len() as f64;
        -0.5 * d * (2.0 * std::f64::consts::PI * s2).ln()
            - z.iter().map(|v| v * v).sum::<f64>() / (2.0 * s2)
    }
    /// One step of the discrete chain between grid times `t_next < t` (the reverse-diffusion
    /// predictor's discretisation): the forward transition x_t = a·x_next + G·z of the process,
    ///
    ///   a = α(t)/α(t_next),   G² = σ(t)² − a²·σ(t_next)²,
    ///
    /// with the chain ending on clean data (σ := 0 at `t_next` = 0, also for VE). Returns
    /// (a − 1, G), the `f_i = (a − 1)·x` and `G_i` of `sde_lib.py`'s `discretize`, so that the
    /// predictor's step is x ← (2 − a)·x + G²·s(x, t) + G·z as in the official code.
    ///
    /// The official code takes β_i, σ_i from level ⌊t(N − 1)⌋ of a chain of N levels, which is
    /// this rule at N = 1000 and t_ε = 1/N. At small N its last step (at t_ε) still moves by the
    /// first level's β = β_min/N: with an exact score on nearly discrete data the remaining noise
    /// is multiplied by 1 − G²/σ²(t_ε), about −18 at N = 50 for the official rule. Here the last
    /// step goes from t_ε to 0, so G² = σ(t_ε)² and x ← x + σ²(t_ε)·s: Tweedie's denoising, which
    /// can never overshoot.
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
    fn discretize(&self, t: f64, t_next: f64) -> Result<(f64, f64)> {
        if !(t_next < t) {
            return invalid(format!(
                "a chain step goes back in time: t_next = {t_next} must be below t = {t}"
            ));
        }
        let (a_t, s_t) = self.marginal(t)?;
        let (a_n, s_n) = self.marginal(t_next)?;
        let s_n = if t_next == 0.0 { 0.0 } else { s_n };
        let a = a_t / a_n;
        Ok((a - 1.0, (s_t * s_t - a * a * s_n * s_n).max(0.0).sqrt()))
    }
}

impl<P: Process + ?Sized> Process for &P {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        (**self).marginal(t)
    }
    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        (**self).coefficients(t)
    }
    fn prior_std(&self) -> f64 {
        (**self).prior_std()
    }
    fn t_eps(&self) -> f64 {
        (**self).t_eps()
    }
    fn langevin_alpha(&self, t: f64, t_next: f64) -> Result<f64> {
        (**self).langevin_alpha(t, t_next)
    }
    fn discretize(&self, t: f64, t_next: f64) -> Result<(f64, f64)> {
        (**self).discretize(t, t_next)
    }
}

/// An error unless t ∈ [0, 1].
pub fn check_time(t: f64) -> Result<()> {
    if (0.0..=1.0).contains(&t) {
        Ok(())
    } else {
        invalid(format!("time {t} is outside [0, 1]"))
    }
}

/// One of the three SDEs by name, for a command line, an experiment's table or a saved model
/// card; a [`Process`] by delegation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sde {
    /// Variance exploding (SMLD).
    Ve(Ve),
    /// Variance preserving (DDPM).
    Vp(Vp),
    /// Sub-variance preserving.
    SubVp(SubVp),
}

impl Sde {
    /// VE with the paper's σ_min = 0.01, σ_max = 50.
    pub fn ve() -> Self {
        Sde::Ve(Ve::default())
    }

    /// VP with β_min = 0.1, β_max = 20.
    pub fn vp() -> Self {
        Sde::Vp(Vp::default())
    }

    /// Sub-VP with β_min = 0.1, β_max = 20.
    pub fn sub_vp() -> Self {
        Sde::SubVp(SubVp::default())
    }

    /// `ve`, `vp` or `subvp` with the default parameters.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "ve" => Ok(Self::ve()),
            "vp" => Ok(Self::vp()),
            "subvp" | "sub-vp" => Ok(Self::sub_vp()),
            other => invalid(format!("unknown SDE '{other}'; known: ve, vp, subvp")),
        }
    }

    fn get(&self) -> &dyn Process {
        match self {
            Sde::Ve(p) => p,
            Sde::Vp(p) => p,
            Sde::SubVp(p) => p,
        }
    }
}

impl From<Ve> for Sde {
    fn from(p: Ve) -> Self {
        Sde::Ve(p)
    }
}

impl From<Vp> for Sde {
    fn from(p: Vp) -> Self {
        Sde::Vp(p)
    }
}

impl From<SubVp> for Sde {
    fn from(p: SubVp) -> Self {
        Sde::SubVp(p)
    }
}

impl Process for Sde {
    fn marginal(&self, t: f64) -> Result<(f64, f64)> {
        self.get().marginal(t)
    }
    fn coefficients(&self, t: f64) -> Result<(f64, f64)> {
        self.get().coefficients(t)
    }
    fn prior_std(&self) -> f64 {
        self.get().prior_std()
    }
    fn t_eps(&self) -> f64 {
        self.get().t_eps()
    }
    fn langevin_alpha(&self, t: f64, t_next: f64) -> Result<f64> {
        self.get().langevin_alpha(t, t_next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priors_are_reached_at_t_one() {
        for sde in [Sde::vp(), Sde::sub_vp()] {
            let (a, s) = sde.marginal(1.0).unwrap();
            // α(1) = e^{−5.025} ≈ 0.0066 with the default β: the prior is reached to 1%.
            assert!(a < 0.01 && (s - 1.0).abs() < 1e-4, "{sde:?}: {a} {s}");
            let (a0, s0) = sde.marginal(0.0).unwrap();
            assert!((a0 - 1.0).abs() < 1e-15 && s0.abs() < 1e-15);
        }
        let ve = Ve::default();
        assert_eq!(ve.marginal(1.0).unwrap(), (1.0, 50.0));
        assert!((ve.marginal(0.0).unwrap().1 - 0.01).abs() < 1e-15);
    }

    #[test]
    fn marginals_match_monte_carlo_simulation_of_the_forward_sde() {
        use rand::{Rng, SeedableRng, rngs::StdRng};
        use rand_distr::StandardNormal;
        // Euler–Maruyama paths of dx = f(t)x dt + g(t) dw from x₀ = 1.5 (plus the marginal's
        // own noise at t = 0: σ_min for VE, 0 otherwise); mean and std at three times against
        // α(t)x₀ and σ(t).
        let (x0, paths, steps) = (1.5, 20_000, 2000);
        for sde in [Sde::ve(), Sde::vp(), Sde::sub_vp()] {
            let mut rng = StdRng::seed_from_u64(7);
            let s0 = sde.marginal(0.0).unwrap().1;
            let mut x: Vec<f64> = (0..paths)
                .map(|_| x0 + s0 * rng.sample::<f64, _>(StandardNormal))
                .collect();
            let h = 1.0 / steps as f64;
            for i in 0..steps {
                let (f, g) = sde.coefficients(i as f64 * h).unwrap();
                for v in x.iter_mut() {
                    *v += f * *v * h + g * h.sqrt() * rng.sample::<f64, _>(StandardNormal);
                }
                let t = (i + 1) as f64 * h;
                if [0.25, 0.5, 1.0].iter().any(|c| (t - c).abs() < h / 2.0) {
                    let (a, s) = sde.marginal(t).unwrap();
                    let mean = x.iter().sum::<f64>() / paths as f64;
                    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                        / (paths - 1) as f64)
                        .sqrt();
                    // 4 standard errors for the mean; 3% for the std (its standard error is
                    // 0.5% here, the rest is the discretisation).
                    assert!(
                        (mean - a * x0).abs() < 4.0 * s / (paths as f64).sqrt() + 0.01 * a * x0,
                        "{sde:?} t {t}: mean {mean} vs {}",
                        a * x0
                    );
                    assert!(
                        (sd / s - 1.0).abs() < 0.03,
                        "{sde:?} t {t}: std {sd} vs {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn marginal_variance_solves_the_variance_ode() {
        // For dx = f x dt + g dw from a point: d(σ²)/dt = 2fσ² + g² and d(log α)/dt = f.
        for sde in [Sde::ve(), Sde::vp(), Sde::sub_vp()] {
            for t in [0.1, 0.4, 0.8] {
                let h = 1e-6;
                let (a0, s0) = sde.marginal(t - h).unwrap();
                let (a1, s1) = sde.marginal(t + h).unwrap();
                let (f, g) = sde.coefficients(t).unwrap();
                let (_, s) = sde.marginal(t).unwrap();
                let dvar = (s1 * s1 - s0 * s0) / (2.0 * h);
                assert!(
                    (dvar - (2.0 * f * s * s + g * g)).abs() < 1e-5 * (g * g).max(1.0),
                    "{sde:?} t {t}: {dvar} vs {}",
                    2.0 * f * s * s + g * g
                );
                let dlog = (a1.ln() - a0.ln()) / (2.0 * h);
                assert!((dlog - f).abs() < 1e-6, "{sde:?}");
            }
        }
    }

    #[test]
    fn discretisations_match_smld_and_ddpm() {
        let ve = Ve::default();
        let h = 1.0 / 999.0;
        // SMLD: G² = σ_i² − σ_{i−1}² between neighbouring levels; the last step ends on clean
        // data, G = σ(t) (σ_min at t = 0's level, as the official first level).
        let (f, g) = ve.discretize(0.5, 0.5 - h).unwrap();
        let (s1, s0) = (ve.marginal(0.5).unwrap().1, ve.marginal(0.5 - h).unwrap().1);
        assert!(f == 0.0 && (g * g - (s1 * s1 - s0 * s0)).abs() < 1e-12);
        assert!((ve.discretize(1e-5, 0.0).unwrap().1 - ve.marginal(1e-5).unwrap().1).abs() < 1e-15);
        // DDPM at N = 1000: the last β = β_max/N = 0.02 to first order (within 1.5%), and the
        // chain preserves variance: (1 + f)² + G² = 1.
        let (f, g) = Sde::vp().discretize(1.0, 1.0 - h).unwrap();
        assert!((g * g / 0.02 - 1.0).abs() < 0.015, "{}", g * g);
        assert!(((1.0 + f).powi(2) + g * g - 1.0).abs() < 1e-12);
        // Mid-way DDPM has β = β(0.5)/N = 0.01005.
        let a = Sde::vp().langevin_alpha(0.5, 0.5 - h).unwrap();
        assert!(((1.0 - a) / 0.01005 - 1.0).abs() < 0.01, "{a}");
        // Few steps stay a valid chain (β < 1): DDPM's β(t)/N would be 2 at N = 10.
        let (f, g) = Sde::vp().discretize(1.0, 0.9).unwrap();
        assert!(f.is_finite() && g < 1.0 && Sde::vp().langevin_alpha(1.0, 0.9).unwrap() > 0.0);
        // The last step of every SDE is Tweedie's: G² = σ(t_ε)² (the noise left at t_ε).
        for sde in [Sde::vp(), Sde::sub_vp(), Sde::ve()] {
            let t = sde.t_eps();
            let (_, g) = sde.discretize(t, 0.0).unwrap();
            let s = sde.marginal(t).unwrap().1;
            assert!((g / s - 1.0).abs() < 1e-12, "{sde:?}: {g} vs {s}");
        }
        assert!(Sde::vp().discretize(0.5, 0.5).is_err());
    }

    #[test]
    fn bad_times_and_parameters_are_errors() {
        assert!(Sde::vp().marginal(1.5).is_err());
        assert!(Sde::ve().coefficients(-0.1).is_err());
        assert!(Sde::vp().discretize(0.5, 0.7).is_err());
        assert!(Sde::sub_vp().langevin_alpha(f64::NAN, 0.5).is_err());
        assert!(Ve::new(1.0, 0.5).is_err() && Ve::new(f64::NAN, 1.0).is_err());
        assert!(Vp::new(-1.0, 1.0).is_err() && SubVp::new(0.1, f64::INFINITY).is_err());
        assert!(Vp::new(0.1, 10.0).is_ok());
        assert!(Sde::parse("vx").is_err());
        assert_eq!(Sde::parse("subvp").unwrap(), Sde::sub_vp());
    }

    #[test]
    fn the_named_sdes_are_the_three_processes() {
        for t in [0.0, 0.3, 1.0] {
            assert_eq!(
                Sde::ve().marginal(t).unwrap(),
                Ve::default().marginal(t).unwrap()
            );
            assert_eq!(
                Sde::vp().coefficients(t).unwrap(),
                Vp::default().coefficients(t).unwrap()
            );
            assert_eq!(
                Sde::sub_vp().marginal(t).unwrap(),
                SubVp::default().marginal(t).unwrap()
            );
        }
        assert_eq!(Sde::ve().t_eps(), 1e-5);
        assert_eq!((Sde::vp().t_eps(), Sde::vp().prior_std()), (1e-3, 1.0));
        assert_eq!(Sde::from(Ve::new(0.01, 10.0).unwrap()).prior_std(), 10.0);
    }

    #[test]
    fn prior_log_density_is_the_gaussian() {
        let ve = Sde::ve();
        let z = [3.0, -4.0];
        let want = -(2.0 * std::f64::consts::PI * 2500.0).ln() - 25.0 / 5000.0;
        assert!((ve.prior_log_density(&z) - want).abs() < 1e-12);
    }
}
