//! The training loop: exact resume, divergence errors, and the digits accuracy the README promises.

use gradlab_core::collective::Collective;
use gradlab_data::images::digits_split;
use gradlab_nets::mlp::MlpConfig;
/// All parameters of a model, exactly (f32 widened to f64).
fn flatten<M: burn::module::Module>(m: &M) -> Vec<f64> {
    gradlab_core::flat::flatten_host(m).unwrap()
}
use gradlab_optim::schedule::Schedule;
use gradlab_optim::spec::OptimizerSpec;
use gradlab_train::TrainError;
use gradlab_train::request::{ModelKind, TrainRequest, run_training};
use gradlab_train::{TrainConfig, Trainer, autodiff_device};

fn config(opt: &str) -> TrainConfig {
    let mut cfg = TrainConfig::new(OptimizerSpec::parse(opt).unwrap());
    cfg.schedule = Schedule::Cosine {
        total: 2000,
        min_factor: 0.1,
    };
    cfg.seed = 5;
    cfg
}

#[test]
fn resume_from_checkpoint_gives_identical_parameters() {
    let (train, _) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let model = || MlpConfig::new(vec![64, 32, 10]).init(&dev, 1);
    for opt in ["diffgrad", "sgdm"] {
        let config = |o: &str| {
            let mut c = config(o);
            c.clip =
                (o == "sgdm").then_some(gradlab_optim::transform::ClipSpec::TopCoordinates(0.1));
            c
        };
        let mut straight = Trainer::new(model(), config(opt)).unwrap();
        for _ in 0..2000 {
            straight.train_step(&train).unwrap();
        }
        let mut first = Trainer::new(model(), config(opt)).unwrap();
        for _ in 0..1000 {
            first.train_step(&train).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("gradlab-ckpt-{opt}-{}", std::process::id()));
        first.save_checkpoint(&dir).unwrap();
        // A fresh model with other initial weights, restored from the checkpoint.
        let other = MlpConfig::new(vec![64, 32, 10]).init(&dev, 99);
        let mut resumed = Trainer::new(other, config(opt))
            .unwrap()
            .resume(&dir)
            .unwrap();
        assert_eq!(resumed.step_count(), 1000);
        for _ in 0..1000 {
            resumed.train_step(&train).unwrap();
        }
        assert_eq!(
            flatten(&straight.model),
            flatten(&resumed.model),
            "{opt}: resumed run differs"
        );
        // A different configuration is refused.
        let mut cfg = config(opt);
        cfg.batch_size = 16;
        let err = Trainer::new(model(), cfg)
            .unwrap()
            .resume(&dir)
            .err()
            .unwrap();
        assert!(matches!(err, TrainError::Checkpoint { .. }), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn divergence_is_reported_with_its_step() {
    let (mut train, _) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let mut cfg = TrainConfig::new(OptimizerSpec::parse("sgd").unwrap().with_lr(1e30));
    cfg.batch_size = 64;
    let mut t = Trainer::new(MlpConfig::new(vec![64, 32, 10]).init(&dev, 0), cfg).unwrap();
    let err = (0..100)
        .find_map(|_| t.train_step(&train).err())
        .expect("an lr of 1e30 must diverge");
    let msg = err.to_string();
    assert!(
        matches!(err, TrainError::NonFinite { .. }) && msg.contains("step"),
        "{msg}"
    );
    // A non-finite input pixel makes the loss NaN at the first step.
    train.images[3] = f32::NAN;
    let mut cfg = TrainConfig::new(OptimizerSpec::parse("adam").unwrap());
    cfg.batch_size = train.len();
    let mut t = Trainer::new(MlpConfig::new(vec![64, 32, 10]).init(&dev, 0), cfg).unwrap();
    let msg = t.train_step(&train).unwrap_err().to_string();
    assert!(msg.contains("step 0") && msg.contains("loss"), "{msg}");
}

#[test]
fn mlp_with_adam_reaches_95_percent_on_held_out_digits() {
    // The README's `gradlab train --model mlp --data digits --optimizer adam --epochs 20`.
    let req = TrainRequest {
        model: ModelKind::Mlp,
        data: "digits".into(),
        config: TrainConfig::new(OptimizerSpec::parse("adam").unwrap()),
        epochs: 20,
        checkpoint: None,
        resume: None,
    };
    let report = run_training(&req).unwrap();
    assert_eq!(report.test_examples, 359);
    let acc = report.epochs.last().unwrap().test_acc;
    assert!(acc >= 0.95, "test accuracy {acc}");
    let err = "vgg".parse::<ModelKind>().unwrap_err().to_string();
    assert!(err.contains("unknown model 'vgg'"), "{err}");
    assert_eq!("ResNet".parse::<ModelKind>().unwrap(), ModelKind::Resnet);
}

#[test]
fn losses_match_their_definitions() {
    use burn::prelude::*;
    use gradlab_train::trainer::LossKind;
    let dev = Device::flex();
    let logits = Tensor::<2>::from_floats([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], &dev);
    let y = Tensor::<1, Int>::from_ints([2, 1], &dev);
    // Closed forms: CE = mean(logsumexp(z) − z_y); MSE = Σ (z − onehot)² / b.
    let lse = |z: [f64; 3]| z.iter().map(|v| v.exp()).sum::<f64>().ln();
    let ce = ((lse([1.0, -2.0, 0.5]) - 0.5) + (lse([0.0, 3.0, -1.0]) - 3.0)) / 2.0;
    let mse = ((1.0f64 + 4.0 + 0.25) + (0.0 + 4.0 + 1.0)) / 2.0;
    let got_ce = LossKind::CrossEntropy
        .forward(logits.clone(), y.clone())
        .into_scalar::<f64>();
    let got_mse = LossKind::MseOneHot.forward(logits, y).into_scalar::<f64>();
    assert!(
        (got_ce - ce).abs() < 1e-6 && (got_mse - mse).abs() < 1e-5,
        "{got_ce} vs {ce}, {got_mse} vs {mse}"
    );
    assert!("hinge".parse::<LossKind>().is_err());
    assert_eq!(
        "Cross-Entropy".parse::<LossKind>(),
        Ok(LossKind::CrossEntropy)
    );
}

fn first_weights<M: gradlab_nets::Net>(m: &M) -> Vec<f64> {
    // The first parameter visited is the first layer's weight in both Mlp and SmallCnn.
    let n = match m.first_layer().unwrap() {
        gradlab_nets::FirstLayer::Linear { .. } => 64 * 16,
        gradlab_nets::FirstLayer::Conv { .. } => 16 * 9,
    };
    flatten(m)[..n].to_vec()
}

#[test]
fn tract_replaces_the_first_layer_gradient() {
    use gradlab_data::batch::epoch_batches;
    use gradlab_nets::cnn::SmallCnnConfig;
    use gradlab_optim::tract::TrAct;
    let (train, _) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let mut cfg = TrainConfig::new(OptimizerSpec::parse("sgd").unwrap().with_lr(1.0));
    cfg.batch_size = 16;
    let mut with = cfg.clone();
    with.tract = Some(0.1);
    let batch = &epoch_batches(train.len(), 16, 0, 0)[0];
    let t = TrAct::new(0.1).unwrap();

    // Linear first layer: rows are the batch's inputs; burn's weight is [in, out].
    let m0 = MlpConfig::new(vec![64, 16, 10]).init(&dev, 3);
    let w0 = first_weights(&m0);
    let mut a = Trainer::new(m0.clone(), cfg.clone()).unwrap();
    let mut b = Trainer::new(m0, with.clone()).unwrap();
    a.train_step(&train).unwrap();
    b.train_step(&train).unwrap();
    let g: Vec<f64> = w0
        .iter()
        .zip(first_weights(&a.model))
        .map(|(x, y)| x - y)
        .collect();
    let x: Vec<f64> = batch
        .iter()
        .flat_map(|&i| train.image(i).iter().map(|v| f64::from(*v)))
        .collect();
    let want = t.precondition(&x, 16, 64, &g, 16).unwrap();
    for ((w, got), d) in w0.iter().zip(first_weights(&b.model)).zip(want) {
        assert!(
            (w - got - d).abs() < 1e-3 * (1.0 + d.abs()),
            "{} vs {d}",
            w - got
        );
    }
    assert_eq!(
        flatten(&a.model)[64 * 16..],
        flatten(&b.model)[64 * 16..],
        "later layers must not change"
    );

    // Convolutional first layer (1 channel, 3×3, padding 1): patches built here by hand.
    let c0 = SmallCnnConfig::new(1, 8, 8, 10).init(&dev, 3);
    let w0 = first_weights(&c0);
    let mut a = Trainer::new(c0.clone(), cfg).unwrap();
    let mut b = Trainer::new(c0, with).unwrap();
    a.train_step(&train).unwrap();
    b.train_step(&train).unwrap();
    let g: Vec<f64> = w0
        .iter()
        .zip(first_weights(&a.model))
        .map(|(x, y)| x - y)
        .collect(); // [16 out, 9]
    let mut patches = vec![];
    for &i in batch {
        let img = train.image(i);
        for r in 0..8i32 {
            for c in 0..8i32 {
                for dr in -1..=1i32 {
                    for dc in -1..=1i32 {
                        let (y, x) = (r + dr, c + dc);
                        patches.push(if (0..8).contains(&y) && (0..8).contains(&x) {
                            f64::from(img[(y * 8 + x) as usize])
                        } else {
                            0.0
                        });
                    }
                }
            }
        }
    }
    let gt: Vec<f64> = (0..9 * 16).map(|pk| g[(pk % 16) * 9 + pk / 16]).collect(); // [9, 16]
    let want = t.precondition(&patches, 16 * 64, 9, &gt, 16).unwrap();
    for (o, (w, got)) in w0.iter().zip(first_weights(&b.model)).enumerate() {
        let d = want[(o % 9) * 16 + o / 9];
        assert!(
            (w - got - d).abs() < 1e-3 * (1.0 + d.abs()),
            "{o}: {} vs {d}",
            w - got
        );
    }
    // A model without a supported first layer is refused.
    let mut bad = TrainConfig::new(OptimizerSpec::parse("sgd").unwrap());
    bad.tract = Some(0.1);
    assert!(
        Trainer::new(
            gradlab_nets::resnet::SmallResNetConfig::new(1, 8, 8, 10).init(&dev, 0),
            bad
        )
        .is_err()
    );
}

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("gradlab-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    d
}

#[test]
fn a_resumed_tract_run_equals_a_straight_run() {
    // Loading a checkpoint restores the saved parameter ids; TrAct must follow them (a stale
    // first-layer id used to switch the preconditioner off without a word).
    let (train, _) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let mut cfg = TrainConfig::new(OptimizerSpec::parse("sgdm").unwrap().with_lr(0.05));
    cfg.tract = Some(0.1);
    let model = |seed| MlpConfig::new(vec![64, 32, 10]).init(&dev, seed);
    let mut straight = Trainer::new(model(1), cfg.clone()).unwrap();
    for _ in 0..200 {
        straight.train_step(&train).unwrap();
    }
    let mut first = Trainer::new(model(1), cfg.clone()).unwrap();
    for _ in 0..100 {
        first.train_step(&train).unwrap();
    }
    let dir = tmp_dir("ckpt-tract");
    first.save_checkpoint(&dir).unwrap();
    let mut resumed = Trainer::new(model(42), cfg.clone())
        .unwrap()
        .resume(&dir)
        .unwrap();
    for _ in 0..100 {
        resumed.train_step(&train).unwrap();
    }
    assert_eq!(flatten(&straight.model), flatten(&resumed.model));
    // Without TrAct the same resumed run ends elsewhere: the check above sees the preconditioner.
    let mut plain_cfg = cfg;
    plain_cfg.tract = None;
    let err = Trainer::new(model(42), plain_cfg)
        .unwrap()
        .resume(&dir)
        .err()
        .unwrap();
    assert!(err.to_string().contains("tract"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_save_that_fails_part_way_leaves_the_previous_checkpoint_resumable() {
    let (train, _) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let cfg = config("adam");
    let mut t = Trainer::new(MlpConfig::new(vec![64, 32, 10]).init(&dev, 1), cfg.clone()).unwrap();
    for _ in 0..50 {
        t.train_step(&train).unwrap();
    }
    let dir = tmp_dir("ckpt-partway");
    t.save_checkpoint(&dir).unwrap();
    let at_50 = flatten(&t.model);
    for _ in 0..50 {
        t.train_step(&train).unwrap();
    }
    // The new model and optimizer files get written, then switching the manifest fails (a
    // directory stands where its temporary file must go), as a full disk would make it fail.
    let blocker =
        gradlab_train::output::temp_beside(&dir.join(gradlab_train::checkpoint::MANIFEST));
    std::fs::create_dir_all(&blocker).unwrap();
    assert!(t.save_checkpoint(&dir).is_err());
    std::fs::remove_dir_all(&blocker).unwrap();
    let back = Trainer::new(MlpConfig::new(vec![64, 32, 10]).init(&dev, 7), cfg)
        .unwrap()
        .resume(&dir)
        .unwrap();
    assert_eq!(back.step_count(), 50);
    assert_eq!(flatten(&back.model), at_50);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_refuses_a_mismatch_in_one_line_that_names_the_field() {
    let dev = autodiff_device();
    let model = || MlpConfig::new(vec![64, 32, 10]).init(&dev, 1);
    let dir = tmp_dir("ckpt-key");
    let mut cfg = config("sgdm");
    cfg.data = Some("digits".into());
    Trainer::new(model(), cfg.clone())
        .unwrap()
        .save_checkpoint(&dir)
        .unwrap();
    #[allow(clippy::type_complexity)] // a table of named config edits, read once here
    let cases: Vec<(&str, Box<dyn Fn(&mut TrainConfig)>)> = vec![
        (
            "clip",
            Box::new(|c| c.clip = Some(gradlab_optim::transform::ClipSpec::TopCoordinates(0.1))),
        ),
        ("tract", Box::new(|c| c.tract = Some(0.1))),
        ("data", Box::new(|c| c.data = Some("fashion1k".into()))),
        (
            "optimizer",
            Box::new(|c| c.optimizer = c.optimizer.clone().with_lr(0.5)),
        ),
        ("batch size", Box::new(|c| c.batch_size = 64)),
    ];
    for (field, change) in cases {
        let mut c = cfg.clone();
        change(&mut c);
        let msg = Trainer::new(model(), c)
            .unwrap()
            .resume(&dir)
            .err()
            .unwrap()
            .to_string();
        assert!(
            msg.contains(&format!("saved with {field} "))
                && !msg.contains('\n')
                && !msg.contains('{'),
            "{msg}"
        );
    }
    // Another architecture is refused too, with an error rather than a panic.
    let other = MlpConfig::new(vec![64, 16, 10]).init(&dev, 1);
    let msg = Trainer::new(other, cfg)
        .unwrap()
        .resume(&dir)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("model"), "{msg}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_resume_with_nothing_to_do_says_so() {
    let dir = tmp_dir("ckpt-nothing");
    let mut req = TrainRequest {
        model: ModelKind::Mlp,
        data: "digits".into(),
        config: TrainConfig::new(OptimizerSpec::parse("adam").unwrap()),
        epochs: 1,
        checkpoint: Some(dir.clone()),
        resume: None,
    };
    run_training(&req).unwrap();
    req.resume = Some(dir.clone());
    let msg = run_training(&req).unwrap_err().to_string();
    assert!(
        msg.contains("nothing to do") && msg.contains("1 epochs"),
        "{msg}"
    );
    req.epochs = 2;
    assert_eq!(run_training(&req).unwrap().epochs.len(), 1);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn outputs_are_checked_before_any_training() {
    let file = std::env::temp_dir().join(format!("gradlab-not-a-dir-{}", std::process::id()));
    std::fs::write(&file, "x").unwrap();
    let mut req = TrainRequest {
        model: ModelKind::Mlp,
        data: "digits".into(),
        config: TrainConfig::new(OptimizerSpec::parse("adam").unwrap()),
        epochs: 1_000_000, // would take hours if the check came after the work
        checkpoint: Some(file.clone()),
        resume: None,
    };
    let msg = run_training(&req).unwrap_err().to_string();
    assert!(msg.contains("not a directory"), "{msg}");
    req.checkpoint = None;
    req.config.log = Some(std::env::temp_dir());
    let msg = run_training(&req).unwrap_err().to_string();
    assert!(msg.contains("is a directory"), "{msg}");
    std::fs::remove_file(&file).ok();
}

#[test]
fn images_a_model_cannot_take_are_errors_not_panics() {
    use gradlab_train::request::{ModelJob, with_model};
    struct Build;
    impl ModelJob for Build {
        type Output = usize;
        type Error = TrainError;
        fn run<M: gradlab_nets::Net>(self, m: M) -> gradlab_train::Result<usize> {
            Ok(m.input_features())
        }
    }
    let (train, test) = digits_split(0.2, 0).unwrap();
    // 2×2 images are smaller than the CNN's two poolings allow; 0-row images have no pixels.
    let tiny = gradlab_data::ImageSet {
        images: vec![0.5; train.len() * 4],
        height: 2,
        width: 2,
        ..train.clone()
    };
    let msg = with_model(ModelKind::Cnn, &tiny, 0, Build)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2×2") && msg.contains("4×4"), "{msg}");
    assert_eq!(with_model(ModelKind::Resnet, &tiny, 0, Build).unwrap(), 4);
    let empty = gradlab_data::ImageSet {
        images: vec![],
        height: 0,
        ..train.clone()
    };
    assert!(
        with_model(ModelKind::Mlp, &empty, 0, Build)
            .unwrap_err()
            .to_string()
            .contains("no pixels")
    );
    // A test set of another size than the training set is refused before training.
    let dev = autodiff_device();
    let mut t = Trainer::new(
        MlpConfig::new(vec![64, 32, 10]).init(&dev, 0),
        config("adam"),
    )
    .unwrap();
    let msg = t.fit(&train, &tiny, 1).unwrap_err().to_string();
    assert!(
        msg.contains("2×2") && msg.contains("64 input values"),
        "{msg}"
    );
    assert!(t.fit(&train, &test, 0).unwrap().is_empty());
}

#[test]
fn a_run_stopped_after_an_epoch_resumes_into_the_straight_run() {
    // Checkpoints are renewed after every epoch (as `gradlab train --checkpoint` does), so a run
    // killed part-way resumes, with the same --epochs, into exactly the straight run — also with
    // a decaying schedule, which is planned over the run's epochs.
    let (train, test) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let mut cfg = TrainConfig::new(OptimizerSpec::parse("adam").unwrap());
    cfg.schedule = Schedule::Cosine {
        total: 3 * train.len().div_ceil(32),
        min_factor: 0.0,
    };
    let model = |seed| MlpConfig::new(vec![64, 32, 10]).init(&dev, seed);
    let mut straight = Trainer::new(model(1), cfg.clone()).unwrap();
    straight.fit(&train, &test, 3).unwrap();
    let dir = tmp_dir("ckpt-epochs");
    let mut killed = Trainer::new(model(1), cfg.clone()).unwrap();
    let stop = killed.fit_with(&train, &test, 3, |t, s| {
        t.save_checkpoint(&dir)?;
        if s.epoch == 1 {
            Err(TrainError::Invalid("killed".into()))
        } else {
            Ok(())
        }
    });
    assert!(stop.is_err());
    let mut resumed = Trainer::new(model(9), cfg.clone())
        .unwrap()
        .resume(&dir)
        .unwrap();
    let rest = resumed.fit(&train, &test, 3).unwrap();
    assert_eq!(rest.iter().map(|s| s.epoch).collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(flatten(&straight.model), flatten(&resumed.model));
    // Asking for more epochs would change the cosine schedule: refused, with what to do.
    let mut longer = cfg;
    longer.schedule = Schedule::Cosine {
        total: 4 * train.len().div_ceil(32),
        min_factor: 0.0,
    };
    let msg = Trainer::new(model(9), longer)
        .unwrap()
        .resume(&dir)
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("cosine over") && msg.contains("--epochs"),
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `train(member)` for every member of a thread group of `n`, each in its thread.
fn on_members<T: Send>(
    n: usize,
    train: impl Fn(gradlab_core::collective::ThreadGroup) -> T + Sync,
) -> Vec<T> {
    let members = gradlab_core::collective::ThreadGroup::new(n).unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = members.into_iter().map(|m| s.spawn(|| train(m))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn data_parallel_training_equals_single_process_training_with_the_same_global_batch() {
    let (train, test) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    // Batch 30 splits unevenly over 4 members (7, 8, 7, 8) and the epoch's last batch of 27 too
    // (6, 7, 7, 7): the shares' gradients must be weighted by their sizes.
    for (opt, clip) in [
        ("adam", None),
        (
            "sgdm",
            Some(gradlab_optim::transform::ClipSpec::GlobalNorm(0.5)),
        ),
    ] {
        let cfg = || {
            let mut c = config(opt);
            c.batch_size = 30;
            c.clip = clip;
            c
        };
        let model = || MlpConfig::new(vec![64, 32, 10]).init(&dev, 3);
        let mut single = Trainer::new(model(), cfg()).unwrap();
        let single_stats = single.fit(&train, &test, 2).unwrap();
        let reference = flatten(&single.model);
        let members = on_members(4, |m| {
            let mut t = Trainer::new(model(), cfg())
                .unwrap()
                .data_parallel(Box::new(m))
                .unwrap();
            let stats = t.fit(&train, &test, 2).unwrap();
            (flatten(&t.model), stats)
        });
        for (rank, (params, stats)) in members.iter().enumerate() {
            // Every member holds the same model, bit for bit.
            assert_eq!(params, &members[0].0, "{opt}: member {rank} drifted");
            let worst = params
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(
                worst < 1e-4,
                "{opt}: member {rank} differs from one process by {worst}"
            );
            for (d, s) in stats.iter().zip(&single_stats) {
                assert!(
                    (d.train_loss - s.train_loss).abs() < 1e-5,
                    "{opt}: {d:?} vs {s:?}"
                );
                assert_eq!(d.step, s.step);
            }
        }
    }
}

#[test]
fn members_that_do_not_start_alike_are_refused_by_every_member() {
    let (train, _) = digits_split(0.2, 0).unwrap();
    let dev = autodiff_device();
    let out = on_members(3, |m| {
        let seed = if m.rank() == 2 { 4 } else { 3 }; // member 2 has other initial weights
        let model = MlpConfig::new(vec![64, 32, 10]).init(&dev, seed);
        Trainer::new(model, config("adam"))
            .unwrap()
            .data_parallel(Box::new(m))
            .map(|mut t| t.train_step(&train).map(drop))
            .err()
            .map(|e| e.to_string())
    });
    for e in out {
        let e = e.expect("a mismatched group trained");
        assert!(e.contains("initial parameters differs"), "{e}");
    }
    // Another learning rate on one member, or another number of epochs: refused, never a drift
    // or a member left waiting.
    let (_, test) = digits_split(0.2, 0).unwrap();
    let out = on_members(2, |m| {
        let lr = if m.rank() == 1 { 2e-3 } else { 1e-3 };
        let cfg = TrainConfig::new(OptimizerSpec::parse("adam").unwrap().with_lr(lr));
        let model = MlpConfig::new(vec![64, 32, 10]).init(&dev, 3);
        Trainer::new(model, cfg)
            .unwrap()
            .data_parallel(Box::new(m))
            .err()
            .map(|e| e.to_string())
    });
    assert!(
        out.iter()
            .all(|e| e.as_ref().is_some_and(|e| e.contains("settings"))),
        "{out:?}"
    );
    let out = on_members(2, |m| {
        let epochs = 1 + m.rank();
        let model = MlpConfig::new(vec![64, 32, 10]).init(&dev, 3);
        let mut t = Trainer::new(model, config("adam"))
            .unwrap()
            .data_parallel(Box::new(m))
            .unwrap();
        t.fit(&train, &test, epochs).err().map(|e| e.to_string())
    });
    assert!(
        out.iter()
            .all(|e| e.as_ref().is_some_and(|e| e.contains("numbers of steps"))),
        "{out:?}"
    );
    // TrAct needs the whole batch's inputs.
    let mut members = gradlab_core::collective::ThreadGroup::new(1).unwrap();
    let mut cfg = config("adam");
    cfg.tract = Some(0.1);
    let model = MlpConfig::new(vec![64, 32, 10]).init(&dev, 3);
    let err = Trainer::new(model, cfg)
        .unwrap()
        .data_parallel(Box::new(members.pop().unwrap()))
        .err()
        .unwrap();
    assert!(matches!(err, TrainError::Invalid(_)), "{err}");
}

#[test]
fn a_non_finite_loss_on_one_member_stops_every_member_at_the_same_step() {
    let (train, _) = digits_split(0.2, 0).unwrap();
    // Member 1's copy of one image is NaN; every member sees the summed loss turn NaN at the
    // first step whose batch holds that image in member 1's share, and none waits for the others.
    let mut poisoned = train.clone();
    let d = poisoned.feature_dim();
    poisoned.images[5 * d] = f32::NAN;
    let dev = autodiff_device();
    let out = on_members(2, |m| {
        let set = if m.rank() == 1 { &poisoned } else { &train };
        let model = MlpConfig::new(vec![64, 32, 10]).init(&dev, 3);
        let mut t = Trainer::new(model, config("adam"))
            .unwrap()
            .data_parallel(Box::new(m))
            .unwrap();
        loop {
            if let Err(e) = t.train_step(set) {
                return e;
            }
        }
    });
    let steps: Vec<usize> = out
        .iter()
        .map(|e| match e {
            TrainError::NonFinite { step, .. } => *step,
            other => panic!("expected a non-finite loss, got {other}"),
        })
        .collect();
    assert_eq!(steps[0], steps[1]);
}
