//! Tasks as linear combinations of partition gradients, and the one decoder every scheme uses.
//!
//! A job is one gradient step: its data is split into `partitions` parts and its gradient is
//! g = Σₚ gₚ. A task asks a worker for Σₚ cₚ gₚ over a few partitions. From the tasks that arrived,
//! with coefficient rows C (received × partitions), the job decodes when some a has Cᵀa = 1, and
//! then g = Σₖ aₖ resultₖ. [`decoding_weights`] finds a by least squares (Householder QR) and
//! accepts it only when the residual vanishes, so decodability is checked, never assumed.

use crate::{DistError, Result};

/// One task: a job and the coefficients of the partitions it combines.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The job (round of the training loop) it belongs to.
    pub job: usize,
    /// (partition, coefficient) pairs.
    pub coeffs: Vec<(usize, f64)>,
}

impl Task {
    /// Σₚ cₚ gₚ from a function giving each partition's gradient.
    pub fn evaluate(
        &self,
        dim: usize,
        mut partition_gradient: impl FnMut(usize) -> Vec<f64>,
    ) -> Result<Vec<f64>> {
        let mut out = vec![0.0; dim];
        for &(p, c) in &self.coeffs {
            let g = partition_gradient(p);
            if g.len() != dim {
                return Err(DistError::Shape {
                    what: "partition gradient",
                    expected: dim,
                    got: g.len(),
                });
            }
            out.iter_mut().zip(&g).for_each(|(o, v)| *o += c * v);
        }
        Ok(out)
    }
}

/// Weights a with Σₖ aₖ taskₖ = Σ of all `partitions` partitions, or an error naming the job
/// when the tasks do not determine the sum (relative residual above 1e-9).
pub fn decoding_weights(job: usize, tasks: &[&Task], partitions: usize) -> Result<Vec<f64>> {
    let k = tasks.len();
    if k == 0 {
        return Err(DistError::Undecodable {
            job,
            why: "no results".into(),
        });
    }
    // A = Cᵀ (partitions × k), column-major per task.
    let mut a = vec![0.0; partitions * k];
    for (j, t) in tasks.iter().enumerate() {
        for &(p, c) in &t.coeffs {
            if p >= partitions {
                return Err(DistError::Shape {
                    what: "task partition index",
                    expected: partitions,
                    got: p,
                });
            }
            a[j * partitions + p] += c;
        }
    }
    let ones = vec![1.0; partitions];
    let x = least_squares(&mut a, partitions, k, &ones);
    // residual
    let mut r = ones.clone();
    for (t, xj) in tasks.iter().zip(&x) {
        for (p, rp) in r.iter_mut().enumerate() {
            *rp -= tasks_coeff(t, p) * xj;
        }
    }
    let res = r.iter().map(|v| v * v).sum::<f64>().sqrt();
    if !x.iter().all(|v| v.is_finite()) || res > 1e-9 * (partitions as f64).sqrt() {
        return Err(DistError::Undecodable {
            job,
            why: format!("{k} results leave a residual of {res:.2e}"),
        });
    }
    Ok(x)
}

fn tasks_coeff(t: &Task, p: usize) -> f64 {
    t.coeffs
        .iter()
        .filter(|(q, _)| *q == p)
        .map(|(_, c)| c)
        .sum()
}

/// The job's gradient from the results that arrived (`results[k]` answers `tasks[k]`).
pub fn decode(
    job: usize,
    tasks: &[&Task],
    results: &[&[f64]],
    partitions: usize,
) -> Result<Vec<f64>> {
    if tasks.len() != results.len() {
        return Err(DistError::Shape {
            what: "results",
            expected: tasks.len(),
            got: results.len(),
        });
    }
    let a = decoding_weights(job, tasks, partitions)?;
    let dim = results.first().map_or(0, |r| r.len());
    let mut g = vec![0.0; dim];
    for (w, r) in a.iter().zip(results) {
        if r.len() != dim {
            return Err(DistError::Shape {
                what: "result",
                expected: dim,
                got: r.len(),
            });
        }
        g.iter_mut().zip(r.iter()).for_each(|(g, v)| *g += w * v);
    }
    Ok(g)
}

/// The minimum-norm least-squares solution of A x ≈ b for A (m × n, column-major, overwritten) by
/// Householder QR with column pivoting; rank decided at a relative 1e-12.
fn least_squares(a: &mut [f64], m: usize, n: usize, b: &[f64]) -> Vec<f64> {
    let mut b = b.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let mut norms: Vec<f64> = (0..n)
        .map(|j| a[j * m..(j + 1) * m].iter().map(|v| v * v).sum::<f64>())
        .collect();
    let scale = norms
        .iter()
        .cloned()
        .fold(0.0f64, f64::max)
        .sqrt()
        .max(1e-300);
    let mut rank = 0;
    for k in 0..n.min(m) {
        // pivot: the column of largest remaining norm
        let (jmax, &nmax) = norms
            .iter()
            .enumerate()
            .skip(k)
            .max_by(|x, y| x.1.total_cmp(y.1))
            .expect("k < n");
        if nmax.sqrt() <= 1e-12 * scale {
            break;
        }
        if jmax != k {
            for i in 0..m {
                a.swap(k * m + i, jmax * m + i);
            }
            norms.swap(k, jmax);
            perm.swap(k, jmax);
        }
        let col = &a[k * m..(k + 1) * m];
        let alpha = col[k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        let alpha = if col[k] > 0.0 { -alpha } else { alpha };
        let mut v: Vec<f64> = col[k..].to_vec();
        v[0] -= alpha;
        let vn = v.iter().map(|x| x * x).sum::<f64>();
        if vn > 0.0 {
            for j in k..n {
                let c = &mut a[j * m..(j + 1) * m];
                let d: f64 = v.iter().zip(&c[k..]).map(|(x, y)| x * y).sum::<f64>() * 2.0 / vn;
                c[k..].iter_mut().zip(&v).for_each(|(y, x)| *y -= d * x);
            }
            let d: f64 = v.iter().zip(&b[k..]).map(|(x, y)| x * y).sum::<f64>() * 2.0 / vn;
            b[k..].iter_mut().zip(&v).for_each(|(y, x)| *y -= d * x);
        }
        for j in k + 1..n {
            norms[j] = a[j * m + k + 1..(j + 1) * m].iter().map(|v| v * v).sum();
        }
        rank += 1;
    }
    // back substitution on the leading rank × rank block (basic solution)
    let mut z = vec![0.0; n];
    for i in (0..rank).rev() {
        let s: f64 = (i + 1..rank).map(|j| a[j * m + i] * z[j]).sum();
        z[i] = (b[i] - s) / a[i * m + i];
    }
    let mut x = vec![0.0; n];
    for (i, &p) in perm.iter().enumerate() {
        x[p] = z[i];
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoder_finds_weights_exactly_when_the_sum_is_spanned() {
        // partitions 0, 1, 2; tasks g0 + g1 and g1 + g2 do not give the sum; adding g2 does.
        let t = [
            Task {
                job: 0,
                coeffs: vec![(0, 1.0), (1, 1.0)],
            },
            Task {
                job: 0,
                coeffs: vec![(1, 1.0), (2, 1.0)],
            },
            Task {
                job: 0,
                coeffs: vec![(2, 1.0)],
            },
        ];
        assert!(decoding_weights(0, &[&t[0], &t[1]], 3).is_err());
        let a = decoding_weights(0, &[&t[0], &t[1], &t[2]], 3).unwrap();
        assert!(
            (a[0] - 1.0).abs() < 1e-12 && a[1].abs() < 1e-12 && (a[2] - 1.0).abs() < 1e-12,
            "{a:?}"
        );
        let g = decode(0, &[&t[0], &t[2]], &[&[3.0, 1.0], &[0.5, 0.5]], 3).unwrap();
        assert_eq!(g, vec![3.5, 1.5]);
        assert!(decoding_weights(0, &[], 3).is_err());
    }
}
