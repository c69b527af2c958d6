//! Similarity indexes over ISCC unit bodies.
//!
//! * [`UnitIndex`]: one usearch HNSW graph under NPHD plus the flat store for
//!   exact scans (the equivalent of iscc-usearch's `NphdIndex`).
//! * [`bloom::ScalableBloom`]: the scalable bloom filter of the sharded index.

pub mod bloom;
pub(crate) mod durable;
pub(crate) mod flat;
mod graph;
mod hnsw;
pub mod sharded;
mod unit;

pub use flat::Hit;
pub use sharded::{
    Match, ShardKey, ShardedError, ShardedIndex, ShardedIndex128, ShardedOptions, ShardedStats,
    VectorKind,
};
pub use unit::{
    graph_path, IndexError, SearchOptions, UnitIndex, UnitIndexOptions, UnitIndexStats,
    DEFAULT_EXACT_THRESHOLD,
};
