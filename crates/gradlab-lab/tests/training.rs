//! The training loop: exact resume, divergence errors, and the digits accuracy the README promises.

use gradlab_data::images::digits_split;
use gradlab_lab::LabError;
use gradlab_lab::train::{TrainConfig, TrainRequest, Trainer, autodiff_device, run_training};
use gradlab_nets::mlp::MlpConfig;
use gradlab_nets::params::flatten;
use gradlab_optim::schedule::Schedule;
use gradlab_optim::spec::OptimizerSpec;

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
        assert!(matches!(err, LabError::Checkpoint { .. }), "{err}");
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
        matches!(err, LabError::NonFinite { .. }) && msg.contains("step"),
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
        model: "mlp".into(),
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
    assert!(
        run_training(&TrainRequest {
            model: "vgg".into(),
            ..req.clone()
        })
        .is_err()
    );
}

#[test]
fn losses_match_their_definitions() {
    use burn::prelude::*;
    use gradlab_lab::train::LossKind;
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
    assert!(LossKind::parse("hinge").is_err());
}

fn first_weights<M: gradlab_nets::Net>(m: &M) -> Vec<f64> {
    // The first parameter visited is the first layer's weight in both Mlp and SmallCnn.
    let n = match m.first_layer().unwrap() {
        gradlab_nets::FirstLayer::Linear { .. } => 64 * 16,
        gradlab_nets::FirstLayer::Conv { .. } => 16 * 9,
    };
    flatten(m)[..n].iter().map(|v| f64::from(*v)).collect()
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
