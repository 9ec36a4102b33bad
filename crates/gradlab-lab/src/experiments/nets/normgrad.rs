//! NormGrad ("There and Back Again: Revisiting Backpropagation Saliency Methods", Rebuffi, Fong, Ji
//! and Vedaldi, CVPR 2020; [`gradlab_paradigms::normgrad`]).
//!
//! Claims: (1) NormGrad, the norm of a virtual identity layer's weight gradient, localises the
//! object well at any layer, better than the plain gradient; (2) combining the layers' maps helps;
//! (3) meta-saliency (one SGD step on the target class first) makes the maps class-sensitive.
//!
//! Here: a small CNN (conv blocks of widths 8, 16, 32 with ReLU and 2×2 max pools) trained on
//! 24×24 noise images holding one square, disc or triangle at a random position
//! (`gradlab_data::procedural::shapes`). On held-out images, the pointing game (is the map's
//! maximum, after bilinear upsampling, on the shape's pixels; no tolerance) for NormGrad and its
//! variants at every block, the official multi-layer product, the plain gradient, Grad-CAM and
//! random maps; and class sensitivity: the Pearson correlation between the maps for the true class
//! and for another class, with and without meta-saliency. The trained model is saved in `model/`
//! for `gradlab saliency`.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table};
use crate::plot::image_grid;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use gradlab_core::bridge::to_host;
use gradlab_data::ImageSet;
use gradlab_data::batch::epoch_batches;
use gradlab_data::procedural::{SHAPE_CLASSES, ShapeScenes, shapes};
use gradlab_nets::autodiff_device;
use gradlab_paradigms::normgrad::{
    Phase1, Probe, SaliencyCard, SaliencyCnn, SaliencyCnnConfig, check_model_destination, combine,
    meta_saliency, normalise, save_model, upsample,
};
use rand::prelude::*;

/// The experiment.
pub struct NormGradExperiment;

const INFO: PaperInfo = PaperInfo {
    id: "normgrad",
    arxiv: "",
    module: "gradlab_paradigms::normgrad",
    claim: "The norm of a virtual identity layer's weight gradient (NormGrad) localises objects at any layer better than the plain gradient, combining layers helps, and meta-saliency makes the maps class-sensitive.",
};

/// Image side.
pub const SIZE: usize = 24;

/// The official meta-saliency step size.
const META_LR: f64 = 1e-4;

/// Larger steps, reported beside the official one (a step's effect depends on the network's scale).
const META_LRS_MORE: [f64; 3] = [1e-2, 1e-1, 1.0];

/// Images [B, 1, S, S] of `idx` on `dev`, and their labels.
fn batch(set: &ImageSet, idx: &[usize], dev: &Device) -> (Tensor<4>, Vec<usize>) {
    let (x, _) = gradlab_data::batch::to_tensors(set, idx, dev);
    (x.reshape([idx.len(), 1, set.height, set.width]), idx.iter().map(|&i| usize::from(set.labels[i])).collect())
}

/// Train `net` with Adam on `set`; returns it.
fn train(mut net: SaliencyCnn, set: &ImageSet, epochs: usize, seed: u64) -> Result<SaliencyCnn> {
    let dev = autodiff_device();
    let mut optim = AdamConfig::new().init();
    for epoch in 0..epochs {
        for idx in epoch_batches(set.len(), 64, seed, epoch) {
            let (x, y) = batch(set, &idx, &dev);
            let b = y.len();
            let y = Tensor::<1, Int>::from_data(TensorData::new(y.iter().map(|&v| v as i64).collect::<Vec<_>>(), [b]), &dev);
            let loss = log_softmax(net.forward(x)?, 1).gather(1, y.reshape([b, 1])).mean().neg();
            if !loss.clone().into_scalar::<f64>().is_finite() {
                return Err(crate::error::LabError::Invalid(format!("the saliency CNN's loss diverged in epoch {epoch}")));
            }
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(3e-3, net, grads);
        }
    }
    Ok(net)
}

fn accuracy(net: &SaliencyCnn, set: &ImageSet) -> Result<f64> {
    let dev = Device::flex();
    let idx: Vec<usize> = (0..set.len()).collect();
    let (x, y) = batch(set, &idx, &dev);
    let pred = gradlab_core::bridge::ints_to_host(net.forward(x)?.argmax(1))?;
    Ok(pred.iter().zip(&y).filter(|(p, y)| **p as usize == **y).count() as f64 / y.len() as f64)
}

/// Whether each map's maximum (after upsampling) lies on its image's shape.
fn hits(map: Tensor<3>, masks: &[&Vec<u8>]) -> Result<Vec<bool>> {
    let up = to_host(upsample(map, [SIZE, SIZE]))?;
    Ok(up
        .chunks(SIZE * SIZE)
        .zip(masks)
        .map(|(m, mask)| {
            let best = m.iter().enumerate().fold(0, |b, (i, v)| if *v > m[b] { i } else { b });
            mask[best] > 0
        })
        .collect())
}

/// Mean Pearson correlation between paired maps (each upsampled to the image size).
fn mean_correlation(a: Tensor<3>, b: Tensor<3>) -> Result<f64> {
    let (a, b) = (to_host(upsample(a, [SIZE, SIZE]))?, to_host(upsample(b, [SIZE, SIZE]))?);
    let n = SIZE * SIZE;
    let mut total = 0.0;
    let count = a.len() / n;
    for (x, y) in a.chunks(n).zip(b.chunks(n)) {
        let (mx, my) = (x.iter().sum::<f64>() / n as f64, y.iter().sum::<f64>() / n as f64);
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (u, v) in x.iter().zip(y) {
            sxy += (u - mx) * (v - my);
            sxx += (u - mx).powi(2);
            syy += (v - my).powi(2);
        }
        total += if sxx > 0.0 && syy > 0.0 { sxy / (sxx * syy).sqrt() } else { 0.0 };
    }
    Ok(total / count as f64)
}

/// The maps compared in the pointing game, by name, from one probe.
fn maps(p: &Probe, layers: usize, rng: &mut StdRng) -> Result<Vec<(String, Tensor<3>)>> {
    let mut out = vec![];
    for u in 0..layers {
        for (name, kind) in [("NormGrad", Phase1::Conv1x1), ("conv 3×3", Phase1::Conv3x3), ("scaling", Phase1::Scaling), ("bias", Phase1::Bias), ("selective", Phase1::Selective)] {
            out.push((format!("{name}, block {}", u + 1), p.normgrad(u, kind)?));
        }
        out.push((format!("Grad-CAM, block {}", u + 1), p.grad_cam(u)?));
    }
    let all = (0..layers).map(|u| p.normgrad(u, Phase1::Conv1x1)).collect::<gradlab_paradigms::Result<Vec<_>>>()?;
    out.push(("NormGrad, all blocks combined".into(), combine(all, [SIZE, SIZE])?));
    out.push(("gradient".into(), p.gradient()));
    let [b, h, w] = p.gradient().dims();
    let noise: Vec<f32> = (0..b * h * w).map(|_| rng.random()).collect();
    out.push(("random".into(), Tensor::from_data(TensorData::new(noise, [b, h, w]), &Device::flex())));
    Ok(out)
}

fn class_sensitivity(net: &SaliencyCnn, x: Tensor<4>, y: &[usize], other: &[usize], layer: usize, meta: Option<f64>) -> Result<f64> {
    let probe = |t: &[usize]| -> Result<Probe> {
        Ok(match meta {
            Some(lr) => meta_saliency(net, x.clone(), t, lr)?,
            None => net.probe(x.clone(), t)?,
        })
    };
    let (a, b) = (probe(y)?, probe(other)?);
    mean_correlation(a.normgrad(layer, Phase1::Conv1x1)?, b.normgrad(layer, Phase1::Conv1x1)?)
}

impl Experiment for NormGradExperiment {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // A network that did not learn the shapes makes every saliency check meaningless.
        e.above("test_accuracy", 0.9);
        e.passed("beats_gradient");
        e.passed("beats_random");
        for key in ["any_layer", "combining_helps", "meta_class_sensitivity"] {
            e.measured(key);
        }
        e.figures(&["saliency_maps.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let model_dir = ctx.out_dir.join("model");
        check_model_destination(&model_dir)?;
        let (n_train, n_test, epochs) = if ctx.quick { (1500, 200, 6) } else { (6000, 600, 12) };
        let train_set: ShapeScenes = shapes(n_train, SIZE, 1, ctx.seed);
        let test: ShapeScenes = shapes(n_test, SIZE, 1, ctx.seed ^ 0x7E57);
        let spinner = crate::experiment::progress_spinner(ctx.progress, format!("training the saliency CNN ({epochs} epochs)"));
        let cfg = SaliencyCnnConfig::new().with_size(SIZE).with_classes(SHAPE_CLASSES.len());
        let net = train(cfg.init(&autodiff_device(), ctx.seed)?, &train_set.set, epochs, ctx.seed)?.valid();
        spinner.finish_and_clear();
        let acc = accuracy(&net, &test.set)?;
        out.metrics.insert("test_accuracy".into(), acc);
        let card = SaliencyCard {
            channels: 1,
            size: SIZE,
            widths: cfg.widths.clone(),
            class_names: SHAPE_CLASSES.iter().map(|s| s.to_string()).collect(),
            data: format!("shapes ({n_train} images of {SIZE}×{SIZE}, seed {})", ctx.seed),
            test_accuracy: acc,
        };
        save_model(&model_dir, &net, &card)?;

        let dev = Device::flex();
        let layers = net.layers();
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x5A11);
        let mut tally: Vec<(String, usize)> = vec![];
        let mut area = 0.0;
        let idx_all: Vec<usize> = (0..test.set.len()).collect();
        let bar = ctx.progress_bar(idx_all.len().div_ceil(50) as u64, "saliency maps and the pointing game");
        let (mut corr_plain, mut corr_meta) = (0.0, 0.0);
        let mut corr_more = [0.0; META_LRS_MORE.len()];
        let mut shown = vec![];
        for (k, idx) in idx_all.chunks(50).enumerate() {
            let (x, y) = batch(&test.set, idx, &dev);
            let masks: Vec<&Vec<u8>> = idx.iter().map(|&i| &test.masks[i]).collect();
            area += masks.iter().map(|m| m.iter().filter(|v| **v > 0).count() as f64 / (SIZE * SIZE) as f64).sum::<f64>();
            let p = net.probe(x.clone(), &y)?;
            for (name, map) in maps(&p, layers, &mut rng)? {
                if k == 0 {
                    let first: Vec<f64> = to_host(normalise(upsample(map.clone().slice(0..1), [SIZE, SIZE])))?;
                    shown.push((name.clone(), first));
                }
                let h = hits(map, &masks)?.iter().filter(|v| **v).count();
                match tally.iter_mut().find(|(n, _)| *n == name) {
                    Some(t) => t.1 += h,
                    None => tally.push((name, h)),
                }
            }
            let other: Vec<usize> = y.iter().map(|c| (c + 1) % SHAPE_CLASSES.len()).collect();
            corr_plain += class_sensitivity(&net, x.clone(), &y, &other, layers - 1, None)? * idx.len() as f64;
            corr_meta += class_sensitivity(&net, x.clone(), &y, &other, layers - 1, Some(META_LR))? * idx.len() as f64;
            for (c, lr) in corr_more.iter_mut().zip(META_LRS_MORE) {
                *c += class_sensitivity(&net, x.clone(), &y, &other, layers - 1, Some(lr))? * idx.len() as f64;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let n = idx_all.len() as f64;
        let (corr_plain, corr_meta) = (corr_plain / n, corr_meta / n);
        let rate = |name: &str| tally.iter().find(|(n, _)| n == name).map_or(f64::NAN, |(_, h)| *h as f64 / idx_all.len() as f64);
        let mut table = Table::new(
            format!("Pointing game on {} held-out images (the map's maximum on the shape; a uniform guess hits {:.3}); network test accuracy {acc:.3}", idx_all.len(), area / n),
            &["map", "pointing accuracy"],
        );
        for (name, h) in &tally {
            table.row(vec![name.clone(), format!("{:.3}", *h as f64 / n)]);
            out.metrics.insert(format!("pointing.{}", name.replace([' ', ','], "_")), *h as f64 / n);
        }
        out.tables.push(table);
        let mut sens = Table::new(
            format!("Class sensitivity: mean correlation between the NormGrad maps (block {layers}) for the true class and for the next class; meta-saliency at the official lr {META_LR} and larger steps. Before global average pooling and a linear head, g_u is the same at every location (W_c / HW), so the plain map is ‖x_u‖ scaled, whatever the class"),
            &["maps", "correlation"],
        );
        sens.row(vec!["NormGrad".into(), format!("{corr_plain:.4}")]);
        sens.row(vec![format!("NormGrad with meta-saliency, lr {META_LR}"), format!("{corr_meta:.4}")]);
        for (c, lr) in corr_more.iter().zip(META_LRS_MORE) {
            sens.row(vec![format!("NormGrad with meta-saliency, lr {lr}"), format!("{:.4}", c / n)]);
            out.metrics.insert(format!("class_correlation.meta_lr{lr}"), c / n);
        }
        out.tables.push(sens);
        out.metrics.insert("class_correlation.plain".into(), corr_plain);
        out.metrics.insert("class_correlation.meta".into(), corr_meta);

        // Figure: the first test image and its maps.
        let image: Vec<f64> = test.set.image(0).iter().map(|v| f64::from(*v)).collect();
        let mut panels = vec![image];
        panels.extend(shown.iter().map(|(_, m)| m.clone()));
        image_grid(&ctx.out_dir.join("saliency_maps.png"), &panels, SIZE, SIZE, 7, 6)?;
        out.figures.push("saliency_maps.png".into());
        out.notes.push(format!(
            "saliency_maps.png: the first test image, then (row-major) {}; darker is more salient.",
            shown.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
        ));

        let single: Vec<f64> = (1..=layers).map(|u| rate(&format!("NormGrad, block {u}"))).collect();
        let best_single = single.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let worst_single = single.iter().cloned().fold(f64::INFINITY, f64::min);
        let combined = rate("NormGrad, all blocks combined");
        let (grad, random) = (rate("gradient"), rate("random"));
        out.checks.push(Check::new("beats_gradient", "NormGrad (all blocks combined) minus the plain gradient's pointing accuracy (the card's: ≥ 10 points)", combined - grad, Cmp::Ge, 0.10));
        out.checks.push(Check::new("beats_random", "NormGrad (all blocks combined) minus random maps' pointing accuracy (the card's: ≥ 30 points)", combined - random, Cmp::Ge, 0.30));
        out.checks.push(Check::new("any_layer", "the worst single block's NormGrad minus random pointing accuracy (good maps at any layer; ≥ 30 points)", worst_single - random, Cmp::Ge, 0.30));
        out.checks.push(Check::new("combining_helps", "combined minus the best single block's NormGrad pointing accuracy (≥ 0)", combined - best_single, Cmp::Ge, 0.0));
        out.checks.push(Check::new(
            "meta_class_sensitivity",
            format!("drop in the true-vs-other-class map correlation with meta-saliency (lr {META_LR}; the card's: ≥ 0.1)"),
            corr_plain - corr_meta,
            Cmp::Ge,
            0.1,
        ));
        out.notes.push(format!("The paper's pointing game runs on VOC/COCO with VGG16 and ResNet50 (15-pixel tolerance at 224²); here a {SIZE}×{SIZE} toy with exact hits. The model is saved in model/ (`gradlab saliency --model {} --image i.png --out map.png`).", model_dir.display()));
        Ok(out)
    }
}
