//! The advisory writer lock of an index directory (`{dir}/LOCK`).
//!
//! An exclusive, non-blocking lock on an open file (std's
//! `File::try_lock`: `flock` on Unix, `LockFileEx` on Windows): a second writer — another
//! process, or another open in this one — fails at once instead of
//! corrupting the files, and the kernel releases the lock when the file is
//! closed, also when the process dies. Readers take no lock. Locks this
//! process holds are also remembered here, so a second open in the same
//! process is told apart from another process.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Canonical directories whose lock this process holds.
static HELD_HERE: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
    dir: PathBuf,
}

/// Why the lock could not be taken.
pub(crate) enum LockError {
    /// Another process holds it.
    Held,
    /// This process holds it already (another open handle).
    HeldHere,
    /// The lock file could not be opened.
    Io(io::Error),
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock, LockError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("LOCK"))
            .map_err(LockError::Io)?;
        let canonical = fs::canonicalize(dir).map_err(LockError::Io)?;
        let mut held = crate::sync::lock(&HELD_HERE);
        if held.as_ref().is_some_and(|h| h.contains(&canonical)) {
            return Err(LockError::HeldHere);
        }
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(LockError::Held),
            Err(fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        held.get_or_insert_with(HashSet::new)
            .insert(canonical.clone());
        Ok(DirLock {
            _file: file,
            dir: canonical,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = crate::sync::lock(&HELD_HERE);
        if let Some(h) = held.as_mut() {
            h.remove(&self.dir);
        }
    }
}
