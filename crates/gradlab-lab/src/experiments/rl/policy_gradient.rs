//! N-PG-IGT and (N)-HARPG ("Stochastic Policy Gradient Methods: Improved Sample Complexity for
//! Fisher-non-degenerate Policies", Fatkhullin, Barakat, Kireeva and He, ICML 2023;
//! [`gradlab_rl::npg_igt`], [`gradlab_rl::harpg`]).
//!
//! Claim: with one or two trajectories per step and no large batches, N-PG-IGT needs Õ(ε^{-2.5})
//! and N-HARPG Õ(ε^{-2}) trajectories for a global ε-optimum, against ε^{-3} for plain policy
//! gradient: N-HARPG ≥ N-PG-IGT ≥ REINFORCE in sample efficiency.
//!
//! Here: each method at its best step constant γ₀ from a grid, chosen on separate tuning seeds
//! (the official schedules otherwise, η₀ = 1, one trajectory per step, two for (N)-HARPG), then
//! run over 10 seeds (5 on CartPole in quick mode) from θ₀ = 0:
//! - a 1-D LQR (x′ = 0.9x + 0.5u + 0.1ε, cost x² + 0.1u², horizon 20, γ 0.99) with a linear
//!   Gaussian policy (σ 0.5), where J(θ) and J* are exact (covariance recursion, and Newton from
//!   the Riccati gain): the optimality gap after the trajectory budget, and the card's
//!   trajectories to first reach a gap of 1e-2; in full mode also the 2-D double integrator;
//! - CartPole (time limit 200, γ 0.99) with a linear softmax policy on (x, ẋ, ϑ, ϑ̇, 1): the mean
//!   episode length over fresh evaluation episodes after the budget.
//!
//! The card's thresholds, on the median over seeds of the final gap: N-HARPG ≤ N-PG-IGT ≤ 0.7 ×
//! REINFORCE on LQR; on CartPole the same order of the final episode length.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table, median};
use crate::plot::{Series, line_chart};
use gradlab_core::solve::{Control, Iteration, Observer, solve};
use gradlab_rl::cartpole::CartPole;
use gradlab_rl::env::Env;
use gradlab_rl::harpg::Harpg;
use gradlab_rl::lqr::Lqr;
use gradlab_rl::npg_igt::NPgIgt;
use gradlab_rl::policy::{Features, GaussianLinear, Policy, SoftmaxLinear};
use gradlab_rl::reinforce::{Estimator, VanillaPg};
use gradlab_rl::rollout::PgProblem;
use gradlab_rl::RlError;

/// The experiment.
pub struct PolicyGradient;

const INFO: PaperInfo = PaperInfo {
    id: "policy-gradient",
    arxiv: "2302.01734",
    module: "gradlab_rl::{npg_igt, harpg, reinforce}",
    claim: "Normalised policy gradient with implicit gradient transport (N-PG-IGT) and with Hessian-aided recursive momentum (N-HARPG) reach a global ε-optimum with Õ(ε^-2.5) and Õ(ε^-2) trajectories, one or two per step, against ε^-3 for REINFORCE: N-HARPG ≥ N-PG-IGT ≥ REINFORCE in sample efficiency.",
};

/// The methods compared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Method {
    Reinforce,
    Gpomdp,
    NPgIgt,
    NHarpg,
    Harpg,
}

const METHODS: [Method; 5] = [Method::Reinforce, Method::Gpomdp, Method::NPgIgt, Method::NHarpg, Method::Harpg];

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Reinforce => "REINFORCE",
            Method::Gpomdp => "GPOMDP",
            Method::NPgIgt => "N-PG-IGT",
            Method::NHarpg => "N-HARPG",
            Method::Harpg => "HARPG",
        }
    }
}

/// Watches a run: evaluates `score` every `every` steps and records (trajectories, score) until
/// the trajectory budget is spent; keeps the first error.
struct Watch<F> {
    score: F,
    every: usize,
    budget: usize,
    curve: Vec<(f64, f64)>,
    error: Option<RlError>,
}

impl<F> Watch<F> {
    fn new(score: F, every: usize, budget: usize) -> Self {
        Self { score, every, budget, curve: vec![], error: None }
    }
}

impl<F: FnMut(&[f64]) -> std::result::Result<f64, RlError>> Observer for Watch<F> {
    fn observe(&mut self, it: &Iteration<'_>) -> Control {
        let last = it.work >= self.budget;
        if it.iteration.is_multiple_of(self.every) || last {
            match (self.score)(it.x) {
                Ok(v) => self.curve.push((it.work as f64, v)),
                Err(e) => {
                    self.error = Some(e);
                    return Control::Stop;
                }
            }
        }
        if last { Control::Stop } else { Control::Continue }
    }
}

/// The trajectories at which a run's score first reached `target` (None: never).
fn first_hit(curve: &[(f64, f64)], target: f64) -> Option<usize> {
    curve.iter().find(|c| c.1 >= target).map(|c| c.0 as usize)
}

/// A run's score at the end of its budget (−∞ if it stopped early: diverged).
fn final_score(curve: &[(f64, f64)], budget: usize) -> f64 {
    match curve.last() {
        Some(c) if c.0 as usize >= budget => c.1,
        _ => f64::NEG_INFINITY,
    }
}

/// One run of `method`: the trajectories it needed (None: not within the budget) and its curve.
fn run_method<E: Env, P: Policy>(method: Method, gamma0: f64, pb: &PgProblem<E, P>, seed: u64, watch: &mut Watch<impl FnMut(&[f64]) -> std::result::Result<f64, RlError>>) -> Result<()> {
    let x0 = vec![0.0; pb.policy.dim()];
    let iters = watch.budget;
    let res = match method {
        Method::Reinforce => solve(&mut VanillaPg::new(Estimator::Reinforce, gamma0, 1, seed)?, pb, &x0, iters, watch).map(|_| ()),
        Method::Gpomdp => solve(&mut VanillaPg::new(Estimator::Gpomdp, gamma0, 1, seed)?, pb, &x0, iters, watch).map(|_| ()),
        Method::NPgIgt => solve(&mut NPgIgt::new(gamma0, 1.0, seed)?, pb, &x0, iters, watch).map(|_| ()),
        Method::NHarpg => solve(&mut Harpg::new(gamma0, 1.0, true, seed)?, pb, &x0, iters, watch).map(|_| ()),
        Method::Harpg => solve(&mut Harpg::new(gamma0, 1.0, false, seed)?, pb, &x0, iters, watch).map(|_| ()),
    };
    match res {
        // A diverged run (non-finite parameters or returns) did not reach the target: that is a
        // measurement, recorded as such, not an error of the experiment.
        Err(RlError::NonFinite { .. }) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => match watch.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        },
    }
}

/// A task: a problem, how to score θ, the target, the evaluation cadence and the budget.
struct Task<'a, E, P, F> {
    pb: &'a PgProblem<E, P>,
    score: F,
    target: f64,
    every: usize,
    budget: usize,
}

/// Per method: the chosen γ₀ and, per evaluation seed, the score at the end of the budget, the
/// trajectories to first reach the target, and the curve.
struct MethodResult {
    method: Method,
    gamma0: f64,
    finals: Vec<f64>,
    hits: Vec<Option<usize>>,
    curves: Vec<Vec<(f64, f64)>>,
}

/// The median of first-hit trajectories, counting a seed that never hit as infinitely many.
fn median_hits(hits: &[Option<usize>]) -> f64 {
    let v: Vec<f64> = hits.iter().map(|n| n.map_or(f64::INFINITY, |n| n as f64)).collect();
    median(&v)
}

fn run_task<E: Env, P: Policy, F: Fn(&[f64]) -> std::result::Result<f64, RlError> + Copy>(task: &Task<'_, E, P, F>, grid: &[f64], tune_seeds: &[u64], eval_seeds: &[u64], bar: &indicatif::ProgressBar) -> Result<Vec<MethodResult>> {
    let mut out = vec![];
    for method in METHODS {
        // γ₀ with the best median final score on the tuning seeds (ties: the smaller γ₀).
        let mut best = (f64::NEG_INFINITY, grid[0]);
        for &g0 in grid {
            let mut finals = vec![];
            for &s in tune_seeds {
                let mut w = Watch::new(task.score, task.every, task.budget);
                run_method(method, g0, task.pb, s, &mut w)?;
                finals.push(final_score(&w.curve, task.budget));
            }
            let m = median(&finals);
            if m > best.0 {
                best = (m, g0);
            }
            bar.inc(1);
        }
        let (mut finals, mut hits, mut curves) = (vec![], vec![], vec![]);
        for &s in eval_seeds {
            let mut w = Watch::new(task.score, task.every, task.budget);
            run_method(method, best.1, task.pb, s, &mut w)?;
            finals.push(final_score(&w.curve, task.budget));
            hits.push(first_hit(&w.curve, task.target));
            curves.push(w.curve);
        }
        bar.inc(1);
        out.push(MethodResult { method, gamma0: best.1, finals, hits, curves });
    }
    Ok(out)
}

/// How a task's score reads in its table.
struct Reading {
    key: &'static str,
    /// Column title of the final score.
    label: &'static str,
    /// The score as printed (the LQR's score is −gap; shown as the gap).
    show: fn(f64) -> f64,
    /// The card's factor for N-PG-IGT against REINFORCE (on the final gap; 1 = plain order).
    factor: f64,
}

/// The per-method table and the ordering checks of a task, on the median final score.
fn report(out: &mut Outcome, title: String, r: &Reading, results: &[MethodResult], budget: usize) {
    let mut table = Table::new(title, &["method", "γ₀ (tuned)", r.label, "[min, max] over seeds", "diverged", "median first hit (trajectories)"]);
    for m in results {
        let med = median(&m.finals);
        let shown: Vec<f64> = m.finals.iter().map(|v| (r.show)(*v)).collect();
        let finite: Vec<f64> = shown.iter().copied().filter(|v| v.is_finite()).collect();
        let hit = median_hits(&m.hits);
        table.row(vec![
            m.method.name().into(),
            format!("{}", m.gamma0),
            crate::experiment::fmt_num((r.show)(med)),
            if finite.is_empty() { "—".into() } else { format!("[{}, {}]", crate::experiment::fmt_num(finite.iter().cloned().fold(f64::INFINITY, f64::min)), crate::experiment::fmt_num(finite.iter().cloned().fold(f64::NEG_INFINITY, f64::max))) },
            m.finals.iter().filter(|v| !v.is_finite()).count().to_string(),
            if hit.is_finite() { format!("{hit:.0}") } else { format!("> {budget}") },
        ]);
        out.metrics.insert(format!("{}.{}.final", r.key, m.method.name().to_lowercase()), (r.show)(med));
    }
    out.tables.push(table);
    let med = |m: Method| median(&results.iter().find(|x| x.method == m).expect("every method ran").finals);
    let (harpg, igt, reinforce) = (med(Method::NHarpg), med(Method::NPgIgt), med(Method::Reinforce));
    let key = r.key;
    if r.factor == 1.0 {
        // Returns (higher is better): differences.
        out.checks.push(Check::new(format!("{key}.harpg_vs_igt"), format!("{key}: {} of N-HARPG minus N-PG-IGT (N-HARPG at least as good)", r.label), harpg - igt, Cmp::Ge, 0.0));
        out.checks.push(Check::new(format!("{key}.igt_vs_reinforce"), format!("{key}: {} of N-PG-IGT minus REINFORCE (N-PG-IGT at least as good)", r.label), igt - reinforce, Cmp::Ge, 0.0));
    } else {
        // Gaps (lower is better): ratios of the gaps (score = −gap).
        let ratio = |a: f64, b: f64| if b == f64::NEG_INFINITY { if a.is_finite() { 0.0 } else { f64::INFINITY } } else { a / b };
        out.checks.push(Check::new(format!("{key}.harpg_vs_igt"), format!("{key}: median final optimality gap of N-HARPG over N-PG-IGT (N-HARPG at least as good)"), ratio(harpg, igt), Cmp::Le, 1.0));
        out.checks.push(Check::new(format!("{key}.igt_vs_reinforce"), format!("{key}: median final optimality gap of N-PG-IGT over REINFORCE (the card's factor: ≤ {})", r.factor), ratio(igt, reinforce), Cmp::Le, r.factor));
    }
}

/// The median over seeds of each method's score on a grid of trajectory counts (a seed's score at
/// g is its last evaluation at or before g; a seed that stopped at the target keeps its last).
fn median_curves(results: &[MethodResult], budget: usize, points: usize, map: impl Fn(f64) -> f64) -> Vec<Series> {
    results
        .iter()
        .map(|r| {
            let pts = (1..=points)
                .filter_map(|k| {
                    let g = (k * budget / points) as f64;
                    let vals: Vec<f64> = r.curves.iter().filter_map(|c| c.iter().take_while(|p| p.0 <= g).last().map(|p| map(p.1))).collect();
                    (vals.len() == r.curves.len() && !vals.is_empty()).then(|| (g, median(&vals)))
                })
                .collect();
            Series { label: r.method.name().into(), points: pts }
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn lqr_task(out: &mut Outcome, ctx: &RunContext, key: &'static str, lqr: Lqr, sigma: f64, budget: usize, seeds: (&[u64], &[u64]), bar: &indicatif::ProgressBar) -> Result<()> {
    let n = lqr.dim();
    let pb = PgProblem::new(lqr.clone(), GaussianLinear::new(1, n, sigma, Features::Raw)?, lqr.horizon(), lqr.gamma())?;
    let (theta_star, j_star) = lqr.optimal_gain(sigma)?;
    let gap0 = j_star - lqr.exact_return(&vec![0.0; n], sigma)?;
    // score = −gap; the card's first-hit target: gap ≤ 1e-2.
    let l = &lqr;
    let score = move |th: &[f64]| -> std::result::Result<f64, RlError> { Ok(-(j_star - l.exact_return(th, sigma)?)) };
    let task = Task { pb: &pb, score, target: -1e-2, every: 1, budget };
    let grid = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0];
    let results = run_task(&task, &grid, seeds.0, seeds.1, bar)?;
    let reading = Reading { key, label: "median final gap J* − J(θ)", show: |v| -v, factor: 0.7 };
    report(out, format!("{key}: exact optimality gap after {budget} trajectories (J* = {j_star:.4} at θ* = {theta_star:.4?}; initial gap {gap0:.4}), {} seeds, γ₀ tuned on {} other seeds over {grid:?}; first hit: trajectories until the gap is first ≤ 1e-2", seeds.1.len(), seeds.0.len()), &reading, &results, budget);
    out.metrics.insert(format!("{key}.j_star"), j_star);
    out.metrics.insert(format!("{key}.gradient_at_optimum"), gradlab_rl::rollout::norm(&lqr.exact_gradient(&theta_star, sigma)?));
    let file = format!("{key}_gap.png");
    line_chart(&ctx.out_dir.join(&file), &format!("{key}: median log10 optimality gap over seeds"), "trajectories", "log10(J* − J(θ))", &median_curves(&results, budget, 100, |s| (-s).max(1e-12).log10()), &[("1e-2".into(), -2.0)])?;
    out.figures.push(file);
    Ok(())
}

impl Experiment for PolicyGradient {
    fn info(&self) -> PaperInfo {
        INFO
    }

    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // J* is a true stationary point (the gaps are exact); at least the normalised methods reach
        // the LQR target; the orderings are what the run measured.
        e.below("lqr1d.gradient_at_optimum", 1e-8);
        e.below("lqr1d.n-harpg.final", 1.0);
        e.below("lqr1d.n-pg-igt.final", 1.0);
        e.measured("lqr1d.harpg_vs_igt");
        e.measured("lqr1d.igt_vs_reinforce");
        e.measured("cartpole.harpg_vs_igt");
        e.measured("cartpole.igt_vs_reinforce");
        e.figures(&["lqr1d_gap.png", "cartpole_return.png"]);
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (eval, tune): (Vec<u64>, Vec<u64>) = ((0..10).map(|s| ctx.seed + s).collect(), (0..3).map(|s| ctx.seed + 1000 + s).collect());
        let (lqr_budget, cp_budget, cp_seeds, cp_eps, cp_every) = if ctx.quick { (3000, 1000, 5, 5, 20) } else { (5000, 3000, 10, 10, 10) };
        let tasks = if ctx.quick { 2 } else { 3 };
        let bar = ctx.progress_bar((tasks * METHODS.len() * 6) as u64, "policy gradients: tuning γ₀ and running the seeds");
        lqr_task(&mut out, ctx, "lqr1d", Lqr::scalar(0.9, 0.5, 1.0, 0.1, 0.1, 1.0, 20, 0.99)?, 0.5, lqr_budget, (&tune, &eval), &bar)?;
        if !ctx.quick {
            lqr_task(&mut out, ctx, "lqr2d", Lqr::double_integrator(0.1, 0.05, 1.0, 20, 0.99)?, 0.5, lqr_budget, (&tune, &eval), &bar)?;
        }
        // CartPole.
        let pb = PgProblem::new(CartPole::new(200), SoftmaxLinear::new(2, 4, Features::WithBias)?, 200, 0.99)?;
        let judge = PgProblem::new(CartPole::new(200), SoftmaxLinear::new(2, 4, Features::WithBias)?, 200, 1.0)?;
        let j = &judge;
        let score = move |th: &[f64]| j.evaluate(th, cp_eps, 0xE7A1);
        let task = Task { pb: &pb, score, target: 195.0, every: cp_every, budget: cp_budget };
        let grid = [1e-3, 1e-2, 0.1, 1.0, 10.0];
        let results = run_task(&task, &grid, &tune, &eval[..cp_seeds], &bar)?;
        bar.finish_and_clear();
        let reading = Reading { key: "cartpole", label: "median final episode length", show: |v| v, factor: 1.0 };
        report(&mut out, format!("cartpole: mean episode length (of 200) over {cp_eps} evaluation episodes after {cp_budget} trajectories, linear softmax policy, {cp_seeds} seeds, γ₀ tuned on {} other seeds over {grid:?}; first hit: trajectories until an evaluation (every {cp_every} steps) first reaches 195", tune.len()), &reading, &results, cp_budget);
        let file = "cartpole_return.png".to_string();
        line_chart(&ctx.out_dir.join(&file), "CartPole: median evaluation episode length over seeds", "trajectories", "episode length", &median_curves(&results, cp_budget, 60, |s| s), &[("target 195".into(), 195.0)])?;
        out.figures.push(file);
        out.notes.push("All methods sample one trajectory per step (N-HARPG and HARPG two: one at θₜ for the gradient, one at the random line point θ̂ₜ for the Hessian-vector estimate), use GPOMDP gradients (REINFORCE: whole-return weighting) with no baseline, and start from θ = 0. The Hessian correction is the paper's per-trajectory estimator B = ∇Φ∇log pᵀ + ∇²Φ (unbiased: tested against the exact LQR HVP and an enumerated MDP), not the official code's batch-mean form. A diverged run (non-finite parameters) counts as not reaching the target.".into());
        Ok(out)
    }
}
