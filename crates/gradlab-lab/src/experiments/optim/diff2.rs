//! DIFF2 ("DIFF2: Differential Private Optimization via Gradient Differences for Nonconvex
//! Distributed Learning", Murata & Suzuki, ICML 2023; [`gradlab_optim::diff2`]): at the same
//! privacy budget, building the gradient estimate from private gradient differences (with a
//! private full gradient every T rounds) reaches a smaller squared gradient norm than DP-SGD/DP-GD.
//!
//! Here: logistic regression on logistic-model data (n = 1000, d = 50, rows scaled to unit norm,
//! no intercept), (ε, δ) = (1, 1/n). Each method's hyperparameters (DP-SGD: sampling rate, steps,
//! clipping norm, step size; DIFF2: rounds, T, C₁, C₂, step size) are chosen on two tuning noise
//! seeds, then run on fresh evaluation noise seeds; the measure is ‖∇f(x_R)‖² of the final iterate.
//! Noise multipliers are calibrated so every run spends exactly the budget (RDP accountant);
//! as in the paper, the tuning itself is not privatized.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table, median};
use crate::plot::{Series, line_chart};
use gradlab_data::procedural::logistic_data;
use gradlab_optim::diff2::Diff2Config;
use gradlab_optim::dp_sgd::DpSgdConfig;
use gradlab_core::problem::{Gradient, PerExampleGradients, check_finite, check_point, mean_rows};
use gradlab_optim::privacy::{PrivacyBudget, PrivateRun};

use super::diff2_net::SoftplusRegression;

/// The experiment.
pub struct Diff2;

const INFO: PaperInfo = PaperInfo {
    id: "diff2",
    arxiv: "2302.03884",
    module: "gradlab_optim::diff2",
    claim: "At the same privacy budget, DIFF2 (private gradient differences with periodic private full gradients) reaches a smaller squared gradient norm than DP-SGD.",
};

const N: usize = 1000;
const D: usize = 50;
const TUNE_SEEDS: [u64; 2] = [1000, 1001];

/// Logistic regression fᵢ(x) = log(1 + exp(−yᵢ aᵢᵀx)), yᵢ ∈ {−1, 1}.
pub struct LogisticRegression {
    a: Vec<f64>,
    y: Vec<f64>,
    d: usize,
}

impl LogisticRegression {
    /// Logistic-model data (weight scale `scale`); after the labels are drawn, feature j is scaled
    /// by κ^(−j/(d−1)) (the feature scales spread over `kappa` ≥ 1) and rows to unit norm.
    pub fn synthetic(n: usize, d: usize, scale: f32, kappa: f64, seed: u64) -> Self {
        let (set, _) = logistic_data(n, d, scale, seed);
        let feature_scale: Vec<f64> = (0..d)
            .map(|j| kappa.powf(-(j as f64) / (d.max(2) - 1) as f64))
            .collect();
        let mut a = Vec::with_capacity(n * d);
        for i in 0..n {
            let row: Vec<f64> = set
                .image(i)
                .iter()
                .zip(&feature_scale)
                .map(|(v, s)| f64::from(*v) * s)
                .collect();
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            a.extend(row.iter().map(|v| v / norm.max(1e-12)));
        }
        let y = set
            .labels
            .iter()
            .map(|&l| if l == 1 { 1.0 } else { -1.0 })
            .collect();
        Self { a, y, d }
    }
}

impl LogisticRegression {
    /// The number of parameters d.
    fn param_count(&self) -> usize {
        self.d
    }

    /// The number of examples n.
    fn len(&self) -> usize {
        self.y.len()
    }

    /// ∇fᵢ(x) into `out`.
    fn example_grad(&self, x: &[f64], i: usize, out: &mut [f64]) {
        let row = &self.a[i * self.d..(i + 1) * self.d];
        let margin = self.y[i] * row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
        let s = -self.y[i] / (1.0 + margin.exp());
        out.iter_mut().zip(row).for_each(|(o, a)| *o = s * a);
    }
}

/// [`gradlab_core::problem::Problem`], [`PerExampleGradients`] (checked: the point's length and
/// finiteness, finite rows) and the finite sum's [`Gradient`] (the mean of the rows) of a problem
/// with inherent `param_count()`, `len()` and `example_grad(x, i, out)`.
macro_rules! finite_sum {
    ($t:ty) => {
        impl gradlab_core::problem::Problem for $t {
            fn dim(&self) -> usize {
                self.param_count()
            }
        }
        impl PerExampleGradients for $t {
            fn examples(&self) -> usize {
                self.len()
            }
            fn example_gradients(
                &self,
                x: &[f64],
                idx: &[usize],
            ) -> gradlab_core::Result<Vec<f64>> {
                let mut out = vec![0.0; idx.len() * x.len()];
                self.example_gradients_into(x, idx, &mut out)?;
                Ok(out)
            }
            fn example_gradients_into(
                &self,
                x: &[f64],
                idx: &[usize],
                out: &mut [f64],
            ) -> gradlab_core::Result<()> {
                check_point(self, x)?;
                let d = x.len();
                if out.len() != idx.len() * d || idx.iter().any(|i| *i >= self.len()) {
                    return Err(gradlab_core::CoreError::Failed(
                        "per-example gradients of examples the problem does not have".into(),
                    ));
                }
                for (row, &i) in out.chunks_exact_mut(d).zip(idx) {
                    self.example_grad(x, i, row);
                }
                check_finite("per-example gradient", out)
            }
        }
        impl Gradient for $t {
            fn gradient(&self, x: &[f64]) -> gradlab_core::Result<Vec<f64>> {
                let all: Vec<usize> = (0..self.len()).collect();
                Ok(mean_rows(&self.example_gradients(x, &all)?, x.len()))
            }
        }
    };
}

finite_sum!(LogisticRegression);
finite_sum!(SoftplusRegression);

/// What the study needs of a problem beyond its per-example gradients: its start and its loss.
pub trait PrivateStudy: PerExampleGradients + Gradient + Sync {
    /// The starting point.
    fn x0(&self) -> Vec<f64>;
    /// The training loss (non-finite for a diverged iterate: the metrics count it as +∞).
    fn loss(&self, x: &[f64]) -> f64;
    /// ‖∇f(x)‖², +∞ where the gradient is not finite.
    fn grad_sq_norm(&self, x: &[f64]) -> f64 {
        self.gradient(x)
            .map_or(f64::INFINITY, |g| g.iter().map(|g| g * g).sum())
    }
}

impl PrivateStudy for LogisticRegression {
    fn x0(&self) -> Vec<f64> {
        vec![0.0; self.d]
    }
    fn loss(&self, x: &[f64]) -> f64 {
        let n = self.y.len();
        (0..n)
            .map(|i| {
                let row = &self.a[i * self.d..(i + 1) * self.d];
                let m = self.y[i] * row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
                (-m).max(0.0) + (-m.abs()).exp().ln_1p()
            })
            .sum::<f64>()
            / n as f64
    }
}

impl PrivateStudy for SoftplusRegression {
    fn x0(&self) -> Vec<f64> {
        SoftplusRegression::initial(0)
    }
    fn loss(&self, x: &[f64]) -> f64 {
        SoftplusRegression::loss(self, x)
    }
}

/// What a run is judged by (and tuned on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Metric {
    /// The final ‖∇f‖² (this experiment's logistic study).
    GradSqNorm,
    /// The final training loss (the paper's selection rule).
    Loss,
}

impl Metric {
    fn of(self, p: &impl PrivateStudy, x: &[f64]) -> f64 {
        let v = match self {
            Metric::GradSqNorm => p.grad_sq_norm(x),
            Metric::Loss => p.loss(x),
        };
        if v.is_finite() { v } else { f64::INFINITY }
    }
}

/// A private method with its hyperparameters.
#[derive(Debug, Clone, Copy)]
enum Method {
    DpSgd(DpSgdConfig),
    Diff2(Diff2Config),
}

impl Method {
    fn describe(&self) -> String {
        match self {
            Method::DpSgd(c) => format!(
                "q {}, {} steps, C {}, lr {}, σ {:.2}",
                c.sample_rate, c.steps, c.clip, c.lr, c.noise_multiplier
            ),
            Method::Diff2(c) => format!(
                "R {}, T {}, C₁ {}, C₂ {}, lr {}, σ₁ {:.1}, σ₂ {:.1}, {:.0}% of the budget on restarts",
                c.rounds,
                c.restart_every,
                c.clip_grad,
                c.clip_diff,
                c.lr,
                c.noise_grad,
                c.noise_diff,
                100.0 * restart_share(c)
            ),
        }
    }

    /// The run from 0 with noise seed `seed`; `observe` sees every iterate.
    fn execute(
        &self,
        p: &impl PrivateStudy,
        budget: &PrivacyBudget,
        seed: u64,
        observe: impl FnMut(usize, &[f64]),
    ) -> Result<PrivateRun> {
        let x0 = p.x0();
        Ok(match self {
            Method::DpSgd(c) => c.with_seed(seed).run(p, &x0, budget, observe)?,
            Method::Diff2(c) => c.with_seed(seed).run(p, &x0, budget, observe)?,
        })
    }

    /// `metric` along the run with noise seed `seed`, every `every` rounds.
    fn run(
        &self,
        p: &impl PrivateStudy,
        metric: Metric,
        budget: &PrivacyBudget,
        seed: u64,
        every: usize,
    ) -> Result<Vec<f64>> {
        let mut curve = vec![];
        self.execute(p, budget, seed, |r, x| {
            if r % every == 0 {
                curve.push(metric.of(p, x))
            }
        })?;
        Ok(curve)
    }

    /// The final iterate with noise seed `seed`.
    fn final_x(&self, p: &impl PrivateStudy, budget: &PrivacyBudget, seed: u64) -> Result<Vec<f64>> {
        Ok(self.execute(p, budget, seed, |_, _| {})?.x)
    }

    /// The final iterate, or `None` for a run that diverged (its gradients stopped being
    /// finite): a grid point that diverges loses, as in the paper's tuning, instead of ending
    /// the experiment. Other errors are errors.
    fn final_x_unless_diverged(
        &self,
        p: &impl PrivateStudy,
        budget: &PrivacyBudget,
        seed: u64,
    ) -> Result<Option<Vec<f64>>> {
        unless_diverged(self.final_x(p, budget, seed))
    }
}

/// `Ok(None)` for a run that diverged ([`gradlab_optim::OptimError::NonFinite`]), the result
/// otherwise.
fn unless_diverged<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(crate::LabError::Optim(gradlab_optim::OptimError::NonFinite { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `metric` at `x`, +∞ for a diverged run.
fn metric_or_inf(p: &impl PrivateStudy, metric: Metric, x: &Option<Vec<f64>>) -> f64 {
    x.as_ref().map_or(f64::INFINITY, |x| metric.of(p, x))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn std_err(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)).sqrt()
        / (v.len() as f64).sqrt()
}

/// DP-SGD configurations at sampling rates `runs` (q, steps), clipping norms `clips` and step
/// sizes `lrs`, each calibrated to the budget.
fn dp_sgd_grid(
    runs: &[(f64, usize)],
    clips: &[f64],
    lrs: &[f64],
    budget: &PrivacyBudget,
) -> Result<Vec<Method>> {
    let mut out = vec![];
    for &(q, steps) in runs {
        for &clip in clips {
            for &lr in lrs {
                let c = DpSgdConfig::new(lr, clip, q, steps).calibrated(budget)?;
                out.push(Method::DpSgd(c));
            }
        }
    }
    Ok(out)
}

/// Full-batch DP-GD (q = 1) at several step counts.
fn dp_gd_grid(quick: bool, budget: &PrivacyBudget) -> Result<Vec<Method>> {
    let runs: &[(f64, usize)] = if quick {
        &[(1.0, 50), (1.0, 200)]
    } else {
        &[
            (1.0, 25),
            (1.0, 50),
            (1.0, 100),
            (1.0, 200),
            (1.0, 400),
            (1.0, 1000),
        ]
    };
    dp_sgd_grid(runs, &[0.1, 0.3, 1.0], &lrs(quick), budget)
}

/// Poisson-subsampled DP-SGD (q < 1, with privacy amplification by sampling).
fn dp_sgd_sub_grid(quick: bool, budget: &PrivacyBudget) -> Result<Vec<Method>> {
    let runs: &[(f64, usize)] = if quick {
        &[(0.1, 500)]
    } else {
        &[
            (0.1, 200),
            (0.1, 500),
            (0.1, 1000),
            (0.1, 2000),
            (0.02, 2500),
            (0.02, 5000),
        ]
    };
    dp_sgd_grid(runs, &[0.1, 0.3, 1.0], &lrs(quick), budget)
}

fn lrs(quick: bool) -> Vec<f64> {
    if quick {
        vec![3.0, 10.0, 30.0]
    } else {
        vec![1.0, 3.0, 10.0, 30.0, 100.0]
    }
}

fn clips(quick: bool) -> &'static [f64] {
    if quick { &[0.1, 0.3] } else { &[0.1, 0.3, 1.0] }
}

/// DIFF2 configurations, each calibrated to the budget with a share of it (in RDP) on the
/// restart rounds.
fn diff2_grid(quick: bool, budget: &PrivacyBudget) -> Result<Vec<Method>> {
    let rounds: &[usize] = if quick {
        &[100, 400]
    } else {
        &[100, 200, 400, 1000]
    };
    let periods: &[usize] = if quick {
        &[10, 40]
    } else {
        &[5, 10, 20, 40, 100]
    };
    // C₂ bounds the per-example smoothness (differences are clipped at C₂‖x_r − x_{r−1}‖): for
    // the logistic loss on unit-norm rows it is at most 1/4.
    let clip_diffs: &[f64] = if quick {
        &[0.03, 0.1]
    } else {
        &[0.01, 0.03, 0.1, 0.3]
    };
    let shares: &[f64] = if quick { &[0.8] } else { &[0.5, 0.8, 0.95] };
    let mut out = vec![];
    for &r in rounds {
        for &t in periods {
            for &clip in clips(quick) {
                for &c2 in clip_diffs {
                    for &share in shares {
                        for lr in lrs(quick) {
                            let c =
                                Diff2Config::new(lr, clip, c2, t, r).calibrated(budget, share)?;
                            out.push(Method::Diff2(c));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The share of the RDP budget spent on restart rounds: (restarts/σ₁²) / Σ steps/σ².
fn restart_share(c: &Diff2Config) -> f64 {
    let (r, d) = c.round_counts();
    let a = r as f64 / c.noise_grad.powi(2);
    let b = if d == 0 {
        0.0
    } else {
        d as f64 / c.noise_diff.powi(2)
    };
    a / (a + b)
}

/// The configuration with the smallest mean final ‖∇f‖² over the tuning seeds (grid split
/// over the available cores).
fn tune(
    grid: Vec<Method>,
    p: &impl PrivateStudy,
    metric: Metric,
    budget: &PrivacyBudget,
    bar: &indicatif::ProgressBar,
) -> Result<(Method, f64)> {
    let score = |m: &Method| -> Result<f64> {
        let mut total = 0.0;
        for s in TUNE_SEEDS {
            total += metric_or_inf(p, metric, &m.final_x_unless_diverged(p, budget, s)?);
        }
        bar.inc(1);
        Ok(total / TUNE_SEEDS.len() as f64)
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Worker w scores configurations w, w + workers, … (the grid's costs vary along it).
    let parts: Vec<Result<Vec<(usize, f64)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (grid, score) = (&grid, &score);
                s.spawn(move || {
                    (w..grid.len())
                        .step_by(workers)
                        .map(|i| score(&grid[i]).map(|v| (i, v)))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("tuning worker panicked"))
            .collect()
    });
    let mut scores = vec![f64::INFINITY; grid.len()];
    for (i, v) in parts.into_iter().collect::<Result<Vec<_>>>()?.concat() {
        scores[i] = v;
    }
    // The first best in grid order, whatever the number of workers.
    let mut best: Option<(Method, f64)> = None;
    for (m, v) in grid.iter().zip(scores) {
        if best.as_ref().is_none_or(|b| v < b.1) {
            best = Some((*m, v));
        }
    }
    Ok(best.expect("non-empty grid"))
}

/// What one study gives: the table, the curves of the tuned runs, each method's mean final
/// metric (in the order of the grids) and non-private GD's.
struct Study {
    table: Table,
    series: Vec<Series>,
    means: Vec<f64>,
    gd: f64,
}

/// Tune each of `grids` on the tuning seeds by `metric`, then run the tuned method on fresh
/// evaluation seeds; `title` heads the table, `gd` is (step size, steps) of the non-private
/// reference.
#[allow(clippy::too_many_arguments)] // one call per study; a struct would only rename them
fn study(
    ctx: &RunContext,
    title: String,
    label: &str,
    p: &impl PrivateStudy,
    metric: Metric,
    budget: &PrivacyBudget,
    grids: Vec<(&str, Vec<Method>)>,
    gd: (f64, usize),
) -> Result<Study> {
    let eval_seeds: Vec<u64> = (0..if ctx.quick { 5 } else { 20 }).collect();
    let name = match metric {
        Metric::GradSqNorm => "‖∇f‖²",
        Metric::Loss => "train loss",
    };
    let with_norm = metric != Metric::GradSqNorm;
    let mean_name = format!("mean {name}");
    let mut columns = vec!["method", mean_name.as_str(), "± s.e.", "median"];
    if with_norm {
        columns.push("mean ‖∇f‖²");
    }
    columns.push("tuned hyperparameters");
    let mut table = Table::new(
        format!(
            "{title}; final {name} over {} evaluation noise seeds (hyperparameters tuned on 2 other seeds)",
            eval_seeds.len()
        ),
        &columns,
    );
    let bar = ctx.progress_bar(
        grids.iter().map(|g| g.1.len()).sum::<usize>() as u64,
        &format!("tuning ({label})"),
    );
    let (mut series, mut means) = (vec![], vec![]);
    for (method_name, grid) in grids {
        let (method, _) = tune(grid, p, metric, budget, &bar)?;
        let (mut finals, mut norms) = (vec![], vec![]);
        for &s in &eval_seeds {
            let x = method.final_x_unless_diverged(p, budget, s)?;
            finals.push(metric_or_inf(p, metric, &x));
            norms.push(metric_or_inf(p, Metric::GradSqNorm, &x));
        }
        means.push(mean(&finals));
        let mut row = vec![
            method_name.to_string(),
            format!("{:.3e}", mean(&finals)),
            format!("{:.1e}", std_err(&finals)),
            format!("{:.3e}", median(&finals)),
        ];
        if with_norm {
            row.push(format!("{:.3e}", mean(&norms)));
        }
        row.push(method.describe());
        table.row(row);
        let rounds = match method {
            Method::DpSgd(c) => c.steps,
            Method::Diff2(c) => c.rounds,
        };
        let every = (rounds / 200).max(1);
        let curve = unless_diverged(method.run(p, metric, budget, eval_seeds[0], every))?
            .unwrap_or_default();
        let len = curve.len().max(2) as f64 - 1.0;
        series.push(Series {
            label: format!("{label}: {method_name}"),
            points: curve
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64 / len, v.log10()))
                .collect(),
        });
    }
    bar.finish_and_clear();
    let x = gradient_descent(p, gd.0, gd.1)?;
    let gd_value = metric.of(p, &x);
    let mut row = vec![
        "GD, no privacy (reference)".into(),
        format!("{gd_value:.3e}"),
        String::new(),
        String::new(),
    ];
    if with_norm {
        row.push(format!("{:.3e}", p.grad_sq_norm(&x)));
    }
    row.push(format!("lr {}, {} steps", gd.0, gd.1));
    table.row(row);
    Ok(Study {
        table,
        series,
        means,
        gd: gd_value,
    })
}

/// The paper's setting (as its reproduction code has it): DIFF2 with the step-scaled C₂ against
/// DP-GD on the softplus network, the best setting of each by the final training loss.
fn paper_setting(ctx: &RunContext, out: &mut Outcome, series: &mut Vec<Series>) -> Result<()> {
    // Full mode: the reproduction code's training-set size (80% of California Housing) and both
    // of its ε, but 500 rounds instead of its 2,000 and the quick grid, so that the run stays
    // within about twenty minutes on two cores.
    let (n, rounds) = if ctx.quick {
        (2000, 300)
    } else {
        (16_512, 500)
    };
    let p = SoftplusRegression::synthetic(n, ctx.seed);
    let epsilons: &[f64] = if ctx.quick { &[3.0] } else { &[3.0, 5.0] };
    let lrs: &[f64] = &[1.0, 0.5, 0.25];
    let c1s: &[f64] = &[1.0, 3.0, 10.0];
    let c2s: &[f64] = &[1.0, 10.0];
    let taus: &[f64] = &[0.01, 0.1];
    for &eps in epsilons {
        let budget = PrivacyBudget::new(eps, 1e-5)?;
        let dp_gd = dp_sgd_grid(&[(1.0, rounds)], c1s, lrs, &budget)?;
        let mut diff2 = vec![];
        for &tau in taus {
            let t = ((tau * rounds as f64).floor() as usize).max(1);
            for &c1 in c1s {
                for &c2 in c2s {
                    for &lr in lrs {
                        let c = Diff2Config::new(lr, c1, c2, t, rounds).calibrated(&budget, 0.8)?;
                        diff2.push(Method::Diff2(c));
                    }
                }
            }
        }
        let key = format!("paper.eps{eps}");
        let st = study(
            ctx,
            format!(
                "The paper's setting: 1 hidden layer of 10 softplus units, squared loss, synthetic California-Housing-shaped data (n {n}, 8 features), (ε, δ) = ({eps}, 1e-5), {rounds} rounds"
            ),
            &format!("ε = {eps}"),
            &p,
            Metric::Loss,
            &budget,
            vec![
                ("DP-GD (full batch)", dp_gd),
                ("DIFF2, C₂ scaled by ‖x_r − x_{r−1}‖", diff2),
            ],
            (0.25, rounds),
        )?;
        out.metrics
            .insert(format!("{key}.dp_gd.mean_loss"), st.means[0]);
        out.metrics
            .insert(format!("{key}.diff2.mean_loss"), st.means[1]);
        out.metrics.insert(format!("{key}.gd.loss"), st.gd);
        out.metrics
            .insert(format!("{key}.initial_loss"), p.loss(&p.x0()));
        out.checks.push(Check::new(
            format!("{key}.ratio_diff2_over_dp_gd"),
            format!("the paper's setting, ε = {eps}: DIFF2 reaches a lower training loss than tuned DP-GD (ratio of means)"),
            st.means[1] / st.means[0],
            Cmp::Lt,
            1.0,
        ));
        out.tables.push(st.table);
        series.extend(st.series);
    }
    Ok(())
}

impl Experiment for Diff2 {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        for (key, kappa) in [("isotropic", 1.0), ("ill_conditioned", 30.0)] {
            let p = LogisticRegression::synthetic(1000, 50, 4.0, kappa, 0);
            let start = p.grad_sq_norm(&[0.0; 50]);
            let gd = e.metric(&format!("{key}.gd.grad_sq_norm"));
            for m in ["dp_gd", "dp_sgd", "diff2"] {
                let v = e.metric(&format!("{key}.{m}.mean_grad_sq_norm"));
                e.that(
                    v < 0.5 * start && v > gd,
                    format!("{key} {m}: {v} (start {start}, GD {gd})"),
                );
            }
        }
        // The paper's setting: both private methods lower the training loss from its start (at this
        // n, tuned DP-GD only by about a quarter), and neither beats non-private GD by more than 10%
        // (a run that lost its noise, or a wrong loss, could).
        let start = e.metric("paper.eps3.initial_loss");
        let gd = e.metric("paper.eps3.gd.loss");
        for m in ["dp_gd", "diff2"] {
            let v = e.metric(&format!("paper.eps3.{m}.mean_loss"));
            e.that(
                v < start && v > 0.9 * gd,
                format!("paper setting {m}: {v} (start {start}, GD {gd})"),
            );
        }
        e.figures(&["diff2_grad_norm.png", "diff2_paper_setting.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let budget = PrivacyBudget::new(1.0, 1.0 / N as f64)?;
        let mut series = vec![];
        let mut hlines = vec![];
        for (key, label, kappa) in [
            ("isotropic", "isotropic features", 1.0),
            ("ill_conditioned", "feature scales spread over 30×", 30.0),
        ] {
            let p = LogisticRegression::synthetic(N, D, 4.0, kappa, ctx.seed);
            let grids = vec![
                ("DP-GD (full batch)", dp_gd_grid(ctx.quick, &budget)?),
                (
                    "DP-SGD (Poisson q < 1)",
                    dp_sgd_sub_grid(ctx.quick, &budget)?,
                ),
                ("DIFF2 (full batch)", diff2_grid(ctx.quick, &budget)?),
            ];
            let st = study(
                ctx,
                format!("Logistic regression ({label}), n {N}, d {D}, (ε, δ) = (1, 1/n)"),
                label,
                &p,
                Metric::GradSqNorm,
                &budget,
                grids,
                (10.0, 1000),
            )?;
            for (m, &v) in ["dp_gd", "dp_sgd", "diff2"].iter().zip(&st.means) {
                out.metrics
                    .insert(format!("{key}.{m}.mean_grad_sq_norm"), v);
            }
            out.metrics.insert(format!("{key}.gd.grad_sq_norm"), st.gd);
            out.checks.push(Check::new(
                format!("{key}.ratio_diff2_over_dp_gd"),
                format!("{label}: DIFF2 reaches a smaller ‖∇f‖² than tuned DP-GD at ε = 1 (the paper's comparison; ratio of means)"),
                st.means[2] / st.means[0],
                Cmp::Lt,
                1.0,
            ));
            out.checks.push(Check::new(
                format!("{key}.ratio_diff2_over_dp_sgd"),
                format!("{label}: DIFF2 reaches a smaller ‖∇f‖² than tuned subsampled DP-SGD at ε = 1 (ratio of means)"),
                st.means[2] / st.means[1],
                Cmp::Lt,
                1.0,
            ));
            out.tables.push(st.table);
            series.extend(st.series);
            hlines.push((format!("{label}: GD without privacy"), st.gd.log10()));
        }
        let mut net_series = vec![];
        paper_setting(ctx, &mut out, &mut net_series)?;
        line_chart(
            &ctx.out_dir.join("diff2_paper_setting.png"),
            "log10 training loss along the tuned private runs, the paper's setting (noise seed 0)",
            "fraction of the run",
            "log10 train loss",
            &net_series,
            &[],
        )?;
        out.figures.push("diff2_paper_setting.png".into());
        line_chart(
            &ctx.out_dir.join("diff2_grad_norm.png"),
            "log10 ‖∇f‖² along the tuned private runs (ε = 1, noise seed 0)",
            "fraction of the run",
            "log10 ‖∇f(x)‖²",
            &series,
            &hlines,
        )?;
        out.figures.push("diff2_grad_norm.png".into());
        out.notes.push("The paper's text was not reachable beyond its abstract; DIFF2 and the paper's setting follow the authors' reproduction code as published in a later fork (lawrenceztang/CE-PLSGM, first commit 4b4d60a): gradient differences clipped at C₂·‖x_r − x_{r−1}‖ with noise scaled alike, a 1×10 softplus network with the squared loss, ε ∈ {3, 5}, δ = 1e-5, 2,000 rounds, C₁, C₂ ∈ {1, …, 100}, T = τR, the best setting by training loss (here 300 rounds on 2,000 examples in quick mode and 500 rounds on 16,512 in full mode, C₁ ∈ {1, 3, 10}, C₂ ∈ {1, 10}, τ ∈ {0.01, 0.1}). Its data sets (California Housing, Gas Turbine, BlogFeedback) are replaced by a synthetic set of California Housing's shape; its fixed 80/20 noise split by the exact RDP calibration at 80% on restarts.".into());
        out.notes.push("The logistic studies use the same step-scaled C₂ (a per-example smoothness bound, at most 1/4 for the logistic loss on unit-norm rows); before it, with a fixed C₂, DIFF2 lost to DP-GD on isotropic features (quick 2.28e-4 vs 1.69e-4).".into());
        out.notes.push("Tuning is not privatized (as is usual in DP papers); every tuned and evaluated run spends exactly ε = 1 by the RDP accountant.".into());
        Ok(out)
    }
}

/// The iterate after plain gradient descent (no privacy), for scale.
fn gradient_descent(p: &impl PrivateStudy, lr: f64, steps: usize) -> Result<Vec<f64>> {
    let mut x = p.x0();
    for _ in 0..steps {
        let g = p.gradient(&x)?;
        x.iter_mut().zip(&g).for_each(|(a, b)| *a -= lr * b);
    }
    Ok(x)
}
