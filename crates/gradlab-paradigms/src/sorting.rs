//! Differentiable sorting networks ("Differentiable Sorting Networks for Scalable Sorting and
//! Ranking Supervision", Petersen, Borgelt, Kuehne and Deussen, ICML 2021; official code
//! `Felix-Petersen/diffsort`), as GroCo uses them.
//!
//! A sorting network is a fixed sequence of layers of comparators; each comparator of wires
//! (a, b) is relaxed with α = f(β(x_b − x_a)) ∈ (0, 1): min = α x_a + (1 − α) x_b,
//! max = (1 − α) x_a + α x_b, and the soft permutation X (starting at I) follows the same mixing,
//! so that X[i, r] is the probability that element i lands at rank r (rows are elements, columns
//! positions, ascending), as `execute_sort` builds it. Relaxations f: the logistic σ, the Cauchy
//! CDF atan(·)/π + ½ (GroCo's), and diffsort's default `logistic_phi`,
//! σ(β(b − a)/(|a − b| + 1e-10)^λ). Networks: odd–even transposition (n layers, any n ≥ 2) and
//! bitonic (any n ≥ 2: the wires of the next power of two below the n real ones are virtual and
//! their comparators dropped, as diffsort does).
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_paradigms::sorting::{Network, Relaxation, SortingNetwork};
//! let dev = Device::flex();
//! let net = SortingNetwork::new(Network::OddEven, 3).unwrap();
//! let x = Tensor::<2>::from_floats([[3.0, 1.0, 2.0]], &dev);
//! let (sorted, perm) = net.sort(x, Relaxation::Cauchy, 1e4).unwrap();
//! let s = sorted.into_data().to_vec::<f32>().unwrap();
//! assert!((s[0] - 1.0).abs() < 1e-3 && (s[2] - 3.0).abs() < 1e-3);
//! assert_eq!(perm.dims(), [1, 3, 3]);
//! ```

use crate::error::{ParadigmError, invalid};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::sigmoid;

/// Which sorting network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Odd–even transposition sort: n layers of neighbour comparators.
    OddEven,
    /// Bitonic sort: log₂m(log₂m + 1)/2 layers for m the next power of two ≥ n.
    Bitonic,
}

/// How a comparator is relaxed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Relaxation {
    /// α = σ(β(b − a)).
    Logistic,
    /// α = atan(β(b − a))/π + ½ (GroCo's).
    Cauchy,
    /// α = σ(β(b − a)/(|a − b| + 1e-10)^λ) (diffsort's default, λ = 0.25).
    LogisticPhi {
        /// λ.
        lambda: f64,
    },
}

/// One comparator: read wires `a` < `b`; the minimum goes to `min_to`, the maximum to `max_to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Comparator {
    a: usize,
    b: usize,
    min_to: usize,
    max_to: usize,
}

/// A sorting network for a fixed number of elements.
#[derive(Debug, Clone, PartialEq)]
pub struct SortingNetwork {
    n: usize,
    layers: Vec<Vec<Comparator>>,
}

impl SortingNetwork {
    /// The network of `kind` for `n` elements (n ≥ 2; at most 1,024).
    pub fn new(kind: Network, n: usize) -> crate::Result<Self> {
        if !(2..=1024).contains(&n) {
            return invalid(format!(
                "a sorting network needs 2 to 1,024 elements, got {n}"
            ));
        }
        let layers = match kind {
            Network::OddEven => (0..n)
                .map(|layer| {
                    (layer % 2..n - 1)
                        .step_by(2)
                        .map(|i| Comparator {
                            a: i,
                            b: i + 1,
                            min_to: i,
                            max_to: i + 1,
                        })
                        .collect()
                })
                .collect(),
            Network::Bitonic => bitonic(n),
        };
        // A layer without comparators (odd–even's second layer for n = 2) changes nothing.
        let layers = layers
            .into_iter()
            .filter(|l: &Vec<Comparator>| !l.is_empty())
            .collect();
        Ok(Self { n, layers })
    }

    /// Elements the network sorts.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Always false (a network has ≥ 2 elements).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Layers of comparators.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The relaxed sort of each row of `x` [B, n] with steepness `beta`: the softly sorted values
    /// (ascending) and the soft permutation X [B, n, n], X[b, i, r] = P(element i at rank r).
    pub fn sort(
        &self,
        x: Tensor<2>,
        how: Relaxation,
        beta: f64,
    ) -> crate::Result<(Tensor<2>, Tensor<3>)> {
        let [bsz, n] = x.dims();
        if n != self.n {
            return Err(ParadigmError::Shape(format!(
                "the network sorts {} elements, got rows of {n}",
                self.n
            )));
        }
        if !(beta > 0.0 && beta.is_finite()) {
            return invalid(format!("the steepness must be positive, got {beta}"));
        }
        let dev = x.device();
        let mut x = x;
        let mut perm: Tensor<3> = Tensor::<2>::eye(n, &dev)
            .cast(x.dtype())
            .unsqueeze::<3>()
            .repeat_dim(0, bsz);
        for layer in &self.layers {
            let idx = |f: fn(&Comparator) -> usize| {
                let v: Vec<i64> = layer.iter().map(|c| f(c) as i64).collect();
                Tensor::<1, Int>::from_data(TensorData::new(v, [layer.len()]), &dev)
            };
            let (ia, ib) = (idx(|c| c.a), idx(|c| c.b));
            let (a, b) = (
                x.clone().select(1, ia.clone()),
                x.clone().select(1, ib.clone()),
            );
            let alpha = relax(b.clone() - a.clone(), how, beta);
            let one_minus = alpha.clone().neg().add_scalar(1.0);
            let lo = alpha.clone() * a.clone() + one_minus.clone() * b.clone();
            let hi = one_minus.clone() * a + alpha.clone() * b;
            let (pa, pb) = (perm.clone().select(2, ia), perm.clone().select(2, ib));
            let (alpha3, one_minus3) =
                (alpha.unsqueeze_dim::<3>(1), one_minus.unsqueeze_dim::<3>(1));
            let w_lo = alpha3.clone() * pa.clone() + one_minus3.clone() * pb.clone();
            let w_hi = one_minus3 * pa + alpha3 * pb;
            // Wires no comparator touches keep their values; the others are replaced (added as
            // differences, which autodiff supports everywhere).
            let (min_to, max_to) = (idx(|c| c.min_to), idx(|c| c.max_to));
            let (x_lo, x_hi) = (
                x.clone().select(1, min_to.clone()),
                x.clone().select(1, max_to.clone()),
            );
            let (p_lo, p_hi) = (
                perm.clone().select(2, min_to.clone()),
                perm.clone().select(2, max_to.clone()),
            );
            x = x
                .select_assign(1, min_to.clone(), lo - x_lo, IndexingUpdateOp::Add)
                .select_assign(1, max_to.clone(), hi - x_hi, IndexingUpdateOp::Add);
            perm = perm
                .select_assign(2, min_to, w_lo - p_lo, IndexingUpdateOp::Add)
                .select_assign(2, max_to, w_hi - p_hi, IndexingUpdateOp::Add);
        }
        Ok((x, perm))
    }
}

/// α of a comparator from d = b − a.
fn relax(d: Tensor<2>, how: Relaxation, beta: f64) -> Tensor<2> {
    match how {
        Relaxation::Logistic => sigmoid(d.mul_scalar(beta)),
        Relaxation::Cauchy => d
            .mul_scalar(beta)
            .atan()
            .div_scalar(std::f64::consts::PI)
            .add_scalar(0.5),
        Relaxation::LogisticPhi { lambda } => {
            let scale = d.clone().abs().add_scalar(1e-10).powf_scalar(lambda);
            sigmoid(d.mul_scalar(beta) / scale)
        }
    }
}

/// Bitonic comparators for n wires: built on m = 2^⌈log₂n⌉ wires, the first m − n virtual; a
/// comparator between two real wires is kept (shifted by m − n), others are dropped (a virtual
/// wire holds −∞, so such a comparator leaves the real wire where it is).
fn bitonic(n: usize) -> Vec<Vec<Comparator>> {
    let blocks = n.next_power_of_two().trailing_zeros() as usize;
    let m = 1usize << blocks;
    let off = m - n;
    let mut layers = vec![];
    for block in 0..blocks {
        for layer in 0..=block {
            let span = 1usize << (block - layer);
            let mut cmps = vec![];
            for i in (0..m).step_by(2 * span) {
                for j in 0..span {
                    let (a, b) = (i + j, i + j + span);
                    if a < off || b < off {
                        continue;
                    }
                    let descending = ((i + j) >> (block + 1)) % 2 == 1;
                    let (a, b) = (a - off, b - off);
                    let (min_to, max_to) = if descending { (b, a) } else { (a, b) };
                    cmps.push(Comparator {
                        a,
                        b,
                        min_to,
                        max_to,
                    });
                }
            }
            if !cmps.is_empty() {
                layers.push(cmps);
            }
        }
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use gradlab_core::bridge::{from_host, to_host};
    use rand::prelude::*;

    fn rows(v: &[f64], n: usize) -> Tensor<2> {
        from_host(v, [v.len() / n, n], &Device::flex()).unwrap()
    }

    /// At large steepness both networks sort exactly, and X is the hard permutation matrix.
    #[test]
    fn a_steep_relaxation_is_a_hard_sort() {
        let mut rng = StdRng::seed_from_u64(1);
        for kind in [Network::OddEven, Network::Bitonic] {
            for n in [2, 3, 5, 8, 11, 16] {
                let net = SortingNetwork::new(kind, n).unwrap();
                let v: Vec<f64> = (0..4 * n).map(|_| rng.random_range(-5.0..5.0)).collect();
                for how in [
                    Relaxation::Logistic,
                    Relaxation::Cauchy,
                    Relaxation::LogisticPhi { lambda: 0.25 },
                ] {
                    let beta = if how == Relaxation::Cauchy { 1e9 } else { 1e6 };
                    let (sorted, perm) = net.sort(rows(&v, n), how, beta).unwrap();
                    let (s, p) = (to_host(sorted).unwrap(), to_host(perm).unwrap());
                    for r in 0..4 {
                        let mut want = v[r * n..(r + 1) * n].to_vec();
                        want.sort_by(|a, b| a.partial_cmp(b).unwrap());
                        for k in 0..n {
                            assert!(
                                (s[r * n + k] - want[k]).abs() < 1e-6,
                                "{kind:?} {how:?} n = {n}: {:?} vs {want:?}",
                                &s[r * n..(r + 1) * n]
                            );
                        }
                        for i in 0..n {
                            // Element i lands at the rank of its value.
                            let rank = want.iter().position(|w| *w == v[r * n + i]).unwrap();
                            assert!(
                                (p[(r * n + i) * n + rank] - 1.0).abs() < 1e-6,
                                "{kind:?} {how:?} n = {n}, element {i}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// At any steepness X is doubly stochastic (each layer mixes pairs of columns convexly), and
    /// the soft-sorted values are X applied to the inputs.
    #[test]
    fn the_soft_permutation_is_doubly_stochastic() {
        let mut rng = StdRng::seed_from_u64(2);
        for kind in [Network::OddEven, Network::Bitonic] {
            let n = 7;
            let net = SortingNetwork::new(kind, n).unwrap();
            let v: Vec<f64> = (0..3 * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let (sorted, perm) = net.sort(rows(&v, n), Relaxation::Cauchy, 1.0).unwrap();
            let (s, p) = (to_host(sorted).unwrap(), to_host(perm).unwrap());
            for b in 0..3 {
                for i in 0..n {
                    let row: f64 = (0..n).map(|r| p[(b * n + i) * n + r]).sum();
                    let col: f64 = (0..n).map(|e| p[(b * n + e) * n + i]).sum();
                    assert!(
                        (row - 1.0).abs() < 1e-12 && (col - 1.0).abs() < 1e-12,
                        "{kind:?}: {row} {col}"
                    );
                    let mixed: f64 = (0..n).map(|e| p[(b * n + e) * n + i] * v[b * n + e]).sum();
                    assert!((mixed - s[b * n + i]).abs() < 1e-12);
                }
            }
        }
    }

    /// Gradients of a weighted sum of X's entries against central differences (f64).
    #[test]
    fn the_gradients_match_finite_differences() {
        let n = 5;
        let v = [0.3, -0.2, 0.9, 0.1, -0.7];
        let w: Vec<f64> = (0..n * n).map(|k| ((k * 7) % 5) as f64 - 2.0).collect();
        for kind in [Network::OddEven, Network::Bitonic] {
            let net = SortingNetwork::new(kind, n).unwrap();
            let f = |x: Tensor<2>| -> Tensor<1> {
                let (s, p) = net.sort(x, Relaxation::Cauchy, 2.0).unwrap();
                let wt = from_host(&w, [1, n, n], &p.device()).unwrap();
                (p * wt).sum() + s.slice([0..1, 0..1]).sum().mul_scalar(3.0)
            };
            let dev = Device::flex().autodiff();
            let x = from_host(&v, [1, n], &dev).unwrap().require_grad();
            let grads = f(x.clone()).backward();
            let g = to_host(x.grad(&grads).unwrap()).unwrap();
            for i in 0..n {
                let (mut a, mut b) = (v.to_vec(), v.to_vec());
                a[i] += 1e-6;
                b[i] -= 1e-6;
                let fd = (to_host(f(rows(&a, n))).unwrap()[0]
                    - to_host(f(rows(&b, n))).unwrap()[0])
                    / 2e-6;
                assert!(
                    (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{kind:?}, input {i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn unsupported_sizes_and_inputs_are_refused_with_the_value() {
        assert!(
            SortingNetwork::new(Network::OddEven, 1)
                .unwrap_err()
                .to_string()
                .contains("got 1")
        );
        assert!(
            SortingNetwork::new(Network::Bitonic, 5000)
                .unwrap_err()
                .to_string()
                .contains("got 5000")
        );
        let net = SortingNetwork::new(Network::Bitonic, 4).unwrap();
        assert_eq!(net.depth(), 3);
        assert!(
            net.sort(rows(&[1.0, 2.0, 3.0], 3), Relaxation::Logistic, 1.0)
                .unwrap_err()
                .to_string()
                .contains("rows of 3")
        );
        assert!(
            net.sort(rows(&[1.0, 2.0, 3.0, 4.0], 4), Relaxation::Logistic, 0.0)
                .is_err()
        );
    }
}
