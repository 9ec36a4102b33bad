//! The 2-D Poisson equation −∇²u = f on an n × n grid of cells (5-point stencil, unit spacing),
//! with Dirichlet u = 0 outside the grid and solid obstacle cells whose walls are Neumann
//! (∂u/∂n = 0), as in the pressure solves DCDM was made for. Unknowns are the fluid cells; row i
//! has diagonal = the number of non-solid neighbours (fluid or outside) and −1 for each fluid
//! neighbour. A is SPD exactly when every fluid region touches the outer boundary, which
//! [`Poisson::new`] checks.
//!
//! ```
//! use gradlab_solvers::poisson::Poisson;
//! let p = Poisson::square(4).unwrap();
//! assert_eq!(p.a.n(), 16);
//! // the smallest eigenvalue in closed form, 4 − 4cos(π/(n+1))
//! let v = p.sine_mode(1, 1);
//! let av = p.a.mul(&v);
//! let lam = 4.0 - 4.0 * (std::f64::consts::PI / 5.0).cos();
//! assert!(av.iter().zip(&v).all(|(a, b)| (a - lam * b).abs() < 1e-12));
//! ```

use crate::{Csr, Result, SolverError};
use std::f64::consts::PI;

/// A Poisson system on a grid.
#[derive(Debug, Clone)]
pub struct Poisson {
    /// Grid side n.
    pub n: usize,
    /// solid[r·n + c]: whether cell (r, c) is an obstacle.
    pub solid: Vec<bool>,
    /// Unknown index of each cell (None for solids).
    pub index: Vec<Option<usize>>,
    /// The matrix.
    pub a: Csr,
}

impl Poisson {
    /// The empty square (no obstacles).
    pub fn square(n: usize) -> Result<Self> {
        Self::new(n, vec![false; n * n])
    }

    /// The square with a solid disc of radius `radius` cells centred at (`cy`, `cx`) (fractions of
    /// the side).
    pub fn with_disc(n: usize, cy: f64, cx: f64, radius: f64) -> Result<Self> {
        let solid = (0..n * n)
            .map(|k| {
                let (r, c) = ((k / n) as f64 + 0.5, (k % n) as f64 + 0.5);
                ((r - cy * n as f64).powi(2) + (c - cx * n as f64).powi(2)).sqrt()
                    < radius * n as f64
            })
            .collect();
        Self::new(n, solid)
    }

    /// A grid with obstacles; an error if the sizes differ, no cell is fluid, or a fluid region is
    /// sealed off from the outer boundary (A would be singular).
    pub fn new(n: usize, solid: Vec<bool>) -> Result<Self> {
        if n == 0 || solid.len() != n * n {
            return Err(SolverError::Shape {
                what: "obstacle mask".into(),
                expected: format!("{} cells (n = {n} > 0)", n * n),
                got: solid.len().to_string(),
            });
        }
        let mut index = vec![None; n * n];
        let mut k = 0;
        for (cell, s) in solid.iter().enumerate() {
            if !s {
                index[cell] = Some(k);
                k += 1;
            }
        }
        if k == 0 {
            return Err(SolverError::Invalid {
                what: "Poisson grid",
                why: "every cell is solid".into(),
            });
        }
        // every fluid region must touch the boundary
        let mut reached = vec![false; n * n];
        let mut stack: Vec<usize> = (0..n * n)
            .filter(|&c| {
                !solid[c] && (c / n == 0 || c / n == n - 1 || c % n == 0 || c % n == n - 1)
            })
            .collect();
        stack.iter().for_each(|&c| reached[c] = true);
        while let Some(c) = stack.pop() {
            for nb in neighbours(n, c).into_iter().flatten() {
                if !solid[nb] && !reached[nb] {
                    reached[nb] = true;
                    stack.push(nb);
                }
            }
        }
        if let Some(c) = (0..n * n).find(|&c| !solid[c] && !reached[c]) {
            return Err(SolverError::NotSpd(format!(
                "fluid cell ({}, {}) is sealed off from the boundary by obstacles (a pure Neumann region)",
                c / n,
                c % n
            )));
        }
        let mut t = vec![];
        for cell in 0..n * n {
            let Some(i) = index[cell] else { continue };
            let mut diag = 0.0;
            for nb in neighbours(n, cell) {
                match nb {
                    None => diag += 1.0, // Dirichlet outside
                    Some(m) if !solid[m] => {
                        diag += 1.0;
                        t.push((i, index[m].expect("fluid"), -1.0));
                    }
                    Some(_) => {} // Neumann wall
                }
            }
            t.push((i, i, diag));
        }
        Ok(Self {
            n,
            a: Csr::from_triplets(k, &t)?,
            solid,
            index,
        })
    }

    /// The grid image (n × n, zeros at solids) of an unknown vector.
    pub fn scatter(&self, x: &[f64]) -> Vec<f64> {
        self.index.iter().map(|i| i.map_or(0.0, |i| x[i])).collect()
    }

    /// The unknown vector of a grid image.
    pub fn gather(&self, grid: &[f64]) -> Vec<f64> {
        self.index
            .iter()
            .zip(grid)
            .filter_map(|(i, v)| i.map(|_| *v))
            .collect()
    }

    /// The eigenvector sin(πky(r+1)/(n+1))·sin(πkx(c+1)/(n+1)) of the empty square (kx, ky ≥ 1),
    /// eigenvalue 4 − 2cos(πkx/(n+1)) − 2cos(πky/(n+1)); meaningful without obstacles only.
    pub fn sine_mode(&self, kx: usize, ky: usize) -> Vec<f64> {
        let h = PI / (self.n + 1) as f64;
        let grid: Vec<f64> = (0..self.n * self.n)
            .map(|k| {
                ((ky as f64) * h * ((k / self.n) + 1) as f64).sin()
                    * ((kx as f64) * h * ((k % self.n) + 1) as f64).sin()
            })
            .collect();
        self.gather(&grid)
    }
}

/// The four neighbours of a cell (None: outside the grid).
fn neighbours(n: usize, c: usize) -> [Option<usize>; 4] {
    let (r, col) = (c / n, c % n);
    [
        (r > 0).then(|| c - n),
        (r + 1 < n).then(|| c + n),
        (col > 0).then(|| c - 1),
        (col + 1 < n).then(|| c + 1),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obstacles_make_neumann_walls_and_sealed_regions_are_refused() {
        let p = Poisson::with_disc(16, 0.5, 0.5, 0.2).unwrap();
        assert!(p.a.n() < 256);
        p.a.check_spd_shape().unwrap();
        // a cell beside the disc has a smaller diagonal
        assert!(p.a.diagonal().iter().any(|d| *d < 4.0 && *d > 0.0));
        // a ring of solids around the centre seals a pocket
        let n = 7;
        let solid: Vec<bool> = (0..n * n)
            .map(|k| {
                let (r, c) = (k / n, k % n);
                (1..=5).contains(&r) && (1..=5).contains(&c) && !(r == 3 && c == 3)
            })
            .collect();
        assert!(matches!(
            Poisson::new(n, solid),
            Err(SolverError::NotSpd(_))
        ));
        assert!(Poisson::new(3, vec![true; 9]).is_err());
        assert!(Poisson::new(3, vec![false; 8]).is_err());
    }
}
