//! The optimizers-alter-solutions experiment in quick mode, and the minimum-norm interpolant
//! against its defining properties.

use gradlab_lab::experiment::{RunContext, run_experiment};
use gradlab_lab::papers::optimizers_alter_solutions::sparse_problem;
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
    assert!(out.check("gd.is_min_l2").unwrap().passed);
    assert!(dir.join("solutions.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}
