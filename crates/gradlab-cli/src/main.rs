//! `gradlab`: the papers' claims, checked; their methods, usable.
//!
//! One file per command in [`commands`]; with `--json`, stdout carries one JSON document and
//! nothing else; progress goes to stderr.

use clap::{Parser, Subcommand};

/// `println!` that returns an error instead of panicking when stdout cannot be written (a full
/// disk, a closed pipe).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout(), $($arg)*)?
    }};
}

/// `print!` with the same behaviour.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout(), $($arg)*)?
    }};
}

mod commands;

#[derive(Parser)]
#[command(
    name = "gradlab",
    version,
    about = "Methods of recent papers on gradients, implemented, checked and reproduced"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every seed paper, its experiment id and status.
    List(commands::list::Args),
    /// Run one paper's experiment: a table on stdout, figures and result.json in --out.
    Run(commands::run::Args),
    /// Run every experiment (or those named by --only) and write index.html and RESULTS.md.
    Reproduce(commands::reproduce::Args),
    /// Merge the result.json of earlier runs into a RESULTS.md.
    Results(commands::results::Args),
    /// Train a generative model on 2D data or an image set, sample it and plot the samples next
    /// to the data (2D) or as an image grid.
    Sample(commands::sample::Args),
    /// Enhance a noisy mono WAV file with a trained SGMSE+ model (from `gradlab run sgmse`).
    Enhance(commands::enhance::Args),
    /// Draw a saliency heat map (NormGrad, Grad-CAM, gradient) over a grayscale PNG with a trained
    /// saliency CNN (from `gradlab run normgrad`).
    Saliency(commands::saliency::Args),
    /// Solve a sparse SPD system (Matrix Market, or a generated Poisson grid) with CG, Jacobi-PCG
    /// or DCDM (a network from `gradlab run dcdm`).
    Solve(commands::solve::Args),
    /// Train a classifier on an image set.
    Train(commands::train::Args),
    /// Run an optimizer on a test function and print its trajectory.
    Optimize(commands::optimize::Args),
    /// Hessian of a classifier's training loss: top eigenvalues (Lanczos), trace (Hutchinson)
    /// and, with --density, the spectral density (SLQ) as a plot.
    Hessian(commands::hessian::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List(a) => commands::list::run(a),
        Command::Run(a) => commands::run::run(a),
        Command::Reproduce(a) => commands::reproduce::run(a),
        Command::Results(a) => commands::results::run(a),
        Command::Sample(a) => commands::sample::run(a),
        Command::Enhance(a) => commands::enhance::run(a),
        Command::Saliency(a) => commands::saliency::run(a),
        Command::Solve(a) => commands::solve::run(a),
        Command::Train(a) => commands::train::run(a),
        Command::Optimize(a) => commands::optimize::run(a),
        Command::Hessian(a) => commands::hessian::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
