//! GroCo, the group-ordering loss ("Learning by Sorting: Self-supervised Learning with Group
//! Ordering Constraints", Shvetsova, Petersen, Kukleva, Schiele and Kuehne, ICCV 2023; official
//! code `ninatu/learning_by_sorting`, `losses/groco.py`), and the NT-Xent baselines of the same
//! repository (`losses/nt_xent.py`).
//!
//! For each anchor view n (the loss is averaged over the views), with cosine similarities:
//! - positives: cos(z_n, sg(z_m)) for the other views m of the same image, sorted ascending;
//! - negatives: cos(z_n, sg(z_n′)) for the *other images' embeddings of the same view*, the top k
//!   (10), ascending;
//! - s = [negatives, positives] is sorted by an odd–even network with the Cauchy relaxation,
//!   steepness 1 ([`crate::sorting`]), giving X with X[i, r] = P(element i at rank r);
//! - p_neg(i) = Σ_{r<k} X[i, r], p_pos(i) = Σ_{r≥k} X[i, r], clipped to [0, 1];
//! - loss = ½[BCE(p_pos, 1[i ≥ k]) + BCE(p_neg, 1[i < k])], the BCE averaged over all B(k + P)
//!   entries (logarithms clamped at −100, as PyTorch's `BCELoss`).
//!
//! So the loss asks every positive to rank above every one of the hardest negatives, and nothing
//! else: the order within each group is free.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::groco::{GroCo, nt_xent};
//! let dev = Device::flex();
//! let a = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], &dev);
//! let b = Tensor::<2>::from_floats([[0.9, 0.1], [0.1, 0.9], [1.0, 0.8]], &dev);
//! let loss = GroCo { top_k: 2, ..GroCo::default() }.loss(&[a.clone(), b.clone()]).unwrap();
//! assert!(loss.into_scalar::<f64>() > 0.0);
//! assert!(nt_xent(a, b, 0.1, false, None).unwrap().into_scalar::<f64>() > 0.0);
//! ```

use crate::error::{ParadigmError, invalid};
use crate::sorting::{Network, Relaxation, SortingNetwork};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;

/// The GroCo loss's settings (the official defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroCo {
    /// Hardest negatives per anchor (10).
    pub top_k: usize,
    /// Steepness β of the relaxation (1).
    pub steepness: f64,
    /// The relaxation (Cauchy).
    pub relaxation: Relaxation,
    /// The sorting network (odd–even).
    pub network: Network,
    /// Stop the gradient through the positives and negatives (true).
    pub stop_grad: bool,
}

impl Default for GroCo {
    fn default() -> Self {
        Self {
            top_k: 10,
            steepness: 1.0,
            relaxation: Relaxation::Cauchy,
            network: Network::OddEven,
            stop_grad: true,
        }
    }
}

/// Rows scaled to unit norm (norms below 1e-8 clamped, as PyTorch's cosine similarity).
pub fn unit_rows(z: Tensor<2>) -> Tensor<2> {
    let norm = z.clone().powf_scalar(2.0).sum_dim(1).sqrt().clamp_min(1e-8);
    z / norm
}

fn check_views(views: &[Tensor<2>], need: usize) -> crate::Result<[usize; 2]> {
    let first = views
        .first()
        .ok_or_else(|| ParadigmError::Invalid("no views given".into()))?
        .dims();
    if views.len() < 2 {
        return invalid(format!(
            "contrastive losses need ≥ 2 views of each image, got {}",
            views.len()
        ));
    }
    if let Some(v) = views.iter().find(|v| v.dims() != first) {
        return Err(ParadigmError::Shape(format!(
            "views of different shapes: {:?} and {:?}",
            first,
            v.dims()
        )));
    }
    if first[0] < need {
        return invalid(format!(
            "a batch of {} images is too small: the loss needs at least {need}",
            first[0]
        ));
    }
    Ok(first)
}

/// BCE(p, t) elementwise with ln clamped at −100.
fn bce(p: Tensor<2>, t: Tensor<2>) -> Tensor<2> {
    let one_t = t.clone().neg().add_scalar(1.0);
    let lp = p.clone().log().clamp_min(-100.0);
    let lq = p.neg().add_scalar(1.0).log().clamp_min(-100.0);
    (t * lp + one_t * lq).neg()
}

impl GroCo {
    /// The loss for the projections of the views, each [B, d] (row b of every view is the same
    /// image); needs B ≥ top_k + 1.
    pub fn loss(&self, views: &[Tensor<2>]) -> crate::Result<Tensor<1>> {
        let [b, _] = check_views(views, self.top_k + 1)?;
        if self.top_k == 0 {
            return invalid("GroCo needs at least one negative per anchor (top_k ≥ 1), got 0");
        }
        let (k, p) = (self.top_k, views.len() - 1);
        let sorter = SortingNetwork::new(self.network, k + p)?;
        let dev = views[0].device();
        let sg = |t: Tensor<2>| if self.stop_grad { t.detach() } else { t };
        let units: Vec<Tensor<2>> = views.iter().map(|v| unit_rows(v.clone())).collect();
        // Targets: element i is a negative for i < k.
        let t_neg = Tensor::<2>::from_data(
            TensorData::new(
                (0..k + p)
                    .map(|i| f32::from(u8::from(i < k)))
                    .collect::<Vec<_>>(),
                [1, k + p],
            ),
            &dev,
        )
        .cast(views[0].dtype())
        .repeat_dim(0, b);
        let t_pos = t_neg.clone().neg().add_scalar(1.0);
        let mut total: Option<Tensor<1>> = None;
        for n in 0..views.len() {
            let anchor = units[n].clone();
            let pos: Vec<Tensor<2>> = (0..views.len())
                .filter(|&m| m != n)
                .map(|m| (anchor.clone() * sg(units[m].clone())).sum_dim(1))
                .collect();
            let (pos_sorted, _) = Tensor::cat(pos, 1).sort_with_indices(1);
            let all = anchor.clone().matmul(sg(anchor.clone()).transpose());
            let diag = Tensor::<2>::eye(b, &dev).bool();
            let neg = all.mask_fill(diag, f64::NEG_INFINITY);
            // The top k, ascending: the k largest in descending order, reversed.
            let (_, top) = neg.clone().topk_with_indices(k, 1);
            let reverse = Tensor::<1, Int>::from_data(
                TensorData::new((0..k as i64).rev().collect::<Vec<_>>(), [k]),
                &dev,
            );
            let neg_sorted = neg.gather(1, top.select(1, reverse));
            let sims = Tensor::cat(vec![neg_sorted, pos_sorted], 1);
            let (_, x) = sorter.sort(sims, self.relaxation, self.steepness)?;
            let p_neg = x
                .clone()
                .slice([0..b, 0..k + p, 0..k])
                .sum_dim(2)
                .reshape([b, k + p])
                .clamp(0.0, 1.0);
            let p_pos = x
                .slice([0..b, 0..k + p, k..k + p])
                .sum_dim(2)
                .reshape([b, k + p])
                .clamp(0.0, 1.0);
            let l = (bce(p_pos, t_pos.clone()).mean() + bce(p_neg, t_neg.clone()).mean())
                .mul_scalar(0.5);
            total = Some(match total {
                Some(t) => t + l,
                None => l,
            });
        }
        Ok(total.expect("≥ 2 views").div_scalar(views.len() as f64))
    }
}

/// NT-Xent (SimCLR) on two views as the official `NT_Xent`: the 2N embeddings' cosine similarities
/// / τ, the diagonal left out, cross-entropy against the other view of the same image, summed and
/// divided by 2N. `stop_grad` detaches the compared-against side; `top_k` keeps only the k most
/// similar negatives (the repository's "top-k negatives" baseline; τ = 0.5 there, 0.1 for SimCLR).
pub fn nt_xent(
    z1: Tensor<2>,
    z2: Tensor<2>,
    tau: f64,
    stop_grad: bool,
    top_k: Option<usize>,
) -> crate::Result<Tensor<1>> {
    let [n, _] = check_views(&[z1.clone(), z2.clone()], 2)?;
    if !(tau > 0.0 && tau.is_finite()) {
        return invalid(format!("the temperature must be positive, got {tau}"));
    }
    if let Some(k) = top_k
        && (k == 0 || k > 2 * n - 2)
    {
        return invalid(format!(
            "top-k negatives needs 1 ≤ k ≤ 2N − 2 = {}, got {k}",
            2 * n - 2
        ));
    }
    let dev = z1.device();
    let z = unit_rows(Tensor::cat(vec![z1, z2], 0));
    let other = if stop_grad {
        z.clone().detach()
    } else {
        z.clone()
    };
    let sim = z.matmul(other.transpose()).div_scalar(tau);
    let pos_idx: Vec<i64> = (0..2 * n).map(|i| ((i + n) % (2 * n)) as i64).collect();
    let pos_idx =
        Tensor::<1, Int>::from_data(TensorData::new(pos_idx, [2 * n]), &dev).reshape([2 * n, 1]);
    let diag = Tensor::<2>::eye(2 * n, &dev).bool();
    let sim = sim.mask_fill(diag, f64::NEG_INFINITY);
    let logits = match top_k {
        None => {
            let lp = log_softmax(sim, 1).gather(1, pos_idx);
            return Ok(lp.sum().neg().div_scalar((2 * n) as f64));
        }
        Some(k) => {
            let pos = sim.clone().gather(1, pos_idx.clone());
            let mask: Vec<bool> = (0..4 * n * n)
                .map(|e| (e / (2 * n) + n) % (2 * n) == e % (2 * n))
                .collect();
            let pos_mask =
                Tensor::<2, Bool>::from_data(TensorData::new(mask, [2 * n, 2 * n]), &dev);
            let negs = sim.mask_fill(pos_mask, f64::NEG_INFINITY);
            let (_, top) = negs.clone().topk_with_indices(k, 1);
            Tensor::cat(vec![pos, negs.gather(1, top)], 1)
        }
    };
    Ok(log_softmax(logits, 1)
        .slice([0..2 * n, 0..1])
        .sum()
        .neg()
        .div_scalar((2 * n) as f64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_core::bridge::{from_host, scalar_to_host, to_host};
    use rand::prelude::*;

    fn t(v: &[f64], d: usize, dev: &Device) -> Tensor<2> {
        from_host(v, [v.len() / d, d], dev).unwrap()
    }

    /// Worked by hand with a hard (β → ∞, logistic) sort, where PyTorch's clamp makes each
    /// misplaced entry cost exactly 100: three unit vectors whose views agree give loss 0; with
    /// each second view the opposite of the first, every row sorts as [positive, negative,
    /// negative] while the targets are [negative, negative, positive], so one negative and the
    /// positive are misplaced in both BCE terms: (200/3 + 200/3)/2 = 200/3 for every row and view.
    #[test]
    fn the_loss_is_zero_when_the_groups_are_ordered_and_worked_by_hand_when_not() {
        let dev = Device::flex();
        let groco = GroCo {
            top_k: 2,
            steepness: 1e9,
            relaxation: Relaxation::Logistic,
            ..GroCo::default()
        };
        let a = t(&[1.0, 0.0, 0.0, 0.6, 0.8, 0.0, 0.0, 0.6, 0.8], 3, &dev);
        let near = t(&[1.0, 0.01, 0.0, 0.6, 0.8, 0.01, 0.01, 0.6, 0.8], 3, &dev);
        let good = scalar_to_host(groco.loss(&[a.clone(), near]).unwrap()).unwrap();
        assert!(good.abs() < 1e-9, "{good}");
        let bad = scalar_to_host(groco.loss(&[a.clone(), a.neg()]).unwrap()).unwrap();
        assert!((bad - 200.0 / 3.0).abs() < 1e-9, "{bad}");
    }

    /// The loss's gradient with respect to the embeddings against central differences (f64, the
    /// stop-gradients switched off so the loss is a plain function of both views).
    #[test]
    fn the_gradient_matches_finite_differences() {
        let mut rng = StdRng::seed_from_u64(4);
        let v: Vec<f64> = (0..2 * 6 * 3)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let groco = GroCo {
            top_k: 3,
            stop_grad: false,
            ..GroCo::default()
        };
        let f = |w: &[f64], dev: &Device| -> Tensor<1> {
            groco
                .loss(&[t(&w[..18], 3, dev), t(&w[18..], 3, dev)])
                .unwrap()
        };
        let dev = Device::flex().autodiff();
        let x = from_host(&v, [36], &dev).unwrap().require_grad();
        let loss = groco
            .loss(&[
                x.clone().slice(0..18).reshape([6, 3]),
                x.clone().slice(18..36).reshape([6, 3]),
            ])
            .unwrap();
        let g = to_host(x.grad(&loss.backward()).unwrap()).unwrap();
        let inner = Device::flex();
        for i in (0..36).step_by(3) {
            let (mut a, mut b) = (v.clone(), v.clone());
            a[i] += 1e-6;
            b[i] -= 1e-6;
            let fd = (scalar_to_host(f(&a, &inner)).unwrap()
                - scalar_to_host(f(&b, &inner)).unwrap())
                / 2e-6;
            assert!(
                (fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                "entry {i}: {fd} vs {}",
                g[i]
            );
        }
    }

    /// NT-Xent against the cross-entropy written out for N = 2.
    #[test]
    fn nt_xent_matches_its_formula() {
        let dev = Device::flex();
        let z1 = t(&[1.0, 0.0, 0.6, 0.8], 2, &dev);
        let z2 = t(&[0.8, 0.6, 0.0, 1.0], 2, &dev);
        let rows: [[f64; 2]; 4] = [[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]];
        let tau = 0.5;
        let mut want = 0.0;
        for i in 0..4 {
            let pos = (i + 2) % 4;
            let dot =
                |j: usize| -> f64 { (rows[i][0] * rows[j][0] + rows[i][1] * rows[j][1]) / tau };
            let z: f64 = (0..4).filter(|&j| j != i).map(|j| dot(j).exp()).sum();
            want += -(dot(pos).exp() / z).ln();
        }
        want /= 4.0;
        let got =
            scalar_to_host(nt_xent(z1.clone(), z2.clone(), tau, false, None).unwrap()).unwrap();
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        // Top-2 negatives of 2N − 2 = 2 is the same loss.
        let top = scalar_to_host(nt_xent(z1, z2, tau, true, Some(2)).unwrap()).unwrap();
        assert!((top - want).abs() < 1e-6, "{top} vs {want}");
    }

    #[test]
    fn bad_views_are_refused_with_the_value() {
        let dev = Device::flex();
        let a = t(&[1.0, 0.0, 0.0, 1.0], 2, &dev);
        let groco = GroCo::default();
        assert!(
            groco
                .loss(std::slice::from_ref(&a))
                .unwrap_err()
                .to_string()
                .contains("got 1")
        );
        assert!(
            groco
                .loss(&[a.clone(), a.clone()])
                .unwrap_err()
                .to_string()
                .contains("at least 11")
        );
        assert!(
            groco
                .loss(&[a.clone(), t(&[1.0, 0.0, 0.0], 3, &dev)])
                .unwrap_err()
                .to_string()
                .contains("shapes")
        );
        assert!(nt_xent(a.clone(), a.clone(), 0.0, false, None).is_err());
        assert!(
            nt_xent(a.clone(), a, 0.1, false, Some(5))
                .unwrap_err()
                .to_string()
                .contains("got 5")
        );
    }
}
