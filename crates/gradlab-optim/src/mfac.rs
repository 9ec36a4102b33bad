//! M-FAC (Frantar, Kurtic, Alistarh, "M-FAC: Efficient Matrix-Free Approximations of
//! Second-Order Information", NeurIPS 2021): products with the inverse of the damped empirical
//! Fisher over a window of m gradients,
//!
//! F̂ = λI + (1/m) Σᵢ gᵢgᵢᵀ = λI + (1/m) GᵀG   (G: the m × d window),
//!
//! without forming it. By Woodbury, F̂⁻¹x = (1/λ)·[x − Gᵀ K⁻¹ G x] with the m × m matrix
//! K = mλI + GGᵀ, kept as its Cholesky factor: O(m²d) to build (the dense window, for pruning
//! scores), O(md + m³) to replace the oldest gradient (the sliding window of the optimizer), O(md)
//! per product. This is the same operator as the authors' `HInvFastUpMulti` (checked against their
//! `optim.py`: damping λ, window divisor m, a zero-initialised ring buffer); the factorisation
//! differs (Cholesky of K instead of their recursive coefficients).
//!
//! The M-FAC optimizer adds each step's gradient to the window and steps along F̂⁻¹g:
//! [`MfacPrecondition`] in front of SGD (`optim.py`'s momentum v ← μv + (1 − μ)F̂⁻¹g is SGD's
//! momentum with dampening μ).
//!
//! ```
//! use gradlab_optim::mfac::MfacInverse;
//! // One gradient g = (1, 0), window m = 1, λ = 1: F̂ = diag(2, 1).
//! let inv = MfacInverse::from_gradients(&[1.0, 0.0], 2, 1.0).unwrap();
//! let x = inv.mul(&[2.0, 3.0]).unwrap();
//! assert!((x[0] - 1.0).abs() < 1e-12 && (x[1] - 3.0).abs() < 1e-12);
//! ```

use crate::error::{OptimError, Result, check_positive};
use crate::linalg;
use crate::transform::{GradSet, GradientTransform};

/// Products with (λI + (1/m)·Σ gᵢgᵢᵀ)⁻¹ over a window of m gradients.
#[derive(Debug, Clone)]
pub struct MfacInverse {
    d: usize,
    m: usize,
    damp: f64,
    /// The window G, m × d row-major (zero rows until filled).
    grads: Vec<f64>,
    /// GGᵀ, m × m.
    gram: Vec<f64>,
    /// Lower Cholesky factor of K = mλI + GGᵀ.
    chol: Vec<f64>,
    next: usize,
    /// Gradients pushed so far.
    pushed: usize,
}

impl MfacInverse {
    /// An empty window of `window` gradients of dimension `dim` (F̂ = λI until gradients arrive).
    pub fn new(dim: usize, window: usize, damp: f64) -> Result<Self> {
        if window == 0 {
            return Err(OptimError::Invalid {
                name: "window",
                value: 0.0,
                requirement: ">= 1",
            });
        }
        if dim == 0 {
            return Err(OptimError::Invalid {
                name: "dim",
                value: 0.0,
                requirement: ">= 1",
            });
        }
        check_positive("damp", damp)?;
        let mut s = Self {
            d: dim,
            m: window,
            damp,
            grads: vec![0.0; window * dim],
            gram: vec![0.0; window * window],
            chol: vec![],
            next: 0,
            pushed: 0,
        };
        s.factor()?;
        Ok(s)
    }

    /// The dense window of the rows of `grads` (each of length `dim`), as for pruning scores.
    pub fn from_gradients(grads: &[f64], dim: usize, damp: f64) -> Result<Self> {
        if dim == 0 || !grads.len().is_multiple_of(dim) {
            return Err(OptimError::Conflict(
                "the gradients must be rows of the same length",
            ));
        }
        let mut s = Self::new(dim, grads.len() / dim, damp)?;
        for row in grads.chunks(dim) {
            s.check(row)?;
        }
        let m = s.m;
        s.grads.copy_from_slice(grads);
        for i in 0..m {
            for j in 0..=i {
                let v = dot(
                    &grads[i * dim..(i + 1) * dim],
                    &grads[j * dim..(j + 1) * dim],
                );
                s.gram[i * m + j] = v;
                s.gram[j * m + i] = v;
            }
        }
        s.factor()?;
        Ok(s)
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// Replace the oldest gradient of the window with `g`.
    pub fn push(&mut self, g: &[f64]) -> Result<()> {
        self.check(g)?;
        let (d, m, j) = (self.d, self.m, self.next);
        self.grads[j * d..(j + 1) * d].copy_from_slice(g);
        for i in 0..m {
            let dot: f64 = dot(&self.grads[i * d..(i + 1) * d], g);
            self.gram[i * m + j] = dot;
            self.gram[j * m + i] = dot;
        }
        self.next = (j + 1) % m;
        self.pushed += 1;
        self.factor()
    }

    /// F̂⁻¹x.
    pub fn mul(&self, x: &[f64]) -> Result<Vec<f64>> {
        self.check(x)?;
        let d = self.d;
        let gx: Vec<f64> = self.grads.chunks(d).map(|row| dot(row, x)).collect();
        let y = self.solve(&gx);
        let mut out = x.to_vec();
        for (row, c) in self.grads.chunks(d).zip(&y) {
            out.iter_mut().zip(row).for_each(|(o, g)| *o -= c * g);
        }
        out.iter_mut().for_each(|o| *o /= self.damp);
        Ok(out)
    }

    /// The diagonal of F̂⁻¹: (1/λ)·[1 − Σ_ab G_ai (K⁻¹)_ab G_bi]. OBS pruning scores are
    /// wᵢ² / (2·[F̂⁻¹]ᵢᵢ).
    pub fn diag(&self) -> Vec<f64> {
        let (d, m) = (self.d, self.m);
        // Z = L⁻¹G, one column of G (one coordinate across the window) at a time.
        let mut z = vec![0.0; m * d];
        let mut col = vec![0.0; m];
        for c in 0..d {
            (0..m).for_each(|i| col[i] = self.grads[i * d + c]);
            linalg::forward_solve(&self.chol, m, &mut col);
            (0..m).for_each(|i| z[i * d + c] = col[i]);
        }
        (0..d)
            .map(|c| {
                let q: f64 = (0..m).map(|i| z[i * d + c].powi(2)).sum();
                (1.0 - q) / self.damp
            })
            .collect()
    }

    /// OBS saliency wᵢ²/(2[F̂⁻¹]ᵢᵢ) of each weight (the increase of the quadratic model's loss
    /// when wᵢ alone is removed and the rest compensate).
    pub fn pruning_scores(&self, weights: &[f64]) -> Result<Vec<f64>> {
        self.check(weights)?;
        Ok(weights
            .iter()
            .zip(self.diag())
            .map(|(w, h)| w * w / (2.0 * h))
            .collect())
    }

    fn check(&self, v: &[f64]) -> Result<()> {
        if v.len() != self.d {
            return Err(OptimError::Invalid {
                name: "vector length",
                value: v.len() as f64,
                requirement: "equal to the dimension of the window",
            });
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(OptimError::Failed("M-FAC got a non-finite vector"));
        }
        Ok(())
    }

    /// Cholesky factor of K = mλI + GGᵀ (positive definite since mλ > 0).
    fn factor(&mut self) -> Result<()> {
        let m = self.m;
        let mut k = self.gram.clone();
        (0..m).for_each(|i| k[i * m + i] += m as f64 * self.damp);
        self.chol = linalg::cholesky(&k, m).ok_or(OptimError::NotPositiveDefinite {
            system: "M-FAC's window system mλI + GGᵀ",
            damping: self.damp,
            step: self.pushed,
            hint: "raise λ relative to the gradients' scale",
        })?;
        Ok(())
    }

    /// K⁻¹b by the Cholesky factor.
    fn solve(&self, b: &[f64]) -> Vec<f64> {
        linalg::cholesky_solve(&self.chol, self.m, b)
    }
}

/// The inverse of a block-diagonal damped empirical Fisher, as the paper prunes (the authors'
/// `HInvFastBlock`): the coordinates are cut into consecutive blocks of `block`, each with its own
/// dense window over the same m gradients. With m ≥ `block` each block's Fisher has full rank,
/// where one window over all d ≫ m coordinates does not.
#[derive(Debug, Clone)]
pub struct BlockFisherInverse {
    blocks: Vec<MfacInverse>,
    d: usize,
}

impl BlockFisherInverse {
    /// Blocks of `block` ≥ 1 coordinates over the rows of `grads` (each of length `dim`).
    pub fn from_gradients(grads: &[f64], dim: usize, block: usize, damp: f64) -> Result<Self> {
        if block == 0 {
            return Err(OptimError::Invalid {
                name: "block",
                value: 0.0,
                requirement: ">= 1",
            });
        }
        if dim == 0 || grads.is_empty() || !grads.len().is_multiple_of(dim) {
            return Err(OptimError::Conflict(
                "the gradients must be rows of the same length",
            ));
        }
        let m = grads.len() / dim;
        let blocks = (0..dim)
            .step_by(block)
            .map(|start| {
                let end = (start + block).min(dim);
                let sub: Vec<f64> = (0..m)
                    .flat_map(|i| grads[i * dim + start..i * dim + end].iter().copied())
                    .collect();
                MfacInverse::from_gradients(&sub, end - start, damp)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { blocks, d: dim })
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.d
    }

    /// F̂⁻¹x, block by block.
    pub fn mul(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.d {
            return Err(OptimError::Invalid {
                name: "vector length",
                value: x.len() as f64,
                requirement: "equal to the dimension of the blocks",
            });
        }
        let mut out = Vec::with_capacity(self.d);
        let mut at = 0;
        for b in &self.blocks {
            out.extend(b.mul(&x[at..at + b.dim()])?);
            at += b.dim();
        }
        Ok(out)
    }

    /// diag(F̂⁻¹).
    pub fn diag(&self) -> Vec<f64> {
        self.blocks.iter().flat_map(|b| b.diag()).collect()
    }

    /// OBS saliencies wᵢ²/(2[F̂⁻¹]ᵢᵢ).
    pub fn pruning_scores(&self, weights: &[f64]) -> Result<Vec<f64>> {
        let diag = self.diag();
        if weights.len() != diag.len() {
            return Err(OptimError::Invalid {
                name: "weights length",
                value: weights.len() as f64,
                requirement: "equal to the dimension of the blocks",
            });
        }
        Ok(weights
            .iter()
            .zip(diag)
            .map(|(w, h)| w * w / (2.0 * h))
            .collect())
    }

    /// One OBS pruning step (the authors' `MFACPruner.prune`): remove the `count` weights of
    /// lowest saliency and let the others compensate, each removal's optimal correction
    /// δw = −(w_q/[F̂⁻¹]_qq)·F̂⁻¹e_q summed as if independent: w ← w + F̂⁻¹u with
    /// u_q = −w_q/[F̂⁻¹]_qq on the removed q (zero elsewhere), then w_q = 0. Returns the new
    /// weights and the removed indices (lowest saliency first).
    pub fn obs_prune(&self, weights: &[f64], count: usize) -> Result<(Vec<f64>, Vec<usize>)> {
        let scores = self.pruning_scores(weights)?;
        if count > weights.len() {
            return Err(OptimError::Invalid {
                name: "weights to prune",
                value: count as f64,
                requirement: "at most the number of weights",
            });
        }
        let mut order: Vec<usize> = (0..weights.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        order.truncate(count);
        let diag = self.diag();
        let mut u = vec![0.0; weights.len()];
        order.iter().for_each(|&q| u[q] = -weights[q] / diag[q]);
        let mut w: Vec<f64> = weights
            .iter()
            .zip(self.mul(&u)?)
            .map(|(w, d)| w + d)
            .collect();
        order.iter().for_each(|&q| w[q] = 0.0);
        Ok((w, order))
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The M-FAC preconditioner as a gradient transformation: each step's gradient (all parameters,
/// concatenated) enters the sliding window, and F̂⁻¹g leaves. Follow it with SGD for the M-FAC
/// optimizer (the authors' defaults: window 1024, λ = 1e-5).
#[derive(Debug, Clone)]
pub struct MfacPrecondition {
    window: usize,
    damp: f64,
    inv: Option<MfacInverse>,
}

impl MfacPrecondition {
    /// A window of `window` ≥ 1 gradients and damping λ > 0.
    pub fn new(window: usize, damp: f64) -> Result<Self> {
        // Validate now, on a one-dimensional stand-in.
        MfacInverse::new(1, window, damp)?;
        Ok(Self {
            window,
            damp,
            inv: None,
        })
    }
}

impl GradientTransform for MfacPrecondition {
    /// F̂⁻¹g after pushing g into the window; a non-finite gradient or a failed update is an
    /// error (the gradient is never passed on unpreconditioned).
    fn update(&mut self, grads: GradSet) -> Result<GradSet> {
        let g = grads.to_values()?;
        let n = g.len();
        let inv = match &mut self.inv {
            Some(inv) if inv.dim() == n => inv,
            slot => slot.insert(MfacInverse::new(n, self.window, self.damp)?),
        };
        inv.push(&g)?;
        let p = inv.mul(&g)?;
        Ok(grads.with_values(&p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::prelude::*;

    fn pseudo(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    /// The explicit inverse by successive Sherman–Morrison updates from (1/λ)I, as the authors'
    /// `HInvSlow` test oracle builds it: H ← H − (Hg)(Hg)ᵀ/(m + gᵀHg) for each g of the window.
    fn explicit(window: &[Vec<f64>], m: usize, damp: f64) -> Vec<f64> {
        let d = window[0].len();
        let mut h = vec![0.0; d * d];
        (0..d).for_each(|i| h[i * d + i] = 1.0 / damp);
        for g in window {
            let hg: Vec<f64> = h.chunks(d).map(|r| dot(r, g)).collect();
            let den = m as f64 + dot(g, &hg);
            for i in 0..d {
                for j in 0..d {
                    h[i * d + j] -= hg[i] * hg[j] / den;
                }
            }
        }
        h
    }

    #[test]
    fn sliding_window_matches_the_explicit_inverse() {
        let (d, m, damp) = (12, 4, 0.05);
        let mut inv = MfacInverse::new(d, m, damp).unwrap();
        let grads: Vec<Vec<f64>> = (0..7).map(|s| pseudo(d, s + 1)).collect();
        let x = pseudo(d, 99);
        for t in 0..grads.len() {
            inv.push(&grads[t]).unwrap();
            // The window holds the last min(t + 1, m) gradients; empty slots are zero.
            let window: Vec<Vec<f64>> = grads[(t + 1).saturating_sub(m)..=t].to_vec();
            let h = explicit(&window, m, damp);
            let want: Vec<f64> = h.chunks(d).map(|r| dot(r, &x)).collect();
            let got = inv.mul(&x).unwrap();
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() < 1e-9 * b.abs().max(1.0),
                    "step {t}: {a} vs {b}"
                );
            }
            let diag = inv.diag();
            for i in 0..d {
                assert!((diag[i] - h[i * d + i]).abs() < 1e-9 * h[i * d + i].abs());
            }
        }
        let w = pseudo(d, 5);
        let scores = inv.pruning_scores(&w).unwrap();
        assert!((scores[3] - w[3] * w[3] / (2.0 * inv.diag()[3])).abs() < 1e-15);
    }

    #[test]
    fn dense_window_and_blockwise_scores_match_the_explicit_inverse() {
        let (d, m, damp) = (10, 6, 0.02);
        let rows: Vec<Vec<f64>> = (0..m as u64).map(|s| pseudo(d, s + 10)).collect();
        let inv = MfacInverse::from_gradients(&rows.concat(), d, damp).unwrap();
        let h = explicit(&rows, m, damp);
        let x = pseudo(d, 3);
        for (a, row) in inv.mul(&x).unwrap().iter().zip(h.chunks(d)) {
            assert!((a - dot(row, &x)).abs() < 1e-9 * a.abs().max(1.0));
        }
        // Blocks of 4, 4, 2: each block's scores from the explicit inverse of its own Fisher.
        let w = pseudo(d, 4);
        let blocks = BlockFisherInverse::from_gradients(&rows.concat(), d, 4, damp).unwrap();
        let scores = blocks.pruning_scores(&w).unwrap();
        let (pruned, removed) = blocks.obs_prune(&w, 3).unwrap();
        let mut order: Vec<usize> = (0..d).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        assert_eq!(removed, order[..3].to_vec());
        for (start, end) in [(0, 4), (4, 8), (8, 10)] {
            let sub: Vec<Vec<f64>> = rows.iter().map(|r| r[start..end].to_vec()).collect();
            let hb = explicit(&sub, m, damp);
            let b = end - start;
            for i in 0..b {
                let want = w[start + i].powi(2) / (2.0 * hb[i * b + i]);
                assert!(
                    (scores[start + i] - want).abs() < 1e-9 * want.max(1e-12),
                    "{i}"
                );
            }
        }
        // The OBS step against the explicit block inverses: w + H u, removed weights zeroed.
        let mut u = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        for (start, end) in [(0, 4), (4, 8), (8, 10)] {
            let sub: Vec<Vec<f64>> = rows.iter().map(|r| r[start..end].to_vec()).collect();
            let hb = explicit(&sub, m, damp);
            let b = end - start;
            for i in 0..b {
                for j in 0..b {
                    h[(start + i) * d + start + j] = hb[i * b + j];
                }
            }
        }
        removed.iter().for_each(|&q| u[q] = -w[q] / h[q * d + q]);
        for i in 0..d {
            let want = if removed.contains(&i) {
                0.0
            } else {
                w[i] + dot(&h[i * d..(i + 1) * d], &u)
            };
            assert!(
                (pruned[i] - want).abs() < 1e-9,
                "{i}: {} vs {want}",
                pruned[i]
            );
        }
        assert!(BlockFisherInverse::from_gradients(&rows.concat(), d, 0, damp).is_err());
        assert!(BlockFisherInverse::from_gradients(&rows.concat()[1..], d, 4, damp).is_err());
        assert!(blocks.obs_prune(&w, d + 1).is_err());
        assert!(blocks.mul(&w[1..]).is_err());
    }

    #[test]
    fn the_transform_preconditions_with_the_current_gradient_in_the_window() {
        let dev = Device::flex();
        let (d, damp) = (6, 0.1);
        let mut t = MfacPrecondition::new(3, damp).unwrap();
        let g1 = pseudo(d, 1);
        let g2 = pseudo(d, 2);
        t.update(GradSet::from_values(&g1, &dev)).unwrap();
        let out = t
            .update(GradSet::from_values(&g2, &dev))
            .unwrap()
            .to_values()
            .unwrap();
        let h = explicit(&[g1, g2.clone()], 3, damp);
        for (i, row) in h.chunks(d).enumerate() {
            assert!((out[i] - dot(row, &g2)).abs() < 1e-9);
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(MfacInverse::new(3, 0, 1e-3).is_err());
        assert!(MfacInverse::new(3, 2, 0.0).is_err());
        assert!(MfacInverse::new(0, 2, 1e-3).is_err());
        assert!(MfacPrecondition::new(0, 1e-5).is_err());
        let mut inv = MfacInverse::new(3, 2, 1e-3).unwrap();
        assert!(inv.push(&[1.0, 2.0]).is_err());
        assert!(inv.push(&[1.0, f64::NAN, 0.0]).is_err());
        assert!(inv.mul(&[1.0; 4]).is_err());
        assert!(MfacInverse::from_gradients(&[1.0; 5], 2, 1.0).is_err());
    }
}
