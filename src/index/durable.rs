//! Durable file replacement: write a temporary file, fsync it, rename it
//! over the target, fsync the directory. A reader (or a crash) sees the old
//! file or the new one, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
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

/// Replace `path` with `bytes` durably. On error the target is untouched
/// (a temporary file may remain; owners remove stale ones on open).
pub(crate) fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = File::create(&tmp)?;
        let half = bytes.len() / 2;
        f.write_all(&bytes[..half])?;
        crate::fault::check(path)?;
        f.write_all(&bytes[half..])?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}
