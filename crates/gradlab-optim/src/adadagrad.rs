//! AdAdaGrad and AdAdaGrad-Norm (Lau, Liu, Kolar, "AdAdaGrad: Adaptive Batch Size Schemes for
//! Adaptive Gradient Methods", arXiv 2402.11215): AdaGrad(-Norm) steps whose batch size grows
//! when the per-example gradients of the current batch are too noisy for its mean gradient ḡ.
//!
//! - Norm test: b ← max(b, ⌈Σ_j Var_i(∂_j f_i) / (η²‖ḡ‖²)⌉).
//! - Augmented inner-product test: b ← max(b, ⌈max(Var_i⟨∇f_i, ḡ⟩ / (θ²‖ḡ‖⁴),
//!   Σ_j Var_i((∇f_i)^⊥_j) / (ν²‖ḡ‖²))⌉), with ⊥ the component orthogonal to ḡ.
//!
//! Variances are unbiased (÷(b−1)), as in the official `tests.py` (timlautk/AdAdaGrad). The
//! official code sums the inner-product and orthogonal variances per parameter tensor
//! ([`BatchTest::InnerProductPerTensor`]); [`BatchTest::InnerProduct`] takes them over all
//! parameters at once, as the paper writes them. Constants of the README's example: η = 0.1,
//! θ = 0.5, ν = 1 (the official argparse defaults are 0.1 for all three).
//!
//! AdaGrad-Norm: b_t² = b_0² + Σ_{s≤t} ‖ḡ_s‖², x ← x − α ḡ/b_t (the paper's scalar form), or with
//! the official per-output-row accumulators ([`AdaGradNormConfig::layers`]).
//!
//! [`AdAdaGrad`] is the whole method as a [`Solver`] over any problem with per-example gradients
//! ([`PerExampleGradients`]: a closed-form regression, a burn network through
//! `gradlab_curvature::model::ModelGradient`), run by [`gradlab_core::solve::solve`]: draw a batch
//! of the current size, step with its mean gradient, let the test set the next size.
//!
//! ```
//! use gradlab_optim::adadagrad::{BatchTest, PerExampleGrads};
//! // Two examples with gradients (1, 0) and (3, 0): ḡ = (2, 0), Σ Var = 2, ‖ḡ‖² = 4.
//! let g = PerExampleGrads::new(vec![1.0, 0.0, 3.0, 0.0], 2).unwrap();
//! assert_eq!(BatchTest::Norm { eta: 0.5 }.required(&g), 2); // 2 / (0.25 · 4) = 2
//! ```

use crate::error::OptimError;
use burn::config::Config;
use gradlab_core::problem::{PerExampleGradients, check_point, mean_rows, norm};
use gradlab_core::solve::{Iteration, Solver};

/// Per-example gradients: b rows of d coordinates, optionally split into parameter tensors
/// (consecutive blocks of coordinates) for the official per-tensor tests.
#[derive(Debug, Clone)]
pub struct PerExampleGrads {
    data: Vec<f64>,
    d: usize,
    blocks: Vec<usize>,
}

impl PerExampleGrads {
    /// Rows of length `d` (at least two rows, for variances).
    pub fn new(data: Vec<f64>, d: usize) -> crate::Result<Self> {
        if d == 0 || !data.len().is_multiple_of(d) || data.len() / d < 2 {
            return Err(OptimError::Conflict(
                "per-example gradients need at least two rows of equal length",
            ));
        }
        Ok(Self {
            data,
            d,
            blocks: vec![d],
        })
    }
    /// The same gradients with the coordinates split into parameter tensors of these sizes (in
    /// order; they must add up to d).
    pub fn with_tensors(mut self, sizes: Vec<usize>) -> crate::Result<Self> {
        if sizes.contains(&0) || sizes.iter().sum::<usize>() != self.d {
            return Err(OptimError::Conflict(
                "tensor sizes must be positive and add up to the gradient's length",
            ));
        }
        self.blocks = sizes;
        Ok(self)
    }
    /// The coordinate ranges of the parameter tensors.
    pub fn tensor_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut start = 0;
        self.blocks
            .iter()
            .map(|n| {
                start += n;
                start - n..start
            })
            .collect()
    }
    /// Number of examples.
    pub fn batch(&self) -> usize {
        self.data.len() / self.d
    }
    /// Number of coordinates d.
    pub fn dim(&self) -> usize {
        self.d
    }
    /// Example i's gradient.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
    /// The mean gradient ḡ.
    pub fn mean(&self) -> Vec<f64> {
        mean_rows(&self.data, self.d)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The batch-size test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchTest {
    /// The norm test with η.
    Norm {
        /// η > 0.
        eta: f64,
    },
    /// The augmented inner-product test with θ and ν, over all parameters at once (the paper).
    InnerProduct {
        /// θ > 0.
        theta: f64,
        /// ν > 0.
        nu: f64,
    },
    /// The augmented inner-product test as the official `tests.py` computes it: the variances of
    /// ⟨g_i^k, ḡ^k⟩ and of the parts orthogonal to ḡ^k taken per parameter tensor k (each against
    /// its own mean ḡ^k) and summed, over θ²‖ḡ‖⁴ and ν²‖ḡ‖² ([`PerExampleGrads::with_tensors`];
    /// with one tensor it is [`BatchTest::InnerProduct`]).
    InnerProductPerTensor {
        /// θ > 0.
        theta: f64,
        /// ν > 0.
        nu: f64,
    },
}

impl BatchTest {
    /// Validate the constants.
    pub fn validate(&self) -> crate::Result<()> {
        let ok = |v: f64| v > 0.0 && v.is_finite();
        match *self {
            BatchTest::Norm { eta } if !ok(eta) => Err(OptimError::Invalid {
                name: "eta",
                value: eta,
                requirement: "> 0 and finite",
            }),
            BatchTest::InnerProduct { theta, .. }
            | BatchTest::InnerProductPerTensor { theta, .. }
                if !ok(theta) =>
            {
                Err(OptimError::Invalid {
                    name: "theta",
                    value: theta,
                    requirement: "> 0 and finite",
                })
            }
            BatchTest::InnerProduct { nu, .. } | BatchTest::InnerProductPerTensor { nu, .. }
                if !ok(nu) =>
            {
                Err(OptimError::Invalid {
                    name: "nu",
                    value: nu,
                    requirement: "> 0 and finite",
                })
            }
            _ => Ok(()),
        }
    }

    /// The batch size the test asks for (at least the current one).
    pub fn required(&self, g: &PerExampleGrads) -> usize {
        let b = g.batch();
        let bf = b as f64;
        let mean = g.mean();
        let gg = dot(&mean, &mean);
        if gg == 0.0 {
            return b;
        }
        let sq_norms: f64 = (0..b).map(|i| dot(g.row(i), g.row(i))).sum();
        // Σ_j Var_i = (Σ_i ‖g_i‖² − b‖ḡ‖²)/(b − 1).
        let var_sum = (sq_norms - bf * gg) / (bf - 1.0);
        let need = match *self {
            BatchTest::Norm { eta } => var_sum / (eta * eta * gg),
            BatchTest::InnerProduct { theta, nu } => {
                let ips: Vec<f64> = (0..b).map(|i| dot(g.row(i), &mean)).collect();
                let ip_mean = ips.iter().sum::<f64>() / bf;
                let ip_var = ips.iter().map(|v| (v - ip_mean).powi(2)).sum::<f64>() / (bf - 1.0);
                // The orthogonal parts have mean zero; Σ_j Var = Σ_i ‖g_i^⊥‖² / (b − 1).
                let ortho = (sq_norms - ips.iter().map(|v| v * v).sum::<f64>() / gg) / (bf - 1.0);
                (ip_var / (theta * theta * gg * gg)).max(ortho / (nu * nu * gg))
            }
            BatchTest::InnerProductPerTensor { theta, nu } => {
                let (mut ip_var, mut ortho) = (0.0, 0.0);
                for r in g.tensor_ranges() {
                    let mk = &mean[r.clone()];
                    let gk = dot(mk, mk);
                    let ips: Vec<f64> = (0..b).map(|i| dot(&g.row(i)[r.clone()], mk)).collect();
                    let ip_mean = ips.iter().sum::<f64>() / bf;
                    ip_var += ips.iter().map(|v| (v - ip_mean).powi(2)).sum::<f64>() / (bf - 1.0);
                    let sq: f64 = (0..b)
                        .map(|i| dot(&g.row(i)[r.clone()], &g.row(i)[r.clone()]))
                        .sum();
                    // Σ_j Var_i of g_i^k − ⟨g_i^k, ḡ^k⟩ḡ^k/‖ḡ^k‖² (a tensor with ḡ^k = 0 has no
                    // direction to remove: its orthogonal part is all of it, mean zero).
                    let proj = if gk > 0.0 {
                        ips.iter().map(|v| v * v).sum::<f64>() / gk
                    } else {
                        0.0
                    };
                    ortho += (sq - proj) / (bf - 1.0);
                }
                (ip_var / (theta * theta * gg * gg)).max(ortho / (nu * nu * gg))
            }
        };
        if need.is_finite() {
            b.max(need.ceil() as usize)
        } else {
            b
        }
    }
}

/// A linear layer's place in a flat parameter vector: its weight `[inputs, outputs]` row-major
/// (burn's layout, as `gradlab_core::flat::flatten` lays it out), then its bias
/// `[outputs]` if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinearShape {
    /// Input features.
    pub inputs: usize,
    /// Output features (the "rows" of PyTorch's `[out, in]` weight).
    pub outputs: usize,
    /// Whether a bias follows the weight.
    pub bias: bool,
}

/// AdaGrad-Norm's hyperparameters: the paper's scalar form (no `layers`), or the official
/// per-output-row form of the linear `layers` of the flat vector, in order.
#[derive(Config, Debug, PartialEq)]
pub struct AdaGradNormConfig {
    /// α > 0.
    #[config(default = 1.0)]
    pub lr: f64,
    /// b₀ > 0 of the scalar form (its accumulator starts at b₀²).
    #[config(default = 0.1)]
    pub b0: f64,
    /// The layers of the per-output-row form.
    pub layers: Option<Vec<LinearShape>>,
}

impl AdaGradNormConfig {
    /// Validate and build.
    pub fn init(&self) -> crate::Result<AdaGradNorm> {
        match &self.layers {
            Some(layers) => AdaGradNorm::per_output_row(self.lr, layers),
            None => AdaGradNorm::new(self.lr, self.b0),
        }
    }
}

/// AdaGrad-Norm: accumulators b² += ‖ḡ‖² over groups of coordinates, x ← x − α ḡ/(b + ε).
///
/// - the paper's scalar form, one accumulator over all parameters, from b₀², ε = 0;
/// - the official `adagradnorm.py` ([`AdaGradNormConfig::layers`]): one accumulator per output
///   row of every weight (the squared norm of that row's gradient), starting at 10⁻² with
///   ε = 10⁻¹⁰ added after the square root; a bias entry j accumulates its own squared gradient
///   plus the squared norm of row j of the weight before it (the official "tricky way to find the
///   learning rate" for biases).
#[derive(Debug, Clone)]
pub struct AdaGradNorm {
    lr: f64,
    eps: f64,
    acc: Vec<f64>,
    /// The coordinates each accumulator sums the squared gradients of.
    sources: Vec<Vec<usize>>,
    /// The accumulator each coordinate's step is divided by.
    of: Vec<usize>,
}

impl AdaGradNorm {
    /// The scalar form with α > 0 and b₀ > 0 (any number of coordinates).
    fn new(lr: f64, b0: f64) -> crate::Result<Self> {
        crate::error::check_lr(lr)?;
        if !(b0 > 0.0 && b0.is_finite()) {
            return Err(OptimError::Invalid {
                name: "b0",
                value: b0,
                requirement: "> 0 and finite",
            });
        }
        Ok(Self {
            lr,
            eps: 0.0,
            acc: vec![b0 * b0],
            sources: vec![],
            of: vec![],
        })
    }

    /// The official per-output-row form for a flat vector made of `layers` in order.
    fn per_output_row(lr: f64, layers: &[LinearShape]) -> crate::Result<Self> {
        crate::error::check_lr(lr)?;
        let (mut sources, mut of) = (vec![], vec![]);
        let mut start = 0;
        for l in layers {
            if l.inputs == 0 || l.outputs == 0 {
                return Err(OptimError::Conflict(
                    "a linear layer needs inputs and outputs",
                ));
            }
            let first = sources.len();
            // Weight [in, out] row-major: output row j is the coordinates start + i·out + j.
            for j in 0..l.outputs {
                sources.push(
                    (0..l.inputs)
                        .map(|i| start + i * l.outputs + j)
                        .collect::<Vec<_>>(),
                );
            }
            for _ in 0..l.inputs {
                of.extend((0..l.outputs).map(|j| first + j));
            }
            start += l.inputs * l.outputs;
            if l.bias {
                let rows = first;
                for j in 0..l.outputs {
                    let mut src = sources[rows + j].clone();
                    src.push(start + j);
                    of.push(sources.len());
                    sources.push(src);
                }
                start += l.outputs;
            }
        }
        Ok(Self {
            lr,
            eps: 1e-10,
            acc: vec![1e-2; sources.len()],
            sources,
            of,
        })
    }

    /// The accumulators (b² per group).
    pub fn accumulators(&self) -> &[f64] {
        &self.acc
    }

    /// Update `x` in place with the mean gradient `g`.
    pub fn step(&mut self, x: &mut [f64], g: &[f64]) -> crate::Result<()> {
        if x.len() != g.len() || (!self.of.is_empty() && self.of.len() != x.len()) {
            return Err(OptimError::Failed(
                "AdaGrad-Norm: the point, the gradient and the layer layout differ in length",
            ));
        }
        if self.of.is_empty() {
            self.acc[0] += dot(g, g);
            let s = self.lr / (self.acc[0].sqrt() + self.eps);
            x.iter_mut().zip(g).for_each(|(x, g)| *x -= s * g);
            return Ok(());
        }
        for (a, src) in self.acc.iter_mut().zip(&self.sources) {
            *a += src.iter().map(|&c| g[c] * g[c]).sum::<f64>();
        }
        for ((x, g), &a) in x.iter_mut().zip(g).zip(&self.of) {
            *x -= self.lr * g / (self.acc[a].sqrt() + self.eps);
        }
        Ok(())
    }
}

/// AdaGrad-Norm with the batch size set by a [`BatchTest`], as a [`Solver`]; see the module docs.
///
/// ```
/// use gradlab_core::problem::{PerExampleGradients, Problem};
/// use gradlab_core::solve::{Silent, solve};
/// use gradlab_optim::adadagrad::{AdAdaGrad, AdaGradNormConfig, BatchTest};
/// /// f(x) = (1/n) Σ ½(x − aᵢ)²: per-example gradients x − aᵢ.
/// struct Means(Vec<f64>);
/// impl Problem for Means {
///     fn dim(&self) -> usize { 1 }
/// }
/// impl PerExampleGradients for Means {
///     fn examples(&self) -> usize { self.0.len() }
///     fn example_gradients(&self, x: &[f64], idx: &[usize]) -> gradlab_core::Result<Vec<f64>> {
///         Ok(idx.iter().map(|&i| x[0] - self.0[i]).collect())
///     }
/// }
/// let data = Means((0..100).map(|i| (i % 10) as f64).collect());
/// // Batches of consecutive examples from a step-dependent offset.
/// let draw = |step: usize, b: usize| (0..b).map(|k| (7 * step + k) % 100).collect();
/// let opt = AdaGradNormConfig::new().with_lr(5.0).init().unwrap();
/// let mut method = AdAdaGrad::new(opt, 2, draw)
///     .with_test(BatchTest::Norm { eta: 0.5 })
///     .unwrap();
/// let (end, _) = solve(&mut method, &data, &[20.0], 200, &mut Silent).unwrap();
/// assert!((end.x[0] - 4.5).abs() < 0.5, "{}", end.x[0]); // near the mean of the aᵢ
/// assert!(end.batch > 2, "{}", end.batch); // the batch grew
/// ```
pub struct AdAdaGrad {
    opt: AdaGradNorm,
    test: Option<BatchTest>,
    b0: usize,
    tensors: Option<Vec<usize>>,
    draw: Box<dyn FnMut(usize, usize) -> Vec<usize>>,
}

/// The state of [`AdAdaGrad`].
#[derive(Debug, Clone, PartialEq)]
pub struct AdAdaGradState {
    /// The iterate.
    pub x: Vec<f64>,
    /// The batch size of the next step.
    pub batch: usize,
    /// Examples whose gradients were evaluated so far.
    pub seen: usize,
    /// Steps taken.
    pub steps: usize,
    /// ‖ḡ‖ of the last batch.
    pub grad_norm: Option<f64>,
}

impl AdAdaGrad {
    /// `opt` from batches of `b0` ≥ 2 examples drawn by `draw(step, b)` (the indices of step
    /// `step`'s batch of size `b`), with a fixed batch size until [`AdAdaGrad::with_test`].
    pub fn new(
        opt: AdaGradNorm,
        b0: usize,
        draw: impl FnMut(usize, usize) -> Vec<usize> + 'static,
    ) -> Self {
        Self {
            opt,
            test: None,
            b0,
            tensors: None,
            draw: Box::new(draw),
        }
    }

    /// Let `test` set the batch size after every step.
    pub fn with_test(mut self, test: BatchTest) -> crate::Result<Self> {
        test.validate()?;
        self.test = Some(test);
        Ok(self)
    }

    /// Split the coordinates into parameter tensors of these sizes for the per-tensor test
    /// ([`PerExampleGrads::with_tensors`]).
    pub fn with_tensors(mut self, sizes: Vec<usize>) -> Self {
        self.tensors = Some(sizes);
        self
    }
}

impl<P: PerExampleGradients + ?Sized> Solver<P> for AdAdaGrad {
    type State = AdAdaGradState;
    type Error = OptimError;

    fn init(&mut self, problem: &P, x0: &[f64]) -> crate::Result<AdAdaGradState> {
        check_point(problem, x0)?;
        if self.b0 < 2 || problem.examples() < 2 {
            return Err(OptimError::Conflict(
                "AdAdaGrad needs batches of at least two examples (for variances)",
            ));
        }
        Ok(AdAdaGradState {
            x: x0.to_vec(),
            batch: self.b0.min(problem.examples()),
            seen: 0,
            steps: 0,
            grad_norm: None,
        })
    }

    fn converged(&self, _: &AdAdaGradState) -> bool {
        false
    }

    fn step(&mut self, problem: &P, s: &mut AdAdaGradState) -> crate::Result<()> {
        let n = problem.examples();
        let idx = (self.draw)(s.steps, s.batch);
        if idx.len() != s.batch || idx.iter().any(|i| *i >= n) {
            return Err(OptimError::Conflict(
                "the batch drawn has the wrong size or an index past the examples",
            ));
        }
        let mut g = PerExampleGrads::new(problem.example_gradients(&s.x, &idx)?, s.x.len())?;
        if let Some(sizes) = &self.tensors {
            g = g.with_tensors(sizes.clone())?;
        }
        let mean = g.mean();
        self.opt.step(&mut s.x, &mean)?;
        s.steps += 1;
        if s.x.iter().any(|v| !v.is_finite()) {
            return Err(OptimError::NonFinite {
                what: "iterate",
                step: s.steps,
            });
        }
        s.seen += idx.len();
        s.grad_norm = Some(norm(&mean));
        if let Some(t) = self.test {
            s.batch = t.required(&g).min(n);
        }
        Ok(())
    }

    fn iteration<'a>(&self, s: &'a AdAdaGradState) -> Iteration<'a> {
        Iteration {
            grad_norm: s.grad_norm,
            work: s.seen,
            batch: Some(s.batch),
            ..Iteration::at(&s.x)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(g: &PerExampleGrads) -> (f64, f64, f64) {
        // Coordinate-wise unbiased variances, summed, from the definition.
        let (b, d) = (g.batch(), g.d);
        let m = g.mean();
        let var: f64 = (0..d)
            .map(|j| (0..b).map(|i| (g.row(i)[j] - m[j]).powi(2)).sum::<f64>() / (b - 1) as f64)
            .sum();
        let gg = dot(&m, &m);
        let ips: Vec<f64> = (0..b).map(|i| dot(g.row(i), &m)).collect();
        let ipm = ips.iter().sum::<f64>() / b as f64;
        let ipv = ips.iter().map(|v| (v - ipm).powi(2)).sum::<f64>() / (b - 1) as f64;
        let orth: Vec<Vec<f64>> = (0..b)
            .map(|i| (0..d).map(|j| g.row(i)[j] - ips[i] / gg * m[j]).collect())
            .collect();
        let om: Vec<f64> = (0..d)
            .map(|j| orth.iter().map(|r| r[j]).sum::<f64>() / b as f64)
            .collect();
        let ov: f64 = (0..d)
            .map(|j| orth.iter().map(|r| (r[j] - om[j]).powi(2)).sum::<f64>() / (b - 1) as f64)
            .sum();
        (var / gg, ipv / (gg * gg), ov / gg)
    }

    #[test]
    fn tests_match_their_definitions() {
        let data: Vec<f64> = (0..5 * 4)
            .map(|i| (((i * 37) % 11) as f64 - 4.0) / 3.0 + if i % 4 == 0 { 2.0 } else { 0.0 })
            .collect();
        let g = PerExampleGrads::new(data, 4).unwrap();
        let (norm, ip, orth) = brute(&g);
        assert_eq!(
            BatchTest::Norm { eta: 0.1 }.required(&g),
            5usize.max((norm / 0.01).ceil() as usize)
        );
        let want = (ip / 0.25).max(orth / 1.0);
        assert_eq!(
            BatchTest::InnerProduct {
                theta: 0.5,
                nu: 1.0
            }
            .required(&g),
            5usize.max(want.ceil() as usize)
        );
        assert!(PerExampleGrads::new(vec![1.0, 2.0], 2).is_err());
        let m = PerExampleGrads::new(vec![3.0, 4.0, 0.3, 0.4], 2)
            .unwrap()
            .mean();
        assert!(
            (m[0] - 1.65).abs() < 1e-15 && (m[1] - 2.2).abs() < 1e-15,
            "{m:?}"
        );
        assert!(BatchTest::Norm { eta: 0.0 }.validate().is_err());
    }

    #[test]
    fn adagrad_norm_accumulates_the_squared_norm() {
        let mut a = AdaGradNormConfig::new().with_b0(1.0).init().unwrap();
        let mut x = vec![0.0, 0.0];
        a.step(&mut x, &[3.0, 4.0]).unwrap();
        // b² = 1 + 25 → step 1/√26 · (3, 4).
        assert!((x[0] + 3.0 / 26f64.sqrt()).abs() < 1e-12);
        assert!(AdaGradNormConfig::new().with_b0(0.0).init().is_err());
        assert!(AdaGradNormConfig::new().with_lr(f64::NAN).init().is_err());
        assert!(a.step(&mut x, &[1.0]).is_err());
    }

    #[test]
    fn per_output_row_accumulators_follow_adagradnorm_py() {
        // One layer, 2 inputs → 3 outputs, with bias. Flat: W[in, out] row-major, then b[out].
        // PyTorch's weight is [out, in]: its row j is W[·, j] here.
        let shape = LinearShape {
            inputs: 2,
            outputs: 3,
            bias: true,
        };
        let mut a = AdaGradNormConfig::new()
            .with_lr(0.5)
            .with_layers(Some(vec![shape]))
            .init()
            .unwrap();
        let g = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.5, -1.0, 2.0];
        let mut x = vec![0.0; 9];
        a.step(&mut x, &g).unwrap();
        // Rows: j = 0 has W[0,0] = 1, W[1,0] = 4 → 17; j = 1: 2, 5 → 29; j = 2: 3, 6 → 45.
        // Biases: row norm² + own square: 17.25, 30, 49. All from the initial 1e-2.
        let want = [17.0, 29.0, 45.0, 17.25, 30.0, 49.0].map(|v| v + 1e-2);
        for (got, want) in a.accumulators().iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        let row = [0usize, 1, 2, 0, 1, 2, 3, 4, 5];
        for k in 0..9 {
            let step = 0.5 * g[k] / (want[row[k]].sqrt() + 1e-10);
            assert!((x[k] + step).abs() < 1e-12, "coordinate {k}");
        }
        assert!(a.step(&mut [0.0; 8], &[0.0; 8]).is_err());
    }

    #[test]
    fn per_tensor_inner_product_test_sums_the_tensors_variances() {
        // Two tensors of 2 coordinates; the official test takes each tensor's variance against its
        // own mean. By hand from the definition, then against the flattened test.
        let data: Vec<f64> = (0..4 * 4)
            .map(|i| ((i * 7 % 5) as f64 - 1.5) + (i % 4) as f64)
            .collect();
        let g = PerExampleGrads::new(data, 4)
            .unwrap()
            .with_tensors(vec![2, 2])
            .unwrap();
        let (b, m) = (g.batch(), g.mean());
        let gg = dot(&m, &m);
        let (mut ipv, mut ov) = (0.0, 0.0);
        for r in [0..2, 2..4] {
            let mk = &m[r.clone()];
            let gk = dot(mk, mk);
            let ips: Vec<f64> = (0..b).map(|i| dot(&g.row(i)[r.clone()], mk)).collect();
            let ipm = ips.iter().sum::<f64>() / b as f64;
            ipv += ips.iter().map(|v| (v - ipm).powi(2)).sum::<f64>() / (b - 1) as f64;
            let orth: Vec<Vec<f64>> = (0..b)
                .map(|i| {
                    r.clone()
                        .map(|j| g.row(i)[j] - ips[i] / gk * m[j])
                        .collect()
                })
                .collect();
            for c in 0..2 {
                let om = orth.iter().map(|o| o[c]).sum::<f64>() / b as f64;
                ov += orth.iter().map(|o| (o[c] - om).powi(2)).sum::<f64>() / (b - 1) as f64;
            }
        }
        let want = (ipv / (0.25 * 0.25 * gg * gg)).max(ov / (0.5 * 0.5 * gg));
        let t = BatchTest::InnerProductPerTensor {
            theta: 0.25,
            nu: 0.5,
        };
        assert_eq!(t.required(&g), b.max(want.ceil() as usize));
        // It is not the flattened test here (cross-tensor terms differ) …
        let flat = BatchTest::InnerProduct {
            theta: 0.25,
            nu: 0.5,
        };
        let (_, ip_flat, orth_flat) = brute(&g);
        assert!((ip_flat / 0.0625_f64).max(orth_flat / 0.25) != want);
        // … and with a single tensor it is.
        let one = PerExampleGrads::new(g.data.clone(), 4).unwrap();
        assert_eq!(t.required(&one), flat.required(&one));
        assert!(g.clone().with_tensors(vec![3, 2]).is_err());
    }
}
