//! The experiment abstraction: a paper's claim restated as measurable checks.
//!
//! An [`Experiment`] runs in quick mode (seconds, embedded data, part of the test suite) or full
//! mode, and returns an [`Outcome`]: tables, figures and [`Check`]s, each a measured number next to
//! the threshold that encodes the paper's claim. The [`Verdict`] follows from the checks alone.

use crate::error::{Result, file_err};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Static description of a paper and its experiment. The title is the seed list's
/// ([`crate::registry::SEED_PAPERS`]), found by the id.
#[derive(Debug, Clone, Copy)]
pub struct PaperInfo {
    /// Experiment id (`gradlab run <id>`).
    pub id: &'static str,
    /// arXiv id, or "" where not recorded.
    pub arxiv: &'static str,
    /// The library module that implements the method.
    pub module: &'static str,
    /// The headline claim, in one sentence.
    pub claim: &'static str,
}

impl PaperInfo {
    /// The paper's title, from the seed list.
    pub fn title(&self) -> &'static str {
        crate::registry::title(self.id)
    }
}

impl Serialize for PaperInfo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("PaperInfo", 5)?;
        st.serialize_field("id", self.id)?;
        st.serialize_field("title", self.title())?;
        st.serialize_field("arxiv", self.arxiv)?;
        st.serialize_field("module", self.module)?;
        st.serialize_field("claim", self.claim)?;
        st.end()
    }
}

/// How a measured value must compare with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cmp {
    /// measured < threshold
    Lt,
    /// measured ≤ threshold
    Le,
    /// measured > threshold
    Gt,
    /// measured ≥ threshold
    Ge,
}

impl Cmp {
    /// The comparison sign.
    pub fn symbol(self) -> &'static str {
        match self {
            Cmp::Lt => "<",
            Cmp::Le => "≤",
            Cmp::Gt => ">",
            Cmp::Ge => "≥",
        }
    }
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Cmp::Lt => a < b,
            Cmp::Le => a <= b,
            Cmp::Gt => a > b,
            Cmp::Ge => a >= b,
        }
    }
}

/// One measurable part of a claim.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable key, e.g. `f1.diffgrad_distance_to_global_min`.
    pub key: String,
    /// What the paper claims, in words.
    pub claim: String,
    /// The measured value.
    pub measured: f64,
    /// The comparison.
    pub cmp: Cmp,
    /// The threshold encoding the claim.
    pub threshold: f64,
    /// Whether measured `cmp` threshold holds (false for non-finite measurements).
    pub passed: bool,
}

impl Check {
    /// A check; `passed` is computed.
    pub fn new(
        key: impl Into<String>,
        claim: impl Into<String>,
        measured: f64,
        cmp: Cmp,
        threshold: f64,
    ) -> Self {
        let passed = measured.is_finite() && cmp.holds(measured, threshold);
        Self {
            key: key.into(),
            claim: claim.into(),
            measured,
            cmp,
            threshold,
            passed,
        }
    }
    /// "0.0012 ≤ 0.05 ✓" style text; a measurement that differs from its threshold is printed
    /// with as many digits as it takes to show the difference (never "1.0000 < 1.0000 ✓").
    pub fn describe(&self) -> String {
        let (m, t) = fmt_pair(self.measured, self.threshold);
        format!(
            "{m} {} {t} {}",
            self.cmp.symbol(),
            if self.passed { "✓" } else { "✗" }
        )
    }
}

/// Format two numbers compactly, adding significant digits (up to 12) while they differ but
/// print alike.
pub fn fmt_pair(a: f64, b: f64) -> (String, String) {
    let (fa, fb) = (fmt_num(a), fmt_num(b));
    if fa != fb || a == b || !a.is_finite() || !b.is_finite() {
        return (fa, fb);
    }
    (5..=12)
        .map(|digits| (format!("{a:.digits$e}"), format!("{b:.digits$e}")))
        .find(|(x, y)| x != y)
        .unwrap_or((fa, fb))
}

/// The upper median of `v` (its middle value, the upper of the two for an even length; NaN when
/// empty), as the experiments' tables report it.
pub fn median(v: &[f64]) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Format a number compactly.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e5) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

/// The overall verdict of an experiment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every check passed.
    Reproduced,
    /// Some checks passed.
    Partial,
    /// No check passed.
    NotReproduced,
}

impl Verdict {
    /// The verdict implied by `checks`.
    pub fn from_checks(checks: &[Check]) -> Self {
        let passed = checks.iter().filter(|c| c.passed).count();
        if passed == checks.len() && passed > 0 {
            Verdict::Reproduced
        } else if passed > 0 {
            Verdict::Partial
        } else {
            Verdict::NotReproduced
        }
    }
    /// Human text.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::Partial => "partly reproduced",
            Verdict::NotReproduced => "not reproduced",
        }
    }
}

/// A table of results.
#[derive(Debug, Clone, Serialize)]
pub struct Table {
    /// Caption.
    pub title: String,
    /// Column headers.
    pub columns: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: impl Into<String>, columns: &[&str]) -> Self {
        Self {
            title: title.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: vec![],
        }
    }
    /// Append a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
    /// Plain-text rendering with aligned columns.
    pub fn render(&self) -> String {
        let w: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                    .chain([self.columns[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<width$}", width = w[i]))
                .collect::<Vec<_>>()
                .join("  ")
        };
        let mut s = format!("{}\n{}\n", self.title, line(&self.columns));
        s.push_str(
            &w.iter()
                .map(|n| "-".repeat(*n))
                .collect::<Vec<_>>()
                .join("  "),
        );
        for r in &self.rows {
            s.push('\n');
            s.push_str(&line(r));
        }
        s
    }
}

/// Everything an experiment run produced.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The paper.
    pub paper: PaperInfo,
    /// Quick or full mode.
    pub quick: bool,
    /// The seed.
    pub seed: u64,
    /// Scalar metrics by name.
    pub metrics: BTreeMap<String, f64>,
    /// Result tables.
    pub tables: Vec<Table>,
    /// Figure file names, relative to the output directory.
    pub figures: Vec<String>,
    /// The checks that encode the claim.
    pub checks: Vec<Check>,
    /// Remarks: deviations from the paper's setup, data substitutions.
    pub notes: Vec<String>,
    /// Verdict from the checks.
    pub verdict: Verdict,
    /// Wall time in seconds.
    pub seconds: f64,
}

impl Outcome {
    /// An empty outcome for `paper`.
    pub fn new(paper: PaperInfo, ctx: &RunContext) -> Self {
        Self {
            paper,
            quick: ctx.quick,
            seed: ctx.seed,
            metrics: BTreeMap::new(),
            tables: vec![],
            figures: vec![],
            checks: vec![],
            notes: vec![],
            verdict: Verdict::NotReproduced,
            seconds: 0.0,
        }
    }
    /// Recompute the verdict from the checks.
    pub fn finish(mut self, seconds: f64) -> Self {
        self.verdict = Verdict::from_checks(&self.checks);
        self.seconds = seconds;
        self
    }
    /// The check with `key`, if any.
    pub fn check(&self, key: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.key == key)
    }
    /// Plain-text report: claim, tables, checks, verdict.
    pub fn render(&self) -> String {
        let mut s = format!(
            "{} — {}\nclaim: {}\n",
            self.paper.id,
            self.paper.title(),
            self.paper.claim
        );
        for t in &self.tables {
            s.push('\n');
            s.push_str(&t.render());
            s.push('\n');
        }
        s.push_str("\nchecks (measured vs threshold):\n");
        for c in &self.checks {
            s.push_str(&format!(
                "  {}  {}\n    {}\n",
                if c.passed { "PASS" } else { "FAIL" },
                c.claim,
                c.describe()
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("note: {n}\n"));
        }
        s.push_str(&format!(
            "verdict: {} ({} of {} checks, {:.1} s, {} mode, seed {})\n",
            self.verdict.label(),
            self.checks.iter().filter(|c| c.passed).count(),
            self.checks.len(),
            self.seconds,
            if self.quick { "quick" } else { "full" },
            self.seed
        ));
        s
    }
    /// Write `result.json` into `dir` (atomically: beside, then renamed).
    pub fn write_json(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(RESULT_FILE);
        let text = serde_json::to_string_pretty(self).map_err(|e| file_err(&path, e))?;
        gradlab_train::output::write_atomic(&path, text.as_bytes())?;
        Ok(path)
    }
}

/// The file an experiment's outcome is written to, in its output directory.
pub const RESULT_FILE: &str = "result.json";

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Quick mode: small data, few steps.
    pub quick: bool,
    /// Seed of everything random.
    pub seed: u64,
    /// Where figures and `result.json` go (created if missing).
    pub out_dir: PathBuf,
    /// Show progress bars.
    pub progress: bool,
}

impl RunContext {
    /// A context writing to `out_dir`.
    pub fn new(quick: bool, seed: u64, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            quick,
            seed,
            out_dir: out_dir.into(),
            progress: false,
        }
    }
    /// A progress bar of `len` units on stderr (hidden without `progress`).
    pub fn progress_bar(&self, len: u64, message: &str) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(len).with_message(message.to_string());
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]",
        ) {
            bar.set_style(style);
        }
        bar
    }

    /// Make sure the output directory exists and is writable, and remove a previous run's
    /// `result.json` and the figures it lists, so that a run stopped part-way never leaves an old
    /// result that looks like this run's.
    pub fn prepare(&self) -> Result<()> {
        gradlab_train::output::check_output_dir(&self.out_dir)?;
        let stale = self.out_dir.join(RESULT_FILE);
        let figures: Vec<String> = std::fs::read_to_string(&stale)
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v["figures"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|f| f.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default();
        for f in figures {
            // Only plain file names inside the folder (never a path out of it).
            if !f.contains(['/', '\\']) && !f.starts_with('.') {
                std::fs::remove_file(self.out_dir.join(f)).ok();
            }
        }
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(file_err(&stale, gradlab_train::output::io_reason(&e)))
            }
            _ => Ok(()),
        }
    }
}

/// A spinner with `message` on stderr (hidden unless `show`), for work of unknown length.
pub fn progress_spinner(show: bool, message: String) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let s = indicatif::ProgressBar::new_spinner().with_message(message);
    s.enable_steady_tick(std::time::Duration::from_millis(120));
    s
}

/// What a piece of work cost: wall time and peak heap above its start (NaN where the metered
/// allocator is not the global one; see [`gradlab_core::memory`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Peak heap bytes above the start.
    pub peak_bytes: f64,
}

impl Cost {
    /// The peak heap for a table cell ("not metered" without the metered allocator).
    pub fn heap(&self) -> String {
        if self.peak_bytes.is_nan() {
            "not metered".into()
        } else {
            format!("{:.0} KiB", self.peak_bytes / 1024.0)
        }
    }
}

/// The mean of `v` (NaN when empty).
pub fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// A measurement over seeds as a table cell: `mean [min, max]`, four decimals.
pub fn mean_range(v: &[f64]) -> String {
    let (lo, hi) = v
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(*x), h.max(*x))
        });
    format!("{:.4} [{lo:.4}, {hi:.4}]", mean(v))
}

/// Run `work` and measure its [`Cost`] in the same run.
pub fn measure<R>(work: impl FnOnce() -> R) -> (R, Cost) {
    let peak = gradlab_core::memory::Peak::start();
    let start = std::time::Instant::now();
    let out = work();
    let seconds = start.elapsed().as_secs_f64();
    let peak_bytes = peak.map_or(f64::NAN, |p| p.bytes() as f64);
    (
        out,
        Cost {
            seconds,
            peak_bytes,
        },
    )
}

/// A paper's reproduction.
pub trait Experiment: Send + Sync {
    /// The paper and claim.
    fn info(&self) -> PaperInfo;
    /// Run it; figures go to `ctx.out_dir`.
    fn run(&self, ctx: &RunContext) -> Result<Outcome>;
    /// What a quick run with seed 0 must show: the checks that reproduce at quick scale, the
    /// figures, and properties that a broken run would violate (whatever the claim's verdict).
    /// The quick test of every registered experiment (`tests/quick_experiments.rs`) calls it.
    fn expect_quick(&self, e: &mut Expect<'_>);
}

/// The expectations of a quick run, collected: every unmet one is recorded (not the first
/// only), and [`Expect::finish`] reports them together.
pub struct Expect<'a> {
    out: &'a Outcome,
    dir: &'a Path,
    failures: Vec<String>,
}

impl<'a> Expect<'a> {
    /// Expectations of `out`, whose files are in `dir`.
    pub fn new(out: &'a Outcome, dir: &'a Path) -> Self {
        Self {
            out,
            dir,
            failures: vec![],
        }
    }
    /// The outcome.
    pub fn outcome(&self) -> &Outcome {
        self.out
    }
    /// Metric `key` (NaN, and a failure, if it is missing).
    pub fn metric(&mut self, key: &str) -> f64 {
        match self.out.metrics.get(key) {
            Some(v) => *v,
            None => {
                self.failures.push(format!("missing metric {key}"));
                f64::NAN
            }
        }
    }
    /// `cond` must hold; `what` says what it means.
    pub fn that(&mut self, cond: bool, what: impl std::fmt::Display) {
        if !cond {
            self.failures.push(what.to_string());
        }
    }
    /// Metric `key` must exceed `bound`.
    pub fn above(&mut self, key: &str, bound: f64) {
        let v = self.metric(key);
        self.that(v > bound, format!("{key} = {v}, expected > {bound}"));
    }
    /// Metric `key` must be below `bound`.
    pub fn below(&mut self, key: &str, bound: f64) {
        let v = self.metric(key);
        self.that(v < bound, format!("{key} = {v}, expected < {bound}"));
    }
    /// Check `key` must exist and pass.
    pub fn passed(&mut self, key: &str) {
        match self.out.check(key) {
            Some(c) => self.that(c.passed, format!("check {key} failed: {}", c.describe())),
            None => self.failures.push(format!("missing check {key}")),
        }
    }
    /// Check `key` must exist (whichever way it came out).
    pub fn measured(&mut self, key: &str) {
        let present = self.out.check(key).is_some();
        self.that(present, format!("missing check {key}"));
    }
    /// Every check must pass.
    pub fn all_passed(&mut self) {
        for c in &self.out.checks {
            self.that(
                c.passed,
                format!("check {} failed: {}", c.key, c.describe()),
            );
        }
    }
    /// These figures must be listed in the outcome and written in its directory.
    pub fn figures(&mut self, names: &[&str]) {
        for n in names {
            let listed = self.out.figures.iter().any(|f| f == n);
            let written = self.dir.join(n).is_file();
            self.that(
                listed && written,
                format!("figure {n}: listed {listed}, written {written}"),
            );
        }
    }
    /// `Ok` if every expectation held, else all the failures, one per line.
    pub fn finish(self) -> std::result::Result<(), String> {
        if self.failures.is_empty() {
            Ok(())
        } else {
            Err(self.failures.join("\n"))
        }
    }
}

/// Run an experiment: prepare the directory, time it, set the verdict, write `result.json`.
pub fn run_experiment(exp: &dyn Experiment, ctx: &RunContext) -> Result<Outcome> {
    ctx.prepare()?;
    let t0 = std::time::Instant::now();
    let outcome = exp.run(ctx)?.finish(t0.elapsed().as_secs_f64());
    outcome.write_json(&ctx.out_dir)?;
    Ok(outcome)
}
