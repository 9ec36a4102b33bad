//! DoCo (Wu et al., "Unlearning Concepts in Diffusion Model via Concept Domain Correction and
//! Concept Preserving Gradient", AAAI 2025), as yongliang-wu/DoCo has it (`train.py`,
//! `gradient_clip.py::adjust_gradient`), for class-conditional ε-models ([`CondEps`] reading a
//! class embedding): a "concept" is a class, its "prompt embedding" the condition vector.
//!
//! - **Trainable part**: a projection P of the condition (c ↦ cP, P = I at the start), shared by
//!   every class as the official `attn2.to_k`/`to_v` are by every prompt; the network is frozen.
//! - **Concept-domain correction**: on x_t of the target class's data, the model with the target
//!   condition gives x̂₀; a frozen copy with the anchor condition gives the anchor's x̂₀ on the same
//!   x_t. A discriminator (BCE with logits, Adam betas (0.5, 0.999)) learns anchor → 0, target → 1
//!   every step; after the warm-up (steps > warm-up, as the official `global_step > warm_up`) the
//!   model minimises BCE(D(x̂₀), 0) = softplus(D(x̂₀)). As in the official loop, that generator
//!   loss's gradient also reaches the discriminator, whose optimizer is zeroed only after its own
//!   step: after the warm-up D descends loss_D + softplus(D(x̂₀)).
//! - Differences: Adam without weight decay for P (the official AdamW's decay 1e-2 at its lr
//!   4.8e-5 shrinks the weights by ~0.1% over a run; at the lr needed here it would shrink P by
//!   tens of percent), and continuous t ∈ [1e-3, 1] (the official draws one of 1,000 levels).
//! - **Preservation**: the prior loss ‖ε̂(x_t, c_prior P) − z‖² (mean) on the other classes.
//! - **Concept-preserving gradient** ([`preserve_gradient`]), exactly as applied by the official
//!   code: g_p = ∇ prior loss, clipped to global norm 1; g_u = ∇ adversarial loss, clipped to 1;
//!   per tensor, cos = ĝ_u·ĝ_p (each normalised with 1e−8), and if cos < 0, g_u ← g_u − λ·cos·ĝ_p.
//!   **Only g_u is applied**: the prior loss sets the direction, it is not added. Since
//!   (g_u − λ cos ĝ_p)·ĝ_p = cos(‖g_u‖ − λ), the applied gradient never opposes the preservation
//!   gradient when ‖g_u‖ ≤ λ — which the clip to 1 guarantees for λ = 1.
//! - Without the surgery: loss = adversarial + w·prior·0.1 (the official `prior_loss_weight` ×
//!   0.1), clipped to norm 1.
//!
//! ```
//! use gradlab_generative::unlearning::{clip_global_norm, preserve_gradient};
//! let mut g_u = vec![vec![-3.0, 4.0]];
//! let g_p = vec![vec![1.0, 0.0]];
//! clip_global_norm(&mut g_u, 1.0);                  // ‖g_u‖ = 1
//! preserve_gradient(&mut g_u, &g_p, 1.0).unwrap();
//! assert!(g_u[0][0] >= -1e-12);                      // no longer opposes g_p
//! ```

use crate::conditional::{CondEps, input_scale_of};
use crate::process::Process;
use crate::training::to_net_input;
use crate::{GenError, Result, invalid};
use burn::module::{Module, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::softplus;
use gradlab_nets::mlp::{Mlp, MlpConfig};
use gradlab_nets::{Activation, Net};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;

/// Scale `grads` (a list of tensors, flattened) to global norm at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` (coefficient max/(norm + 1e-6) when below 1). Returns the
/// norm before clipping.
pub fn clip_global_norm(grads: &mut [Vec<f64>], max_norm: f64) -> f64 {
    let norm = grads.iter().flatten().map(|v| v * v).sum::<f64>().sqrt();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        grads.iter_mut().flatten().for_each(|v| *v *= coef);
    }
    norm
}

/// The concept-preserving adjustment of `unlearn` given `preserve` (tensor by tensor, the same
/// shapes): where the two point apart (cos < 0), unlearn ← unlearn − λ·cos·preserve/‖preserve‖.
pub fn preserve_gradient(
    unlearn: &mut [Vec<f64>],
    preserve: &[Vec<f64>],
    lambda: f64,
) -> Result<()> {
    if unlearn.len() != preserve.len()
        || unlearn
            .iter()
            .zip(preserve)
            .any(|(a, b)| a.len() != b.len())
    {
        return invalid("the unlearning and preservation gradients differ in shape");
    }
    if !(lambda.is_finite() && lambda >= 0.0) {
        return invalid(format!("λ must be finite and ≥ 0, got {lambda}"));
    }
    for (u, p) in unlearn.iter_mut().zip(preserve) {
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let (nu, np) = (norm(u) + 1e-8, norm(p) + 1e-8);
        let cos: f64 = u.iter().zip(p).map(|(a, b)| (a / nu) * (b / np)).sum();
        if cos < 0.0 {
            for (a, b) in u.iter_mut().zip(p) {
                *a -= lambda * cos * b / np;
            }
        }
    }
    Ok(())
}

/// The trainable condition projection.
#[derive(Module, Debug)]
pub struct Projection {
    /// P (`[c, c]`).
    pub p: Param<Tensor<2>>,
}

/// DoCo's settings (the official defaults where they carry over; see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct DocoSettings {
    /// Updates of the projection.
    pub steps: usize,
    /// Discriminator-only steps first (official README runs: 1,000 of 2,000).
    pub warm_up: usize,
    /// Adam learning rate of the projection.
    pub lr: f64,
    /// Adam learning rate of the discriminator (betas 0.5, 0.999).
    pub dlr: f64,
    /// λ of the surgery.
    pub lambda: f64,
    /// Global-norm clip of each gradient (official 1).
    pub max_grad_norm: f64,
    /// Apply the concept-preserving gradient (else add the prior loss).
    pub surgery: bool,
    /// `prior_loss_weight` of the path without surgery (×0.1 as the official code).
    pub prior_loss_weight: f64,
    /// Examples per step, of the target class and of the preserved classes each.
    pub batch: usize,
    /// Hidden width of the discriminator MLP (two hidden layers).
    pub disc_hidden: usize,
    /// Seed of the batches, noise and discriminator.
    pub seed: u64,
}

impl Default for DocoSettings {
    fn default() -> Self {
        Self {
            steps: 400,
            warm_up: 100,
            lr: 1e-2,
            dlr: 1e-3,
            lambda: 1.0,
            max_grad_norm: 1.0,
            surgery: true,
            prior_loss_weight: 1.0,
            batch: 128,
            disc_hidden: 64,
            seed: 0,
        }
    }
}

/// The result: the learned projection (host, row-major `c × c`) and the per-step losses.
#[derive(Debug, Clone, PartialEq)]
pub struct Unlearned {
    /// P.
    pub projection: Vec<f64>,
    /// Generator adversarial loss per step after the warm-up.
    pub adversarial: Vec<f64>,
    /// Prior (preservation) loss per step.
    pub prior: Vec<f64>,
    /// With the surgery: steps at which the applied gradient still opposed the preservation
    /// gradient (g_u·g_p < 0; never while ‖g_u‖ ≤ λ). Not counted without the surgery.
    pub opposed: usize,
}

/// The condition `c` (`[n, k]`) through the projection and the frozen network: ε̂ at (x_t, t).
fn eps(model: &CondEps, x: Tensor<2>, c: Tensor<2>, t: Tensor<1>) -> Result<Tensor<2>> {
    model.net.try_forward(x, c, t).map_err(GenError::Invalid)
}

/// Unlearn class `target` of a class-conditional `model` (class k's condition: `embeddings[k]`)
/// towards `anchor`, preserving `keep`; `data(class, n, seed)` draws `[n, d]` host points of a
/// class. Returns the projection to apply to conditions (c ↦ cP).
#[allow(clippy::too_many_arguments)]
pub fn unlearn_class<P: Process>(
    model: &CondEps,
    process: &P,
    embeddings: &[Vec<f64>],
    target: usize,
    anchor: usize,
    keep: &[usize],
    mut data: impl FnMut(usize, usize, u64) -> Tensor<2>,
    settings: &DocoSettings,
) -> Result<Unlearned> {
    let classes = embeddings.len();
    let width = model.net.cond_dim();
    if embeddings
        .iter()
        .any(|e| e.len() != width || e.iter().any(|v| !v.is_finite()))
    {
        return invalid(format!(
            "class embeddings must be finite vectors of the model's condition width {width}"
        ));
    }
    if target >= classes
        || anchor >= classes
        || target == anchor
        || keep.iter().any(|k| *k >= classes || *k == target)
        || keep.is_empty()
    {
        return invalid(format!(
            "classes {target} → {anchor} keeping {keep:?} for {classes} class embeddings"
        ));
    }
    if settings.steps == 0
        || settings.batch == 0
        || !(settings.lr > 0.0 && settings.dlr > 0.0 && settings.max_grad_norm > 0.0)
    {
        return invalid("DoCo needs steps ≥ 1, batch ≥ 1 and positive learning rates and clip");
    }
    let dev = Device::flex().autodiff();
    let d = model.net.dim();
    let frozen = CondEps {
        net: model.net.clone().to_device(&dev),
        data_std: model.data_std,
    };
    let eye: Vec<f64> = (0..width * width)
        .map(|i| if i / width == i % width { 1.0 } else { 0.0 })
        .collect();
    let mut proj = Projection {
        p: Param::from_tensor(to_net_input(
            gradlab_core::bridge::from_host(&eye, [width, width], &Device::flex())?,
            &dev,
        )?),
    };
    let mut disc: Mlp = MlpConfig::new(vec![d, settings.disc_hidden, settings.disc_hidden, 1])
        .with_activation(Activation::Silu)
        .init(&dev, settings.seed ^ 0xD15C);
    let mut opt = AdamConfig::new().init();
    let mut opt_d = AdamConfig::new().with_beta_1(0.5).init();
    let mut rng = StdRng::seed_from_u64(settings.seed ^ 0xD0C0);
    let condition = |class: usize, n: usize| -> Tensor<2> {
        let v: Vec<f32> = (0..n)
            .flat_map(|_| embeddings[class].iter().map(|x| *x as f32))
            .collect();
        Tensor::from_data(TensorData::new(v, [n, width]), &dev)
    };
    let mut out = Unlearned {
        projection: vec![],
        adversarial: vec![],
        prior: vec![],
        opposed: 0,
    };
    let n = settings.batch;
    let noised = |x0: Tensor<2>, rng: &mut StdRng| -> Result<Noised> {
        let m = x0.dims()[0];
        let mut cols = [vec![], vec![], vec![], vec![]]; // α, σ, c_in, t
        for _ in 0..m {
            let t = 1e-3 + (1.0 - 1e-3) * rng.random::<f64>();
            let (a, s) = process.marginal(t)?;
            cols[0].push(a as f32);
            cols[1].push(s as f32);
            cols[2].push(input_scale_of(process, model.data_std, t)? as f32);
            cols[3].push(t as f32);
        }
        let col = |v: &[f32]| Tensor::<2>::from_data(TensorData::new(v.to_vec(), [m, 1]), &dev);
        let z: Vec<f32> = (0..m * d)
            .map(|_| rng.sample::<f32, _>(StandardNormal))
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(z, [m, d]), &dev);
        let (a, s) = (col(&cols[0]), col(&cols[1]));
        let xt = x0 * a.clone() + z.clone() * s.clone();
        Ok(Noised {
            input: xt.clone() * col(&cols[2]),
            xt,
            z,
            t: Tensor::from_data(TensorData::new(cols[3].clone(), [m]), &dev),
            alpha: a,
            sigma: s,
        })
    };
    for step in 0..settings.steps {
        let seed = settings.seed.wrapping_add(step as u64);
        let b = noised(to_net_input(data(target, n, seed), &dev)?, &mut rng)?;
        let (mut px, mut pc) = (vec![], vec![]);
        for (k, class) in keep.iter().enumerate() {
            let m = n / keep.len() + usize::from(k < n % keep.len());
            if m > 0 {
                px.push(to_net_input(
                    data(*class, m, seed ^ (0x9E37 + k as u64)),
                    &dev,
                )?);
                pc.push(condition(*class, m));
            }
        }
        let pb = noised(Tensor::cat(px, 0), &mut rng)?;
        let pc = Tensor::cat(pc, 0);
        // x̂₀ of the frozen model under the anchor's condition, and of the model under the target's.
        let anchor_eps = eps(&frozen, b.input.clone(), condition(anchor, n), b.t.clone())?;
        let anchor_x0 = ((b.xt.clone() - anchor_eps * b.sigma.clone()) / b.alpha.clone()).detach();
        let target_c = condition(target, n).matmul(proj.p.val());
        let target_eps = eps(&frozen, b.input.clone(), target_c, b.t.clone())?;
        let model_x0 = (b.xt.clone() - target_eps * b.sigma.clone()) / b.alpha.clone();
        let prior_eps = eps(
            &frozen,
            pb.input.clone(),
            pc.matmul(proj.p.val()),
            pb.t.clone(),
        )?;
        let prior_loss = (prior_eps - pb.z.clone()).square().mean();
        out.prior.push(prior_loss.clone().into_scalar::<f64>());
        let generator = step > settings.warm_up;
        if generator {
            let adv = softplus(disc.forward(model_x0.clone()), 1.0).mean();
            out.adversarial.push(adv.clone().into_scalar::<f64>());
            // As the official code: each gradient is clipped once, before the adjustment.
            let g = if settings.surgery {
                let mut g_p = vec![grad_of(prior_loss, &proj)?];
                let mut g_u = vec![grad_of(adv, &proj)?];
                clip_global_norm(&mut g_p, settings.max_grad_norm);
                clip_global_norm(&mut g_u, settings.max_grad_norm);
                preserve_gradient(&mut g_u, &g_p, settings.lambda)?;
                // Opposed beyond rounding (the 1e−8s of the normalisation leave ~1e−9 at ‖g_u‖ = λ).
                let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                let dot: f64 = g_u[0].iter().zip(&g_p[0]).map(|(a, b)| a * b).sum();
                if dot < -1e-6 * norm(&g_u[0]) * norm(&g_p[0]) {
                    out.opposed += 1;
                }
                g_u
            } else {
                let total = adv + prior_loss * (settings.prior_loss_weight * 0.1);
                let mut g = vec![grad_of(total, &proj)?];
                clip_global_norm(&mut g, settings.max_grad_norm);
                g
            };
            if g.iter().flatten().any(|v| !v.is_finite()) {
                return Err(GenError::NonFinite {
                    what: "DoCo gradient",
                    step,
                    t: f64::NAN,
                });
            }
            let mut grads = GradientsParams::new();
            let inner = Device::flex();
            let g32: Vec<f32> = g[0].iter().map(|v| *v as f32).collect();
            grads.register(
                proj.p.id,
                Tensor::<2>::from_data(TensorData::new(g32, [width, width]), &inner),
            );
            proj = opt.step(settings.lr, proj, grads);
        }
        // The discriminator: anchor x̂₀ → 0 ("real"), the model's → 1, every step; after the
        // warm-up plus the generator loss's gradient left in its buffers (see the module docs).
        let fake = model_x0.detach();
        let mut d_loss = softplus(disc.forward(anchor_x0), 1.0).mean()
            + softplus(-disc.forward(fake.clone()), 1.0).mean();
        if generator {
            d_loss = d_loss + softplus(disc.forward(fake), 1.0).mean();
        }
        let gd = GradientsParams::from_grads(d_loss.backward(), &disc);
        disc = opt_d.step(settings.dlr, disc, gd);
    }
    out.projection = gradlab_core::bridge::to_host(proj.p.val())?;
    Ok(out)
}

/// A noised batch: the network's input c_in·x_t, x_t, the noise, times and (α, σ) columns.
struct Noised {
    input: Tensor<2>,
    xt: Tensor<2>,
    z: Tensor<2>,
    t: Tensor<1>,
    alpha: Tensor<2>,
    sigma: Tensor<2>,
}

/// ∇_P of `loss` as host values.
fn grad_of(loss: Tensor<1>, proj: &Projection) -> Result<Vec<f64>> {
    let grads = GradientsParams::from_grads(loss.backward(), proj);
    let g: Tensor<2> = grads
        .get(proj.p.id)
        .ok_or_else(|| GenError::Invalid("the loss does not depend on the projection".into()))?;
    Ok(gradlab_core::bridge::to_host(g)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After the surgery the applied gradient never opposes the preservation gradient when
    /// ‖g_u‖ ≤ λ (random pairs, clipped to 1 as the official code); without the clip it can.
    #[test]
    fn the_adjusted_gradient_never_opposes_preservation_after_the_clip() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut opposed_unclipped = 0;
        for _ in 0..2000 {
            let mut draw = |n: usize, s: f64| {
                (0..n)
                    .map(|_| s * rng.sample::<f64, _>(StandardNormal))
                    .collect::<Vec<_>>()
            };
            let (g_u, g_p) = (
                vec![draw(6, 3.0), draw(3, 0.5)],
                vec![draw(6, 1.0), draw(3, 2.0)],
            );
            let mut clipped = g_u.clone();
            clip_global_norm(&mut clipped, 1.0);
            preserve_gradient(&mut clipped, &g_p, 1.0).unwrap();
            for (u, p) in clipped.iter().zip(&g_p) {
                let dot: f64 = u.iter().zip(p).map(|(a, b)| a * b).sum();
                assert!(dot >= -1e-9, "clipped and adjusted: u·p = {dot}");
            }
            let mut raw = g_u.clone();
            preserve_gradient(&mut raw, &g_p, 1.0).unwrap();
            let dot: f64 = raw[0].iter().zip(&g_p[0]).map(|(a, b)| a * b).sum();
            if dot < -1e-9 {
                opposed_unclipped += 1;
            }
        }
        // λ·cos·ĝ_p is not a full projection: a long g_u still opposes g_p after it.
        assert!(opposed_unclipped > 100, "{opposed_unclipped}");
    }

    #[test]
    fn the_adjustment_is_the_official_formula_and_leaves_agreeing_gradients_alone() {
        let mut u = vec![vec![-0.6, 0.8]];
        let p = vec![vec![2.0, 0.0]];
        preserve_gradient(&mut u, &p, 0.5).unwrap();
        // cos = −0.6 (‖u‖ = 1), ĝ_p = (1, 0): u − 0.5·(−0.6)·(1, 0) = (−0.3, 0.8), up to the 1e−8s.
        assert!((u[0][0] + 0.3).abs() < 1e-7 && (u[0][1] - 0.8).abs() < 1e-12);
        let mut same = vec![vec![1.0, 1.0]];
        preserve_gradient(&mut same, &p, 1.0).unwrap();
        assert_eq!(same, vec![vec![1.0, 1.0]]);
        let mut g = vec![vec![3.0, 4.0]];
        assert_eq!(clip_global_norm(&mut g, 1.0), 5.0);
        assert!((g[0][0] - 0.6).abs() < 1e-6 && (g[0][1] - 0.8).abs() < 1e-6);
        assert!(preserve_gradient(&mut g, &[vec![1.0]], 1.0).is_err());
        assert!(preserve_gradient(&mut g, &[vec![1.0, 0.0]], f64::NAN).is_err());
    }
}
