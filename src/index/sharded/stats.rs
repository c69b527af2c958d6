//! The figures of a sharded index (`stats()`), the reference's fields and
//! more.

use crate::sync::lock;
use serde::Serialize;
use std::path::PathBuf;

use super::key::{KeyKind, ShardKey};
use super::{ShardedIndex, VectorKind};

/// Bloom filter figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BloomStats {
    /// Keys added since the last rebuild.
    pub count: u64,
    /// Filters in the chain.
    pub filters: usize,
    /// Bytes of bit arrays.
    pub size_bytes: usize,
    /// Target false positive rate.
    pub error_rate: f64,
}

/// Figures of a sharded index (the reference's `stats()` fields and more).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShardedStats {
    /// Live rows (exact).
    pub total_vectors: usize,
    /// Longest vector in bits (`max_dim`, or the Hamming length).
    pub dimensions: usize,
    /// `"nphd"` or `"hamming"`.
    pub metric: &'static str,
    /// Element type of the stored rows.
    pub dtype: &'static str,
    /// HNSW connectivity.
    pub connectivity: usize,
    /// HNSW expansion at insertion.
    pub expansion_add: usize,
    /// HNSW expansion at search.
    pub expansion_search: usize,
    /// Sealed (memory-mapped or rotating) shards.
    pub view_shards: usize,
    /// Rows in the active shard.
    pub active_shard_vectors: usize,
    /// Rotation threshold in bytes.
    pub shard_size: u64,
    /// Changes since the last save.
    pub dirty: u64,
    /// Tombstoned keys.
    pub tombstones: usize,
    /// The bloom filter.
    pub bloom_filter: BloomStats,
    /// Estimated heap bytes: the active shard's graph (as usearch reports
    /// it) plus ~40 bytes a row of flat store and key map, the bloom filter,
    /// ~40 bytes a tombstone (sealed shards are memory-mapped, not counted).
    pub memory_usage: usize,
    /// Directory.
    pub path: PathBuf,
    /// True when opened read-only.
    pub read_only: bool,
    /// Key kind.
    pub key_kind: KeyKind,
    /// Shard rotations written in the background and not yet done.
    pub pending_rotations: usize,
    /// Rows hidden by tombstones (removed by `compact`).
    pub dead_rows: u64,
    /// Rows in shards partitioned into lists (searches probe their
    /// nearest lists; see [`Partition`](crate::index::Partition)).
    pub partitioned_rows: usize,
}

impl<K: ShardKey> ShardedIndex<K> {
    /// Figures of the index.
    pub fn stats(&self) -> ShardedStats {
        let st = self.read();
        let o = &self.inner.options;
        let (dimensions, metric) = match o.vectors {
            VectorKind::Nphd { max_dim } => (max_dim, "nphd"),
            VectorKind::Hamming { bits } => (bits, "hamming"),
        };
        let active_mem = st.active.as_ref().map_or(0, |a| {
            let s = a.index.stats();
            s.graph_memory + s.len * 40
        });
        ShardedStats {
            total_vectors: st.len(),
            dimensions,
            metric,
            dtype: "b1x8",
            connectivity: o.connectivity,
            expansion_add: o.expansion_add,
            expansion_search: o.expansion_search,
            view_shards: st.sealed.len(),
            active_shard_vectors: st.active.as_ref().map_or(0, |a| a.len()),
            shard_size: o.shard_size,
            dirty: self.dirty(),
            tombstones: st.tombstones.len(),
            bloom_filter: BloomStats {
                count: st.bloom.count(),
                filters: st.bloom.filters(),
                size_bytes: st.bloom.size_bytes(),
                error_rate: o.bloom_error_rate,
            },
            memory_usage: active_mem + st.bloom.size_bytes() + st.tombstones.len() * 40,
            path: self.inner.dir.clone(),
            read_only: self.read_only(),
            key_kind: self.inner.kind,
            pending_rotations: *lock(&self.inner.pending),
            dead_rows: st.dead_total(),
            partitioned_rows: st
                .shards()
                .iter()
                .filter(|s| s.index.lists().0 > 1)
                .map(|s| s.len())
                .sum(),
        }
    }

    /// The last background rotation failure, if any (cleared by a
    /// successful `drain_rotations`/`save`).
    pub fn rotation_error(&self) -> Option<String> {
        self.read().rotation_error.as_ref().map(|e| e.to_string())
    }
}
