//! `gradlab optimize`: an optimizer on a test function, its trajectory streamed to stdout.

use anyhow::{Result, bail};
use gradlab_data::functions::problem_by_name;
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
    /// Steps.
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

    let f = problem_by_name(&problem, x0.len())?;
    if x0.iter().any(|v| !v.is_finite()) {
        bail!("x0 must be finite");
    }
    if !f.value(&x0).is_finite() {
        bail!("{problem} is not finite at x0 = {x0:?}; start closer to the origin");
    }
    let mut spec = OptimizerSpec::parse(&optimizer)?.with_lr(lr);
    (spec.beta1, spec.beta2, spec.eps, spec.momentum) = (beta1, beta2, eps, momentum);
    let opt = spec.point_optimizer(&x0)?;
    optimize(opt, f.as_ref(), x0, lr, steps, json)
}

/// Run a point optimizer and stream its trajectory to stdout (constant memory at any number of
/// steps): every point as JSON, or about 20 evenly spaced lines of text. In JSON mode a run that
/// diverges still ends the document, with an `"error"` field, before the error exit.
fn optimize(
    mut opt: Box<dyn gradlab_optim::point::PointStep>,
    f: &dyn gradlab_data::functions::Objective,
    x0: Vec<f64>,
    lr: f64,
    steps: usize,
    json: bool,
) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let stride = (steps / 20).max(1);
    let emit = |out: &mut dyn Write, step: usize, x: &[f64], v: f64| -> std::io::Result<()> {
        if json {
            let sep = if step == 0 { "" } else { "," };
            write!(
                out,
                "{sep}{}",
                serde_json::json!({"step": step, "x": x, "f": v})
            )
        } else if step.is_multiple_of(stride) || step == steps {
            writeln!(
                out,
                "step {step:>6}  f = {v:<12.6e}  x = {}",
                serde_json::json!(x)
            )
        } else {
            Ok(())
        }
    };
    if json {
        write!(out, "{{\"trajectory\":[")?;
    }
    let mut x = x0;
    emit(&mut out, 0, &x, f.value(&x))?;
    let mut failure = None;
    for step in 1..=steps {
        x = match opt.step(lr, &f.grad(&x)) {
            Ok(x) => x,
            Err(e) => {
                failure = Some(format!("step {step} failed: {e}"));
                break;
            }
        };
        let v = f.value(&x);
        if !v.is_finite() || x.iter().any(|c| !c.is_finite()) {
            failure = Some(format!(
                "the iterate became non-finite at step {step}; try a smaller --lr"
            ));
            break;
        }
        emit(&mut out, step, &x, v)?;
    }
    if json {
        match &failure {
            Some(e) => writeln!(out, "],\"error\":{}}}", serde_json::json!(e))?,
            None => writeln!(out, "]}}")?,
        }
    }
    out.flush()?;
    match failure {
        Some(e) => bail!(e),
        None => Ok(()),
    }
}
