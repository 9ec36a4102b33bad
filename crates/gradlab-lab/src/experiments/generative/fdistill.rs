//! "One-step Diffusion Models with f-Divergence Distribution Matching" (f-distill;
//! [`gradlab_generative::fdistill`]): weighting DMD's score difference by h(r) of the density
//! ratio turns reverse KL (DMD2, mode-seeking) into a less mode-seeking divergence (KL,
//! Jensen–Shannon), and the one-step generator covers more of the data at similar quality.
//!
//! Here: an imbalanced 8-mode mixture on a circle (weights 0.5 … 0.02) under the VP process, its
//! exact teacher x̂₀ (no teacher error), and a one-step generator distilled with rKL, KL and JS at
//! identical settings and seeds: the official loop (student every 5th iteration; fake score
//! initialised from a network teacher and trained on the student's samples; discriminator on
//! (x_t, t) against real data; h from its logits, clipped and normalised per time bin; GAN weight
//! 1e-3; EDM's "polynomial" time draw mapped onto VP time). Measured per divergence: recall
//! (k-NN, k = 3), MMD², modes covered (a mode receives at least 5% of its expected mass),
//! the per-mode weight error Σ|ŵ_k − w_k| and the share of samples off every mode.

use crate::error::Result;
use crate::experiment::{Check, Cmp, Experiment, Outcome, PaperInfo, RunContext, Table, measure};
use crate::plot::{Series, line_chart, scatter_panels};
use gradlab_data::toy2d::Gmm2;
use gradlab_generative::fdistill::{
    Distilled, Divergence, FdistillSettings, KarrasTimes, distill, train_edm_denoiser,
};
use gradlab_generative::metrics::{MMD_BANDWIDTHS, mmd, mode_shares, recall};
use gradlab_generative::points::{from_pairs, pairs};
use gradlab_generative::process::Sde;
use gradlab_generative::score::GmmOracle;
use gradlab_generative::training::TrainSettings;

/// The experiment.
pub struct Fdistill;

const INFO: PaperInfo = PaperInfo {
    id: "f-distill",
    arxiv: "2502.15681",
    module: "gradlab_generative::fdistill",
    claim: "Weighting the distribution-matching gradient by h(r) of the density ratio (KL, Jensen–Shannon) makes a one-step generator cover more of the data than reverse KL (DMD2) at similar sample quality (FID 1.92 vs 2.13 on CIFAR-10).",
};

/// The mixture's weights (imbalanced, as the card asks).
const WEIGHTS: [f64; 8] = [0.5, 0.2, 0.1, 0.07, 0.05, 0.04, 0.02, 0.02];
/// Its modes' radius and spread.
const RADIUS: f64 = 2.0;
const STD: f64 = 0.25;
const DIVERGENCES: [&str; 3] = ["rkl", "kl", "js"];

fn mixture() -> Gmm2 {
    let means = (0..8)
        .map(|k| {
            let a = k as f64 * std::f64::consts::FRAC_PI_4;
            [RADIUS * a.cos(), RADIUS * a.sin()]
        })
        .collect();
    let covs = vec![[[STD * STD, 0.0], [0.0, STD * STD]]; 8];
    Gmm2::new(WEIGHTS.to_vec(), means, covs).expect("a valid mixture")
}

/// One generator's scores against the real sample.
#[derive(Debug, Clone, Default)]
struct Scores {
    recall: f64,
    mmd: f64,
    covered: f64,
    weight_error: f64,
    off: f64,
    shares: Vec<f64>,
}

fn score(real: &burn::prelude::Tensor<2>, generated: &burn::prelude::Tensor<2>, data: &Gmm2) -> Result<Scores> {
    let centres: Vec<Vec<f64>> = data.means().iter().map(|m| m.to_vec()).collect();
    let (shares, off) = mode_shares(generated, &centres, STD)?;
    Ok(Scores {
        recall: recall(real, generated, 3)?,
        mmd: mmd(real, generated, &MMD_BANDWIDTHS)?,
        covered: shares.iter().zip(WEIGHTS).filter(|(s, w)| **s >= 0.05 * w).count() as f64,
        weight_error: shares.iter().zip(WEIGHTS).map(|(s, w)| (s - w).abs()).sum(),
        off,
        shares,
    })
}

/// Pearson correlation of the discriminator's logit with the exact log p_t/q_t at points drawn
/// from q_t, at EDM noise level `sigma`: q_t is the generator's noised law, exact for its sample
/// (a mixture of N(α g_j, σ_t² I) over the generated points g_j), p_t the mixture's.
fn ratio_fidelity(run: &Distilled, oracle: &GmmOracle<Sde>, generated: &[(f64, f64)], sigma: f64, seed: u64) -> Result<f64> {
    use gradlab_generative::process::Process;
    use rand::{Rng, SeedableRng};
    let vp = Sde::vp();
    let t = gradlab_generative::sampling::grid::time_of_noise_level(&vp, sigma)?;
    let (a, s) = vp.marginal(t)?;
    let p = oracle.at(t)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = 500.min(generated.len());
    let mut normal = || rng.sample::<f64, _>(rand_distr::StandardNormal);
    let x: Vec<[f64; 2]> = generated[..n].iter().map(|g| [a * g.0 + s * normal(), a * g.1 + s * normal()]).collect();
    let log_q = |x: &[f64; 2]| {
        let terms: Vec<f64> = generated.iter().map(|g| -((x[0] - a * g.0).powi(2) + (x[1] - a * g.1).powi(2)) / (2.0 * s * s)).collect();
        gradlab_data::toy2d::log_sum_exp(&terms) - (generated.len() as f64).ln() - (2.0 * std::f64::consts::PI * s * s).ln()
    };
    let truth: Vec<f64> = x.iter().map(|x| p.log_density(*x) - log_q(x)).collect();
    let rows: Vec<f64> = x.iter().flatten().copied().collect();
    let est = run.log_ratio(gradlab_generative::points::from_rows(&rows, n, 2)?, &vec![t; n])?;
    Ok(pearson(&truth, &est))
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The EDM noise levels at which the discriminator's ratio is checked.
const RATIO_LEVELS: [f64; 3] = [0.1, 0.5, 2.0];

impl Experiment for Fdistill {
    fn expect_quick(&self, e: &mut crate::experiment::Expect<'_>) {
        // Every generator leaves its start (the teacher's one-step x̂₀, near the data mean) and
        // lands mostly on the modes.
        for d in DIVERGENCES {
            e.below(&format!("{d}.off_mode"), 0.5);
            e.above(&format!("{d}.recall"), 0.3);
        }
        for key in ["kl_recall_above_rkl", "js_recall_above_rkl", "kl_mmd_similar", "js_mmd_similar", "kl_covers_as_many_modes", "js_covers_as_many_modes"] {
            e.measured(key);
        }
        e.figures(&["samples.png", "mode_shares.png"]);
    }

    fn info(&self) -> PaperInfo {
        INFO
    }

    fn run(&self, ctx: &RunContext) -> Result<Outcome> {
        let mut out = Outcome::new(INFO, ctx);
        let data = mixture();
        let vp = Sde::vp();
        let oracle = GmmOracle::new(vp, data.clone())?;
        let times = KarrasTimes::official(&vp)?;
        let (teacher_steps, iterations, seeds) = if ctx.quick { (1500, 3000, 1) } else { (4000, 12000, 3) };
        let teacher_settings = TrainSettings { steps: teacher_steps, batch: 256, lr: 1e-3, hidden: 64, layers: 3, seed: ctx.seed };
        let spinner = crate::experiment::progress_spinner(ctx.progress, "training the network teacher (the student's and fake score's start)".into());
        let sample_data = |n: usize, seed: u64| from_pairs(&data.sample(n, seed));
        let (teacher, _) = train_edm_denoiser(&vp, 2, 1.5, &times, sample_data, &teacher_settings)?;
        spinner.finish_and_clear();
        let eval_n = if ctx.quick { 2000 } else { 4000 };
        let real = from_pairs(&data.sample(eval_n, ctx.seed ^ 0xE7A1));
        let bar = ctx.progress_bar((DIVERGENCES.len() * seeds) as u64, "distilling");
        let mut scores: Vec<Vec<Scores>> = vec![vec![]; DIVERGENCES.len()];
        let mut seconds = vec![0.0; DIVERGENCES.len()];
        let mut panels = vec![("data".to_string(), pairs(&real)?)];
        let mut fidelity = vec![vec![]; DIVERGENCES.len()];
        for seed in 0..seeds as u64 {
            for (i, name) in DIVERGENCES.iter().enumerate() {
                let settings = FdistillSettings {
                    divergence: Divergence::parse(name)?,
                    iterations,
                    batch: 128,
                    lr: 1e-3,
                    disc_hidden: 64,
                    edm_weighted_fake_loss: true,
                    seed: ctx.seed.wrapping_add(seed),
                    ..FdistillSettings::default()
                };
                let (run, cost) = measure(|| {
                    distill(&teacher, |x, t| oracle.denoised_rows(x, t), &vp, &times, sample_data, &settings)
                });
                let run: Distilled = run?;
                seconds[i] += cost.seconds / seeds as f64;
                let g = run.sample(eval_n, &vp, ctx.seed ^ 0x5A3 ^ seed)?;
                scores[i].push(score(&real, &g, &data)?);
                if seed == 0 {
                    let points = pairs(&g)?;
                    for sigma in RATIO_LEVELS {
                        fidelity[i].push(ratio_fidelity(&run, &oracle, &points, sigma, ctx.seed ^ 0x12A)?);
                    }
                    panels.push((format!("{name} (seed 0)"), points));
                }
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let mean = |i: usize, f: fn(&Scores) -> f64| scores[i].iter().map(f).sum::<f64>() / scores[i].len() as f64;
        let mut table = Table::new(
            format!("Imbalanced 8-mode mixture (weights {WEIGHTS:?}, std {STD}), exact teacher; MLP 3×64 generator, fake score and discriminator; {iterations} iterations (student every 5th), batch 128; mean over {seeds} seed(s), {eval_n} samples"),
            &["divergence", "recall (k = 3)", "MMD²", "modes covered (of 8)", "weight error Σ|ŵ−w|", "off-mode share", "seconds"],
        );
        for (i, name) in DIVERGENCES.iter().enumerate() {
            let (r, m, c, w, o) = (mean(i, |s| s.recall), mean(i, |s| s.mmd), mean(i, |s| s.covered), mean(i, |s| s.weight_error), mean(i, |s| s.off));
            for (k, v) in [("recall", r), ("mmd", m), ("modes_covered", c), ("weight_error", w), ("off_mode", o), ("seconds", seconds[i])] {
                out.metrics.insert(format!("{name}.{k}"), v);
            }
            let spread = |f: fn(&Scores) -> f64| {
                let v: Vec<f64> = scores[i].iter().map(f).collect();
                if v.len() > 1 { format!(" [{:.3}, {:.3}]", v.iter().cloned().fold(f64::INFINITY, f64::min), v.iter().cloned().fold(f64::NEG_INFINITY, f64::max)) } else { String::new() }
            };
            table.row(vec![
                name.to_string(),
                format!("{r:.3}{}", spread(|s| s.recall)),
                format!("{m:.4}{}", spread(|s| s.mmd)),
                format!("{c:.2}"),
                format!("{w:.3}"),
                format!("{o:.3}"),
                format!("{:.1}", seconds[i]),
            ]);
        }
        out.tables.push(table);
        let mut ratio_table = Table::new(
            "The discriminator's log r against the exact log p_t/q_t at points from q_t (q_t exact for the generated sample, p_t the mixture's): Pearson correlation per EDM noise level, seed 0",
            &["divergence", "σ = 0.1", "σ = 0.5", "σ = 2"],
        );
        for (i, name) in DIVERGENCES.iter().enumerate() {
            out.metrics.insert(format!("{name}.ratio_correlation"), fidelity[i].iter().sum::<f64>() / fidelity[i].len() as f64);
            let mut row = vec![name.to_string()];
            row.extend(fidelity[i].iter().map(|c| format!("{c:.3}")));
            ratio_table.row(row);
        }
        out.tables.push(ratio_table);
        let m = |d: &str, k: &str| out.metrics[&format!("{d}.{k}")];
        let mut checks = vec![];
        for d in ["kl", "js"] {
            let upper = d.to_uppercase();
            checks.push(Check::new(format!("{d}_recall_above_rkl"), format!("{upper} recall minus rKL recall (the card's ≥ 0.05)"), m(d, "recall") - m("rkl", "recall"), Cmp::Ge, 0.05));
            checks.push(Check::new(format!("{d}_covers_as_many_modes"), format!("{upper} modes covered minus rKL's (≥ 0)"), m(d, "modes_covered") - m("rkl", "modes_covered"), Cmp::Ge, 0.0));
            checks.push(Check::new(format!("{d}_mmd_similar"), format!("{upper} MMD² over rKL's (the card's ≤ 1.1)"), m(d, "mmd") / m("rkl", "mmd").max(1e-12), Cmp::Le, 1.1));
        }
        out.checks.extend(checks);
        scatter_panels(&ctx.out_dir.join("samples.png"), &panels, 2, (-3.5, 3.5))?;
        out.figures.push("samples.png".into());
        let mut series = vec![Series::indexed("data weight", &WEIGHTS)];
        for (i, name) in DIVERGENCES.iter().enumerate() {
            let k = scores[i][0].shares.len();
            let avg: Vec<f64> = (0..k).map(|j| scores[i].iter().map(|s| s.shares[j]).sum::<f64>() / scores[i].len() as f64).collect();
            series.push(Series::indexed(*name, &avg));
        }
        line_chart(&ctx.out_dir.join("mode_shares.png"), "Share of one-step samples at each mode (modes by decreasing weight)", "mode", "share", &series, &[])?;
        out.figures.push("mode_shares.png".into());
        out.notes.push("The paper's CIFAR-10 and ImageNet-64 EDM teachers are out of reach; a 2D mixture with an exact teacher keeps what the claim is about, the weighting's effect on mode coverage, without teacher error. The fake score is trained with EDM's 1/c_out² weighting rather than the official plain x̂₀ MSE: with the plain loss its error at low noise is barely penalised, and after normalisation by w = 1/mean|G − x̂₀| that error dominates the student's gradient here (measured while developing the loop: off-mode share 44–63% after 4,000 iterations against 27–29% weighted).".into());
        Ok(out)
    }
}
