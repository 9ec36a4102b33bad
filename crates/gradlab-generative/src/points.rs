//! Point sets as the tensors every sampler and metric here takes: `[n, d]`, f64, on the host
//! device ([`Device::flex`]); and their few host-side readings (rows, 2D pairs for plots, moments).
//!
//! ```
//! use gradlab_generative::points;
//! let x = points::from_pairs(&[[1.0, 2.0], [3.0, 4.0]]);
//! assert_eq!(points::pairs(&x).unwrap(), vec![(1.0, 2.0), (3.0, 4.0)]);
//! let (mean, cov) = points::moments(&x).unwrap();
//! assert_eq!((mean, cov[0]), (vec![2.0, 3.0], 2.0));
//! ```

use crate::{Result, invalid};
use burn::prelude::*;
use burn::tensor::DType;

/// 2D points as an `[n, 2]` tensor.
pub fn from_pairs(points: &[[f64; 2]]) -> Tensor<2> {
    let data: Vec<f64> = points.iter().flatten().copied().collect();
    Tensor::from_data(
        TensorData::new(data, [points.len(), 2]),
        (&Device::flex(), DType::F64),
    )
}

/// `n` row-major points of dimension `d` as an `[n, d]` tensor.
pub fn from_rows(data: &[f64], n: usize, d: usize) -> Result<Tensor<2>> {
    if d == 0 {
        return invalid("points need a dimension ≥ 1");
    }
    Ok(gradlab_core::bridge::from_host(
        data,
        [n, d],
        &Device::flex(),
    )?)
}

/// `n` standard normal points of dimension `d` from the stream seeded with `seed` (the order of
/// [`crate::sampling::Noise`]).
pub fn normal(n: usize, d: usize, seed: u64) -> Tensor<2> {
    crate::sampling::Noise::new(seed).normal([n, d], &Device::flex())
}

/// The values of a point set, row by row, with its size: the host view the metrics work on.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    /// Number of points.
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// `n · d` values.
    pub data: Vec<f64>,
}

impl Rows {
    /// The host view of `x` (`[n, d]`).
    pub fn of(x: &Tensor<2>) -> Result<Self> {
        let [n, d] = x.dims();
        let data = gradlab_core::bridge::to_host(x.clone())?;
        Ok(Self { n, d, data })
    }

    /// Point `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// True if every value is finite.
    pub fn is_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// The points of an `[n, 2]` set as pairs (for scatter plots).
pub fn pairs(x: &Tensor<2>) -> Result<Vec<(f64, f64)>> {
    let r = Rows::of(x)?;
    if r.d != 2 {
        return invalid(format!("points of dimension {}, not 2", r.d));
    }
    Ok(r.data.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// Per-coordinate mean and sample covariance (d × d, row-major, divisor n − 1).
pub fn moments(x: &Tensor<2>) -> Result<(Vec<f64>, Vec<f64>)> {
    let r = Rows::of(x)?;
    let d = r.d;
    let mut m = vec![0.0; d];
    for i in 0..r.n {
        m.iter_mut().zip(r.row(i)).for_each(|(a, b)| *a += b);
    }
    m.iter_mut().for_each(|a| *a /= r.n.max(1) as f64);
    let mut c = vec![0.0; d * d];
    for i in 0..r.n {
        let row = r.row(i);
        for a in 0..d {
            for b in 0..d {
                c[a * d + b] += (row[a] - m[a]) * (row[b] - m[b]);
            }
        }
    }
    c.iter_mut().for_each(|v| *v /= (r.n.max(2) - 1) as f64);
    Ok((m, c))
}
