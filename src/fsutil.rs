//! Crash-safe file writes: a SIGKILL at any instant leaves either the old file or the new one,
//! never a torn one. Writers create a temp file in the target's directory, fsync it, then
//! `rename` it over the target (replace) or `link` it to the target (create only: EEXIST
//! instead of a silent overwrite), and fsync the directory.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use fs_err::os::unix::fs::OpenOptionsExt;

use crate::bail;
use crate::error::{Context, Error, Result};

/// Container ids and network names become path components: refuse anything that could
/// escape or collide (empty, `.`, `..`, `/`, NUL, longer than a file name may be).
pub fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\0'])
        || name.len() > 255
    {
        bail!(
            "invalid {what} {name:?}: it must be a single path component (not empty, '.' or '..', no '/' or NUL, at most 255 bytes)"
        );
    }
    Ok(())
}

/// Temp files start with this; readers skip them and `gc` removes leftovers of killed writers.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Unique within the host at this instant: pid plus a per-process counter.
pub fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{TEMP_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Write `data` to a new temp file in `dir`, fsynced when it must survive a power cut.
pub fn write_temp(dir: &Path, data: &[u8], durable: bool) -> Result<PathBuf> {
    let path = dir.join(unique_name());
    let written = (|| -> Result<()> {
        let mut f = fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)?;
        f.write_all(data)?;
        if durable {
            f.sync_all()?;
        }
        Ok(())
    })();
    match written {
        Ok(()) => Ok(path),
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Make a new, renamed or removed name in `dir` survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Durably write `data` to `path`: replace it, or (`replace` false) create it only if absent.
pub fn write_atomic(path: &Path, data: &[u8], replace: bool) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::msg(format!("{} has no directory", path.display())))?;
    let tmp = write_temp(dir, data, true)?;
    let placed = if replace {
        fs_err::rename(&tmp, path)
    } else {
        fs_err::hard_link(&tmp, path)
    };
    // After a rename the temp name is already gone; after link or a failure it is ours.
    let _ = std::fs::remove_file(&tmp);
    placed?;
    sync_dir(dir)
}

/// An exclusive `flock` on `path` (created if missing), held until the file is dropped. Mode
/// 0600, not 0644 like the rest: flock needs only an open file, and any user who could open it
/// could hold the lock forever and stall everyone else. The errno of a failed open is kept
/// (ENOENT: the directory went away).
pub fn lock_file(path: &Path) -> Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::from(e).context(format!("cannot open {}", path.display())))?;
    f.lock()
        .map_err(|e| Error::from(e).context(format!("cannot lock {}", path.display())))?;
    Ok(f)
}

/// Create `path` and its missing parents, 0755.
pub fn make_dir(path: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
        .with_context(|| format!("cannot create directory {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_one_path_component_are_refused() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b", &"x".repeat(256)] {
            let err = check_name("container id", bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("invalid container id "), "{bad:?}: {err}");
        }
        for good in [
            "abc",
            "a.b",
            "...",
            ".hidden",
            &"x".repeat(255),
            "9f86d081884c7d659a2feaa0c55ad015",
        ] {
            assert!(check_name("container id", good).is_ok(), "{good:?}");
        }
    }
}
