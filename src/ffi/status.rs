//! Status codes of the C ABI. Numbers are stable: a code is never reused or
//! renumbered; new codes are appended.

use crate::engine::ErrorKind;

/// The result of every fallible `ivdb_*` function (`IVDB_OK` on success).
pub type ivdb_status = u32;

/// Success.
pub const IVDB_OK: ivdb_status = 0;
/// A NULL pointer, bad option or bad argument.
pub const IVDB_INVALID_ARGUMENT: ivdb_status = 1;
/// A malformed ISCC or one of the wrong kind.
pub const IVDB_INVALID_ISCC: ivdb_status = 2;
/// Malformed JSON or a string that is not UTF-8.
pub const IVDB_INVALID_JSON: ivdb_status = 3;
/// No such entry or index.
pub const IVDB_NOT_FOUND: ivdb_status = 4;
/// A file could not be read or written.
pub const IVDB_IO: ivdb_status = 5;
/// The disk (or the LMDB map) is full.
pub const IVDB_DISK_FULL: ivdb_status = 6;
/// Another process holds the writer lock.
pub const IVDB_LOCKED: ivdb_status = 7;
/// Files of another on-disk format version.
pub const IVDB_INCOMPATIBLE_FORMAT: ivdb_status = 8;
/// A write to an index opened read-only.
pub const IVDB_READ_ONLY: ivdb_status = 9;
/// A Rust panic was caught at the boundary (a bug; please report it).
pub const IVDB_PANIC: ivdb_status = 10;
/// An unexpected internal failure.
pub const IVDB_INTERNAL: ivdb_status = 11;
/// An ISCC-ID of another realm than the index's.
pub const IVDB_WRONG_REALM: ivdb_status = 12;
/// The index was closed. `ivdb_close` frees the handle, so no `ivdb_*`
/// function returns this today (a closed handle must not be used at all);
/// the code is kept stable for the bindings, which report calls on a
/// closed index object with it.
pub const IVDB_CLOSED: ivdb_status = 13;
/// A damaged file that could not be rebuilt.
pub const IVDB_CORRUPT: ivdb_status = 14;

/// The status of an engine error kind.
pub(crate) fn status_of(kind: ErrorKind) -> ivdb_status {
    match kind {
        ErrorKind::InvalidArgument => IVDB_INVALID_ARGUMENT,
        ErrorKind::InvalidIscc => IVDB_INVALID_ISCC,
        ErrorKind::InvalidJson => IVDB_INVALID_JSON,
        ErrorKind::NotFound => IVDB_NOT_FOUND,
        ErrorKind::Io => IVDB_IO,
        ErrorKind::DiskFull => IVDB_DISK_FULL,
        ErrorKind::Locked => IVDB_LOCKED,
        ErrorKind::IncompatibleFormat => IVDB_INCOMPATIBLE_FORMAT,
        ErrorKind::ReadOnly => IVDB_READ_ONLY,
        ErrorKind::WrongRealm => IVDB_WRONG_REALM,
        ErrorKind::Closed => IVDB_CLOSED,
        ErrorKind::Corrupt => IVDB_CORRUPT,
        ErrorKind::Internal => IVDB_INTERNAL,
    }
}

/// The name of a status (`"IVDB_INVALID_ISCC"`), NUL-terminated.
pub(crate) fn status_name(status: ivdb_status) -> &'static str {
    match status {
        IVDB_OK => "IVDB_OK\0",
        IVDB_INVALID_ARGUMENT => "IVDB_INVALID_ARGUMENT\0",
        IVDB_INVALID_ISCC => "IVDB_INVALID_ISCC\0",
        IVDB_INVALID_JSON => "IVDB_INVALID_JSON\0",
        IVDB_NOT_FOUND => "IVDB_NOT_FOUND\0",
        IVDB_IO => "IVDB_IO\0",
        IVDB_DISK_FULL => "IVDB_DISK_FULL\0",
        IVDB_LOCKED => "IVDB_LOCKED\0",
        IVDB_INCOMPATIBLE_FORMAT => "IVDB_INCOMPATIBLE_FORMAT\0",
        IVDB_READ_ONLY => "IVDB_READ_ONLY\0",
        IVDB_PANIC => "IVDB_PANIC\0",
        IVDB_INTERNAL => "IVDB_INTERNAL\0",
        IVDB_WRONG_REALM => "IVDB_WRONG_REALM\0",
        IVDB_CLOSED => "IVDB_CLOSED\0",
        IVDB_CORRUPT => "IVDB_CORRUPT\0",
        _ => "IVDB_UNKNOWN_STATUS\0",
    }
}
