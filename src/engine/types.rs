//! The engine's public value types: parameters and options of an index,
//! queries and search parameters, and the figures `info` reports.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::features::FeatureSet;
use super::{EngineError, DEFAULT_UNIT_THRESHOLD};
use crate::index::{ExactThreshold, Partition, ShardedOptions};

/// On-disk format version of an index directory (stored in LMDB metadata).
/// Version 2 added per-unit-type entry counts, journal sequence numbers
/// that never repeat and unit index directories named in the store;
/// version 3 the store's simprint rows (exact collisions, document
/// frequencies, one bit length per simprint type). Older indexes are
/// upgraded on their first writable open; a read-only open of a version 2
/// index sees no simprint rows.
pub const ENGINE_FORMAT_VERSION: u32 = 3;

/// Parameters fixed when an index is created (stored, restored on open).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexParams {
    /// Longest unit in bits (64, 128, 192 or 256).
    pub max_dim: usize,
    /// HNSW connectivity.
    pub connectivity: usize,
    /// HNSW expansion at insertion.
    pub expansion_add: usize,
    /// HNSW expansion at search.
    pub expansion_search: usize,
    /// When a shard is searched exactly by default: by measured cost
    /// (`Auto`, the default) or at most a number of rows.
    pub exact_threshold: ExactThreshold,
    /// Shard rotation size in bytes.
    pub shard_size: u64,
    /// Whether unit-index shards partition their rows into lists by
    /// themselves as they grow (`Auto`, the default: when measured to pay;
    /// see [`Partition`]). Stored parameters without it: `Auto`.
    #[serde(default)]
    pub partition: Partition,
}

impl Default for IndexParams {
    fn default() -> IndexParams {
        let s = ShardedOptions::default();
        IndexParams {
            max_dim: crate::metric::MAX_BITS,
            connectivity: s.connectivity,
            expansion_add: s.expansion_add,
            expansion_search: s.expansion_search,
            exact_threshold: s.exact_threshold,
            shard_size: s.shard_size,
            partition: s.partition,
        }
    }
}

/// How to open an index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexOptions {
    /// Parameters for a new index (an existing one keeps its own).
    pub params: IndexParams,
    /// The realm (0 or 1) of a new index; `None`: the realm of the first
    /// ISCC-ID added (0 when IDs are generated).
    pub realm: Option<u8>,
    /// fsync every commit (in-memory indexes never do).
    pub durable: bool,
    /// Open read-only.
    pub read_only: bool,
    /// Hub id of generated ISCC-IDs.
    pub hub_id: u16,
    /// Default `unit_threshold` of searches.
    pub unit_threshold: f32,
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            params: IndexParams::default(),
            realm: None,
            durable: true,
            read_only: false,
            hub_id: 0,
            unit_threshold: DEFAULT_UNIT_THRESHOLD,
        }
    }
}

/// A search query: an ISCC-CODE or units (units win when both are given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// An ISCC-CODE (or unit) to decompose.
    #[serde(default)]
    pub iscc_code: Option<String>,
    /// Granular features: the entries sharing segments with them are
    /// returned as [`IsccMatches::chunk_matches`]. Read from the
    /// `features` or `simprints` member of a query (see `features.rs`).
    ///
    /// [`IsccMatches::chunk_matches`]: super::IsccMatches::chunk_matches
    #[serde(skip)]
    pub features: Vec<FeatureSet>,
    /// "More like this": an indexed entry's ISCC-ID, whose units and
    /// features are the query; the entry itself is left out of the
    /// results. It takes precedence: the other fields are then ignored (as
    /// in iscc-search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iscc_id: Option<String>,
    /// ISCC-UNITs (any length 64–256 bits).
    #[serde(default)]
    pub units: Option<Vec<String>>,
}

impl Query {
    /// A query by ISCC-CODE.
    pub fn code(code: impl Into<String>) -> Query {
        Query {
            iscc_code: Some(code.into()),
            ..Query::default()
        }
    }

    /// A query by units.
    pub fn units<S: Into<String>>(units: impl IntoIterator<Item = S>) -> Query {
        Query {
            units: Some(units.into_iter().map(Into::into).collect()),
            ..Query::default()
        }
    }

    /// A query by granular features.
    pub fn features(features: Vec<FeatureSet>) -> Query {
        Query {
            features,
            ..Query::default()
        }
    }

    /// "More like this": the units and features of the indexed entry
    /// `iscc_id`, which is left out of the results.
    pub fn like(iscc_id: impl Into<String>) -> Query {
        Query {
            iscc_id: Some(iscc_id.into()),
            ..Query::default()
        }
    }

    /// True when the query asks more than a unit search (features, or
    /// another entry's ISCC-ID).
    pub(crate) fn is_granular(&self) -> bool {
        !self.features.is_empty() || self.iscc_id.is_some()
    }
}

/// Options of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    /// Matches wanted.
    pub count: usize,
    /// Exhaustive search in every unit index.
    pub exact: bool,
    /// Unit scores below this are dropped (index default when `None`).
    pub unit_threshold: Option<f32>,
    /// A stored chunk matches a query simprint when their similarity is at
    /// least this ([`DEFAULT_SIMPRINT_THRESHOLD`] when `None`).
    ///
    /// [`DEFAULT_SIMPRINT_THRESHOLD`]: super::DEFAULT_SIMPRINT_THRESHOLD
    pub simprint_threshold: Option<f32>,
    /// Chunk matches list their matched segments.
    pub detail: bool,
}

/// The most matches one search may ask for: larger counts are refused
/// (every face inherits the limit), so no caller can make the engine
/// allocate without bound.
pub const MAX_SEARCH_COUNT: usize = 100_000;

/// The most units one query may carry (an ISCC has one per unit type; a
/// query is one search per unit).
pub const MAX_QUERY_UNITS: usize = 64;

impl SearchParams {
    /// Refuse parameters the engine will not run.
    pub(crate) fn check(&self) -> Result<(), EngineError> {
        if self.count > MAX_SEARCH_COUNT {
            return Err(EngineError::Invalid(format!(
                "count {} exceeds the maximum of {MAX_SEARCH_COUNT}",
                self.count
            )));
        }
        for (name, t) in [
            ("unit_threshold", self.unit_threshold),
            ("simprint_threshold", self.simprint_threshold),
        ] {
            if let Some(t) = t.filter(|t| !(0.0..=1.0).contains(t)) {
                return Err(EngineError::Invalid(format!(
                    "{name} {t} (expected a number from 0 to 1)"
                )));
            }
        }
        Ok(())
    }
}

impl Default for SearchParams {
    fn default() -> SearchParams {
        SearchParams {
            count: super::DEFAULT_COUNT,
            exact: false,
            unit_threshold: None,
            simprint_threshold: None,
            detail: false,
        }
    }
}

/// Figures of one unit index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitTypeInfo {
    /// Units in the unit index.
    pub len: usize,
    /// Entries with a unit of this type, as the store counts them (equal to
    /// `len` unless a writer beside this read-only open changed entries
    /// after it opened).
    pub entries: u64,
    /// Shards.
    pub shards: usize,
    /// Tombstoned keys awaiting compaction.
    pub tombstones: usize,
    /// Units in shards partitioned into lists (a default search probes
    /// their nearest lists; `exact` scans them all).
    pub partitioned: usize,
    /// Bytes the unit index holds in memory (vectors, graphs, keys; 0 for
    /// a Milvus index, whose server holds them).
    pub memory_bytes: u64,
}

/// Figures of an index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexInfo {
    /// Directory (a temporary one for in-memory indexes).
    pub path: PathBuf,
    /// Entries.
    pub size: u64,
    /// Unit types with an index.
    pub unit_types: Vec<String>,
    /// Per unit type.
    pub units: BTreeMap<String, UnitTypeInfo>,
    /// Per simprint type of the entries' granular features: bit length,
    /// entries and chunks.
    pub simprints: BTreeMap<String, super::SimprintTypeInfo>,
    /// Realm, once fixed.
    pub realm: Option<u8>,
    /// Parameters.
    pub max_dim: usize,
    /// Opened read-only.
    pub read_only: bool,
    /// In-memory (temporary) index.
    pub in_memory: bool,
    /// Commits are fsync'd.
    pub durable: bool,
    /// Journal records not yet saved into the unit indexes.
    pub journal_pending: usize,
    /// Bytes of the LMDB data file.
    pub store_bytes: u64,
    /// Format version.
    pub format_version: u32,
    /// What the open found wrong in the derived indexes and how it was
    /// repaired (also written to stderr); empty when all was consistent.
    pub repairs: Vec<String>,
}

/// What [`IsccIndex::remove_report`](super::IsccIndex::remove_report) did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RemoveReport {
    /// ISCC-IDs removed, in request order (canonical form).
    pub removed: Vec<String>,
    /// ISCC-IDs that were not in the index.
    pub not_found: Vec<String>,
    /// Index mappings removed (unit index rows and INSTANCE rows).
    pub mappings: usize,
}
