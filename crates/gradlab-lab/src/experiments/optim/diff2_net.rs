//! The nonconvex problem of DIFF2's experiments as its reproduction code sets it up
//! (lawrenceztang/CE-PLSGM at 4b4d60a, `src/models.py`, `scripts/*/fc_10_seed*.sh`): a network
//! with one hidden layer of 10 softplus units, the squared loss, PyTorch's default initialisation
//! U(±1/√fan_in), on standardised tabular regression data with the target divided by max |y|.
//!
//! The paper's sets (California Housing, Gas Turbine, BlogFeedback) are not shipped by any package
//! registry this project can reach (scikit-learn downloads California Housing at run time), so a
//! documented synthetic stand-in of California Housing's shape takes their place: 8 standard
//! normal features, a target from a random teacher (16 tanh units, weights N(0, 1/8), output
//! weights N(0, 1)) plus N(0, 0.1²) noise, divided by its max |y|.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Hidden units of the paper's network.
pub const HIDDEN: usize = 10;
/// Features of the stand-in data (California Housing has 8).
pub const FEATURES: usize = 8;

/// fᵢ(θ) = (g(xᵢ; θ) − yᵢ)², g(x) = w₂ᵀ softplus(W₁x + b₁) + b₂. Parameters θ are laid out as W₁
/// (`[HIDDEN, FEATURES]` row-major), b₁, w₂, b₂.
pub struct SoftplusRegression {
    x: Vec<f64>,
    /// Targets, divided by max |y|.
    pub y: Vec<f64>,
}

fn softplus(z: f64) -> f64 {
    z.max(0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

impl SoftplusRegression {
    /// The synthetic stand-in with `n` examples (see the module docs).
    pub fn synthetic(n: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0xCA11);
        let mut normal = || rng.sample::<f64, _>(StandardNormal);
        let teacher_in: Vec<f64> = (0..16 * FEATURES)
            .map(|_| normal() / (FEATURES as f64).sqrt())
            .collect();
        let teacher_out: Vec<f64> = (0..16).map(|_| normal()).collect();
        let mut x = Vec::with_capacity(n * FEATURES);
        let mut y = Vec::with_capacity(n);
        for _ in 0..n {
            let xi: Vec<f64> = (0..FEATURES).map(|_| normal()).collect();
            let t: f64 = (0..16)
                .map(|u| {
                    let z: f64 = (0..FEATURES)
                        .map(|k| teacher_in[u * FEATURES + k] * xi[k])
                        .sum();
                    teacher_out[u] * z.tanh()
                })
                .sum();
            y.push(t + 0.1 * normal());
            x.extend(xi);
        }
        let top = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
        y.iter_mut().for_each(|v| *v /= top);
        Self { x, y }
    }

    /// Number of parameters.
    pub fn params() -> usize {
        HIDDEN * FEATURES + 2 * HIDDEN + 1
    }

    /// PyTorch's default `nn.Linear` initialisation U(±1/√fan_in), seeded.
    pub fn initial(seed: u64) -> Vec<f64> {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x1417);
        let (a, b) = (1.0 / (FEATURES as f64).sqrt(), 1.0 / (HIDDEN as f64).sqrt());
        let mut theta = vec![];
        theta.extend((0..HIDDEN * FEATURES + HIDDEN).map(|_| rng.random_range(-a..a)));
        theta.extend((0..HIDDEN + 1).map(|_| rng.random_range(-b..b)));
        theta
    }

    /// (prediction, hidden pre-activations) for example i.
    pub fn forward(&self, theta: &[f64], i: usize) -> (f64, [f64; HIDDEN]) {
        let xi = &self.x[i * FEATURES..(i + 1) * FEATURES];
        let (w1, rest) = theta.split_at(HIDDEN * FEATURES);
        let (b1, rest) = rest.split_at(HIDDEN);
        let (w2, b2) = rest.split_at(HIDDEN);
        let mut z = [0.0; HIDDEN];
        let mut out = b2[0];
        for j in 0..HIDDEN {
            z[j] = b1[j]
                + (0..FEATURES)
                    .map(|k| w1[j * FEATURES + k] * xi[k])
                    .sum::<f64>();
            out += w2[j] * softplus(z[j]);
        }
        (out, z)
    }

    /// The training loss (1/n) Σᵢ fᵢ(θ).
    pub fn loss(&self, theta: &[f64]) -> f64 {
        (0..self.y.len())
            .map(|i| (self.forward(theta, i).0 - self.y[i]).powi(2))
            .sum::<f64>()
            / self.y.len().max(1) as f64
    }
}

impl SoftplusRegression {
    /// The number of parameters.
    pub fn param_count(&self) -> usize {
        Self::params()
    }

    /// The number of examples.
    pub(crate) fn len(&self) -> usize {
        self.y.len()
    }

    /// ∇fᵢ(θ) into `out`.
    pub fn example_grad(&self, theta: &[f64], i: usize, out: &mut [f64]) {
        let (pred, z) = self.forward(theta, i);
        let r = 2.0 * (pred - self.y[i]);
        let xi = &self.x[i * FEATURES..(i + 1) * FEATURES];
        let w2 = &theta[HIDDEN * FEATURES + HIDDEN..HIDDEN * FEATURES + 2 * HIDDEN];
        for j in 0..HIDDEN {
            let back = r * w2[j] * sigmoid(z[j]);
            for k in 0..FEATURES {
                out[j * FEATURES + k] = back * xi[k];
            }
            out[HIDDEN * FEATURES + j] = back;
            out[HIDDEN * FEATURES + HIDDEN + j] = r * softplus(z[j]);
        }
        out[HIDDEN * FEATURES + 2 * HIDDEN] = r;
    }
}
