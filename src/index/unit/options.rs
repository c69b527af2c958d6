//! Parameters of a unit index (persisted with it), per-search options and
//! the index's figures.

use serde::{Deserialize, Serialize};

use super::IndexError;
use crate::index::hnsw::GraphParams;
use crate::metric::MAX_BITS;

/// When a search with no explicit `exact` is an exact scan.
///
/// Serialized as `"auto"` or a row count; parsed from either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExactThreshold {
    /// By measured cost on the machine at hand (see `index::cost`): a search
    /// scans where the scan is estimated cheaper than the graph walk (which
    /// is also exact), and no graph is built while scanning this index's
    /// rows costs less than a graph search would.
    #[default]
    Auto,
    /// Exact while the index holds at most this many rows; the graph is
    /// built past it (0: a graph from the first row, every search by it).
    Rows(usize),
}

impl ExactThreshold {
    /// The fixed answer for an index of `rows` rows (`None`: by cost).
    pub fn fixed(self, rows: usize) -> Option<bool> {
        match self {
            ExactThreshold::Auto => None,
            ExactThreshold::Rows(n) => Some(rows <= n),
        }
    }
}

impl From<usize> for ExactThreshold {
    fn from(rows: usize) -> ExactThreshold {
        ExactThreshold::Rows(rows)
    }
}

impl Serialize for ExactThreshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ExactThreshold::Auto => s.serialize_str("auto"),
            ExactThreshold::Rows(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for ExactThreshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ExactThreshold, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ExactThreshold;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"auto\" or a row count")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<ExactThreshold, E> {
                usize::try_from(n)
                    .map(ExactThreshold::Rows)
                    .map_err(|_| E::custom(format!("exact_threshold {n} is too large")))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<ExactThreshold, E> {
                u64::try_from(n)
                    .map_err(|_| E::custom(format!("exact_threshold {n} is negative")))
                    .and_then(|n| self.visit_u64(n))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ExactThreshold, E> {
                match v {
                    "auto" => Ok(ExactThreshold::Auto),
                    _ => Err(E::custom(format!(
                        "exact_threshold {v:?} (expected \"auto\" or a row count)"
                    ))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Whether a unit index partitions its rows into lists by itself (see
/// `unit/retrain.rs`). Serialized as `"auto"`, `"always"` or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Partition {
    /// With `exact_threshold: auto`: partitioned from a few tens of
    /// thousands of rows when probing lists is measured at least twice as
    /// fast as the exact scan at tie-aware recall@10 0.99 on the index's own
    /// rows, retrained as it grows; searches then probe lists and no graph
    /// is built.
    #[default]
    Auto,
    /// As `Auto`, without the cost measurement: partitioned from a few
    /// tens of thousands of rows whatever a probe costs beside the scan
    /// (latency that grows with the lists, not with the index).
    Always,
    /// Only an explicit [`UnitIndex::partition`](super::UnitIndex::partition)
    /// partitions.
    Off,
}

// By hand so that a bad value names the option (serde's derived message
// names only the value).
impl<'de> Deserialize<'de> for Partition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Partition, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Partition;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("partition \"auto\", \"always\" or \"off\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Partition, E> {
                match v {
                    "auto" => Ok(Partition::Auto),
                    "always" => Ok(Partition::Always),
                    "off" => Ok(Partition::Off),
                    _ => Err(E::custom(format!(
                        "partition {v:?} (expected \"auto\", \"always\" or \"off\")"
                    ))),
                }
            }
        }
        d.deserialize_str(Visitor)
    }
}

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
    /// When a search is exact by default (and so whether a graph is built).
    pub exact_threshold: ExactThreshold,
    /// Whether the index partitions itself (files without it: `auto`).
    #[serde(default)]
    pub partition: Partition,
}

impl Default for UnitIndexOptions {
    fn default() -> UnitIndexOptions {
        UnitIndexOptions {
            connectivity: 16,
            expansion_add: 128,
            // At 1M codes of the bench dataset: recall@10 0.987 at ~2,400 q/s
            // (64 gives 0.97 at ~4,200 q/s); smaller indexes are exact anyway.
            expansion_search: 128,
            max_dim: MAX_BITS,
            exact_threshold: ExactThreshold::Auto,
            partition: Partition::Auto,
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
        check_max_dim(self.max_dim).map_err(IndexError::Option)?;
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
    /// `Some(true)`: exact scan; `Some(false)`: the approximate path (a
    /// probe of the nearest lists of a partitioned index, else HNSW);
    /// `None`: a partitioned index probes, another decides by its
    /// `exact_threshold`; a bounded search scans (see `max_distance`).
    pub exact: Option<bool>,
    /// HNSW expansion for this call only (the index default otherwise).
    pub expansion_search: Option<usize>,
    /// Drop results farther than this NPHD. A bounded search is complete:
    /// unless `exact` is `Some(false)` it scans every row (a partitioned
    /// index its nearest lists first, so rows beyond the bound are dropped
    /// on their first words), since a graph walk or a probe of the nearest
    /// lists may miss rows within the bound (measured at 10M codes: a
    /// probe tuned to recall@10 0.99 finds 0.5-0.8 of the rows within NPHD
    /// 0.25). `exact: Some(false)` accepts that for speed.
    pub max_distance: Option<f32>,
    /// The NPHD within which the caller needs the neighbours (the results
    /// beyond it are still returned, but it has no use for them): a
    /// partitioned index then probes by default only the lists its
    /// calibration found to hold the near neighbours, when this is at most
    /// [`NEAR`](super::NEAR) (see `index::unit::retrain`; at 1M codes of
    /// the bench dataset 37 lists of 400 against 102, finding 0.994 of the
    /// neighbours within 0.25). Unlike `max_distance` this neither bounds
    /// nor completes a search; `nprobe` overrides it.
    pub recall_within: Option<f32>,
    /// Threads for a batch search (`None`: all cores).
    pub threads: Option<usize>,
    /// Lists a partitioned index probes for this call (`None`: the
    /// index's default, chosen when it was partitioned; see
    /// [`UnitIndex::partition`](super::UnitIndex::partition)).
    pub nprobe: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            count: DEFAULT_COUNT,
            exact: None,
            expansion_search: None,
            max_distance: None,
            recall_within: None,
            threads: None,
            nprobe: None,
        }
    }
}

impl SearchOptions {
    /// True when only the exact scan answers this search: asked for
    /// (`exact: Some(true)`), or bounded without `exact: Some(false)` (see
    /// `max_distance`).
    pub(crate) fn must_scan(&self) -> bool {
        self.exact == Some(true) || (self.exact.is_none() && self.max_distance.is_some())
    }

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
    /// Rows per length: 64, 128, 192, 256 bits (rows of other byte lengths,
    /// low-level indexes only, count in `len` alone).
    pub len_by_bits: [usize; 4],
    /// Graph capacity (rows).
    pub capacity: usize,
    /// Rows in the graph (0 while the graph is deferred).
    pub graph_len: usize,
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
    /// Lists of the partition (1 when not partitioned).
    pub lists: usize,
    /// Lists a search probes by default (1 when not partitioned).
    pub nprobe: usize,
    /// True while a partition is trained in the background or waits to be
    /// adopted.
    pub partition_pending: bool,
    /// What the last automatic partition attempt measured and decided
    /// (`None` before the first finished).
    pub last_partition: Option<super::PartitionReport>,
}

/// A longest vector of whole bytes, 8 to 256 bits (iscc-usearch's rule,
/// in its words).
pub(crate) fn check_max_dim(bits: usize) -> Result<(), String> {
    if bits > MAX_BITS {
        Err(format!("max_dim {bits}: `max_dim` must be <= {MAX_BITS}"))
    } else if bits == 0 || !bits.is_multiple_of(8) {
        Err(format!(
            "max_dim {bits}: `max_dim` must be a multiple of 8 (from 8 to {MAX_BITS})"
        ))
    } else {
        Ok(())
    }
}
