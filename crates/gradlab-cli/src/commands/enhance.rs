//! `gradlab enhance`: run a trained SGMSE+ model (saved by `gradlab run sgmse` in its output's
//! `model/` folder) on a user's noisy WAV file and write the enhanced WAV.
//!
//! The input must be mono at the model's sample rate (8 kHz for the experiment's model); a
//! missing, empty, corrupt or stereo file, or another rate, is a clear error before any work. The
//! output is written beside the target and renamed, so a failure never leaves a partial file; an
//! existing output is replaced only with `--force`.

use anyhow::{Result, bail};
use gradlab_audio::wav::{Audio, read_wav, write_wav};
use gradlab_generative::sgmse::load_enhancer;
use gradlab_train::output::check_output_file;
use std::path::PathBuf;

/// The longest input enhanced at once (its spectrogram's activations take about 10 MB a second).
const MAX_SECONDS: f64 = 120.0;

/// The arguments of `gradlab enhance`.
#[derive(clap::Args)]
pub struct Args {
    /// The noisy mono WAV file.
    #[arg(long = "in", value_name = "WAV")]
    pub input: PathBuf,
    /// Where to write the enhanced WAV (16-bit PCM).
    #[arg(long, value_name = "WAV")]
    pub out: PathBuf,
    /// The model folder (`model/` in the output of `gradlab run sgmse`).
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Reverse steps N (default: the model's, 30 for denoising); NFE = 2N. At most 1,000.
    #[arg(long)]
    pub steps: Option<usize>,
    /// The corrector's r (default: the model's, 0.5 for denoising).
    #[arg(long)]
    pub snr: Option<f64>,
    /// Seed of the sampler's noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// Check everything, enhance, write.
pub fn run(args: Args) -> Result<()> {
    check_output_file(&args.out, &["wav"])?;
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to replace it", args.out.display());
    }
    if same_file(&args.input, &args.out) {
        bail!("--in and --out name the same file; write the result elsewhere");
    }
    let (enhancer, card) = load_enhancer(&args.model)?;
    let mut sampler = card.sampler();
    if let Some(n) = args.steps {
        if !(2..=1000).contains(&n) {
            bail!("--steps must lie in 2..=1000, got {n}");
        }
        sampler.steps = n;
    }
    if let Some(r) = args.snr {
        if !(0.0..=10.0).contains(&r) {
            bail!("--snr must lie in [0, 10], got {r}");
        }
        sampler.snr = r;
    }
    let noisy = read_wav(&args.input)?;
    let seconds = noisy.samples.len() as f64 / noisy.rate as f64;
    if seconds > MAX_SECONDS {
        bail!(
            "{}: {seconds:.0} s is longer than the {MAX_SECONDS} s this command enhances at once (the whole spectrogram goes through the network together); cut it first, e.g. `sox in.wav part.wav trim 0 {MAX_SECONDS}`",
            args.input.display()
        );
    }
    let spinner = indicatif::ProgressBar::new_spinner().with_message(format!(
        "enhancing {seconds:.1} s with {} score evaluations",
        sampler.nfe()
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let clean = enhancer.enhance(&noisy, &sampler, args.seed);
    spinner.finish_and_clear();
    let clean = clean?;
    write_wav(
        &args.out,
        &Audio {
            rate: noisy.rate,
            samples: clean,
        },
    )?;
    outln!(
        "enhanced {} ({seconds:.2} s at {} Hz, {} model, N = {}, r = {}, NFE {}) → {}",
        args.input.display(),
        noisy.rate,
        card.task,
        sampler.steps,
        sampler.snr,
        sampler.nfe(),
        args.out.display()
    );
    Ok(())
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}
