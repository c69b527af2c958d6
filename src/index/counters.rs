//! What a search cost, counted while it runs: the members (rows or graph
//! nodes) it looked at and the distances it computed. The counts are
//! atomic because one query's unit types and shards are searched on
//! several threads at once.

use std::sync::atomic::{AtomicU64, Ordering};

/// The cost of one query's search, summed over every unit index and shard
/// it touched.
///
/// * An exact scan looks at every row of the shard and computes its
///   distance: both counts grow by the rows scanned.
/// * An HNSW graph walk: `computed` grows by the NPHD computations the
///   walk made (counted where the metric runs, so the greedy descent
///   through the upper layers is included, as in usearch's own
///   `computed_distances`); `visited` by the graph nodes the walk took into
///   its candidate set on the base layer (usearch asks the search's filter
///   once per such node, and the filter counts).
#[derive(Debug, Default)]
pub struct SearchCounters {
    visited: AtomicU64,
    computed: AtomicU64,
}

impl SearchCounters {
    /// Add the cost of one part of a search.
    pub fn add(&self, visited: u64, computed: u64) {
        self.visited.fetch_add(visited, Ordering::Relaxed);
        self.computed.fetch_add(computed, Ordering::Relaxed);
    }

    /// Members (rows, graph nodes) looked at.
    pub fn visited(&self) -> u64 {
        self.visited.load(Ordering::Relaxed)
    }

    /// Distances computed.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::Relaxed)
    }
}
