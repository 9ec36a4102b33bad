//! Seeded, shuffled minibatching into burn tensors.
//!
//! The order of epoch `e` depends only on `(seed, e)`, so a run resumed from a checkpoint at any
//! step sees exactly the batches the uninterrupted run would have seen.
//!
//! ```
//! use gradlab_data::batch::epoch_batches;
//! let b = epoch_batches(10, 4, 7, 0);
//! assert_eq!(b.iter().map(|b| b.len()).collect::<Vec<_>>(), vec![4, 4, 2]);
//! assert_eq!(b, epoch_batches(10, 4, 7, 0));
//! ```

use crate::images::ImageSet;
use burn::prelude::*;
use rand::prelude::*;

/// The permutation of `0..n` for epoch `epoch` of a run seeded with `seed`.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    let mixed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (epoch as u64)
            .wrapping_add(1)
            .wrapping_mul(0xD1B5_4A32_D192_ED03);
    idx.shuffle(&mut StdRng::seed_from_u64(mixed));
    idx
}

/// The minibatches (index lists) of one epoch; the last one may be smaller.
pub fn epoch_batches(n: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    epoch_order(n, seed, epoch)
        .chunks(batch_size.max(1))
        .map(|c| c.to_vec())
        .collect()
}

/// The images at `idx` as a `[b, c·h·w]` float tensor and their labels as a `[b]` int tensor.
pub fn to_tensors(set: &ImageSet, idx: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let d = set.feature_dim();
    let mut x = Vec::with_capacity(idx.len() * d);
    idx.iter().for_each(|&i| x.extend_from_slice(set.image(i)));
    let y: Vec<i64> = idx.iter().map(|&i| i64::from(set.labels[i])).collect();
    let x = Tensor::<2>::from_data(TensorData::new(x, [idx.len(), d]), device);
    let y = Tensor::<1, Int>::from_data(TensorData::new(y, [idx.len()]), device);
    (x, y)
}

/// Points as an `[n, 2]` f32 tensor.
pub fn points_to_tensor(points: &[[f64; 2]], device: &Device) -> Tensor<2> {
    let flat: Vec<f32> = points
        .iter()
        .flat_map(|p| [p[0] as f32, p[1] as f32])
        .collect();
    Tensor::<2>::from_data(TensorData::new(flat, [points.len(), 2]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_are_permutations_that_differ() {
        let a = epoch_order(100, 3, 0);
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..100).collect::<Vec<_>>());
        assert_ne!(a, epoch_order(100, 3, 1));
        assert_ne!(a, epoch_order(100, 4, 0));
    }

    #[test]
    fn tensors_hold_the_selected_examples() {
        let set = crate::images::digits();
        let (x, y) = to_tensors(&set, &[5, 0], &Device::flex());
        assert_eq!(x.dims(), [2, 64]);
        let xv = x.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(&xv[..64], set.image(5));
        assert_eq!(
            y.into_data().convert::<i64>().try_to_vec::<i64>().unwrap(),
            vec![i64::from(set.labels[5]), i64::from(set.labels[0])]
        );
    }
}
