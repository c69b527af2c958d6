//! Errors of the engine and their stable kinds (the C ABI's status codes
//! and the REST API's HTTP statuses are derived from [`ErrorKind`]).

use std::path::PathBuf;

use crate::codec::CodecError;
use crate::index::ShardedError;
use crate::store::StoreError;

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

/// Errors of the ISCC index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A malformed or unusable ISCC, with where it was found.
    #[error("{context}: {source}")]
    Iscc { context: String, source: CodecError },
    /// Malformed JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// A bad entry, query or argument.
    #[error("{0}")]
    Invalid(String),
    /// An ISCC-ID of another realm.
    #[error("{context}: ISCC-ID {id} is of realm {found}, but this index holds realm {expected}")]
    Realm {
        context: String,
        id: String,
        found: u8,
        expected: u8,
    },
    /// No such entry.
    #[error("no entry with ISCC-ID {0}")]
    NotFound(String),
    /// An error of the primary store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An error of a unit index.
    #[error("{unit_type} index: {source}")]
    Index {
        unit_type: String,
        source: ShardedError,
    },
    /// Another process holds the writer lock.
    #[error("{path} is locked by another writer process")]
    Locked { path: PathBuf },
    /// Another on-disk format version.
    #[error("{path} has format version {found}; this build reads version {expected}: export the entries with the version that wrote them, or rebuild")]
    IncompatibleFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// A write to a read-only index.
    #[error("the index is open read-only")]
    ReadOnly,
    /// Use after close.
    #[error("the index is closed")]
    Closed,
    /// A file or directory problem.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    // ENOSPC / EDQUOT
    match e.raw_os_error() {
        Some(28) | Some(122) => ErrorKind::DiskFull,
        _ => ErrorKind::Io,
    }
}

impl EngineError {
    /// The stable category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Iscc { .. } => ErrorKind::InvalidIscc,
            EngineError::Json(_) => ErrorKind::InvalidJson,
            EngineError::Invalid(_) => ErrorKind::InvalidArgument,
            EngineError::Realm { .. } => ErrorKind::WrongRealm,
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Locked { .. } => ErrorKind::Locked,
            EngineError::IncompatibleFormat { .. } => ErrorKind::IncompatibleFormat,
            EngineError::ReadOnly => ErrorKind::ReadOnly,
            EngineError::Closed => ErrorKind::Closed,
            EngineError::Io { source, .. } => io_kind(source),
            EngineError::Store(e) => match e {
                StoreError::ReadOnly => ErrorKind::ReadOnly,
                StoreError::Io { source, .. } => io_kind(source),
                StoreError::Corrupt { .. } => ErrorKind::Corrupt,
                StoreError::Lmdb { source, .. } => match source {
                    heed::Error::Io(io) => io_kind(io),
                    heed::Error::Mdb(heed::MdbError::Invalid)
                    | heed::Error::Mdb(heed::MdbError::VersionMismatch) => {
                        ErrorKind::IncompatibleFormat
                    }
                    heed::Error::Mdb(heed::MdbError::Corrupted)
                    | heed::Error::Mdb(heed::MdbError::PageNotFound) => ErrorKind::Corrupt,
                    heed::Error::Mdb(heed::MdbError::MapFull) => ErrorKind::DiskFull,
                    // LMDB allows one open of an environment per process.
                    heed::Error::EnvAlreadyOpened => ErrorKind::Locked,
                    _ => ErrorKind::Internal,
                },
            },
            EngineError::Index { source, .. } => match source {
                ShardedError::Locked { .. } => ErrorKind::Locked,
                ShardedError::ReadOnly => ErrorKind::ReadOnly,
                ShardedError::Closed => ErrorKind::Closed,
                ShardedError::Vector { .. } => ErrorKind::InvalidIscc,
                ShardedError::IncompatibleFormat { .. } => ErrorKind::IncompatibleFormat,
                ShardedError::Corrupt { .. } => ErrorKind::Corrupt,
                ShardedError::Io { source, .. } => io_kind(source),
                ShardedError::Option(_) => ErrorKind::InvalidArgument,
                _ => ErrorKind::Internal,
            },
        }
    }

    pub(crate) fn index(
        unit_type: crate::codec::UnitType,
    ) -> impl FnOnce(ShardedError) -> EngineError {
        move |source| EngineError::Index {
            unit_type: unit_type.name(),
            source,
        }
    }
}
