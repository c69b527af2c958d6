//! Errors of the engine. Their stable kinds ([`ErrorKind`], from which the
//! C ABI's status codes, the REST API's HTTP statuses and the CLI's exit
//! statuses are derived) come from the layer where each error arose.

use std::path::PathBuf;

use crate::codec::CodecError;
use crate::index::ShardedError;
use crate::store::StoreError;

pub use crate::kind::ErrorKind;

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
    /// This process already has the index open for writing.
    #[error(
        "{path} is already open for writing in this process (use that handle, or close it first)"
    )]
    OpenHere { path: PathBuf },
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
    /// The entries of a write were committed to the store (they are safe:
    /// acknowledged, and indexed from the journal on the next save or
    /// open), but bringing the unit indexes in line failed.
    #[error("{} were stored, but updating the unit indexes failed (they are indexed from the journal on the next save or open): {source}", committed_text(ids))]
    AfterCommit {
        /// The ISCC-IDs the write committed (an add: every ID of the
        /// batch; a remove: the removed ones).
        ids: Vec<String>,
        /// What failed.
        source: Box<EngineError>,
    },
    /// An operation the backend of this index does not offer (e.g. a
    /// rebuild of a Milvus index, which its server maintains).
    #[error("{0}")]
    Unsupported(String),
    /// An error of a remote backend (a Milvus server), naming the server.
    #[error("{server}: {message}")]
    Remote {
        /// `milvus://HOST:PORT/NAME` (never with credentials).
        server: String,
        /// What went wrong.
        message: String,
        /// Its category (unreachable: `Io`; refused input: `InvalidArgument`).
        kind: ErrorKind,
    },
    /// A file or directory problem.
    #[error("{}", crate::kind::io_message(path, source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn committed_text(ids: &[String]) -> String {
    match ids.len() {
        1 => format!("the change to {}", ids[0]),
        n => format!("the changes to {n} entries"),
    }
}

impl EngineError {
    /// The stable category (each layer classifies its own errors).
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::Iscc { .. } => ErrorKind::InvalidIscc,
            EngineError::Json(_) => ErrorKind::InvalidJson,
            EngineError::Invalid(_) => ErrorKind::InvalidArgument,
            EngineError::Realm { .. } => ErrorKind::WrongRealm,
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Locked { .. } | EngineError::OpenHere { .. } => ErrorKind::Locked,
            EngineError::IncompatibleFormat { .. } => ErrorKind::IncompatibleFormat,
            EngineError::ReadOnly => ErrorKind::ReadOnly,
            EngineError::Closed => ErrorKind::Closed,
            EngineError::Unsupported(_) => ErrorKind::InvalidArgument,
            EngineError::Remote { kind, .. } => *kind,
            EngineError::Io { path, source } => crate::kind::io_kind_at(source, path),
            EngineError::Store(e) => e.kind(),
            EngineError::Index { source, .. } => source.kind(),
            EngineError::AfterCommit { source, .. } => source.kind(),
        }
    }

    /// The error of a simprint type's similarity index.
    pub(crate) fn simprint_index(
        kind: &super::features::SimprintType,
    ) -> impl FnOnce(ShardedError) -> EngineError {
        let unit_type = format!("simprint {kind}");
        move |source| EngineError::Index { unit_type, source }
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
