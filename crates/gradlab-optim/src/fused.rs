//! Fused single-pass optimizer kernels over flat `f32` buffers: each parameter, gradient and state
//! element is read and written once per step, and the work is split across threads.
//!
//! They implement exactly the tensor optimizers of this crate ([`crate::adam`] without weight
//! decay, [`crate::diffgrad`]) and are tested against them; they serve loops that keep parameters
//! in flat buffers (joint optimizers, benchmarks). burn tensors are opaque to them: moving a burn
//! tensor's data in and out costs the copies these kernels avoid, so the burn `Optimizer`
//! implementations keep their tensor form.
//!
//! ```
//! use gradlab_optim::fused::{AdamBuffers, adam_step};
//! let mut b = AdamBuffers::new(vec![1.0, 2.0]);
//! adam_step(&mut b, &[0.5, -0.5], 0.1, 0.9, 0.999, 1e-8, 1);
//! assert!((b.params[0] - 0.9).abs() < 1e-6 && (b.params[1] - 2.1).abs() < 1e-6);
//! ```

use std::thread;

/// Parameters and Adam/diffGrad state in flat buffers.
#[derive(Debug, Clone)]
pub struct AdamBuffers {
    /// Parameters.
    pub params: Vec<f32>,
    /// First moment.
    pub m: Vec<f32>,
    /// Second moment.
    pub v: Vec<f32>,
    /// Previous gradient (diffGrad only; empty otherwise until used).
    pub prev: Vec<f32>,
    /// Steps taken.
    pub step: u32,
}

impl AdamBuffers {
    /// Zero state for `params`.
    pub fn new(params: Vec<f32>) -> Self {
        let n = params.len();
        Self {
            params,
            m: vec![0.0; n],
            v: vec![0.0; n],
            prev: vec![0.0; n],
            step: 0,
        }
    }
}

fn threads_for(n: usize, threads: usize) -> usize {
    if n < 1 << 16 { 1 } else { threads.max(1) }
}

/// Split the buffers into `t` aligned chunks and run `f` on each in a scoped thread.
fn par_chunks<F>(b: &mut AdamBuffers, g: &[f32], t: usize, f: F)
where
    F: Fn(&mut [f32], &mut [f32], &mut [f32], &mut [f32], &[f32]) + Sync,
{
    let n = b.params.len();
    let chunk = n.div_ceil(t.max(1)).max(1);
    thread::scope(|s| {
        let iter = b
            .params
            .chunks_mut(chunk)
            .zip(b.m.chunks_mut(chunk))
            .zip(b.v.chunks_mut(chunk))
            .zip(b.prev.chunks_mut(chunk))
            .zip(g.chunks(chunk));
        for ((((p, m), v), prev), g) in iter {
            let f = &f;
            s.spawn(move || f(p, m, v, prev, g));
        }
    });
}

/// One Adam step (PyTorch semantics, no weight decay) with `threads` threads.
pub fn adam_step(
    b: &mut AdamBuffers,
    g: &[f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    threads: usize,
) {
    assert_eq!(
        b.params.len(),
        g.len(),
        "gradient and parameter lengths differ"
    );
    b.step += 1;
    let t = b.step as i32;
    let step_size = lr / (1.0 - beta1.powi(t));
    let bc2_sqrt = (1.0 - beta2.powi(t)).sqrt();
    par_chunks(b, g, threads_for(g.len(), threads), |p, m, v, _, g| {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = beta1 * m[i] + (1.0 - beta1) * gi;
            let vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] -= step_size * mi / (vi.sqrt() / bc2_sqrt + eps);
        }
    });
}

/// One diffGrad step (official `diffGrad_v2.py`, no weight decay) with `threads` threads.
pub fn diffgrad_step(
    b: &mut AdamBuffers,
    g: &[f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    threads: usize,
) {
    assert_eq!(
        b.params.len(),
        g.len(),
        "gradient and parameter lengths differ"
    );
    b.step += 1;
    let t = b.step as i32;
    let step_size = lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
    par_chunks(b, g, threads_for(g.len(), threads), |p, m, v, prev, g| {
        for i in 0..p.len() {
            let gi = g[i];
            let mi = beta1 * m[i] + (1.0 - beta1) * gi;
            let vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
            let xi = 1.0 / (1.0 + (-(prev[i] - gi).abs()).exp());
            m[i] = mi;
            v[i] = vi;
            prev[i] = gi;
            p[i] -= step_size * xi * mi / (vi.sqrt() + eps);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::point::{PointOptimizer, PointStep};

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) % 2000) as f32 - 1000.0)
                    / 500.0
            })
            .collect()
    }

    #[test]
    fn fused_kernels_match_the_tensor_optimizers() {
        // More than 2^16 elements so that the threaded path runs.
        let n = 70_000;
        let x0 = data(n, 1);
        let x0f: Vec<f64> = x0.iter().map(|v| f64::from(*v)).collect();
        for diff in [false, true] {
            let mut fused = AdamBuffers::new(x0.clone());
            let mut reference: Box<dyn PointStep> = if diff {
                Box::new(PointOptimizer::new(
                    crate::diffgrad::DiffGradConfig::new().build().unwrap(),
                    &x0f,
                ))
            } else {
                Box::new(PointOptimizer::new(
                    crate::adam::AdamConfig::new().build().unwrap(),
                    &x0f,
                ))
            };
            for s in 0..5 {
                let g = data(n, 7 + s);
                if diff {
                    diffgrad_step(&mut fused, &g, 0.01, 0.9, 0.999, 1e-8, 2);
                } else {
                    adam_step(&mut fused, &g, 0.01, 0.9, 0.999, 1e-8, 2);
                }
                reference.step(0.01, &g.iter().map(|v| f64::from(*v)).collect::<Vec<_>>());
            }
            let want = reference.point();
            for (a, b) in fused.params.iter().zip(&want) {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-5,
                    "diffGrad {diff}: {a} vs {b}"
                );
            }
        }
    }
}
