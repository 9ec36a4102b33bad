//! Rectified flow learns the exact Gaussian velocity, and reflow straightens its paths.

use burn::prelude::*;
use gradlab_generative::metrics::sliced_wasserstein;
use gradlab_generative::ode::{Solver, integrate};
use gradlab_generative::points::{Rows, from_rows, normal};
use gradlab_generative::rectified_flow::{
    GaussianVelocity, VelocityField, reflow_pairs, straightness, train_velocity, transport,
};
use gradlab_generative::sampling::Unobserved;
use gradlab_generative::training::TrainSettings;

const MEAN: [f64; 2] = [2.0, -1.0];
const STD: [f64; 2] = [0.5, 1.5];

fn target(n: usize, seed: u64) -> Tensor<2> {
    let (m, s) = (
        from_rows(&MEAN, 1, 2).unwrap(),
        from_rows(&STD, 1, 2).unwrap(),
    );
    normal(n, 2, seed ^ 0xAB) * s + m
}

fn independent(n: usize, seed: u64) -> (Tensor<2>, Tensor<2>) {
    (normal(n, 2, seed), target(n, seed))
}

#[test]
fn flow_matching_learns_the_velocity_and_reflow_straightens() {
    let settings = TrainSettings {
        steps: 2000,
        hidden: 64,
        layers: 2,
        lr: 2e-3,
        ..TrainSettings::default()
    };
    let (rf1, _) = train_velocity(2, independent, &settings).unwrap();
    let exact = GaussianVelocity {
        mean: MEAN.to_vec(),
        std: STD.to_vec(),
    };
    // Velocity error relative to the exact field, on points of the exact flow.
    let z0 = normal(500, 2, 5);
    let (mut num, mut den) = (0.0, 0.0);
    for t in [0.1, 0.5, 0.9] {
        let rhs = |x: &Tensor<2>, s: f64| exact.velocity(x.clone(), s);
        let (zt, _) =
            integrate(rhs, z0.clone(), 0.0, t, Solver::Heun(50), &mut Unobserved).unwrap();
        let a = Rows::of(&rf1.velocity(zt.clone(), t).unwrap()).unwrap();
        let b = Rows::of(&exact.velocity(zt, t).unwrap()).unwrap();
        for (p, q) in a.data.iter().zip(&b.data) {
            num += (p - q).powi(2);
            den += q * q;
        }
    }
    let err = (num / den).sqrt();
    assert!(err < 0.1, "relative velocity error {err}");

    // Reflow on the learned flow's own pairs straightens it and improves one-step sampling.
    let (p0, p1) = reflow_pairs(&rf1, 4000, 2, Solver::Heun(50), 9).unwrap();
    let reflow = |n: usize, seed: u64| {
        let start = (seed as usize * n) % (4000 - n);
        let cut = |b: &Tensor<2>| b.clone().slice([start..start + n, 0..2]);
        (cut(&p0), cut(&p1))
    };
    let (rf2, _) = train_velocity(
        2,
        reflow,
        &TrainSettings {
            seed: 1,
            ..settings
        },
    )
    .unwrap();
    let probe = normal(2000, 2, 21);
    let (s1, s2) = (
        straightness(&rf1, &probe, 50).unwrap(),
        straightness(&rf2, &probe, 50).unwrap(),
    );
    assert!(s2 < 0.3 * s1, "straightness 1-RF {s1}, 2-RF {s2}");
    let truth = target(2000, 77);
    let one_step = |v: &dyn Fn(&Tensor<2>) -> Tensor<2>| {
        sliced_wasserstein(&v(&probe), &truth, 200, 0).unwrap()
    };
    let w1 = one_step(&|z| transport(&rf1, z.clone(), Solver::Euler(1)).unwrap().0);
    let w2 = one_step(&|z| transport(&rf2, z.clone(), Solver::Euler(1)).unwrap().0);
    println!(
        "velocity error {err:.3}; straightness {s1:.4} → {s2:.4}; one-step SWD {w1:.3} → {w2:.3}"
    );
    assert!(w2 < w1, "one-step SWD 1-RF {w1}, 2-RF {w2}");
    // A field of the wrong width is an error, not a panic.
    assert!(rf1.velocity(normal(3, 5, 0), 0.5).is_err());
}
