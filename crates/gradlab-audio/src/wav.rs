//! Mono WAV files, read and written with `hound`.
//!
//! Reading takes 8/16/24/32-bit integer PCM or 32-bit float and returns samples in [−1, 1]; a
//! file that is missing, not a WAV, truncated, multi-channel or empty is an error that names the
//! file and says what is wrong. Writing stores 16-bit PCM, clipping to [−1, 1], beside the target
//! (`name.wav.partial`) and renames it into place, so a failure never leaves a half-written file
//! that looks valid.
//!
//! ```
//! use gradlab_audio::wav::{Audio, read_wav, write_wav};
//! let dir = std::env::temp_dir().join(format!("gradlab-wav-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("tone.wav");
//! let tone: Vec<f32> = (0..800).map(|i| (i as f32 * 0.1).sin() * 0.5).collect();
//! write_wav(&path, &Audio { rate: 8000, samples: tone.clone() }).unwrap();
//! let back = read_wav(&path).unwrap();
//! assert_eq!(back.rate, 8000);
//! assert!(back.samples.iter().zip(&tone).all(|(a, b)| (a - b).abs() < 1e-4));
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::{AudioError, Result};
use std::io::Read;
use std::path::Path;

/// A mono signal and its sample rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples per second.
    pub rate: u32,
    /// Samples in [−1, 1].
    pub samples: Vec<f32>,
}

fn file_error(path: &Path, reason: impl Into<String>) -> AudioError {
    AudioError::File {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// Read a mono WAV file.
pub fn read_wav(path: &Path) -> Result<Audio> {
    let file =
        std::fs::File::open(path).map_err(|e| file_error(path, format!("cannot open: {e}")))?;
    read_from(std::io::BufReader::new(file), path)
}

/// Read a mono WAV held in memory (`name` appears in errors).
pub fn read_wav_bytes(bytes: &[u8], name: &str) -> Result<Audio> {
    read_from(std::io::Cursor::new(bytes), Path::new(name))
}

fn read_from<R: Read>(reader: R, path: &Path) -> Result<Audio> {
    let reader = hound::WavReader::new(reader)
        .map_err(|e| file_error(path, format!("not a readable WAV file ({e})")))?;
    let spec = reader.spec();
    if spec.channels != 1 {
        return Err(file_error(
            path,
            format!(
                "has {} channels; only mono is supported (mix it down first, e.g. `sox in.wav -c 1 out.wav`)",
                spec.channels
            ),
        ));
    }
    if spec.sample_rate == 0 {
        return Err(file_error(path, "declares a sample rate of 0"));
    }
    let truncated =
        |e: hound::Error| file_error(path, format!("corrupt or truncated sample data ({e})"));
    let samples: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .into_samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(truncated)?,
        (hound::SampleFormat::Int, bits @ 8..=32) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            reader
                .into_samples::<i32>()
                .map(|s| s.map(|v| (v as f64 * scale) as f32))
                .collect::<std::result::Result<_, _>>()
                .map_err(truncated)?
        }
        (format, bits) => {
            return Err(file_error(
                path,
                format!("unsupported sample format {format:?} with {bits} bits"),
            ));
        }
    };
    if samples.is_empty() {
        return Err(file_error(path, "contains no samples"));
    }
    if samples.iter().any(|v| !v.is_finite()) {
        return Err(file_error(path, "contains non-finite samples"));
    }
    Ok(Audio {
        rate: spec.sample_rate,
        samples,
    })
}

/// Write `audio` as 16-bit mono PCM (clipped to [−1, 1]), beside `path` first and then renamed.
pub fn write_wav(path: &Path, audio: &Audio) -> Result<()> {
    if audio.samples.is_empty() || audio.rate == 0 {
        return Err(file_error(
            path,
            "refusing to write an empty signal or a rate of 0",
        ));
    }
    if audio.samples.iter().any(|v| !v.is_finite()) {
        return Err(file_error(path, "refusing to write non-finite samples"));
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let write = || -> std::result::Result<(), hound::Error> {
        let mut w = hound::WavWriter::create(&partial, spec)?;
        for v in &audio.samples {
            w.write_sample(
                (v.clamp(-1.0, 1.0) * 32768.0)
                    .round()
                    .clamp(-32768.0, 32767.0) as i16,
            )?;
        }
        w.finalize()
    };
    if let Err(e) = write() {
        let _ = std::fs::remove_file(&partial);
        return Err(file_error(path, format!("cannot write: {e}")));
    }
    std::fs::rename(&partial, path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        file_error(
            path,
            format!("cannot move the finished file into place: {e}"),
        )
    })
}
