//! `gradlab list`: every seed paper, its experiment id and status.

use anyhow::Result;
use gradlab_lab::registry::{SEED_PAPERS, experiment_ids};

/// The arguments of `gradlab list`.
#[derive(clap::Args)]
pub struct Args {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Print the seed papers, as a table or JSON.
pub fn run(args: Args) -> Result<()> {
    let json = args.json;
    let done = experiment_ids();
    if json {
        let rows: Vec<_> = SEED_PAPERS.iter().map(|p| serde_json::json!({"title": p.title, "family": p.family, "experiment": p.experiment, "status": if done.contains(&p.experiment) { "done" } else { "planned" }})).collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    outln!(
        "{:<28} {:<8} {:<11} title",
        "experiment",
        "status",
        "family"
    );
    for p in SEED_PAPERS {
        outln!(
            "{:<28} {:<8} {:<11} {}",
            p.experiment,
            if done.contains(&p.experiment) {
                "done"
            } else {
                "planned"
            },
            p.family,
            p.title
        );
    }
    Ok(())
}
