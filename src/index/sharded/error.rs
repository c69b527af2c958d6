//! What can go wrong in the sharded index, and each error's stable category.

use super::key::KeyKind;
use crate::index::bloom::BloomError;
use crate::index::IndexError;
use crate::kind::ErrorKind;
use std::io;
use std::path::{Path, PathBuf};

/// Errors of the sharded index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardedError {
    /// An error of a shard's unit index (names the file where there is one).
    #[error(transparent)]
    Index(#[from] IndexError),
    /// An error of the bloom filter file.
    #[error(transparent)]
    Bloom(#[from] BloomError),
    /// A file or directory could not be read or written.
    #[error("{}", crate::kind::io_message(path, source))]
    Io { path: PathBuf, source: io::Error },
    /// A damaged or inconsistent file.
    #[error("{path} is damaged: {why}")]
    Corrupt { path: PathBuf, why: String },
    /// A directory written by another on-disk format version.
    #[error("{path} has sharded-index format version {found}; this build reads version {expected}: rebuild the index from its primary store")]
    IncompatibleFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// No index at the path.
    #[error("{path} holds no sharded index (no manifest.json)")]
    NotFound { path: PathBuf },
    /// `create` on a directory that already holds an index.
    #[error("{path} already holds a sharded index")]
    AlreadyExists { path: PathBuf },
    /// Another process holds the writer lock.
    #[error("{path} is locked by another writer process")]
    Locked { path: PathBuf },
    /// The index was opened with another key type.
    #[error("the index at {path} has {found} keys, but was opened with {expected} keys")]
    KeyKind {
        path: PathBuf,
        found: KeyKind,
        expected: KeyKind,
    },
    /// A vector this index cannot store or search.
    #[error("{}{why}", key.as_ref().map(|k| format!("key {k}: ")).unwrap_or_default())]
    Vector { key: Option<String>, why: String },
    /// Keys and vectors of a batch differ in number.
    #[error("{keys} keys but {vectors} vectors")]
    BatchMismatch { keys: usize, vectors: usize },
    /// An invalid option.
    #[error("invalid option: {0}")]
    Option(String),
    /// A write to a read-only index.
    #[error("the sharded index is open read-only")]
    ReadOnly,
    /// Use after `close`.
    #[error("the sharded index is closed")]
    Closed,
    /// Writing a rotated shard failed; its rows stay in memory and
    /// searchable, and the next `save`/`drain_rotations` retries.
    #[error("writing rotated shard {id} failed (its rows stay in memory; save retries): {source}")]
    Rotation { id: u32, source: Box<ShardedError> },
    /// A background task (rotation writer, merger) panicked: a bug, reported
    /// to whoever waits for the task instead of leaving them waiting.
    #[error("the {task} panicked: {message}")]
    Panicked { task: &'static str, message: String },
}

impl ShardedError {
    /// The stable category (delegating to the unit index and bloom filter
    /// errors it wraps).
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShardedError::Index(e) => e.kind(),
            ShardedError::Bloom(e) => e.kind(),
            ShardedError::Io { path, source } => crate::kind::io_kind_at(source, path),
            ShardedError::Corrupt { .. } => ErrorKind::Corrupt,
            ShardedError::IncompatibleFormat { .. } => ErrorKind::IncompatibleFormat,
            ShardedError::NotFound { .. } => ErrorKind::NotFound,
            ShardedError::AlreadyExists { .. } | ShardedError::Option(_) => {
                ErrorKind::InvalidArgument
            }
            ShardedError::BatchMismatch { .. } => ErrorKind::InvalidArgument,
            ShardedError::Locked { .. } => ErrorKind::Locked,
            ShardedError::KeyKind { .. } => ErrorKind::InvalidArgument,
            ShardedError::Vector { .. } => ErrorKind::InvalidIscc,
            ShardedError::ReadOnly => ErrorKind::ReadOnly,
            ShardedError::Closed => ErrorKind::Closed,
            ShardedError::Rotation { source, .. } => source.kind(),
            ShardedError::Panicked { .. } => ErrorKind::Internal,
        }
    }
}

pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ShardedError + '_ {
    move |source| ShardedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(super) fn key_text(kind: KeyKind, key: u128) -> String {
    match kind {
        KeyKind::U64 => (key as u64).to_string(),
        KeyKind::U128 => format!("{key:032x}"),
    }
}
