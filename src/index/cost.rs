//! What a search costs on this machine, measured while searches run, so a
//! search is split across the thread pool only where that pays.
//!
//! Splitting one query's work (its unit types, a unit type's shards) over
//! rayon is nearly free on a pool thread, but a caller from outside the
//! pool — a C, Python, Go or Node thread, the REST server's blocking
//! threads — hands the work to the pool and sleeps until it is done: on a
//! 2-core machine that round trip cost a search of a small index from
//! Python 13 µs of its 29. So such a caller splits only when the time the
//! split saves (with `p` threads, all but `1/p` of the work) is estimated to
//! exceed the round trip; with one thread in the pool, never.
//!
//! Every figure is measured here, in this process: the round trip once (the
//! median of 15 `rayon::join`s from the calling thread, after one that
//! starts the pool), the cost of a scanned row and of a graph distance as
//! moving averages over the searches run so far. Until a kind of search has
//! been measured, its estimate is unknown and the search is split, as
//! before this module existed.
//!
//! The same figures choose between the exact scan and the graph where an
//! index's `exact_threshold` is `auto` ([`graph_pays`]): a graph search is
//! modelled from a measured reference — a graph searched in this process
//! (its rows and nanoseconds per search, see [`note_graph`]), or before
//! any, the calibration of [`super::calibrate`] — as growing with the log of
//! the rows and linearly with `expansion × connectivity`; a scan as rows ×
//! the measured cost per row.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Picoseconds per row of an exact scan (moving average; 0: not measured).
static SCAN_PS_PER_ROW: AtomicU64 = AtomicU64::new(0);
/// Picoseconds per distance of a graph walk (moving average; 0: none yet).
static GRAPH_PS_PER_DISTANCE: AtomicU64 = AtomicU64::new(0);
/// Nanoseconds of one hand-off to the pool and back, from outside it.
static HANDOFF_NS: OnceLock<f64> = OnceLock::new();
/// Picoseconds per row of exact scans of at least [`LARGE_SCAN`] rows
/// (moving average; 0: none yet): the figure path choices use.
static LARGE_SCAN_PS_PER_ROW: AtomicU64 = AtomicU64::new(0);
/// Scans of this many rows or more measure the per-row cost: in smaller
/// ones the per-query work (the first heap fills, the result) weighs in,
/// and a per-row figure from them would overprice big scans.
pub(crate) const LARGE_SCAN: u64 = 32_768;
/// The latest graph measured at its real size (see [`note_graph`]).
static GRAPH_REF: Mutex<Option<GraphRef>> = Mutex::new(None);

/// A graph search cost measured on a real graph.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct GraphRef {
    /// Rows of the graph.
    pub(crate) rows: f64,
    /// Nanoseconds per search.
    pub(crate) ns: f64,
    /// `max(expansion_search, count) × connectivity` of those searches.
    pub(crate) work: f64,
}

impl GraphRef {
    /// Modelled nanoseconds of a search of a graph of `rows` rows.
    fn scaled(&self, rows: f64, work: f64) -> f64 {
        let log = |n: f64| n.max(2.0).ln();
        self.ns * (log(rows) / log(self.rows)) * (work / self.work)
    }
}

/// Record a graph search cost measured at a graph's real size: later
/// choices model graphs from it instead of the calibration.
pub(crate) fn note_graph(reference: GraphRef) {
    if reference.rows >= 2.0 && reference.ns > 0.0 && reference.work > 0.0 {
        *crate::sync::lock(&GRAPH_REF) = Some(reference);
    }
}

/// Nanoseconds an exact scan spends per row (measured, else calibrated).
pub(crate) fn scan_ns_per_row() -> f64 {
    estimate_ns(Work::Scan(1_000_000))
        .map_or_else(|| super::calibrate::prior().scan_ns_per_row, |ns| ns / 1e6)
}

/// Modelled nanoseconds of one graph search over `rows` rows, walking
/// `work` = `max(expansion, count) × connectivity`.
pub(crate) fn graph_search_ns(rows: usize, work: usize) -> f64 {
    let reference = *crate::sync::lock(&GRAPH_REF);
    let reference = reference.unwrap_or_else(|| super::calibrate::prior().graph);
    reference.scaled(rows as f64, work as f64)
}

/// Whether an index of `rows` rows searches faster by a graph than by the
/// scan (`work` as in [`graph_search_ns`]). A graph walk computes up to
/// `2 × work` distances, each dearer than a scanned row, so an index of
/// fewer rows always scans, and nothing is calibrated for it.
pub(crate) fn graph_pays(rows: usize, work: usize) -> bool {
    if rows <= 2 * work {
        return false;
    }
    graph_search_ns(rows, work) < rows as f64 * scan_ns_per_row()
}

/// The kind of work a unit-index search did.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Work {
    /// An exact scan of this many rows.
    Scan(u64),
    /// A graph walk that computed this many distances.
    Graph(u64),
}

fn slot(work: Work) -> (&'static AtomicU64, u64) {
    match work {
        Work::Scan(n) => (&SCAN_PS_PER_ROW, n),
        Work::Graph(n) => (&GRAPH_PS_PER_DISTANCE, n),
    }
}

/// Fold one measured search into the averages (weight 1/8 for the new one;
/// concurrent updates may lose one another, which an average can afford).
pub(crate) fn record(work: Work, elapsed: Duration) {
    if let Work::Scan(rows) = work {
        if rows >= LARGE_SCAN {
            fold(&LARGE_SCAN_PS_PER_ROW, rows, elapsed);
        }
    }
    let (cell, n) = slot(work);
    fold(cell, n, elapsed);
}

fn fold(cell: &AtomicU64, n: u64, elapsed: Duration) {
    if n == 0 {
        return;
    }
    let ps = (elapsed.as_nanos().saturating_mul(1000) / u128::from(n)).max(1);
    let ps = u64::try_from(ps).unwrap_or(u64::MAX);
    let old = cell.load(Ordering::Relaxed);
    let new = if old == 0 { ps } else { old - old / 8 + ps / 8 };
    cell.store(new.max(1), Ordering::Relaxed);
}

/// Estimated nanoseconds of `work`, when that kind was measured.
pub(crate) fn estimate_ns(work: Work) -> Option<f64> {
    let (cell, n) = slot(work);
    match cell.load(Ordering::Relaxed) {
        0 => None,
        ps => Some(ps as f64 * n as f64 / 1000.0),
    }
}

/// The hand-off round trip from outside the pool (measured on first use).
fn handoff_ns() -> f64 {
    *HANDOFF_NS.get_or_init(|| {
        rayon::join(|| (), || ());
        let mut rounds: Vec<f64> = (0..15)
            .map(|_| {
                let t = Instant::now();
                rayon::join(|| (), || ());
                t.elapsed().as_nanos() as f64
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        rounds[rounds.len() / 2]
    })
}

/// Whether to split `pieces` independent pieces of search work, estimated
/// by `estimate_ns` in all (`None`: not yet measured), over the pool. The
/// estimate is asked for only where the answer depends on it (not for one
/// piece, a one-thread pool or a caller inside the pool).
pub(crate) fn worth_splitting(pieces: usize, estimate_ns: impl FnOnce() -> Option<f64>) -> bool {
    // At most this many pieces run at once.
    let p = pieces.min(rayon::current_num_threads());
    if p < 2 {
        return false;
    }
    if rayon::current_thread_index().is_some() {
        // Inside the pool the pieces are stolen, not handed over.
        return true;
    }
    // Split over p threads, work w takes w/p + the round trip: a gain when
    // w (1 - 1/p) exceeds the round trip.
    let p = p as f64;
    estimate_ns().is_none_or(|ns| ns * (1.0 - 1.0 / p) > handoff_ns())
}

/// The sum of estimates (unknown when any is).
pub(crate) fn sum(estimates: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    estimates.into_iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_piece_is_never_split_and_estimates_follow_measurements() {
        assert!(!worth_splitting(1, || None));
        assert!(!worth_splitting(0, || Some(1e12)));
        // One piece never asks for an estimate.
        assert!(!worth_splitting(1, || unreachable!(
            "estimate asked for one piece"
        )));
        record(Work::Graph(1000), Duration::from_micros(50));
        let ns = estimate_ns(Work::Graph(2000)).unwrap();
        assert!(ns > 0.0, "{ns}");
        // Work far beyond any hand-off is split; none at all is not.
        assert!(worth_splitting(2, || Some(1e12)));
        assert!(!worth_splitting(2, || Some(0.0)));
        assert_eq!(sum([Some(1.0), None]), None);
        assert_eq!(sum([Some(1.0), Some(2.0)]), Some(3.0));
    }
}
