//! Labelled image sets and their file formats: the embedded digits set, IDX (MNIST,
//! Fashion-MNIST; raw or gzipped) and the CIFAR-10 binary format.
//!
//! Pixels are stored as `f32` in [0, 1], channel-major (`c, h, w`) per image.
//!
//! ```
//! let (train, test) = gradlab_data::images::digits_split(0.2, 0).unwrap();
//! assert_eq!(train.len() + test.len(), 1797);
//! assert_eq!((train.channels, train.height, train.width), (1, 8, 8));
//! ```

use crate::error::{DataError, Result, invalid};
use flate2::read::GzDecoder;
use rand::prelude::*;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The script that downloads the full data sets.
pub const FETCH_SCRIPT: &str = "scripts/fetch-datasets.sh";

const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../../data/digits.csv.gz");
const MNIST1K_IMAGES: &[u8] =
    include_bytes!("../../../data/mnist-t10k-first1000-images-idx3-ubyte.gz");
const MNIST1K_LABELS: &[u8] =
    include_bytes!("../../../data/mnist-t10k-first1000-labels-idx1-ubyte.gz");
const FASHION1K_IMAGES: &[u8] =
    include_bytes!("../../../data/fashion-t10k-first1000-images-idx3-ubyte.gz");
const FASHION1K_LABELS: &[u8] =
    include_bytes!("../../../data/fashion-t10k-first1000-labels-idx1-ubyte.gz");

/// A labelled image set.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    /// A short name for logs.
    pub name: String,
    /// `len · channels · height · width` pixel values in [0, 1].
    pub images: Vec<f32>,
    /// One label per image, `< classes`.
    pub labels: Vec<u8>,
    /// Channels per image.
    pub channels: usize,
    /// Rows per image.
    pub height: usize,
    /// Columns per image.
    pub width: usize,
    /// Number of classes.
    pub classes: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Values per image (`c·h·w`).
    pub fn feature_dim(&self) -> usize {
        self.channels * self.height * self.width
    }
    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[f32] {
        let d = self.feature_dim();
        &self.images[i * d..(i + 1) * d]
    }
    /// The images at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> ImageSet {
        let mut images = Vec::with_capacity(idx.len() * self.feature_dim());
        for &i in idx {
            images.extend_from_slice(self.image(i));
        }
        ImageSet {
            images,
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            ..self.clone_meta()
        }
    }
    fn clone_meta(&self) -> ImageSet {
        ImageSet {
            images: vec![],
            labels: vec![],
            name: self.name.clone(),
            ..*self
        }
    }
    /// A seeded shuffled split into (train, test) with `test_fraction` of the images held out.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(ImageSet, ImageSet)> {
        if !(0.0..1.0).contains(&test_fraction) {
            return invalid(format!(
                "test fraction must be in [0, 1), got {test_fraction}"
            ));
        }
        let mut idx: Vec<usize> = (0..self.len()).collect();
        idx.shuffle(&mut StdRng::seed_from_u64(seed));
        let n_test = (self.len() as f64 * test_fraction).round() as usize;
        Ok((self.subset(&idx[n_test..]), self.subset(&idx[..n_test])))
    }
    /// Per-class counts.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.classes];
        self.labels.iter().for_each(|&l| c[l as usize] += 1);
        c
    }
}

fn malformed(file: &str, offset: usize, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        file: file.into(),
        offset,
        reason: reason.into(),
    }
}

/// Gunzip `bytes` if they start with the gzip magic, else return them as they are.
pub fn maybe_gunzip(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| malformed(file, out.len(), format!("bad gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// Parse the digits CSV (64 pixel columns with values 0–16, label last; optionally gzipped).
pub fn parse_digits_csv(file: &str, bytes: &[u8]) -> Result<ImageSet> {
    let text = maybe_gunzip(file, bytes)?;
    let text = std::str::from_utf8(&text)
        .map_err(|e| malformed(file, e.valid_up_to(), "not UTF-8 text"))?;
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let row = line.trim_end();
        if !row.is_empty() {
            let vals: Vec<&str> = row.split(',').collect();
            if vals.len() != 65 {
                return Err(malformed(
                    file,
                    offset,
                    format!("expected 65 comma-separated values, found {}", vals.len()),
                ));
            }
            for v in &vals[..64] {
                let p: f32 = v
                    .trim()
                    .parse()
                    .map_err(|_| malformed(file, offset, format!("'{v}' is not a number")))?;
                if !(0.0..=16.0).contains(&p) {
                    return Err(malformed(file, offset, format!("pixel {p} outside 0..=16")));
                }
                images.push(p / 16.0);
            }
            let label: u8 = vals[64]
                .trim()
                .parse()
                .map_err(|_| malformed(file, offset, "label is not an integer"))?;
            if label > 9 {
                return Err(malformed(
                    file,
                    offset,
                    format!("label {label} outside 0..=9"),
                ));
            }
            labels.push(label);
        }
        offset += line.len();
    }
    Ok(ImageSet {
        name: "digits".into(),
        images,
        labels,
        channels: 1,
        height: 8,
        width: 8,
        classes: 10,
    })
}

/// The 1,797 8×8 handwritten digits (UCI; scikit-learn's copy), embedded in the binary.
pub fn digits() -> ImageSet {
    parse_digits_csv("digits.csv.gz (embedded)", DIGITS_CSV_GZ)
        .expect("the embedded digits file is valid")
}

/// Digits split into train and a held-out test set (`test_fraction`, seeded).
pub fn digits_split(test_fraction: f64, seed: u64) -> Result<(ImageSet, ImageSet)> {
    digits().split(test_fraction, seed)
}

fn be_u32(file: &str, b: &[u8], at: usize) -> Result<usize> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or_else(|| {
            malformed(
                file,
                b.len(),
                format!("file ends inside the header (needs byte {})", at + 4),
            )
        })
}

/// Parse IDX images (magic 2051), raw or gzipped; pixels are scaled to [0, 1].
pub fn parse_idx_images(file: &str, bytes: &[u8]) -> Result<(usize, usize, usize, Vec<f32>)> {
    let b = maybe_gunzip(file, bytes)?;
    let magic = be_u32(file, &b, 0)?;
    if magic != 2051 {
        return Err(malformed(
            file,
            0,
            format!("IDX image magic must be 2051, found {magic}"),
        ));
    }
    let (n, rows, cols) = (
        be_u32(file, &b, 4)?,
        be_u32(file, &b, 8)?,
        be_u32(file, &b, 12)?,
    );
    if n == 0 {
        return Err(malformed(file, 4, "the file holds no images"));
    }
    if rows == 0 || cols == 0 {
        return Err(malformed(
            file,
            8,
            format!("images of {rows}×{cols} have no pixels"),
        ));
    }
    let need = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .and_then(|v| v.checked_add(16));
    match need {
        Some(need) if need == b.len() => Ok((
            n,
            rows,
            cols,
            b[16..].iter().map(|&p| f32::from(p) / 255.0).collect(),
        )),
        Some(need) if need > b.len() => Err(malformed(
            file,
            b.len(),
            format!("header promises {n} images of {rows}×{cols} ({need} bytes), file ends early"),
        )),
        Some(need) => Err(malformed(file, need, "trailing bytes after the last image")),
        None => Err(malformed(file, 4, "image count and size overflow")),
    }
}

/// Parse IDX labels (magic 2049), raw or gzipped.
pub fn parse_idx_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let b = maybe_gunzip(file, bytes)?;
    let magic = be_u32(file, &b, 0)?;
    if magic != 2049 {
        return Err(malformed(
            file,
            0,
            format!("IDX label magic must be 2049, found {magic}"),
        ));
    }
    let n = be_u32(file, &b, 4)?;
    if b.len() != n + 8 {
        return Err(malformed(
            file,
            b.len().min(n + 8),
            format!(
                "header promises {n} labels, file holds {}",
                b.len().saturating_sub(8)
            ),
        ));
    }
    if let Some(pos) = b[8..].iter().position(|&l| l > 9) {
        return Err(malformed(
            file,
            8 + pos,
            format!("label {} outside 0..=9", b[8 + pos]),
        ));
    }
    Ok(b[8..].to_vec())
}

/// Build a set from IDX image and label bytes.
pub fn idx_set(name: &str, images: (&str, &[u8]), labels: (&str, &[u8])) -> Result<ImageSet> {
    let (n, h, w, px) = parse_idx_images(images.0, images.1)?;
    let lab = parse_idx_labels(labels.0, labels.1)?;
    if lab.len() != n {
        return Err(malformed(
            labels.0,
            4,
            format!("{} labels for {n} images in {}", lab.len(), images.0),
        ));
    }
    Ok(ImageSet {
        name: name.into(),
        images: px,
        labels: lab,
        channels: 1,
        height: h,
        width: w,
        classes: 10,
    })
}

/// Parse CIFAR-10 binary records (1 label byte + 3072 bytes of R, G, B planes of 32×32).
pub fn parse_cifar(file: &str, bytes: &[u8]) -> Result<ImageSet> {
    const REC: usize = 3073;
    if bytes.is_empty() || !bytes.len().is_multiple_of(REC) {
        return Err(malformed(
            file,
            bytes.len() - bytes.len() % REC,
            format!("length {} is not a positive multiple of {REC}", bytes.len()),
        ));
    }
    let (mut images, mut labels) = (Vec::with_capacity(bytes.len()), Vec::new());
    for (i, rec) in bytes.chunks(REC).enumerate() {
        if rec[0] > 9 {
            return Err(malformed(
                file,
                i * REC,
                format!("label {} outside 0..=9", rec[0]),
            ));
        }
        labels.push(rec[0]);
        images.extend(rec[1..].iter().map(|&p| f32::from(p) / 255.0));
    }
    Ok(ImageSet {
        name: "cifar10".into(),
        images,
        labels,
        channels: 3,
        height: 32,
        width: 32,
        classes: 10,
    })
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            path: path.to_path_buf(),
            hint: format!("bash {FETCH_SCRIPT}"),
        },
        _ => DataError::Io {
            path: path.to_path_buf(),
            reason: match e.kind() {
                std::io::ErrorKind::IsADirectory => "is a directory, not a file".into(),
                std::io::ErrorKind::PermissionDenied => "permission denied".into(),
                _ => e.to_string(),
            },
        },
    })
}

/// Find `stem` or `stem.gz` in `dir`.
fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf> {
    let raw = dir.join(stem);
    let gz = dir.join(format!("{stem}.gz"));
    if raw.exists() {
        Ok(raw)
    } else if gz.exists() {
        Ok(gz)
    } else {
        Err(DataError::Missing {
            path: raw,
            hint: format!("bash {FETCH_SCRIPT}"),
        })
    }
}

/// Read an MNIST-layout directory (`train-images-idx3-ubyte[.gz]`, `t10k-…`) for the train or
/// test split.
pub fn load_idx_dir(name: &str, dir: &Path, train: bool) -> Result<ImageSet> {
    let prefix = if train { "train" } else { "t10k" };
    let ip = find_idx(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let lp = find_idx(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (ib, lb) = (read_file(&ip)?, read_file(&lp)?);
    idx_set(
        name,
        (&ip.display().to_string(), &ib),
        (&lp.display().to_string(), &lb),
    )
}

/// Read a CIFAR-10 binary file from disk.
pub fn load_cifar_file(path: &Path) -> Result<ImageSet> {
    parse_cifar(&path.display().to_string(), &read_file(path)?)
}

/// The first 1,000 MNIST test images, embedded.
pub fn mnist_1k() -> ImageSet {
    idx_set(
        "mnist1k",
        ("mnist images (embedded)", MNIST1K_IMAGES),
        ("mnist labels (embedded)", MNIST1K_LABELS),
    )
    .expect("embedded MNIST subset is valid")
}

/// The first 1,000 Fashion-MNIST test images, embedded.
pub fn fashion_1k() -> ImageSet {
    idx_set(
        "fashion1k",
        ("fashion images (embedded)", FASHION1K_IMAGES),
        ("fashion labels (embedded)", FASHION1K_LABELS),
    )
    .expect("embedded Fashion-MNIST subset is valid")
}

/// Names accepted by [`load_split`].
pub const IMAGE_SET_NAMES: &[&str] = &["digits", "mnist1k", "fashion1k", "mnist", "fashion"];

/// Load a named data set as (train, test). `digits`, `mnist1k` and `fashion1k` are embedded and
/// split 80/20 with `seed`; `mnist` and `fashion` read `<root>/mnist` and `<root>/fashion` as laid
/// out by [`FETCH_SCRIPT`] (root defaults to `datasets`, or `$GRADLAB_DATA`).
pub fn load_split(name: &str, seed: u64) -> Result<(ImageSet, ImageSet)> {
    let root = std::env::var_os("GRADLAB_DATA")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("datasets"));
    match name {
        "digits" => digits_split(0.2, seed),
        "mnist1k" => mnist_1k().split(0.2, seed),
        "fashion1k" => fashion_1k().split(0.2, seed),
        "mnist" | "fashion" => {
            let dir = root.join(name);
            let (train, test) = (
                load_idx_dir(name, &dir, true)?,
                load_idx_dir(name, &dir, false)?,
            );
            let size = |s: &ImageSet| (s.channels, s.height, s.width);
            if size(&train) != size(&test) {
                return invalid(format!(
                    "{}: the training images ({}) are {}×{} but the test images ({}) are {}×{}",
                    dir.display(),
                    find_idx(&dir, "train-images-idx3-ubyte")?.display(),
                    train.height,
                    train.width,
                    find_idx(&dir, "t10k-images-idx3-ubyte")?.display(),
                    test.height,
                    test.width
                ));
            }
            Ok((train, test))
        }
        other => invalid(format!(
            "unknown image data set '{other}'; known: {}",
            IMAGE_SET_NAMES.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(file: &str) -> Vec<u8> {
        std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../data")
                .join(file),
        )
        .unwrap()
    }

    #[test]
    fn digits_have_known_class_counts() {
        let d = digits();
        assert_eq!(d.len(), 1797);
        assert_eq!(
            d.class_counts(),
            vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        assert!(d.images.iter().all(|p| (0.0..=1.0).contains(p)));
        let (tr, te) = digits_split(0.2, 1).unwrap();
        assert_eq!((tr.len(), te.len()), (1438, 359));
        assert_eq!(digits_split(0.2, 1).unwrap().0, tr);
    }

    #[test]
    fn idx_subsets_parse_raw_and_gzipped() {
        let m = mnist_1k();
        assert_eq!((m.len(), m.height, m.width), (1000, 28, 28));
        assert_eq!(&m.labels[..5], &[7, 2, 1, 0, 4]);
        let f = fashion_1k();
        assert_eq!(&f.labels[..5], &[9, 2, 1, 1, 6]);
        // The same bytes, decompressed, parse to the same set.
        let raw = maybe_gunzip("x", &shared("mnist-t10k-first1000-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(parse_idx_labels("raw", &raw).unwrap(), m.labels);
    }

    #[test]
    fn cifar_subset_parses() {
        let c = parse_cifar("cifar", &shared("cifar10-test-first20.bin")).unwrap();
        assert_eq!(
            c.labels,
            vec![3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]
        );
        assert_eq!(c.feature_dim(), 3072);
    }

    #[test]
    fn malformed_files_name_file_and_offset() {
        let raw = maybe_gunzip("x", &shared("mnist-t10k-first1000-images-idx3-ubyte.gz")).unwrap();
        let err = parse_idx_images("cut.idx", &raw[..1000])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cut.idx") && err.contains("byte 1000"),
            "{err}"
        );
        let mut bad = raw.clone();
        bad[3] = 1;
        assert!(
            parse_idx_images("bad", &bad)
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        let err = parse_cifar("c.bin", &[0u8; 3100]).unwrap_err().to_string();
        assert!(err.contains("byte 3073"), "{err}");
        let err = parse_digits_csv("d.csv", b"1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("d.csv") && err.contains("byte 0"), "{err}");
        assert!(parse_idx_images("gz", &[0x1f, 0x8b, 0, 1, 2]).is_err());
    }

    #[test]
    fn missing_full_sets_name_the_fetch_script() {
        let err = load_idx_dir("mnist", Path::new("/nonexistent/mnist"), true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(FETCH_SCRIPT) && err.contains("missing"),
            "{err}"
        );
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = parse_idx_images("p", &bytes);
            let _ = parse_idx_labels("p", &bytes);
            let _ = parse_cifar("p", &bytes);
            let _ = parse_digits_csv("p", &bytes);
        }
    }
}
