//! The quick-mode test of every registered experiment, generated from the registry: one test per
//! experiment (named by its id; `cargo test --test quick_experiments -- diffgrad` runs one), which
//! runs it with seed 0 and asserts what its [`Experiment::expect_quick`] says a quick run must
//! show, and that its `result.json` was written.

use gradlab_lab::experiment::{Expect, Experiment, RESULT_FILE, RunContext, run_experiment};
use gradlab_lab::registry;
use libtest_mimic::{Arguments, Failed, Trial};
use std::sync::Arc;

fn quick(exp: &dyn Experiment) -> Result<(), Failed> {
    let id = exp.info().id;
    let dir = std::env::temp_dir().join(format!("gradlab-quick-{id}-{}", std::process::id()));
    let out = run_experiment(exp, &RunContext::new(true, 0, &dir))
        .map_err(|e| format!("{id} stopped: {e}"))?;
    println!("{}", out.render());
    let mut e = Expect::new(&out, &dir);
    e.that(
        dir.join(RESULT_FILE).is_file(),
        format!("{RESULT_FILE} was not written"),
    );
    exp.expect_quick(&mut e);
    let verdict = e.finish();
    std::fs::remove_dir_all(&dir).ok();
    verdict.map_err(|f| format!("{id} (quick, seed 0):\n{f}").into())
}

/// The slowest quick runs (CI, two threads), started first so that no long run is left alone at
/// the end while the other thread idles. Order only; every experiment runs.
const SLOWEST_FIRST: &[&str] = &[
    "sgmse",
    "flowchef",
    "diff2",
    "score-sde",
    "yolov9-pgi",
    "viws-net",
    "revcol",
    "rectified-flow",
];

fn main() {
    let args = Arguments::from_args();
    let mut experiments = registry::experiments();
    experiments.sort_by_key(|e| {
        SLOWEST_FIRST
            .iter()
            .position(|id| *id == e.info().id)
            .unwrap_or(SLOWEST_FIRST.len())
    });
    let trials = experiments
        .into_iter()
        .map(|exp| {
            let exp: Arc<dyn Experiment> = Arc::from(exp);
            Trial::test(exp.info().id, move || quick(exp.as_ref()))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
