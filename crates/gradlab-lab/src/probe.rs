//! Linear probes: how much of a label a frozen representation makes linearly readable.

use crate::error::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use gradlab_nets::loss::LossKind;
use gradlab_nets::mlp::MlpConfig;
use gradlab_nets::{Net, autodiff_device};

/// Test accuracy of softmax regression (Adam lr 1e-2, 300 full-batch steps, weights from `seed`)
/// trained on the rows of `train` [n × dim] with labels `train_labels` (< `classes`), on the rows
/// of `test`. The features are used as given: scale them first where that matters.
pub fn linear_probe(
    (train, train_labels): (&[f64], &[u8]),
    (test, test_labels): (&[f64], &[u8]),
    classes: usize,
    seed: u64,
) -> Result<f64> {
    let dim = train.len() / train_labels.len().max(1);
    let valid = dim > 0
        && train.len() == dim * train_labels.len()
        && test.len() == dim * test_labels.len()
        && !test_labels.is_empty()
        && train_labels
            .iter()
            .chain(test_labels)
            .all(|l| usize::from(*l) < classes);
    if !valid {
        return Err(crate::error::LabError::Invalid(format!(
            "a linear probe needs rows of one width and labels < {classes}: {} train values for {} labels, {} test values for {} labels",
            train.len(),
            train_labels.len(),
            test.len(),
            test_labels.len()
        )));
    }
    let dev = autodiff_device();
    let rows = |v: &[f64], dev: &Device| {
        let f: Vec<f32> = v.iter().map(|x| *x as f32).collect();
        Tensor::<2>::from_data(TensorData::new(f, [v.len() / dim, dim]), dev)
    };
    let n = train_labels.len();
    let y: Vec<i64> = train_labels.iter().map(|l| i64::from(*l)).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(y, [n]), &dev);
    let mut probe = MlpConfig::new(vec![dim, classes]).init(&dev, seed);
    let mut optim = AdamConfig::new().init();
    let x = rows(train, &dev);
    for _ in 0..300 {
        let logits = probe.forward(x.clone());
        let loss = LossKind::CrossEntropy.forward(logits, y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &probe);
        probe = optim.step(1e-2, probe, grads);
    }
    let logits = probe.valid().forward(rows(test, &Device::flex()));
    let pred = gradlab_core::bridge::ints_to_host(logits.argmax(1))?;
    let hits = pred
        .iter()
        .zip(test_labels)
        .filter(|(p, l)| **p == i64::from(**l))
        .count();
    Ok(hits as f64 / test_labels.len() as f64)
}

/// Each column of the rows of `rows` [n × dim] shifted and scaled by the mean and standard
/// deviation of `reference` [m × dim] (a constant column is only centred).
pub fn standardise(rows: &[f64], reference: &[f64], dim: usize) -> Vec<f64> {
    let m = (reference.len() / dim.max(1)).max(1) as f64;
    let mean: Vec<f64> = (0..dim)
        .map(|j| reference.iter().skip(j).step_by(dim).sum::<f64>() / m)
        .collect();
    let std: Vec<f64> = (0..dim)
        .map(|j| {
            let v = reference
                .iter()
                .skip(j)
                .step_by(dim)
                .map(|x| (x - mean[j]).powi(2))
                .sum::<f64>()
                / m;
            if v > 0.0 { v.sqrt() } else { 1.0 }
        })
        .collect();
    rows.iter()
        .enumerate()
        .map(|(i, x)| (x - mean[i % dim]) / std[i % dim])
        .collect()
}
