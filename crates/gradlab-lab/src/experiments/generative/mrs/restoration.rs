//! Part 2 of `mrs`: a trained restoration model. 8×8 digits (pixels in [0, 1]) degraded by a
//! 3×3 binomial blur and Gaussian noise (σ = 0.1) give μ; a conditional ε-network
//! ([`CondTimeMlp`] on [y_t, μ, t]) is trained under the IR-SDE on y₀ = x₀ − μ, as the official
//! `fit_target: noise`. Each held-out digit is restored once per sampler (x = clip(μ + y, 0, 1), as
//! the official code clips) and scored by PSNR against the clean digit; Euler–Maruyama at 100
//! steps (the official `euler.yml`) is the reference.

use crate::error::{LabError, Result};
use crate::experiment::{Check, Cmp, Cost, Outcome, RunContext, Table, measure};
use crate::plot::image_grid;
use burn::prelude::*;
use super::super::degraded_digits::{Degradation, batches, degrade, first_images, mse, psnr, split};
use gradlab_generative::conditional::{CondScore, train_conditional_eps};
use gradlab_generative::points::{Rows, from_rows};
use gradlab_generative::process::MeanReverting;
use gradlab_generative::sampling::mrs::{Mrs, Param, Schedule, Solver};
use gradlab_generative::sampling::{Noise, Unobserved, euler_maruyama, grid, prior};
use gradlab_generative::score::Counted;
use gradlab_generative::training::TrainSettings;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::time::Instant;

const DEGRADE: Degradation = Degradation::BlurNoise(0.1);

/// Train, restore the test digits with every sampler, and add the results to `out`.
pub(super) fn run(ctx: &RunContext, out: &mut Outcome) -> Result<()> {
    let (train, test) = split()?;
    let settings = TrainSettings {
        steps: if ctx.quick { 2000 } else { 8000 },
        batch: 128,
        lr: 2e-3,
        hidden: 256,
        layers: 2,
        seed: ctx.seed,
    };
    let process = MeanReverting::official();
    let spinner = crate::experiment::progress_spinner(ctx.progress, "training the restoration model".into());
    // y₀ = x₀ − μ, condition μ.
    let pairs = batches(&train, DEGRADE, |clean, bad| (clean - bad, bad));
    let start = Instant::now();
    let (net, losses) = train_conditional_eps(process.clone(), 64, 64, pairs, &settings)?;
    let train_seconds = start.elapsed().as_secs_f64();
    spinner.finish_and_clear();
    let n = test.len();
    let idx: Vec<usize> = (0..n).collect();
    let (clean, bad) = degrade(&test, &idx, DEGRADE, &mut StdRng::seed_from_u64(ctx.seed ^ 0x7E57));
    let mu = from_rows(&bad, n, 64)?;
    let model = CondScore::new(&net, process.clone(), mu.clone())?;
    let input_mse = mse(&bad, &clean);
    let mut table = Table::new(
        format!(
            "Restoring {n} held-out digits ({}); conditional MLP {}×{}, {} Adam steps ({train_seconds:.1} s, final loss {:.3}); PSNR of clip(x, 0, 1)",
            DEGRADE.name(),
            settings.layers,
            settings.hidden,
            settings.steps,
            losses.last().copied().unwrap_or(f64::NAN)
        ),
        &["sampler", "NFE", "PSNR (dB)", "gain over input (dB)", "seconds", "peak heap"],
    );
    table.row(vec!["degraded input".into(), "—".into(), format!("{:.2}", psnr(input_mse)), "0".into(), "—".into()]);
    let ode2 = Mrs::official_ode();
    let sde2 = Mrs::official_sde();
    let sde2_noise = Mrs { param: Param::Noise, ..sde2 };
    let ode1 = Mrs::new(Solver::Ode, 1, Param::Data, Schedule::Linspace)?;
    type Job<'a> = (String, String, usize, Box<dyn Fn(&Counted<&CondScore<'a, MeanReverting>>, Tensor<2>, &mut Noise) -> gradlab_generative::Result<Tensor<2>> + 'a>);
    let p = &process;
    let mut jobs: Vec<Job<'_>> = vec![];
    let em = grid::chain(100, 0.01);
    jobs.push((
        "em100".into(),
        "Euler–Maruyama 100".into(),
        100,
        Box::new(move |m, y, noise| euler_maruyama(m, p, y, &em, noise, &mut Unobserved)),
    ));
    for (mrs, nfes) in [(sde2, vec![5usize, 10, 20]), (ode2, vec![5, 10, 20]), (sde2_noise, vec![5, 10]), (ode1, vec![10])] {
        for nfe in nfes {
            jobs.push((format!("{}.nfe{nfe}", mrs.name()), format!("MRS {}", mrs.name()), nfe, Box::new(move |m, y, noise| mrs.sample(m, p, y, nfe, noise, &mut Unobserved))));
        }
    }
    let bar = ctx.progress_bar(jobs.len() as u64, "restoring digits");
    let mut psnrs = std::collections::BTreeMap::new();
    let mut shown = vec![];
    let show = 8.min(n);
    let pick = |v: &[f64]| first_images(v, show);
    shown.extend(pick(&clean));
    shown.extend(pick(&bad));
    for (key, name, nfe, job) in &jobs {
        let mut noise = Noise::new(ctx.seed ^ 0x5A3);
        let y = prior(&process, [n, 64], &mut noise, &Device::flex());
        let counted = Counted::new(&model);
        let (result, cost) = measure(|| job(&counted, y, &mut noise));
        let Cost { seconds, peak_bytes } = cost;
        let (db, cell) = match result {
            Ok(y) => {
                if counted.calls() != *nfe {
                    return Err(LabError::Invalid(format!("{name} used {} evaluations for NFE {nfe}", counted.calls())));
                }
                let y = Rows::of(&y)?;
                let x: Vec<f64> = y.data.iter().zip(&bad).map(|(a, b)| a + b).collect();
                if key == "em100" || key == "SDE-2 data.nfe10" || key == "SDE-2 noise.nfe5" {
                    shown.extend(pick(&x));
                }
                let db = psnr(mse(&x, &clean));
                (db, format!("{db:.2}"))
            }
            Err(gradlab_generative::GenError::NonFinite { .. }) => (f64::NEG_INFINITY, "blew up".into()),
            Err(e) => return Err(e.into()),
        };
        out.metrics.insert(format!("restoration.{key}.psnr"), db);
        out.metrics.insert(format!("restoration.{key}.psnr_gain"), db - psnr(input_mse));
        out.metrics.insert(format!("restoration.{key}.seconds"), seconds);
        out.metrics.insert(format!("restoration.{key}.peak_bytes"), peak_bytes);
        table.row(vec![name.clone(), nfe.to_string(), cell, format!("{:+.2}", db - psnr(input_mse)), format!("{seconds:.2}"), cost.heap()]);
        psnrs.insert(key.clone(), db);
        bar.inc(1);
    }
    bar.finish_and_clear();
    out.metrics.insert("restoration.input.psnr".into(), psnr(input_mse));
    out.tables.push(table);
    out.checks.push(Check::new(
        "restoration.mrs10_matches_em100",
        "Digits: PSNR lost by MRS SDE-2 (data, test.yml) in 10 NFE against Euler–Maruyama in 100 (dB; 0.5 allowed)",
        psnrs["em100"] - psnrs["SDE-2 data.nfe10"],
        Cmp::Le,
        0.5,
    ));
    out.checks.push(Check::new(
        "restoration.data_stable_at_5",
        "Digits: PSNR of the data over the noise parameterisation at 5 NFE (MRS SDE-2; dB, > 0)",
        psnrs["SDE-2 data.nfe5"] - psnrs["SDE-2 noise.nfe5"],
        Cmp::Gt,
        0.0,
    ));
    image_grid(&ctx.out_dir.join("restoration.png"), &shown, 8, 8, show, 6)?;
    out.figures.push("restoration.png".into());
    out.notes.push(format!("restoration.png, one row each: clean, degraded ({}), Euler–Maruyama 100, MRS SDE-2 data 10 NFE, MRS SDE-2 noise 5 NFE.", DEGRADE.name()));
    Ok(())
}
