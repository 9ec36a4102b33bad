//! Output locations: checked before the work starts, written so that a failure part-way never
//! leaves a half-written file that looks valid.
//!
//! ```
//! use gradlab_train::output::{check_output_dir, check_output_file, write_atomic};
//! let dir = std::env::temp_dir().join(format!("gradlab-doc-out-{}", std::process::id()));
//! check_output_dir(&dir).unwrap();                                // created, and writable
//! assert!(check_output_file(&dir.join("plot.svg"), &["png"]).is_err()); // unsupported extension
//! write_atomic(&dir.join("result.json"), b"{}").unwrap();         // written beside, then renamed
//! # std::fs::remove_dir_all(&dir).ok();
//! ```

use crate::error::{Result, TrainError, file_err};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The image formats the figures can be written in.
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "bmp", "jpg", "jpeg"];

/// Make sure `dir` is (or can be created as) a directory this process can write into: creates it,
/// then creates and removes a probe file. Call it before long work that ends by writing there.
pub fn check_output_dir(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(file_err(dir, "exists and is not a directory"));
    }
    std::fs::create_dir_all(dir).map_err(|e| file_err(dir, io_reason(&e)))?;
    let probe = dir.join(format!(".gradlab-write-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map_err(|e| file_err(dir, format!("not writable: {}", io_reason(&e))))?;
    std::fs::remove_file(&probe).map_err(|e| file_err(&probe, io_reason(&e)))
}

/// Make sure `path` can be written as a file of one of the `extensions` (lower case, no dot): its
/// extension is supported, it is not a directory, and its parent directory is writable (created
/// if missing).
pub fn check_output_file(path: &Path, extensions: &[&str]) -> Result<()> {
    if path.is_dir() {
        return Err(file_err(path, "is a directory, not a file"));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    if !ext.as_deref().is_some_and(|e| extensions.contains(&e)) {
        return Err(file_err(
            path,
            format!(
                "unsupported file type; use one of: .{}",
                extensions.join(", .")
            ),
        ));
    }
    check_output_dir(&parent_dir(path))
}

/// The directory a file path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `bytes` to `path` atomically: into a temporary file beside it, flushed to disk, then
/// renamed over `path`. On any failure `path` keeps its previous content (or stays absent).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        file_err(path, io_reason(&e))
    })
}

/// A temporary name beside `path`: `.<name>.tmp-<pid>`.
pub fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    parent_dir(path).join(format!(".{name}.tmp-{}", std::process::id()))
}

/// An I/O error's text without the duplicated "(os error N)" chain.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::IsADirectory => "is a directory".into(),
        std::io::ErrorKind::NotADirectory => "a part of the path is not a directory".into(),
        std::io::ErrorKind::StorageFull => "no space left on the device".into(),
        std::io::ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        _ => e.to_string(),
    }
}

/// Reject a path given where a directory is wanted that names an existing regular file.
pub fn check_is_dir_or_absent(path: &Path, what: &str) -> Result<()> {
    if path.exists() && !path.is_dir() {
        return Err(TrainError::Invalid(format!(
            "{what} {} exists and is not a directory",
            path.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("gradlab-output-{name}-{}", std::process::id()))
    }

    #[test]
    fn a_regular_file_is_not_an_output_directory() {
        let f = tmp("file");
        std::fs::write(&f, "x").unwrap();
        let msg = check_output_dir(&f).unwrap_err().to_string();
        assert!(msg.contains("not a directory"), "{msg}");
        // Nor can a directory live below it.
        let msg = check_output_dir(&f.join("sub")).unwrap_err().to_string();
        assert!(msg.contains(&f.display().to_string()), "{msg}");
        std::fs::remove_file(&f).ok();
    }

    #[test]
    fn file_outputs_need_a_supported_extension_and_no_directory_in_the_way() {
        let d = tmp("ext");
        assert!(check_output_file(&d.join("a.svg"), IMAGE_EXTENSIONS).is_err());
        assert!(check_output_file(&d.join("noext"), IMAGE_EXTENSIONS).is_err());
        assert!(check_output_file(&d.join("A.PNG"), IMAGE_EXTENSIONS).is_ok());
        std::fs::create_dir_all(d.join("dir.png")).unwrap();
        let msg = check_output_file(&d.join("dir.png"), IMAGE_EXTENSIONS)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("is a directory"), "{msg}");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_failed_atomic_write_keeps_the_old_content() {
        let d = tmp("atomic");
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("r.json");
        write_atomic(&p, b"old").unwrap();
        // A directory where the temporary file would go makes the write fail before the rename.
        std::fs::create_dir_all(temp_beside(&p)).unwrap();
        assert!(write_atomic(&p, b"new").is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        std::fs::remove_dir_all(&d).ok();
    }
}
