//! `gradlab optimize`: an optimizer on a test function, its trajectory streamed to stdout.

use anyhow::{Result, bail};
use gradlab_core::solve::{Fallible, Iteration, solve};
use gradlab_data::functions::{TestFunction, problem_by_name};
use gradlab_optim::OptimError;
use gradlab_optim::point::Descent;
use gradlab_optim::spec::OptimizerSpec;

/// The arguments of `gradlab optimize`.
#[derive(clap::Args)]
pub struct Args {
    /// Optimizer name (as for `train`).
    #[arg(long)]
    pub optimizer: String,
    /// f1, f2, f3 (diffGrad paper), rosenbrock, rastrigin or quadratic.
    #[arg(long)]
    pub problem: String,
    /// Starting point, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        required = true
    )]
    pub x0: Vec<f64>,
    /// Learning rate.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: f64,
    /// β₁.
    #[arg(long, allow_negative_numbers = true)]
    pub beta1: Option<f64>,
    /// β₂.
    #[arg(long, allow_negative_numbers = true)]
    pub beta2: Option<f64>,
    /// ε.
    #[arg(long, allow_negative_numbers = true)]
    pub eps: Option<f64>,
    /// Momentum.
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Steps (at most 1,000,000).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Print {"trajectory":[{"step":0,"x":[...],"f":...},...]}.
    #[arg(long)]
    pub json: bool,
}

/// Check the start, build the optimizer, stream the trajectory.
pub fn run(args: Args) -> Result<()> {
    let Args {
        optimizer,
        problem,
        x0,
        lr,
        beta1,
        beta2,
        eps,
        momentum,
        steps,
        json,
    } = args;

    if steps > MAX_STEPS {
        bail!("--steps {steps} is above the limit {MAX_STEPS}");
    }
    let f = problem_by_name(&problem.to_ascii_lowercase(), x0.len())?;
    if x0.iter().any(|v| !v.is_finite()) {
        bail!("x0 must be finite");
    }
    if f.cost(&x0).is_err() {
        bail!("{problem} is not finite at x0 = {x0:?}; start closer to the origin");
    }
    let mut spec = OptimizerSpec::parse(&optimizer)?.with_lr(lr);
    (spec.beta1, spec.beta2, spec.eps, spec.momentum) = (beta1, beta2, eps, momentum);
    let descent = Descent::new(spec.point_optimizer(&x0)?, lr);
    optimize(descent, f.as_ref(), &x0, steps, json)
}

/// Run `descent` on `f` through the solver loop and stream its trajectory to stdout (constant
/// memory at any number of steps): every point as JSON, or about 20 evenly spaced lines of text.
/// In JSON mode a run that diverges still ends the document, with an `"error"` field, before the
/// error exit.
fn optimize(
    mut descent: Descent,
    f: &dyn TestFunction,
    x0: &[f64],
    steps: usize,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let stride = (steps / 20).max(1);
    if json {
        write!(out, "{{\"trajectory\":[")?;
    }
    let mut emit = Fallible::new(|it: &Iteration| -> Result<()> {
        let step = it.iteration;
        let v = f.cost(it.x).map_err(|_| diverged(step))?;
        if json {
            let sep = if step == 0 { "" } else { "," };
            let point = serde_json::json!({"step": step, "x": it.x, "f": v});
            write!(out, "{sep}{point}")?;
        } else if step.is_multiple_of(stride) || step == steps {
            let x = serde_json::json!(it.x);
            writeln!(out, "step {step:>6}  f = {v:<12.6e}  x = {x}")?;
        }
        Ok(())
    });
    let failure = match solve(&mut descent, f, x0, steps, &mut emit) {
        Err(OptimError::NonFinite { step, .. }) => Some(diverged(step)),
        Err(OptimError::Core(gradlab_core::CoreError::NonFinite { .. })) => Some(anyhow::anyhow!(
            "the gradient became non-finite; try a smaller --lr"
        )),
        Err(e) => Some(e.into()),
        Ok(_) => None,
    };
    let failure = failure.or_else(|| emit.finish().err());
    if json {
        match &failure {
            Some(e) => writeln!(out, "],\"error\":{}}}", serde_json::json!(e.to_string()))?,
            None => writeln!(out, "]}}")?,
        }
    }
    out.flush()?;
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The error of a run whose iterate or value left the finite numbers at `step`.
fn diverged(step: usize) -> anyhow::Error {
    anyhow::anyhow!("the iterate or f(x) became non-finite at step {step}; try a smaller --lr")
}

/// The most steps `optimize` takes (its trajectory is streamed: a step is a line of output).
pub const MAX_STEPS: usize = 1_000_000;
