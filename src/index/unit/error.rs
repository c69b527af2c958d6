//! The unit index's errors and their stable categories.

use std::io;
use std::path::{Path, PathBuf};

use crate::kind::ErrorKind;
use crate::metric::BodyError;

/// Errors of the unit index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A body the index cannot store or search.
    #[error("{}{source}", key.map(|k| format!("key {k}: ")).unwrap_or_default())]
    Body {
        /// The key of the offending entry, when there is one.
        key: Option<u64>,
        /// What is wrong with the body.
        source: BodyError,
    },
    /// A body longer than the index's `max_dim`.
    #[error("{}a code of {bits} bits exceeds this index's max_dim of {max_dim} bits", key.map(|k| format!("key {k}: ")).unwrap_or_default())]
    TooLong {
        key: Option<u64>,
        bits: usize,
        max_dim: usize,
    },
    /// Keys and bodies of a batch differ in number.
    #[error("{keys} keys but {bodies} bodies")]
    BatchMismatch { keys: usize, bodies: usize },
    /// An invalid option.
    #[error("invalid option: {0}")]
    Option(String),
    /// A write to an index opened with `view`.
    #[error("the index is read-only (memory-mapped with view); load it to modify it")]
    ReadOnly,
    /// A file could not be read or written.
    #[error("{}", crate::kind::io_message(path, source))]
    Io { path: PathBuf, source: io::Error },
    /// A file that is not a valid unit index.
    #[error("{path} is not a valid unit index file: {why}")]
    Corrupt { path: PathBuf, why: String },
    /// A file of another on-disk format version.
    #[error("{path} has on-disk format version {found}; this build reads version {expected}: rebuild the index from its primary store")]
    IncompatibleFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// An error reported by usearch.
    #[error("usearch: {0}")]
    Native(String),
}

impl IndexError {
    /// The stable category (a full disk is [`ErrorKind::DiskFull`], also
    /// when usearch only says that a write failed).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IndexError::Body { .. } | IndexError::TooLong { .. } => ErrorKind::InvalidIscc,
            IndexError::BatchMismatch { .. } | IndexError::Option(_) => ErrorKind::InvalidArgument,
            IndexError::ReadOnly => ErrorKind::ReadOnly,
            IndexError::Io { path, source } => crate::kind::io_kind_at(source, path),
            IndexError::Corrupt { .. } => ErrorKind::Corrupt,
            IndexError::IncompatibleFormat { .. } => ErrorKind::IncompatibleFormat,
            IndexError::Native(_) => ErrorKind::Internal,
        }
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}
