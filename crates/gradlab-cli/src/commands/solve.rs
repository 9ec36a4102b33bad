//! `gradlab solve`: solve a user's sparse SPD system with CG, Jacobi-PCG or DCDM.
//!
//! The system is a Matrix Market file (`--matrix A.mtx`, coordinate, real or integer, general or
//! symmetric) with a right-hand side (`--rhs b.txt`: one number per line, or a one-column Matrix
//! Market array), or a generated 2-D Poisson system (`--poisson N [--disc]`, right-hand side of
//! ones unless `--rhs` is given). DCDM needs a network trained by `gradlab run dcdm` (its
//! `model/` folder) and reads the unknowns as an N × N grid image (N even): a Matrix Market system
//! must then have N² unknowns in row-major grid order. Malformed files are errors naming the line;
//! a non-SPD matrix is refused (asymmetry or a non-positive diagonal up front, pᵀAp ≤ 0 while
//! solving). The solution is written with `--out x.txt` (atomically; `--force` to replace).

use anyhow::{Context, Result, bail};
use gradlab_core::solve::{Control, Iteration, Observer, solve};
use gradlab_solvers::cg::Cg;
use gradlab_solvers::dcdm::Dcdm;
use gradlab_solvers::dcdm_net::{NetDirections, load_model};
use gradlab_solvers::poisson::Poisson;
use gradlab_solvers::{System, mtx};
use gradlab_train::output::check_output_file;
use std::path::PathBuf;
use std::time::Instant;

/// The solvers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Conjugate gradients.
    Cg,
    /// Jacobi-preconditioned conjugate gradients.
    Pcg,
    /// The deep conjugate direction method with a trained network (--model).
    Dcdm,
}

/// The arguments of `gradlab solve`.
#[derive(clap::Args)]
pub struct Args {
    /// The matrix, a Matrix Market file.
    #[arg(long, value_name = "MTX", conflicts_with = "poisson")]
    pub matrix: Option<PathBuf>,
    /// The right-hand side (plain numbers or a Matrix Market array).
    #[arg(long, value_name = "FILE")]
    pub rhs: Option<PathBuf>,
    /// Generate the N × N Poisson system (Dirichlet boundaries) instead of reading one.
    #[arg(long, value_name = "N")]
    pub poisson: Option<usize>,
    /// With --poisson: a solid disc in the middle (Neumann walls).
    #[arg(long, requires = "poisson")]
    pub disc: bool,
    /// The solver.
    #[arg(long, value_enum, default_value_t = Method::Cg)]
    pub method: Method,
    /// DCDM's network (the `model/` folder written by `gradlab run dcdm`).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Stop at ‖r‖ ≤ tol·‖b‖.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// At most this many iterations.
    #[arg(long, default_value_t = 10_000)]
    pub max_iters: usize,
    /// Write the solution here (one value per line).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON document (with the residual history) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Records ‖r‖ per iteration.
struct History(Vec<f64>);

impl Observer for History {
    fn observe(&mut self, it: &Iteration<'_>) -> Control {
        self.0.push(it.grad_norm.unwrap_or(f64::NAN));
        Control::Continue
    }
}

/// Check everything, solve, report.
pub fn run(args: Args) -> Result<()> {
    if !(args.tol > 0.0 && args.tol < 1.0) {
        bail!("--tol must lie in (0, 1), got {}", args.tol);
    }
    if args.max_iters == 0 {
        bail!("--max-iters must be positive");
    }
    if let Some(out) = &args.out {
        check_output_file(out, &["txt", "csv", "dat"])?;
        if out.exists() && !args.force {
            bail!("{} exists; pass --force to replace it", out.display());
        }
    }
    if args.method == Method::Dcdm && args.model.is_none() {
        bail!(
            "--method dcdm needs --model DIR (a network trained by `gradlab run dcdm`, in its model/ folder)"
        );
    }
    let (a, grid) = match (&args.matrix, args.poisson) {
        (Some(path), None) => (mtx::read_matrix(path)?, None),
        (None, Some(n)) => {
            if !(2..=2048).contains(&n) {
                bail!("--poisson must lie in 2..=2048, got {n}");
            }
            let g = if args.disc {
                Poisson::with_disc(n, 0.5, 0.5, 0.2)?
            } else {
                Poisson::square(n)?
            };
            (g.a.clone(), Some(g))
        }
        _ => bail!(
            "give the system with --matrix A.mtx --rhs b.txt, or generate one with --poisson N"
        ),
    };
    a.check_spd_shape()?;
    let b = match &args.rhs {
        Some(path) => mtx::read_vector(path)?,
        None if grid.is_some() => vec![1.0; a.n()],
        None => bail!("--matrix needs --rhs FILE"),
    };
    let sys = System::new(a, b).with_context(|| "the right-hand side does not fit the matrix")?;
    let x0 = vec![0.0; sys.a.n()];
    let mut hist = History(vec![]);
    let start = Instant::now();
    let (x, rep) = match args.method {
        Method::Cg | Method::Pcg => {
            let (st, rep) = solve(
                &mut Cg::new(args.tol, args.method == Method::Pcg)?,
                &sys,
                &x0,
                args.max_iters,
                &mut hist,
            )?;
            (st.x, rep)
        }
        Method::Dcdm => {
            let net = load_model(args.model.as_deref().expect("checked above"))?;
            let grid = match grid {
                Some(g) => g,
                None => {
                    let n = (sys.a.n() as f64).sqrt().round() as usize;
                    if n * n != sys.a.n() {
                        bail!(
                            "DCDM reads the unknowns as an N × N grid image; this system has {} unknowns, not a square number",
                            sys.a.n()
                        );
                    }
                    Poisson::square(n)?
                }
            };
            let dirs = NetDirections::new(&net, &grid)?;
            let (st, rep) = solve(
                &mut Dcdm::new(&dirs, args.tol)?,
                &sys,
                &x0,
                args.max_iters,
                &mut hist,
            )?;
            (st.x, rep)
        }
    };
    let secs = start.elapsed().as_secs_f64();
    let rel = sys.residual_norm(&x) / gradlab_solvers::norm(&sys.b).max(f64::MIN_POSITIVE);
    if let Some(out) = &args.out {
        mtx::write_vector(out, &x)?;
    }
    if args.json {
        let doc = serde_json::json!({
            "method": format!("{:?}", args.method).to_lowercase(),
            "unknowns": sys.a.n(),
            "iterations": rep.iterations,
            "converged": rep.converged,
            "relative_residual": rel,
            "seconds": secs,
            "residual_history": hist.0,
        });
        outln!("{doc}");
    } else {
        outln!(
            "{:?}: {} unknowns, {} iterations, relative residual {rel:.3e}, {secs:.3} s{}",
            args.method,
            sys.a.n(),
            rep.iterations,
            if rep.converged {
                ""
            } else {
                " (NOT converged: --max-iters reached)"
            }
        );
        if let Some(out) = &args.out {
            outln!("solution written to {}", out.display());
        }
    }
    if !rep.converged {
        bail!(
            "the solver did not reach --tol {} within {} iterations",
            args.tol,
            args.max_iters
        );
    }
    Ok(())
}
