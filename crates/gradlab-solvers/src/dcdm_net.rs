//! DCDM's direction network and its unsupervised training (the official `src/train.py`, in 2-D).
//!
//! **Network**: fully convolutional on the n × n grid image of the residual: a linear 3 × 3
//! convolution to c channels, two residual ReLU 3 × 3 blocks, one average-pool/upsample level with
//! two more blocks and a skip, one block after it, and a 1 × 1 convolution to one channel (the
//! official's Dense(1)). Trained at one size, it runs at any even size.
//!
//! **Loss** (scale-invariant, per right-hand side, summed over the grid, averaged over the batch):
//! L(b) = ‖b − A q (qᵀb)/(qᵀAq)‖², q = f(b): the residual left by the best multiple of q.
//!
//! **Data** (the official generation, with exact eigenvectors in place of Lanczos Ritz vectors):
//! b = Σₖ cₖ vₖ over the Laplacian's eigenvectors, cₖ ~ N(0, 1), the lower half of the spectrum
//! weighted ×9, normalised.

use crate::poisson::Poisson;
use crate::{Result, SolverError};
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::PadMode;
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The network.
#[derive(Module, Debug)]
pub struct DcdmNet {
    first: Conv2d,
    top: Vec<Conv2d>,
    bottom: Vec<Conv2d>,
    after: Conv2d,
    last: Conv2d,
}

fn conv3(cin: usize, cout: usize, dev: &Device) -> Conv2d {
    Conv2dConfig::new([cin, cout], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(dev)
}

impl DcdmNet {
    /// A network of `channels` channels, seeded.
    pub fn new(channels: usize, dev: &Device, seed: u64) -> Self {
        gradlab_nets::init::seeded(dev, seed, || Self {
            first: conv3(1, channels, dev),
            top: (0..2).map(|_| conv3(channels, channels, dev)).collect(),
            bottom: (0..2).map(|_| conv3(channels, channels, dev)).collect(),
            after: conv3(channels, channels, dev),
            last: Conv2dConfig::new([channels, 1], [1, 1]).init(dev),
        })
    }

    /// q for residual images [batch, 1, n, n] (n even).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = self.first.forward(x);
        for c in &self.top {
            h = h.clone() + relu(c.forward(h));
        }
        let mut d = avg_pool2d(
            h.clone(),
            burn::tensor::ops::AvgPoolOptions::new([2, 2]).with_stride([2, 2]),
        );
        for c in &self.bottom {
            d = d.clone() + relu(c.forward(d));
        }
        h = h + gradlab_nets::upsample2(d);
        h = h.clone() + relu(self.after.forward(h));
        self.last.forward(h)
    }
}

/// A q on the empty square with Dirichlet boundaries (the 5-point stencil on [batch, 1, n, n]).
pub fn laplacian(q: Tensor<4>) -> Tensor<4> {
    let [b, c, n, m] = q.dims();
    let p = q.clone().pad((1, 1, 1, 1), PadMode::Constant(0.0));
    let up = p.clone().slice([0..b, 0..c, 0..n, 1..m + 1]);
    let down = p.clone().slice([0..b, 0..c, 2..n + 2, 1..m + 1]);
    let left = p.clone().slice([0..b, 0..c, 1..n + 1, 0..m]);
    let right = p.slice([0..b, 0..c, 1..n + 1, 2..m + 2]);
    q * 4.0 - up - down - left - right
}

/// The scale-invariant loss of directions `q` for right-hand sides `b` (both [batch, 1, n, n]).
pub fn loss(q: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let [batch, ..] = q.dims();
    let aq = laplacian(q.clone());
    let qb = (q.clone() * b.clone()).sum_dim(3).sum_dim(2);
    let qaq = (q * aq.clone()).sum_dim(3).sum_dim(2);
    let res = b - aq * (qb / qaq);
    let [_, _, n, m] = res.dims();
    (res.clone() * res)
        .reshape([batch, n * m])
        .sum_dim(1)
        .mean()
}

/// `count` training right-hand sides on the n × n empty square (each n² values, row-major).
pub fn training_rhs(n: usize, count: usize, seed: u64) -> Result<Vec<Vec<f64>>> {
    let p = Poisson::square(n)?;
    // modes sorted by eigenvalue
    let mut modes: Vec<(f64, usize, usize)> = (1..=n)
        .flat_map(|ky| (1..=n).map(move |kx| (kx, ky)))
        .map(|(kx, ky)| {
            let h = std::f64::consts::PI / (n + 1) as f64;
            (
                4.0 - 2.0 * (kx as f64 * h).cos() - 2.0 * (ky as f64 * h).cos(),
                kx,
                ky,
            )
        })
        .collect();
    modes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let vectors: Vec<Vec<f64>> = modes
        .iter()
        .map(|&(_, kx, ky)| p.sine_mode(kx, ky))
        .collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let half = modes.len() / 2;
    Ok((0..count)
        .map(|_| {
            let mut b = vec![0.0; n * n];
            for (k, v) in vectors.iter().enumerate() {
                let c: f64 =
                    rng.sample::<f64, _>(StandardNormal) * if k < half { 9.0 } else { 1.0 };
                b.iter_mut().zip(v).for_each(|(b, v)| *b += c * v);
            }
            let nb = crate::norm(&b);
            b.iter_mut().for_each(|v| *v /= nb);
            b
        })
        .collect())
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainSettings {
    /// Grid side (even).
    pub n: usize,
    /// Channels.
    pub channels: usize,
    /// Right-hand sides generated.
    pub samples: usize,
    /// Adam steps.
    pub steps: usize,
    /// Batch.
    pub batch: usize,
    /// Learning rate.
    pub lr: f64,
    /// Seed (data, initialisation, batches).
    pub seed: u64,
}

/// Train a network; `progress(step, loss)` is called every step. Returns the trained network (on
/// the plain device) and the loss curve.
pub fn train(
    s: &TrainSettings,
    mut progress: impl FnMut(usize, f64),
) -> Result<(DcdmNet, Vec<f64>)> {
    if s.n < 2
        || !s.n.is_multiple_of(2)
        || s.batch == 0
        || s.samples == 0
        || s.channels == 0
        || s.lr.is_nan()
        || s.lr <= 0.0
    {
        return Err(SolverError::Invalid {
            what: "DCDM training settings",
            why: format!("{s:?} (n even ≥ 2, batch, samples, channels and lr positive)"),
        });
    }
    let data = training_rhs(s.n, s.samples, s.seed)?;
    let dev = Device::flex().autodiff();
    let mut net = DcdmNet::new(s.channels, &dev, s.seed);
    let mut optim = AdamConfig::new().with_epsilon(1e-7).init();
    let mut rng = StdRng::seed_from_u64(s.seed ^ 0xDCD);
    let mut curve = vec![];
    for step in 0..s.steps {
        let idx: Vec<usize> = (0..s.batch)
            .map(|_| rng.random_range(0..data.len()))
            .collect();
        let flat: Vec<f32> = idx
            .iter()
            .flat_map(|&i| data[i].iter().map(|v| *v as f32))
            .collect();
        let b = Tensor::<4>::from_data(TensorData::new(flat, [s.batch, 1, s.n, s.n]), &dev);
        let l = loss(net.forward(b.clone()), b);
        let lv = gradlab_core::bridge::scalar_to_host(l.clone())?;
        if !lv.is_finite() {
            return Err(SolverError::NonFinite(format!(
                "DCDM training loss at step {step}"
            )));
        }
        curve.push(lv);
        progress(step, lv);
        let grads = GradientsParams::from_grads(l.backward(), &net);
        net = optim.step(s.lr, net, grads);
    }
    Ok((net.valid(), curve))
}

/// A trained network as DCDM's direction model on a Poisson grid (residual → grid image →
/// network → unknowns; solid cells are zero in and ignored out).
pub struct NetDirections<'a> {
    net: &'a DcdmNet,
    grid: &'a Poisson,
}

impl<'a> NetDirections<'a> {
    /// The model for `grid` (its side must be even).
    pub fn new(net: &'a DcdmNet, grid: &'a Poisson) -> Result<Self> {
        if !grid.n.is_multiple_of(2) {
            return Err(SolverError::Shape {
                what: "grid side for the DCDM network".into(),
                expected: "an even side".into(),
                got: grid.n.to_string(),
            });
        }
        Ok(Self { net, grid })
    }
}

impl crate::dcdm::Directions for NetDirections<'_> {
    fn direction(&self, r: &[f64]) -> Result<Vec<f64>> {
        let n = self.grid.n;
        let img: Vec<f32> = self.grid.scatter(r).iter().map(|v| *v as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(img, [1, 1, n, n]), &Device::flex());
        let q = gradlab_core::bridge::to_host(self.net.forward(x))?;
        Ok(self.grid.gather(&q))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tensor_laplacian_is_the_csr_matrix() {
        let n = 6;
        let p = Poisson::square(n).unwrap();
        let v: Vec<f64> = (0..n * n).map(|k| ((k * 13) % 7) as f64 - 3.0).collect();
        let want = p.a.mul(&v);
        let t = Tensor::<4>::from_data(
            TensorData::new(
                v.iter().map(|x| *x as f32).collect::<Vec<f32>>(),
                [1, 1, n, n],
            ),
            &Device::flex(),
        );
        let got = gradlab_core::bridge::to_host(laplacian(t)).unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn the_loss_vanishes_for_the_exact_inverse_direction_and_is_scale_invariant() {
        // q = A⁻¹b leaves no residual; 3q gives the same loss as q.
        let n = 4;
        let p = Poisson::square(n).unwrap();
        let inv = crate::dcdm::DenseInverse::new(&p.a).unwrap();
        let b = training_rhs(n, 1, 0).unwrap().remove(0);
        let q = crate::dcdm::Directions::direction(&inv, &b).unwrap();
        let dev = Device::flex();
        let t = |v: &[f64], s: f64| {
            Tensor::<4>::from_data(
                TensorData::new(
                    v.iter().map(|x| (x * s) as f32).collect::<Vec<f32>>(),
                    [1, 1, n, n],
                ),
                &dev,
            )
        };
        let l = gradlab_core::bridge::scalar_to_host(loss(t(&q, 1.0), t(&b, 1.0))).unwrap();
        assert!(l < 1e-9, "{l}");
        let r: Vec<f64> = (0..n * n).map(|k| (k % 3) as f64).collect();
        let (l1, l3) = (
            gradlab_core::bridge::scalar_to_host(loss(t(&r, 1.0), t(&b, 1.0))).unwrap(),
            gradlab_core::bridge::scalar_to_host(loss(t(&r, 3.0), t(&b, 1.0))).unwrap(),
        );
        assert!(l1 > 1e-3 && (l1 - l3).abs() < 1e-5 * l1, "{l1} {l3}");
        // training data are unit vectors
        assert!((crate::norm(&b) - 1.0).abs() < 1e-12);
    }
}

const WEIGHTS: &str = "dcdm.bpk";
const CARD: &str = "dcdm.json";

fn model_err(dir: &std::path::Path, e: impl std::fmt::Display) -> SolverError {
    SolverError::Io(format!("{}: {e}", dir.display()))
}

/// Save `net` (of `channels` channels) into `dir`: a checksummed folder switched atomically (an
/// earlier save stays valid until the new one is complete).
pub fn save_model(dir: &std::path::Path, net: &DcdmNet, channels: usize) -> Result<()> {
    gradlab_train::checkpoint::save_set(dir, 0, |gdir| {
        let weights = gdir.join(WEIGHTS);
        net.clone()
            .save_file(&weights)
            .map_err(|e| gradlab_train::error::file_err(&weights, e))?;
        std::fs::write(
            gdir.join(CARD),
            format!("{{\"kind\": \"dcdm\", \"channels\": {channels}}}\n"),
        )
        .map_err(|e| gradlab_train::error::file_err(gdir.join(CARD), e))
    })
    .map_err(|e| model_err(dir, e))
}

/// Check that `dir` can take a saved model (new, empty or an earlier save) before training.
pub fn check_model_destination(dir: &std::path::Path) -> Result<()> {
    gradlab_train::checkpoint::check_destination(dir)
        .map(|_| ())
        .map_err(|e| model_err(dir, e))
}

/// The network saved in `dir`; an error if it is missing, damaged or not a DCDM network.
pub fn load_model(dir: &std::path::Path) -> Result<DcdmNet> {
    let gdir = gradlab_train::checkpoint::load_set(dir).map_err(|e| model_err(dir, e))?;
    let card = std::fs::read_to_string(gdir.join(CARD))
        .map_err(|_| model_err(dir, format!("not a DCDM model (no {CARD})")))?;
    let channels: usize = card
        .split("\"channels\":")
        .nth(1)
        .and_then(|t| {
            t.trim()
                .trim_end_matches(['}', '\n', ' '])
                .trim()
                .parse()
                .ok()
        })
        .filter(|c| *c > 0 && card.contains("\"dcdm\""))
        .ok_or_else(|| model_err(dir, format!("{CARD} is not a DCDM card")))?;
    let net = DcdmNet::new(channels, &Device::flex(), 0);
    let net = net.try_load_file(gdir.join(WEIGHTS)).map_err(|e| {
        model_err(
            dir,
            format!(
                "the weights do not fit a {channels}-channel DCDM network ({})",
                e.to_string().chars().take(120).collect::<String>()
            ),
        )
    })?;
    if gradlab_core::flat::flatten_host(&net)?
        .iter()
        .any(|v| !v.is_finite())
    {
        return Err(model_err(dir, "the saved weights are not all finite"));
    }
    Ok(net)
}
