//! Parameters of a unit index (persisted with it), per-search options and
//! the index's figures.

use serde::{Deserialize, Serialize};

use super::IndexError;
use crate::index::hnsw::GraphParams;

/// Index size at or under which searches are exact by default: below it the
/// SIMD scan is faster than the graph and exact (`ivdb-bench crossover`:
/// equal speed near 300,000 bench codes on one AVX-512 core).
pub const DEFAULT_EXACT_THRESHOLD: usize = 300_000;

/// Matches per query when the caller names no count (the index, the
/// engine and every face).
pub const DEFAULT_COUNT: usize = 10;

/// Parameters of a unit index; all are persisted and restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitIndexOptions {
    /// HNSW connectivity (M): neighbours per node.
    pub connectivity: usize,
    /// HNSW expansion at insertion (efConstruction).
    pub expansion_add: usize,
    /// HNSW expansion at search (ef), default for every search.
    pub expansion_search: usize,
    /// Longest body in bits (64, 128, 192 or 256).
    pub max_dim: usize,
    /// Searches are exact while the index holds at most this many rows.
    pub exact_threshold: usize,
}

impl Default for UnitIndexOptions {
    fn default() -> UnitIndexOptions {
        UnitIndexOptions {
            connectivity: 16,
            expansion_add: 128,
            // At 1M codes of the bench dataset: recall@10 0.987 at ~2,400 q/s
            // (64 gives 0.97 at ~4,200 q/s); smaller indexes are exact anyway.
            expansion_search: 128,
            max_dim: 256,
            exact_threshold: DEFAULT_EXACT_THRESHOLD,
        }
    }
}

impl UnitIndexOptions {
    pub(super) fn validate(&self) -> Result<(), IndexError> {
        if !(2..=1024).contains(&self.connectivity) {
            return Err(IndexError::Option(format!(
                "connectivity {} (expected 2..=1024)",
                self.connectivity
            )));
        }
        if self.expansion_add == 0 || self.expansion_search == 0 {
            return Err(IndexError::Option("expansions must be at least 1".into()));
        }
        if ![64, 128, 192, 256].contains(&self.max_dim) {
            return Err(IndexError::Option(format!(
                "max_dim {} (expected 64, 128, 192 or 256)",
                self.max_dim
            )));
        }
        Ok(())
    }

    pub(super) fn graph(&self) -> GraphParams {
        GraphParams {
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            expansion_search: self.expansion_search,
        }
    }
}

/// Options of one search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Number of results wanted.
    pub count: usize,
    /// `Some(true)`: exact scan; `Some(false)`: HNSW; `None`: exact while
    /// the index is at most `exact_threshold` rows.
    pub exact: Option<bool>,
    /// HNSW expansion for this call only (the index default otherwise).
    pub expansion_search: Option<usize>,
    /// Drop results farther than this NPHD.
    pub max_distance: Option<f32>,
    /// Threads for a batch search (`None`: all cores).
    pub threads: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            count: DEFAULT_COUNT,
            exact: None,
            expansion_search: None,
            max_distance: None,
            threads: None,
        }
    }
}

impl SearchOptions {
    /// Default options with `count` results.
    pub fn count(count: usize) -> SearchOptions {
        SearchOptions {
            count,
            ..SearchOptions::default()
        }
    }
}

/// Figures of a unit index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitIndexStats {
    /// Rows stored.
    pub len: usize,
    /// Rows per length: 64, 128, 192, 256 bits.
    pub len_by_bits: [usize; 4],
    /// Graph capacity (rows).
    pub capacity: usize,
    /// The persisted parameters.
    pub options: UnitIndexOptions,
    /// Bytes usearch reports for the graph in memory.
    pub graph_memory: usize,
    /// Bytes the graph takes when saved.
    pub graph_serialized: usize,
    /// Exact-scan kernel in use.
    pub kernel: &'static str,
    /// True when memory-mapped read-only.
    pub read_only: bool,
    /// Changes since the last save/load/view/reset.
    pub dirty: u64,
}
