//! "On the Generalization Mystery in Deep Learning" (Chatterjee & Zielinski, arXiv 2203.10036;
//! [`gradlab_optim::coherent_gradients`]): gradients of real examples agree (high m-coherence),
//! gradients of randomly labelled ones do not; aggregations that suppress what few examples
//! want — median of 3 sub-batch means (M3), winsorized gradients — slow the memorisation of
//! random labels while the real ones are still fitted.
//!
//! Here: an MLP 64-128-10 (ReLU) on digits (quick: 300 training images, batch 50, 1,500 steps;
//! full: the whole split, batch 100, 6,000 steps) with 0% or 50% of the labels replaced by a
//! different random class; SGD with per-example gradients (one backward pass), lr 0.2, aggregated by the mean, by M3, or winsorized at the 5th extremes (c = 5).
//! Tracked: m-coherence of the batch gradients (mean over the first 20% of the run), and the
//! training accuracy on clean and on corrupted examples (against their corrupted labels).

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table};
use crate::plot::{Series, line_chart};
use gradlab_train::autodiff_device;
use burn::prelude::*;
use gradlab_data::ImageSet;
use gradlab_data::batch::{epoch_order, to_tensors};
use gradlab_data::images::load_split;
use gradlab_nets::{Net, mlp::Mlp, mlp::MlpConfig};
use gradlab_optim::adadagrad::PerExampleGrads;
use gradlab_optim::coherent_gradients::{m_coherence, median_of_means, winsorized_mean};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The experiment.
pub struct CoherentGradients;

const INFO: PaperInfo = PaperInfo {
    id: "coherent-gradients",
    arxiv: "2203.10036",
    module: "gradlab_optim::coherent_gradients",
    claim: "Gradients are coherent for real labels and not for random ones; suppressing weak gradient directions (M3, winsorizing) slows memorisation of random labels while real labels are still learned.",
};

const LR: f64 = 0.2;
const WINSOR_C: usize = 5;

/// How the per-example gradients become one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Plain SGD.
    Mean,
    /// Median of 3 sub-batch means.
    M3,
    /// Winsorized at the c-th extremes.
    Winsorized,
}

/// `set` with a `fraction` of its labels replaced by a different random class, and the mask of
/// replaced examples.
pub fn corrupt(set: &ImageSet, fraction: f64, seed: u64) -> (ImageSet, Vec<bool>) {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xC0FFEE);
    let mut out = set.clone();
    let mut mask = vec![false; set.len()];
    for (i, m) in mask.iter_mut().enumerate() {
        if rng.random::<f64>() < fraction {
            let shift = rng.random_range(1..set.classes) as u8;
            out.labels[i] = (set.labels[i] + shift) % set.classes as u8;
            *m = true;
        }
    }
    (out, mask)
}

/// Training accuracy on the clean and on the corrupted examples (against the labels trained on).
fn split_accuracy(model: &Mlp, set: &ImageSet, mask: &[bool]) -> Result<(f64, f64)> {
    let dev = Device::flex();
    let m = model.valid();
    let idx: Vec<usize> = (0..set.len()).collect();
    let (mut hit, mut count) = ([0usize; 2], [0usize; 2]);
    for chunk in idx.chunks(512) {
        let (x, y) = to_tensors(set, chunk, &dev);
        let pred = gradlab_core::bridge::ints_to_host(
            m.forward(x)
                .argmax(1)
                .reshape([chunk.len()])
                .equal(y)
                .int(),
        )?;
        for (&i, ok) in chunk.iter().zip(pred) {
            let k = usize::from(mask[i]);
            count[k] += 1;
            hit[k] += ok as usize;
        }
    }
    let acc = |k: usize| hit[k] as f64 / count[k].max(1) as f64;
    Ok((acc(0), if count[1] == 0 { f64::NAN } else { acc(1) }))
}

/// (step, m-coherence, loss) along a run.
type Curve = Vec<(usize, f64, f64)>;

/// One run: (mean m-coherence over the first 20% of steps, curve of (step, clean acc, corrupted acc)).
pub fn run(
    set: &ImageSet,
    mask: &[bool],
    agg: Aggregation,
    batch: usize,
    steps: usize,
    seed: u64,
) -> Result<(f64, Curve)> {
    let dev = autodiff_device();
    let mut model = MlpConfig::new(vec![set.feature_dim(), 128, set.classes]).init(&dev, seed);
    let mut theta: Vec<f64> = gradlab_core::flat::flatten_host(&model)?;
    let per_epoch = (set.len() / batch).max(1);
    let (mut coherence, mut curve) = (vec![], vec![]);
    let every = (steps / 20).max(1);
    for s in 0..steps {
        let order = epoch_order(set.len(), seed, s / per_epoch);
        let start = (s % per_epoch) * batch;
        let idx = &order[start..start + batch];
        let (x, y) = to_tensors(set, idx, &dev);
        let rows = model.per_example_grads(x, y);
        let g = PerExampleGrads::new(rows?, theta.len())?;
        if s < steps / 5 {
            coherence.push(m_coherence(&g));
        }
        let step = match agg {
            Aggregation::Mean => g.mean(),
            Aggregation::M3 => median_of_means(&g)?,
            Aggregation::Winsorized => winsorized_mean(&g, WINSOR_C)?,
        };
        theta.iter_mut().zip(&step).for_each(|(p, d)| *p -= LR * d);
        model = gradlab_core::flat::load_host(model, &theta).map_err(crate::LabError::from)?;
        if (s + 1) % every == 0 || s + 1 == steps {
            let (clean, bad) = split_accuracy(&model, set, mask)?;
            curve.push((s + 1, clean, bad));
        }
    }
    let mean_coh = coherence.iter().sum::<f64>() / coherence.len().max(1) as f64;
    Ok((mean_coh, curve))
}

impl Experiment for CoherentGradients {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // Plain SGD fits the real labels, and memorises most of the random ones in quick mode (the
        // comparison the checks make needs memorisation to happen).
        e.above("real.mean.clean_acc", 0.9);
        e.above("noisy.mean.corrupted_acc", 0.5);
        // The robust aggregations still learn the clean labels (a broken median or winsorization
        // would not; how much they cut memorisation is the claim, measured and reported).
        for agg in ["m3", "winsorized"] {
            e.above(&format!("noisy.{agg}.clean_acc"), 0.5);
        }
        // m-coherence of real labels exceeds 1 (gradients of examples agree), an absolute property
        // of a correct coherence estimate on a learnable task early in training.
        e.above("real.mean.coherence", 1.0);
        e.figures(&["memorisation.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (full, _) = load_split("digits", ctx.seed)?;
        // Quick: 300 images, batch 50 (enough epochs to memorise); full: the whole split.
        let (n, batch, steps) = if ctx.quick {
            (300, 50, 1500)
        } else {
            (full.len(), 100, 6000)
        };
        let mut train = full.clone();
        train.images.truncate(n * full.feature_dim());
        train.labels.truncate(n);
        let mut table = Table::new(
            format!(
                "MLP 64-128-10 on digits ({n} training images), SGD batch {batch}, lr {LR}, {steps} steps; train accuracy against the labels trained on"
            ),
            &[
                "labels",
                "aggregation",
                "m-coherence (first 20%)",
                "clean acc.",
                "corrupted acc.",
            ],
        );
        let mut series = vec![];
        let mut coh = std::collections::BTreeMap::new();
        let mut finals = std::collections::BTreeMap::new();
        let runs = [
            ("real", 0.0, Aggregation::Mean),
            ("50% random", 0.5, Aggregation::Mean),
            ("50% random", 0.5, Aggregation::M3),
            ("50% random", 0.5, Aggregation::Winsorized),
        ];
        for (labels, fraction, agg) in runs {
            let (set, mask) = corrupt(&train, fraction, ctx.seed);
            let (c, curve) = run(&set, &mask, agg, batch, steps, ctx.seed)?;
            let &(_, clean, bad) = curve.last().expect("at least one evaluation");
            let name = format!("{agg:?}");
            table.row(vec![
                labels.into(),
                name.clone(),
                format!("{c:.2}"),
                format!("{:.1}%", 100.0 * clean),
                if bad.is_nan() {
                    "—".into()
                } else {
                    format!("{:.1}%", 100.0 * bad)
                },
            ]);
            let key = format!(
                "{}.{}",
                if fraction == 0.0 { "real" } else { "noisy" },
                name.to_lowercase()
            );
            out.metrics.insert(format!("{key}.coherence"), c);
            out.metrics.insert(format!("{key}.clean_acc"), clean);
            if !bad.is_nan() {
                out.metrics.insert(format!("{key}.corrupted_acc"), bad);
                series.push(Series {
                    label: format!("{name}: corrupted examples"),
                    points: curve
                        .iter()
                        .map(|(s, _, b)| (*s as f64, 100.0 * b))
                        .collect(),
                });
            }
            series.push(Series {
                label: format!("{labels}, {name}: clean examples"),
                points: curve
                    .iter()
                    .map(|(s, c, _)| (*s as f64, 100.0 * c))
                    .collect(),
            });
            coh.insert(key.clone(), c);
            finals.insert(key, (clean, bad));
        }
        out.tables.push(table);
        out.checks.push(Check::new(
            "coherence_real_over_random",
            "m-coherence is higher with real labels than with 50% random labels (ratio, SGD, first 20% of the run)",
            coh["real.mean"] / coh["noisy.mean"],
            Cmp::Gt,
            1.0,
        ));
        let (sgd_clean, sgd_bad) = finals["noisy.mean"];
        for agg in ["m3", "winsorized"] {
            let (clean, bad) = finals[&format!("noisy.{agg}")];
            out.checks.push(Check::new(
                format!("{agg}.slows_memorisation"),
                format!("{agg}: memorises fewer random labels than SGD (corrupted-example train accuracy, ratio to SGD's)"),
                bad / sgd_bad,
                Cmp::Lt,
                1.0,
            ));
            out.checks.push(Check::new(
                format!("{agg}.still_learns"),
                format!("{agg}: still fits the clean examples (clean train accuracy minus SGD's, points)"),
                100.0 * (clean - sgd_clean),
                Cmp::Gt,
                -10.0,
            ));
        }
        line_chart(
            &ctx.out_dir.join("memorisation.png"),
            "Training accuracy on clean and corrupted examples",
            "step",
            "train accuracy (%)",
            &series,
            &[],
        )?;
        out.figures.push("memorisation.png".into());
        out.notes.push(format!("Winsorizing at c = {WINSOR_C} per coordinate, lr {LR} and the batch sizes are this experiment's choices; the paper's settings were not checked."));
        Ok(out)
    }
}
