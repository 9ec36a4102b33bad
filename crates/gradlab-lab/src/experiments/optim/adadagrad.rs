//! AdAdaGrad ("AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods", Lau, Liu,
//! Kolar, arXiv 2402.11215; [`gradlab_optim::adadagrad`]): with the norm test (η = 0.1) driving
//! the batch size of AdaGrad-Norm from b₀ = 8, the batch grows geometrically and the run reaches a
//! given loss in fewer steps than AdaGrad-Norm at the fixed batch b₀.
//!
//! Here: multinomial logistic regression on digits (per-example gradients in closed form,
//! g_i = [x_i; 1] ⊗ (softmax(z_i) − e_{y_i})), AdaGrad-Norm with α = 1, b₀² = 0.01 (the official
//! accumulator default); batches drawn without replacement from a seeded shuffle at every step.
//! The same protocol runs on an MLP with per-example gradients from one backward pass.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table};
use crate::plot::{Series, line_chart};
use gradlab_core::problem::{Cost, PerExampleGradients, Problem};
use gradlab_core::solve::{Fallible, Iteration, solve};
use gradlab_data::ImageSet;
use gradlab_data::batch::epoch_order;
use gradlab_data::images::load_split;
use gradlab_optim::adadagrad::{self as method_impl, AdaGradNormConfig, BatchTest, LinearShape};

/// The experiment.
pub struct AdAdaGrad;

const INFO: PaperInfo = PaperInfo {
    id: "adadagrad",
    arxiv: "2402.11215",
    module: "gradlab_optim::adadagrad",
    claim: "Growing the batch size of AdaGrad-Norm with the norm test makes the batch grow geometrically and reaches a given loss in fewer steps than a fixed small batch.",
};

const K: usize = 10;
/// Initial batch size.
pub const B0: usize = 8;

fn logits(theta: &[f64], x: &[f32]) -> Vec<f64> {
    let d = x.len();
    (0..K)
        .map(|k| {
            (0..d)
                .map(|j| f64::from(x[j]) * theta[j * K + k])
                .sum::<f64>()
                + theta[d * K + k]
        })
        .collect()
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

/// Per-example gradients of the cross-entropy at `theta` for the examples `idx`.
pub fn per_example(set: &ImageSet, idx: &[usize], theta: &[f64]) -> Vec<f64> {
    let d = set.feature_dim();
    let mut out = Vec::with_capacity(idx.len() * (d + 1) * K);
    for &i in idx {
        let x = set.image(i);
        let mut e = softmax(&logits(theta, x));
        e[usize::from(set.labels[i])] -= 1.0;
        for xj in x {
            out.extend(e.iter().map(|ek| f64::from(*xj) * ek));
        }
        out.extend_from_slice(&e);
    }
    out
}

/// Mean cross-entropy on the whole set.
pub fn full_loss(set: &ImageSet, theta: &[f64]) -> f64 {
    (0..set.len())
        .map(|i| {
            -softmax(&logits(theta, set.image(i)))[usize::from(set.labels[i])]
                .max(1e-300)
                .ln()
        })
        .sum::<f64>()
        / set.len() as f64
}

/// Multinomial logistic regression on an image set, θ = [W (d × K row-major); b (K)], with
/// closed-form per-example gradients.
pub struct Logistic<'a>(pub &'a ImageSet);

impl Problem for Logistic<'_> {
    fn dim(&self) -> usize {
        (self.0.feature_dim() + 1) * K
    }
}

impl Cost for Logistic<'_> {
    fn cost(&self, x: &[f64]) -> gradlab_core::Result<f64> {
        gradlab_core::problem::check_point(self, x)?;
        Ok(full_loss(self.0, x))
    }
}

impl PerExampleGradients for Logistic<'_> {
    fn examples(&self) -> usize {
        self.0.len()
    }
    fn example_gradients(&self, x: &[f64], idx: &[usize]) -> gradlab_core::Result<Vec<f64>> {
        gradlab_core::problem::check_point(self, x)?;
        Ok(per_example(self.0, idx, x))
    }
}

/// AdaGrad-Norm (the paper's scalar form with b₀ = 0.1, or `per_row`: the official per-output-row
/// accumulators of `layers`) from batches of [`B0`] drawn from a fresh seeded shuffle at every
/// step, the batch size set by `test` if any.
fn method(
    n: usize,
    seed: u64,
    test: Option<BatchTest>,
    per_row: Option<&[LinearShape]>,
) -> Result<method_impl::AdAdaGrad> {
    let opt = AdaGradNormConfig::new()
        .with_layers(per_row.map(|l| l.to_vec()))
        .init()?;
    let draw = move |step: usize, b: usize| epoch_order(n, seed, step)[..b].to_vec();
    let method = method_impl::AdAdaGrad::new(opt, B0, draw);
    Ok(match test {
        Some(t) => method.with_test(t)?,
        None => method,
    })
}

/// Run `method` on `problem` from `x0` for `steps` steps, the curve of (samples seen, batch size,
/// `loss(θ)`) at every iterate.
fn curve<P: PerExampleGradients>(
    mut method: method_impl::AdAdaGrad,
    problem: &P,
    x0: &[f64],
    steps: usize,
    mut loss: impl FnMut(&[f64]) -> Result<f64>,
) -> Result<Vec<(usize, usize, f64)>> {
    let mut points = vec![];
    let mut observe = Fallible::new(|it: &Iteration| -> Result<()> {
        let batch = it.batch.ok_or_else(|| {
            crate::LabError::Invalid("AdAdaGrad reported no batch size".into())
        })?;
        points.push((it.work, batch, loss(it.x)?));
        Ok(())
    });
    solve(&mut method, problem, x0, steps, &mut observe)?;
    observe.finish()?;
    Ok(points)
}

/// One run: per step (samples seen, batch size, full loss). AdaGrad-Norm in the paper's scalar
/// form (b₀ = 0.1), or with `per_row` the official per-output-row accumulators; the per-example
/// gradients are split into the weight and bias tensors for the per-tensor test.
pub fn run(
    set: &ImageSet,
    test: Option<BatchTest>,
    per_row: bool,
    steps: usize,
    seed: u64,
) -> Result<Vec<(usize, usize, f64)>> {
    let problem = Logistic(set);
    let dim = problem.dim();
    let shape = [LinearShape {
        inputs: set.feature_dim(),
        outputs: K,
        bias: true,
    }];
    let m = method(set.len(), seed, test, per_row.then_some(&shape[..]))?;
    let m = m.with_tensors(vec![dim - K, K]);
    curve(m, &problem, &vec![0.0; dim], steps, |x| Ok(problem.cost(x)?))
}

/// The same protocol on an MLP 64-32-10 (tanh), with per-example gradients from one backward
/// pass (`gradlab_curvature::model::ModelGradient`): per step (samples seen, batch size, full
/// loss).
pub fn run_mlp(
    set: &ImageSet,
    test: Option<BatchTest>,
    steps: usize,
    seed: u64,
) -> Result<Vec<(usize, usize, f64)>> {
    use gradlab_curvature::model::ModelGradient;
    use gradlab_nets::{Activation, mlp::MlpConfig};
    use gradlab_train::{LossKind, autodiff_device, evaluate};
    let model = MlpConfig::new(vec![set.feature_dim(), 32, K])
        .with_activation(Activation::Tanh)
        .init(&autodiff_device(), seed);
    let theta: Vec<f64> = gradlab_core::flat::flatten_host(&model)?;
    let all: Vec<usize> = (0..set.len()).collect();
    let problem = ModelGradient::new(model.clone(), set, &all, LossKind::CrossEntropy);
    let loss = |x: &[f64]| -> Result<f64> {
        let m = gradlab_core::flat::load_host(model.clone(), x)?;
        Ok(evaluate(&m, set, LossKind::CrossEntropy).0)
    };
    curve(method(set.len(), seed, test, None)?, &problem, &theta, steps, loss)
}

impl Experiment for AdAdaGrad {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        e.all_passed();
        e.figures(&["batch_size.png", "loss_vs_samples.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (train, _) = load_split("digits", 0)?;
        let steps = if ctx.quick { 150 } else { 1000 };
        let fixed = run(&train, None, false, steps, ctx.seed)?;
        let norm = run(
            &train,
            Some(BatchTest::Norm { eta: 0.1 }),
            false,
            steps,
            ctx.seed,
        )?;
        let inner = run(
            &train,
            Some(BatchTest::InnerProduct {
                theta: 0.5,
                nu: 1.0,
            }),
            false,
            steps,
            ctx.seed,
        )?;
        // The official forms, reported beside the paper's (no checks): the inner-product test
        // per parameter tensor (tests.py) and AdaGrad-Norm's per-output-row accumulators
        // (adagradnorm.py; its scripts run torch's coordinate-wise Adagrad instead).
        let inner_tensors = run(
            &train,
            Some(BatchTest::InnerProductPerTensor {
                theta: 0.5,
                nu: 1.0,
            }),
            false,
            steps,
            ctx.seed,
        )?;
        let fixed_rows = run(&train, None, true, steps, ctx.seed)?;
        let norm_rows = run(
            &train,
            Some(BatchTest::Norm { eta: 0.1 }),
            true,
            steps,
            ctx.seed,
        )?;
        let target = fixed.last().map_or(f64::NAN, |c| c.2);
        let reach =
            |c: &[(usize, usize, f64)]| c.iter().position(|p| p.2 <= target).unwrap_or(steps + 1);
        let mut table = Table::new(
            format!(
                "Logistic regression on digits, AdaGrad-Norm α = 1, b0 = {B0}, {steps} steps; target loss = the fixed batch's final loss {target:.4}"
            ),
            &[
                "batch rule",
                "final batch",
                "samples seen",
                "final loss",
                "steps to target",
            ],
        );
        for (name, c) in [
            ("fixed b0", &fixed),
            ("norm test η = 0.1", &norm),
            ("inner-product test θ = 0.5, ν = 1", &inner),
            (
                "inner-product test per tensor (official tests.py)",
                &inner_tensors,
            ),
            (
                "fixed b0, per-row AdaGrad-Norm (official adagradnorm.py)",
                &fixed_rows,
            ),
            ("norm test η = 0.1, per-row AdaGrad-Norm", &norm_rows),
        ] {
            let last = c[c.len() - 1];
            table.row(vec![
                name.into(),
                last.1.to_string(),
                last.0.to_string(),
                format!("{:.4}", last.2),
                reach(c).to_string(),
            ]);
        }
        out.tables.push(table);
        let final_b = norm[norm.len() - 1].1;
        out.metrics
            .insert("norm.final_batch".into(), final_b as f64);
        out.metrics
            .insert("norm.steps_to_target".into(), reach(&norm) as f64);
        out.metrics
            .insert("inner.final_batch".into(), inner[inner.len() - 1].1 as f64);
        out.checks.push(Check::new(
            "batch_growth",
            "The norm test grows the batch (final batch / b0)",
            final_b as f64 / B0 as f64,
            Cmp::Ge,
            4.0,
        ));
        out.checks.push(Check::new("steps_ratio", "The adaptive batch reaches the fixed batch's final loss in fewer steps (steps / fixed run's steps)", reach(&norm) as f64 / steps as f64, Cmp::Lt, 1.0));
        let by_samples = |c: &[(usize, usize, f64)]| {
            c.iter()
                .map(|p| ((p.0.max(1) as f64).log10(), p.2))
                .collect::<Vec<_>>()
        };
        let series = vec![
            Series {
                label: "fixed b0".into(),
                points: by_samples(&fixed),
            },
            Series {
                label: "norm test".into(),
                points: by_samples(&norm),
            },
            Series {
                label: "inner-product test".into(),
                points: by_samples(&inner),
            },
        ];
        line_chart(
            &ctx.out_dir.join("loss_vs_samples.png"),
            "Full training loss against samples seen",
            "log10 samples seen",
            "loss",
            &series,
            &[],
        )?;
        let batches = vec![
            Series {
                label: "norm test".into(),
                points: norm
                    .iter()
                    .enumerate()
                    .map(|(s, p)| (s as f64, (p.1 as f64).log2()))
                    .collect(),
            },
            Series {
                label: "inner-product test".into(),
                points: inner
                    .iter()
                    .enumerate()
                    .map(|(s, p)| (s as f64, (p.1 as f64).log2()))
                    .collect(),
            },
        ];
        line_chart(
            &ctx.out_dir.join("batch_size.png"),
            "Batch size over steps",
            "step",
            "log2 batch size",
            &batches,
            &[],
        )?;
        out.figures.extend([
            "loss_vs_samples.png".to_string(),
            "batch_size.png".to_string(),
        ]);
        out.notes.push(format!("Fewer steps cost more samples: the norm-test run saw {} examples against the fixed batch's {}.", norm[norm.len() - 1].0, fixed[fixed.len() - 1].0));
        let mlp_steps = if ctx.quick { 60 } else { 400 };
        let mlp_fixed = run_mlp(&train, None, mlp_steps, ctx.seed)?;
        let mlp_norm = run_mlp(
            &train,
            Some(BatchTest::Norm { eta: 0.1 }),
            mlp_steps,
            ctx.seed,
        )?;
        let mlp_target = mlp_fixed.last().map_or(f64::NAN, |c| c.2);
        let mlp_reach = mlp_norm
            .iter()
            .position(|p| p.2 <= mlp_target)
            .unwrap_or(mlp_steps + 1);
        let mut mlp_table = Table::new(
            format!(
                "MLP 64-32-10 on digits, same protocol, {mlp_steps} steps; target = the fixed batch's final loss {mlp_target:.4}"
            ),
            &[
                "batch rule",
                "final batch",
                "samples seen",
                "final loss",
                "steps to target",
            ],
        );
        for (name, c, r) in [
            ("fixed b0", &mlp_fixed, mlp_steps),
            ("norm test η = 0.1", &mlp_norm, mlp_reach),
        ] {
            let last = c[c.len() - 1];
            mlp_table.row(vec![
                name.into(),
                last.1.to_string(),
                last.0.to_string(),
                format!("{:.4}", last.2),
                r.to_string(),
            ]);
        }
        out.tables.push(mlp_table);
        out.metrics.insert(
            "mlp.norm.final_batch".into(),
            mlp_norm[mlp_norm.len() - 1].1 as f64,
        );
        out.checks.push(Check::new("mlp.steps_ratio", "MLP: the adaptive batch reaches the fixed batch's final loss in fewer steps (steps / fixed run's steps)", mlp_reach as f64 / mlp_steps as f64, Cmp::Lt, 1.0));
        Ok(out)
    }
}
