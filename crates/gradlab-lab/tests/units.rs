//! The experiments crate's own tests (helpers of the experiments, checks and verdicts, the
//! registry, RESULTS.md), as one integration test: the crate is not compiled a second time as a
//! unit-test harness (`[lib] test = false`), which saved about a minute of CI build time.

mod experiment {
    use gradlab_lab::error::Result;

    use gradlab_lab::experiment::*;

    #[test]
    fn a_check_never_prints_its_measurement_equal_to_a_threshold_it_differs_from() {
        let pass = Check::new("k", "c", 0.999991, Cmp::Lt, 1.0).describe();
        let fail = Check::new("k", "c", 1.00002, Cmp::Lt, 1.0).describe();
        assert!(pass.ends_with('✓') && fail.ends_with('✗'));
        for text in [&pass, &fail] {
            let parts: Vec<&str> = text.split(' ').collect();
            assert_ne!(parts[0], parts[2], "{text}");
        }
        assert_eq!(
            Check::new("k", "c", 0.5, Cmp::Lt, 1.0).describe(),
            "0.5000 < 1.0000 ✓"
        );
    }

    #[test]
    fn a_new_run_removes_the_previous_result_before_it_starts() {
        struct Crash;
        impl Experiment for Crash {
            fn info(&self) -> PaperInfo {
                PaperInfo {
                    id: "crash",
                    arxiv: "",
                    module: "",
                    claim: "",
                }
            }
            fn run(&self, _: &RunContext) -> Result<Outcome> {
                Err(gradlab_lab::LabError::Invalid("stopped part-way".into()))
            }
            fn expect_quick(&self, e: &mut Expect<'_>) {
                e.that(false, "it crashes");
            }
        }
        let dir = std::env::temp_dir().join(format!("gradlab-stale-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(RESULT_FILE),
            r#"{"verdict":"Reproduced","figures":["old.png","../outside.png"]}"#,
        )
        .unwrap();
        std::fs::write(dir.join("old.png"), "png").unwrap();
        let outside = dir.parent().unwrap().join("outside.png");
        std::fs::write(&outside, "keep").unwrap();
        assert!(run_experiment(&Crash, &RunContext::new(true, 0, &dir)).is_err());
        assert!(
            !dir.join(RESULT_FILE).exists(),
            "a stale result.json survived a failed run"
        );
        assert!(!dir.join("old.png").exists(), "a stale figure survived");
        assert!(outside.exists(), "a path outside the folder was followed");
        std::fs::remove_file(&outside).ok();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn verdicts_follow_checks() {
        let pass = Check::new("a", "x", 1.0, Cmp::Le, 2.0);
        let fail = Check::new("b", "y", 3.0, Cmp::Le, 2.0);
        let nan = Check::new("c", "z", f64::NAN, Cmp::Ge, 0.0);
        assert!(pass.passed && !fail.passed && !nan.passed);
        assert_eq!(
            Verdict::from_checks(std::slice::from_ref(&pass)),
            Verdict::Reproduced
        );
        assert_eq!(
            Verdict::from_checks(&[pass, fail.clone()]),
            Verdict::Partial
        );
        assert_eq!(Verdict::from_checks(&[fail, nan]), Verdict::NotReproduced);
        assert_eq!(Verdict::from_checks(&[]), Verdict::NotReproduced);
    }
}

mod registry {

    use gradlab_lab::registry::*;

    #[test]
    fn thirty_six_papers_with_unique_ids_and_every_experiment_listed() {
        assert_eq!(SEED_PAPERS.len(), 36);
        let mut ids: Vec<_> = SEED_PAPERS.iter().map(|p| p.experiment).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 36);
        for id in experiment_ids() {
            assert!(
                SEED_PAPERS.iter().any(|p| p.experiment == id),
                "{id} is not a seed paper"
            );
            assert!(!title(id).is_empty());
        }
        use gradlab_lab::experiments::{
            curvature, distributed, generative, nets, optim, rl, solvers,
        };
        for (family, list) in [
            ("optim", optim::experiments()),
            ("nets", nets::experiments()),
            ("curvature", curvature::experiments()),
            ("generative", generative::experiments()),
            ("rl", rl::experiments()),
            ("distributed", distributed::experiments()),
            ("solvers", solvers::experiments()),
        ] {
            for e in list {
                let id = e.info().id;
                let seed = SEED_PAPERS.iter().find(|p| p.experiment == id);
                assert_eq!(
                    seed.map(|p| p.family),
                    Some(family),
                    "{id} is filed under {family}"
                );
            }
        }
        let mut all = experiment_ids();
        all.sort();
        all.dedup();
        assert_eq!(
            all.len(),
            experiments().len(),
            "an experiment is registered twice"
        );
    }
}

mod results {

    use gradlab_lab::results::*;

    fn summary(id: &str, quick: bool, measured: f64) -> Summary {
        Summary::from_json(&format!(
            r#"{{"paper": {{"id": "{id}", "title": "T | x"}}, "quick": {quick}, "seed": 0,
            "checks": [{{"claim": "a", "measured": {measured}, "cmp": "Lt", "threshold": 1.0, "passed": {}}}],
            "verdict": "Partial", "seconds": 2.0}}"#,
            measured < 1.0
        ))
        .unwrap()
    }

    #[test]
    fn a_rerun_replaces_its_own_block_and_keeps_the_others() {
        let mut r = Results::default();
        r.insert(&summary("diffgrad", true, 0.5));
        r.insert(&summary("diffgrad", false, 2.0));
        r.insert(&summary("tract", true, 0.25));
        let text = r.render();
        let mut again = Results::parse(&text);
        again.insert(&summary("diffgrad", true, 0.75));
        let text2 = again.render();
        assert!(
            text2.contains("| a | 0.7500 | < | 1.0000 | ✓ |") && !text2.contains("| a | 0.5000 |")
        );
        assert!(
            text2.contains("| a | 2.0000 | < | 1.0000 | ✗ |") && text2.contains("| a | 0.2500 |")
        );
        // The registry's order, quick before full; a pipe in a title cannot break the table.
        let (q, f) = (
            text2.find("## Quick").unwrap(),
            text2.find("## Full").unwrap(),
        );
        let (dq, tq) = (
            text2.find("quick-diffgrad").unwrap(),
            text2.find("quick-tract").unwrap(),
        );
        assert!(q < dq && dq < tq && tq < f && text2.find("full-diffgrad").unwrap() > f);
        assert!(text2.contains("T \\| x") && text2.contains("### lr-refinement: not run in quick"));
    }

    /// The README's one-line verdicts (`[quick: partly reproduced (1/2)](RESULTS.md#quick-id)`)
    /// say what the committed RESULTS.md says, and a mode without a block there says so.
    #[test]
    fn the_readme_verdicts_are_the_committed_results() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
        let results = std::fs::read_to_string(format!("{root}/{RESULTS_FILE}")).unwrap();
        let blocks = Results::parse(&results).blocks;
        let mut seen = 0;
        for id in gradlab_lab::registry::experiment_ids() {
            for mode in ["quick", "full"] {
                let link = format!("](RESULTS.md#{mode}-{id})");
                let block = blocks.get(&(mode.to_string(), id.to_string()));
                let Some(at) = readme.find(&link) else {
                    let row = readme.lines().find(|l| l.contains(&format!("| `{id}` |")));
                    let says = row.is_some_and(|r| r.contains(&format!("{mode}: not run yet")));
                    assert!(
                        block.is_none() && says,
                        "README has no {mode} verdict for {id}"
                    );
                    continue;
                };
                let open = readme[..at].rfind('[').unwrap();
                let cell = &readme[open + 1..at];
                let block = block
                    .unwrap_or_else(|| panic!("README links {mode}-{id}, RESULTS.md has no block"));
                let heading = block.lines().find(|l| l.starts_with("### ")).unwrap();
                let verdict = heading.split_once(": ").unwrap().1;
                let counts = block.lines().find(|l| l.contains(" checks, ")).unwrap();
                let (p, rest) = counts
                    .rsplit_once(" of ")
                    .map(|(a, b)| (a.rsplit(' ').next().unwrap(), b))
                    .unwrap();
                let n = rest.split(' ').next().unwrap();
                assert_eq!(
                    cell,
                    format!("{mode}: {verdict} ({p}/{n})"),
                    "README verdict of {mode}-{id}"
                );
                seen += 1;
            }
        }
        assert!(
            seen >= gradlab_lab::registry::experiment_ids().len(),
            "every quick verdict is in the README"
        );
    }

    #[test]
    fn a_non_finite_measurement_and_a_foreign_file_are_handled() {
        let s = Summary::from_json(
            r#"{"paper": {"id": "x", "title": "t"}, "quick": true, "seed": 1,
            "checks": [{"claim": "c", "measured": null, "cmp": "Gt", "threshold": 0.0, "passed": false}],
            "verdict": "NotReproduced", "seconds": 0.0}"#,
        )
        .unwrap();
        assert!(
            s.block().contains("| c | NaN | > | 0.0000 | ✗ |"),
            "{}",
            s.block()
        );
        assert!(Summary::from_json("{}").is_err());
        assert!(
            Results::parse("# some other file\n<!-- gradlab:quick:x -->")
                .blocks
                .is_empty()
        );
        let dir = std::env::temp_dir().join(format!("gradlab-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let foreign = dir.join("notes.md");
        std::fs::write(&foreign, "my notes").unwrap();
        assert!(merge_into(&foreign, [s.clone()]).is_err());
        assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "my notes");
        let ours = dir.join(RESULTS_FILE);
        merge_into(&ours, [s.clone()]).unwrap();
        merge_into(&ours, [summary("tract", false, 0.5)]).unwrap();
        let text = std::fs::read_to_string(&ours).unwrap();
        assert!(text.contains("quick-x") && text.contains("full-tract"));
        std::fs::remove_dir_all(&dir).ok();
    }
}

mod probe {

    use gradlab_lab::probe::*;

    #[test]
    fn a_probe_reads_a_linear_label_and_not_noise() {
        // Label = sign of the first coordinate; the second is noise.
        let rows: Vec<f64> = (0..200)
            .flat_map(|i| {
                [
                    ((i * 7919) % 200) as f64 / 100.0 - 1.0 + 0.005,
                    ((i * 31) % 17) as f64,
                ]
            })
            .collect();
        let labels: Vec<u8> = rows.chunks(2).map(|r| u8::from(r[0] > 0.0)).collect();
        let x = standardise(&rows, &rows, 2);
        let acc = linear_probe(
            (&x[..200], &labels[..100]),
            (&x[200..], &labels[100..]),
            2,
            0,
        )
        .unwrap();
        assert!(acc > 0.95, "{acc}");
        let shuffled: Vec<u8> = labels
            .iter()
            .enumerate()
            .map(|(i, _)| (i % 2) as u8)
            .collect();
        let chance = linear_probe(
            (&x[..200], &shuffled[..100]),
            (&x[200..], &shuffled[100..]),
            2,
            0,
        )
        .unwrap();
        assert!(chance < 0.75, "{chance}");
        assert!(linear_probe((&x[..200], &labels[..100]), (&x[..3], &labels[..1]), 2, 0).is_err());
        assert!(
            linear_probe(
                (&x[..200], &labels[..100]),
                (&x[200..], &labels[100..]),
                1,
                0
            )
            .is_err()
        );
    }
}

mod diffgrad {

    use gradlab_data::functions::DiffGradF1;

    use gradlab_lab::experiments::optim::diffgrad::*;

    #[test]
    fn the_same_seed_gives_the_same_numbers() {
        let (train, test) = gradlab_data::images::load_split("digits", 0).unwrap();
        let run = |seed| image_run("diffgrad", &train, &test, 1, seed).unwrap();
        let (a, b) = (run(7), run(7));
        assert_eq!(
            (a[0].train_loss, a[0].test_loss, a[0].test_acc),
            (b[0].train_loss, b[0].test_loss, b[0].test_acc)
        );
        assert_ne!(a[0].test_loss, run(8)[0].test_loss);
        let f1 = DiffGradF1;
        assert_eq!(
            analytic_trajectory("adam", &f1, ANALYTIC_STEPS).unwrap(),
            analytic_trajectory("adam", &f1, ANALYTIC_STEPS).unwrap()
        );
    }
}

mod diff2_net {

    use gradlab_lab::experiments::optim::diff2_net::*;

    #[test]
    fn example_gradients_match_central_differences_of_the_loss() {
        let p = SoftplusRegression::synthetic(5, 3);
        let theta = SoftplusRegression::initial(4);
        let loss_i = |t: &[f64], i: usize| (p.forward(t, i).0 - p.y[i]).powi(2);
        for i in 0..5 {
            let mut g = vec![0.0; p.param_count()];
            p.example_grad(&theta, i, &mut g);
            for c in 0..p.param_count() {
                let h = 1e-6;
                let (mut a, mut b) = (theta.clone(), theta.clone());
                a[c] += h;
                b[c] -= h;
                let fd = (loss_i(&a, i) - loss_i(&b, i)) / (2.0 * h);
                assert!(
                    (g[c] - fd).abs() < 1e-7 * (1.0 + fd.abs()),
                    "example {i}, θ[{c}]: {} vs {fd}",
                    g[c]
                );
            }
        }
        assert!(p.y.iter().all(|v| v.abs() <= 1.0));
        assert_eq!(p.param_count(), 101);
    }
}

mod mfac {

    use gradlab_lab::experiments::curvature::mfac::*;

    #[test]
    fn weight_indices_skip_biases() {
        // 2-3-1: W₁ 6, b₁ 3, W₂ 3, b₂ 1.
        assert_eq!(
            weight_indices(&[2, 3, 1]),
            vec![0, 1, 2, 3, 4, 5, 9, 10, 11]
        );
    }

    #[test]
    fn prune_zeroes_the_lowest_scores_among_candidates() {
        let theta = [1.0, 2.0, 3.0, 4.0, 5.0];
        let scores = [5.0, 1.0, 4.0, 2.0, 0.0];
        // Index 4 is not a candidate, so it survives despite the lowest score.
        let p = prune(&theta, &[0, 1, 2, 3], &scores, 0.5);
        assert_eq!(p, vec![1.0, 0.0, 3.0, 0.0, 5.0]);
    }
}

mod hessian_spectrum {

    use gradlab_lab::experiments::curvature::hessian_spectrum::count_outliers;

    #[test]
    fn outliers_sit_above_the_largest_gap() {
        assert_eq!(count_outliers(&[9.0, 8.0, 7.5, 1.0, 0.9, 0.8], 5, 1e-3), 3);
        assert_eq!(count_outliers(&[5.0, 0.5, 0.45, 0.05], 3, 1e-3), 1);
        // Values under the floor are not bulk edges: 1e-6 is noise, not a gap.
        assert_eq!(count_outliers(&[1.0, 0.5, 0.4, 1e-6], 3, 1e-3), 1);
        assert_eq!(count_outliers(&[], 3, 1e-3), 0);
    }
}

mod grad_norm_smoothness {

    use gradlab_core::problem::{Cost, Gradient, Hessian};

    use gradlab_lab::experiments::curvature::grad_norm_smoothness::*;

    #[test]
    fn softmax_regression_derivatives_match_finite_differences() {
        let features: Vec<f32> = (0..12).map(|i| ((i * 7 % 5) as f32 - 2.0) / 2.0).collect();
        let f = SoftmaxRegression::new(&features, &[0, 2, 1, 2], 3);
        let w: Vec<f64> = (0..f.dim())
            .map(|i| ((i * 3 % 7) as f64 - 3.0) / 5.0)
            .collect();
        let (g, h, n) = (f.gradient(&w), f.hessian(&w), f.dim());
        let eps = 1e-6;
        for i in 0..n {
            let mut p = w.clone();
            let mut m = w.clone();
            p[i] += eps;
            m[i] -= eps;
            let fd = (f.value(&p) - f.value(&m)) / (2.0 * eps);
            assert!((fd - g[i]).abs() < 1e-7, "gradient {i}: {fd} vs {}", g[i]);
            let (gp, gm) = (f.gradient(&p), f.gradient(&m));
            for j in 0..n {
                let fd = (gp[j] - gm[j]) / (2.0 * eps);
                assert!((fd - h[j * n + i]).abs() < 1e-6, "Hessian {j},{i}");
            }
        }
    }

    /// The joint optimizer's objective on a linear model (softmax regression as an `Mlp` 64-10, whose
    /// flattened parameters are W̃ = [W; b] in the oracle's layout): value, gradient and Gauss–Newton
    /// matrix (the exact Hessian for a linear model) against the closed-form oracle.
    #[test]
    fn model_objective_matches_softmax_regression() {
        use gradlab_lab::joint_newton::ModelObjective;
        let (train, _) = gradlab_data::images::load_split("digits", 0).unwrap();
        let n = 60;
        let idx: Vec<usize> = (0..n).collect();
        let model = gradlab_nets::mlp::MlpConfig::new(vec![64, 10])
            .init(&gradlab_train::autodiff_device(), 4);
        let theta: Vec<f64> = gradlab_core::flat::flatten_host(&model).unwrap();
        let ours = ModelObjective::new(model, &train, &idx, L2).unwrap();
        let labels: Vec<usize> = train.labels[..n].iter().map(|&l| usize::from(l)).collect();
        let exact = SoftmaxRegression::new(&train.images[..n * 64], &labels, 10);
        assert!((ours.cost(&theta).unwrap() - exact.value(&theta)).abs() < 1e-5);
        let (g1, g2) = (ours.gradient(&theta).unwrap(), exact.gradient(&theta));
        let gmax = g2.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in g1.iter().zip(&g2) {
            assert!((a - b).abs() < 1e-4 * gmax, "{a} vs {b}");
        }
        let (h1, h2) = (ours.hessian(&theta).unwrap(), exact.hessian(&theta));
        let hmax = h2.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in h1.iter().zip(&h2) {
            assert!((a - b).abs() < 2e-3 * hmax, "{a} vs {b}");
        }
        assert!(
            ModelObjective::new(
                gradlab_nets::mlp::MlpConfig::new(vec![64, 10])
                    .init(&gradlab_train::autodiff_device(), 4),
                &train,
                &idx,
                -1.0
            )
            .is_err()
        );
    }
}

mod coherent_gradients {

    use gradlab_lab::experiments::curvature::coherent_gradients::*;

    #[test]
    fn corruption_changes_exactly_the_masked_labels() {
        let (set, _) = gradlab_data::images::load_split("digits", 0).unwrap();
        let (bad, mask) = corrupt(&set, 0.5, 3);
        let changed = (0..set.len())
            .filter(|&i| bad.labels[i] != set.labels[i])
            .count();
        assert_eq!(changed, mask.iter().filter(|m| **m).count());
        let frac = changed as f64 / set.len() as f64;
        assert!((frac - 0.5).abs() < 0.05, "{frac}");
        assert!((0..set.len()).all(|i| mask[i] == (bad.labels[i] != set.labels[i])));
    }
}

mod optimizers_alter_solutions {

    use rand::SeedableRng;

    use gradlab_lab::experiments::curvature::optimizers_alter_solutions::*;

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
}

mod opposing_signals {

    use gradlab_lab::experiments::curvature::opposing_signals::*;

    #[test]
    fn spikes_are_measured_against_the_running_minimum() {
        assert_eq!(largest_spike(&[4.0, 2.0, 1.0, 3.0, 0.5]), (3.0, 3));
        assert_eq!(largest_spike(&[3.0, 2.0, 1.0]).0, 1.0);
    }

    #[test]
    fn purity_takes_the_better_assignment() {
        assert_eq!(split_purity(&[3, 4], &[1], &[1, 2], &[3, 4]), 1.0);
        assert_eq!(split_purity(&[1, 3], &[4], &[1, 2], &[3, 4]), 2.0 / 3.0);
    }

    #[test]
    fn planted_groups_carry_the_strong_feature() {
        let d = data(true, 1);
        assert!(!d.group_a.is_empty() && !d.group_b.is_empty());
        for i in 0..N {
            let planted = d.group_a.contains(&i) || d.group_b.contains(&i);
            assert_eq!(d.x[i * D + 1] == STRONG, planted);
        }
        assert!(d.group_a.iter().all(|&i| d.y[i] > 0.0) && d.group_b.iter().all(|&i| d.y[i] < 0.0));
        assert!(
            data(false, 1)
                .x
                .iter()
                .skip(1)
                .step_by(D)
                .all(|v| *v == 0.0)
        );
    }
}
