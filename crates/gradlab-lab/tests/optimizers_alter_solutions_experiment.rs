//! The optimizers-alter-solutions experiment in quick mode, and the minimum-norm interpolant
//! against its defining properties.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::papers::optimizers_alter_solutions::{LeastSquares, sparse_problem};
use gradlab_lab::registry;
use rand::SeedableRng;

#[test]
fn the_min_norm_solution_interpolates_and_is_orthogonal_to_the_null_space() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (p, truth) = sparse_problem(8, 20, 3, &mut rng);
    let w = p.min_norm_solution();
    assert!(p.loss(&w) < 1e-25);
    // w* − w maps to 0 (both interpolate), so it is a null-space direction: the minimum-norm
    // interpolant is orthogonal to it, and no shorter than w*.
    let z: Vec<f64> = truth.iter().zip(&w).map(|(a, b)| a - b).collect();
    let dot: f64 = w.iter().zip(&z).map(|(a, b)| a * b).sum();
    let (nw, nz) = (
        w.iter().map(|v| v * v).sum::<f64>().sqrt(),
        z.iter().map(|v| v * v).sum::<f64>().sqrt(),
    );
    assert!(dot.abs() < 1e-10 * nw * nz, "{dot}");
    assert!(nw <= truth.iter().map(|v| v * v).sum::<f64>().sqrt());
}

#[test]
fn the_linear_program_finds_the_minimum_l1_interpolant() {
    // One equation w₁ + 2w₂ = 3: the minimum-ℓ1 point puts everything on the largest |x_j|,
    // (0, 1.5) with ‖w‖₁ = 1.5 (the minimum-ℓ2 point (0.6, 1.2) has 1.8).
    let p = LeastSquares::new(vec![1.0, 2.0], vec![3.0]).unwrap();
    let w = p.min_l1_solution().unwrap();
    assert!(w[0].abs() < 1e-12 && (w[1] - 1.5).abs() < 1e-12, "{w:?}");
    // With a sparse truth and enough equations it is the truth (exact recovery).
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let (p, truth) = sparse_problem(30, 60, 3, &mut rng);
    let w = p.min_l1_solution().unwrap();
    assert!(p.loss(&w) < 1e-20);
    for (a, b) in w.iter().zip(&truth) {
        assert!((a - b).abs() < 1e-8, "{a} vs {b}");
    }
}

#[test]
fn optimizers_alter_solutions_quick() {
    let dir = std::env::temp_dir().join(format!("gradlab-oas-{}", std::process::id()));
    let out = run_experiment(
        registry::find("optimizers-alter-solutions")
            .unwrap()
            .as_ref(),
        &RunContext::new(true, 0, &dir),
    )
    .unwrap();
    println!("{}", out.render());
    for key in ["gd", "adam", "sign", "reparam"] {
        assert!(out.check(&format!("{key}.interpolates")).unwrap().passed);
    }
    // Each optimizer ends where its own implicit bias puts it: GD at X⁺y, Adam at its update's
    // fixed point on the tiny case, the reparameterisation at the linear program's minimum-ℓ1
    // interpolant. (A wrong update rule misses these; they are not the paper's claim itself.)
    for key in [
        "gd.is_min_l2",
        "adam.matches_its_fixed_point",
        "reparam.is_min_l1",
    ] {
        let c = out.check(key).unwrap();
        assert!(c.passed, "{key}: {}", c.describe());
    }
    assert!(dir.join("solutions.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
