//! `gradlab reproduce`: every experiment (or those of `--only`), the HTML report `index.html`
//! and `RESULTS.md` (the experiments run merged into it; see [`gradlab_lab::results`]).

use anyhow::{Result, bail};
use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::registry::experiments;
use gradlab_lab::report::{ReportEntry, write_index};
use gradlab_lab::results::{RESULTS_FILE, Summary, merge_into};
use gradlab_train::output::check_output_dir;
use std::path::PathBuf;

/// The arguments of `gradlab reproduce`.
#[derive(clap::Args)]
pub struct Args {
    /// Quick mode: embedded data, seconds per experiment.
    #[arg(long)]
    pub quick: bool,
    /// Run only these experiments (ids from `gradlab list`, comma-separated), in the
    /// registry's order.
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub only: Vec<String>,
    /// Seed of everything random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

/// Run them, write `index.html`, print every outcome.
pub fn run(args: Args) -> Result<()> {
    let Args {
        quick,
        only,
        seed,
        out,
    } = args;
    let mut exps = experiments();
    if !only.is_empty() {
        let known: Vec<&str> = exps.iter().map(|e| e.info().id).collect();
        if let Some(bad) = only.iter().find(|id| !known.contains(&id.as_str())) {
            bail!(
                "--only: no experiment {bad:?} (experiments: {})",
                known.join(", ")
            );
        }
        exps.retain(|e| only.iter().any(|id| id == e.info().id));
    }
    check_output_dir(&out)?;
    let bar = indicatif::ProgressBar::new(exps.len() as u64);
    bar.set_style(indicatif::ProgressStyle::with_template(
        "{bar:30} {pos}/{len} experiments {msg} [{elapsed_precise}]",
    )?);
    let mut entries = vec![];
    for exp in &exps {
        let id = exp.info().id;
        bar.set_message(id);
        let dir = out.join(id);
        let result = run_experiment(exp.as_ref(), &RunContext::new(quick, seed, &dir))
            .map_err(|e| e.to_string());
        let line = match &result {
            Ok(o) => format!(
                "{id}: {} ({}/{} checks)",
                o.verdict.label(),
                o.checks.iter().filter(|c| c.passed).count(),
                o.checks.len()
            ),
            Err(e) => format!("{id}: error: {e}"),
        };
        // Without a terminal the bar is hidden and would swallow its lines.
        if bar.is_hidden() {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
        entries.push(ReportEntry {
            id: id.to_string(),
            dir,
            result,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    let index = write_index(&out, &entries)?;
    let results = out.join(RESULTS_FILE);
    let ran = entries.iter().filter_map(|e| e.result.as_ref().ok());
    merge_into(&results, ran.map(Summary::from_outcome))?;
    for e in &entries {
        if let Ok(o) = &e.result {
            outln!("{}", o.render());
        }
    }
    outln!(
        "report: {}; results: {}",
        index.display(),
        results.display()
    );
    if entries.iter().any(|e| e.result.is_err()) {
        bail!("some experiments failed to run");
    }
    Ok(())
}
