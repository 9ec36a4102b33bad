//! RevCol ("Reversible Column Networks", Cai et al., ICLR 2023, arXiv 2212.11696;
//! [`gradlab_paradigms::revcol`]).
//!
//! Claims: (1) the reversible connections let the backward pass rebuild every column from the
//! next, so the activation memory of training does not grow with the number of columns while an
//! ordinary network's grows linearly; (2) the gradients are those of ordinary back-propagation;
//! (3) at equal size, RevCol classifies as well as an ordinary network.
//!
//! Here, on 8×8 digits: a RevCol of three 3×3-convolution levels (8, 16, 32 channels) with N
//! columns. (a) Peak heap of one loss-and-gradient step (batch 256, after a warm-up step) with the
//! reversible backward and with ordinary autodiff through the same network, N = 2, 4, 8: measured
//! by the metered allocator, not computed; it includes the parameter gradients, which grow with N
//! in both. (b) The reversible gradients against autodiff's in f64. (c) How well the first
//! column is rebuilt from the last as α shrinks. (d) Test accuracy of a 4-column RevCol trained
//! with the reversible backward against the same network trained with ordinary autodiff and a
//! small ResNet (`gradlab_nets::resnet`) of about the same parameter count, same Adam schedule.
//! The card's thresholds: gradient error < 1e-10; the N = 8 / N = 2 peak ratio below 1.2
//! reversible and above 3 ordinary; here also: RevCol's accuracy within 2 points of the same-size ResNet, and
//! reversible training within 1 point of ordinary training of the same network.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table, mean, mean_range, measure};
use crate::plot::{Series, line_chart};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::DType;
use gradlab_core::flat::flat_grads_host;
use gradlab_data::ImageSet;
use gradlab_data::batch::to_tensors;
use gradlab_data::images::load_split;
use gradlab_nets::resnet::SmallResNetConfig;
use gradlab_nets::{Net, autodiff_device};
use gradlab_nets::loss::LossKind;
use gradlab_paradigms::revcol::RevColConfig;
use rand::prelude::*;

/// The experiment.
pub struct RevColExperiment;

const INFO: PaperInfo = PaperInfo {
    id: "revcol",
    arxiv: "2212.11696",
    module: "gradlab_paradigms::revcol",
    claim: "Reversible connections between columns let the backward pass rebuild each column's features from the next, so training memory stays flat as columns are added while an ordinary network's grows linearly; the gradients are back-propagation's, and accuracy matches an ordinary network of the same size.",
};

/// Columns of the memory sweep.
const COLUMNS: [usize; 3] = [2, 4, 8];
/// α values of the reconstruction sweep.
const ALPHAS: [f64; 4] = [0.5, 0.1, 0.01, 1e-3];

fn config(columns: usize, alpha: f64) -> RevColConfig {
    RevColConfig::new().with_columns(columns).with_alpha(alpha)
}

/// The images of `idx` as [B, 1, 8, 8] and their labels.
fn batch(set: &ImageSet, idx: &[usize], dev: &Device) -> (Tensor<4>, Tensor<1, Int>) {
    let (x, y) = to_tensors(set, idx, dev);
    (x.reshape([idx.len(), set.channels, set.height, set.width]), y)
}

/// Peak heap of one loss-and-gradient step of an N-column RevCol, reversible or not.
fn step_peak(columns: usize, set: &ImageSet, size: usize, reversible: bool) -> Result<f64> {
    let dev = autodiff_device();
    let net = config(columns, 0.5).init(&dev, 0)?;
    let idx: Vec<usize> = (0..size.min(set.len())).collect();
    let (x, y) = batch(set, &idx, &dev);
    let step = || -> Result<GradientsParams> {
        if reversible {
            Ok(net.reversible_backward(x.clone(), |l| LossKind::CrossEntropy.forward(l, y.clone()))?.1)
        } else {
            let loss = LossKind::CrossEntropy.forward(net.forward(x.clone())?, y.clone());
            Ok(GradientsParams::from_grads(loss.backward(), &net))
        }
    };
    step()?;
    let (grads, cost) = measure(step);
    grads?;
    Ok(cost.peak_bytes)
}

/// Relative error of the reversible gradients against autodiff's, f64, 4 columns.
fn gradient_error(set: &ImageSet) -> Result<f64> {
    let dev = autodiff_device();
    let net = config(4, 0.5).init_with_dtype(&dev, 1, DType::F64)?;
    let idx: Vec<usize> = (0..16).collect();
    let (x, y) = batch(set, &idx, &dev);
    let x = x.cast(DType::F64);
    let (_, rev) = net.reversible_backward(x.clone(), |l| LossKind::CrossEntropy.forward(l, y.clone()))?;
    let plain = GradientsParams::from_grads(LossKind::CrossEntropy.forward(net.forward(x)?, y).backward(), &net);
    let (a, b) = (flat_grads_host(&net, &rev)?, flat_grads_host(&net, &plain)?);
    let diff: f64 = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum::<f64>().sqrt();
    Ok(diff / b.iter().map(|q| q * q).sum::<f64>().sqrt())
}

/// What to train.
#[derive(Clone, Copy)]
enum Arm {
    Reversible,
    Autodiff,
    ResNet(usize),
}

/// Test accuracy after `epochs` of Adam (lr 1e-3, batch 64).
fn train(arm: Arm, train: &ImageSet, test: &ImageSet, epochs: usize, seed: u64) -> Result<f64> {
    let dev = autodiff_device();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut order: Vec<usize> = (0..train.len()).collect();
    let lr = 1e-3;
    match arm {
        Arm::Reversible | Arm::Autodiff => {
            let mut net = config(4, 0.5).init(&dev, seed)?;
            for _ in 0..epochs {
                order.shuffle(&mut rng);
                for idx in order.chunks(64) {
                    let (x, y) = batch(train, idx, &dev);
                    let grads = if matches!(arm, Arm::Reversible) {
                        net.reversible_backward(x, |l| LossKind::CrossEntropy.forward(l, y))?.1
                    } else {
                        GradientsParams::from_grads(LossKind::CrossEntropy.forward(net.forward(x)?, y).backward(), &net)
                    };
                    // The official clamps |α| ≥ 1e-3 in the stored parameters before every forward.
                    net = optim.step(lr, net, grads).project_alphas();
                }
            }
            accuracy(|x| Ok(net.valid().forward(x)?), test)
        }
        Arm::ResNet(width) => {
            let mut net = SmallResNetConfig::new(train.channels, train.height, train.width, train.classes).with_width_base(width).init(&dev, seed);
            for _ in 0..epochs {
                order.shuffle(&mut rng);
                for idx in order.chunks(64) {
                    let (x, y) = to_tensors(train, idx, &dev);
                    let grads = GradientsParams::from_grads(LossKind::CrossEntropy.forward(net.forward(x), y).backward(), &net);
                    net = optim.step(lr, net, grads);
                }
            }
            let net = net.valid();
            accuracy(|x| Ok(net.forward(x.flatten(1, 3))), test)
        }
    }
}

/// Test accuracy of `logits` on `set` (inner device).
fn accuracy(logits: impl Fn(Tensor<4>) -> Result<Tensor<2>>, set: &ImageSet) -> Result<f64> {
    let idx: Vec<usize> = (0..set.len()).collect();
    let (x, y) = batch(set, &idx, &Device::flex());
    let pred = gradlab_core::bridge::ints_to_host(logits(x)?.argmax(1))?;
    let labels = gradlab_core::bridge::ints_to_host(y)?;
    Ok(pred.iter().zip(&labels).filter(|(p, l)| p == l).count() as f64 / set.len() as f64)
}

/// The ResNet width whose parameter count is nearest the 4-column RevCol's.
fn matched_width(set: &ImageSet, target: usize) -> (usize, usize) {
    let dev = Device::flex();
    (2..=64)
        .map(|w| (w, SmallResNetConfig::new(set.channels, set.height, set.width, set.classes).with_width_base(w).init(&dev, 0).num_params()))
        .min_by_key(|(_, p)| p.abs_diff(target))
        .expect("a width")
}


impl Experiment for RevColExperiment {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // Deterministic, and not sensitive to other tests' allocations.
        e.passed("gradients_match");
        e.passed("reconstruction_grows");
        e.passed("reversible_equals_autodiff");
        e.above("accuracy.reversible", 0.8);
        // Peak heap is process-wide: tests running beside this one disturb it.
        for key in ["memory_flat", "memory_linear", "accuracy_matches"] {
            e.measured(key);
        }
        e.figures(&["revcol_memory.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (epochs, seeds) = if ctx.quick { (8, 1u64) } else { (30, 3) };
        let (train_set, test_set) = load_split("digits", ctx.seed)?;
        let bar = ctx.progress_bar((2 * COLUMNS.len() + 3 * seeds as usize) as u64, "RevCol: memory, then training");

        // (a) Memory.
        let mut peaks = [[0.0; 3]; 2];
        let mut table = Table::new(
            "Peak heap of one loss-and-gradient step (batch 256, after a warm-up step), measured: the reversible backward against ordinary autodiff through the same RevCol (parameter gradients included)",
            &["columns N", "parameters", "reversible", "ordinary autodiff", "ordinary / reversible"],
        );
        for (i, &n) in COLUMNS.iter().enumerate() {
            for (r, reversible) in [true, false].into_iter().enumerate() {
                peaks[r][i] = step_peak(n, &train_set, 256, reversible)?;
                bar.inc(1);
            }
            let params = config(n, 0.5).init(&Device::flex(), 0)?.num_params();
            let kib = |b: f64| if b.is_nan() { "not metered".to_string() } else { format!("{:.0} KiB", b / 1024.0) };
            table.row(vec![n.to_string(), params.to_string(), kib(peaks[0][i]), kib(peaks[1][i]), format!("{:.2}", peaks[1][i] / peaks[0][i])]);
            out.metrics.insert(format!("memory.reversible.n{n}"), peaks[0][i]);
            out.metrics.insert(format!("memory.autodiff.n{n}"), peaks[1][i]);
        }
        out.tables.push(table);
        let last = COLUMNS.len() - 1;
        out.checks.push(Check::new("memory_flat", format!("reversible: peak heap at N = {} over N = {} (the card's: < 1.2)", COLUMNS[last], COLUMNS[0]), peaks[0][last] / peaks[0][0], Cmp::Lt, 1.2));
        out.checks.push(Check::new("memory_linear", format!("ordinary autodiff: peak heap at N = {} over N = {} (the card's: > 3)", COLUMNS[last], COLUMNS[0]), peaks[1][last] / peaks[1][0], Cmp::Gt, 3.0));
        let series = ["reversible backward", "ordinary autodiff"]
            .iter()
            .zip(&peaks)
            .map(|(label, p)| Series { label: (*label).into(), points: COLUMNS.iter().zip(p).map(|(n, b)| (*n as f64, b / 1024.0)).collect() })
            .collect::<Vec<_>>();
        line_chart(&ctx.out_dir.join("revcol_memory.png"), "Peak heap of one training step (batch 256)", "columns N", "KiB", &series, &[])?;
        out.figures.push("revcol_memory.png".into());

        // (b) Gradients, (c) reconstruction.
        let err = gradient_error(&train_set)?;
        out.metrics.insert("gradient_relative_error".into(), err);
        out.checks.push(Check::new("gradients_match", "reversible backward against autodiff, relative error of all gradients (f64, 4 columns, 16 images; < 1e-10)", err, Cmp::Lt, 1e-10));
        let idx: Vec<usize> = (0..64).collect();
        let (x, _) = batch(&train_set, &idx, &Device::flex());
        let mut recon = Table::new("Relative error of the first column rebuilt from the last (f32, 4 columns, 64 images) as α shrinks", &["α", "max over levels of ‖ĉ − c‖ / ‖c‖"]);
        let mut errs = vec![];
        for alpha in ALPHAS {
            let e = config(4, alpha).init(&Device::flex(), 0)?.reconstruction_error(x.clone())?;
            recon.row(vec![format!("{alpha}"), format!("{e:.3e}")]);
            out.metrics.insert(format!("reconstruction.alpha{alpha}"), e);
            errs.push(e);
        }
        out.tables.push(recon);
        let grows = errs.windows(2).filter(|w| w[1] > w[0]).count() as f64;
        out.checks.push(Check::new("reconstruction_grows", format!("reconstruction error grows at each step of α = {ALPHAS:?} (steps that grow, of {})", ALPHAS.len() - 1), grows, Cmp::Ge, (ALPHAS.len() - 1) as f64));

        // (d) Accuracy.
        let target = config(4, 0.5).init(&Device::flex(), 0)?.num_params();
        let (width, resnet_params) = matched_width(&train_set, target);
        let arms = [("RevCol, reversible backward", Arm::Reversible), ("RevCol, ordinary autodiff", Arm::Autodiff), ("small ResNet (ordinary)", Arm::ResNet(width))];
        let mut accs = vec![vec![]; arms.len()];
        for s in 0..seeds {
            for (a, (_, arm)) in arms.iter().enumerate() {
                accs[a].push(train(*arm, &train_set, &test_set, epochs, ctx.seed + s)?);
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let mut acc_table = Table::new(
            format!("Digits test accuracy after {epochs} epochs of Adam (lr 1e-3, batch 64), mean over {seeds} seed(s) [min, max]: RevCol with 4 columns ({target} parameters) against a small ResNet of width {width} ({resnet_params} parameters)"),
            &["network", "test accuracy"],
        );
        for (a, (label, _)) in arms.iter().enumerate() {
            acc_table.row(vec![(*label).into(), mean_range(&accs[a])]);
        }
        out.tables.push(acc_table);
        for (key, a) in [("reversible", 0), ("autodiff", 1), ("resnet", 2)] {
            out.metrics.insert(format!("accuracy.{key}"), mean(&accs[a]));
        }
        out.checks.push(Check::new(
            "reversible_equals_autodiff",
            "|RevCol trained with the reversible backward minus with ordinary autodiff|, test accuracy (≤ 0.01: the same gradients up to rounding)",
            (mean(&accs[0]) - mean(&accs[1])).abs(),
            Cmp::Le,
            0.01,
        ));
        out.checks.push(Check::new("accuracy_matches", "RevCol (reversible) minus the same-size ResNet, test accuracy (≥ −0.02)", mean(&accs[0]) - mean(&accs[2]), Cmp::Ge, -0.02));
        out.notes.push("The paper's RevCol uses ConvNeXt blocks with layer norm and intermediate supervision on ImageNet; here plain 3×3-convolution levels, no normalisation, one head. Reversible and ordinary training of the same RevCol differ only by float rounding (the gradients agree to the error above).".into());
        Ok(out)
    }
}
