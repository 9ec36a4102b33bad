//! Trained generative networks saved and loaded like the classifiers' checkpoints
//! ([`gradlab_train::checkpoint`]: a checksummed generation folder switched atomically): the
//! weights (`model.bpk`) and a [`ModelCard`] (`model.json`) that says how to rebuild the network
//! and what it was trained on, so that `gradlab sample --model DIR` samples without retraining.
//!
//! ```
//! use gradlab_generative::saved::{Arch, ModelCard, Output, load, save};
//! use gradlab_nets::time_mlp::TimeMlpConfig;
//! let dir = std::env::temp_dir().join(format!("gradlab-doc-saved-{}", std::process::id()));
//! let net = TimeMlpConfig::new(2).with_hidden(16).with_layers(2).init(&gradlab_nets::autodiff_device(), 0);
//! let card = ModelCard {
//!     arch: Arch::TimeMlp { dim: 2, hidden: 16, layers: 2 },
//!     output: Output::Noise,
//!     data: "moons".into(),
//!     train_steps: 10,
//!     seed: 0,
//! };
//! save(&dir, &net, &card).unwrap();
//! let (back, loaded_card) = load::<gradlab_nets::time_mlp::TimeMlp>(&dir).unwrap();
//! assert_eq!(loaded_card, card);
//! assert_eq!(gradlab_core::flat::flatten_host(&back).unwrap(), gradlab_core::flat::flatten_host(&net).unwrap());
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use crate::{GenError, Result};
use gradlab_nets::TimeNet;
use gradlab_nets::time_mlp::{TimeMlp, TimeMlpConfig};
use gradlab_nets::unet::{UNet, UNetConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

const WEIGHTS: &str = "model.bpk";
const CARD: &str = "model.json";

/// The architecture of a saved network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    /// [`TimeMlp`] on points of dimension `dim`.
    TimeMlp {
        /// Data dimension.
        dim: usize,
        /// Hidden width.
        hidden: usize,
        /// Hidden layers.
        layers: usize,
    },
    /// [`UNet`] on images.
    UNet {
        /// Channels.
        channels: usize,
        /// Height.
        height: usize,
        /// Width.
        width: usize,
        /// The U-Net's base width.
        base: usize,
    },
}

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    /// ε of the VP SDE (a score model through [`crate::training::Prediction::Noise`]).
    Noise,
    /// The rectified-flow velocity.
    Velocity,
}

/// What a saved model is and was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCard {
    /// The network.
    pub arch: Arch,
    /// Its output.
    pub output: Output,
    /// The data set's name.
    pub data: String,
    /// Training steps.
    pub train_steps: usize,
    /// The training seed.
    pub seed: u64,
}

/// A network that [`load`] can rebuild from an [`Arch`].
pub trait Rebuild: TimeNet + Sized {
    /// A freshly initialised network of `arch` on the autodiff device, or an error if `arch` is
    /// another kind of network.
    fn rebuild(arch: Arch) -> Result<Self>;
}

impl Arch {
    /// What the card describes, in words.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::TimeMlp { .. } => "a time-conditioned MLP",
            Arch::UNet { .. } => "a U-Net",
        }
    }

    /// An error unless every size is one the networks can be built with (a card edited by hand
    /// must not make the rebuild panic or exhaust the memory).
    pub fn check(&self) -> Result<()> {
        let within = |what: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(GenError::Saved(format!(
                    "the model card's {what} {v} is outside {lo}..={hi}"
                )))
            }
        };
        match *self {
            Arch::TimeMlp {
                dim,
                hidden,
                layers,
            } => {
                within("data dimension", dim, 1, 1 << 16)?;
                within("hidden width", hidden, 1, 1 << 14)?;
                within("number of layers", layers, 1, 64)
            }
            Arch::UNet {
                channels,
                height,
                width,
                base,
            } => {
                within("channel count", channels, 1, 16)?;
                within("height", height, 4, 1024)?;
                within("width", width, 4, 1024)?;
                within("base width", base, 1, 512)?;
                if height % 2 != 0 || width % 2 != 0 {
                    return Err(GenError::Saved(format!(
                        "the model card's image size {height}×{width} is odd; the U-Net halves it"
                    )));
                }
                Ok(())
            }
        }
    }
}

impl Rebuild for TimeMlp {
    fn rebuild(arch: Arch) -> Result<Self> {
        arch.check()?;
        match arch {
            Arch::TimeMlp {
                dim,
                hidden,
                layers,
            } => Ok(TimeMlpConfig::new(dim)
                .with_hidden(hidden)
                .with_layers(layers)
                .init(&gradlab_nets::autodiff_device(), 0)),
            other => Err(GenError::Saved(format!(
                "the model is {}, not a time-conditioned MLP",
                other.name()
            ))),
        }
    }
}

impl Rebuild for UNet {
    fn rebuild(arch: Arch) -> Result<Self> {
        arch.check()?;
        match arch {
            Arch::UNet {
                channels,
                height,
                width,
                base,
            } => Ok(UNetConfig::new(channels, height, width)
                .with_width(base)
                .init(&gradlab_nets::autodiff_device(), 0)),
            other => Err(GenError::Saved(format!(
                "the model is {}, not a U-Net",
                other.name()
            ))),
        }
    }
}

fn saved_err(e: impl std::fmt::Display) -> GenError {
    GenError::Saved(e.to_string())
}

/// Check that `dir` can take a saved model (a new or empty folder, or an earlier save), before
/// any training.
pub fn check_destination(dir: &Path) -> Result<()> {
    gradlab_train::checkpoint::check_destination(dir).map_err(saved_err)?;
    gradlab_train::output::check_output_dir(dir).map_err(saved_err)
}

/// Save `net` and its card into `dir` (atomically: an earlier save there stays valid until the
/// new one is complete).
pub fn save<N: TimeNet>(dir: &Path, net: &N, card: &ModelCard) -> Result<()> {
    gradlab_train::checkpoint::save_set(dir, card.train_steps, |gdir| {
        let weights = gdir.join(WEIGHTS);
        net.clone()
            .save_file(&weights)
            .map_err(|e| gradlab_train::error::file_err(&weights, e))?;
        let text = serde_json::to_string_pretty(card)
            .map_err(|e| gradlab_train::error::file_err(gdir.join(CARD), e))?;
        std::fs::write(gdir.join(CARD), text)
            .map_err(|e| gradlab_train::error::file_err(gdir.join(CARD), e))
    })
    .map_err(saved_err)
}

/// The card of the model saved in `dir` (after verifying the saved files).
pub fn card(dir: &Path) -> Result<ModelCard> {
    read_card(&gradlab_train::checkpoint::load_set(dir).map_err(saved_err)?)
}

/// The card in the verified generation folder `gdir`.
fn read_card(gdir: &Path) -> Result<ModelCard> {
    let path = gdir.join(CARD);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| GenError::Saved(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| GenError::Saved(format!("{}: not a model card: {e}", path.display())))
}

/// The network saved in `dir` (on the inner device, ready to sample; `.train()` trains on) and its
/// card; an error if the files are missing, corrupt, or of another architecture than `N`.
pub fn load<N: Rebuild>(dir: &Path) -> Result<(N, ModelCard)> {
    let named = |e: GenError| GenError::Saved(format!("{}: {e}", dir.display()));
    let gdir = gradlab_train::checkpoint::load_set(dir).map_err(saved_err)?;
    let card = read_card(&gdir)?;
    let net = N::rebuild(card.arch).map_err(named)?;
    let net = net.try_load_file(gdir.join(WEIGHTS)).map_err(|e| {
        // burn's message lists every mismatching tensor; the first line says enough.
        let e = e.to_string();
        let first: String = e
            .chars()
            .take(160)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        GenError::Saved(format!(
            "{}: the saved weights do not fit the network its model card describes ({first}…)",
            dir.display()
        ))
    })?;
    let values = gradlab_core::flat::flatten_host(&net)?;
    if values.iter().any(|v| !v.is_finite()) {
        return Err(GenError::Saved(format!(
            "{}: the saved weights are not all finite (a diverged or damaged model)",
            dir.display()
        )));
    }
    Ok((net.valid(), card))
}
