//! Fused single-pass optimizer kernels over flat `f32` slices: each parameter, gradient and state
//! element is read and written once per step, and the work is split across threads.
//!
//! They implement exactly the tensor optimizers of this crate ([`crate::adam`]: Adam, AdamW,
//! AMSGrad; [`crate::diffgrad`]) and are tested against them. The burn optimizers take this path
//! by themselves for `f32` tensors on the flex (CPU) device: flex hands a uniquely owned tensor's
//! buffer out and back without copying, so the step runs in place on the parameter's own memory
//! (a parameter that is shared elsewhere is copied once, as copy-on-write requires). Other devices
//! and dtypes keep the tensor form.
//!
//! ```
//! use gradlab_optim::fused::{AdamBuffers, adam_step};
//! let mut b = AdamBuffers::new(vec![1.0, 2.0]);
//! adam_step(&mut b, &[0.5, -0.5], 0.1, 0.9, 0.999, 1e-8, 1);
//! assert!((b.params[0] - 0.9).abs() < 1e-6 && (b.params[1] - 2.1).abs() < 1e-6);
//! ```

use burn::prelude::*;
use burn::tensor::{DType, TensorData};
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
    /// Previous gradient (diffGrad) or running maximum of v (AMSGrad).
    pub aux: Vec<f32>,
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
            aux: vec![0.0; n],
            step: 0,
        }
    }
}

/// The hyperparameters of one Adam-family or diffGrad step; `step` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepParams {
    /// Learning rate.
    pub lr: f32,
    /// β₁.
    pub beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// ε.
    pub eps: f32,
    /// Weight decay λ (L2, or decoupled for AdamW).
    pub weight_decay: f32,
    /// Decoupled weight decay (AdamW).
    pub decoupled: bool,
    /// AMSGrad (Adam only).
    pub amsgrad: bool,
    /// The step number t ≥ 1.
    pub step: u32,
}

impl StepParams {
    /// Plain Adam/diffGrad hyperparameters at step `step`.
    pub fn new(lr: f32, beta1: f32, beta2: f32, eps: f32, step: u32) -> Self {
        Self {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay: 0.0,
            decoupled: false,
            amsgrad: false,
            step,
        }
    }
}

/// The state slices of one step.
pub struct Slices<'a> {
    /// Parameters.
    pub p: &'a mut [f32],
    /// First moment.
    pub m: &'a mut [f32],
    /// Second moment.
    pub v: &'a mut [f32],
    /// Running maximum of v (AMSGrad) or the previous gradient (diffGrad); empty otherwise.
    pub aux: &'a mut [f32],
}

fn threads_for(n: usize, threads: usize) -> usize {
    if n < 1 << 16 { 1 } else { threads.max(1) }
}

/// `buf` in `parts` chunks of `chunk`, or `parts` empty slices if `buf` is empty.
fn split(buf: &mut [f32], chunk: usize, parts: usize) -> Vec<&mut [f32]> {
    if buf.is_empty() {
        (0..parts).map(|_| &mut [][..]).collect()
    } else {
        buf.chunks_mut(chunk).collect()
    }
}

/// Split the slices into aligned chunks and run `f` on each in a scoped thread.
fn par_chunks<F>(s: Slices, g: &[f32], threads: usize, f: F)
where
    F: Fn(Slices, &[f32]) + Sync,
{
    let n = g.len();
    let t = threads_for(n, threads);
    if t == 1 {
        return f(s, g);
    }
    let chunk = n.div_ceil(t).max(1);
    let parts = n.div_ceil(chunk);
    let (ps, ms, vs, auxs) = (
        split(s.p, chunk, parts),
        split(s.m, chunk, parts),
        split(s.v, chunk, parts),
        split(s.aux, chunk, parts),
    );
    thread::scope(|sc| {
        let iter = ps
            .into_iter()
            .zip(ms)
            .zip(vs)
            .zip(auxs)
            .zip(g.chunks(chunk));
        for ((((p, m), v), aux), g) in iter {
            let f = &f;
            sc.spawn(move || f(Slices { p, m, v, aux }, g));
        }
    });
}

fn check_lengths(s: &Slices, g: &[f32], aux_needed: bool) {
    let n = g.len();
    assert!(
        s.p.len() == n && s.m.len() == n && s.v.len() == n && (!aux_needed || s.aux.len() == n),
        "fused step: state and gradient lengths differ"
    );
}

/// Compiles `$body` (an `#[inline(always)]` loop) three times, for AVX-512, for AVX2 + FMA and
/// for the baseline, and runs the best the CPU supports. The arithmetic is the same IEEE
/// operations in the same order on every path (no contraction into FMAs), so results agree bit
/// for bit; only the vector width differs.
macro_rules! multiversion {
    ($name:ident => $body:ident ($($arg:ident : $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU supports the features `avx512` was compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above, for `avx2`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// Per-step scalars of the Adam family.
#[derive(Clone, Copy)]
struct AdamCoeffs {
    b1: f32,
    b2: f32,
    eps: f32,
    l2: f32,
    shrink: f32,
    step_size: f32,
    bc2_sqrt: f32,
}

#[inline(always)]
fn adam_loop(c: AdamCoeffs, s: Slices, g: &[f32]) {
    let it =
        s.p.iter_mut()
            .zip(s.m.iter_mut())
            .zip(s.v.iter_mut())
            .zip(g);
    for (((p, m), v), &g) in it {
        let gi = g + c.l2 * *p;
        let mi = c.b1 * *m + (1.0 - c.b1) * gi;
        let vi = c.b2 * *v + (1.0 - c.b2) * gi * gi;
        *m = mi;
        *v = vi;
        *p = *p * c.shrink - c.step_size * mi / (vi.sqrt() / c.bc2_sqrt + c.eps);
    }
}

#[inline(always)]
fn amsgrad_loop(c: AdamCoeffs, s: Slices, g: &[f32]) {
    let it = s.p.iter_mut().zip(s.m.iter_mut()).zip(s.v.iter_mut());
    for ((((p, m), v), vmax), &g) in it.zip(s.aux.iter_mut()).zip(g) {
        let gi = g + c.l2 * *p;
        let mi = c.b1 * *m + (1.0 - c.b1) * gi;
        let vi = c.b2 * *v + (1.0 - c.b2) * gi * gi;
        *m = mi;
        *v = vi;
        *vmax = vmax.max(vi);
        *p = *p * c.shrink - c.step_size * mi / (vmax.sqrt() / c.bc2_sqrt + c.eps);
    }
}

multiversion!(adam_chunk => adam_loop(c: AdamCoeffs, s: Slices, g: &[f32]));
multiversion!(amsgrad_chunk => amsgrad_loop(c: AdamCoeffs, s: Slices, g: &[f32]));

/// One Adam / AdamW / AMSGrad step (PyTorch semantics) over slices with `threads` threads.
pub fn adam_slices(h: &StepParams, s: Slices, g: &[f32], threads: usize) {
    check_lengths(&s, g, h.amsgrad);
    let t = h.step as i32;
    let wd = h.weight_decay;
    let c = AdamCoeffs {
        b1: h.beta1,
        b2: h.beta2,
        eps: h.eps,
        l2: if h.decoupled { 0.0 } else { wd },
        shrink: if h.decoupled { 1.0 - h.lr * wd } else { 1.0 },
        step_size: h.lr / (1.0 - h.beta1.powi(t)),
        bc2_sqrt: (1.0 - h.beta2.powi(t)).sqrt(),
    };
    if h.amsgrad {
        par_chunks(s, g, threads, move |s, g| amsgrad_chunk(c, s, g));
    } else {
        par_chunks(s, g, threads, move |s, g| adam_chunk(c, s, g));
    }
}

/// e^x for x ≤ 0, branch-free so that it vectorizes: x = n·ln 2 + r with |r| ≤ ½ln 2,
/// e^r by its degree-6 Taylor polynomial (relative error < 2e-7), 2^n built in the exponent
/// bits. Inputs below −87 give e^−87 (≈ 1.6e-38) instead of smaller values.
#[inline(always)]
pub fn exp_nonpositive(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2²³: adding it rounds to an integer held in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 0.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let poly = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    let int_n = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    poly * f32::from_bits(((int_n + 127) as u32) << 23)
}

/// Per-step scalars of diffGrad.
#[derive(Clone, Copy)]
struct DiffGradCoeffs {
    b1: f32,
    b2: f32,
    eps: f32,
    wd: f32,
    step_size: f32,
}

#[inline(always)]
fn diffgrad_loop(c: DiffGradCoeffs, s: Slices, g: &[f32]) {
    let it = s.p.iter_mut().zip(s.m.iter_mut()).zip(s.v.iter_mut());
    for ((((p, m), v), prev), &g) in it.zip(s.aux.iter_mut()).zip(g) {
        let gi = g + c.wd * *p;
        let mi = c.b1 * *m + (1.0 - c.b1) * gi;
        let vi = c.b2 * *v + (1.0 - c.b2) * gi * gi;
        // ξ·m/(√v + ε) with ξ = 1/(1 + e^−|Δg|), as one division.
        let one_plus_e = 1.0 + exp_nonpositive(-(*prev - gi).abs());
        *m = mi;
        *v = vi;
        *prev = gi;
        *p -= c.step_size * mi / (one_plus_e * (vi.sqrt() + c.eps));
    }
}

multiversion!(diffgrad_chunk => diffgrad_loop(c: DiffGradCoeffs, s: Slices, g: &[f32]));

/// One diffGrad step (official `diffGrad_v2.py`, L2 weight decay) over slices; `s.aux` holds the
/// previous gradient. ξ = σ(|g_prev − g|) uses [`exp_nonpositive`].
pub fn diffgrad_slices(h: &StepParams, s: Slices, g: &[f32], threads: usize) {
    check_lengths(&s, g, true);
    let t = h.step as i32;
    let c = DiffGradCoeffs {
        b1: h.beta1,
        b2: h.beta2,
        eps: h.eps,
        wd: h.weight_decay,
        step_size: h.lr * (1.0 - h.beta2.powi(t)).sqrt() / (1.0 - h.beta1.powi(t)),
    };
    par_chunks(s, g, threads, move |s, g| diffgrad_chunk(c, s, g));
}

impl AdamBuffers {
    fn slices(&mut self) -> Slices<'_> {
        Slices {
            p: &mut self.params,
            m: &mut self.m,
            v: &mut self.v,
            aux: &mut self.aux,
        }
    }
}

/// One Adam step (PyTorch semantics, no weight decay) on flat buffers with `threads` threads.
pub fn adam_step(
    b: &mut AdamBuffers,
    g: &[f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    threads: usize,
) {
    b.step += 1;
    let h = StepParams::new(lr, beta1, beta2, eps, b.step);
    adam_slices(&h, b.slices(), g, threads);
}

/// One diffGrad step (official `diffGrad_v2.py`, no weight decay) on flat buffers.
pub fn diffgrad_step(
    b: &mut AdamBuffers,
    g: &[f32],
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    threads: usize,
) {
    b.step += 1;
    let h = StepParams::new(lr, beta1, beta2, eps, b.step);
    diffgrad_slices(&h, b.slices(), g, threads);
}

/// Whether the burn optimizers can step `p` with these kernels in place: `p`, `g` and every
/// `state` tensor are `f32`, on the flex device.
pub(crate) fn eligible<'a, const D: usize>(
    p: &Tensor<D>,
    g: &Tensor<D>,
    state: impl IntoIterator<Item = &'a Tensor<D>>,
) -> bool {
    let dev = p.device();
    let f32 = |t: &Tensor<D>| t.dtype() == DType::F32;
    f32(p)
        && f32(g)
        && (dev == Device::flex() || dev == Device::flex().autodiff())
        && state.into_iter().all(f32)
}

/// The state tensors of an in-place step: m, v and the optional third buffer (AMSGrad's v_max,
/// diffGrad's previous gradient).
pub(crate) struct Moments<const D: usize> {
    pub m: Tensor<D>,
    pub v: Tensor<D>,
    pub aux: Option<Tensor<D>>,
}

/// Runs `kernel` in place on the host buffers of `p`, `g` and the state (zeros on the first step;
/// the third buffer only when `with_aux`). flex hands uniquely owned buffers out and back without
/// copying; shared ones are copied once.
pub(crate) fn in_place<const D: usize>(
    p: Tensor<D>,
    g: Tensor<D>,
    state: Option<Moments<D>>,
    with_aux: bool,
    kernel: impl FnOnce(Slices, &[f32]),
) -> (Tensor<D>, Moments<D>) {
    let dev = p.device();
    let mut pd = p.into_data();
    let gd = g.into_data();
    let zeros = || TensorData::new(vec![0f32; pd.num_elements()], pd.shape().clone());
    let (mut m, mut v, aux) = match state {
        Some(s) => (
            s.m.into_data(),
            s.v.into_data(),
            s.aux.map(Tensor::into_data),
        ),
        None => (zeros(), zeros(), None),
    };
    let mut aux = with_aux.then(|| aux.unwrap_or_else(zeros));
    let mut empty: [f32; 0] = [];
    let slices = Slices {
        p: view(&mut pd),
        m: view(&mut m),
        v: view(&mut v),
        aux: aux.as_mut().map_or(&mut empty[..], view),
    };
    kernel(
        slices,
        gd.as_slice::<f32>()
            .expect("eligible tensors hold f32 data"),
    );
    let back = |d: TensorData| Tensor::from_data(d, (&dev, DType::F32));
    let moments = Moments {
        m: back(m),
        v: back(v),
        aux: aux.map(back),
    };
    (back(pd), moments)
}

/// Mutable `f32` view of an eligible buffer.
fn view(d: &mut TensorData) -> &mut [f32] {
    d.as_mut_slice::<f32>()
        .expect("eligible tensors hold f32 data")
}

/// The number of threads the burn optimizers use.
pub(crate) fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
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
                reference
                    .step(0.01, &g.iter().map(|v| f64::from(*v)).collect::<Vec<_>>())
                    .unwrap();
            }
            let want = reference.point().unwrap();
            for (a, b) in fused.params.iter().zip(&want) {
                assert!(
                    (f64::from(*a) - b).abs() < 1e-5,
                    "diffGrad {diff}: {a} vs {b}"
                );
            }
        }
    }

    fn tensor_of(values: &[f32], dtype: DType) -> Tensor<1> {
        let dev = Device::flex();
        match dtype {
            DType::F64 => Tensor::from_data(
                TensorData::new(
                    values.iter().map(|v| f64::from(*v)).collect(),
                    [values.len()],
                ),
                (&dev, DType::F64),
            ),
            _ => Tensor::from_data(
                TensorData::new(values.to_vec(), [values.len()]),
                (&dev, DType::F32),
            ),
        }
    }

    fn values(t: Tensor<1>) -> Vec<f64> {
        t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
    }

    /// Five steps of `opt` on f32 tensors (the fused path) and on f64 tensors (the tensor path).
    fn both_paths<O: burn::optim::Optimizer>(opt: &O) -> (Vec<f64>, Vec<f64>) {
        let n = 70_000;
        let mut out = vec![];
        for dtype in [DType::F32, DType::F64] {
            let mut x = tensor_of(&data(n, 1), dtype);
            let mut state = None;
            for s in 0..5 {
                let g = tensor_of(&data(n, 7 + s), dtype);
                let (nx, ns) = opt.step(0.01, x, g, state);
                x = nx;
                state = ns;
            }
            out.push(values(x));
        }
        (out.remove(0), out.remove(0))
    }

    #[test]
    fn fast_exp_is_accurate_to_float_precision() {
        let mut worst = 0.0f64;
        for k in 0..=870_000 {
            let x = -(k as f32) * 1e-4;
            let got = f64::from(exp_nonpositive(x));
            let want = f64::from(x).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "max relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e4) < 2e-38 && exp_nonpositive(-1e4) >= 0.0);
    }

    #[test]
    fn burn_optimizers_agree_on_both_paths() {
        use crate::adam::AdamConfig;
        use crate::diffgrad::DiffGradConfig;
        let adams = [
            AdamConfig::new(),
            AdamConfig::adamw().with_weight_decay(0.1),
            AdamConfig::new().with_weight_decay(0.1),
            AdamConfig::amsgrad(),
        ];
        for cfg in adams {
            let (fused, tensor) = both_paths(&cfg.build().unwrap());
            let err = fused
                .iter()
                .zip(&tensor)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-5, "{cfg:?}: {err}");
        }
        for wd in [0.0, 0.1] {
            let opt = DiffGradConfig::new().with_weight_decay(wd).build().unwrap();
            let (fused, tensor) = both_paths(&opt);
            let err = fused
                .iter()
                .zip(&tensor)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(err < 1e-5, "diffGrad wd {wd}: {err}");
        }
    }

    #[test]
    fn f32_flex_steps_run_in_place_on_the_parameter_buffer() {
        use burn::optim::Optimizer;
        let dev = Device::flex();
        let data = TensorData::new(data(1000, 3), [1000]);
        let before = data.as_slice::<f32>().unwrap().as_ptr();
        let x: Tensor<1> = Tensor::from_data(data, (&dev, DType::F32));
        let g = tensor_of(&vec![0.5; 1000], DType::F32);
        let opt = crate::adam::AdamConfig::new().build().unwrap();
        // Peek at a buffer's address and give the tensor back without copying.
        let peek = |t: Tensor<1>| {
            let d = t.into_data();
            let p = d.as_slice::<f32>().unwrap().as_ptr();
            (p, Tensor::<1>::from_data(d, (&dev, DType::F32)))
        };
        let (x, state) = opt.step(0.1, x, g.clone(), None);
        let mut state = state.unwrap();
        let (m0, m) = peek(state.m);
        let (v0, v) = peek(state.v);
        (state.m, state.v) = (m, v);
        let (x, state) = opt.step(0.1, x, g, Some(state));
        let state = state.unwrap();
        assert_eq!(peek(x).0, before, "the step copied the parameter");
        assert_eq!(peek(state.m).0, m0, "the step copied m");
        assert_eq!(peek(state.v).0, v0, "the step copied v");
    }
}
