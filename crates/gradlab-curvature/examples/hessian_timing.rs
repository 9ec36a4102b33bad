//! Times the Hessian tools on a ≈117k-parameter MLP (64-256-256-128-10, ReLU) over 1,000 digits:
//! the top 10 eigenvalues by Lanczos (40 steps) and a 20-step SLQ density (one probe), printed
//! as one JSON line. Run by `bench/hessian_vs_pyhessian.py`, which does the same with PyHessian
//! on the same weights: with a path argument, the initial parameters are written there first
//! (f32 little-endian, in `params::flatten` order: each layer's weight `[in, out]`, then its bias).
//!
//! `cargo run --release -p gradlab-curvature --example hessian_timing [-- weights.bin]`

use gradlab_curvature::OracleHvp;
use gradlab_curvature::model::ModelGradient;
use gradlab_curvature::spectrum::{lanczos_eigenvalues, slq_density};
use gradlab_nets::mlp::MlpConfig;
use gradlab_nets::{LossKind, autodiff_device};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let set = gradlab_data::images::digits();
    let idx: Vec<usize> = (0..1000.min(set.len())).collect();
    let model = MlpConfig::new(vec![64, 256, 256, 128, 10]).init(&autodiff_device(), 0);
    let theta = gradlab_core::flat::flatten_host(&model)?;
    let n = theta.len();
    if let Some(path) = std::env::args().nth(1) {
        let bytes: Vec<u8> =
            gradlab_core::bridge::to_host_f32(gradlab_core::flat::flatten(&model)?)?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
        std::fs::write(path, bytes)?;
    }
    let h = OracleHvp::new(
        ModelGradient::new(model, &set, &idx, LossKind::CrossEntropy).frozen_at(&theta)?,
        theta,
        1e-3,
    )?;
    let t0 = Instant::now();
    let top = lanczos_eigenvalues(&h, 40, 0)?;
    let t_top = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let density = slq_density(&h, 20, 1, 0)?;
    let t_density = t1.elapsed().as_secs_f64();
    println!(
        "{{\"params\": {n}, \"top10\": {:?}, \"top10_seconds\": {t_top:.3}, \"density_seconds\": {t_density:.3}, \"density_nodes\": {}, \"hvps_top10\": 40, \"hvps_density\": 20}}",
        &top[..10],
        density.nodes.len()
    );
    Ok(())
}
