//! Status codes of the C ABI, kept in one list: the [`statuses!`]
//! invocation below defines the constants, their names
//! (`ivdb_status_str`) and the status of each [`ErrorKind`]; `build.rs`
//! reads the same invocation to write the `#define`s of the header (cbindgen
//! cannot see constants a macro makes). Numbers are stable: a code is never
//! reused or renumbered; new codes are appended.

use crate::engine::ErrorKind;

/// The result of every fallible `ivdb_*` function (`IVDB_OK` on success).
pub type ivdb_status = u32;

/// Defines each status constant with its doc comment, [`status_name`],
/// [`status_of`] (an exhaustive match: a new [`ErrorKind`] does not compile
/// until it has a status) and [`ALL`]. An entry is `NAME = number` or
/// `NAME = number <= ErrorKind variant` when an error kind maps to it.
macro_rules! statuses {
    ($($(#[doc = $doc:literal])* $name:ident = $n:literal $(<= $kind:ident)?,)*) => {
        $(
            $(#[doc = $doc])*
            pub const $name: ivdb_status = $n;
        )*

        /// Every status, in number order.
        #[allow(dead_code)]
        pub(crate) const ALL: &[ivdb_status] = &[$($name),*];

        /// The name of a status (`"IVDB_INVALID_ISCC"`), NUL-terminated.
        pub(crate) fn status_name(status: ivdb_status) -> &'static str {
            match status {
                $($name => concat!(stringify!($name), "\0"),)*
                _ => "IVDB_UNKNOWN_STATUS\0",
            }
        }

        /// The status of an engine error kind.
        pub(crate) fn status_of(kind: ErrorKind) -> ivdb_status {
            match kind {
                $($(ErrorKind::$kind => $name,)?)*
            }
        }
    };
}

// build.rs parses this invocation: keep one entry per line, each after its
// `///` lines, in the form `NAME = number` (optionally `<= Kind`), ending
// with a comma.
statuses! {
    /// Success.
    IVDB_OK = 0,
    /// A NULL pointer, bad option or bad argument.
    IVDB_INVALID_ARGUMENT = 1 <= InvalidArgument,
    /// A malformed ISCC or one of the wrong kind.
    IVDB_INVALID_ISCC = 2 <= InvalidIscc,
    /// Malformed JSON or a string that is not UTF-8.
    IVDB_INVALID_JSON = 3 <= InvalidJson,
    /// No such entry or index.
    IVDB_NOT_FOUND = 4 <= NotFound,
    /// A file could not be read or written.
    IVDB_IO = 5 <= Io,
    /// The disk (or the LMDB map) is full.
    IVDB_DISK_FULL = 6 <= DiskFull,
    /// Another process holds the writer lock.
    IVDB_LOCKED = 7 <= Locked,
    /// Files of another on-disk format version.
    IVDB_INCOMPATIBLE_FORMAT = 8 <= IncompatibleFormat,
    /// A write to an index opened read-only.
    IVDB_READ_ONLY = 9 <= ReadOnly,
    /// A Rust panic was caught at the boundary (a bug; please report it).
    IVDB_PANIC = 10,
    /// An unexpected internal failure.
    IVDB_INTERNAL = 11 <= Internal,
    /// An ISCC-ID of another realm than the index's.
    IVDB_WRONG_REALM = 12 <= WrongRealm,
    /// The index was closed. `ivdb_close` frees the handle, so no `ivdb_*`
    /// function returns this today (a closed handle must not be used at all);
    /// the code is kept stable for the bindings, which report calls on a
    /// closed index object with it.
    IVDB_CLOSED = 13 <= Closed,
    /// A damaged file that could not be rebuilt.
    IVDB_CORRUPT = 14 <= Corrupt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_dense_and_names_round_trip() {
        for (i, &s) in ALL.iter().enumerate() {
            assert_eq!(s as usize, i, "status numbers are 0..n in order");
            assert!(status_name(s).starts_with("IVDB_") && status_name(s).ends_with('\0'));
        }
        assert_eq!(status_name(ALL.len() as u32), "IVDB_UNKNOWN_STATUS\0");
        assert_eq!(status_of(ErrorKind::Closed), IVDB_CLOSED);
    }
}
