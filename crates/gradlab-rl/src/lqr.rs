//! A linear-quadratic regulator with one input, and the exact return of a linear Gaussian policy.
//!
//! Dynamics x′ = A x + b u + w ε (ε ~ N(0, I)), reward r = −(xᵀQx + ρ u²), x₀ ~ N(0, s₀² I), a
//! fixed horizon H and discount γ. For the policy u = θᵀx + σ ξ (ξ ~ N(0, 1)) the state covariance
//! follows Σ₀ = s₀² I, Σₜ₊₁ = M Σₜ Mᵀ + σ² b bᵀ + w² I with M = A + b θᵀ, so the return is exact:
//!
//! J(θ) = −Σₜ₌₀^{H−1} γᵗ [tr(Q Σₜ) + ρ (θᵀ Σₜ θ + σ²)].
//!
//! J is a polynomial in θ; evaluated on hyper-dual numbers it gives ∇J and ∇²J·v exactly (to
//! rounding), the reference the policy-gradient estimators are tested against. The optimum over
//! stationary gains, J*, is found by Newton's method on those exact derivatives, started at the
//! discounted algebraic Riccati gain (the infinite-horizon optimum), so optimality gaps are exact.

use crate::env::{Action, Clock, Env, Space, check_action};
use crate::{Result, RlError, ensure};
use rand::prelude::*;
use rand_distr::StandardNormal;
use std::ops::{Add, Mul, Sub};

/// The regulator.
#[derive(Debug, Clone)]
pub struct Lqr {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    q: Vec<f64>,
    rho: f64,
    noise: f64,
    init: f64,
    horizon: usize,
    gamma: f64,
    x: Vec<f64>,
    rng: StdRng,
    clock: Clock,
}

impl Lqr {
    /// A regulator with state dimension n = `b.len()`: `a` (n × n, row-major), `b` (n), `q`
    /// (n × n, symmetric positive semi-definite), input cost `rho` > 0, process noise std `noise`,
    /// initial state std `init`, `horizon` steps, discount `gamma` ∈ (0, 1].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        a: Vec<f64>,
        b: Vec<f64>,
        q: Vec<f64>,
        rho: f64,
        noise: f64,
        init: f64,
        horizon: usize,
        gamma: f64,
    ) -> Result<Self> {
        let n = b.len();
        ensure(n > 0, "LQR", || {
            "the state dimension must be positive".into()
        })?;
        for (what, v, len) in [("A", &a, n * n), ("Q", &q, n * n)] {
            if v.len() != len {
                return Err(RlError::Shape {
                    what: format!("LQR {what}"),
                    expected: format!("{len} values"),
                    got: format!("{}", v.len()),
                });
            }
        }
        crate::check_finite("LQR matrices", &[a.as_slice(), &b, &q].concat())?;
        ensure(rho > 0.0 && rho.is_finite(), "LQR input cost", || {
            format!("{rho} (must be > 0)")
        })?;
        ensure(noise >= 0.0 && noise.is_finite(), "LQR noise", || {
            format!("{noise} (must be ≥ 0)")
        })?;
        ensure(
            init >= 0.0 && init.is_finite(),
            "LQR initial spread",
            || format!("{init} (must be ≥ 0)"),
        )?;
        ensure(horizon > 0, "LQR horizon", || "must be positive".into())?;
        ensure(gamma > 0.0 && gamma <= 1.0, "LQR discount", || {
            format!("{gamma} (must be in (0, 1])")
        })?;
        ensure(
            (0..n).all(|i| {
                (0..n).all(|j| {
                    (q[i * n + j] - q[j * n + i]).abs() <= 1e-12 * (1.0 + q[i * n + j].abs())
                })
            }),
            "LQR Q",
            || "must be symmetric".into(),
        )?;
        Ok(Self {
            n,
            a,
            b,
            q,
            rho,
            noise,
            init,
            horizon,
            gamma,
            x: vec![0.0; n],
            rng: StdRng::seed_from_u64(0),
            clock: Clock::new(horizon),
        })
    }

    /// The 1-D regulator x′ = a x + b u + w ε, reward −(q x² + ρ u²).
    #[allow(clippy::too_many_arguments)]
    pub fn scalar(
        a: f64,
        b: f64,
        q: f64,
        rho: f64,
        noise: f64,
        init: f64,
        horizon: usize,
        gamma: f64,
    ) -> Result<Self> {
        Self::new(vec![a], vec![b], vec![q], rho, noise, init, horizon, gamma)
    }

    /// The 2-D double integrator (position, velocity; dt 0.1, force input) with Q = I.
    pub fn double_integrator(
        rho: f64,
        noise: f64,
        init: f64,
        horizon: usize,
        gamma: f64,
    ) -> Result<Self> {
        Self::new(
            vec![1.0, 0.1, 0.0, 1.0],
            vec![0.0, 0.1],
            vec![1.0, 0.0, 0.0, 1.0],
            rho,
            noise,
            init,
            horizon,
            gamma,
        )
    }

    /// State dimension (= the gain's length).
    pub fn dim(&self) -> usize {
        self.n
    }

    /// Horizon H.
    pub fn horizon(&self) -> usize {
        self.horizon
    }

    /// Discount γ.
    pub fn gamma(&self) -> f64 {
        self.gamma
    }

    fn check_gain(&self, theta: &[f64], sigma: f64) -> Result<()> {
        if theta.len() != self.n {
            return Err(RlError::Shape {
                what: "LQR gain".into(),
                expected: format!("{} values", self.n),
                got: theta.len().to_string(),
            });
        }
        crate::check_finite("LQR gain", theta)?;
        ensure(sigma >= 0.0 && sigma.is_finite(), "policy std", || {
            format!("{sigma} (must be ≥ 0)")
        })
    }

    /// J(θ) for the policy u = θᵀx + σξ, exactly.
    pub fn exact_return(&self, theta: &[f64], sigma: f64) -> Result<f64> {
        self.check_gain(theta, sigma)?;
        let th: Vec<HyperDual> = theta.iter().map(|&v| HyperDual::real(v)).collect();
        Ok(self.return_of(&th, sigma).re)
    }

    /// ∇J(θ), exactly (one hyper-dual evaluation per coordinate).
    pub fn exact_gradient(&self, theta: &[f64], sigma: f64) -> Result<Vec<f64>> {
        self.check_gain(theta, sigma)?;
        Ok((0..self.n)
            .map(|i| {
                let th: Vec<HyperDual> = theta
                    .iter()
                    .enumerate()
                    .map(|(j, &v)| HyperDual {
                        re: v,
                        e1: f64::from(u8::from(i == j)),
                        e2: 0.0,
                        e12: 0.0,
                    })
                    .collect();
                self.return_of(&th, sigma).e1
            })
            .collect())
    }

    /// ∇²J(θ)·v, exactly (eᵢᵀ∇²J v is the ε₁ε₂ part of J(θ + ε₁eᵢ + ε₂v)).
    pub fn exact_hvp(&self, theta: &[f64], sigma: f64, v: &[f64]) -> Result<Vec<f64>> {
        self.check_gain(theta, sigma)?;
        if v.len() != self.n {
            return Err(RlError::Shape {
                what: "LQR HVP direction".into(),
                expected: format!("{} values", self.n),
                got: v.len().to_string(),
            });
        }
        Ok((0..self.n)
            .map(|i| {
                let th: Vec<HyperDual> = theta
                    .iter()
                    .zip(v)
                    .enumerate()
                    .map(|(j, (&t, &vj))| HyperDual {
                        re: t,
                        e1: f64::from(u8::from(i == j)),
                        e2: vj,
                        e12: 0.0,
                    })
                    .collect();
                self.return_of(&th, sigma).e12
            })
            .collect())
    }

    /// The return on any number type (the covariance recursion of the module docs).
    fn return_of(&self, theta: &[HyperDual], sigma: f64) -> HyperDual {
        let n = self.n;
        let c = HyperDual::real;
        let mut cov: Vec<HyperDual> = (0..n * n)
            .map(|k| {
                c(if k / n == k % n {
                    self.init * self.init
                } else {
                    0.0
                })
            })
            .collect();
        // M = A + b θᵀ
        let m: Vec<HyperDual> = (0..n * n)
            .map(|k| c(self.a[k]) + theta[k % n] * self.b[k / n])
            .collect();
        let mut total = c(0.0);
        let mut disc = 1.0;
        for _ in 0..self.horizon {
            let mut cost = c(self.rho * sigma * sigma);
            for i in 0..n {
                for j in 0..n {
                    cost = cost
                        + cov[i * n + j] * self.q[j * n + i]
                        + theta[i] * cov[i * n + j] * theta[j] * self.rho;
                }
            }
            total = total - cost * disc;
            disc *= self.gamma;
            // Σ ← M Σ Mᵀ + σ² b bᵀ + w² I
            let mut ms = vec![c(0.0); n * n];
            for i in 0..n {
                for j in 0..n {
                    for k in 0..n {
                        ms[i * n + j] = ms[i * n + j] + m[i * n + k] * cov[k * n + j];
                    }
                }
            }
            for i in 0..n {
                for j in 0..n {
                    let mut s = c(sigma * sigma * self.b[i] * self.b[j]
                        + if i == j { self.noise * self.noise } else { 0.0 });
                    for k in 0..n {
                        s = s + ms[i * n + k] * m[j * n + k];
                    }
                    cov[i * n + j] = s;
                }
            }
        }
        total
    }

    /// The discounted algebraic Riccati gain θ_R (u = θ_Rᵀ x), the infinite-horizon optimum:
    /// P = Q + γAᵀPA − γ²AᵀPb (ρ + γbᵀPb)⁻¹ bᵀPA, θ_R = −γ (ρ + γbᵀPb)⁻¹ AᵀPb. An error when the
    /// iteration does not settle (an unstabilisable system).
    pub fn riccati_gain(&self) -> Result<Vec<f64>> {
        let n = self.n;
        let mut p = self.q.clone();
        for _ in 0..100_000 {
            let pb: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| p[i * n + j] * self.b[j]).sum())
                .collect();
            let s = self.rho + self.gamma * self.b.iter().zip(&pb).map(|(b, v)| b * v).sum::<f64>();
            let atpb: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|k| self.a[k * n + i] * pb[k]).sum())
                .collect();
            let mut next = vec![0.0; n * n];
            for i in 0..n {
                for j in 0..n {
                    let atpa: f64 = (0..n)
                        .map(|k| {
                            (0..n)
                                .map(|l| self.a[k * n + i] * p[k * n + l] * self.a[l * n + j])
                                .sum::<f64>()
                        })
                        .sum();
                    next[i * n + j] = self.q[i * n + j] + self.gamma * atpa
                        - self.gamma * self.gamma * atpb[i] * atpb[j] / s;
                }
            }
            let change = next
                .iter()
                .zip(&p)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            p = next;
            if !p.iter().all(|v| v.is_finite()) {
                break;
            }
            if change <= 1e-13 * (1.0 + p.iter().fold(0.0f64, |m, v| m.max(v.abs()))) {
                return Ok(atpb.iter().map(|v| -self.gamma * v / s).collect());
            }
        }
        Err(RlError::Invalid {
            what: "LQR",
            why: "the Riccati iteration did not converge (is (A, b) stabilisable?)".into(),
        })
    }

    /// The best stationary gain θ* of the horizon-H problem and J* = J(θ*), by Newton's method on
    /// the exact gradient and Hessian from the Riccati gain. An error unless it ends at a strict
    /// maximum with a vanishing gradient.
    pub fn optimal_gain(&self, sigma: f64) -> Result<(Vec<f64>, f64)> {
        let n = self.n;
        let mut theta = self.riccati_gain()?;
        let mut j = self.exact_return(&theta, sigma)?;
        for _ in 0..200 {
            let g = self.exact_gradient(&theta, sigma)?;
            let h = self.exact_hessian(&theta, sigma)?;
            let neg: Vec<f64> = h.iter().map(|v| -v).collect();
            let step = cholesky_solve(&neg, &g, n).ok_or_else(|| RlError::Invalid {
                what: "LQR",
                why: "the return is not concave along the Newton path".into(),
            })?;
            let mut t = 1.0;
            loop {
                let cand: Vec<f64> = theta.iter().zip(&step).map(|(a, s)| a + t * s).collect();
                let jc = self.exact_return(&cand, sigma)?;
                if jc >= j - 1e-15 * j.abs() || t < 1e-12 {
                    theta = cand;
                    j = jc;
                    break;
                }
                t *= 0.5;
            }
            let gn = self
                .exact_gradient(&theta, sigma)?
                .iter()
                .map(|v| v * v)
                .sum::<f64>()
                .sqrt();
            if gn <= 1e-11 * (1.0 + j.abs()) {
                let h = self.exact_hessian(&theta, sigma)?;
                let neg: Vec<f64> = h.iter().map(|v| -v).collect();
                if cholesky_solve(&neg, &vec![0.0; n], n).is_none() {
                    break;
                }
                return Ok((theta, j));
            }
        }
        Err(RlError::Invalid {
            what: "LQR",
            why: "Newton's method did not reach a strict maximum of J".into(),
        })
    }

    /// The dense ∇²J(θ) (n × n, row-major).
    pub fn exact_hessian(&self, theta: &[f64], sigma: f64) -> Result<Vec<f64>> {
        let mut h = Vec::with_capacity(self.n * self.n);
        for j in 0..self.n {
            let mut e = vec![0.0; self.n];
            e[j] = 1.0;
            h.extend(self.exact_hvp(theta, sigma, &e)?);
        }
        // column j was written as row j; the Hessian is symmetric
        Ok(h)
    }
}

/// Solve S x = g for a symmetric positive definite S (n × n) by Cholesky; `None` when S is not
/// positive definite.
fn cholesky_solve(s: &[f64], g: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = s[i * n + i] - sum;
                if d <= 0.0 || !d.is_finite() {
                    return None;
                }
                l[i * n + i] = d.sqrt();
            } else {
                l[i * n + j] = (s[i * n + j] - sum) / l[j * n + j];
            }
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        y[i] = (g[i] - (0..i).map(|k| l[i * n + k] * y[k]).sum::<f64>()) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        x[i] = (y[i] - (i + 1..n).map(|k| l[k * n + i] * x[k]).sum::<f64>()) / l[i * n + i];
    }
    Some(x)
}

impl Env for Lqr {
    fn name(&self) -> &'static str {
        "LQR"
    }
    fn state_dim(&self) -> usize {
        self.n
    }
    fn action_space(&self) -> Space {
        Space::Continuous(1)
    }
    fn reset(&mut self, seed: u64) -> Vec<f64> {
        self.rng = StdRng::seed_from_u64(seed);
        self.x = (0..self.n)
            .map(|_| self.init * self.rng.sample::<f64, _>(StandardNormal))
            .collect();
        self.clock.reset();
        self.x.clone()
    }
    fn step(&mut self, action: &Action) -> Result<Step> {
        self.clock.enter(self.name())?;
        check_action(self.action_space(), action)?;
        let Action::Continuous(u) = action else {
            unreachable!("checked above")
        };
        let (n, u) = (self.n, u[0]);
        let cost = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| self.x[i] * self.q[i * n + j] * self.x[j])
                    .sum::<f64>()
            })
            .sum::<f64>()
            + self.rho * u * u;
        let next: Vec<f64> = (0..n)
            .map(|i| {
                (0..n).map(|j| self.a[i * n + j] * self.x[j]).sum::<f64>()
                    + self.b[i] * u
                    + self.noise * self.rng.sample::<f64, _>(StandardNormal)
            })
            .collect();
        self.x = next;
        let done = self.clock.tick(false);
        Ok(Step {
            state: self.x.clone(),
            reward: -cost,
            done,
            terminal: false,
        })
    }
}

use crate::env::Step;

/// A hyper-dual number a + b ε₁ + c ε₂ + d ε₁ε₂ (ε₁² = ε₂² = 0): the ε₁ε₂ part of f(x + ε₁u +
/// ε₂v) is uᵀ∇²f v exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
struct HyperDual {
    re: f64,
    e1: f64,
    e2: f64,
    e12: f64,
}

impl HyperDual {
    fn real(re: f64) -> Self {
        Self {
            re,
            e1: 0.0,
            e2: 0.0,
            e12: 0.0,
        }
    }
}

impl Add for HyperDual {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            re: self.re + o.re,
            e1: self.e1 + o.e1,
            e2: self.e2 + o.e2,
            e12: self.e12 + o.e12,
        }
    }
}

impl Sub for HyperDual {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            re: self.re - o.re,
            e1: self.e1 - o.e1,
            e2: self.e2 - o.e2,
            e12: self.e12 - o.e12,
        }
    }
}

impl Mul for HyperDual {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self {
            re: self.re * o.re,
            e1: self.re * o.e1 + self.e1 * o.re,
            e2: self.re * o.e2 + self.e2 * o.re,
            e12: self.re * o.e12 + self.e1 * o.e2 + self.e2 * o.e1 + self.e12 * o.re,
        }
    }
}

impl Mul<f64> for HyperDual {
    type Output = Self;
    fn mul(self, s: f64) -> Self {
        Self {
            re: self.re * s,
            e1: self.e1 * s,
            e2: self.e2 * s,
            e12: self.e12 * s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lqr2() -> Lqr {
        Lqr::double_integrator(0.1, 0.05, 1.0, 20, 0.99).unwrap()
    }

    #[test]
    fn the_exact_return_matches_monte_carlo_rollouts() {
        // 40,000 simulated episodes of u = θx + σξ against the covariance recursion.
        let lqr = Lqr::scalar(1.1, 0.5, 1.0, 0.1, 0.1, 1.0, 20, 0.99).unwrap();
        let (theta, sigma) = (-1.2, 0.5);
        let exact = lqr.exact_return(&[theta], sigma).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let (mut s, mut s2, n) = (0.0, 0.0, 40_000);
        for ep in 0..n {
            let mut env = lqr.clone();
            let mut x = env.reset(ep as u64);
            let (mut ret, mut disc) = (0.0, 1.0);
            loop {
                let u = theta * x[0] + sigma * rng.sample::<f64, _>(StandardNormal);
                let st = env.step(&Action::Continuous(vec![u])).unwrap();
                ret += disc * st.reward;
                disc *= 0.99;
                x = st.state;
                if st.done {
                    break;
                }
            }
            s += ret;
            s2 += ret * ret;
        }
        let mean = s / n as f64;
        let se = ((s2 / n as f64 - mean * mean) / n as f64).sqrt();
        assert!(
            (mean - exact).abs() < 4.0 * se,
            "MC {mean} ± {se} vs exact {exact}"
        );
    }

    #[test]
    fn hyper_dual_derivatives_match_central_differences() {
        let lqr = lqr2();
        let (theta, sigma) = (vec![-2.0, -3.0], 0.3);
        let g = lqr.exact_gradient(&theta, sigma).unwrap();
        let v = vec![0.7, -0.4];
        let hv = lqr.exact_hvp(&theta, sigma, &v).unwrap();
        let h = 1e-5;
        for i in 0..2 {
            let mut p = theta.clone();
            let mut m = theta.clone();
            p[i] += h;
            m[i] -= h;
            let fd = (lqr.exact_return(&p, sigma).unwrap() - lqr.exact_return(&m, sigma).unwrap())
                / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-6 * (1.0 + g[i].abs()),
                "grad {i}: {fd} vs {}",
                g[i]
            );
        }
        let at = |t: f64| {
            theta
                .iter()
                .zip(&v)
                .map(|(a, b)| a + t * b)
                .collect::<Vec<_>>()
        };
        let gp = lqr.exact_gradient(&at(h), sigma).unwrap();
        let gm = lqr.exact_gradient(&at(-h), sigma).unwrap();
        for i in 0..2 {
            let fd = (gp[i] - gm[i]) / (2.0 * h);
            assert!(
                (fd - hv[i]).abs() < 1e-6 * (1.0 + hv[i].abs()),
                "hvp {i}: {fd} vs {}",
                hv[i]
            );
        }
    }

    #[test]
    fn the_optimal_gain_is_a_stationary_maximum_near_the_riccati_gain() {
        let lqr = Lqr::scalar(1.1, 0.5, 1.0, 0.1, 0.1, 1.0, 200, 0.95).unwrap();
        let (k, j) = lqr.optimal_gain(0.5).unwrap();
        let r = lqr.riccati_gain().unwrap();
        // A long horizon: the stationary optimum approaches the infinite-horizon Riccati gain.
        assert!((k[0] - r[0]).abs() < 1e-3, "{k:?} vs Riccati {r:?}");
        for d in [-1e-3, 1e-3] {
            assert!(lqr.exact_return(&[k[0] + d], 0.5).unwrap() < j);
        }
        // The scalar discounted Riccati equation in closed form: p = q + γa²p − γ²a²b²p²/(ρ + γb²p).
        let p = {
            let (a, b, q, rho, g) = (1.1f64, 0.5f64, 1.0, 0.1, 0.95);
            // γb²p² + (ρ − γa²ρ − γb²q)p − qρ = 0
            let (qa, qb, qc) = (g * b * b, rho - g * a * a * rho - g * b * b * q, -q * rho);
            (-qb + (qb * qb - 4.0 * qa * qc).sqrt()) / (2.0 * qa)
        };
        let closed = -0.95 * 1.1 * 0.5 * p / (0.1 + 0.95 * 0.25 * p);
        assert!(
            (r[0] - closed).abs() < 1e-9,
            "{} vs closed form {closed}",
            r[0]
        );
        let (k2, _) = lqr2().optimal_gain(0.3).unwrap();
        assert!(
            lqr2()
                .exact_gradient(&k2, 0.3)
                .unwrap()
                .iter()
                .all(|g| g.abs() < 1e-8)
        );
    }

    #[test]
    fn bad_settings_and_stepping_after_the_end_are_errors() {
        assert!(Lqr::scalar(1.0, 1.0, 1.0, 0.0, 0.1, 1.0, 10, 0.9).is_err());
        assert!(Lqr::scalar(1.0, 1.0, 1.0, 0.1, 0.1, 1.0, 0, 0.9).is_err());
        assert!(Lqr::new(vec![1.0, 2.0], vec![1.0], vec![1.0], 0.1, 0.0, 1.0, 5, 0.9).is_err());
        assert!(
            Lqr::new(
                vec![1.0, 0.0, 0.0, 1.0],
                vec![1.0, 0.0],
                vec![1.0, 0.5, 0.0, 1.0],
                0.1,
                0.0,
                1.0,
                5,
                0.9
            )
            .is_err()
        );
        let mut env = Lqr::scalar(1.0, 1.0, 1.0, 0.1, 0.1, 1.0, 2, 0.9).unwrap();
        assert!(matches!(
            env.step(&Action::Continuous(vec![0.0])),
            Err(RlError::NotReset { .. })
        ));
        env.reset(0);
        assert!(env.step(&Action::Discrete(0)).is_err());
        assert!(env.step(&Action::Continuous(vec![f64::NAN])).is_err());
        env.step(&Action::Continuous(vec![0.0])).unwrap();
        assert!(env.step(&Action::Continuous(vec![0.0])).unwrap().done);
        assert!(matches!(
            env.step(&Action::Continuous(vec![0.0])),
            Err(RlError::EpisodeOver { .. })
        ));
        assert!(env.exact_return(&[0.0, 1.0], 0.1).is_err());
        assert!(env.exact_return(&[0.0], -1.0).is_err());
    }
}
