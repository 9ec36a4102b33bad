//! GroCo ("Learning by Sorting: Self-supervised Learning with Group Ordering Constraints",
//! Shvetsova et al., ICCV 2023; [`gradlab_paradigms::groco`], [`gradlab_paradigms::sorting`]).
//!
//! Claim: self-supervised training with the group-ordering loss (every positive must rank above
//! the hardest negatives, through a differentiable sorting network) learns representations whose
//! k-NN accuracy matches or beats contrastive learning (NT-Xent), and beats the repository's own
//! baseline that keeps NT-Xent's top-10 negatives with a stop-gradient.
//!
//! Here: an MLP encoder (d → 128 → 64, ReLU) with a projection head (64 → 64 → 32), two augmented
//! views per example, Adam (lr 1e-3, batch 128), trained with GroCo (top-10 negatives, odd–even
//! network, Cauchy relaxation, β = 1), NT-Xent (τ = 0.1) and NT-Xent on its top-10 negatives with a
//! stop-gradient (τ = 0.5); the untrained encoder as a floor. Data: the card's 10-class Gaussian
//! mixture in 32-D (8 informative dimensions, 24 nuisance ones that the augmentation resamples;
//! augmentations: Gaussian noise and feature dropout) and, in full mode, 8×8 digits with noise
//! and random ±1-pixel crops. Measured: k-NN accuracy (k = 20, cosine, majority vote) of held-out
//! examples against the training set's encoder features, and a linear probe.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table, mean, mean_range};
use crate::plot::{Series, line_chart};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::relu;
use gradlab_core::bridge::to_host;
use gradlab_nets::Net;
use gradlab_nets::autodiff_device;
use gradlab_nets::mlp::{Mlp, MlpConfig};
use gradlab_paradigms::groco::{GroCo, nt_xent, unit_rows};
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The experiment.
pub struct GroCoExperiment;

const INFO: PaperInfo = PaperInfo {
    id: "groco",
    arxiv: "",
    module: "gradlab_paradigms::groco",
    claim: "Self-supervised learning with the group-ordering loss through a differentiable sorting network matches or beats contrastive learning (NT-Xent) in k-NN accuracy, and beats NT-Xent restricted to its top-k negatives with a stop-gradient.",
};

/// An encoder and its projection head.
#[derive(Module, Debug)]
struct SslNet {
    encoder: Mlp,
    projector: Mlp,
}

impl SslNet {
    fn new(d: usize, seed: u64) -> Self {
        let dev = autodiff_device();
        Self {
            encoder: MlpConfig::new(vec![d, 128, 64]).init(&dev, seed),
            projector: MlpConfig::new(vec![64, 64, 32]).init(&dev, seed ^ 0x9E07),
        }
    }
    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        relu(self.encoder.forward(x))
    }
    /// The projection, batch-standardised per dimension as the official head's final
    /// `BatchNorm1d(affine=False)` does in training.
    fn project(&self, x: Tensor<2>) -> Tensor<2> {
        let z = self.projector.forward(self.features(x));
        let mean = z.clone().mean_dim(0);
        let centred = z - mean;
        let var = centred.clone().powf_scalar(2.0).mean_dim(0);
        centred / var.add_scalar(1e-5).sqrt()
    }
}

/// A labelled data set with its augmentation.
struct Data {
    name: &'static str,
    d: usize,
    train: (Vec<f32>, Vec<u8>),
    test: (Vec<f32>, Vec<u8>),
    /// Digits (8×8, crops) rather than the mixture.
    image: bool,
}

/// Standard deviation of the mixture's nuisance dimensions.
const NUISANCE: f32 = 2.0;

/// The card's mixture: 10 classes with centres in 8 informative dimensions (std 1, within-class std
/// 0.5) and 24 nuisance dimensions of std 2, which swamp the classes in the raw input.
fn mixture(n: usize, centres: &[Vec<f32>], rng: &mut StdRng) -> (Vec<f32>, Vec<u8>) {
    let (mut x, mut y) = (Vec::with_capacity(n * 32), Vec::with_capacity(n));
    for i in 0..n {
        let c = i % centres.len();
        x.extend(centres[c].iter().map(|m| m + 0.5 * rng.sample::<f32, _>(StandardNormal)));
        x.extend((0..24).map(|_| NUISANCE * rng.sample::<f32, _>(StandardNormal)));
        y.push(c as u8);
    }
    (x, y)
}

fn mixture_data(seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x6A55);
    let centres: Vec<Vec<f32>> = (0..10).map(|_| (0..8).map(|_| rng.sample::<f32, _>(StandardNormal)).collect()).collect();
    let train = mixture(2000, &centres, &mut rng);
    let test = mixture(1000, &centres, &mut rng);
    Data { name: "mixture", d: 32, train, test, image: false }
}

fn digits_data(seed: u64) -> Result<Data> {
    let (train, test) = gradlab_data::images::load_split("digits", seed)?;
    Ok(Data { name: "digits", d: 64, train: (train.images, train.labels), test: (test.images, test.labels), image: true })
}

/// One augmented view of the rows `idx`: mixture: noise (std 0.3 informative, nuisance resampled)
/// and feature dropout 0.1; digits: a random ±1-pixel shift (zero fill), noise std 0.1, dropout 0.1.
fn view(data: &Data, idx: &[usize], rng: &mut StdRng) -> Vec<f32> {
    let d = data.d;
    let mut out = Vec::with_capacity(idx.len() * d);
    for &i in idx {
        let row = &data.train.0[i * d..(i + 1) * d];
        if data.image {
            let (dy, dx) = (rng.random_range(-1i32..=1), rng.random_range(-1i32..=1));
            for r in 0..8i32 {
                for c in 0..8i32 {
                    let (sr, sc) = (r - dy, c - dx);
                    let v = if (0..8).contains(&sr) && (0..8).contains(&sc) { row[(sr * 8 + sc) as usize] } else { 0.0 };
                    let keep = rng.random::<f32>() >= 0.1;
                    out.push(if keep { v + 0.1 * rng.sample::<f32, _>(StandardNormal) } else { 0.0 });
                }
            }
        } else {
            for (j, v) in row.iter().enumerate() {
                let noisy = if j < 8 { v + 0.3 * rng.sample::<f32, _>(StandardNormal) } else { NUISANCE * rng.sample::<f32, _>(StandardNormal) };
                out.push(if rng.random::<f32>() >= 0.1 { noisy } else { 0.0 });
            }
        }
    }
    out
}

/// The methods compared.
#[derive(Clone, Copy, PartialEq)]
enum Method {
    GroCo,
    NtXent,
    NtXentTop10,
}

const METHODS: [(Method, &str); 3] = [
    (Method::GroCo, "GroCo (top-10, odd–even, Cauchy, β = 1)"),
    (Method::NtXent, "NT-Xent (τ = 0.1)"),
    (Method::NtXentTop10, "NT-Xent, top-10 negatives + stop-grad (τ = 0.5)"),
];

/// Train `method` for `steps`; the k-NN accuracy every `every` steps and the trained net.
fn train(data: &Data, method: Method, steps: usize, every: usize, seed: u64) -> Result<(SslNet, Vec<(usize, f64)>)> {
    let dev = autodiff_device();
    let mut net = SslNet::new(data.d, seed);
    let mut optim = AdamConfig::new().init();
    let mut rng = StdRng::seed_from_u64(seed ^ 0xA06);
    let n = data.train.1.len();
    let groco = GroCo::default();
    let mut curve = vec![(0, knn(&net, data, 20)?)];
    for step in 0..steps {
        let idx: Vec<usize> = (0..128).map(|_| rng.random_range(0..n)).collect();
        let v1 = Tensor::<2>::from_data(TensorData::new(view(data, &idx, &mut rng), [128, data.d]), &dev);
        let v2 = Tensor::<2>::from_data(TensorData::new(view(data, &idx, &mut rng), [128, data.d]), &dev);
        let (z1, z2) = (net.project(v1), net.project(v2));
        let loss = match method {
            Method::GroCo => groco.loss(&[z1, z2])?,
            Method::NtXent => nt_xent(z1, z2, 0.1, false, None)?,
            Method::NtXentTop10 => nt_xent(z1, z2, 0.5, true, Some(10))?,
        };
        if !loss.clone().into_scalar::<f64>().is_finite() {
            return Err(crate::error::LabError::Invalid(format!("the self-supervised loss diverged at step {step}")));
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        net = optim.step(1e-3, net, grads);
        if (step + 1) % every == 0 {
            curve.push((step + 1, knn(&net, data, 20)?));
        }
    }
    Ok((net, curve))
}

/// Encoder features of rows of `x` (inner device), unit-normalised.
fn features(net: &SslNet, x: &[f32], d: usize) -> Result<Vec<f64>> {
    let net = net.clone().valid();
    let t = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [x.len() / d, d]), &Device::flex());
    Ok(to_host(unit_rows(net.features(t)))?)
}

/// k-NN accuracy (cosine, majority vote, ties to the nearest) of the test set against the
/// training set's features.
fn knn(net: &SslNet, data: &Data, k: usize) -> Result<f64> {
    let (tr, te) = (features(net, &data.train.0, data.d)?, features(net, &data.test.0, data.d)?);
    let f = tr.len() / data.train.1.len();
    let mut hits = 0;
    for (q, &label) in te.chunks(f).zip(&data.test.1) {
        let mut sims: Vec<(f64, u8)> = tr.chunks(f).zip(&data.train.1).map(|(r, &l)| (r.iter().zip(q).map(|(a, b)| a * b).sum(), l)).collect();
        sims.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0));
        sims[..k].sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut votes = [0usize; 256];
        sims[..k].iter().for_each(|(_, l)| votes[*l as usize] += 1);
        let best = *votes.iter().max().expect("non-empty");
        let pred = sims[..k].iter().find(|(_, l)| votes[*l as usize] == best).map(|(_, l)| *l).expect("k ≥ 1");
        hits += usize::from(pred == label);
    }
    Ok(hits as f64 / data.test.1.len() as f64)
}

/// Linear-probe test accuracy: softmax regression on the frozen, unit-normalised features (Adam
/// lr 1e-2, 300 full-batch steps).
fn linear_probe(net: &SslNet, data: &Data, seed: u64) -> Result<f64> {
    let (tr, te) = (features(net, &data.train.0, data.d)?, features(net, &data.test.0, data.d)?);
    crate::probe::linear_probe((&tr, &data.train.1), (&te, &data.test.1), 10, seed)
}


impl Experiment for GroCoExperiment {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // Training must move every method well above the untrained encoder.
        let floor = e.metric("mixture.untrained.knn");
        e.above("mixture.groco.knn", floor + 0.05);
        e.above("mixture.ntxent.knn", floor + 0.05);
        for key in ["mixture.matches_ntxent", "mixture.beats_top10"] {
            e.measured(key);
        }
        e.figures(&["groco_knn.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (steps, every, seeds) = if ctx.quick { (300, 100, 1u64) } else { (1500, 250, 3) };
        let mut sets: Vec<Box<dyn Fn(u64) -> Result<Data>>> = vec![Box::new(|s| Ok(mixture_data(s)))];
        if !ctx.quick {
            sets.push(Box::new(digits_data));
        }
        let bar = ctx.progress_bar(sets.len() as u64 * seeds * METHODS.len() as u64, "self-supervised training");
        let mut table = Table::new(
            format!("k-NN (k = 20, cosine) and linear-probe test accuracy of the encoder features after {steps} steps (batch 128), mean over {seeds} seed(s) [min, max]"),
            &["data", "method", "k-NN", "linear probe"],
        );
        let mut series = vec![];
        for make in &sets {
            let mut knns = vec![vec![]; METHODS.len() + 1];
            let mut probes = vec![vec![]; METHODS.len() + 1];
            let mut name = "";
            for s in 0..seeds {
                let data = make(ctx.seed + s)?;
                name = data.name;
                let untrained = SslNet::new(data.d, ctx.seed + s);
                knns[METHODS.len()].push(knn(&untrained, &data, 20)?);
                probes[METHODS.len()].push(linear_probe(&untrained, &data, ctx.seed + s)?);
                for (m, (method, label)) in METHODS.iter().enumerate() {
                    let (net, curve) = train(&data, *method, steps, every, ctx.seed + s)?;
                    knns[m].push(curve.last().expect("≥ 1 point").1);
                    probes[m].push(linear_probe(&net, &data, ctx.seed + s)?);
                    if s == 0 {
                        series.push(Series { label: format!("{name}: {label}"), points: curve.iter().map(|(t, a)| (*t as f64, *a)).collect() });
                    }
                    bar.inc(1);
                }
            }
            let cell = mean_range;
            let keys = ["groco", "ntxent", "ntxent_top10", "untrained"];
            for (m, label) in METHODS.iter().map(|m| m.1).chain(["untrained encoder"]).enumerate() {
                table.row(vec![name.into(), label.into(), cell(&knns[m]), cell(&probes[m])]);
                out.metrics.insert(format!("{name}.{}.knn", keys[m]), mean(&knns[m]));
                out.metrics.insert(format!("{name}.{}.probe", keys[m]), mean(&probes[m]));
            }
            out.checks.push(Check::new(
                format!("{name}.matches_ntxent"),
                format!("{name}: GroCo minus NT-Xent k-NN accuracy (the card's: ≥ −1 point)"),
                mean(&knns[0]) - mean(&knns[1]),
                Cmp::Ge,
                -0.01,
            ));
            out.checks.push(Check::new(
                format!("{name}.beats_top10"),
                format!("{name}: GroCo minus NT-Xent-top-10 k-NN accuracy (the card's: > 0)"),
                mean(&knns[0]) - mean(&knns[2]),
                Cmp::Gt,
                0.0,
            ));
        }
        bar.finish_and_clear();
        out.tables.push(table);
        line_chart(&ctx.out_dir.join("groco_knn.png"), &format!("k-NN test accuracy during training (seed {})", ctx.seed), "step", "k-NN accuracy", &series, &[])?;
        out.figures.push("groco_knn.png".into());
        out.notes.push("The paper trains ResNet-50 on ImageNet (batch 1024, SGD with LARS, a BN projection head to 2048-d); here MLPs (the projection batch-standardised as the official head's final affine-free batch norm), Adam, batch 128. The k-NN vote is a plain majority (ties to the nearest neighbour's class).".into());
        Ok(out)
    }
}
