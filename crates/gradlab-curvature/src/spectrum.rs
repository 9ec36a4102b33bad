//! Hessian spectra from Hessian-vector products alone (as PyHessian does; Yao et al., "PyHessian:
//! Neural Networks Through the Lens of the Hessian", arXiv 1912.07145):
//!
//! - top-k eigenpairs by power iteration with deflation (each iterate is kept orthogonal to the
//!   eigenvectors already found);
//! - Lanczos with full reorthogonalisation: m steps give a tridiagonal T_m whose eigenvalues
//!   (Ritz values) approximate the extremes of the spectrum;
//! - the spectral density by stochastic Lanczos quadrature (SLQ; Ubaru, Chen, Saad 2017, and
//!   Ghorbani, Krishnan, Xiao 2019): for random unit probes v, the eigenvalues θᵢ of T_m with
//!   weights τᵢ² (squared first components of T_m's eigenvectors) form a quadrature of
//!   vᵀ f(H) v ≈ Σᵢ τᵢ² f(θᵢ), whose average over probes estimates tr f(H)/n;
//! - the trace by Hutchinson's estimator tr H = E[zᵀHz] with Rademacher z.
//!
//! Small symmetric matrices (T_m, or a dense Hessian in tests) are diagonalised by cyclic Jacobi
//! rotations ([`symmetric_eigen`]).
//!
//! ```
//! use gradlab_curvature::spectrum::{DenseHessian, lanczos_eigenvalues, hutchinson_trace};
//! let h = DenseHessian::new(vec![2.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0, 0.0, -1.0], 3).unwrap();
//! let ritz = lanczos_eigenvalues(&h, 3, 0).unwrap();
//! assert!((ritz[0] - 5.0).abs() < 1e-10 && (ritz[2] + 1.0).abs() < 1e-10);
//! // Rademacher probes give a diagonal matrix's trace exactly.
//! assert!((hutchinson_trace(&h, 4, 0).unwrap().0 - 6.0).abs() < 1e-12);
//! ```

use crate::hvp::{CurvatureError, HessianVectorProduct};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Result<T> = std::result::Result<T, CurvatureError>;

/// An explicit symmetric matrix as a [`HessianVectorProduct`] (tests, small problems).
#[derive(Debug, Clone)]
pub struct DenseHessian {
    a: Vec<f64>,
    n: usize,
}

impl DenseHessian {
    /// A row-major n × n matrix (it should be symmetric).
    pub fn new(a: Vec<f64>, n: usize) -> Result<Self> {
        if a.len() != n * n || n == 0 {
            return Err(CurvatureError::Invalid(format!(
                "a dense Hessian needs n² = {} entries for n = {n}, got {}",
                n * n,
                a.len()
            )));
        }
        Ok(Self { a, n })
    }
}

impl HessianVectorProduct for DenseHessian {
    fn dim(&self) -> usize {
        self.n
    }
    fn hvp(&self, v: &[f64]) -> Result<Vec<f64>> {
        check_len(self.n, v)?;
        Ok(self.a.chunks(self.n).map(|row| dot(row, v)).collect())
    }
}

fn check_len(n: usize, v: &[f64]) -> Result<()> {
    if v.len() == n {
        Ok(())
    } else {
        Err(CurvatureError::Shape {
            expected: n,
            got: v.len(),
        })
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    y.iter_mut().zip(x).for_each(|(y, x)| *y += alpha * x);
}

/// Removes from `v` its components along the orthonormal `basis` (twice, for stability).
fn orthogonalize(v: &mut [f64], basis: &[Vec<f64>]) {
    for _ in 0..2 {
        for b in basis {
            let c = dot(v, b);
            axpy(v, -c, b);
        }
    }
}

fn gaussian_unit(n: usize, rng: &mut StdRng) -> Vec<f64> {
    loop {
        let v: Vec<f64> = (0..n)
            .map(|_| rng.sample::<f64, _>(rand_distr::StandardNormal))
            .collect();
        let s = norm(&v);
        if s > 0.0 {
            return v.into_iter().map(|x| x / s).collect();
        }
    }
}

fn checked_hvp(h: &impl HessianVectorProduct, v: &[f64]) -> Result<Vec<f64>> {
    let hv = h.hvp(v)?;
    if hv.iter().all(|x| x.is_finite()) {
        Ok(hv)
    } else {
        Err(CurvatureError::NonFinite {
            what: "Hessian-vector product",
        })
    }
}

fn check_count(what: &str, k: usize, n: usize) -> Result<()> {
    if k == 0 || k > n {
        Err(CurvatureError::Invalid(format!(
            "{what} = {k} must be between 1 and the dimension {n}"
        )))
    } else {
        Ok(())
    }
}

/// One eigenpair.
#[derive(Debug, Clone, PartialEq)]
pub struct EigenPair {
    /// The eigenvalue.
    pub value: f64,
    /// A unit eigenvector.
    pub vector: Vec<f64>,
}

/// The `k` eigenvalues of largest magnitude (and their vectors) by power iteration with deflation,
/// each run until the Rayleigh quotient changes by less than `tol` (relative) or `max_iter`
/// products; ordered as found (largest magnitude first).
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < b)` is meant: NaN must fail the check
pub fn power_iteration(
    h: &impl HessianVectorProduct,
    k: usize,
    max_iter: usize,
    tol: f64,
    seed: u64,
) -> Result<Vec<EigenPair>> {
    let n = h.dim();
    check_count("the number of eigenvalues k", k, n)?;
    if !(tol > 0.0) {
        return Err(CurvatureError::Invalid(format!(
            "tolerance {tol} must be > 0"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut found: Vec<EigenPair> = vec![];
    for _ in 0..k {
        let basis: Vec<Vec<f64>> = found.iter().map(|p| p.vector.clone()).collect();
        let mut v = gaussian_unit(n, &mut rng);
        orthogonalize(&mut v, &basis);
        let s = norm(&v);
        v.iter_mut().for_each(|x| *x /= s);
        let mut value = 0.0;
        for it in 0..max_iter.max(1) {
            let mut hv = checked_hvp(h, &v)?;
            orthogonalize(&mut hv, &basis);
            let new_value = dot(&v, &hv);
            let s = norm(&hv);
            if s == 0.0 {
                value = 0.0;
                break;
            }
            v = hv.into_iter().map(|x| x / s).collect();
            let converged =
                it > 0 && (new_value - value).abs() <= tol * new_value.abs().max(1e-300);
            value = new_value;
            if converged {
                break;
            }
        }
        found.push(EigenPair { value, vector: v });
    }
    Ok(found)
}

/// The Lanczos tridiagonal matrix: diagonal `alpha` (length m) and off-diagonal `beta` (m − 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Tridiagonal {
    /// Diagonal.
    pub alpha: Vec<f64>,
    /// Off-diagonal.
    pub beta: Vec<f64>,
}

impl Tridiagonal {
    /// Eigenvalues (descending) and the squared first components of the eigenvectors (the
    /// quadrature weights of the start vector).
    pub fn eigen(&self) -> (Vec<f64>, Vec<f64>) {
        let m = self.alpha.len();
        let mut a = vec![0.0; m * m];
        for i in 0..m {
            a[i * m + i] = self.alpha[i];
            if i + 1 < m {
                a[i * m + i + 1] = self.beta[i];
                a[(i + 1) * m + i] = self.beta[i];
            }
        }
        let (values, vectors) = symmetric_eigen(&a, m);
        let weights = (0..m).map(|j| vectors[j].powi(2)).collect();
        (values, weights)
    }
}

/// m Lanczos steps from the unit vector `v0`, with full reorthogonalisation; stops early (shorter
/// T) if an invariant subspace is found.
pub fn lanczos(h: &impl HessianVectorProduct, m: usize, v0: &[f64]) -> Result<Tridiagonal> {
    let n = h.dim();
    check_count("the number of Lanczos steps m", m, n)?;
    check_len(n, v0)?;
    let s = norm(v0);
    if !(s > 0.0 && s.is_finite()) {
        return Err(CurvatureError::Invalid(
            "the Lanczos start vector must be non-zero and finite".into(),
        ));
    }
    let mut basis: Vec<Vec<f64>> = vec![v0.iter().map(|x| x / s).collect()];
    let (mut alpha, mut beta) = (vec![], vec![]);
    for j in 0..m {
        let mut w = checked_hvp(h, &basis[j])?;
        let a = dot(&w, &basis[j]);
        alpha.push(a);
        if j + 1 == m {
            break;
        }
        orthogonalize(&mut w, &basis);
        let b = norm(&w);
        if b <= 1e-12 * a.abs().max(1.0) {
            break;
        }
        beta.push(b);
        basis.push(w.into_iter().map(|x| x / b).collect());
    }
    Ok(Tridiagonal { alpha, beta })
}

/// Ritz values (descending) of m Lanczos steps from a seeded random start: the top and bottom of
/// the spectrum converge first.
pub fn lanczos_eigenvalues(h: &impl HessianVectorProduct, m: usize, seed: u64) -> Result<Vec<f64>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let v0 = gaussian_unit(h.dim(), &mut rng);
    Ok(lanczos(h, m, &v0)?.eigen().0)
}

/// A spectral density as a sum of weighted nodes (weights sum to 1).
#[derive(Debug, Clone, PartialEq)]
pub struct SpectralDensity {
    /// Quadrature nodes (eigenvalue estimates), probe after probe.
    pub nodes: Vec<f64>,
    /// Their weights (each probe's sum to 1/probes).
    pub weights: Vec<f64>,
    /// How many of the nodes each probe contributed, in order.
    pub run_lengths: Vec<usize>,
}

impl SpectralDensity {
    /// ∫ λᵖ dμ(λ) ≈ tr(Hᵖ)/n.
    pub fn moment(&self, p: i32) -> f64 {
        self.nodes
            .iter()
            .zip(&self.weights)
            .map(|(x, w)| w * x.powi(p))
            .sum()
    }

    /// The density in PyHessian's convention (`density_plot.py`, `density_generate`), so that the
    /// two can be compared point by point: `bins` points (PyHessian: 10,000) evenly from
    /// mean_runs(min node) − 0.01 to mean_runs(max node) + 0.01; each node a Gaussian of
    /// *variance* σ² = 10⁻⁵·max(1, range) (PyHessian's `sigma`, passed as `sigma_squared`), the
    /// runs averaged, and the result renormalised to unit mass by its Riemann sum on the grid.
    /// Returns (grid, density).
    pub fn pyhessian_density(&self, bins: usize) -> Result<(Vec<f64>, Vec<f64>)> {
        if bins < 2 || self.run_lengths.contains(&0) || self.run_lengths.is_empty() {
            return Err(CurvatureError::Invalid(
                "a density needs at least 2 bins and a node in every run".into(),
            ));
        }
        let (mut lo, mut hi, mut start) = (0.0, 0.0, 0);
        for &len in &self.run_lengths {
            let run = &self.nodes[start..start + len];
            lo += run.iter().cloned().fold(f64::INFINITY, f64::min);
            hi += run.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            start += len;
        }
        let runs = self.run_lengths.len() as f64;
        let (lo, hi) = (lo / runs - 0.01, hi / runs + 0.01);
        let step = (hi - lo) / (bins - 1) as f64;
        let grid: Vec<f64> = (0..bins).map(|i| lo + step * i as f64).collect();
        let var = 1e-5 * (hi - lo).max(1.0);
        let dens = self.smoothed(&grid, var.sqrt());
        let mass = dens.iter().sum::<f64>() * step;
        if !(mass > 0.0 && mass.is_finite()) {
            return Err(CurvatureError::NonFinite {
                what: "density normalisation",
            });
        }
        Ok((grid, dens.into_iter().map(|d| d / mass).collect()))
    }

    /// The density smoothed by Gaussians of standard deviation `sigma`, at the points `grid`
    /// (gradlab's convention: not renormalised; see [`SpectralDensity::pyhessian_density`]).
    pub fn smoothed(&self, grid: &[f64], sigma: f64) -> Vec<f64> {
        let c = 1.0 / (sigma * (2.0 * std::f64::consts::PI).sqrt());
        grid.iter()
            .map(|t| {
                self.nodes
                    .iter()
                    .zip(&self.weights)
                    .map(|(x, w)| w * c * (-(t - x).powi(2) / (2.0 * sigma * sigma)).exp())
                    .sum()
            })
            .collect()
    }
}

/// The spectral density by SLQ: `probes` random unit start vectors, m Lanczos steps each.
pub fn slq_density(
    h: &impl HessianVectorProduct,
    m: usize,
    probes: usize,
    seed: u64,
) -> Result<SpectralDensity> {
    if probes == 0 {
        return Err(CurvatureError::Invalid(
            "SLQ needs at least one probe".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut nodes, mut weights, mut run_lengths) = (vec![], vec![], vec![]);
    for _ in 0..probes {
        let v0 = gaussian_unit(h.dim(), &mut rng);
        let (theta, tau) = lanczos(h, m, &v0)?.eigen();
        run_lengths.push(theta.len());
        nodes.extend(theta);
        weights.extend(tau.into_iter().map(|t| t / probes as f64));
    }
    Ok(SpectralDensity {
        nodes,
        weights,
        run_lengths,
    })
}

/// Hutchinson's trace estimate tr H ≈ mean of zᵀHz over `samples` Rademacher vectors z, with its
/// standard error.
pub fn hutchinson_trace(
    h: &impl HessianVectorProduct,
    samples: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    if samples == 0 {
        return Err(CurvatureError::Invalid(
            "Hutchinson's estimator needs at least one sample".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut values = Vec::with_capacity(samples);
    for _ in 0..samples {
        let z: Vec<f64> = (0..h.dim())
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        values.push(dot(&z, &checked_hvp(h, &z)?));
    }
    let mean = values.iter().sum::<f64>() / samples as f64;
    let var = if samples > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (samples - 1) as f64
    } else {
        f64::NAN
    };
    Ok((mean, (var / samples as f64).sqrt()))
}

/// Eigen-decomposition of a symmetric n × n matrix (row-major) by cyclic Jacobi rotations:
/// eigenvalues in descending order and the matching unit eigenvectors as the columns of a
/// row-major n × n matrix. For small matrices (tridiagonals of Lanczos, dense test Hessians).
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum::<f64>()
            .sqrt();
        if off <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let (app, aqq) = (a[p * n + p], a[q * n + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut vectors = vec![0.0; n * n];
    for (col, &i) in order.iter().enumerate() {
        for k in 0..n {
            vectors[k * n + col] = v[k * n + i];
        }
    }
    (values, vectors)
}

/// The empirical Fisher F = (1/N) Σᵢ gᵢgᵢᵀ of N per-example gradients (row-major N × d) as a
/// matrix-free product F v = (1/N) Gᵀ(G v): Fisher spectra with the same tools as Hessians.
#[derive(Debug, Clone)]
pub struct EmpiricalFisher {
    g: Vec<f64>,
    d: usize,
}

impl EmpiricalFisher {
    /// From N ≥ 1 rows of length `dim`.
    pub fn new(per_example: Vec<f64>, dim: usize) -> Result<Self> {
        if dim == 0 || per_example.is_empty() || !per_example.len().is_multiple_of(dim) {
            return Err(CurvatureError::Invalid(format!(
                "per-example gradients must be whole rows of length {dim}, got {} values",
                per_example.len()
            )));
        }
        if per_example.iter().any(|v| !v.is_finite()) {
            return Err(CurvatureError::NonFinite {
                what: "per-example gradient",
            });
        }
        Ok(Self {
            g: per_example,
            d: dim,
        })
    }
}

impl HessianVectorProduct for EmpiricalFisher {
    fn dim(&self) -> usize {
        self.d
    }
    fn hvp(&self, v: &[f64]) -> Result<Vec<f64>> {
        check_len(self.d, v)?;
        let n = (self.g.len() / self.d) as f64;
        let mut out = vec![0.0; self.d];
        for row in self.g.chunks(self.d) {
            axpy(&mut out, dot(row, v) / n, row);
        }
        Ok(out)
    }
}
