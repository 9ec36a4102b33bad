//! Sequential gradient coding ("Sequential Gradient Coding For Straggler Mitigation", Ebrahimi,
//! Gokhale, Shah, Khisti and Tandon, ICLR 2023; [`gradlab_distributed`]).
//!
//! Claim: exploiting the temporal structure of stragglers (bursts), multiplexed SGC (M-SGC) cuts
//! the total runtime of a training run against the classic gradient code at matched load: 16% on
//! 256 AWS Lambda workers with naturally occurring stragglers.
//!
//! Here: (a) the official simulation with a delay model in place of the Lambda profiles: per-round
//! times exp(0.02 Z), times 2.5 in Gilbert–Elliott bursts (enter 3%, leave 40% per round), fixed
//! overhead 4 partitions; the official wait rule (μ = 0.1) and "wait for all" outside a scheme's
//! tolerance; for each GC s the SR-SGC and M-SGC parameters of at most GC's load (W capped) with
//! the least runtime, all run on GC's delays as the official search; 250 jobs; the best over s of
//! each scheme. GC is reported under both conventions: Tandon's ≤ s stragglers and the official
//! simulator's < s. (b) The same schemes for real on the thread runtime: least-squares gradient
//! descent with n = 8 worker threads, injected sleeps from a fresh draw of the delay model (4 ms
//! per unit), the wait rule on measured arrival times (μ = 0.3), wall time per scheme; and the
//! same runs on n + 1 MPI processes (`mpirun … gradlab-mpi-check --timing`) where MPI and
//! gradlab-mpi-check are installed (otherwise a note says it was not run).
//! The card's threshold: M-SGC ≤ 0.9 × the best GC, under both conventions.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table, fmt_num};
use crate::plot::{Series, line_chart};
use gradlab_distributed::gradient_code::{Convention, GcScheme};
use gradlab_distributed::multiplexed::MSgc;
use gradlab_distributed::runtime::{RunConfig, ThreadTransport, run, synthetic_least_squares};
use gradlab_distributed::selective_repeat::SrSgc;
use gradlab_distributed::simulate::{Scheme, m_sgc_models, simulate, sr_sgc_models};
use gradlab_distributed::straggler::DelayModel;
use gradlab_distributed::timing::{SchemeSpec, TimedScheme, TimingResult, TimingSpec};
use std::path::PathBuf;
use std::time::Duration;

/// The experiment.
pub struct GradientCoding;

const INFO: PaperInfo = PaperInfo {
    id: "gradient-coding",
    arxiv: "2211.13802",
    module: "gradlab_distributed::{gradient_code, selective_repeat, multiplexed, simulate, runtime}",
    claim: "Multiplexed sequential gradient coding (M-SGC), which codes across rounds for bursty stragglers, reduces total training runtime against the classic gradient code at matched load (16% on 256 AWS Lambda workers).",
};

fn delay_model(n: usize) -> DelayModel {
    DelayModel { n, sigma: 0.02, p_slow: 0.03, p_recover: 0.4, slowdown: 2.5, overhead: 4.0 }
}

/// The best run of each scheme family over GC's s (and SGC's parameters at matched load).
struct Best {
    name: String,
    total: f64,
    waited: usize,
    recoveries: usize,
}

/// (a): per scheme family, the least total runtime of `jobs` jobs and its parameters.
fn search(n: usize, jobs: usize, mu: f64, s_max: usize, w_max: usize, seed: u64) -> Result<Vec<Best>> {
    let dm = delay_model(n);
    let delays = dm.sample(jobs + 2 * w_max + 2, seed)?;
    let mut best: Vec<Best> = ["uncoded", "GC (≤ s)", "GC (< s, official)", "SR-SGC", "M-SGC"].iter().map(|k| Best { name: k.to_string(), total: f64::INFINITY, waited: 0, recoveries: 0 }).collect();
    let mut consider = |slot: usize, scheme: &dyn Scheme, factor: f64| -> Result<()> {
        let run = simulate(scheme, &delays, factor, mu, jobs)?;
        if run.total() < best[slot].total {
            best[slot] = Best { name: scheme.name(), total: run.total(), waited: run.waited_for_all, recoveries: run.recoveries };
        }
        Ok(())
    };
    consider(0, &GcScheme::new(n, 0, Convention::Tandon, seed)?, dm.load_factor(1.0 / n as f64))?;
    for s in 1..=s_max.min(n - 1) {
        let factor = dm.load_factor((s + 1) as f64 / n as f64);
        consider(1, &GcScheme::new(n, s, Convention::Tandon, seed)?, factor)?;
        consider(2, &GcScheme::new(n, s, Convention::Official, seed)?, factor)?;
        for m in sr_sgc_models(n, s, w_max) {
            consider(3, &SrSgc::new(n, m, seed)?, factor)?;
        }
        for m in m_sgc_models(n, s, w_max) {
            consider(4, &MSgc::new(n, m, seed)?, factor)?;
        }
    }
    Ok(best)
}

/// The least-squares problem of (b): rows and features.
const ROWS: usize = 480;
const DIM: usize = 4;

/// `gradlab-mpi-check` (built with `--features mpi`): `$GRADLAB_MPI_CHECK`, or beside this program
/// (or one folder up, for test binaries in target/*/deps).
fn mpi_check_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GRADLAB_MPI_CHECK") {
        return Some(PathBuf::from(p));
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("gradlab-mpi-check"), dir.parent()?.join("gradlab-mpi-check")].into_iter().find(|p| p.is_file())
}

/// `mpirun` on the PATH.
fn mpirun() -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("mpirun")).find(|p| p.is_file())
}

/// (b) on MPI processes: `mpirun -n (n + 1) gradlab-mpi-check --timing SPEC`; the
/// reason when MPI or the check binary is not installed (`Ok(Err(why))`); an error when the run fails.
fn mpi_run(spec: &TimingSpec, n: usize) -> std::result::Result<std::result::Result<Vec<TimingResult>, String>, String> {
    let (Some(bin), Some(mpirun)) = (mpi_check_binary(), mpirun()) else {
        return Ok(Err("not run: MPI is not installed here or gradlab-mpi-check is not built (apt-get install -y libopenmpi-dev openmpi-bin libclang-dev; cargo build --release -p gradlab-mpi --features mpi --bin gradlab-mpi-check)".into()));
    };
    // The spec and the output in files (a pipe that nobody reads while the run lasts could fill).
    let tmp = |what: &str| std::env::temp_dir().join(format!("gradlab-mpi-timing-{}.{what}", std::process::id()));
    let (file, stdout, stderr) = (tmp("json"), tmp("out"), tmp("err"));
    std::fs::write(&file, serde_json::to_string(spec).map_err(|e| e.to_string())?).map_err(|e| format!("{}: {e}", file.display()))?;
    let open = |p: &PathBuf| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let child = std::process::Command::new(&mpirun)
        .args(["--allow-run-as-root", "--oversubscribe", "--mca", "mpi_yield_when_idle", "1", "-n", &(n + 1).to_string()])
        .arg(&bin)
        .arg("--timing")
        .arg(&file)
        .stdout(open(&stdout)?)
        .stderr(open(&stderr)?)
        .spawn()
        .map_err(|e| format!("{}: {e}", mpirun.display()));
    let status = child.and_then(|c| wait_with_limit(c, Duration::from_secs(300)));
    let (out, err) = (std::fs::read_to_string(&stdout).unwrap_or_default(), std::fs::read_to_string(&stderr).unwrap_or_default());
    for f in [&file, &stdout, &stderr] {
        std::fs::remove_file(f).ok();
    }
    if !status?.success() {
        return Err(format!("mpirun {} --timing failed: {}", bin.display(), err.trim()));
    }
    let results: Vec<TimingResult> = out.lines().filter(|l| l.starts_with('{')).map(serde_json::from_str).collect::<std::result::Result<_, _>>().map_err(|e| format!("gradlab-mpi-check's output: {e}"))?;
    if results.len() != spec.schemes.len() {
        return Err(format!("gradlab-mpi-check reported {} of {} schemes", results.len(), spec.schemes.len()));
    }
    Ok(Ok(results))
}

/// The child's exit status, or an error (and the child killed) after `limit`.
fn wait_with_limit(mut child: std::process::Child, limit: Duration) -> std::result::Result<std::process::ExitStatus, String> {
    let t0 = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if t0.elapsed() > limit => {
                child.kill().ok();
                child.wait().ok();
                return Err(format!("the MPI run took longer than {limit:?} and was stopped"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// The injected delays of (b), in milliseconds: 4 ms per unit of a fresh draw of the delay model.
fn real_delays_ms(scheme: &dyn Scheme, jobs: usize, factor: f64, seed: u64) -> Result<Vec<Vec<f64>>> {
    let unit = delay_model(scheme.n()).sample(jobs + scheme.lag(), seed)?;
    Ok(unit.iter().map(|row| row.iter().map(|d| 4.0 * d * factor).collect()).collect())
}

/// (b): the scheme for real on threads; returns the wall time in seconds and rounds that waited.
fn real_run(scheme: &dyn Scheme, jobs: usize, factor: f64, seed: u64) -> Result<(f64, usize)> {
    let n = scheme.n();
    let delays = real_delays_ms(scheme, jobs, factor, seed)?.iter().map(|row| row.iter().map(|ms| Duration::from_secs_f64(ms / 1e3)).collect()).collect();
    let grad = synthetic_least_squares(scheme.partitions(), ROWS, DIM);
    let mut t = ThreadTransport::spawn(n, grad);
    let cfg = RunConfig { jobs, mu: 0.3, lr: 0.5, delays, deadline: Duration::from_secs(20) };
    let rep = run(&mut t, scheme, &[0.0; DIM], &cfg)?;
    Ok((rep.round_times.iter().map(Duration::as_secs_f64).sum(), rep.waited_for_all))
}

impl Experiment for GradientCoding {
    fn info(&self) -> PaperInfo {
        INFO
    }

    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // The simulation is deterministic; the thread run's wall time is a measurement.
        e.measured("n16.msgc_vs_gc");
        e.measured("n16.msgc_vs_gc_official");
        e.measured("threads.msgc_vs_gc");
        e.above("n16.uncoded_total", 0.0);
        e.figures(&["runtime.png"]);
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let (sizes, s_max, w_max): (&[usize], usize, usize) = if ctx.quick { (&[16], 4, 5) } else { (&[16, 32, 64], 6, 8) };
        let (jobs, mu) = (250, 0.1);
        let bar = ctx.progress_bar(sizes.len() as u64 + 4, "gradient coding: parameter search and thread runs");
        let mut table = Table::new(format!("(a) Simulated total runtime of {jobs} jobs (time units; a unit is one ordinary round at load 1/n), best over GC's s ≤ {s_max} and the SGC parameters of at most GC's load (W ≤ {w_max}), seed {}", ctx.seed), &["n", "scheme (best parameters)", "total runtime", "/ best GC (≤ s)", "rounds waiting for all", "jobs lost inside the model (recovered)"]);
        let mut curve: Vec<Series> = vec![];
        for &n in sizes {
            let best = search(n, jobs, mu, s_max, w_max, ctx.seed)?;
            let gc = best[1].total;
            for b in &best {
                table.row(vec![n.to_string(), b.name.clone(), fmt_num(b.total), format!("{:.3}", b.total / gc), b.waited.to_string(), b.recoveries.to_string()]);
            }
            let (msgc, gc_off, sr) = (best[4].total, best[2].total, best[3].total);
            out.metrics.insert(format!("n{n}.uncoded_total"), best[0].total);
            out.metrics.insert(format!("n{n}.srsgc_vs_gc"), sr / gc);
            out.checks.push(Check::new(format!("n{n}.msgc_vs_gc"), format!("n = {n}: M-SGC total runtime over the best GC, Tandon's ≤ s convention (the card's: ≤ 0.9)"), msgc / gc, Cmp::Le, 0.9));
            out.checks.push(Check::new(format!("n{n}.msgc_vs_gc_official"), format!("n = {n}: M-SGC total runtime over the best GC, the official simulator's < s convention (≤ 0.9)"), msgc / gc_off, Cmp::Le, 0.9));
            for (k, b) in best.iter().enumerate() {
                if let Some(s) = curve.get_mut(k) {
                    s.points.push((n as f64, b.total / gc));
                } else {
                    curve.push(Series { label: b.name.split('(').next().unwrap_or("").trim().to_string() + if k == 2 { " (official < s)" } else { "" }, points: vec![(n as f64, b.total / gc)] });
                }
            }
            bar.inc(1);
        }
        out.tables.push(table);
        line_chart(&ctx.out_dir.join("runtime.png"), "Simulated total runtime over the best GC (≤ s), by number of workers", "workers n", "runtime / best GC", &curve, &[("0.9 (card)".into(), 0.9)])?;
        out.figures.push("runtime.png".into());

        // (b) For real, on threads: the simulator's best parameters at n = 8.
        let n = 8;
        let real_jobs = if ctx.quick { 30 } else { 100 };
        let best8 = search(n, 120, mu, 4, 5, ctx.seed)?;
        let gc_s: usize = best8[1].name.trim_start_matches("GC(s = ").trim_end_matches(')').parse().unwrap_or(1);
        let parse = |name: &str| -> Option<(usize, usize, usize)> {
            let nums: Vec<usize> = name.split(|c: char| !c.is_ascii_digit()).filter(|t| !t.is_empty()).filter_map(|t| t.parse().ok()).collect();
            (nums.len() >= 3).then(|| (nums[0], nums[1], nums[2]))
        };
        let dm = delay_model(n);
        let factor = dm.load_factor((gc_s + 1) as f64 / n as f64);
        let mut real = Table::new(format!("(b) Least-squares gradient descent on the thread runtime, n = {n} workers, {real_jobs} jobs, injected delays 4 ms per unit from a fresh draw (seed {}), wait rule on measured arrivals (μ = 0.3): wall time (noisy: a shared machine)", ctx.seed + 1), &["scheme", "wall time (s)", "/ GC", "rounds waiting for all"]);
        let mut specs = vec![SchemeSpec::Gc { n, s: 0 }, SchemeSpec::Gc { n, s: gc_s }];
        if let Some((b, w, lambda)) = parse(&best8[3].name) {
            specs.push(SchemeSpec::SrSgc { n, b, w, lambda });
        }
        if let Some((b, w, lambda)) = parse(&best8[4].name) {
            specs.push(SchemeSpec::MSgc { n, b, w, lambda });
        }
        let mut times = vec![];
        let mut timed = vec![];
        for (k, spec) in specs.iter().enumerate() {
            let s = spec.build()?;
            let f = if k == 0 { 1.0 } else { factor };
            let (t, waited) = real_run(s.as_ref(), real_jobs, f, ctx.seed + 1)?;
            times.push((s.name(), t, waited));
            timed.push(TimedScheme { scheme: spec.clone(), delays_ms: real_delays_ms(s.as_ref(), real_jobs, f, ctx.seed + 1)? });
            bar.inc(1);
        }
        bar.finish_and_clear();
        let gc_t = times[1].1;
        for (name, t, waited) in &times {
            real.row(vec![name.clone(), format!("{t:.3}"), format!("{:.3}", t / gc_t), waited.to_string()]);
        }
        out.tables.push(real);
        let msgc_t = times.iter().find(|t| t.0.starts_with("M-SGC")).map_or(f64::NAN, |t| t.1);
        out.checks.push(Check::new("threads.msgc_vs_gc", "threads, n = 8: M-SGC wall time over GC's (≤ 0.9)", msgc_t / gc_t, Cmp::Le, 0.9));

        // (b) again on MPI processes, where MPI and gradlab-mpi-check are installed.
        let spec = TimingSpec { jobs: real_jobs, mu: 0.3, lr: 0.5, rows: ROWS, dim: DIM, deadline_s: 20.0, schemes: timed };
        let mpi_note = match mpi_run(&spec, n) {
            Ok(Ok(results)) => {
                let mut t = Table::new(format!("(b) The same runs on {} MPI processes (rank 0 the master; mpirun --oversubscribe on this machine's cores): wall time", n + 1), &["scheme", "wall time (s)", "/ GC", "rounds waiting for all"]);
                let gc = results[1].wall_s;
                for r in &results {
                    t.row(vec![r.name.clone(), format!("{:.3}", r.wall_s), format!("{:.3}", r.wall_s / gc), r.waited_for_all.to_string()]);
                }
                out.tables.push(t);
                let m = results.iter().find(|r| r.name.starts_with("M-SGC")).map_or(f64::NAN, |r| r.wall_s);
                out.metrics.insert("mpi.gc_wall_s".into(), gc);
                out.checks.push(Check::new("mpi.msgc_vs_gc", format!("MPI, {} processes: M-SGC wall time over GC's (≤ 0.9)", n + 1), m / gc, Cmp::Le, 0.9));
                "(b) also ran on MPI processes (table above).".to_string()
            }
            Ok(Err(why)) => format!("(b) on MPI processes: {why}."),
            Err(e) => {
                out.checks.push(Check::new("mpi.msgc_vs_gc", "MPI: M-SGC wall time over GC's (≤ 0.9); the MPI run failed", f64::NAN, Cmp::Le, 0.9));
                format!("(b) on MPI processes failed: {e}.")
            }
        };
        out.notes.push(mpi_note);
        out.notes.push("Delays: the official search gives every scheme GC(s)'s delay profile (the SGC parameters have at most GC's load); here a delay model replaces the AWS Lambda profiles. Jobs: each scheme completes the same 250 jobs, so SR-SGC and M-SGC run B and W − 2 + B more rounds (the official classes differ: GC and M-SGC run a fixed number of rounds, SR-SGC rounds + B). The official M-SGC ignores stragglers of the first W − 1 rounds when checking the model (a negative numpy slice); this applies the model's window from round 0. W is capped for time; the official searches W up to n. The real run uses the thread transport, and the MPI transport (gradlab-mpi) where gradlab-mpi-check is built; the MPI transport's decoding is checked by `gradlab-mpi-check` under mpirun.".into());
        Ok(out)
    }
}
