//! Six short real speech clips embedded in the crate: 8 kHz, 16-bit mono, 16 s in all, from
//! Debian's `codec2-examples` 1.0.5 (`/usr/share/codec2/wav/`; © David Rowe, LGPL-2.1; see
//! `data/README.md` for the checksums). Two speakers per clip family: `hts1a`, `hts2a` (male,
//! 3 s each), `forig` (female, 1.6 s), `morig` (male, 2 s), `big_dog` (2.5 s), `mmt1` (4 s).
//!
//! ```
//! let a = gradlab_audio::speech::clip("morig").unwrap();
//! assert_eq!(a.rate, 8000);
//! assert!(gradlab_audio::speech::clip("nope").is_err());
//! ```

use crate::wav::{Audio, read_wav_bytes};
use crate::{Result, invalid};

/// The clips' names, in a fixed order.
pub const CLIPS: [&str; 6] = ["hts1a", "hts2a", "forig", "morig", "big_dog", "mmt1"];

const BYTES: [&[u8]; 6] = [
    include_bytes!("../../../data/speech/hts1a.wav"),
    include_bytes!("../../../data/speech/hts2a.wav"),
    include_bytes!("../../../data/speech/forig.wav"),
    include_bytes!("../../../data/speech/morig.wav"),
    include_bytes!("../../../data/speech/big_dog.wav"),
    include_bytes!("../../../data/speech/mmt1.wav"),
];

/// One clip by name (one of [`CLIPS`]).
pub fn clip(name: &str) -> Result<Audio> {
    match CLIPS.iter().position(|c| *c == name) {
        Some(i) => read_wav_bytes(BYTES[i], name),
        None => invalid(format!(
            "no speech clip '{name}'; known: {}",
            CLIPS.join(", ")
        )),
    }
}
