//! Crash-safe file writes: a SIGKILL at any instant leaves either the old file or the new one,
//! never a torn one.

use fs_err::os::unix::fs::OpenOptionsExt;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};

/// Write `data` to `path` through a temp file in the same directory: fsync, then `rename`
/// (replace) or `link` (create only: fails with EEXIST instead of overwriting), then fsync the
/// directory so the new name survives a power cut.
pub fn write_atomic(path: &Path, data: &[u8], replace: bool) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::msg(format!("{} has no directory", path.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        if replace {
            fs_err::rename(&tmp, path)?;
        } else {
            fs_err::hard_link(&tmp, path)?;
        }
        Ok::<_, Error>(())
    })();
    // After a rename the temp name is already gone; after link or a failure it is ours.
    let _ = std::fs::remove_file(&tmp);
    result?;
    fs_err::File::open(dir)?.sync_all()?;
    Ok(())
}

/// Is this a leftover temp file of `write_atomic` (from a writer that was killed)?
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".tmp.")
}

/// An exclusive `flock` on `path` (created if missing), held until the file is dropped.
pub fn lock_file(path: &Path) -> Result<std::fs::File> {
    let f = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let f: std::fs::File = f.into();
    f.lock()
        .map_err(|e| Error::from(e).context(format!("cannot lock {}", path.display())))?;
    Ok(f)
}
