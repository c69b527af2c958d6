//! Similarity indexes over ISCC unit bodies.
//!
//! * [`UnitIndex`]: one usearch HNSW graph under NPHD plus the flat store for
//!   exact scans (the equivalent of iscc-usearch's `NphdIndex`).
//! * [`bloom::ScalableBloom`]: the scalable bloom filter of the sharded index.

pub mod bloom;
pub mod dataset;
pub(crate) mod flat;
mod hnsw;
mod unit;

pub use flat::Hit;
pub use unit::{
    graph_path, IndexError, SearchOptions, UnitIndex, UnitIndexOptions, UnitIndexStats,
};
