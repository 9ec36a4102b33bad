//! NoProp, discrete time ("NoProp: Training Neural Networks without Back-propagation or
//! Forward-propagation", Li, Teh and Pascanu, arXiv 2503.24322).
//!
//! T blocks each learn to denoise a noisy label embedding. Paper time runs from z₀ (noise) to
//! z_T ≈ u_y, with q(z_t | y) = N(√ᾱ_t u_y, (1 − ᾱ_t) I) and ᾱ_t increasing (a flipped cosine
//! schedule). Block t sees the image x and z_{t−1} drawn from q, never the previous block's
//! output, and predicts û_t = softmax(block_t(x, z_{t−1})) · W_embed. The loss is
//!
//! L = CE(head(z_T), y) + KL(q(z₀|y) ‖ N(0, I)) + Σ_t (T/2)·η·(SNR(t) − SNR(t−1))·‖û_t − u_y‖²,
//!
//! so each block's parameters get gradient only from their own term, and [`train_noprop`] takes
//! one optimiser step per block with only that block's graph alive. Inference runs the reverse
//! chain z_t = a_t û_t + b_t z_{t−1} + √c_t ε from z₀ ~ N(0, I), with the DDPM posterior in
//! reversed time ([`NoPropSchedule::posterior`]).
//!
//! There is no official code; the equations follow the paper and the community transcription
//! (checked in `PAPERS-REMAINING.md`). Two traps of that code are avoided: the evaluation builds
//! z_T from the true label there (label leakage; here [`NoProp::predict`] never sees y), and one
//! of its schedules is off by one index (caught by the marginal test). SNR(T) blows up as ᾱ_T → 1,
//! so SNR is capped (`snr_cap`, default 100, which caps the last block's weight).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::noprop::NoPropConfig;
//! let dev = Device::flex();
//! let net = NoPropConfig::new(64, 10).with_blocks(3).init(&dev, 0).unwrap();
//! let logits = net.predict(Tensor::zeros([4, 64], &dev), 7).unwrap();
//! assert_eq!(logits.dims(), [4, 10]);
//! ```

use crate::error::{ParadigmError, invalid};
use burn::module::Param;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamWConfig, GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::{log_softmax, relu, softmax};
use gradlab_data::ImageSet;
use gradlab_data::batch::{epoch_batches, to_tensors};
use gradlab_nets::init::seeded;
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The cosine offset s of the schedule (Nichol and Dhariwal's 0.008).
const COSINE_OFFSET: f64 = 0.008;

/// The noise schedule ᾱ₀ … ᾱ_T of NoProp-DT (increasing: ᾱ₀ = 0 is pure noise).
#[derive(Debug, Clone, PartialEq)]
pub struct NoPropSchedule {
    alpha_bar: Vec<f64>,
}

impl NoPropSchedule {
    /// The flipped cosine schedule over `blocks` steps: ᾱ_t = cos²(π/2 · ((T − t)/T + s)/(1 + s)),
    /// s = 0.008, so ᾱ₀ = 0 and ᾱ_T ≈ 1 − 1.6e-4.
    pub fn cosine(blocks: usize) -> crate::Result<Self> {
        if blocks == 0 {
            return invalid("NoProp needs at least one block, got 0");
        }
        let tt = blocks as f64;
        let alpha_bar = (0..=blocks)
            .map(|t| {
                let u = ((tt - t as f64) / tt + COSINE_OFFSET) / (1.0 + COSINE_OFFSET);
                if t == 0 {
                    0.0
                } else {
                    (u * std::f64::consts::FRAC_PI_2).cos().powi(2)
                }
            })
            .collect();
        Ok(Self { alpha_bar })
    }

    /// T, the number of blocks.
    pub fn blocks(&self) -> usize {
        self.alpha_bar.len() - 1
    }

    /// ᾱ_t for t = 0 … T.
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alpha_bar[t]
    }

    /// SNR(t) = ᾱ_t/(1 − ᾱ_t), capped at `cap`.
    pub fn snr(&self, t: usize, cap: f64) -> f64 {
        let a = self.alpha_bar[t];
        (a / (1.0 - a)).min(cap)
    }

    /// The weight of block t's loss, (T/2)·η·(SNR(t) − SNR(t−1)), for t = 1 … T.
    pub fn loss_weight(&self, t: usize, eta: f64, snr_cap: f64) -> f64 {
        0.5 * self.blocks() as f64 * eta * (self.snr(t, snr_cap) - self.snr(t - 1, snr_cap))
    }

    /// The reverse step's coefficients (a_t, b_t, c_t) for t = 1 … T: the posterior
    /// q(z_t | z_{t−1}, u) = N(a_t u + b_t z_{t−1}, c_t I) of the forward chain
    /// z_{t−1} = √α z_t + √(1 − α) ε with α = ᾱ_{t−1}/ᾱ_t:
    /// a_t = √ᾱ_t (1 − α)/(1 − ᾱ_{t−1}), b_t = √α (1 − ᾱ_t)/(1 − ᾱ_{t−1}),
    /// c_t = (1 − ᾱ_t)(1 − α)/(1 − ᾱ_{t−1}).
    pub fn posterior(&self, t: usize) -> (f64, f64, f64) {
        let (prev, now) = (self.alpha_bar[t - 1], self.alpha_bar[t]);
        let alpha = prev / now;
        let a = now.sqrt() * (1.0 - alpha) / (1.0 - prev);
        let b = alpha.sqrt() * (1.0 - now) / (1.0 - prev);
        let c = (1.0 - now) * (1.0 - alpha) / (1.0 - prev);
        (a, b, c)
    }
}

/// NoProp-DT configuration (the paper's MNIST settings where they fit an MLP).
#[derive(Config, Debug)]
pub struct NoPropConfig {
    /// Input features (c·h·w).
    pub input_dim: usize,
    /// Number of classes.
    pub classes: usize,
    /// T, the number of denoising blocks.
    #[config(default = 10)]
    pub blocks: usize,
    /// Label-embedding width (≥ classes when learned; = classes for one-hot).
    #[config(default = "None")]
    pub embed_dim: Option<usize>,
    /// Hidden width of each block.
    #[config(default = 256)]
    pub hidden: usize,
    /// η, the weight of the denoising terms.
    #[config(default = 0.1)]
    pub eta: f64,
    /// Cap on SNR(t), which bounds the last block's weight.
    #[config(default = 100.0)]
    pub snr_cap: f64,
    /// Learn the label embedding (orthogonally initialised) instead of fixing it to one-hot.
    #[config(default = true)]
    pub learned_embedding: bool,
}

/// One denoising block: x and z each through a linear layer and ReLU, joined, then two layers to
/// class logits.
#[derive(Module, Debug)]
pub struct NoPropBlock {
    x_in: Linear,
    z_in: Linear,
    mid: Linear,
    out: Linear,
}

impl NoPropBlock {
    /// Class logits from the image features `x` [B, d] and the noisy embedding `z` [B, e].
    pub fn forward(&self, x: Tensor<2>, z: Tensor<2>) -> Tensor<2> {
        let h = Tensor::cat(
            vec![relu(self.x_in.forward(x)), relu(self.z_in.forward(z))],
            1,
        );
        self.out.forward(relu(self.mid.forward(h)))
    }
}

/// The settings a [`NoProp`] model carries besides its parameters.
#[derive(Debug, Clone)]
pub struct NoPropSettings {
    schedule: NoPropSchedule,
    eta: f64,
    snr_cap: f64,
    learned_embedding: bool,
    input_dim: usize,
}

/// A NoProp-DT classifier: T denoising blocks, the label embedding W_embed and the output head.
#[derive(Module, Debug)]
pub struct NoProp {
    /// The denoising blocks, block t at index t − 1.
    pub blocks: Vec<NoPropBlock>,
    embed: Param<Tensor<2>>,
    head: Linear,
    #[module(skip)]
    settings: NoPropSettings,
}

impl NoPropConfig {
    /// Check the configuration; the error names the value.
    pub fn validate(&self) -> crate::Result<()> {
        let e = self.embed_dim.unwrap_or(self.classes);
        if self.blocks == 0 {
            return invalid("NoProp needs at least one block, got 0");
        }
        if self.classes < 2 || self.input_dim == 0 || self.hidden == 0 {
            return invalid(format!(
                "NoProp needs ≥ 2 classes, ≥ 1 input feature and hidden width ≥ 1, got {} classes, {} features, width {}",
                self.classes, self.input_dim, self.hidden
            ));
        }
        if e < self.classes || (!self.learned_embedding && e != self.classes) {
            return invalid(format!(
                "the label embedding needs width ≥ {} (= {} for one-hot), got {e}",
                self.classes, self.classes
            ));
        }
        if !(self.eta > 0.0 && self.eta.is_finite() && self.snr_cap > 0.0) {
            return invalid(format!(
                "η and the SNR cap must be positive, got η = {}, cap = {}",
                self.eta, self.snr_cap
            ));
        }
        Ok(())
    }

    /// Build with weights drawn from `seed`; the learned embedding starts with orthonormal rows.
    pub fn init(&self, device: &Device, seed: u64) -> crate::Result<NoProp> {
        self.validate()?;
        let e = self.embed_dim.unwrap_or(self.classes);
        let w = if self.learned_embedding {
            orthonormal_rows(self.classes, e, seed)
        } else {
            (0..self.classes * e)
                .map(|i| f64::from(u8::from(i / e == i % e)))
                .collect()
        };
        let embed =
            gradlab_core::bridge::from_host(&w, [self.classes, e], device)?.cast(DType::F32);
        let (d, h, k) = (self.input_dim, self.hidden, self.classes);
        Ok(seeded(device, seed, || NoProp {
            blocks: (0..self.blocks)
                .map(|_| NoPropBlock {
                    x_in: LinearConfig::new(d, h).init(device),
                    z_in: LinearConfig::new(e, h).init(device),
                    mid: LinearConfig::new(2 * h, h).init(device),
                    out: LinearConfig::new(h, k).init(device),
                })
                .collect(),
            embed: Param::from_tensor(embed),
            head: LinearConfig::new(e, k).init(device),
            settings: NoPropSettings {
                schedule: NoPropSchedule::cosine(self.blocks).expect("validated"),
                eta: self.eta,
                snr_cap: self.snr_cap,
                learned_embedding: self.learned_embedding,
                input_dim: d,
            },
        }))
    }
}

/// A `rows × cols` matrix (rows ≤ cols) with orthonormal rows: Gram–Schmidt on a seeded Gaussian.
fn orthonormal_rows(rows: usize, cols: usize, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x000E_4BED);
    let mut m: Vec<Vec<f64>> = Vec::with_capacity(rows);
    while m.len() < rows {
        let mut v: Vec<f64> = (0..cols).map(|_| rng.sample(StandardNormal)).collect();
        for q in &m {
            let dot: f64 = v.iter().zip(q).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(q).for_each(|(a, b)| *a -= dot * b);
        }
        let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
        if n > 1e-6 {
            m.push(v.into_iter().map(|a| a / n).collect());
        }
    }
    m.concat()
}

/// Standard normal noise of `shape` as an f32 tensor.
fn noise(rng: &mut StdRng, [b, e]: [usize; 2], device: &Device) -> Tensor<2> {
    let v: Vec<f32> = (0..b * e)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    Tensor::from_data(TensorData::new(v, [b, e]), device)
}

impl NoProp {
    /// The schedule.
    pub fn schedule(&self) -> &NoPropSchedule {
        &self.settings.schedule
    }

    /// T.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// W_embed [classes, e] (detached when the embedding is fixed).
    pub fn embedding(&self) -> Tensor<2> {
        let w = self.embed.val();
        if self.settings.learned_embedding {
            w
        } else {
            w.detach()
        }
    }

    fn check_input(&self, x: &Tensor<2>) -> crate::Result<()> {
        let d = x.dims()[1];
        if d != self.settings.input_dim {
            return Err(ParadigmError::Shape(format!(
                "NoProp was built for {} input features, got {d}",
                self.settings.input_dim
            )));
        }
        Ok(())
    }

    /// û_t = softmax(block_t(x, z)) · W_embed, for t = 1 … T.
    pub fn denoise(&self, t: usize, x: Tensor<2>, z: Tensor<2>) -> Tensor<2> {
        softmax(self.blocks[t - 1].forward(x, z), 1).matmul(self.embedding())
    }

    /// The label embeddings u_y [B, e].
    pub fn label_embedding(&self, y: Tensor<1, Int>) -> Tensor<2> {
        self.embedding().select(0, y)
    }

    /// z drawn from q(z_t | y) = N(√ᾱ_t u, (1 − ᾱ_t) I) with the given standard noise.
    fn noised(&self, t: usize, u: Tensor<2>, eps: Tensor<2>) -> Tensor<2> {
        let a = self.schedule().alpha_bar(t);
        u.mul_scalar(a.sqrt()) + eps.mul_scalar((1.0 - a).sqrt())
    }

    /// Block t's loss term (T/2)·η·(SNR(t) − SNR(t−1))·mean_B ‖û_t(x, z_{t−1}) − u_y‖², with
    /// z_{t−1} = √ᾱ_{t−1} u_y + √(1 − ᾱ_{t−1}) `eps`.
    pub fn block_loss(
        &self,
        t: usize,
        x: Tensor<2>,
        y: Tensor<1, Int>,
        eps: Tensor<2>,
    ) -> Tensor<1> {
        let u = self.label_embedding(y);
        let z = self.noised(t - 1, u.clone(), eps);
        let w = self
            .schedule()
            .loss_weight(t, self.settings.eta, self.settings.snr_cap);
        (self.denoise(t, x, z) - u)
            .powf_scalar(2.0)
            .sum_dim(1)
            .mean()
            .mul_scalar(w)
    }

    /// CE(head(z_T), y) with z_T ~ q(z_T | y) from `eps`, plus KL(q(z₀ | y) ‖ N(0, I)) (zero for
    /// ᾱ₀ = 0; kept for other schedules).
    pub fn output_loss(&self, y: Tensor<1, Int>, eps: Tensor<2>) -> Tensor<1> {
        let b = y.dims()[0];
        let u = self.label_embedding(y.clone());
        let s = self.schedule();
        let z = self.noised(s.blocks(), u.clone(), eps);
        let ce = log_softmax(self.head.forward(z), 1)
            .gather(1, y.reshape([b, 1]))
            .mean()
            .neg();
        let a0 = s.alpha_bar(0);
        let e = u.dims()[1] as f64;
        let kl = u
            .powf_scalar(2.0)
            .sum_dim(1)
            .mean()
            .mul_scalar(0.5 * a0)
            .add_scalar(0.5 * e * (-a0 - (1.0 - a0).ln()));
        ce + kl
    }

    /// Class logits by the reverse chain from z₀ ~ N(0, I) (seeded): z_t = a_t û_t + b_t z_{t−1}
    /// + √c_t ε, then head(z_T). The labels are never seen.
    pub fn predict(&self, x: Tensor<2>, seed: u64) -> crate::Result<Tensor<2>> {
        self.check_input(&x)?;
        let (b, dev) = (x.dims()[0], x.device());
        let e = self.embed.val().dims()[1];
        let mut rng = StdRng::seed_from_u64(seed);
        let z0 = noise(&mut rng, [b, e], &dev);
        let z = reverse_chain(
            self.schedule(),
            z0,
            |t, z| self.denoise(t, x.clone(), z),
            || noise(&mut rng, [b, e], &dev),
        );
        Ok(self.head.forward(z))
    }

    /// The same blocks chained as an ordinary network, z₀ = 0 and z_t = û_t(x, z_{t−1}), then
    /// head(z_T): the backprop baseline of equal capacity.
    pub fn forward_chained(&self, x: Tensor<2>) -> crate::Result<Tensor<2>> {
        self.check_input(&x)?;
        let e = self.embed.val().dims()[1];
        let mut z = Tensor::zeros([x.dims()[0], e], &x.device());
        for t in 1..=self.num_blocks() {
            z = self.denoise(t, x.clone(), z);
        }
        Ok(self.head.forward(z))
    }
}

/// The reverse chain z_t = a_t û_t(z_{t−1}) + b_t z_{t−1} + √c_t ε_t for t = 1 … T from `z0`, with
/// `denoise(t, z_{t−1})` giving û_t and `eps()` fresh standard noise; returns z_T.
pub fn reverse_chain(
    schedule: &NoPropSchedule,
    z0: Tensor<2>,
    mut denoise: impl FnMut(usize, Tensor<2>) -> Tensor<2>,
    mut eps: impl FnMut() -> Tensor<2>,
) -> Tensor<2> {
    (1..=schedule.blocks()).fold(z0, |z, t| {
        let (a, b, c) = schedule.posterior(t);
        denoise(t, z.clone()).mul_scalar(a) + z.mul_scalar(b) + eps().mul_scalar(c.sqrt())
    })
}

/// How a [`NoProp`] model is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPropTraining {
    /// NoProp: one optimiser step per block per batch, each from that block's own loss term
    /// (and the output term with the last block), with only that block's graph alive.
    Local,
    /// The backprop baseline: the blocks chained ([`NoProp::forward_chained`]) and trained end to
    /// end on the cross-entropy.
    Backprop,
}

/// One [`NoProp`] model with its optimiser (AdamW, ε = 1e-8, as the paper) and noise generator:
/// [`NoPropTrainer::step`] fits into a user's own loop.
pub struct NoPropTrainer {
    model: NoProp,
    how: NoPropTraining,
    optim: ModuleOptimizer,
    rng: StdRng,
    steps: usize,
}

impl NoPropTrainer {
    /// A trainer for `model` (on an autodiff device) with AdamW's decoupled `weight_decay`; `seed`
    /// draws the noisy embeddings.
    pub fn new(
        model: NoProp,
        how: NoPropTraining,
        weight_decay: f64,
        seed: u64,
    ) -> crate::Result<Self> {
        if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
            return invalid(format!("weight decay must be ≥ 0, got {weight_decay}"));
        }
        let optim = AdamWConfig::new()
            .with_weight_decay(weight_decay as f32)
            .with_epsilon(1e-8)
            .init();
        Ok(Self {
            model,
            how,
            optim,
            rng: StdRng::seed_from_u64(seed ^ 0x9E3_0B0B),
            steps: 0,
        })
    }

    /// The model.
    pub fn model(&self) -> &NoProp {
        &self.model
    }

    /// The trained model.
    pub fn into_model(self) -> NoProp {
        self.model
    }

    /// One batch at learning rate `lr`: T optimiser steps (Local) or one (Backprop). Returns the
    /// summed loss; a non-finite loss is an error and leaves the model as it was before that term.
    pub fn step(&mut self, x: Tensor<2>, y: Tensor<1, Int>, lr: f64) -> crate::Result<f64> {
        self.model.check_input(&x)?;
        let b = x.dims()[0];
        if y.dims()[0] != b || b == 0 {
            return Err(ParadigmError::Shape(format!(
                "{b} inputs but {} labels",
                y.dims()[0]
            )));
        }
        let (e, dev) = (self.model.embed.val().dims()[1], x.device());
        let terms = match self.how {
            NoPropTraining::Local => self.model.num_blocks(),
            NoPropTraining::Backprop => 1,
        };
        let mut total = 0.0;
        for t in 1..=terms {
            let model = &self.model;
            let loss = match self.how {
                NoPropTraining::Backprop => {
                    let logits = model.forward_chained(x.clone())?;
                    log_softmax(logits, 1)
                        .gather(1, y.clone().reshape([b, 1]))
                        .mean()
                        .neg()
                }
                NoPropTraining::Local => {
                    let l = model.block_loss(
                        t,
                        x.clone(),
                        y.clone(),
                        noise(&mut self.rng, [b, e], &dev),
                    );
                    if t == model.num_blocks() {
                        l + model.output_loss(y.clone(), noise(&mut self.rng, [b, e], &dev))
                    } else {
                        l
                    }
                }
            };
            let value = loss.clone().into_scalar::<f64>();
            if !value.is_finite() {
                return Err(ParadigmError::NonFinite {
                    what: "NoProp training loss",
                    step: self.steps,
                });
            }
            total += value;
            let grads = GradientsParams::from_grads(loss.backward(), &self.model);
            self.model = self.optim.step(lr, self.model.clone(), grads);
        }
        self.steps += 1;
        Ok(total)
    }
}

/// Optimisation settings: AdamW (the paper's optimiser) with linear decay to zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitSettings {
    /// Passes over the training set.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// AdamW's decoupled weight decay.
    pub weight_decay: f64,
    /// Seed of the batch order and the noise.
    pub seed: u64,
}

/// Train `model` (on an autodiff device) on `set` with a [`NoPropTrainer`]; returns the model
/// and the mean training loss of each epoch. `on_epoch(epoch, model)` is called after every epoch
/// (for progress and curves).
pub fn train_noprop(
    model: NoProp,
    set: &ImageSet,
    how: NoPropTraining,
    fit: &FitSettings,
    mut on_epoch: impl FnMut(usize, &NoProp),
) -> crate::Result<(NoProp, Vec<f64>)> {
    if fit.epochs == 0 || fit.batch == 0 || !(fit.lr > 0.0 && fit.lr.is_finite()) {
        return invalid(format!(
            "training needs epochs ≥ 1, batch ≥ 1 and lr > 0, got {}, {}, {}",
            fit.epochs, fit.batch, fit.lr
        ));
    }
    if set.is_empty() {
        return invalid("the training set is empty");
    }
    if set.feature_dim() != model.settings.input_dim {
        return Err(ParadigmError::Shape(format!(
            "NoProp was built for {} input features, the data set has {}",
            model.settings.input_dim,
            set.feature_dim()
        )));
    }
    let dev = model.embed.val().device();
    let mut trainer = NoPropTrainer::new(model, how, fit.weight_decay, fit.seed)?;
    let steps = fit.epochs * set.len().div_ceil(fit.batch);
    let mut losses = Vec::with_capacity(fit.epochs);
    for epoch in 0..fit.epochs {
        let batches = epoch_batches(set.len(), fit.batch, fit.seed, epoch);
        let mut total = 0.0;
        for idx in &batches {
            let (x, y) = to_tensors(set, idx, &dev);
            let lr = fit.lr * (1.0 - trainer.steps as f64 / steps as f64);
            total += trainer.step(x, y, lr)?;
        }
        losses.push(total / batches.len() as f64);
        on_epoch(epoch, trainer.model());
    }
    Ok((trainer.into_model(), losses))
}

/// Test accuracy of `model` on `set`: by the reverse chain (NoProp's inference, seeded) or by the
/// chained forward pass (the backprop baseline's).
pub fn accuracy(
    model: &NoProp,
    set: &ImageSet,
    how: NoPropTraining,
    seed: u64,
) -> crate::Result<f64> {
    if set.is_empty() {
        return invalid("the evaluation set is empty");
    }
    let model = model.clone().valid();
    let dev = model.embed.val().device();
    let mut correct = 0usize;
    for (i, idx) in (0..set.len()).collect::<Vec<_>>().chunks(512).enumerate() {
        let (x, y) = to_tensors(set, idx, &dev);
        let logits = match how {
            NoPropTraining::Local => model.predict(x, seed.wrapping_add(i as u64))?,
            NoPropTraining::Backprop => model.forward_chained(x)?,
        };
        let hits = logits.argmax(1).reshape([idx.len()]).equal(y).int().sum();
        correct += hits.into_scalar::<i64>() as usize;
    }
    Ok(correct as f64 / set.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_runs_from_noise_to_the_label_and_its_weights_are_capped() {
        let s = NoPropSchedule::cosine(10).unwrap();
        assert_eq!(s.alpha_bar(0), 0.0);
        assert!((1.0 - s.alpha_bar(10)) < 2e-4);
        assert!((1..=10).all(|t| s.alpha_bar(t) > s.alpha_bar(t - 1)));
        // SNR(10) ≈ 6,400 uncapped; capped at 100 the last weight is 5·(100 − SNR(9)).
        let snr9 = s.alpha_bar(9) / (1.0 - s.alpha_bar(9));
        assert!((s.loss_weight(10, 1.0, 100.0) - 5.0 * (100.0 - snr9)).abs() < 1e-9);
        assert!((1..=10).all(|t| s.loss_weight(t, 1.0, 100.0) > 0.0));
        assert!(NoPropSchedule::cosine(0).is_err());
    }

    /// With a perfect denoiser (û = u) the reverse chain's marginals are q(z_t | y): mean √ᾱ_t u
    /// and variance 1 − ᾱ_t, propagated exactly through (a_t, b_t, c_t). An index off by one in
    /// α = ᾱ_{t−1}/ᾱ_t (the community code's trap) breaks this.
    #[test]
    fn a_perfect_denoiser_gives_the_forward_marginals_exactly() {
        for blocks in [1, 3, 10, 40] {
            let s = NoPropSchedule::cosine(blocks).unwrap();
            let (mut mean, mut var) = (s.alpha_bar(0).sqrt(), 1.0 - s.alpha_bar(0));
            for t in 1..=blocks {
                let (a, b, c) = s.posterior(t);
                mean = a + b * mean;
                var = b * b * var + c;
                assert!(
                    (mean - s.alpha_bar(t).sqrt()).abs() < 1e-12,
                    "T = {blocks}, t = {t}: mean {mean}"
                );
                assert!(
                    (var - (1.0 - s.alpha_bar(t))).abs() < 1e-12,
                    "T = {blocks}, t = {t}: var {var}"
                );
            }
        }
    }

    /// The same through [`reverse_chain`] itself, by Monte Carlo: 40,000 chains per coordinate.
    #[test]
    fn the_reverse_chain_with_a_perfect_denoiser_samples_q() {
        let dev = Device::flex();
        let s = NoPropSchedule::cosine(6).unwrap();
        let n = 40_000;
        let u = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, -0.5], [1, 2]), &dev)
            .repeat_dim(0, n);
        let mut rng = StdRng::seed_from_u64(1);
        let z0 = noise(&mut rng, [n, 2], &dev);
        let z = reverse_chain(&s, z0, |_, _| u.clone(), || noise(&mut rng, [n, 2], &dev));
        let v = gradlab_core::bridge::to_host(z).unwrap();
        for (j, uj) in [1.0, -0.5].into_iter().enumerate() {
            let col: Vec<f64> = v.iter().skip(j).step_by(2).copied().collect();
            let m = col.iter().sum::<f64>() / n as f64;
            let var = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1) as f64;
            let a = s.alpha_bar(6);
            // Standard errors: √((1−ᾱ)/n) ≈ 6e-5 for the mean; the variance's is ≈ (1−ᾱ)·0.007.
            assert!((m - a.sqrt() * uj).abs() < 5e-4, "coordinate {j}: mean {m}");
            assert!(
                (var / (1.0 - a) - 1.0).abs() < 0.05,
                "coordinate {j}: variance {var}"
            );
        }
    }

    /// Each block's parameters get gradient from their own term only: the backward of term t
    /// reaches block t and no other block.
    #[test]
    fn each_block_learns_only_from_its_own_term() {
        let dev = Device::flex().autodiff();
        let net = NoPropConfig::new(5, 3)
            .with_blocks(4)
            .with_hidden(8)
            .init(&dev, 2)
            .unwrap();
        let mut rng = StdRng::seed_from_u64(3);
        let x = noise(&mut rng, [6, 5], &dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0, 1, 2], [6]), &dev);
        for t in 1..=4 {
            let mut grads = net
                .block_loss(t, x.clone(), y.clone(), noise(&mut rng, [6, 3], &dev))
                .backward();
            for (s, block) in net.blocks.iter().enumerate() {
                let g = GradientsParams::from_module(&mut grads, block);
                if s + 1 == t {
                    assert_eq!(
                        g.len(),
                        8,
                        "block {t} misses gradients of its own parameters"
                    );
                } else {
                    assert!(g.is_empty(), "term {t} reached block {}", s + 1);
                }
            }
        }
        // The output term reaches no block at all.
        let mut grads = net.output_loss(y, noise(&mut rng, [6, 3], &dev)).backward();
        assert!(
            net.blocks
                .iter()
                .all(|b| GradientsParams::from_module(&mut grads, b).is_empty())
        );
    }

    #[test]
    fn the_learned_embedding_starts_orthonormal_and_one_hot_is_the_identity() {
        let w = orthonormal_rows(10, 16, 4);
        for i in 0..10 {
            for j in 0..10 {
                let dot: f64 = (0..16).map(|k| w[i * 16 + k] * w[j * 16 + k]).sum();
                assert!((dot - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        let dev = Device::flex();
        let net = NoPropConfig::new(4, 3)
            .with_learned_embedding(false)
            .init(&dev, 0)
            .unwrap();
        let e = gradlab_core::bridge::to_host(net.embedding()).unwrap();
        assert_eq!(e, vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn bad_configurations_and_inputs_are_refused_with_the_value() {
        let dev = Device::flex();
        let err = |c: NoPropConfig| c.init(&dev, 0).unwrap_err().to_string();
        assert!(err(NoPropConfig::new(4, 3).with_blocks(0)).contains("got 0"));
        assert!(err(NoPropConfig::new(4, 3).with_embed_dim(Some(2))).contains("got 2"));
        assert!(err(NoPropConfig::new(4, 3).with_eta(-1.0)).contains("-1"));
        assert!(err(NoPropConfig::new(4, 1)).contains("1 classes"));
        let net = NoPropConfig::new(4, 3)
            .with_blocks(2)
            .init(&dev, 0)
            .unwrap();
        let e = net
            .predict(Tensor::zeros([2, 5], &dev), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4 input features, got 5"), "{e}");
    }

    /// Either training lowers the loss and classifies a separable toy set (one-hot embeddings: with
    /// a learned embedding the chained backprop network can merge two classes' rows, a local
    /// minimum NoProp's per-block targets do not have).
    #[test]
    fn both_trainings_learn_a_separable_problem() {
        let mut rng = StdRng::seed_from_u64(5);
        let n = 240;
        let labels: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
        let images: Vec<f32> = labels
            .iter()
            .flat_map(|&l| {
                (0..4)
                    .map(move |k| if k == l as usize { 2.0 } else { 0.0 })
                    .collect::<Vec<f32>>()
            })
            .map(|v| v + 0.3 * rng.sample::<f32, _>(StandardNormal))
            .collect();
        let set = ImageSet {
            name: "toy".into(),
            images,
            labels,
            channels: 1,
            height: 1,
            width: 4,
            classes: 3,
        };
        let fit = FitSettings {
            epochs: 40,
            batch: 32,
            lr: 1e-2,
            weight_decay: 0.0,
            seed: 1,
        };
        for how in [NoPropTraining::Local, NoPropTraining::Backprop] {
            let net = NoPropConfig::new(4, 3)
                .with_blocks(3)
                .with_hidden(16)
                .with_learned_embedding(false)
                .init(&Device::flex().autodiff(), 0)
                .unwrap();
            let (net, losses) = train_noprop(net, &set, how, &fit, |_, _| {}).unwrap();
            assert!(losses[losses.len() - 1] < losses[0], "{how:?}: {losses:?}");
            let acc = accuracy(&net, &set, how, 9).unwrap();
            assert!(acc > 0.9, "{how:?}: accuracy {acc}");
        }
    }
}
