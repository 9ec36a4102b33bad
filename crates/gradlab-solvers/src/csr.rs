//! Compressed sparse rows.

use crate::{Result, SolverError};

/// A square sparse matrix in CSR form (column indices sorted within each row, no duplicates).
#[derive(Debug, Clone, PartialEq)]
pub struct Csr {
    n: usize,
    indptr: Vec<usize>,
    indices: Vec<usize>,
    values: Vec<f64>,
}

impl Csr {
    /// From (row, column, value) triplets of an n × n matrix; duplicates are summed. An error for
    /// an index outside the matrix or a non-finite value.
    pub fn from_triplets(n: usize, triplets: &[(usize, usize, f64)]) -> Result<Self> {
        let mut t: Vec<(usize, usize, f64)> = Vec::with_capacity(triplets.len());
        for &(i, j, v) in triplets {
            if i >= n || j >= n {
                return Err(SolverError::Shape {
                    what: "matrix entry".into(),
                    expected: format!("row and column < {n}"),
                    got: format!("({i}, {j})"),
                });
            }
            if !v.is_finite() {
                return Err(SolverError::NonFinite(format!("matrix entry ({i}, {j})")));
            }
            t.push((i, j, v));
        }
        t.sort_by_key(|&(i, j, _)| (i, j));
        let mut indptr = vec![0; n + 1];
        let (mut indices, mut values): (Vec<usize>, Vec<f64>) = (vec![], vec![]);
        let mut last: Option<(usize, usize)> = None;
        for (i, j, v) in t {
            if last == Some((i, j)) {
                *values.last_mut().expect("a previous entry") += v;
                continue;
            }
            indices.push(j);
            values.push(v);
            indptr[i + 1] += 1;
            last = Some((i, j));
        }
        for i in 0..n {
            indptr[i + 1] += indptr[i];
        }
        Ok(Self {
            n,
            indptr,
            indices,
            values,
        })
    }

    /// n.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    /// A x.
    pub fn mul(&self, x: &[f64]) -> Vec<f64> {
        let mut y = vec![0.0; self.n];
        self.mul_into(x, &mut y);
        y
    }

    /// y ← A x.
    pub fn mul_into(&self, x: &[f64], y: &mut [f64]) {
        for (i, yi) in y.iter_mut().enumerate() {
            let (lo, hi) = (self.indptr[i], self.indptr[i + 1]);
            *yi = self.indices[lo..hi]
                .iter()
                .zip(&self.values[lo..hi])
                .map(|(&j, v)| v * x[j])
                .sum();
        }
    }

    /// The diagonal.
    pub fn diagonal(&self) -> Vec<f64> {
        (0..self.n).map(|i| self.get(i, i)).collect()
    }

    /// A_{ij} (0 when not stored).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        let (lo, hi) = (self.indptr[i], self.indptr[i + 1]);
        self.indices[lo..hi]
            .binary_search(&j)
            .map_or(0.0, |k| self.values[lo + k])
    }

    /// An error unless A is symmetric (to a relative 1e-12) with a positive diagonal: the cheap
    /// necessary conditions of SPD (the solvers detect the rest, pᵀAp ≤ 0).
    pub fn check_spd_shape(&self) -> Result<()> {
        for i in 0..self.n {
            let d = self.get(i, i);
            if d <= 0.0 {
                return Err(SolverError::NotSpd(format!("diagonal entry {i} is {d}")));
            }
            for k in self.indptr[i]..self.indptr[i + 1] {
                let (j, v) = (self.indices[k], self.values[k]);
                let t = self.get(j, i);
                if (v - t).abs() > 1e-12 * (v.abs() + t.abs()).max(1e-300) {
                    return Err(SolverError::NotSpd(format!(
                        "A[{i}, {j}] = {v} but A[{j}, {i}] = {t}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The dense matrix (row-major), for tests on tiny systems.
    pub fn to_dense(&self) -> Vec<f64> {
        let mut d = vec![0.0; self.n * self.n];
        for i in 0..self.n {
            for k in self.indptr[i]..self.indptr[i + 1] {
                d[i * self.n + self.indices[k]] = self.values[k];
            }
        }
        d
    }

    /// (row, column, value) of every stored entry.
    pub fn triplets(&self) -> Vec<(usize, usize, f64)> {
        (0..self.n)
            .flat_map(|i| (self.indptr[i]..self.indptr[i + 1]).map(move |k| (i, k, 0.0)))
            .map(|(i, k, _)| (i, self.indices[k], self.values[k]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triplets_products_and_checks() {
        let a = Csr::from_triplets(
            3,
            &[
                (0, 0, 2.0),
                (0, 1, -1.0),
                (1, 0, -1.0),
                (1, 1, 2.0),
                (2, 2, 1.0),
                (2, 2, 1.0),
            ],
        )
        .unwrap();
        assert_eq!(a.mul(&[1.0, 2.0, 3.0]), vec![0.0, 3.0, 6.0]);
        assert_eq!(a.diagonal(), vec![2.0, 2.0, 2.0]);
        assert!(a.check_spd_shape().is_ok());
        let b = Csr::from_triplets(2, &[(0, 0, 1.0), (0, 1, 0.5), (1, 1, 1.0)]).unwrap();
        assert!(b.check_spd_shape().is_err());
        assert!(Csr::from_triplets(2, &[(0, 2, 1.0)]).is_err());
        assert!(Csr::from_triplets(2, &[(0, 0, f64::NAN)]).is_err());
    }
}
