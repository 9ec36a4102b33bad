//! Procedural labelled images (shapes with masks and boxes) and synthetic classification sets.
//!
//! ```
//! let scenes = gradlab_data::procedural::shapes(8, 16, 2, 0);
//! assert_eq!(scenes.set.len(), 8);
//! assert_eq!(scenes.masks[0].len(), 16 * 16);
//! ```

use crate::images::ImageSet;
use rand::prelude::*;
use rand_distr::StandardNormal;

/// The shape classes drawn by [`shapes`].
pub const SHAPE_CLASSES: &[&str] = &["square", "disc", "triangle"];

/// An axis-aligned box in pixel coordinates, end-exclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Shape class index into [`SHAPE_CLASSES`].
    pub class: u8,
    /// Left column.
    pub x0: usize,
    /// Top row.
    pub y0: usize,
    /// Right column (exclusive).
    pub x1: usize,
    /// Bottom row (exclusive).
    pub y1: usize,
}

/// Images of shapes with per-pixel masks and boxes.
#[derive(Debug, Clone)]
pub struct ShapeScenes {
    /// The images (1 channel); the label is the class of the first shape.
    pub set: ImageSet,
    /// Per image, `h·w` mask values: 0 background, `k + 1` for the k-th shape drawn.
    pub masks: Vec<Vec<u8>>,
    /// Per image, one box per shape.
    pub boxes: Vec<Vec<BoundingBox>>,
}

/// Draw `n` images of `size × size` with 1 to `max_objects` shapes at random positions,
/// with Gaussian background noise of std 0.05 (clamped to [0, 1]).
pub fn shapes(n: usize, size: usize, max_objects: usize, seed: u64) -> ShapeScenes {
    let size = size.max(6);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut images, mut labels, mut masks, mut boxes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let mut img: Vec<f32> = (0..size * size)
            .map(|_| (0.05 * rng.sample::<f32, _>(StandardNormal)).abs())
            .collect();
        let mut mask = vec![0u8; size * size];
        let mut bx = Vec::new();
        let count = rng.random_range(1..=max_objects.max(1));
        for k in 0..count {
            let class = rng.random_range(0..SHAPE_CLASSES.len()) as u8;
            let s = rng.random_range(size / 4..=size / 2).max(3);
            let (x0, y0) = (
                rng.random_range(0..=size - s),
                rng.random_range(0..=size - s),
            );
            let intensity = rng.random_range(0.6f32..1.0);
            for y in 0..s {
                for x in 0..s {
                    let inside = match class {
                        0 => true,
                        1 => {
                            let c = (s as f32 - 1.0) / 2.0;
                            (x as f32 - c).powi(2) + (y as f32 - c).powi(2)
                                <= (s as f32 / 2.0).powi(2)
                        }
                        _ => 2 * x + 1 >= s - y.min(s) && 2 * x < s + y,
                    };
                    if inside {
                        let p = (y0 + y) * size + x0 + x;
                        img[p] = intensity;
                        mask[p] = (k + 1) as u8;
                    }
                }
            }
            bx.push(BoundingBox {
                class,
                x0,
                y0,
                x1: x0 + s,
                y1: y0 + s,
            });
        }
        labels.push(bx[0].class);
        images.extend(img.into_iter().map(|v| v.clamp(0.0, 1.0)));
        masks.push(mask);
        boxes.push(bx);
    }
    let set = ImageSet {
        name: "shapes".into(),
        images,
        labels,
        channels: 1,
        height: size,
        width: size,
        classes: SHAPE_CLASSES.len(),
    };
    ShapeScenes { set, masks, boxes }
}

/// `classes` isotropic Gaussian blobs in `dim` dimensions, centres drawn with std `separation`,
/// points with std `std` around them (features are stored as a 1×1×dim "image").
pub fn gaussian_blobs(
    n: usize,
    classes: usize,
    dim: usize,
    separation: f32,
    std: f32,
    seed: u64,
) -> ImageSet {
    let mut rng = StdRng::seed_from_u64(seed);
    let centres: Vec<Vec<f32>> = (0..classes.max(1))
        .map(|_| {
            (0..dim)
                .map(|_| separation * rng.sample::<f32, _>(StandardNormal))
                .collect()
        })
        .collect();
    let (mut x, mut y) = (Vec::with_capacity(n * dim), Vec::with_capacity(n));
    for i in 0..n {
        let c = i % centres.len();
        x.extend(
            centres[c]
                .iter()
                .map(|m| m + std * rng.sample::<f32, _>(StandardNormal)),
        );
        y.push(c as u8);
    }
    ImageSet {
        name: "blobs".into(),
        images: x,
        labels: y,
        channels: 1,
        height: 1,
        width: dim,
        classes: centres.len(),
    }
}

/// Binary logistic-model data: x ~ N(0, I), y ~ Bernoulli(σ(wᵀx)) with w ~ N(0, scale² I / dim).
/// Returns the set and the true weights.
pub fn logistic_data(n: usize, dim: usize, scale: f32, seed: u64) -> (ImageSet, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let w: Vec<f32> = (0..dim)
        .map(|_| scale / (dim as f32).sqrt() * rng.sample::<f32, _>(StandardNormal))
        .collect();
    let (mut x, mut y) = (Vec::with_capacity(n * dim), Vec::with_capacity(n));
    for _ in 0..n {
        let xi: Vec<f32> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
        let z: f32 = xi.iter().zip(&w).map(|(a, b)| a * b).sum();
        y.push(u8::from(rng.random::<f32>() < 1.0 / (1.0 + (-z).exp())));
        x.extend(xi);
    }
    (
        ImageSet {
            name: "logistic".into(),
            images: x,
            labels: y,
            channels: 1,
            height: 1,
            width: dim,
            classes: 2,
        },
        w,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_boxes_agree() {
        let s = shapes(20, 16, 3, 4);
        for (mask, bx) in s.masks.iter().zip(&s.boxes) {
            for (p, &m) in mask.iter().enumerate() {
                if m > 0 {
                    let b = bx[m as usize - 1];
                    let (x, y) = (p % 16, p / 16);
                    assert!(x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1);
                }
            }
            // Every shape that is not fully covered by a later one shows in the mask.
            assert!(mask.iter().any(|&m| m as usize == bx.len()));
        }
        assert_eq!(s.set.labels, shapes(20, 16, 3, 4).set.labels);
    }

    #[test]
    fn blobs_and_logistic_data_have_requested_shapes() {
        let b = gaussian_blobs(100, 4, 3, 5.0, 0.5, 1);
        assert_eq!(
            (b.len(), b.feature_dim(), b.class_counts()),
            (100, 3, vec![25; 4])
        );
        let (l, w) = logistic_data(4000, 5, 4.0, 2);
        assert_eq!(w.len(), 5);
        // Labels agree with the sign of wᵀx far more often than chance.
        let agree = (0..l.len())
            .filter(|&i| {
                let z: f32 = l.image(i).iter().zip(&w).map(|(a, b)| a * b).sum();
                (z > 0.0) == (l.labels[i] == 1)
            })
            .count();
        assert!(agree as f64 / 4000.0 > 0.75, "{agree}");
    }
}
