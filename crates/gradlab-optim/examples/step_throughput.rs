//! Optimizer-step timings for `bench/optim_vs_torch.py`: one JSON line per (implementation,
//! size) with the median seconds per step. Usage:
//! `cargo run --release -p gradlab-optim --example step_throughput -- [REPS] [SIZE ...]`.

use burn::optim::Optimizer;
use burn::prelude::*;
use gradlab_optim::adam::AdamConfig;
use gradlab_optim::diffgrad::DiffGradConfig;
use gradlab_optim::fused::{AdamBuffers, adam_step, diffgrad_step};
use std::hint::black_box;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `reps` calls of `f` after 3 warm-up calls.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// A burn optimizer stepping one parameter tensor; the fresh gradient is made outside the timing.
fn time_burn<O: Optimizer>(opt: &O, g: &[f32], reps: usize) -> f64 {
    let dev = Device::flex();
    let n = g.len();
    let mut x = Tensor::<1>::zeros([n], &dev);
    let mut state = None;
    let mut samples = vec![];
    for r in 0..reps + 3 {
        let grad = Tensor::<1>::from_data(TensorData::new(g.to_vec(), [n]), &dev);
        let t = Instant::now();
        let (nx, ns) = opt.step(1e-3, x, grad, state.take());
        x = nx;
        state = ns;
        black_box(&x);
        if r >= 3 {
            samples.push(t.elapsed().as_secs_f64());
        }
    }
    median(samples)
}

fn triad(a: &mut [f32], b: &[f32], c: &[f32], threads: usize) {
    let chunk = a.len().div_ceil(threads);
    std::thread::scope(|s| {
        for ((a, b), c) in a
            .chunks_mut(chunk)
            .zip(b.chunks(chunk))
            .zip(c.chunks(chunk))
        {
            s.spawn(move || {
                a.iter_mut()
                    .zip(b)
                    .zip(c)
                    .for_each(|((a, b), c)| *a = b + 0.5 * c)
            });
        }
    });
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let reps = args.first().copied().unwrap_or(20).max(1);
    let sizes = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        vec![1 << 20, 16_800_000]
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for n in sizes {
        let g: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();
        let emit = |name: &str, s: f64| {
            println!("{{\"impl\": \"{name}\", \"n\": {n}, \"seconds\": {s:e}}}");
        };
        let mut buf = AdamBuffers::new(vec![0.0; n]);
        emit(
            "gradlab fused Adam kernel",
            time(reps, || {
                adam_step(&mut buf, &g, 1e-3, 0.9, 0.999, 1e-8, threads)
            }),
        );
        let mut buf = AdamBuffers::new(vec![0.0; n]);
        emit(
            "gradlab fused diffGrad kernel",
            time(reps, || {
                diffgrad_step(&mut buf, &g, 1e-3, 0.9, 0.999, 1e-8, threads)
            }),
        );
        for fused in [true, false] {
            let path = if fused {
                "in-place fused path"
            } else {
                "tensor path"
            };
            let adam = AdamConfig::new().with_fused(fused).build().expect("valid");
            emit(
                &format!("gradlab burn Adam ({path})"),
                time_burn(&adam, &g, reps),
            );
            let dg = DiffGradConfig::new()
                .with_fused(fused)
                .build()
                .expect("valid");
            emit(
                &format!("gradlab burn diffGrad ({path})"),
                time_burn(&dg, &g, reps),
            );
        }
        let (mut a, b, c) = (vec![0f32; n], vec![1f32; n], vec![2f32; n]);
        emit(
            "triad a = b + s*c (Rust)",
            time(reps, || triad(&mut a, &b, &c, threads)),
        );
    }
}
