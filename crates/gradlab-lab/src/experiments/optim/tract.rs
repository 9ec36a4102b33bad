//! TrAct (Petersen, Borgelt, Ermon, "TrAct: Making First-layer Pre-Activations Trainable",
//! NeurIPS 2024): the first layer's weights learn at a speed proportional to the input's scale, so
//! inputs of low or widely varying contrast train slowly; TrAct's preconditioned first-layer
//! gradient ([`gradlab_optim::tract`]) removes that dependence. The README claims it "accelerates
//! training by between 25% and 300%".
//!
//! Here: digits whose images are each multiplied by a contrast factor 10^U(−1, 1) (train and test
//! alike), an MLP (linear first layer) and the small CNN (convolutional first layer), SGD with
//! momentum 0.9 at the baseline's best learning rate, with and without TrAct (λ = 0.1); the measure
//! is the number of steps to reach 90% test accuracy.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table};
use crate::plot::{Series, line_chart};
use gradlab_train::{TrainConfig, Trainer, autodiff_device};
use gradlab_data::ImageSet;
use gradlab_data::images::load_split;
use gradlab_nets::Net;
use gradlab_nets::cnn::SmallCnnConfig;
use gradlab_nets::mlp::MlpConfig;
use gradlab_optim::spec::OptimizerSpec;
use rand::prelude::*;

/// The experiment.
pub struct TrActExperiment;

const INFO: PaperInfo = PaperInfo {
    id: "tract",
    arxiv: "",
    module: "gradlab_optim::tract",
    claim: "Preconditioning the first layer's weight gradient so that its pre-activations follow a gradient step accelerates training by 25% to 300%.",
};

/// Target test accuracy for the speed-up.
pub const TARGET: f64 = 0.9;

/// Learning rates tried for the baseline.
pub const LR_GRID: &[f64] = &[0.003, 0.01, 0.03, 0.1];

/// Multiply every image by its own contrast factor 10^U(−1, 1).
pub fn vary_contrast(set: &ImageSet, seed: u64) -> ImageSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let d = set.feature_dim();
    let mut out = set.clone();
    for i in 0..set.len() {
        let s = 10f32.powf(rng.random_range(-1.0..1.0));
        out.images[i * d..(i + 1) * d]
            .iter_mut()
            .for_each(|v| *v *= s);
    }
    out
}

/// Test accuracy every [`EVAL_EVERY`] steps: (step, accuracy) pairs.
pub type Curve = Vec<(usize, f64)>;

/// Steps between evaluations (a fifth of an epoch of digits at batch 32).
pub const EVAL_EVERY: usize = 9;

fn fit<M: Net>(
    model: M,
    lr: f64,
    tract: bool,
    train: &ImageSet,
    test: &ImageSet,
    steps: usize,
    seed: u64,
) -> Result<Curve> {
    let mut spec = OptimizerSpec::parse("sgdm")?.with_lr(lr);
    spec.momentum = Some(0.9);
    let mut cfg = TrainConfig::new(spec);
    cfg.seed = seed;
    cfg.tract = tract.then_some(0.1);
    let mut trainer = Trainer::new(model, cfg)?;
    let mut curve = vec![];
    while trainer.step_count() < steps {
        trainer.train_step(train)?;
        if trainer.step_count() % EVAL_EVERY == 0 {
            curve.push((trainer.step_count(), trainer.evaluate(test).1));
        }
    }
    Ok(curve)
}

fn run_model(
    model: &str,
    lr: f64,
    tract: bool,
    train: &ImageSet,
    test: &ImageSet,
    steps: usize,
    seed: u64,
) -> Result<Curve> {
    let dev = autodiff_device();
    match model {
        "mlp" => fit(
            MlpConfig::new(vec![64, 128, 10]).init(&dev, seed),
            lr,
            tract,
            train,
            test,
            steps,
            seed,
        ),
        _ => fit(
            SmallCnnConfig::new(1, 8, 8, 10).init(&dev, seed),
            lr,
            tract,
            train,
            test,
            steps,
            seed,
        ),
    }
}

/// Steps until the test accuracy first reaches [`TARGET`], if it does.
pub fn steps_to_target(curve: &Curve) -> Option<usize> {
    curve.iter().find(|p| p.1 >= TARGET).map(|p| p.0)
}

impl Experiment for TrActExperiment {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // With a linear first layer the paper's lower bound of a 25% speed-up is met.
        e.passed("mlp.speedup");
        // TrAct does not cost accuracy on either model (a wrong preconditioner would: the CNN's
        // speed-up is measured and reported either way).
        for m in ["mlp", "cnn"] {
            let (t, b) = (
                e.metric(&format!("{m}.final_acc_tract")),
                e.metric(&format!("{m}.final_acc_baseline")),
            );
            e.that(t >= b - 0.02, format!("{m}: accuracy with TrAct {t}, without {b}"));
        }
        e.figures(&["tract_accuracy.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (train, test) = load_split("digits", 0)?;
        let (train, test) = (vary_contrast(&train, 1), vary_contrast(&test, 2));
        let epochs = if ctx.quick { 15 } else { 40 };
        let steps = epochs * train.len().div_ceil(32);
        let title = format!(
            "Digits with contrast 10^U(-1,1), SGD momentum 0.9, {steps} steps; steps to {:.0}% test accuracy (evaluated every {EVAL_EVERY} steps)",
            100.0 * TARGET
        );
        let mut table = Table::new(
            title,
            &[
                "model",
                "lr (baseline's best)",
                "baseline steps",
                "TrAct steps",
                "speed-up",
                "final acc baseline",
                "final acc TrAct",
            ],
        );
        let mut series = vec![];
        for model in ["mlp", "cnn"] {
            let mut best: Option<(f64, Curve)> = None;
            for &lr in LR_GRID {
                let c = run_model(model, lr, false, &train, &test, steps, ctx.seed)?;
                let acc = c.last().map_or(0.0, |p| p.1);
                if best
                    .as_ref()
                    .is_none_or(|b| acc > b.1.last().map_or(0.0, |p| p.1))
                {
                    best = Some((lr, c));
                }
            }
            let (lr, base) = best.expect("non-empty grid");
            let with = run_model(model, lr, true, &train, &test, steps, ctx.seed)?;
            let (eb, et) = (steps_to_target(&base), steps_to_target(&with));
            // An unreached target counts as the budget plus one evaluation (a bound on the time).
            let speedup =
                eb.unwrap_or(steps + EVAL_EVERY) as f64 / et.unwrap_or(steps + EVAL_EVERY) as f64;
            let show = |e: Option<usize>| e.map_or(format!("> {steps}"), |v| v.to_string());
            let (fb, ft) = (
                base.last().map_or(f64::NAN, |p| p.1),
                with.last().map_or(f64::NAN, |p| p.1),
            );
            table.row(vec![
                model.into(),
                format!("{lr}"),
                show(eb),
                show(et),
                format!("{speedup:.2}×"),
                format!("{:.2}%", 100.0 * fb),
                format!("{:.2}%", 100.0 * ft),
            ]);
            out.metrics.insert(format!("{model}.speedup"), speedup);
            out.metrics
                .insert(format!("{model}.final_acc_baseline"), fb);
            out.metrics.insert(format!("{model}.final_acc_tract"), ft);
            let claim = format!(
                "{model}: TrAct reaches {:.0}% test accuracy at least 25% sooner (steps without / with)",
                100.0 * TARGET
            );
            out.checks.push(Check::new(
                format!("{model}.speedup"),
                claim,
                speedup,
                Cmp::Ge,
                1.25,
            ));
            for (label, c) in [("baseline", &base), ("TrAct", &with)] {
                series.push(Series {
                    label: format!("{model} {label}"),
                    points: c.iter().map(|p| (p.0 as f64, p.1)).collect(),
                });
            }
        }
        out.tables.push(table);
        let hl = [("target".to_string(), TARGET)];
        line_chart(
            &ctx.out_dir.join("tract_accuracy.png"),
            "Test accuracy with and without TrAct (same lr)",
            "step",
            "test accuracy",
            &series,
            &hl,
        )?;
        out.figures.push("tract_accuracy.png".into());
        out.notes.push("The paper trains ViTs and ResNets on CIFAR and ImageNet; here the contrast spread stands in for its badly scaled first-layer inputs.".into());
        Ok(out)
    }
}
