//! The top-k of one query's scan, and the bound several scans of one query
//! share (row ranges of one store, or the shards of a sharded index, scanned
//! in parallel).

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering};

use super::Hit;

/// The best known `k`-th distance of one query over several scans that run
/// at once: each scan whose heap is full lowers it to its own `k`-th
/// distance, and every scan reads it as a threshold beside its own.
///
/// Sound because a full heap of one scan holds `k` real rows at or under its
/// `k`-th distance, so the global `k`-th distance is no larger: a row further
/// away than the bound cannot be among the global top `k`. Rows *at* the
/// bound still pass (thresholds are inclusive), so ties are decided by key
/// exactly as in one scan, and the union of the scans' heaps holds the
/// global top `k` — results equal those of a single scan.
#[derive(Debug)]
pub(crate) struct SharedBound {
    /// `f32` bits of a distance in `[0, 1]` or `+inf`: for non-negative
    /// floats the bit patterns order as the values do, so `fetch_min` on the
    /// bits is `min` on the distances.
    bits: AtomicU32,
}

impl Default for SharedBound {
    fn default() -> SharedBound {
        SharedBound {
            bits: AtomicU32::new(f32::INFINITY.to_bits()),
        }
    }
}

impl SharedBound {
    /// The bound (`+inf` until a scan's heap is full).
    #[inline]
    pub(crate) fn get(&self) -> f32 {
        f32::from_bits(self.bits.load(Ordering::Relaxed))
    }

    /// Lower the bound to `distance` if that is smaller.
    #[inline]
    fn lower(&self, distance: f32) {
        debug_assert!(distance >= 0.0, "distances are non-negative");
        self.bits.fetch_min(distance.to_bits(), Ordering::Relaxed);
    }
}

/// Top-k of one query's scan.
pub(crate) struct TopK<'b> {
    pub(super) k: usize,
    max_distance: f32,
    pub(super) heap: BinaryHeap<Hit>,
    shared: Option<&'b SharedBound>,
}

impl<'b> TopK<'b> {
    pub(super) fn new(k: usize, max_distance: Option<f32>) -> TopK<'b> {
        TopK::shared(k, max_distance, None)
    }

    /// A top-k that reads and lowers `shared` (see [`SharedBound`]).
    pub(super) fn shared(
        k: usize,
        max_distance: Option<f32>,
        shared: Option<&'b SharedBound>,
    ) -> TopK<'b> {
        TopK {
            k,
            max_distance: max_distance.unwrap_or(f32::INFINITY),
            // A large `k` with a distance bound (a range search) mostly
            // stays far from full: grow as hits come, not all up front.
            heap: BinaryHeap::with_capacity(k.min(1024) + 1),
            shared,
        }
    }

    /// The distance a row must not exceed to enter.
    #[inline]
    fn worst(&self) -> f32 {
        let own = match self.heap.peek() {
            Some(w) if self.heap.len() >= self.k => w.distance.min(self.max_distance),
            _ => self.max_distance,
        };
        self.shared.map_or(own, |s| own.min(s.get()))
    }

    /// The largest Hamming count that could still enter, for `bits` compared.
    #[inline]
    pub(super) fn threshold(&self, bits: u32) -> u32 {
        let worst = self.worst();
        if worst >= 1.0 {
            return bits;
        }
        // The epsilon keeps exact ties (decided by key) despite rounding.
        ((worst * bits as f32) + 1e-3)
            .floor()
            .clamp(0.0, bits as f32) as u32
    }

    /// Whether the threshold still admits every row: the heap is not full
    /// and no bound (given, or shared by another scan) tightens it yet.
    #[inline]
    pub(super) fn filling(&self) -> bool {
        self.heap.len() < self.k && self.worst() >= 1.0
    }

    /// Offer a row the kernel found within [`TopK::threshold`].
    #[inline]
    pub(super) fn offer(&mut self, hit: Hit) {
        if hit.distance > self.max_distance {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push(hit);
        } else if let Some(mut top) = self.heap.peek_mut() {
            if hit < *top {
                // Replace in place: one sift instead of a pop and a push.
                *top = hit;
            }
        }
    }

    /// Offer a row compared without a threshold (byte-granular rows):
    /// beyond the shared bound it cannot be among the top k of all scans.
    #[inline]
    pub(super) fn offer_unfiltered(&mut self, hit: Hit) {
        if self.shared.is_none_or(|s| hit.distance <= s.get()) {
            self.offer(hit);
        }
    }

    /// Lower the shared bound to this heap's `k`-th distance, once full.
    /// Called per block of rows, not per row: the other scans read the bound
    /// only when they start a block, so publishing more often would only add
    /// atomic read-modify-writes on a line the scans share.
    #[inline]
    pub(super) fn publish(&self) {
        if let (Some(shared), true) = (self.shared, self.heap.len() >= self.k) {
            if let Some(w) = self.heap.peek() {
                if w.distance < shared.get() {
                    shared.lower(w.distance);
                }
            }
        }
    }

    pub(super) fn into_sorted(self) -> Vec<Hit> {
        self.heap.into_sorted_vec()
    }
}
