//! "Gradient-Normalized Smoothness for Optimization with Approximate Hessians" (arXiv 2506.13710;
//! [`gradlab_optim::grad_norm_smooth`]): gradient-regularized Newton with adaptive γ converges
//! at a global linear rate on logistic and softmax regression, also when the Hessian is replaced
//! by an approximation.
//!
//! Here: digits (training split; quick mode its first 500 images), features with a constant 1
//! appended, L2 term λ/2‖W‖² with λ = 1e-3 (the problems then have a minimiser). Two problems:
//! even vs odd digits (two-class softmax = logistic regression) and ten-class softmax regression.
//! Methods: the exact Hessian; for softmax, the authors' weighted Gauss–Newton approximation
//! Σᵢ diag(pᵢ) ⊗ x̃ᵢx̃ᵢᵀ/N + λI (the −pᵢpᵢᵀ terms dropped, as `approx_hess_fn_logsumexp`); and
//! gradient descent with the authors' backtracking on L. A linear rate means ‖∇f‖ contracts by a
//! uniform factor: the check takes the worst ratio over 5 iterations along the run. Third, a
//! small tanh MLP (64-6-10) optimised jointly over all its parameters with the Gauss–Newton
//! matrix of the cross-entropy as the Hessian approximation ([`crate::joint_newton`]).

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table};
use crate::joint_newton::{self, ModelObjective};
use crate::plot::{Series, line_chart};
use gradlab_train::autodiff_device;
use gradlab_data::ImageSet;
use gradlab_data::images::load_split;
use gradlab_nets::mlp::MlpConfig;
use gradlab_nets::{Activation};
use gradlab_core::problem::{Cost, Gradient, Hessian, Problem, check_point};
use gradlab_optim::grad_norm_smooth::GradNormSmoothConfig;

/// The experiment.
pub struct GradNormSmoothness;

const INFO: PaperInfo = PaperInfo {
    id: "grad-norm-smoothness",
    arxiv: "2506.13710",
    module: "gradlab_optim::grad_norm_smooth",
    claim: "Gradient-regularized Newton with adaptive γ converges at a global linear rate on logistic and softmax regression, with exact and with approximate Hessians.",
};

/// L2 coefficient.
pub const L2: f64 = 1e-3;

/// Gradient norm where a run stops (rounding takes over below).
const FLOOR: f64 = 1e-10;

/// Window of the contraction check.
const WINDOW: usize = 5;

/// Softmax regression with L2 on features x̃ = [x; 1]; parameters W (d̃ × K, row-major).
pub struct SoftmaxRegression {
    x: Vec<f64>,
    y: Vec<usize>,
    d: usize,
    k: usize,
    /// Use the weighted Gauss–Newton approximation as the Hessian.
    pub approximate: bool,
}

impl SoftmaxRegression {
    /// From flattened features (n × (d − 1)), labels in 0..k.
    pub fn new(features: &[f32], labels: &[usize], k: usize) -> Self {
        let n = labels.len();
        let d = features.len() / n.max(1) + 1;
        let mut x = Vec::with_capacity(n * d);
        for row in features.chunks(d - 1) {
            x.extend(row.iter().map(|v| f64::from(*v)));
            x.push(1.0);
        }
        Self {
            x,
            y: labels.to_vec(),
            d,
            k,
            approximate: false,
        }
    }

    fn probs(&self, w: &[f64], i: usize) -> Vec<f64> {
        let xi = &self.x[i * self.d..(i + 1) * self.d];
        let z: Vec<f64> = (0..self.k)
            .map(|a| (0..self.d).map(|j| xi[j] * w[j * self.k + a]).sum())
            .collect();
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        e.into_iter().map(|v| v / s).collect()
    }

    fn n(&self) -> usize {
        self.y.len()
    }
}

impl SoftmaxRegression {
    /// The number of parameters d̃·K.
    pub fn dim(&self) -> usize {
        self.d * self.k
    }

    /// The regularised mean cross-entropy at `w`.
    pub fn value(&self, w: &[f64]) -> f64 {
        let ce: f64 = (0..self.n())
            .map(|i| -self.probs(w, i)[self.y[i]].max(1e-300).ln())
            .sum();
        ce / self.n() as f64 + 0.5 * L2 * w.iter().map(|v| v * v).sum::<f64>()
    }

    /// Its gradient.
    pub fn gradient(&self, w: &[f64]) -> Vec<f64> {
        let (d, k) = (self.d, self.k);
        let mut g: Vec<f64> = w.iter().map(|v| L2 * v).collect();
        let inv_n = 1.0 / self.n() as f64;
        for i in 0..self.n() {
            let mut p = self.probs(w, i);
            p[self.y[i]] -= 1.0;
            let xi = &self.x[i * d..(i + 1) * d];
            for j in 0..d {
                for a in 0..k {
                    g[j * k + a] += inv_n * xi[j] * p[a];
                }
            }
        }
        g
    }

    /// Exact: Σᵢ (diag(pᵢ) − pᵢpᵢᵀ) ⊗ x̃ᵢx̃ᵢᵀ / N + λI; approximate: without the pᵢpᵢᵀ terms.
    pub fn hessian(&self, w: &[f64]) -> Vec<f64> {
        let (d, k) = (self.d, self.k);
        let n = d * k;
        let mut h = vec![0.0; n * n];
        let inv_n = 1.0 / self.n() as f64;
        // Accumulate C_ab · x̃x̃ᵀ for a ≤ b into the (j, a), (l, b) entries.
        for i in 0..self.n() {
            let p = self.probs(w, i);
            let xi = &self.x[i * d..(i + 1) * d];
            for a in 0..k {
                for b in a..k {
                    let c = if a == b { p[a] } else { 0.0 }
                        - if self.approximate { 0.0 } else { p[a] * p[b] };
                    if c == 0.0 {
                        continue;
                    }
                    let c = c * inv_n;
                    for j in 0..d {
                        let cj = c * xi[j];
                        let row = (j * k + a) * n;
                        for l in 0..d {
                            h[row + l * k + b] += cj * xi[l];
                        }
                    }
                }
            }
        }
        // Mirror the a < b blocks and add λI.
        for r in 0..n {
            for c in 0..n {
                let (ra, cb) = (r % k, c % k);
                if ra > cb {
                    h[r * n + c] = h[c * n + r];
                }
            }
            h[r * n + r] += L2;
        }
        h
    }
}

impl Problem for SoftmaxRegression {
    fn dim(&self) -> usize {
        SoftmaxRegression::dim(self)
    }
}

impl Cost for SoftmaxRegression {
    fn cost(&self, w: &[f64]) -> gradlab_core::Result<f64> {
        check_point(self, w)?;
        Ok(self.value(w))
    }
}

impl Gradient for SoftmaxRegression {
    fn gradient(&self, w: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        check_point(self, w)?;
        Ok(SoftmaxRegression::gradient(self, w))
    }
}

impl Hessian for SoftmaxRegression {
    fn hessian(&self, w: &[f64]) -> gradlab_core::Result<Vec<f64>> {
        check_point(self, w)?;
        Ok(SoftmaxRegression::hessian(self, w))
    }
}

/// Gradient descent with the authors' backtracking: accept T = x − ∇f/L when
/// f(T) ≤ f + ⟨∇f, T − x⟩ + L/2‖T − x‖², then L ← L/2; else L ← 2L. Returns ‖∇f‖ per iterate.
pub fn gradient_method(
    f: &(impl Cost + Gradient),
    x0: &[f64],
    iters: usize,
) -> gradlab_core::Result<Vec<f64>> {
    let mut x = x0.to_vec();
    let (mut fx, mut g) = (f.cost(&x)?, Gradient::gradient(f, &x)?);
    let mut l = 1.0f64;
    let norm = |g: &[f64]| g.iter().map(|v| v * v).sum::<f64>().sqrt();
    let mut out = vec![norm(&g)];
    for _ in 0..iters {
        let gg: f64 = g.iter().map(|v| v * v).sum();
        let mut t = x.clone();
        let mut ft = fx;
        for _ in 0..30 {
            t = x.iter().zip(&g).map(|(a, b)| a - b / l).collect();
            ft = f.cost(&t)?;
            if ft <= fx - gg / l + 0.5 * gg / l {
                l = (0.5 * l).max(1e-5);
                break;
            }
            l *= 2.0;
        }
        x = t;
        fx = ft;
        g = Gradient::gradient(f, &x)?;
        out.push(norm(&g));
    }
    Ok(out)
}

/// The largest ratio ‖∇f(x_{k+w})‖ / ‖∇f(x_k)‖ over the run, among iterates above `floor`: a
/// linear rate q means it is at most about q^w, uniformly along the run.
pub fn worst_contraction(norms: &[f64], w: usize, floor: f64) -> f64 {
    let above: Vec<f64> = norms.iter().cloned().take_while(|v| *v > floor).collect();
    above
        .windows(w + 1)
        .map(|win| win[w] / win[0])
        .fold(f64::NAN, f64::max)
}

/// Slope of log10‖∇f‖ per iteration and R² of the least-squares line, over the iterates before
/// ‖∇f‖ falls under `floor` (where rounding takes over).
pub fn linear_fit(norms: &[f64], floor: f64) -> (f64, f64) {
    let ys: Vec<f64> = norms
        .iter()
        .take_while(|v| **v > floor)
        .map(|v| v.log10())
        .collect();
    let n = ys.len() as f64;
    if ys.len() < 3 {
        return (f64::NAN, f64::NAN);
    }
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let sxy: f64 = ys
        .iter()
        .enumerate()
        .map(|(i, y)| (i as f64 - mx) * (y - my))
        .sum();
    let sxx: f64 = (0..ys.len()).map(|i| (i as f64 - mx).powi(2)).sum();
    let slope = sxy / sxx;
    let ss_res: f64 = ys
        .iter()
        .enumerate()
        .map(|(i, y)| (y - (my + slope * (i as f64 - mx))).powi(2))
        .sum();
    let ss_tot: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    (slope, 1.0 - ss_res / ss_tot)
}

/// ‖∇f‖ floor for the f32 MLP (its gradients carry ≈1e-7 relative rounding).
const MLP_FLOOR: f64 = 1e-6;

impl GradNormSmoothness {
    /// A small tanh MLP (64-6-10) trained jointly over all its parameters with the Gauss–Newton
    /// matrix as the Hessian approximation ([`crate::joint_newton`]), against gradient descent.
    fn mlp_case(
        &self,
        ctx: &RunContext,
        train: &ImageSet,
        out: &mut Outcome,
        table: &mut Table,
        series: &mut Vec<Series>,
    ) -> Result<()> {
        let (n, iters) = if ctx.quick { (200, 15) } else { (500, 30) };
        let idx: Vec<usize> = (0..n.min(train.len())).collect();
        let model = MlpConfig::new(vec![train.feature_dim(), 6, train.classes])
            .with_activation(Activation::Tanh)
            .init(&autodiff_device(), ctx.seed);
        let theta0: Vec<f64> = gradlab_core::flat::flatten_host(&model)?;
        let objective = ModelObjective::new(model.clone(), train, &idx, L2)?;
        let method = GradNormSmoothConfig::new().with_grad_tol(MLP_FLOOR).init()?;
        let (_, trace) = joint_newton::fit(model, train, &idx, L2, &method, iters)?;
        let norms: Vec<f64> = trace.iter().map(|t| t.grad_norm).collect();
        let gd = gradient_method(&objective, &theta0, iters)?;
        let problem = format!(
            "MLP 64-6-10 (tanh, {} parameters, {n} images)",
            theta0.len()
        );
        let last = *norms.last().unwrap_or(&f64::NAN);
        let gd_last = *gd.last().unwrap_or(&f64::NAN);
        let worst = worst_contraction(&norms, WINDOW, MLP_FLOOR);
        for (method, v, solves) in [
            (
                "GN-smooth Newton, Gauss–Newton H (joint, all parameters)",
                &norms,
                trace.last().map_or(0, |t| t.solves).to_string(),
            ),
            ("gradient descent (backtracking)", &gd, "—".to_string()),
        ] {
            let (slope, r2) = linear_fit(v, MLP_FLOOR);
            table.row(vec![
                problem.clone(),
                method.into(),
                format!("{:.3e}", v[0]),
                format!("{:.3e}", v.last().copied().unwrap_or(f64::NAN)),
                format!("{slope:.3}"),
                format!("{r2:.3}"),
                format!("{:.3}", worst_contraction(v, WINDOW, MLP_FLOOR)),
                solves,
            ]);
            series.push(Series::indexed(
                format!("MLP: {method}"),
                &v.iter().map(|x| x.max(1e-16).log10()).collect::<Vec<_>>(),
            ));
        }
        out.metrics.insert("mlp_gn.final_grad_norm".into(), last);
        out.metrics
            .insert("mlp_gn.gd_final_grad_norm".into(), gd_last);
        out.metrics.insert("mlp_gn.worst_contraction".into(), worst);
        out.checks.push(Check::new(
            "mlp_gn.linear_rate",
            format!("{problem}, Gauss–Newton H: a linear rate (worst {WINDOW}-iteration ratio of ‖∇f‖, down to {MLP_FLOOR:e})"),
            worst,
            Cmp::Lt,
            0.9,
        ));
        out.checks.push(Check::new(
            "mlp_gn.beats_gd",
            format!("{problem}: Gauss–Newton GN-smooth Newton ends with a smaller ‖∇f‖ than gradient descent after {iters} iterations (ratio)"),
            last / gd_last,
            Cmp::Lt,
            1.0,
        ));
        Ok(())
    }
}

impl Experiment for GradNormSmoothness {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // With the exact Hessian of these strongly convex (L2) problems the regularized Newton step
        // must converge far below what first-order methods reach in 25 iterations; with the
        // approximate Hessian it must at least make progress.
        for (key, bound) in [("logistic", 1e-8), ("softmax", 1e-8), ("softmax_approx", 0.1)] {
            e.below(&format!("{key}.final_grad_norm"), bound);
        }
        // The MLP run made progress (gradient norm falls from ≈0.4).
        e.below("mlp_gn.final_grad_norm", 0.1);
        e.figures(&["grad_norm.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (train, _) = load_split("digits", ctx.seed)?;
        let n = if ctx.quick { 500 } else { train.len() };
        let iters = if ctx.quick { 25 } else { 40 };
        let features = &train.images[..n * train.feature_dim()];
        let labels: Vec<usize> = train.labels[..n].iter().map(|&l| usize::from(l)).collect();
        let parity: Vec<usize> = labels.iter().map(|l| l % 2).collect();
        let mut table = Table::new(
            format!(
                "Digits ({n} images), L2 {L2}; ‖∇f‖ after {iters} iterations (each Newton iteration may solve several systems)"
            ),
            &[
                "problem",
                "method",
                "‖∇f(x₀)‖",
                "final ‖∇f‖",
                "slope of log10‖∇f‖ / it.",
                "R² of the line",
                "worst 5-it. ratio",
                "systems solved",
            ],
        );
        let mut series = vec![];
        let cases: [(&str, &str, Vec<usize>, usize, bool); 3] = [
            ("logistic", "even vs odd (logistic)", parity, 2, false),
            ("softmax", "10-class softmax", labels.clone(), 10, false),
            ("softmax_approx", "10-class softmax", labels, 10, true),
        ];
        for (key, problem, y, k, approximate) in cases {
            let mut f = SoftmaxRegression::new(features, &y, k);
            f.approximate = approximate;
            let x0 = vec![0.0; f.dim()];
            let method_cfg = GradNormSmoothConfig::new().with_grad_tol(FLOOR).init()?;
            let (_, trace) = method_cfg.run(&f, &x0, iters)?;
            let norms: Vec<f64> = trace.iter().map(|t| t.grad_norm).collect();
            let (slope, r2) = linear_fit(&norms, FLOOR);
            let worst = worst_contraction(&norms, WINDOW, FLOOR);
            let method = if approximate {
                "GN-smooth Newton, weighted Gauss–Newton H"
            } else {
                "GN-smooth Newton, exact H"
            };
            let last = *norms.last().unwrap_or(&f64::NAN);
            table.row(vec![
                problem.into(),
                method.into(),
                format!("{:.3e}", norms[0]),
                format!("{last:.3e}"),
                format!("{slope:.3}"),
                format!("{r2:.3}"),
                format!("{worst:.3}"),
                format!("{}", trace.last().map_or(0, |t| t.solves)),
            ]);
            out.metrics.insert(format!("{key}.final_grad_norm"), last);
            out.metrics.insert(format!("{key}.slope"), slope);
            out.checks.push(Check::new(
                format!("{key}.linear_rate"),
                format!("{problem}, {method}: a linear rate — ‖∇f‖ contracts by a uniform factor over every {WINDOW} iterations (worst ratio along the run, down to {FLOOR:e})"),
                worst,
                Cmp::Lt,
                0.9,
            ));
            out.metrics
                .insert(format!("{key}.worst_contraction"), worst);
            series.push(Series::indexed(
                format!("{problem}: {method}"),
                &norms
                    .iter()
                    .map(|v| v.max(1e-16).log10())
                    .collect::<Vec<_>>(),
            ));
            if !approximate {
                let gd = gradient_method(&f, &x0, iters)?;
                let gd_last = *gd.last().unwrap_or(&f64::NAN);
                let (gslope, gr2) = linear_fit(&gd, FLOOR);
                let gworst = worst_contraction(&gd, WINDOW, FLOOR);
                table.row(vec![
                    problem.into(),
                    "gradient descent (backtracking)".into(),
                    format!("{:.3e}", gd[0]),
                    format!("{gd_last:.3e}"),
                    format!("{gslope:.3}"),
                    format!("{gr2:.3}"),
                    format!("{gworst:.3}"),
                    "—".into(),
                ]);
                out.metrics
                    .insert(format!("{key}.gd_final_grad_norm"), gd_last);
                out.checks.push(Check::new(
                    format!("{key}.beats_gd"),
                    format!("{problem}: exact-Hessian GN-smooth Newton ends with a smaller ‖∇f‖ than gradient descent after {iters} iterations (ratio)"),
                    last / gd_last,
                    Cmp::Lt,
                    1.0,
                ));
                series.push(Series::indexed(
                    format!("{problem}: gradient descent"),
                    &gd.iter().map(|v| v.max(1e-16).log10()).collect::<Vec<_>>(),
                ));
            }
        }
        self.mlp_case(ctx, &train, &mut out, &mut table, &mut series)?;
        out.tables.push(table);
        line_chart(
            &ctx.out_dir.join("grad_norm.png"),
            "log10 ‖∇f‖ against iterations",
            "iteration",
            "log10 ‖∇f‖",
            &series,
            &[],
        )?;
        out.figures.push("grad_norm.png".into());
        out.notes.push("The paper's LIBSVM sets (mushrooms etc.) are not shipped here; digits stands in, with an L2 term so that a minimiser exists.".into());
        Ok(out)
    }
}
