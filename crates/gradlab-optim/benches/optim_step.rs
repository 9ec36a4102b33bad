//! Optimizer-step throughput: the burn Adam and diffGrad optimizers (tensor form and fused in-place
//! path) against the fused flat-buffer kernels,
//! next to a STREAM-style triad (a = b + s·c) that bounds what a memory-bound step can reach.
//! Run `cargo bench -p gradlab-optim --features bench`; compare ratios, not absolute times.

use burn::optim::Optimizer;
use burn::prelude::*;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use gradlab_optim::adam::AdamConfig;
use gradlab_optim::diffgrad::DiffGradConfig;
use gradlab_optim::fused::{AdamBuffers, adam_step, diffgrad_step};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    for &n in &[1usize << 20, 16_800_000] {
        let mut group = c.benchmark_group(format!("step_{n}"));
        group.throughput(Throughput::Elements(n as u64));
        group.sample_size(10);
        let g: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();

        let dev = Device::flex();
        let fresh_grad = || Tensor::<1>::from_data(TensorData::new(g.clone(), [n]), &dev);
        let mut x = Tensor::<1>::zeros([n], &dev);
        for fused in [false, true] {
            let path = if fused { "fused" } else { "tensor" };
            let adam = AdamConfig::new().with_fused(fused).build().unwrap();
            let mut state = None;
            group.bench_function(format!("burn_adam_{path}_path"), |b| {
                // The parameter is moved in and out and the gradient is fresh (made outside
                // the timing), as in a training loop.
                b.iter_batched(
                    fresh_grad,
                    |grad| {
                        let p = std::mem::replace(&mut x, Tensor::<1>::empty([0], &dev));
                        let (nx, ns) = adam.step(1e-3, p, grad, state.take());
                        x = nx;
                        state = ns;
                        black_box(&x);
                    },
                    BatchSize::PerIteration,
                )
            });
            let dg = DiffGradConfig::new().with_fused(fused).build().unwrap();
            let mut state = None;
            group.bench_function(format!("burn_diffgrad_{path}_path"), |b| {
                b.iter_batched(
                    fresh_grad,
                    |grad| {
                        let p = std::mem::replace(&mut x, Tensor::<1>::empty([0], &dev));
                        let (nx, ns) = dg.step(1e-3, p, grad, state.take());
                        x = nx;
                        state = ns;
                        black_box(&x);
                    },
                    BatchSize::PerIteration,
                )
            });
        }
        for threads in [1, 2] {
            let mut buf = AdamBuffers::new(vec![0.0; n]);
            group.bench_function(format!("fused_adam_{threads}t"), |b| {
                b.iter(|| adam_step(&mut buf, &g, 1e-3, 0.9, 0.999, 1e-8, threads))
            });
            let mut buf = AdamBuffers::new(vec![0.0; n]);
            group.bench_function(format!("fused_diffgrad_{threads}t"), |b| {
                b.iter(|| diffgrad_step(&mut buf, &g, 1e-3, 0.9, 0.999, 1e-8, threads))
            });
        }
        let (mut a, bb, cc) = (vec![0f32; n], vec![1f32; n], vec![2f32; n]);
        group.bench_function("triad", |b| {
            b.iter(|| {
                a.iter_mut()
                    .zip(&bb)
                    .zip(&cc)
                    .for_each(|((a, b), c)| *a = b + 0.5 * c);
                black_box(&a);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
