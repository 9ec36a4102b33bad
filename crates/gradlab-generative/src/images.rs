//! Image sets as model inputs: pixels in [0, 1] are scaled to [−1, 1] (the convention of DDPM and
//! score SDE) and flattened to `c·h·w` coordinates per image (`[n, c·h·w]` host tensors, f64), and
//! back.
//!
//! ```
//! use gradlab_generative::images::{pixel_batches, to_unit_pixels};
//! let digits = gradlab_data::images::digits();
//! let mut draw = pixel_batches(&digits);
//! let b = draw(4, 0);
//! assert_eq!(b.dims(), [4, 64]);
//! let px = to_unit_pixels(&b).unwrap();
//! assert!(px.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
//! ```

use crate::Result;
use crate::points::{Rows, from_rows};
use burn::prelude::*;
use gradlab_data::ImageSet;

/// `n` images of `set` in a seeded order (cycling if `n` exceeds the set), scaled to [−1, 1].
pub fn pixel_batches(set: &ImageSet) -> impl FnMut(usize, u64) -> Tensor<2> + Clone + 'static {
    let set = set.clone();
    move |n, seed| {
        let order = gradlab_data::batch::epoch_order(set.len(), seed, 0);
        let idx: Vec<usize> = order.iter().copied().cycle().take(n).collect();
        image_batch(&set, &idx)
    }
}

/// [`pixel_batches`] with uniform dequantization: each pixel of `levels` levels moves uniformly
/// within its bin of width Δ = 2/(L − 1) centred on it (the bins of
/// [`crate::likelihood::Quantization::pixels`]). A model trained on these is a density of the
/// dequantized data, smooth within the bins, which is what bits/dim by dequantization measure;
/// trained on the exact levels, it can concentrate on them (at σ(10⁻⁵) = 0.001 the 17 levels of
/// the digits are 125σ apart) and make both the bits and the likelihood ODE blow up.
pub fn dequantized_pixel_batches(
    set: &ImageSet,
    levels: usize,
) -> impl FnMut(usize, u64) -> Tensor<2> + Clone + 'static {
    let set = set.clone();
    let delta = 2.0 / levels.saturating_sub(1).max(1) as f64;
    move |n, seed| {
        use rand::{Rng, SeedableRng};
        let order = gradlab_data::batch::epoch_order(set.len(), seed, 0);
        let idx: Vec<usize> = order.iter().copied().cycle().take(n).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xDE0);
        let data: Vec<f64> = pixels(&set, &idx)
            .map(|v| v + delta * (rng.random::<f64>() - 0.5))
            .collect();
        rows_tensor(data, idx.len(), set.feature_dim())
    }
}

/// The pixels of the images at `idx`, scaled to [−1, 1], in row-major order.
fn pixels<'a>(set: &'a ImageSet, idx: &'a [usize]) -> impl Iterator<Item = f64> + 'a {
    idx.iter()
        .flat_map(move |&i| set.image(i).iter().map(|v| 2.0 * f64::from(*v) - 1.0))
}

/// `n` rows of `d` values that fit by construction.
fn rows_tensor(data: Vec<f64>, n: usize, d: usize) -> Tensor<2> {
    from_rows(&data, n, d.max(1)).expect("n·d values for n rows of d")
}

/// The images of `set` at `idx`, scaled to [−1, 1], as an `[|idx|, c·h·w]` tensor.
pub fn image_batch(set: &ImageSet, idx: &[usize]) -> Tensor<2> {
    rows_tensor(pixels(set, idx).collect(), idx.len(), set.feature_dim())
}

/// The images of `set` at `idx` as pixels in [0, 1], one vector per image.
pub fn unit_pixels(set: &ImageSet, idx: &[usize]) -> Vec<Vec<f64>> {
    idx.iter()
        .map(|&i| set.image(i).iter().map(|v| f64::from(*v)).collect())
        .collect()
}

/// Model outputs in [−1, 1] (`[n, c·h·w]`) back to pixels in [0, 1] (clamped), one vector per
/// image.
pub fn to_unit_pixels(b: &Tensor<2>) -> Result<Vec<Vec<f64>>> {
    let r = Rows::of(b)?;
    Ok((0..r.n)
        .map(|i| {
            r.row(i)
                .iter()
                .map(|v| ((v + 1.0) / 2.0).clamp(0.0, 1.0))
                .collect()
        })
        .collect())
}

/// The images of `set` at `idx` as integer levels k = round(v·(L − 1)) of `levels` levels (for
/// [`crate::likelihood::bits_per_dim_quantized`]: 17 for the 0–16 digits, 256 for 8-bit images).
pub fn pixel_levels(set: &ImageSet, idx: &[usize], levels: usize) -> Tensor<2> {
    let top = levels.saturating_sub(1) as f64;
    let data = idx
        .iter()
        .flat_map(|&i| {
            set.image(i)
                .iter()
                .map(move |v| (f64::from(*v) * top).round())
        })
        .collect();
    rows_tensor(data, idx.len(), set.feature_dim())
}
