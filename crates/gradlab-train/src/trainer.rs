//! A supervised training loop for any [`Net`] on an [`ImageSet`], usable from the library and the
//! CLI: optimizer and schedule by value, seeded minibatches, per-epoch train/test loss and
//! accuracy, a JSONL log, a progress bar, exact checkpoint/resume, and a clear error naming the
//! step when the loss or a gradient stops being finite.
//!
//! ```
//! use gradlab_train::trainer::{TrainConfig, Trainer, autodiff_device};
//! use gradlab_nets::mlp::MlpConfig;
//! use gradlab_optim::spec::OptimizerSpec;
//!
//! let (train, test) = gradlab_data::images::digits_split(0.2, 0).unwrap();
//! let model = MlpConfig::new(vec![64, 32, 10]).init(&autodiff_device(), 0);
//! let cfg = TrainConfig::new(OptimizerSpec::parse("adam").unwrap());
//! let mut trainer = Trainer::new(model, cfg).unwrap();
//! let stats = trainer.fit(&train, &test, 1).unwrap();
//! assert!(stats[0].test_acc > 0.5);
//! ```

use crate::checkpoint::{load_set, save_set};
use crate::error::{Result, TrainError, file_err};
use burn::module::{ModuleVisitor, Param};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use gradlab_core::collective::Collective;
use gradlab_data::ImageSet;
use gradlab_data::batch::{epoch_batches, to_tensors};
use gradlab_nets::{FirstLayer, Net};
pub use gradlab_nets::{LossKind, autodiff_device};
use gradlab_optim::schedule::Schedule;
use gradlab_optim::spec::OptimizerSpec;
use gradlab_optim::tract::TrAct;
use gradlab_optim::transform::{ClipSpec, GradientTransform};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Settings of a training run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Optimizer and hyperparameters.
    pub optimizer: OptimizerSpec,
    /// Learning-rate schedule (a factor on the optimizer's lr, by step).
    pub schedule: Schedule,
    /// The loss.
    #[serde(default)]
    pub loss: LossKind,
    /// Gradient clipping applied before the optimizer, if any.
    #[serde(default)]
    pub clip: Option<ClipSpec>,
    /// TrAct's λ for the first layer's weight gradient, if any ([`gradlab_optim::tract`]).
    #[serde(default)]
    pub tract: Option<f64>,
    /// A label of the training data (its name, say); a checkpoint resumes only under the same label.
    #[serde(default)]
    pub data: Option<String>,
    /// Minibatch size.
    pub batch_size: usize,
    /// Seed of the batch order.
    pub seed: u64,
    /// Show a progress bar on stderr.
    #[serde(skip)]
    pub progress: bool,
    /// Append one JSON line per epoch here.
    #[serde(skip)]
    pub log: Option<PathBuf>,
}

impl TrainConfig {
    /// Defaults: constant schedule, cross-entropy, batch 32, seed 0, no progress bar, no log.
    pub fn new(optimizer: OptimizerSpec) -> Self {
        Self {
            optimizer,
            schedule: Schedule::Constant,
            loss: LossKind::CrossEntropy,
            clip: None,
            tract: None,
            data: None,
            batch_size: 32,
            seed: 0,
            progress: false,
            log: None,
        }
    }
}

/// Metrics at the end of an epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EpochStats {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Steps taken so far.
    pub step: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean minibatch loss over the epoch.
    pub train_loss: f64,
    /// Accuracy over the epoch's minibatches (before each update).
    pub train_acc: f64,
    /// Loss on the test set.
    pub test_loss: f64,
    /// Accuracy on the test set.
    pub test_acc: f64,
    /// Seconds since the run (or resume) started.
    pub seconds: f64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CheckpointMeta {
    step: usize,
    pub(crate) config: TrainConfig,
    /// The model's type and parameter count.
    #[serde(default)]
    model: String,
}

/// The configuration fields a checkpoint must agree on to resume, by name, each as a person
/// would write it.
fn resume_key(c: &TrainConfig) -> Vec<(&'static str, String)> {
    let o = &c.optimizer;
    let mut opt = format!("{} (lr {}", o.name(), o.lr());
    for (name, v) in [
        ("β₁", o.beta1),
        ("β₂", o.beta2),
        ("ε", o.eps),
        ("momentum", o.momentum),
        ("weight decay", o.weight_decay),
    ] {
        if let Some(v) = v {
            opt.push_str(&format!(", {name} {v}"));
        }
    }
    opt.push(')');
    let clip = match c.clip {
        None => "none".to_string(),
        Some(ClipSpec::GlobalNorm(v)) => format!("global-norm:{v}"),
        Some(ClipSpec::NormPerTensor(v)) => format!("tensor-norm:{v}"),
        Some(ClipSpec::Value(v)) => format!("value:{v}"),
        Some(ClipSpec::TopCoordinates(v)) => format!("top:{v}"),
    };
    vec![
        ("optimizer", opt),
        ("schedule", describe_schedule(&c.schedule)),
        (
            "loss",
            match c.loss {
                LossKind::CrossEntropy => "cross-entropy".into(),
                LossKind::MseOneHot => "mse".into(),
            },
        ),
        ("clip", clip),
        (
            "tract",
            c.tract.map_or("none".into(), |l| format!("λ = {l}")),
        ),
        ("data", c.data.clone().unwrap_or_else(|| "unnamed".into())),
        ("batch size", c.batch_size.to_string()),
        ("seed", c.seed.to_string()),
    ]
}

fn describe_schedule(s: &Schedule) -> String {
    match s {
        Schedule::Constant => "constant".into(),
        Schedule::Cosine { total, min_factor } => {
            format!("cosine over {total} steps (to {min_factor})")
        }
        Schedule::Linear { total } => format!("linear over {total} steps"),
        Schedule::WarmupLinear { warmup, total } => {
            format!("warmup-linear ({warmup} of {total} steps warm-up)")
        }
        other => format!("{other:?}"),
    }
}

/// One line naming the first field on which the saved and the current configuration differ.
fn key_mismatch(saved: &TrainConfig, now: &TrainConfig) -> Option<String> {
    let (a, b) = (resume_key(saved), resume_key(now));
    let ((name, was), (_, is)) = a.into_iter().zip(b).find(|(x, y)| x.1 != y.1)?;
    let hint = if name == "schedule" {
        " (a decaying schedule is planned for the run's --epochs: resume with the --epochs the checkpoint was started with)"
    } else {
        ""
    };
    Some(format!(
        "saved with {name} {was}, this run has {name} {is}{hint}"
    ))
}

/// What one optimizer step saw.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct StepStats {
    /// The minibatch loss before the update.
    pub loss: f64,
    /// Correct predictions in the minibatch before the update.
    pub correct: usize,
    /// Minibatch size.
    pub batch: usize,
    /// Euclidean norm of the (unclipped) gradient over all parameters.
    pub grad_norm: f64,
    /// ℓ1 norm ‖g‖₁ of the same gradient (what schedule refinement for Adam uses).
    pub grad_l1_norm: f64,
}

/// Looks for a parameter whose gradient is not finite, and sums the squared gradient norm.
struct GradCheck<'a> {
    grads: &'a GradientsParams,
    path: Vec<String>,
    bad: Option<String>,
    sq_norm: f64,
    l1_norm: f64,
}

impl ModuleVisitor for GradCheck<'_> {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
        if self.bad.is_some() {
            return;
        }
        if let Some(g) = self.grads.get::<D>(p.id) {
            // Both norms in one read back from the device.
            let both = Tensor::cat(vec![g.clone().square().sum(), g.abs().sum()], 0);
            let norms = match gradlab_core::bridge::to_host(both) {
                Ok(v) => v,
                Err(e) => {
                    self.bad = Some(format!("the gradient of {} ({e})", self.path.join(".")));
                    return;
                }
            };
            let s = norms[0];
            self.sq_norm += s;
            self.l1_norm += norms[1];
            if !s.is_finite() {
                self.bad = Some(format!(
                    "the gradient of {} (shape {:?})",
                    self.path.join("."),
                    p.val().dims()
                ));
            }
        }
    }
}

/// Trains a model step by step; see the module docs.
pub struct Trainer<M: Net> {
    /// The model (on the autodiff device).
    pub model: M,
    optim: ModuleOptimizer,
    clip: Option<Box<dyn GradientTransform>>,
    tract: Option<TrAct>,
    cfg: TrainConfig,
    step: usize,
    device: Device,
    epoch_cache: Option<(usize, Vec<Vec<usize>>)>,
    group: Option<Box<dyn Collective>>,
}

impl<M: Net> Trainer<M> {
    /// A trainer for `model` (built on [`autodiff_device`]); validates the configuration.
    pub fn new(model: M, cfg: TrainConfig) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(TrainError::Invalid("batch size must be at least 1".into()));
        }
        let optim = cfg.optimizer.module_optimizer()?;
        let clip = cfg.clip.map(|c| c.build()).transpose()?;
        let tract = cfg.tract.map(TrAct::new).transpose()?;
        if tract.is_some() {
            first_layer(&model)?;
        }
        let device = autodiff_device();
        Ok(Self {
            model,
            optim,
            clip,
            tract,
            cfg,
            step: 0,
            device,
            epoch_cache: None,
            group: None,
        })
    }

    /// Make this trainer one member of a data-parallel `group` (threads of one process, or MPI
    /// processes through `gradlab-mpi`): every step, each member computes the gradient of its
    /// contiguous share of the global minibatch, the shares' gradients are summed with weights
    /// |share| / |batch| in an all-reduce, and every member applies the same update to its copy of
    /// the model. With the same global batch this is single-process training up to float
    /// rounding (`tests/training.rs` checks it).
    ///
    /// Every member must build the trainer alike (same model seed, configuration and data,
    /// after any resume): the members' parameters and settings are compared here, and a
    /// difference is an error. TrAct needs the whole batch's inputs and is refused.
    pub fn data_parallel(mut self, mut group: Box<dyn Collective>) -> Result<Self> {
        if self.tract.is_some() {
            return Err(TrainError::Invalid(
                "TrAct preconditions with the whole minibatch's inputs; it is not available in data-parallel training".into(),
            ));
        }
        let (rank, size) = (group.rank(), group.size());
        let params = gradlab_core::flat::flatten_host(&self.model)?;
        // The step, and a digest of everything a resume must agree on (optimizer and its
        // hyperparameters, schedule, loss, clipping, data label, batch size, seed).
        let mut settings = vec![self.step as f64];
        settings.extend(digest_words(&format!("{:?}", resume_key(&self.cfg))));
        for (what, values) in [
            ("number of parameters", &[params.len() as f64][..]),
            (
                "step or settings (optimizer, schedule, loss, clipping, data, batch size, seed)",
                &settings[..],
            ),
            ("initial parameters", &params[..]),
        ] {
            if !group.all_agree(values)? {
                return Err(TrainError::Distributed(format!(
                    "the {size} members do not start alike: a member's {what} differs from member 0's (this is member {rank}; build every member with the same model, seed, configuration, data and checkpoint)"
                )));
            }
        }
        self.group = Some(group);
        Ok(self)
    }

    /// This member's rank and the group's size: (0, 1) outside data-parallel training.
    pub fn member(&self) -> (usize, usize) {
        self.group.as_ref().map_or((0, 1), |g| (g.rank(), g.size()))
    }

    /// Steps taken.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The configuration.
    pub fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    /// Minibatches per epoch for a set of `n` examples.
    pub fn batches_per_epoch(&self, n: usize) -> usize {
        n.div_ceil(self.cfg.batch_size)
    }

    /// Learning rate of the next step.
    pub fn current_lr(&self) -> f64 {
        self.cfg.optimizer.lr() * self.cfg.schedule.factor(self.step)
    }

    fn batch_for_step(&mut self, n: usize) -> Vec<usize> {
        let bpe = self.batches_per_epoch(n);
        let (epoch, b) = (self.step / bpe, self.step % bpe);
        if self.epoch_cache.as_ref().map(|c| c.0) != Some(epoch) {
            self.epoch_cache = Some((
                epoch,
                epoch_batches(n, self.cfg.batch_size, self.cfg.seed, epoch),
            ));
        }
        self.epoch_cache
            .as_ref()
            .map(|c| c.1[b].clone())
            .unwrap_or_default()
    }

    /// Loss, correct predictions and gradients of the mean loss on `idx` (the batch without
    /// autodiff too, when TrAct needs it).
    fn local_gradients(
        &self,
        set: &ImageSet,
        idx: &[usize],
    ) -> (f64, usize, GradientsParams, Option<Tensor<2>>) {
        let (x, y) = to_tensors(set, idx, &self.device);
        let x_plain = self.tract.is_some().then(|| x.clone().inner());
        let logits = self.model.forward(x);
        let correct = logits
            .clone()
            .argmax(1)
            .reshape([idx.len()])
            .equal(y.clone())
            .int()
            .sum()
            .into_scalar::<i64>() as usize;
        let loss = self.cfg.loss.forward(logits, y);
        let loss_value = loss.clone().into_scalar::<f64>();
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        (loss_value, correct, grads, x_plain)
    }

    /// The data-parallel step's gradient: this member's share of `idx`, weighted by its size,
    /// summed over the group together with the loss and the correct count. A member whose share
    /// fails raises a flag in the sum, so every member stops at the same step (none waits on it).
    fn group_gradients(
        &mut self,
        set: &ImageSet,
        idx: &[usize],
    ) -> Result<(f64, usize, GradientsParams)> {
        let Some(group) = self.group.as_ref() else {
            return Err(TrainError::Distributed("no group".into()));
        };
        let (rank, size) = (group.rank(), group.size());
        let share = &idx[idx.len() * rank / size..idx.len() * (rank + 1) / size];
        let n = self.model.num_params();
        let mut buf = vec![0.0; 3 + n];
        let mut own_error = None;
        if !share.is_empty() {
            let w = share.len() as f64 / idx.len() as f64;
            let (loss, correct, grads, _) = self.local_gradients(set, share);
            match gradlab_core::flat::flat_grads_host(&self.model, &grads) {
                Ok(g) if g.len() == n => {
                    buf[1] = w * loss;
                    buf[2] = correct as f64;
                    buf[3..].iter_mut().zip(g).for_each(|(b, v)| *b = w * v);
                }
                Ok(g) => {
                    own_error = Some(format!("{} gradient values for {n} parameters", g.len()))
                }
                Err(e) => own_error = Some(e.to_string()),
            }
            if own_error.is_some() {
                buf[0] = 1.0;
            }
        }
        let step = self.step;
        if let Some(g) = self.group.as_mut() {
            g.all_reduce_sum(&mut buf)?;
        }
        if buf[0] != 0.0 {
            return Err(TrainError::Distributed(match own_error {
                Some(e) => format!("member {rank} failed at step {step}: {e}"),
                None => format!("another member failed at step {step} (see its error)"),
            }));
        }
        let grads = gradlab_core::flat::grads_from_host(&self.model, &buf[3..])?;
        Ok((buf[1], buf[2].round() as usize, grads))
    }

    /// One optimizer step on the next minibatch of `set` (in data-parallel training, on this
    /// member's share of it, with the group's summed gradient).
    pub fn train_step(&mut self, set: &ImageSet) -> Result<StepStats> {
        if set.is_empty() {
            return Err(TrainError::Invalid("the training set is empty".into()));
        }
        check_fits(&self.model, set)?;
        let idx = self.batch_for_step(set.len());
        let (loss_value, correct, grads, x_plain) = if self.group.is_some() {
            let (l, c, g) = self.group_gradients(set, &idx)?;
            (l, c, g, None)
        } else {
            self.local_gradients(set, &idx)
        };
        if !loss_value.is_finite() {
            return Err(TrainError::NonFinite {
                step: self.step,
                what: format!("the loss ({loss_value})"),
            });
        }
        let mut check = GradCheck {
            grads: &grads,
            path: vec![],
            bad: None,
            sq_norm: 0.0,
            l1_norm: 0.0,
        };
        self.model.visit(&mut check);
        let (grad_norm, grad_l1_norm) = (check.sq_norm.sqrt(), check.l1_norm);
        if let Some(what) = check.bad {
            return Err(TrainError::NonFinite {
                step: self.step,
                what,
            });
        }
        // The first layer is looked up on the current model: a resume loads saved parameter ids.
        let grads = match (&self.tract, x_plain) {
            (Some(t), Some(x)) => tract_first_layer(t, first_layer(&self.model)?, x, grads)?,
            _ => grads,
        };
        let grads = match &mut self.clip {
            Some(t) => gradlab_optim::transform::apply(t.as_mut(), &self.model, grads)?,
            None => grads,
        };
        let lr = self.current_lr();
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.step += 1;
        Ok(StepStats {
            loss: loss_value,
            correct,
            batch: idx.len(),
            grad_norm,
            grad_l1_norm,
        })
    }

    /// Mean loss and accuracy on `set` (no autodiff, batches of 512).
    pub fn evaluate(&self, set: &ImageSet) -> (f64, f64) {
        evaluate(&self.model, set, self.cfg.loss)
    }

    /// Train until `epochs` full epochs of `train` are done, evaluating on `test` after each.
    pub fn fit(
        &mut self,
        train: &ImageSet,
        test: &ImageSet,
        epochs: usize,
    ) -> Result<Vec<EpochStats>> {
        self.fit_with(train, test, epochs, |_, _| Ok(()))
    }

    /// [`Trainer::fit`], calling `after_epoch(trainer, stats)` at the end of every epoch (to save a
    /// checkpoint, print a row, …); an error there stops the run.
    pub fn fit_with(
        &mut self,
        train: &ImageSet,
        test: &ImageSet,
        epochs: usize,
        mut after_epoch: impl FnMut(&Self, &EpochStats) -> Result<()>,
    ) -> Result<Vec<EpochStats>> {
        check_fits(&self.model, train)?;
        check_fits(&self.model, test)?;
        let bpe = self.batches_per_epoch(train.len().max(1));
        let target = total_steps(epochs, bpe)?;
        // Members that planned different numbers of steps would leave some waiting for the others.
        if let Some(g) = self.group.as_mut()
            && !g.all_agree(&[target as f64])?
        {
            return Err(TrainError::Distributed(format!(
                "the members plan different numbers of steps (member {} plans {target}, {epochs} epochs): give every member the same epochs and data",
                g.rank()
            )));
        }
        let bar = if self.cfg.progress {
            ProgressBar::new(target as u64)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30} {pos}/{len} steps {msg} [{elapsed_precise}<{eta_precise}]",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_position(self.step as u64);
        let t0 = std::time::Instant::now();
        let mut stats = Vec::new();
        let (mut loss_sum, mut correct, mut seen, mut batches) = (0.0, 0usize, 0usize, 0usize);
        while self.step < target {
            let StepStats {
                loss: l,
                correct: c,
                batch: n,
                ..
            } = self.train_step(train)?;
            loss_sum += l;
            correct += c;
            seen += n;
            batches += 1;
            bar.inc(1);
            if self.step.is_multiple_of(bpe) {
                let (test_loss, test_acc) = self.evaluate(test);
                let s = EpochStats {
                    epoch: self.step / bpe,
                    step: self.step,
                    lr: self.cfg.optimizer.lr() * self.cfg.schedule.factor(self.step - 1),
                    train_loss: loss_sum / batches as f64,
                    train_acc: correct as f64 / seen as f64,
                    test_loss,
                    test_acc,
                    seconds: t0.elapsed().as_secs_f64(),
                };
                bar.set_message(format!(
                    "epoch {} loss {:.4} test acc {:.3}",
                    s.epoch, s.train_loss, s.test_acc
                ));
                self.log(&s)?;
                after_epoch(self, &s)?;
                stats.push(s);
                (loss_sum, correct, seen, batches) = (0.0, 0, 0, 0);
            }
        }
        bar.finish_and_clear();
        Ok(stats)
    }

    /// Append `s` to the log (member 0 only, in data-parallel training).
    fn log(&self, s: &EpochStats) -> Result<()> {
        if self.member().0 != 0 {
            return Ok(());
        }
        if let Some(path) = &self.cfg.log {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| file_err(path, e))?;
            let line = serde_json::to_string(s).map_err(|e| file_err(path, e))?;
            writeln!(f, "{line}").map_err(|e| file_err(path, e))?;
        }
        Ok(())
    }

    /// Save model, optimizer state and position into directory `dir`, atomically as a set
    /// ([`crate::checkpoint`]): if the save fails part-way, the checkpoint that was there before
    /// stays valid.
    pub fn save_checkpoint(&self, dir: &Path) -> Result<()> {
        save_set(dir, self.step, |gdir| {
            self.model
                .clone()
                .save_file(gdir.join("model.bpk"))
                .map_err(|e| file_err(gdir.join("model.bpk"), e))?;
            self.optim
                .save(gdir.join("optimizer.bpk"))
                .map_err(|e| file_err(gdir.join("optimizer.bpk"), e))?;
            let meta = CheckpointMeta {
                step: self.step,
                config: self.cfg.clone(),
                model: self.model_label(),
            };
            let text = serde_json::to_string_pretty(&meta).map_err(|e| file_err(gdir, e))?;
            std::fs::write(gdir.join("trainer.json"), text)
                .map_err(|e| file_err(gdir.join("trainer.json"), e))
        })
    }

    fn model_label(&self) -> String {
        format!(
            "{} ({} parameters)",
            std::any::type_name::<M>(),
            self.model.num_params()
        )
    }

    /// Restore model, optimizer state and position from `dir` after verifying the checkpoint's
    /// files; the run's configuration must match the one saved (optimizer and its
    /// hyperparameters, schedule, loss, clipping, TrAct, data label, batch size, seed), and so
    /// must the model.
    pub fn resume(mut self, dir: &Path) -> Result<Self> {
        let gdir = load_set(dir)?;
        let bad = |reason: String| TrainError::Checkpoint {
            path: dir.into(),
            reason,
        };
        let meta_path = gdir.join("trainer.json");
        let text = std::fs::read_to_string(&meta_path).map_err(|e| file_err(&meta_path, e))?;
        let meta: CheckpointMeta =
            serde_json::from_str(&text).map_err(|e| file_err(&meta_path, e))?;
        if let Some(diff) = key_mismatch(&meta.config, &self.cfg) {
            return Err(bad(diff));
        }
        if meta.model != self.model_label() {
            return Err(bad(format!(
                "saved from model {}, this run has {}",
                meta.model,
                self.model_label()
            )));
        }
        self.model = self
            .model
            .try_load_file(gdir.join("model.bpk"))
            .map_err(|e| bad(e.to_string()))?;
        let optim = self.cfg.optimizer.module_optimizer()?;
        self.optim = optim
            .load(gdir.join("optimizer.bpk"))
            .map_err(|e| bad(e.to_string()))?;
        self.step = meta.step;
        self.epoch_cache = None;
        Ok(self)
    }
}

/// A text's SHA-256 as eight 32-bit words (exact in f64, for an all-reduce).
fn digest_words(text: &str) -> Vec<f64> {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    digest
        .chunks(4)
        .map(|w| f64::from(u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
        .collect()
}

/// `epochs · batches_per_epoch`, or an error if it overflows.
pub fn total_steps(epochs: usize, batches_per_epoch: usize) -> Result<usize> {
    epochs.checked_mul(batches_per_epoch).ok_or_else(|| {
        TrainError::Invalid(format!(
            "{epochs} epochs of {batches_per_epoch} batches is more steps than this machine can count"
        ))
    })
}

/// A set whose images the model cannot take is an error naming both sizes.
fn check_fits<M: Net>(model: &M, set: &ImageSet) -> Result<()> {
    if set.feature_dim() != model.input_features() {
        return Err(TrainError::Invalid(format!(
            "data set '{}' has images of {}×{}×{} ({} values) but the model takes {} input values",
            set.name,
            set.channels,
            set.height,
            set.width,
            set.feature_dim(),
            model.input_features()
        )));
    }
    Ok(())
}

/// The first layer of `model`, as TrAct needs it.
fn first_layer<M: Net>(model: &M) -> Result<FirstLayer> {
    model.first_layer().ok_or_else(|| {
        TrainError::Invalid(
            "TrAct needs a model whose first layer is linear or convolutional (mlp, cnn)".into(),
        )
    })
}

fn host(t: Tensor<2>) -> Result<Vec<f64>> {
    Ok(gradlab_core::bridge::to_host(t)?)
}

fn missing_first_gradient(id: burn::module::ParamId) -> TrainError {
    TrainError::MissingGradient(format!(
        "TrAct: the first layer's weight (parameter {id}) has no gradient in this step"
    ))
}

/// Replace the first layer's weight gradient by TrAct's, using the batch's inputs.
fn tract_first_layer(
    t: &TrAct,
    layer: FirstLayer,
    x: Tensor<2>,
    mut grads: GradientsParams,
) -> Result<GradientsParams> {
    let b = x.dims()[0];
    let bad = TrainError::Optim;
    match layer {
        FirstLayer::Linear { weight } => {
            let Some(g) = grads.remove::<2>(weight) else {
                return Err(missing_first_gradient(weight));
            };
            let [n, k] = g.dims();
            let new = t
                .precondition(&host(x)?, b, n, &host(g.clone())?, k)
                .map_err(bad)?;
            let new = Tensor::<2>::from_data(
                TensorData::new(
                    new.into_iter().map(|v| v as f32).collect::<Vec<_>>(),
                    [n, k],
                ),
                &g.device(),
            );
            grads.register::<2>(weight, new);
        }
        FirstLayer::Conv {
            weight,
            kernel,
            stride,
            padding,
            input,
        } => {
            let Some(g) = grads.remove::<4>(weight) else {
                return Err(missing_first_gradient(weight));
            };
            let [out, c, kh, kw] = g.dims();
            let n = c * kh * kw;
            let x = x.reshape([b, input[0], input[1], input[2]]);
            let patches = burn::tensor::module::unfold4d(
                x,
                kernel,
                burn::tensor::ops::UnfoldOptions::new(stride, padding, [1, 1]),
            );
            let l = patches.dims()[2];
            let a = host(patches.swap_dims(1, 2).reshape([b * l, n]))?;
            let gt = host(g.clone().reshape([out, n]).transpose())?;
            let new = t.precondition(&a, b * l, n, &gt, out).map_err(bad)?;
            let new = Tensor::<2>::from_data(
                TensorData::new(
                    new.into_iter().map(|v| v as f32).collect::<Vec<_>>(),
                    [n, out],
                ),
                &g.device(),
            );
            grads.register::<4>(weight, new.transpose().reshape([out, c, kh, kw]));
        }
    }
    Ok(grads)
}

/// Mean loss and accuracy of `model` on `set`, without autodiff.
pub fn evaluate<M: Net>(model: &M, set: &ImageSet, loss_kind: LossKind) -> (f64, f64) {
    if set.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let m = model.valid();
    let device = Device::flex();
    let (mut loss, mut correct) = (0.0, 0usize);
    let idx: Vec<usize> = (0..set.len()).collect();
    for chunk in idx.chunks(512) {
        let (x, y) = to_tensors(set, chunk, &device);
        let logits = m.forward(x);
        correct += logits
            .clone()
            .argmax(1)
            .reshape([chunk.len()])
            .equal(y.clone())
            .int()
            .sum()
            .into_scalar::<i64>() as usize;
        loss += loss_kind.forward(logits, y).into_scalar::<f64>() * chunk.len() as f64;
    }
    (loss / set.len() as f64, correct as f64 / set.len() as f64)
}
