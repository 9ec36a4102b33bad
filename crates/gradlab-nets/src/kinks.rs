//! Frozen kinks: the ReLU gates and max-pool choices of one forward pass, recorded and replayed.
//!
//! A ReLU network's gradient jumps where a unit changes sign or a max-pool window changes its
//! winner, so differences of gradients, (∇f(θ + hv) − ∇f(θ − hv))/2h, do not converge to the
//! Hessian as h → 0: each crossing adds a term of order 1/h. Replaying the gates and winners of θ
//! makes the network the polynomial it is around θ, whose Hessian at θ is the network's Hessian
//! almost everywhere (what double-backward autodiff returns). Record at θ with [`record`], then
//! evaluate gradients under [`replay`].
//!
//! The models of this crate route their ReLUs and max pools through [`relu`] and [`max_pool`];
//! outside `record`/`replay` these are the ordinary operations.
//!
//! ```
//! use burn::prelude::*;
//! use gradlab_nets::kinks;
//! let dev = Device::flex();
//! let x = Tensor::<1>::from_floats([-1.0, 2.0], &dev);
//! let (_, frozen) = kinks::record(|| kinks::relu(x.clone()));
//! // Under replay the gate pattern of x is kept: −1 stays off, 2 stays on even when negative.
//! let y = kinks::replay(&frozen, || kinks::relu(Tensor::<1>::from_floats([3.0, -4.0], &dev)));
//! assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), vec![0.0, -4.0]);
//! ```

use burn::nn::pool::MaxPool2d;
use burn::prelude::*;
use burn::tensor::module::max_pool2d_with_indices;
use burn::tensor::ops::MaxPoolOptions;
use std::cell::RefCell;

/// One recorded decision.
#[derive(Debug, Clone)]
enum Kink {
    /// A ReLU's gate, 1 where the input was positive (flattened).
    Gate(Tensor<1>),
    /// A max pool's winners: flat indices into each (batch, channel) plane, `[b, c, oh·ow]`.
    Winners(Tensor<3, Int>),
}

/// The gates and winners of one forward pass, in the order they were met.
#[derive(Debug, Clone, Default)]
pub struct Kinks(Vec<Kink>);

impl Kinks {
    /// The number of recorded decisions (ReLU and max-pool calls).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when nothing was recorded (a model without ReLUs or max pools).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

enum Mode {
    Off,
    Record(Vec<Kink>),
    Replay(Vec<Kink>, usize),
}

thread_local! {
    static MODE: RefCell<Mode> = const { RefCell::new(Mode::Off) };
}

/// Run `f` (one forward pass) and record its gates and winners.
pub fn record<R>(f: impl FnOnce() -> R) -> (R, Kinks) {
    MODE.with(|m| *m.borrow_mut() = Mode::Record(vec![]));
    let out = f();
    let kinks = MODE.with(
        |m| match std::mem::replace(&mut *m.borrow_mut(), Mode::Off) {
            Mode::Record(k) => Kinks(k),
            _ => Kinks::default(),
        },
    );
    (out, kinks)
}

/// Run `f` (a forward pass through the same model on inputs of the same shapes) with the gates
/// and winners of `kinks`. Calls beyond those recorded fall back to the ordinary operations.
pub fn replay<R>(kinks: &Kinks, f: impl FnOnce() -> R) -> R {
    MODE.with(|m| *m.borrow_mut() = Mode::Replay(kinks.0.clone(), 0));
    let out = f();
    MODE.with(|m| *m.borrow_mut() = Mode::Off);
    out
}

/// The next replayed decision, if replaying.
fn next() -> Option<Kink> {
    MODE.with(|m| match &mut *m.borrow_mut() {
        Mode::Replay(k, at) => {
            let out = k.get(*at).cloned();
            *at += 1;
            out
        }
        _ => None,
    })
}

fn push(k: Kink) {
    MODE.with(|m| {
        if let Mode::Record(v) = &mut *m.borrow_mut() {
            v.push(k)
        }
    })
}

fn recording() -> bool {
    MODE.with(|m| matches!(*m.borrow(), Mode::Record(_)))
}

/// max(0, x), or x times the recorded gate under [`replay`].
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if let Some(Kink::Gate(g)) = next() {
        let dims = x.dims();
        return x * g.reshape(dims);
    }
    if recording() {
        let n = x.shape().num_elements();
        push(Kink::Gate(
            x.clone().detach().greater_elem(0.0).float().reshape([n]),
        ));
    }
    burn::tensor::activation::relu(x)
}

/// `pool.forward(x)`, or the recorded winners of each window under [`replay`]. The winners are
/// recorded for pools without padding (as this crate's models use); a padded pool is not frozen.
pub fn max_pool(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    if let Some(Kink::Winners(idx)) = next() {
        let k = idx.dims()[2];
        let (oh, ow) = pooled(pool, h, w);
        if k == oh * ow {
            return x
                .reshape([b, c, h * w])
                .gather(2, idx)
                .reshape([b, c, oh, ow]);
        }
    }
    let unpadded = matches!(pool.padding, burn::nn::PaddingConfig2d::Valid);
    if recording() && unpadded {
        let options = MaxPoolOptions::new(pool.kernel_size)
            .with_stride(pool.stride)
            .with_dilation(pool.dilation)
            .with_ceil_mode(pool.ceil_mode);
        let (out, idx) = max_pool2d_with_indices(x, options);
        let [_, _, oh, ow] = out.dims();
        push(Kink::Winners(idx.reshape([b, c, oh * ow])));
        return out;
    }
    pool.forward(x)
}

/// Output size of a valid (unpadded) pool.
fn pooled(pool: &MaxPool2d, h: usize, w: usize) -> (usize, usize) {
    let size = |n: usize, i: usize| {
        let span = pool.dilation[i] * (pool.kernel_size[i] - 1) + 1;
        if n < span {
            return 0;
        }
        let q = n - span;
        let s = pool.stride[i];
        if pool.ceil_mode {
            q.div_ceil(s) + 1
        } else {
            q / s + 1
        }
    };
    (size(h, 0), size(w, 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::pool::MaxPool2dConfig;

    #[test]
    fn max_pool_replays_the_recorded_winners() {
        let dev = Device::flex();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = Tensor::<4>::from_floats([[[[1.0, 5.0], [3.0, 2.0]]]], &dev);
        let (out, frozen) = record(|| max_pool(&pool, x.clone()));
        assert_eq!(out.into_data().try_to_vec::<f32>().unwrap(), vec![5.0]);
        assert_eq!(frozen.len(), 1);
        // Another input: the winner stays the recorded position (row 0, column 1).
        let y = Tensor::<4>::from_floats([[[[9.0, -1.0], [3.0, 2.0]]]], &dev);
        let out = replay(&frozen, || max_pool(&pool, y.clone()));
        assert_eq!(out.into_data().try_to_vec::<f32>().unwrap(), vec![-1.0]);
        // Outside replay, the ordinary pool.
        assert_eq!(
            max_pool(&pool, y).into_data().try_to_vec::<f32>().unwrap(),
            vec![9.0]
        );
    }

    #[test]
    fn relu_is_ordinary_outside_record_and_replay() {
        let dev = Device::flex();
        let x = Tensor::<1>::from_floats([-1.0, 2.0], &dev);
        assert_eq!(
            relu(x).into_data().try_to_vec::<f32>().unwrap(),
            vec![0.0, 2.0]
        );
        let (_, k) = record(|| relu(Tensor::<1>::from_floats([1.0], &dev)));
        assert_eq!(k.len(), 1);
        assert!(!k.is_empty());
    }
}
