//! ODICE (Mao, Xu, Zhan, Zhang, Wang and Jiang, "ODICE: Revealing the Mystery of Distribution
//! Correction Estimation via Orthogonal-gradient Update", ICLR 2024), as the official `odice.py`.
//!
//! The DICE value objective with Pearson χ²: f*(δ) = δω − (ω − 1)², ω = max(δ/2 + 1, 0)
//! (f*′(δ) = ω), minimised over V:
//! L(V) = (1 − Λ) E[V(s)] + Λ E[f*(r + γ(1 − d)V(s′) − V(s))].
//! Its gradient has a forward part (through V(s)) and a backward part (through V(s′)). With a
//! target V̄ (an EMA, β = 0.005; min over the twin heads):
//! - forward residual δ_f = r + γ(1 − d)V̄(s′) − V(s), g_f = ∇ E[Λ f*(δ_f)];
//! - backward residual δ_b = r + γ(1 − d)V(s′) − V̄(s), g_b = ∇ E[Λη f*(δ_b)];
//! - **orthogonal** update: g = ∇(1 − Λ)E[V(s)] + g_f + g_b⊥, g_b⊥ = g_b − (g_b·g_f/‖g_f‖²)g_f
//!   (projected over all value parameters; ‖g_f‖² floored at 1e-10);
//! - **true**-gradient update: the full gradient of L with the online V on both sides (no target,
//!   no η); **semi**-gradient: only the forward part, with V̄(s′).
//!
//! Value: twin heads, each trained against the min-target, linear in given state features (the
//! official uses two 256-unit MLPs; the update rules are the same on any parameter vector). Both
//! heads and the policy step with Adam (PyTorch semantics; the policy with weight decay). Policy:
//! weighted behaviour cloning, −E[w log π(a|s)] with w = min(max(δ_f, 0), 100) detached and
//! averaged over the heads: the code's max(δ, 0), not the theoretical (f′)⁻¹(δ) = δ/2 + 1.

use crate::env::Action;
use crate::offline::Dataset;
use crate::policy::Policy;
use crate::{Result, RlError, ensure};
use rand::prelude::*;

/// Which value update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// The full gradient of the DICE objective (online V on both sides).
    TrueGradient,
    /// The forward part only, with the target V̄(s′).
    SemiGradient,
    /// Forward plus the backward part projected orthogonally to it (ODICE).
    Orthogonal,
}

/// f*(δ) for Pearson χ².
pub fn f_star(d: f64) -> f64 {
    let w = (d / 2.0 + 1.0).max(0.0);
    d * w - (w - 1.0) * (w - 1.0)
}

/// f*′(δ) = max(δ/2 + 1, 0).
pub fn f_star_prime(d: f64) -> f64 {
    (d / 2.0 + 1.0).max(0.0)
}

/// g_b − (g_b·g_f / max(‖g_f‖², 1e-10)) g_f: the backward gradient on the normal plane of the
/// forward one.
pub fn project_out(gb: &[f64], gf: &[f64]) -> Vec<f64> {
    let c = dot(gf, gb) / dot(gf, gf).max(1e-10);
    gb.iter().zip(gf).map(|(b, f)| b - c * f).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Settings (the official defaults where they apply).
#[derive(Debug, Clone, Copy)]
pub struct OdiceConfig {
    /// Λ (0.6 in the official argparse).
    pub lambda: f64,
    /// η (1.0).
    pub eta: f64,
    /// γ (0.99).
    pub gamma: f64,
    /// Value learning rate.
    pub value_lr: f64,
    /// Policy learning rate.
    pub policy_lr: f64,
    /// Policy weight decay (1e-4).
    pub policy_wd: f64,
    /// Target EMA rate β (0.005).
    pub beta: f64,
    /// Batch size.
    pub batch: usize,
    /// Twin value heads.
    pub twin: bool,
}

impl Default for OdiceConfig {
    fn default() -> Self {
        Self {
            lambda: 0.6,
            eta: 1.0,
            gamma: 0.99,
            value_lr: 2e-4,
            policy_lr: 2e-4,
            policy_wd: 1e-4,
            beta: 0.005,
            batch: 256,
            twin: true,
        }
    }
}

/// Adam with PyTorch's semantics (L2 weight decay added to the gradient).
#[derive(Debug, Clone)]
struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    lr: f64,
    wd: f64,
}

impl Adam {
    fn new(n: usize, lr: f64, wd: f64) -> Self {
        Self {
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
            lr,
            wd,
        }
    }
    fn step(&mut self, x: &mut [f64], g: &[f64]) {
        self.t += 1;
        let (b1, b2) = (0.9f64, 0.999f64);
        let (c1, c2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        for i in 0..x.len() {
            let gi = g[i] + self.wd * x[i];
            self.m[i] = b1 * self.m[i] + (1.0 - b1) * gi;
            self.v[i] = b2 * self.v[i] + (1.0 - b2) * gi * gi;
            x[i] -= self.lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

/// One featurised transition.
#[derive(Debug, Clone)]
struct Sample {
    phi: Vec<f64>,
    phi2: Vec<f64>,
    s: Vec<f64>,
    a: Action,
    r: f64,
    done: bool,
}

/// What one step saw.
#[derive(Debug, Clone, Copy)]
pub struct StepStats {
    /// cos(g_f, g_b) of the forward and backward gradients (the orthogonal update's definitions).
    pub cos_forward_backward: f64,
    /// Mean forward residual.
    pub td_mean: f64,
}

/// An ODICE learner.
pub struct Odice<P: Policy> {
    cfg: OdiceConfig,
    update: Update,
    heads: usize,
    dim: usize,
    /// Value parameters, head after head (heads × feature dim).
    pub v: Vec<f64>,
    target: Vec<f64>,
    /// The policy.
    pub policy: P,
    /// Its parameters.
    pub theta: Vec<f64>,
    data: Vec<Sample>,
    adam_v: Adam,
    adam_pi: Adam,
    rng: StdRng,
}

impl<P: Policy> Odice<P> {
    /// A learner on `data`, value features `features(s)` (fixed length), `policy` over the raw
    /// states, seeded. An error for bad settings or features of varying length.
    pub fn new(
        data: &Dataset,
        features: impl Fn(&[f64]) -> Vec<f64>,
        policy: P,
        update: Update,
        cfg: OdiceConfig,
        seed: u64,
    ) -> Result<Self> {
        ensure((0.0..=1.0).contains(&cfg.lambda), "Λ", || {
            format!("{} (must be in [0, 1])", cfg.lambda)
        })?;
        ensure(cfg.eta >= 0.0 && cfg.eta.is_finite(), "η", || {
            format!("{}", cfg.eta)
        })?;
        ensure(cfg.gamma > 0.0 && cfg.gamma <= 1.0, "γ", || {
            format!("{}", cfg.gamma)
        })?;
        for (what, v) in [("value lr", cfg.value_lr), ("policy lr", cfg.policy_lr)] {
            ensure(v > 0.0 && v.is_finite(), "learning rate", || {
                format!("{what} = {v}")
            })?;
        }
        ensure(cfg.beta > 0.0 && cfg.beta <= 1.0, "β", || {
            format!("{}", cfg.beta)
        })?;
        ensure(cfg.batch > 0, "batch", || "must be positive".into())?;
        ensure(policy.state_dim() == data.state_dim, "policy", || {
            format!(
                "reads {} inputs, the data has {}",
                policy.state_dim(),
                data.state_dim
            )
        })?;
        let samples: Vec<Sample> = data
            .transitions
            .iter()
            .map(|t| Sample {
                phi: features(&t.s),
                phi2: features(&t.s2),
                s: t.s.clone(),
                a: t.a.clone(),
                r: t.r,
                done: t.done,
            })
            .collect();
        let dim = samples.first().map_or(0, |s| s.phi.len());
        ensure(
            dim > 0
                && samples
                    .iter()
                    .all(|s| s.phi.len() == dim && s.phi2.len() == dim),
            "features",
            || "every state needs a feature vector of the same, positive length".into(),
        )?;
        let heads = if cfg.twin { 2 } else { 1 };
        let theta = vec![0.0; policy.dim()];
        Ok(Self {
            adam_v: Adam::new(heads * dim, cfg.value_lr, 0.0),
            adam_pi: Adam::new(theta.len(), cfg.policy_lr, cfg.policy_wd),
            cfg,
            update,
            heads,
            dim,
            v: vec![0.0; heads * dim],
            target: vec![0.0; heads * dim],
            policy,
            theta,
            data: samples,
            rng: StdRng::seed_from_u64(seed),
        })
    }

    fn head(&self, w: &[f64], k: usize, phi: &[f64]) -> f64 {
        dot(&w[k * self.dim..(k + 1) * self.dim], phi)
    }

    /// V(s) from features: the mean over the heads (online).
    pub fn value(&self, phi: &[f64]) -> f64 {
        (0..self.heads)
            .map(|k| self.head(&self.v, k, phi))
            .sum::<f64>()
            / self.heads as f64
    }

    fn target_min(&self, phi: &[f64]) -> f64 {
        (0..self.heads)
            .map(|k| self.head(&self.target, k, phi))
            .fold(f64::INFINITY, f64::min)
    }

    /// The gradients (g₀, g_f, g_b) of the orthogonal update's three terms on `batch` (indices
    /// into the data), with the forward residuals per head and sample.
    pub fn orthogonal_terms(&self, batch: &[usize]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let (n, d, c) = (self.heads * self.dim, self.dim, self.cfg);
        let scale = 1.0 / (self.heads * batch.len()) as f64;
        let (mut g0, mut gf, mut gb) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        let mut resid = vec![];
        for &i in batch {
            let x = &self.data[i];
            let (tv, tv2) = (self.target_min(&x.phi), self.target_min(&x.phi2));
            let cont = c.gamma * if x.done { 0.0 } else { 1.0 };
            for k in 0..self.heads {
                let df = x.r + cont * tv2 - self.head(&self.v, k, &x.phi);
                let db = x.r + cont * self.head(&self.v, k, &x.phi2) - tv;
                resid.push(df);
                let (wf, wb) = (
                    c.lambda * f_star_prime(df),
                    c.lambda * c.eta * f_star_prime(db),
                );
                for j in 0..d {
                    g0[k * d + j] += scale * (1.0 - c.lambda) * x.phi[j];
                    gf[k * d + j] -= scale * wf * x.phi[j];
                    gb[k * d + j] += scale * wb * cont * x.phi2[j];
                }
            }
        }
        (g0, gf, gb, resid)
    }

    /// The three losses (L₀, L_f, L_b) of the orthogonal update at value parameters `v` (for
    /// checking the gradients by finite differences).
    pub fn orthogonal_losses(&self, v: &[f64], batch: &[usize]) -> (f64, f64, f64) {
        let c = self.cfg;
        let scale = 1.0 / (self.heads * batch.len()) as f64;
        let (mut l0, mut lf, mut lb) = (0.0, 0.0, 0.0);
        for &i in batch {
            let x = &self.data[i];
            let (tv, tv2) = (self.target_min(&x.phi), self.target_min(&x.phi2));
            let cont = c.gamma * if x.done { 0.0 } else { 1.0 };
            for k in 0..self.heads {
                let vs = self.head(v, k, &x.phi);
                l0 += scale * (1.0 - c.lambda) * vs;
                lf += scale * c.lambda * f_star(x.r + cont * tv2 - vs);
                lb += scale * c.lambda * c.eta * f_star(x.r + cont * self.head(v, k, &x.phi2) - tv);
            }
        }
        (l0, lf, lb)
    }

    /// One training step on a random batch.
    pub fn step(&mut self) -> Result<StepStats> {
        let batch: Vec<usize> = (0..self.cfg.batch)
            .map(|_| self.rng.random_range(0..self.data.len()))
            .collect();
        let (g0, gf, gb, fwd) = self.orthogonal_terms(&batch);
        let cos = dot(&gf, &gb) / (dot(&gf, &gf).sqrt() * dot(&gb, &gb).sqrt()).max(1e-300);
        let (g, resid): (Vec<f64>, Vec<f64>) = match self.update {
            Update::Orthogonal => {
                let gp = project_out(&gb, &gf);
                (
                    g0.iter()
                        .zip(&gf)
                        .zip(&gp)
                        .map(|((a, b), c)| a + b + c)
                        .collect(),
                    fwd,
                )
            }
            Update::SemiGradient => (g0.iter().zip(&gf).map(|(a, b)| a + b).collect(), fwd),
            Update::TrueGradient => self.true_gradient(&batch),
        };
        if !g.iter().all(|v| v.is_finite()) {
            return Err(RlError::NonFinite {
                what: "ODICE value gradient".into(),
            });
        }
        self.adam_v.step(&mut self.v, &g);
        let b = self.cfg.beta;
        self.target
            .iter_mut()
            .zip(&self.v)
            .for_each(|(t, v)| *t = (1.0 - b) * *t + b * v);
        // Policy: weighted behaviour cloning, weights averaged over the heads.
        let mut gp = vec![0.0; self.theta.len()];
        for (j, &i) in batch.iter().enumerate() {
            let w = (0..self.heads)
                .map(|k| resid[j * self.heads + k].clamp(0.0, 100.0))
                .sum::<f64>()
                / self.heads as f64;
            if w == 0.0 {
                continue;
            }
            let x = &self.data[i];
            let sc = self.policy.score(&self.theta, &x.s, &x.a)?;
            gp.iter_mut()
                .zip(&sc)
                .for_each(|(g, s)| *g -= w * s / batch.len() as f64);
        }
        self.adam_pi.step(&mut self.theta, &gp);
        crate::check_finite("ODICE policy parameters", &self.theta)?;
        let td_mean = resid.iter().sum::<f64>() / resid.len() as f64;
        Ok(StepStats {
            cos_forward_backward: cos,
            td_mean,
        })
    }

    /// The true gradient of L with the online V on both sides, and its residuals.
    fn true_gradient(&self, batch: &[usize]) -> (Vec<f64>, Vec<f64>) {
        let (n, d, c) = (self.heads * self.dim, self.dim, self.cfg);
        let scale = 1.0 / (self.heads * batch.len()) as f64;
        let mut g = vec![0.0; n];
        let mut resid = vec![];
        for &i in batch {
            let x = &self.data[i];
            let cont = c.gamma * if x.done { 0.0 } else { 1.0 };
            for k in 0..self.heads {
                let dl =
                    x.r + cont * self.head(&self.v, k, &x.phi2) - self.head(&self.v, k, &x.phi);
                resid.push(dl);
                let w = c.lambda * f_star_prime(dl);
                for j in 0..d {
                    g[k * d + j] +=
                        scale * ((1.0 - c.lambda) * x.phi[j] + w * (cont * x.phi2[j] - x.phi[j]));
                }
            }
        }
        (g, resid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Space;
    use crate::offline::Transition;
    use crate::policy::{Features, SoftmaxLinear};

    fn tiny() -> Odice<SoftmaxLinear> {
        // three one-hot states, random transitions
        let mut rng = StdRng::seed_from_u64(4);
        let oh = |i: usize| {
            (0..3)
                .map(|j| f64::from(u8::from(i == j)))
                .collect::<Vec<f64>>()
        };
        let transitions = (0..12)
            .map(|k| Transition {
                s: oh(k % 3),
                a: Action::Discrete(k % 2),
                r: rng.random_range(-1.0..1.0),
                s2: oh((k * 2 + 1) % 3),
                done: k == 5,
            })
            .collect();
        let data = Dataset {
            state_dim: 3,
            actions: Space::Discrete(2),
            transitions,
        };
        let mut o = Odice::new(
            &data,
            |s| s.to_vec(),
            SoftmaxLinear::new(2, 3, Features::Raw).unwrap(),
            Update::Orthogonal,
            OdiceConfig {
                batch: 12,
                ..OdiceConfig::default()
            },
            0,
        )
        .unwrap();
        o.v = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
        o.target = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
        o
    }

    #[test]
    fn the_projected_backward_gradient_is_orthogonal_and_matches_a_dense_computation() {
        let o = tiny();
        let batch: Vec<usize> = (0..12).collect();
        let (g0, gf, gb, _) = o.orthogonal_terms(&batch);
        // finite differences of the three losses over all six parameters
        let h = 1e-6;
        for j in 0..6 {
            let (mut p, mut m) = (o.v.clone(), o.v.clone());
            p[j] += h;
            m[j] -= h;
            let (a, b) = (
                o.orthogonal_losses(&p, &batch),
                o.orthogonal_losses(&m, &batch),
            );
            for (name, fd, an) in [
                ("g0", (a.0 - b.0) / (2.0 * h), g0[j]),
                ("gf", (a.1 - b.1) / (2.0 * h), gf[j]),
                ("gb", (a.2 - b.2) / (2.0 * h), gb[j]),
            ] {
                assert!((fd - an).abs() < 1e-7, "{name}[{j}]: fd {fd} vs {an}");
            }
        }
        let gp = project_out(&gb, &gf);
        assert!(
            dot(&gp, &gf).abs() < 1e-8 * (1.0 + dot(&gf, &gf)),
            "{}",
            dot(&gp, &gf)
        );
        // dense: g_b minus its component along g_f, by an explicit rank-one projector
        let nf = dot(&gf, &gf);
        for i in 0..6 {
            let dense: f64 = (0..6)
                .map(|j| (f64::from(u8::from(i == j)) - gf[i] * gf[j] / nf) * gb[j])
                .sum();
            assert!((dense - gp[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn f_star_is_the_pearson_conjugate() {
        for d in [-3.0, -2.0, -0.5, 0.0, 1.5] {
            let want = if d >= -2.0 { d + d * d / 4.0 } else { -1.0 };
            assert!((f_star(d) - want).abs() < 1e-12, "{d}");
            let fd = (f_star(d + 1e-6) - f_star(d - 1e-6)) / 2e-6;
            assert!((fd - f_star_prime(d)).abs() < 1e-5);
        }
    }

    #[test]
    fn bad_settings_are_errors() {
        let o = tiny();
        let data = Dataset {
            state_dim: 3,
            actions: Space::Discrete(2),
            transitions: o
                .data
                .iter()
                .map(|s| Transition {
                    s: s.s.clone(),
                    a: s.a.clone(),
                    r: s.r,
                    s2: s.s.clone(),
                    done: false,
                })
                .collect(),
        };
        let p = SoftmaxLinear::new(2, 3, Features::Raw).unwrap();
        assert!(
            Odice::new(
                &data,
                |s| s.to_vec(),
                p.clone(),
                Update::Orthogonal,
                OdiceConfig {
                    lambda: 1.5,
                    ..OdiceConfig::default()
                },
                0
            )
            .is_err()
        );
        assert!(
            Odice::new(
                &data,
                |s| s.to_vec(),
                p.clone(),
                Update::Orthogonal,
                OdiceConfig {
                    batch: 0,
                    ..OdiceConfig::default()
                },
                0
            )
            .is_err()
        );
        assert!(
            Odice::new(
                &data,
                |_| vec![],
                p,
                Update::Orthogonal,
                OdiceConfig::default(),
                0
            )
            .is_err()
        );
    }
}
