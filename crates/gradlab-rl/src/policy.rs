//! Policies linear in their features, with closed-form scores ∇log π and score Hessians ∇²log π:
//!
//! - [`GaussianLinear`]: a ~ N(Θφ(s), σ²I) with a fixed σ (Fisher-non-degenerate, as the
//!   policy-gradient paper assumes): ∇_Θ log π = (a − Θφ)φᵀ/σ², ∇²log π = −(I ⊗ φφᵀ)/σ².
//! - [`SoftmaxLinear`]: π(a|s) = softmax(Θφ(s))ₐ: ∇_Θ log π = (eₐ − π)φᵀ,
//!   ∇²log π = −(diag π − ππᵀ) ⊗ φφᵀ (the same for every action).
//!
//! θ is Θ row-major (one row per action dimension or action). φ(s) is the observation itself
//! ([`Features::Raw`]) or the observation with a trailing 1 ([`Features::WithBias`]).
//!
//! ```
//! use gradlab_rl::policy::{Features, Policy, SoftmaxLinear};
//! use gradlab_rl::env::Action;
//! let p = SoftmaxLinear::new(2, 3, Features::Raw).unwrap();
//! let theta = vec![0.0; p.dim()];
//! // uniform: log π = −ln 2 for either action
//! assert!((p.log_prob(&theta, &[1.0, 0.0, 0.0], &Action::Discrete(1)).unwrap() + 2f64.ln()).abs() < 1e-15);
//! ```

use crate::env::Action;
use crate::{Result, RlError, ensure};
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The feature map φ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Features {
    /// φ(s) = s.
    Raw,
    /// φ(s) = (s, 1).
    WithBias,
}

impl Features {
    fn len(self, k: usize) -> usize {
        match self {
            Features::Raw => k,
            Features::WithBias => k + 1,
        }
    }
    fn map(self, s: &[f64]) -> Vec<f64> {
        let mut f = s.to_vec();
        if self == Features::WithBias {
            f.push(1.0);
        }
        f
    }
}

/// A differentiable stochastic policy π_θ(a|s).
pub trait Policy: Clone {
    /// Number of parameters.
    fn dim(&self) -> usize;
    /// Observation length it expects.
    fn state_dim(&self) -> usize;
    /// Draw an action.
    fn act(&self, theta: &[f64], s: &[f64], rng: &mut StdRng) -> Result<Action>;
    /// log π_θ(a|s).
    fn log_prob(&self, theta: &[f64], s: &[f64], a: &Action) -> Result<f64>;
    /// ∇_θ log π_θ(a|s).
    fn score(&self, theta: &[f64], s: &[f64], a: &Action) -> Result<Vec<f64>>;
    /// ∇²_θ log π_θ(a|s) · v.
    fn score_hvp(&self, theta: &[f64], s: &[f64], a: &Action, v: &[f64]) -> Result<Vec<f64>>;
}

fn check_len(what: &str, v: &[f64], n: usize) -> Result<()> {
    if v.len() != n {
        return Err(RlError::Shape {
            what: what.into(),
            expected: format!("{n} values"),
            got: v.len().to_string(),
        });
    }
    crate::check_finite(what, v)
}

/// a ~ N(Θφ(s), σ²I).
#[derive(Debug, Clone)]
pub struct GaussianLinear {
    m: usize,
    k: usize,
    sigma: f64,
    features: Features,
}

impl GaussianLinear {
    /// A policy for `action_dim` actions from `state_dim` observations with std `sigma` > 0.
    pub fn new(
        action_dim: usize,
        state_dim: usize,
        sigma: f64,
        features: Features,
    ) -> Result<Self> {
        ensure(action_dim > 0 && state_dim > 0, "Gaussian policy", || {
            format!("dimensions {action_dim} × {state_dim}")
        })?;
        ensure(
            sigma > 0.0 && sigma.is_finite(),
            "Gaussian policy std",
            || format!("{sigma} (must be > 0)"),
        )?;
        Ok(Self {
            m: action_dim,
            k: state_dim,
            sigma,
            features,
        })
    }

    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    fn mean(&self, theta: &[f64], s: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        check_len("policy parameters", theta, self.dim())?;
        check_len("observation", s, self.k)?;
        let phi = self.features.map(s);
        let f = phi.len();
        Ok((
            (0..self.m)
                .map(|i| {
                    theta[i * f..(i + 1) * f]
                        .iter()
                        .zip(&phi)
                        .map(|(a, b)| a * b)
                        .sum()
                })
                .collect(),
            phi,
        ))
    }

    fn action<'a>(&self, a: &'a Action) -> Result<&'a [f64]> {
        match a {
            Action::Continuous(v) if v.len() == self.m => Ok(v),
            _ => Err(RlError::Shape {
                what: "action".into(),
                expected: format!("Continuous({})", self.m),
                got: format!("{a:?}"),
            }),
        }
    }
}

impl Policy for GaussianLinear {
    fn dim(&self) -> usize {
        self.m * self.features.len(self.k)
    }
    fn state_dim(&self) -> usize {
        self.k
    }
    fn act(&self, theta: &[f64], s: &[f64], rng: &mut StdRng) -> Result<Action> {
        let (mu, _) = self.mean(theta, s)?;
        Ok(Action::Continuous(
            mu.iter()
                .map(|m| m + self.sigma * rng.sample::<f64, _>(StandardNormal))
                .collect(),
        ))
    }
    fn log_prob(&self, theta: &[f64], s: &[f64], a: &Action) -> Result<f64> {
        let (mu, _) = self.mean(theta, s)?;
        let a = self.action(a)?;
        let s2 = self.sigma * self.sigma;
        Ok(a.iter()
            .zip(&mu)
            .map(|(a, m)| {
                -(a - m).powi(2) / (2.0 * s2) - 0.5 * (2.0 * std::f64::consts::PI * s2).ln()
            })
            .sum())
    }
    fn score(&self, theta: &[f64], s: &[f64], a: &Action) -> Result<Vec<f64>> {
        let (mu, phi) = self.mean(theta, s)?;
        let a = self.action(a)?;
        let s2 = self.sigma * self.sigma;
        Ok((0..self.m)
            .flat_map(|i| {
                let c = (a[i] - mu[i]) / s2;
                phi.iter().map(move |p| c * p).collect::<Vec<_>>()
            })
            .collect())
    }
    fn score_hvp(&self, theta: &[f64], s: &[f64], a: &Action, v: &[f64]) -> Result<Vec<f64>> {
        let (_, phi) = self.mean(theta, s)?;
        self.action(a)?;
        check_len("HVP direction", v, self.dim())?;
        let (f, s2) = (phi.len(), self.sigma * self.sigma);
        Ok((0..self.m)
            .flat_map(|i| {
                let vphi: f64 = v[i * f..(i + 1) * f]
                    .iter()
                    .zip(&phi)
                    .map(|(a, b)| a * b)
                    .sum();
                phi.iter().map(move |p| -vphi * p / s2).collect::<Vec<_>>()
            })
            .collect())
    }
}

/// π(a|s) = softmax(Θφ(s))ₐ.
#[derive(Debug, Clone)]
pub struct SoftmaxLinear {
    n: usize,
    k: usize,
    features: Features,
}

impl SoftmaxLinear {
    /// A policy over `actions` ≥ 2 actions from `state_dim` observations.
    pub fn new(actions: usize, state_dim: usize, features: Features) -> Result<Self> {
        ensure(actions >= 2 && state_dim > 0, "softmax policy", || {
            format!("{actions} actions, {state_dim} inputs")
        })?;
        Ok(Self {
            n: actions,
            k: state_dim,
            features,
        })
    }

    /// The action probabilities and φ(s).
    pub fn probs(&self, theta: &[f64], s: &[f64]) -> Result<(Vec<f64>, Vec<f64>)> {
        check_len("policy parameters", theta, self.dim())?;
        check_len("observation", s, self.k)?;
        let phi = self.features.map(s);
        let f = phi.len();
        let z: Vec<f64> = (0..self.n)
            .map(|i| {
                theta[i * f..(i + 1) * f]
                    .iter()
                    .zip(&phi)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        let zmax = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - zmax).exp()).collect();
        let sum: f64 = e.iter().sum();
        Ok((e.iter().map(|v| v / sum).collect(), phi))
    }

    fn index(&self, a: &Action) -> Result<usize> {
        match a {
            Action::Discrete(i) if *i < self.n => Ok(*i),
            _ => Err(RlError::Shape {
                what: "action".into(),
                expected: format!("Discrete(< {})", self.n),
                got: format!("{a:?}"),
            }),
        }
    }
}

impl Policy for SoftmaxLinear {
    fn dim(&self) -> usize {
        self.n * self.features.len(self.k)
    }
    fn state_dim(&self) -> usize {
        self.k
    }
    fn act(&self, theta: &[f64], s: &[f64], rng: &mut StdRng) -> Result<Action> {
        let (p, _) = self.probs(theta, s)?;
        let mut u = rng.random::<f64>();
        for (i, pi) in p.iter().enumerate() {
            if u < *pi {
                return Ok(Action::Discrete(i));
            }
            u -= pi;
        }
        Ok(Action::Discrete(self.n - 1))
    }
    fn log_prob(&self, theta: &[f64], s: &[f64], a: &Action) -> Result<f64> {
        let (p, _) = self.probs(theta, s)?;
        Ok(p[self.index(a)?].ln())
    }
    fn score(&self, theta: &[f64], s: &[f64], a: &Action) -> Result<Vec<f64>> {
        let (p, phi) = self.probs(theta, s)?;
        let a = self.index(a)?;
        Ok((0..self.n)
            .flat_map(|i| {
                let c = f64::from(u8::from(i == a)) - p[i];
                phi.iter().map(move |x| c * x).collect::<Vec<_>>()
            })
            .collect())
    }
    fn score_hvp(&self, theta: &[f64], s: &[f64], a: &Action, v: &[f64]) -> Result<Vec<f64>> {
        let (p, phi) = self.probs(theta, s)?;
        self.index(a)?;
        check_len("HVP direction", v, self.dim())?;
        let f = phi.len();
        // u = Vφ; (diag π − ππᵀ)u = π ⊙ u − π (π·u)
        let u: Vec<f64> = (0..self.n)
            .map(|i| {
                v[i * f..(i + 1) * f]
                    .iter()
                    .zip(&phi)
                    .map(|(a, b)| a * b)
                    .sum()
            })
            .collect();
        let pu: f64 = p.iter().zip(&u).map(|(a, b)| a * b).sum();
        Ok((0..self.n)
            .flat_map(|i| {
                let w = p[i] * u[i] - p[i] * pu;
                phi.iter().map(move |x| -w * x).collect::<Vec<_>>()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Central differences of log π (score) and of the score (score HVP).
    fn check_against_fd<P: Policy>(p: &P, theta: &[f64], s: &[f64], a: &Action, v: &[f64]) {
        let h = 1e-5;
        let score = p.score(theta, s, a).unwrap();
        for i in 0..theta.len() {
            let mut tp = theta.to_vec();
            let mut tm = theta.to_vec();
            tp[i] += h;
            tm[i] -= h;
            let fd = (p.log_prob(&tp, s, a).unwrap() - p.log_prob(&tm, s, a).unwrap()) / (2.0 * h);
            assert!(
                (fd - score[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "score {i}: fd {fd} vs {}",
                score[i]
            );
        }
        let at = |t: f64| {
            theta
                .iter()
                .zip(v)
                .map(|(a, b)| a + t * b)
                .collect::<Vec<_>>()
        };
        let (sp, sm) = (
            p.score(&at(h), s, a).unwrap(),
            p.score(&at(-h), s, a).unwrap(),
        );
        let hv = p.score_hvp(theta, s, a, v).unwrap();
        for i in 0..theta.len() {
            let fd = (sp[i] - sm[i]) / (2.0 * h);
            assert!(
                (fd - hv[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                "hvp {i}: fd {fd} vs {}",
                hv[i]
            );
        }
    }

    proptest! {
        #[test]
        fn softmax_scores_and_hessians_match_finite_differences(theta in prop::collection::vec(-2.0..2.0f64, 9), s in prop::collection::vec(-1.0..1.0f64, 2), v in prop::collection::vec(-1.0..1.0f64, 9), a in 0usize..3) {
            let p = SoftmaxLinear::new(3, 2, Features::WithBias).unwrap();
            check_against_fd(&p, &theta, &s, &Action::Discrete(a), &v);
        }

        #[test]
        fn gaussian_scores_and_hessians_match_finite_differences(theta in prop::collection::vec(-2.0..2.0f64, 6), s in prop::collection::vec(-1.0..1.0f64, 3), v in prop::collection::vec(-1.0..1.0f64, 6), a in prop::collection::vec(-2.0..2.0f64, 2)) {
            let p = GaussianLinear::new(2, 3, 0.7, Features::Raw).unwrap();
            check_against_fd(&p, &theta, &s, &Action::Continuous(a), &v);
        }
    }

    #[test]
    fn wrong_shapes_are_errors() {
        let p = SoftmaxLinear::new(2, 2, Features::Raw).unwrap();
        assert!(p.score(&[0.0; 3], &[0.0; 2], &Action::Discrete(0)).is_err());
        assert!(p.score(&[0.0; 4], &[0.0; 3], &Action::Discrete(0)).is_err());
        assert!(p.score(&[0.0; 4], &[0.0; 2], &Action::Discrete(2)).is_err());
        assert!(
            p.score(&[f64::NAN; 4], &[0.0; 2], &Action::Discrete(0))
                .is_err()
        );
        assert!(GaussianLinear::new(1, 1, 0.0, Features::Raw).is_err());
        let g = GaussianLinear::new(1, 1, 1.0, Features::Raw).unwrap();
        assert!(g.score(&[0.0], &[1.0], &Action::Discrete(0)).is_err());
    }
}
