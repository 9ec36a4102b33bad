//! Checkpoints that are atomic as a set of files.
//!
//! A checkpoint directory holds one generation folder per save (`gen-<step>-<nonce>/`, with the
//! model, optimizer and trainer files) and `manifest.json`, which names the current generation and
//! the size and SHA-256 of each of its files. A save writes the new generation completely, then
//! switches to it by renaming a new manifest over the old one (one atomic rename), then removes the
//! older generations. A failure at any point before the rename leaves the previous checkpoint
//! intact; a load verifies every file against the manifest, so a damaged or mixed set is an
//! error, never a silent resume.
//!
//! ```
//! use gradlab_train::checkpoint::{load_set, save_set};
//! let dir = std::env::temp_dir().join(format!("gradlab-doc-ckpt-{}", std::process::id()));
//! save_set(&dir, 7, |gdir| {
//!     std::fs::write(gdir.join("a.txt"), "hello").map_err(|e| gradlab_train::error::file_err(gdir, e))
//! }).unwrap();
//! let gdir = load_set(&dir).unwrap();
//! assert_eq!(std::fs::read_to_string(gdir.join("a.txt")).unwrap(), "hello");
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use crate::error::{Result, TrainError, file_err};
use crate::output::{io_reason, write_atomic};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";
const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: u32,
    generation: String,
    files: BTreeMap<String, FileSum>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct FileSum {
    bytes: u64,
    sha256: String,
}

fn ckpt_err(dir: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: dir.into(),
        reason: reason.into(),
    }
}

fn sum(path: &Path) -> Result<FileSum> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, io_reason(&e)))?;
    Ok(FileSum {
        bytes: bytes.len() as u64,
        sha256: format!("{:x}", Sha256::digest(&bytes)),
    })
}

/// Save a checkpoint into `dir`: `write` fills a fresh generation folder (it receives its path);
/// then the manifest switches to it atomically and older generations are removed. If `write` or
/// anything after it fails, the checkpoint that was in `dir` before stays the valid one.
pub fn save_set(dir: &Path, step: usize, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let previous = check_destination(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, io_reason(&e)))?;
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let generation = format!("gen-{step}-{nonce:x}-{}", std::process::id());
    let gen_dir = dir.join(&generation);
    std::fs::create_dir(&gen_dir).map_err(|e| file_err(&gen_dir, io_reason(&e)))?;
    let result = write(&gen_dir).and_then(|()| {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&gen_dir).map_err(|e| file_err(&gen_dir, io_reason(&e)))? {
            let path = entry.map_err(|e| file_err(&gen_dir, io_reason(&e)))?.path();
            // Flush each file to disk before the manifest can point at it.
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| file_err(&path, io_reason(&e)))?;
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            files.insert(name, sum(&path)?);
        }
        let manifest = Manifest {
            format: FORMAT,
            generation: generation.clone(),
            files,
        };
        let text = serde_json::to_string_pretty(&manifest).map_err(|e| file_err(dir, e))?;
        write_atomic(&dir.join(MANIFEST), text.as_bytes())
    });
    if let Err(e) = result {
        std::fs::remove_dir_all(&gen_dir).ok();
        return Err(e);
    }
    // Only the generation the previous manifest named is removed: nothing else in the folder is
    // ours to delete.
    if let Some(old) = previous.filter(|g| *g != generation) {
        std::fs::remove_dir_all(dir.join(old)).ok();
    }
    Ok(())
}

/// Where a save may go (check it before the work that ends in the save): a new or empty folder, or an existing checkpoint (whose current
/// generation is returned). Any other folder is refused, so that a save never mixes its files
/// with a user's.
pub fn check_destination(dir: &Path) -> Result<Option<String>> {
    if !dir.exists() {
        return Ok(None);
    }
    if !dir.is_dir() {
        return Err(ckpt_err(dir, "exists and is not a directory"));
    }
    let manifest = dir.join(MANIFEST);
    if manifest.exists() {
        let text =
            std::fs::read_to_string(&manifest).map_err(|e| file_err(&manifest, io_reason(&e)))?;
        return match serde_json::from_str::<Manifest>(&text) {
            Ok(m) if valid_generation(&m.generation) => Ok(Some(m.generation)),
            _ => Err(ckpt_err(
                dir,
                format!(
                    "{MANIFEST} is corrupt; refusing to overwrite it (remove the folder or choose another)"
                ),
            )),
        };
    }
    let empty = std::fs::read_dir(dir)
        .map_err(|e| file_err(dir, io_reason(&e)))?
        .next()
        .is_none();
    if empty {
        Ok(None)
    } else {
        Err(ckpt_err(
            dir,
            "is a folder with other files and no checkpoint in it; choose a new or empty folder",
        ))
    }
}

fn valid_generation(g: &str) -> bool {
    g.starts_with("gen-") && !g.contains(['/', '\\']) && g != "." && g != ".."
}

/// The verified generation folder of the checkpoint in `dir`: the manifest is read and every file
/// it lists must be present with its recorded size and SHA-256.
pub fn load_set(dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        return Err(ckpt_err(
            dir,
            if dir.exists() {
                "is not a directory"
            } else {
                "does not exist"
            },
        ));
    }
    let mpath = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&mpath).map_err(|e| {
        ckpt_err(
            dir,
            format!(
                "no readable {MANIFEST} ({}): not a gradlab checkpoint, or one whose save did not finish",
                io_reason(&e)
            ),
        )
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| ckpt_err(dir, format!("{MANIFEST} is corrupt: {e}")))?;
    if m.format != FORMAT {
        return Err(ckpt_err(
            dir,
            format!(
                "checkpoint format {} (this gradlab reads {FORMAT})",
                m.format
            ),
        ));
    }
    if !valid_generation(&m.generation) {
        return Err(ckpt_err(
            dir,
            format!("{MANIFEST} names an invalid generation"),
        ));
    }
    let gen_dir = dir.join(&m.generation);
    for (name, want) in &m.files {
        if name.contains(['/', '\\']) {
            return Err(ckpt_err(
                dir,
                format!("{MANIFEST} names an invalid file '{name}'"),
            ));
        }
        let path = gen_dir.join(name);
        let got =
            sum(&path).map_err(|_| ckpt_err(dir, format!("{} is missing", path.display())))?;
        if &got != want {
            return Err(ckpt_err(
                dir,
                format!(
                    "{} does not match the manifest ({} bytes, expected {}; checksum {})",
                    path.display(),
                    got.bytes,
                    want.bytes,
                    if got.sha256 == want.sha256 {
                        "equal"
                    } else {
                        "differs"
                    }
                ),
            ));
        }
    }
    Ok(gen_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("gradlab-ckset-{name}-{}", std::process::id()))
    }

    fn write(gdir: &Path, files: &[(&str, &str)]) -> Result<()> {
        for (n, c) in files {
            std::fs::write(gdir.join(n), c).map_err(|e| file_err(gdir, e))?;
        }
        Ok(())
    }

    #[test]
    fn a_save_that_fails_part_way_leaves_the_previous_set() {
        let d = tmp("partway");
        save_set(&d, 1, |g| write(g, &[("model", "m1"), ("optim", "o1")])).unwrap();
        // The second save writes its model, then fails (as a full disk would) before the optimizer.
        let err = save_set(&d, 2, |g| {
            write(g, &[("model", "m2")])?;
            Err(file_err(g.join("optim"), "no space left on the device"))
        });
        assert!(err.is_err());
        let g = load_set(&d).unwrap();
        assert_eq!(std::fs::read_to_string(g.join("model")).unwrap(), "m1");
        assert_eq!(std::fs::read_to_string(g.join("optim")).unwrap(), "o1");
        // Only the good generation is left on disk.
        let gens = std::fs::read_dir(&d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("gen-")
            })
            .count();
        assert_eq!(gens, 1);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_save_never_deletes_or_mixes_with_a_users_files() {
        let d = tmp("user");
        std::fs::create_dir_all(d.join("gen-figures")).unwrap();
        std::fs::write(d.join("gen-figures").join("fig.png"), "mine").unwrap();
        // A folder holding other things is not a checkpoint destination …
        let msg = save_set(&d, 1, |g| write(g, &[("model", "m")]))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("no checkpoint"), "{msg}");
        assert_eq!(
            std::fs::read_to_string(d.join("gen-figures/fig.png")).unwrap(),
            "mine"
        );
        // … and inside a checkpoint folder, a save removes only the previous generation.
        let c = d.join("ck");
        save_set(&c, 1, |g| write(g, &[("model", "m1")])).unwrap();
        std::fs::create_dir_all(c.join("gen-user-notes")).unwrap();
        save_set(&c, 2, |g| write(g, &[("model", "m2")])).unwrap();
        assert!(c.join("gen-user-notes").exists());
        let gens = std::fs::read_dir(&c)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(gens, 2); // the current generation and the user's folder
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_damaged_file_or_a_missing_manifest_is_an_error() {
        let d = tmp("damaged");
        save_set(&d, 1, |g| write(g, &[("model", "weights")])).unwrap();
        let g = load_set(&d).unwrap();
        std::fs::write(g.join("model"), "weighTs").unwrap();
        let msg = load_set(&d).unwrap_err().to_string();
        assert!(
            msg.contains("does not match") && msg.contains("model"),
            "{msg}"
        );
        std::fs::remove_file(g.join("model")).unwrap();
        assert!(load_set(&d).unwrap_err().to_string().contains("missing"));
        std::fs::remove_file(d.join(MANIFEST)).unwrap();
        assert!(load_set(&d).unwrap_err().to_string().contains("manifest"));
        std::fs::remove_dir_all(&d).ok();
        assert!(
            load_set(&d)
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }
}
