//! The stable categories of every error of the crate, and the one place
//! that decides when an I/O failure means "the disk is full".
//!
//! Each layer classifies its own errors (`StoreError::kind`,
//! `IndexError::kind`, `BloomError::kind`, `ShardedError::kind`,
//! `EngineError::kind`); the faces (C status, HTTP status, CLI exit status)
//! map an [`ErrorKind`] with exhaustive matches, so a new kind does not
//! compile until every face has a place for it.

use std::io;
use std::path::Path;

/// The stable category of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument or entry (missing code and units, empty units, bad
    /// option, duplicate unit type, …).
    InvalidArgument,
    /// A malformed ISCC or one of the wrong kind.
    InvalidIscc,
    /// Malformed JSON.
    InvalidJson,
    /// No such entry.
    NotFound,
    /// A file could not be read or written.
    Io,
    /// The disk is full.
    DiskFull,
    /// Another process holds the writer lock.
    Locked,
    /// Files of another on-disk format version.
    IncompatibleFormat,
    /// A write to a read-only index.
    ReadOnly,
    /// An ISCC-ID of another realm.
    WrongRealm,
    /// Use after close.
    Closed,
    /// A damaged file that could not be rebuilt.
    Corrupt,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of their C status codes.
    pub const ALL: [ErrorKind; 13] = [
        ErrorKind::InvalidArgument,
        ErrorKind::InvalidIscc,
        ErrorKind::InvalidJson,
        ErrorKind::NotFound,
        ErrorKind::Io,
        ErrorKind::DiskFull,
        ErrorKind::Locked,
        ErrorKind::IncompatibleFormat,
        ErrorKind::ReadOnly,
        ErrorKind::WrongRealm,
        ErrorKind::Closed,
        ErrorKind::Corrupt,
        ErrorKind::Internal,
    ];

    /// Upper-case name (`INVALID_ISCC`), as used by the C ABI and REST.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
            ErrorKind::InvalidIscc => "INVALID_ISCC",
            ErrorKind::InvalidJson => "INVALID_JSON",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::Io => "IO",
            ErrorKind::DiskFull => "DISK_FULL",
            ErrorKind::Locked => "LOCKED",
            ErrorKind::IncompatibleFormat => "INCOMPATIBLE_FORMAT",
            ErrorKind::ReadOnly => "READ_ONLY",
            ErrorKind::WrongRealm => "WRONG_REALM",
            ErrorKind::Closed => "CLOSED",
            ErrorKind::Corrupt => "CORRUPT",
            ErrorKind::Internal => "INTERNAL",
        }
    }
}

/// ENOSPC and EDQUOT: the two ways a write says there is no room.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// The kind of an I/O error: [`ErrorKind::DiskFull`] for ENOSPC/EDQUOT,
/// else [`ErrorKind::Io`].
pub(crate) fn io_kind(e: &io::Error) -> ErrorKind {
    if is_no_space(e) {
        ErrorKind::DiskFull
    } else {
        ErrorKind::Io
    }
}

/// Below this many free bytes a filesystem counts as full: a failed write
/// there (LMDB reports a short write as EIO, usearch as a message) is taken
/// as a full disk.
const FULL_BELOW: u64 = 4 << 20;

/// Free bytes on the filesystem holding `path` (or its nearest existing
/// ancestor), as this process may use them (root may use the reserve).
pub(crate) fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let mut p = Some(path);
    while let Some(cur) = p {
        if cur.exists() {
            let c = std::ffi::CString::new(cur.as_os_str().as_bytes()).ok()?;
            // SAFETY: `c` is a valid NUL-terminated path; `st` is a properly
            // sized, zeroed out-parameter that statvfs fills on success.
            let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
            // SAFETY: as above; the pointers live for the call.
            if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
                return None;
            }
            // SAFETY: geteuid has no preconditions.
            let blocks = if unsafe { libc::geteuid() } == 0 {
                st.f_bfree
            } else {
                st.f_bavail
            };
            return Some((blocks as u64).saturating_mul(st.f_frsize as u64));
        }
        p = cur.parent();
    }
    None
}

/// True when the filesystem holding `path` has (next to) no room left.
pub(crate) fn disk_is_full(path: &Path) -> bool {
    free_bytes(path).is_some_and(|free| free < FULL_BELOW)
}

/// The kind of an I/O error on `path`, also recognising a full disk behind
/// an error that does not say so (EIO of a short write).
pub(crate) fn io_kind_at(e: &io::Error, path: &Path) -> ErrorKind {
    match io_kind(e) {
        ErrorKind::Io if e.raw_os_error() == Some(libc::EIO) && disk_is_full(path) => {
            ErrorKind::DiskFull
        }
        k => k,
    }
}

/// The message of a full disk: says so, and where.
pub(crate) fn disk_full_message(path: &Path) -> String {
    match free_bytes(path) {
        Some(free) => format!(
            "disk full: no space left on the filesystem of {} ({free} bytes free)",
            path.display()
        ),
        None => format!(
            "disk full: no space left on the filesystem of {}",
            path.display()
        ),
    }
}

/// The message of an I/O error on `path`: a full disk says so.
pub(crate) fn io_message(path: &Path, e: &io::Error) -> String {
    if io_kind_at(e, path) == ErrorKind::DiskFull {
        format!("{} ({e})", disk_full_message(path))
    } else {
        format!("I/O error on {}: {e}", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_space_errors_are_disk_full() {
        let enospc = io::Error::from_raw_os_error(libc::ENOSPC);
        let edquot = io::Error::from_raw_os_error(libc::EDQUOT);
        let eacces = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(io_kind(&enospc), ErrorKind::DiskFull);
        assert_eq!(io_kind(&edquot), ErrorKind::DiskFull);
        assert_eq!(io_kind(&eacces), ErrorKind::Io);
        // EIO on a filesystem with room stays an I/O error.
        let eio = io::Error::from_raw_os_error(libc::EIO);
        let dir = tempfile::tempdir().unwrap();
        if !disk_is_full(dir.path()) {
            assert_eq!(io_kind_at(&eio, dir.path()), ErrorKind::Io);
        }
        assert!(free_bytes(&dir.path().join("not/yet/there")).is_some());
        assert!(disk_full_message(dir.path()).starts_with("disk full"));
        assert!(io_message(dir.path(), &enospc).starts_with("disk full: no space left"));
        assert!(io_message(dir.path(), &eacces).starts_with("I/O error on"));
    }

    #[test]
    fn names_are_distinct() {
        let mut names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }
}
