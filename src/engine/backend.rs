//! `IsccIndex`: one API over two backends — the local one (an index
//! directory: LMDB store plus unit indexes, [`LocalIndex`]) and, with the
//! `milvus` feature, a Milvus server or cluster (`milvus://HOST:PORT/NAME`,
//! see `super::milvus`). Every face (C ABI, CLI, REST, bindings) opens an
//! `IsccIndex` by path, so a URI in place of a directory is all a caller
//! changes.
//!
//! Each method here only dispatches; what a method means is documented on
//! the local backend, and a backend that cannot offer an operation returns
//! [`EngineError::Unsupported`] naming it.

use std::path::Path;

use serde_json::Value;

use super::{
    BatchMatches, EngineError, IndexInfo, IndexOptions, IndexParams, IsccMatches, LocalIndex,
    Query, RemoveReport, SearchParams, SimprintCollisions, SimprintTypeInfo,
};
use crate::index::CoalesceStats;
use std::collections::BTreeMap;

/// The URI scheme of the Milvus backend.
pub const MILVUS_SCHEME: &str = "milvus://";

/// The ISCC index; see the module docs of `engine` (local backend) and of
/// this file.
#[derive(Debug)]
pub struct IsccIndex {
    inner: Backend,
}

#[derive(Debug)]
enum Backend {
    Local(LocalIndex),
    #[cfg(feature = "milvus")]
    Milvus(super::milvus::MilvusIndex),
}

/// Run `$e` with `$b` bound to whichever backend `$self` has.
macro_rules! each {
    ($self:expr, $b:ident => $e:expr) => {
        match &$self.inner {
            Backend::Local($b) => $e,
            #[cfg(feature = "milvus")]
            Backend::Milvus($b) => $e,
        }
    };
}

/// The Milvus URI `path` spells, if it is one.
fn milvus_uri(path: Option<&Path>) -> Option<&str> {
    path.and_then(Path::to_str)
        .filter(|s| s.starts_with(MILVUS_SCHEME))
}

/// True when `path` is a `milvus://` URI rather than a directory (faces
/// that check a directory before opening skip that check for it).
pub fn is_milvus_uri(path: &Path) -> bool {
    milvus_uri(Some(path)).is_some()
}

impl IsccIndex {
    /// Open (or create) the index at `path`: a directory, `None` for an
    /// in-memory index in a temporary directory, or `milvus://HOST:PORT/NAME`
    /// (builds with the `milvus` feature); `LocalIndex::open` says what a
    /// directory holds.
    pub fn open(path: Option<&Path>, options: IndexOptions) -> Result<IsccIndex, EngineError> {
        if let Some(uri) = milvus_uri(path) {
            return Self::open_milvus(uri, options, false);
        }
        Ok(IsccIndex {
            inner: Backend::Local(LocalIndex::open(path, options)?),
        })
    }

    #[cfg(feature = "milvus")]
    fn open_milvus(
        uri: &str,
        options: IndexOptions,
        existing: bool,
    ) -> Result<IsccIndex, EngineError> {
        Ok(IsccIndex {
            inner: Backend::Milvus(super::milvus::MilvusIndex::open(uri, options, existing)?),
        })
    }

    #[cfg(not(feature = "milvus"))]
    fn open_milvus(
        uri: &str,
        _options: IndexOptions,
        _existing: bool,
    ) -> Result<IsccIndex, EngineError> {
        Err(EngineError::Unsupported(format!(
            "{}: this build of iscc-vdb has no Milvus backend (build it with the cargo feature `milvus`)",
            uri.split('@').next_back().unwrap_or(uri)
        )))
    }

    /// Open an existing index: into RAM for writing, or with `view`
    /// read-only. A Milvus URI opens the existing index of that name
    /// (`NotFound` when it has none).
    pub fn restore(path: &Path, view: bool) -> Result<IsccIndex, EngineError> {
        if let Some(uri) = milvus_uri(Some(path)) {
            let options = IndexOptions {
                read_only: view,
                ..IndexOptions::default()
            };
            return Self::open_milvus(uri, options, true);
        }
        Ok(IsccIndex {
            inner: Backend::Local(LocalIndex::restore(path, view)?),
        })
    }

    /// Delete the Milvus index `uri` names: every collection it has (the
    /// number dropped; 0 when it has none). Local indexes are directories:
    /// remove those with the file system.
    pub fn drop_remote(uri: &str) -> Result<usize, EngineError> {
        if !uri.starts_with(MILVUS_SCHEME) {
            return Err(EngineError::Invalid(format!(
                "drop_remote: {uri:?} is not a {MILVUS_SCHEME} URI"
            )));
        }
        Self::drop_milvus(uri)
    }

    #[cfg(feature = "milvus")]
    fn drop_milvus(uri: &str) -> Result<usize, EngineError> {
        super::milvus::MilvusIndex::drop_index(uri)
    }

    #[cfg(not(feature = "milvus"))]
    fn drop_milvus(uri: &str) -> Result<usize, EngineError> {
        Self::open_milvus(uri, IndexOptions::default(), true).map(|_| 0)
    }

    /// True for an index on a Milvus server.
    pub fn is_remote(&self) -> bool {
        !matches!(self.inner, Backend::Local(_))
    }

    /// Add entries given as one JSON text (an object or an array).
    pub fn add_json(&self, json: &str) -> Result<Vec<String>, EngineError> {
        each!(self, b => b.add_json(json))
    }

    /// Add entries given as one parsed JSON value (an object or an array).
    pub fn add_values(&self, value: &Value) -> Result<Vec<String>, EngineError> {
        each!(self, b => b.add_values(value))
    }

    /// Add entries; one ISCC-ID per entry, in order.
    pub fn add(&self, entries: &[&Value]) -> Result<Vec<String>, EngineError> {
        each!(self, b => b.add(entries))
    }

    /// Remove entries; the number of index mappings removed.
    pub fn remove(&self, iscc_ids: &[&str]) -> Result<usize, EngineError> {
        each!(self, b => b.remove(iscc_ids))
    }

    /// Remove entries, telling which were removed and which were absent.
    pub fn remove_report(&self, iscc_ids: &[&str]) -> Result<RemoveReport, EngineError> {
        each!(self, b => b.remove_report(iscc_ids))
    }

    /// The stored entry of an ISCC-ID, or `None`.
    pub fn get(&self, iscc_id: &str) -> Result<Option<Value>, EngineError> {
        each!(self, b => b.get(iscc_id))
    }

    /// The stored entry of an ISCC-ID; `NotFound` when there is none.
    pub fn get_one(&self, iscc_id: &str) -> Result<Value, EngineError> {
        self.get(iscc_id)?
            .ok_or_else(|| EngineError::NotFound(iscc_id.to_string()))
    }

    /// [`IsccIndex::get`] for many ISCC-IDs (`None` where absent).
    pub fn get_many(&self, iscc_ids: &[&str]) -> Result<Vec<Option<Value>>, EngineError> {
        each!(self, b => b.get_many(iscc_ids))
    }

    /// Search one query.
    pub fn search(&self, query: &Query, params: &SearchParams) -> Result<IsccMatches, EngineError> {
        each!(self, b => b.search(query, params))
    }

    /// Search many queries at once.
    pub fn search_batch(
        &self,
        queries: &[Query],
        params: &SearchParams,
    ) -> Result<BatchMatches, EngineError> {
        each!(self, b => b.search_batch(queries, params))
    }

    /// Turn the coalescing of concurrent searches on or off (local backend;
    /// a Milvus server batches on its own).
    pub fn set_coalescing(&self, on: bool) {
        each!(self, b => b.set_coalescing(on))
    }

    /// How many concurrent searches were answered together so far.
    pub fn coalesce_stats(&self) -> CoalesceStats {
        each!(self, b => b.coalesce_stats())
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, EngineError> {
        each!(self, b => b.size())
    }

    /// Unit types with at least one stored unit.
    pub fn unit_types(&self) -> Result<Vec<String>, EngineError> {
        each!(self, b => b.unit_types())
    }

    /// Figures of the index.
    pub fn info(&self) -> Result<IndexInfo, EngineError> {
        each!(self, b => b.info())
    }

    /// Per simprint type: bit length, entries and chunks.
    pub fn simprint_types(&self) -> Result<BTreeMap<String, SimprintTypeInfo>, EngineError> {
        each!(self, b => b.simprint_types())
    }

    /// The entries and chunks holding one simprint exactly.
    pub fn simprint_collisions(
        &self,
        kind: &str,
        simprint: &str,
    ) -> Result<SimprintCollisions, EngineError> {
        each!(self, b => b.simprint_collisions(kind, simprint))
    }

    /// Up to `limit` stored entries with keys (ISCC-ID values) from `from`
    /// on, in key order.
    pub fn entries_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Value)>, EngineError> {
        each!(self, b => b.entries_page(from, limit))
    }

    /// A user metadata value.
    pub fn get_metadata(&self, key: &str) -> Result<Option<Value>, EngineError> {
        each!(self, b => b.get_metadata(key))
    }

    /// Set a user metadata value.
    pub fn put_metadata(&self, key: &str, value: &Value) -> Result<(), EngineError> {
        each!(self, b => b.put_metadata(key, value))
    }

    /// The parameters.
    pub fn params(&self) -> IndexParams {
        each!(self, b => b.params())
    }

    /// The directory, or the Milvus URI (without credentials).
    pub fn path(&self) -> &Path {
        each!(self, b => b.path())
    }

    /// Save the derived indexes (local) or flush the collections (Milvus).
    pub fn save(&self) -> Result<(), EngineError> {
        each!(self, b => b.save())
    }

    /// Wait for background work (rotations, merges) to finish.
    pub fn wait_background(&self) -> Result<(), EngineError> {
        each!(self, b => b.wait_background())
    }

    /// Rebuild every unit index from the store.
    pub fn rebuild(&self) -> Result<(), EngineError> {
        each!(self, b => b.rebuild())
    }

    /// Rebuild the unit indexes of some unit types.
    pub fn rebuild_unit_types(&self, unit_types: &[&str]) -> Result<(), EngineError> {
        each!(self, b => b.rebuild_unit_types(unit_types))
    }

    /// Compact the unit indexes; the number of rows dropped.
    pub fn compact(&self) -> Result<usize, EngineError> {
        each!(self, b => b.compact())
    }

    /// A writable in-memory copy of the index.
    pub fn copy(&self) -> Result<IsccIndex, EngineError> {
        match &self.inner {
            Backend::Local(b) => Ok(IsccIndex {
                inner: Backend::Local(b.copy()?),
            }),
            #[cfg(feature = "milvus")]
            Backend::Milvus(b) => Err(b.unsupported("copy")),
        }
    }

    /// Read-only opens: take up what a writer committed since; true when
    /// something changed.
    pub fn refresh(&self) -> Result<bool, EngineError> {
        each!(self, b => b.refresh())
    }

    /// Save (when writable) and close; later calls return `Closed`.
    pub fn close(&self) -> Result<(), EngineError> {
        each!(self, b => b.close())
    }
}
