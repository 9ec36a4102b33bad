//! `gradlab run <id>`: one paper's experiment — a table on stdout, figures and result.json.

use anyhow::{Context, Result};
use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry::{experiment_ids, find};
use gradlab_train::output::check_output_dir;
use std::path::PathBuf;

/// The arguments of `gradlab run`.
#[derive(clap::Args)]
pub struct Args {
    /// Experiment id (see `gradlab list`).
    pub id: String,
    /// Quick mode: embedded data, seconds.
    #[arg(long)]
    pub quick: bool,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory (default: out/<id>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Run the experiment and print its outcome.
pub fn run(args: Args) -> Result<()> {
    let Args {
        id,
        quick,
        seed,
        out,
        json,
    } = args;
    let id = id.as_str();
    let exp = find(id).with_context(|| {
        format!(
            "no experiment '{id}'; implemented: {}",
            experiment_ids().join(", ")
        )
    })?;
    let dir = out.unwrap_or_else(|| PathBuf::from("out").join(id));
    check_output_dir(&dir)?;
    let mut ctx = RunContext::new(quick, seed, &dir);
    ctx.progress = !json;
    let outcome = run_experiment(exp.as_ref(), &ctx)?;
    if json {
        outln!("{}", serde_json::to_string(&outcome)?);
    } else {
        out!("{}", outcome.render());
        outln!("figures and result.json in {}", dir.display());
    }
    Ok(())
}
