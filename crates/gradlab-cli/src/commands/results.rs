//! `gradlab results DIR… --into FILE`: merge the `result.json` of earlier runs into a
//! RESULTS.md ([`gradlab_lab::results`]), replacing each experiment's block of the same mode.

use anyhow::{Context, Result, bail};
use gradlab_lab::experiment::RESULT_FILE;
use gradlab_lab::results::{Summary, merge_into};
use std::path::PathBuf;

/// The arguments of `gradlab results`.
#[derive(clap::Args)]
pub struct Args {
    /// Output directories of `gradlab run` or `gradlab reproduce` (each holding a result.json,
    /// or subdirectories that do).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The RESULTS.md to merge into (created if missing; a file gradlab did not write is refused).
    #[arg(long, default_value = "RESULTS.md")]
    pub into: PathBuf,
}

/// Read every result, then merge them (nothing is written if one cannot be read).
pub fn run(args: Args) -> Result<()> {
    let mut summaries = vec![];
    for dir in &args.dirs {
        let files = result_files(dir)?;
        if files.is_empty() {
            bail!(
                "{}: no {RESULT_FILE} in it or in its subdirectories",
                dir.display()
            );
        }
        for f in files {
            let text = std::fs::read_to_string(&f).with_context(|| f.display().to_string())?;
            summaries.push(Summary::from_json(&text).with_context(|| f.display().to_string())?);
        }
    }
    let n = summaries.len();
    merge_into(&args.into, summaries)?;
    outln!("merged {n} results into {}", args.into.display());
    Ok(())
}

/// `dir/result.json`, or else `dir/*/result.json` (sorted).
fn result_files(dir: &std::path::Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        bail!("{}: not a directory", dir.display());
    }
    let own = dir.join(RESULT_FILE);
    if own.is_file() {
        return Ok(vec![own]);
    }
    let mut found = vec![];
    for entry in std::fs::read_dir(dir).with_context(|| dir.display().to_string())? {
        let f = entry?.path().join(RESULT_FILE);
        if f.is_file() {
            found.push(f);
        }
    }
    found.sort();
    Ok(found)
}
