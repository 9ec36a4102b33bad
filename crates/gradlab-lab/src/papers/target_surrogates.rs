//! "Target-based Surrogates for Stochastic Optimization" (Lavington et al., ICML 2023;
//! [`gradlab_optim::target_surrogate`]): when the loss gradient is the expensive part, spending m
//! cheap inner steps on the target surrogate per loss-gradient evaluation reaches a lower loss for
//! the same number of loss-gradient evaluations.
//!
//! Here: logistic-model data (n = 1000, d = 20; noisy labels and nearly separable), a linear two-class softmax model, batches of 25,
//! the surrogate with target step α = 2 (= 1/(1 − 1/K), K = 2) and m ∈ {1, 10} inner Armijo steps;
//! SGD at its best learning rate from a grid for reference. The measure is the full-data loss after
//! the same number of outer steps (loss-gradient evaluations).

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table};
use crate::plot::{Series, line_chart};
use burn::prelude::*;
use burn::tensor::DType;
use gradlab_data::ImageSet;
use gradlab_data::batch::epoch_batches;
use gradlab_data::procedural::logistic_data;
use gradlab_optim::target_surrogate::TargetSurrogateConfig;

/// The experiment.
pub struct TargetSurrogates;

const INFO: PaperInfo = PaperInfo {
    id: "target-surrogates",
    title: "Target-based Surrogates for Stochastic Optimization",
    arxiv: "",
    module: "gradlab_optim::target_surrogate",
    claim: "Taking several cheap inner steps on a target-based surrogate per expensive loss-gradient evaluation reaches a lower loss for the same number of loss-gradient evaluations.",
};

const D: usize = 20;
const K: usize = 2;
const BATCH: usize = 25;

fn batch_tensors(set: &ImageSet, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<2>) {
    let x: Vec<f64> = idx
        .iter()
        .flat_map(|&i| set.image(i).iter().map(|v| f64::from(*v)))
        .collect();
    let y: Vec<f64> = idx
        .iter()
        .flat_map(|&i| {
            (0..K).map(move |k| {
                if usize::from(set.labels[i]) == k {
                    1.0
                } else {
                    0.0
                }
            })
        })
        .collect();
    let n = idx.len();
    (
        Tensor::<2>::from_data(TensorData::new(x, [n, D]), (device, DType::F64)),
        Tensor::<2>::from_data(TensorData::new(y, [n, K]), (device, DType::F64)),
    )
}

fn logits(theta: Tensor<1>, x: Tensor<2>) -> Tensor<2> {
    let w = theta.clone().slice(0..D * K).reshape([D, K]);
    let b = theta.slice(D * K..D * K + K).reshape([1, K]);
    x.matmul(w) + b
}

fn ce(f: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    (burn::tensor::activation::log_softmax(f, 1) * y)
        .sum_dim(1)
        .mean()
        .neg()
        .reshape([1])
}

/// Mean cross-entropy of θ on the whole set.
pub fn full_loss(set: &ImageSet, theta: &[f64]) -> f64 {
    let dev = Device::flex();
    let idx: Vec<usize> = (0..set.len()).collect();
    let (x, y) = batch_tensors(set, &idx, &dev);
    let t = Tensor::<1>::from_data(
        TensorData::new(theta.to_vec(), [theta.len()]),
        (&dev, DType::F64),
    );
    ce(logits(t, x), y).into_scalar::<f64>()
}

/// Full-data loss after each outer step of the surrogate method with `m` inner steps.
pub fn run_surrogate(set: &ImageSet, m: usize, steps: usize, seed: u64) -> Result<Vec<f64>> {
    let opt = TargetSurrogateConfig::new()
        .with_target_step(2.0)
        .with_inner_steps(m)
        .init()?;
    let mut theta = vec![0.0; D * K + K];
    let mut curve = vec![full_loss(set, &theta)];
    let per_epoch = set.len().div_ceil(BATCH);
    for s in 0..steps {
        let batch = &epoch_batches(set.len(), BATCH, seed, s / per_epoch)[s % per_epoch];
        let dev = Device::flex();
        let (x, y) = batch_tensors(set, batch, &dev);
        let model = |t: Tensor<1>| {
            let d = t.device();
            logits(t, x.clone().to_device(&d))
        };
        let loss = |f: Tensor<2>| {
            let d = f.device();
            ce(f, y.clone().to_device(&d))
        };
        theta = opt.step(&theta, &model, &loss)?.theta;
        curve.push(full_loss(set, &theta));
    }
    Ok(curve)
}

/// Full-data loss after each SGD step at learning rate `lr` (one loss-gradient evaluation a step).
pub fn run_sgd(set: &ImageSet, lr: f64, steps: usize, seed: u64) -> Result<Vec<f64>> {
    let dev = Device::flex().autodiff();
    let mut theta = vec![0.0; D * K + K];
    let mut curve = vec![full_loss(set, &theta)];
    let per_epoch = set.len().div_ceil(BATCH);
    for s in 0..steps {
        let batch = &epoch_batches(set.len(), BATCH, seed, s / per_epoch)[s % per_epoch];
        let (x, y) = batch_tensors(set, batch, &dev);
        let t = Tensor::<1>::from_data(
            TensorData::new(theta.clone(), [theta.len()]),
            (&dev, DType::F64),
        )
        .require_grad();
        let l = ce(logits(t.clone(), x), y);
        let g: Vec<f64> = t
            .grad(&l.backward())
            .map(|g| {
                g.into_data()
                    .convert::<f64>()
                    .try_to_vec::<f64>()
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        theta.iter_mut().zip(&g).for_each(|(p, g)| *p -= lr * g);
        curve.push(full_loss(set, &theta));
    }
    Ok(curve)
}

impl Experiment for TargetSurrogates {
    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let steps = if ctx.quick { 200 } else { 2000 };
        let mut series = vec![];
        for (key, label, scale) in [
            ("noisy", "noisy labels (weight scale 4)", 4.0f32),
            ("separable", "nearly separable (weight scale 30)", 30.0),
        ] {
            let (set, _) = logistic_data(1000, D, scale, ctx.seed);
            let m1 = run_surrogate(&set, 1, steps, ctx.seed)?;
            let m10 = run_surrogate(&set, 10, steps, ctx.seed)?;
            let mut sgd_runs = vec![];
            for lr in [0.1, 0.3, 1.0, 3.0, 10.0] {
                sgd_runs.push((lr, run_sgd(&set, lr, steps, ctx.seed)?));
            }
            let last = |c: &Vec<f64>| *c.last().unwrap_or(&f64::NAN);
            let (sgd_lr, sgd) = sgd_runs
                .into_iter()
                .min_by(|a, b| last(&a.1).total_cmp(&last(&b.1)))
                .expect("non-empty grid");
            let title = format!(
                "Logistic-model data, {label}: n 1000, d {D}, batch {BATCH}, {steps} loss-gradient evaluations; full-data loss"
            );
            let mut table = Table::new(title, &["method", "final loss", "at 1/4 of the run"]);
            let sgd_name = format!("SGD (best lr {sgd_lr})");
            for (name, c) in [
                ("surrogate, m = 1", &m1),
                ("surrogate, m = 10", &m10),
                (sgd_name.as_str(), &sgd),
            ] {
                table.row(vec![
                    name.to_string(),
                    format!("{:.5}", last(c)),
                    format!("{:.5}", c[steps / 4]),
                ]);
            }
            out.tables.push(table);
            out.metrics
                .insert(format!("{key}.m1.final_loss"), last(&m1));
            out.metrics
                .insert(format!("{key}.m10.final_loss"), last(&m10));
            out.metrics
                .insert(format!("{key}.sgd.final_loss"), last(&sgd));
            let claim = format!(
                "{label}: more inner steps per loss-gradient evaluation reach a lower loss (final loss, m = 10 / m = 1)"
            );
            out.checks.push(Check::new(
                format!("{key}.loss_ratio_m10_over_m1"),
                claim,
                last(&m10) / last(&m1),
                Cmp::Lt,
                1.0,
            ));
            series.push(Series::indexed(format!("{key}: m = 1"), &m1));
            series.push(Series::indexed(format!("{key}: m = 10"), &m10));
            series.push(Series::indexed(format!("{key}: SGD lr {sgd_lr}"), &sgd));
        }
        line_chart(
            &ctx.out_dir.join("surrogate_loss.png"),
            "Full-data loss against loss-gradient evaluations",
            "outer steps (loss-gradient evaluations)",
            "loss",
            &series,
            &[],
        )?;
        out.figures.push("surrogate_loss.png".into());
        out.notes.push("The paper runs LIBSVM sets (mushrooms, ijcnn, rcv1) with several batch sizes and m up to 100; here one synthetic logistic-model set at batch 25.".into());
        Ok(out)
    }
}
