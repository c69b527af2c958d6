//! Durable file replacement, the only way the indexes replace a file:
//! write a temporary file beside the target, fsync it, rename it over the
//! target, fsync the directory. A reader (or a crash) sees the old file or
//! the new one, never a mix.
//!
//! Contract: after [`write`] or [`commit`] returns `Ok`, the new content
//! survives a crash. After an error the target is untouched; a temporary
//! file may remain, which its owner removes (or ignores) on open.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary name a file is written under before its rename.
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

/// fsync a directory, so a rename in it survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)?.sync_all()
}

/// Write the temporary file of `path` through `fill` and fsync it; nothing
/// is replaced until [`commit`]. Returns the temporary path.
pub(crate) fn write_beside(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<PathBuf> {
    let tmp = tmp_path(path);
    let mut f = BufWriter::new(File::create(&tmp)?);
    fill(&mut f)?;
    f.flush()?;
    // An injected fault stops here, before the fsync, leaving the
    // temporary file behind as a crash would.
    crate::fault::check(path)?;
    f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(tmp)
}

/// Rename a synced temporary file over `path` and fsync the directory.
pub(crate) fn commit(tmp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Replace `path` with `bytes` durably (see the module's contract).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = write_beside(path, |f| f.write_all(bytes))?;
    commit(&tmp, path)
}
