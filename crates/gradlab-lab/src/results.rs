//! `RESULTS.md`: every experiment's verdict and checks (claim, measured, threshold), in quick and
//! full mode, generated from the outcomes so that no measured number is copied by hand.
//!
//! `gradlab reproduce` merges the experiments it ran into `<out>/RESULTS.md`; `gradlab results
//! DIR… --into FILE` merges the `result.json` of earlier runs (`gradlab run <id> --out DIR`) into
//! any file. Each experiment and mode is one block between markers, replaced when it is run
//! again and kept otherwise; blocks are ordered as the registry lists the experiments.
//!
//! ```
//! use gradlab_lab::results::{Results, Summary};
//! let json = r#"{"paper": {"id": "diffgrad", "title": "diffGrad"}, "quick": true, "seed": 0,
//!   "checks": [{"claim": "c", "measured": 0.5, "cmp": "Lt", "threshold": 1.0, "passed": true}],
//!   "verdict": "Reproduced", "seconds": 1.5}"#;
//! let mut results = Results::parse("");
//! results.insert(&Summary::from_json(json).unwrap());
//! let text = results.render();
//! assert!(text.contains("| c | 0.5000 | < | 1.0000 | ✓ |"));
//! assert_eq!(Results::parse(&text).render(), text); // a rendered file parses back to itself
//! ```

use crate::error::{LabError, Result, file_err};
use crate::experiment::{Outcome, Verdict, fmt_pair};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// The file name `gradlab reproduce` writes.
pub const RESULTS_FILE: &str = "RESULTS.md";

const END: &str = "<!-- /gradlab -->";

/// What RESULTS.md shows of one run: read from an [`Outcome`] or from its `result.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Summary {
    paper: PaperRef,
    quick: bool,
    seed: u64,
    checks: Vec<CheckRow>,
    verdict: String,
    seconds: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct PaperRef {
    id: String,
    title: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CheckRow {
    claim: String,
    /// `null` in JSON when the measurement was not finite.
    measured: Option<f64>,
    cmp: String,
    threshold: Option<f64>,
    passed: bool,
}

impl Summary {
    /// The summary of an outcome.
    pub fn from_outcome(o: &Outcome) -> Self {
        let value = serde_json::to_value(o).unwrap_or_default();
        serde_json::from_value(value).unwrap_or_else(|_| Self {
            paper: PaperRef {
                id: o.paper.id.into(),
                title: o.paper.title().into(),
            },
            quick: o.quick,
            seed: o.seed,
            checks: vec![],
            verdict: format!("{:?}", o.verdict),
            seconds: o.seconds,
        })
    }

    /// The summary in a `result.json` text.
    pub fn from_json(text: &str) -> Result<Self> {
        serde_json::from_str(text)
            .map_err(|e| LabError::Invalid(format!("not an experiment's result.json: {e}")))
    }

    fn mode(&self) -> &'static str {
        if self.quick { "quick" } else { "full" }
    }

    fn verdict_label(&self) -> &str {
        match self.verdict.as_str() {
            "Reproduced" => Verdict::Reproduced.label(),
            "Partial" => Verdict::Partial.label(),
            "NotReproduced" => Verdict::NotReproduced.label(),
            other => other,
        }
    }

    /// The block of this run: heading, verdict line, one table row per check.
    pub fn block(&self) -> String {
        let id = &self.paper.id;
        let passed = self.checks.iter().filter(|c| c.passed).count();
        let mut s = format!(
            "<!-- gradlab:{mode}:{id} -->\n<a id=\"{mode}-{id}\"></a>\n### {id}: {verdict}\n\n{title}. {passed} of {n} checks, {mode} mode, seed {seed}, {secs:.0} s.\n\n| claim | measured | | threshold | |\n|---|---|---|---|---|\n",
            mode = self.mode(),
            verdict = self.verdict_label(),
            title = cell(&self.paper.title),
            n = self.checks.len(),
            seed = self.seed,
            secs = self.seconds,
        );
        for c in &self.checks {
            let nan = f64::NAN;
            let (m, t) = fmt_pair(c.measured.unwrap_or(nan), c.threshold.unwrap_or(nan));
            let cmp = match c.cmp.as_str() {
                "Lt" => "<",
                "Le" => "≤",
                "Gt" => ">",
                "Ge" => "≥",
                other => other,
            };
            let mark = if c.passed { "✓" } else { "✗" };
            s.push_str(&format!(
                "| {} | {m} | {cmp} | {t} | {mark} |\n",
                cell(&c.claim)
            ));
        }
        s.push_str(END);
        s.push('\n');
        s
    }
}

/// A table cell: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The blocks of a RESULTS.md, by (mode, experiment id).
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Each run's block, by (mode, experiment id).
    pub blocks: BTreeMap<(String, String), String>,
}

impl Results {
    /// The blocks of an existing file's text (anything outside the markers is regenerated).
    pub fn parse(text: &str) -> Self {
        let mut blocks = BTreeMap::new();
        let mut rest = text;
        while let Some(start) = rest.find("<!-- gradlab:") {
            let after = &rest[start..];
            let Some(end) = after.find(END) else { break };
            let block = &after[..end + END.len()];
            let head = block["<!-- gradlab:".len()..]
                .split(" -->")
                .next()
                .unwrap_or("");
            if let Some((mode, id)) = head.split_once(':') {
                blocks.insert((mode.to_string(), id.to_string()), format!("{block}\n"));
            }
            rest = &after[end + END.len()..];
        }
        Self { blocks }
    }

    /// Add or replace the block of `s`'s experiment and mode.
    pub fn insert(&mut self, s: &Summary) {
        self.blocks
            .insert((s.mode().to_string(), s.paper.id.clone()), s.block());
    }

    /// The whole file: quick mode, then full mode, each in the registry's order (ids it no
    /// longer lists last); an experiment without a run in a mode says so.
    pub fn render(&self) -> String {
        let ids = crate::registry::experiment_ids();
        let mut s = String::from(
            "# Results\n\nGenerated by `gradlab reproduce` and `gradlab results` from the experiments' outcomes; do not edit by hand. Each check is the paper's claim restated as a measured number against a threshold; the verdict follows from the checks alone.\n",
        );
        for (mode, heading) in [
            (
                "quick",
                "Quick mode (`gradlab reproduce --quick`: embedded data, CPU minutes)",
            ),
            (
                "full",
                "Full mode (`gradlab run <id>`: the paper-sized settings this machine allows)",
            ),
        ] {
            s.push_str(&format!("\n## {heading}\n\n"));
            let mut extra: Vec<&String> = self
                .blocks
                .keys()
                .filter(|(m, id)| m == mode && !ids.contains(&id.as_str()))
                .map(|(_, id)| id)
                .collect();
            extra.sort();
            let order = ids
                .iter()
                .map(|id| id.to_string())
                .chain(extra.into_iter().cloned());
            for id in order {
                match self.blocks.get(&(mode.to_string(), id.clone())) {
                    Some(b) => {
                        s.push_str(b);
                        s.push('\n');
                    }
                    None => s.push_str(&format!("### {id}: not run in {mode} mode yet\n\n")),
                }
            }
        }
        s
    }
}

/// Merge `summaries` into the RESULTS.md at `path` (created if missing), atomically. A file there
/// that gradlab did not write is refused, not overwritten.
pub fn merge_into(path: &Path, summaries: impl IntoIterator<Item = Summary>) -> Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_err(path, e)),
    };
    if !text.trim().is_empty() && !text.starts_with("# Results\n") {
        return Err(file_err(
            path,
            "exists and is not a results file written by gradlab; choose another path",
        ));
    }
    let mut results = Results::parse(&text);
    for s in summaries {
        results.insert(&s);
    }
    gradlab_train::output::write_atomic(path, results.render().as_bytes())?;
    Ok(())
}
