//! The advisory writer lock of an index directory (`{dir}/LOCK`).
//!
//! `flock(LOCK_EX | LOCK_NB)` on an open file: a second writer — another
//! process, or another open in this one — fails at once instead of
//! corrupting the files, and the kernel releases the lock when the file is
//! closed, also when the process dies. Readers take no lock.

use std::fs::{self, File};
use std::io;
use std::path::Path;

/// A held lock; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Why the lock could not be taken.
pub(crate) enum LockError {
    /// Another writer holds it.
    Held,
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
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            return Err(if err.kind() == io::ErrorKind::WouldBlock {
                LockError::Held
            } else {
                LockError::Io(err)
            });
        }
        Ok(DirLock { _file: file })
    }
}
