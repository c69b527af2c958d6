//! Similarity indexes over ISCC unit bodies.
//!
//! * [`UnitIndex`]: one usearch HNSW graph under NPHD plus the flat store for
//!   exact scans (the equivalent of iscc-usearch's `NphdIndex`).
//! * [`bloom::ScalableBloom`]: the scalable bloom filter of the sharded index.

pub mod bloom;
mod calibrate;
pub(crate) mod cost;
mod counters;
pub(crate) mod durable;
pub(crate) mod flat;
mod graph;
mod hnsw;
pub(crate) mod ivf;
mod sharded;
mod unit;

pub use crate::combine::CoalesceStats;
pub use counters::SearchCounters;
pub use flat::Hit;
pub use sharded::{
    BloomStats, KeyKind, Match, MergeReport, ShardKey, ShardedError, ShardedIndex, ShardedIndex128,
    ShardedIter, ShardedOptions, ShardedStats, VectorKind, MIN_SHARD_SIZE, SHARDED_FORMAT_VERSION,
};
pub use unit::{
    graph_path, ExactThreshold, IndexError, Partition, PartitionReport, SearchOptions, UnitIndex,
    UnitIndexOptions, UnitIndexStats, AUTO_PARTITION_ROWS, DEFAULT_COUNT, NEAR, NEAR_RECALL,
    RECALIBRATE, ROWS_PER_LIST, SETTLE, TARGET_RECALL,
};
