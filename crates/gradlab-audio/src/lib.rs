//! # gradlab-audio
//!
//! Audio for the speech-enhancement paper (SGMSE+, Richter et al., TASLP 2023) and for anyone who
//! wants its pieces on their own:
//!
//! - [`wav`]: mono WAV files read and written with `hound` (8/16/24/32-bit integer or 32-bit
//!   float in; 16-bit PCM out, written beside the target and renamed), with clear errors for a
//!   missing, empty, corrupt or multi-channel file;
//! - [`stft`]: the short-time Fourier transform and its inverse as `torch.stft`/`torch.istft`
//!   with `center=True` (reflect padding) and a periodic Hann window, and SGMSE's compressed
//!   spectrogram |c|^β e^{i∠c}·α;
//! - [`metrics`]: the SI-SDR; [`stoi`]: STOI, checked against pystoi;
//! - [`mix`]: noise at a chosen SNR, coloured noises, synthetic room impulse responses and
//!   convolution;
//! - [`speech`]: six short real speech clips (8 kHz, from Debian's `codec2-examples`) embedded in
//!   the crate.
//!
//! ```
//! use gradlab_audio::{metrics::si_sdr, mix::add_noise_at_snr, speech};
//! let clean = speech::clip("hts1a").unwrap().samples;
//! let noise: Vec<f32> = (0..clean.len()).map(|i| ((i * 7919) % 13) as f32 / 13.0 - 0.5).collect();
//! let noisy = add_noise_at_snr(&clean, &noise, 5.0).unwrap();
//! let sdr = si_sdr(&noisy, &clean).unwrap();
//! assert!((sdr - 5.0).abs() < 0.5); // SI-SDR of a mixture ≈ its SNR
//! ```

pub mod metrics;
pub mod mix;
pub mod speech;
pub mod stft;
pub mod stoi;
pub mod wav;

/// Errors of audio handling.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// An argument outside its range or signals that do not fit.
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// A file that cannot be used as audio, with the reason.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, AudioError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> Result<T> {
    Err(AudioError::Invalid(msg.into()))
}
