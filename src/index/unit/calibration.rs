//! How many lists a search of a partitioned index must probe, measured on
//! the index's own rows, and what probing them costs (see `retrain`'s
//! module docs for when and why).
//!
//! Costs are compared in a race ([`race`]): the contenders (new lists
//! against the old, or against the exact scan) run the same queries in
//! turn, round after round, and each is priced by its fastest round. The
//! partition thread shares the cores with writes: timed one after the other,
//! a burst of adds weighed on one side only, and the same configurations
//! measured 15-400 µs per query over engine runs at 1M rows (one run kept
//! 16 lists for 1M rows, each probe reading 10 of them). Interleaved, a burst
//! weighs on both alike; the fastest round is the one it spared. The rows a
//! probe reads are reported beside the times: a figure that no load moves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::index::flat::{FlatStore, Hit, Scan, ScanQuery};
use crate::index::ivf::Quantizer;
use crate::metric::scan::Kernel;
use crate::metric::Row;

/// Tie-aware recall@10 that the default `nprobe` reaches on the index's
/// own rows (queries are near duplicates of stored rows).
pub const TARGET_RECALL: f64 = 0.99;

/// Recall of the neighbours within NPHD [`NEAR`] among the true top 10
/// (the matches a user looks for; a returned row within it counts, up to
/// as many as the top 10 hold) that the default `nprobe` reaches likewise.
pub const NEAR_RECALL: f64 = 0.99;

/// Recall of the neighbours within [`NEAR`] that the near `nprobe` reaches
/// on the index's own rows: higher than [`NEAR_RECALL`], so that queries
/// which are not stored rows still find 0.99 of them (1M codes of the bench
/// dataset: 0.994 at 0.995 on own rows, 0.987 at 0.99).
pub const NEAR_ONLY_RECALL: f64 = 0.995;

/// The NPHD of a near match: a search whose caller needs only neighbours
/// this near (`SearchOptions::recall_within`) probes the near `nprobe`.
pub const NEAR: f32 = 0.25;

/// Fewest true neighbours within [`NEAR`] among the calibration's answers
/// for a near `nprobe` of its own (with fewer, too little was measured to
/// probe less than the default).
pub(super) const NEAR_EVIDENCE: usize = QUERIES / 4;

/// Queries the calibration measures.
pub(super) const QUERIES: usize = 256;

/// What a calibration found.
pub(super) struct Calibration {
    pub(super) nprobe: usize,
    /// `None`: too few near neighbours to measure ([`NEAR_EVIDENCE`]).
    pub(super) near_nprobe: Option<usize>,
    pub(super) recall: f64,
    /// Mean rows a query probing `nprobe` lists reads.
    pub(super) rows_read: f64,
}

/// Queries for the calibration: stored rows spread over the store, each
/// searched for among the other rows (leave-one-out: a query that is a
/// fresh member of its row's neighbourhood, as a near duplicate is).
fn queries(flat: &FlatStore) -> Vec<Query> {
    flat.rows_every((flat.len() / QUERIES).max(1))
        .into_iter()
        .take(QUERIES)
        .map(|(key, row): (u64, Row)| (key, ScanQuery::new(&row)))
        .collect()
}

/// The top `k` of `hits` (one more than `k` searched) without `key`.
fn without(mut hits: Vec<Hit>, key: u64, k: usize) -> Vec<Hit> {
    hits.retain(|h| h.key != key);
    hits.truncate(k);
    hits
}

/// The exact answers a calibration measures recall against: stored rows
/// of `basis` searched for among the others by the exact scan, timed.
pub(super) struct Truth {
    pub(super) queries: Vec<Query>,
    /// Per query: neighbours found, the 10th's distance, those within NEAR.
    found: Vec<(usize, f32, usize)>,
    /// Mean nanoseconds of one exact scan of `basis` (one round, unraced).
    pub(super) scan_ns: f64,
}

impl Truth {
    /// `None` when cancelled or when no query has a neighbour.
    pub(super) fn of(basis: &FlatStore, kernel: Kernel, cancel: &AtomicBool) -> Option<Truth> {
        let queries = queries(basis);
        let t = Instant::now();
        let mut found = Vec::with_capacity(queries.len());
        for q in &queries {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let hits = scan(basis, kernel, q);
            let tenth = hits.last().map_or(f32::INFINITY, |h| h.distance);
            let near = hits.iter().filter(|h| h.distance <= NEAR).count();
            found.push((hits.len(), tenth, near));
        }
        let scan_ns = t.elapsed().as_nanos() as f64 / queries.len().max(1) as f64;
        found.iter().any(|f| f.0 > 0).then_some(Truth {
            queries,
            found,
            scan_ns,
        })
    }
}

/// Neighbours a calibration query asks for.
const K: usize = 10;

/// The exact top [`K`] of a calibration query among the other rows.
pub(super) fn scan(flat: &FlatStore, kernel: Kernel, (key, q): &Query) -> Vec<Hit> {
    without(flat.search(kernel, q, K + 1, None, None), *key, K)
}

/// The top [`K`] of a calibration query among the other rows of the
/// `nprobe` lists of `flat` nearest it.
pub(super) fn probe(flat: &FlatStore, kernel: Kernel, (key, q): &Query, nprobe: usize) -> Vec<Hit> {
    let lists = flat.probe(q, nprobe).unwrap_or_default();
    let scan = Scan {
        kernel,
        k: K + 1,
        max_distance: None,
        keep: None,
        lists: Some(&lists),
    };
    without(flat.search_split(q, scan, None, 1).0, *key, K)
}

/// A calibration query: a stored row's key and the row as a query.
pub(super) type Query = (u64, ScanQuery);

/// One side of a [`race`]: a search of a calibration query.
pub(super) type Contender<'a> = &'a dyn Fn(&Query) -> Vec<Hit>;

/// Rounds of a [`race`] that decides: each contender's cost is its
/// fastest.
pub(super) const ROUNDS: usize = 3;

/// Mean nanoseconds per query of each contender over `queries`, the
/// contenders run in turn round after round and each priced by its fastest
/// of `rounds` (see the module docs); `None` when cancelled.
pub(super) fn race<const N: usize>(
    queries: &[Query],
    contenders: [Contender<'_>; N],
    rounds: usize,
    cancel: &AtomicBool,
) -> Option<[f64; N]> {
    let mut best = [f64::INFINITY; N];
    for _ in 0..rounds.max(1) {
        for (contender, best) in contenders.iter().zip(&mut best) {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            let t = Instant::now();
            for q in queries {
                std::hint::black_box(contender(q));
            }
            let ns = t.elapsed().as_nanos() as f64 / queries.len().max(1) as f64;
            *best = best.min(ns);
        }
    }
    Some(best)
}

/// Where a calibration's walk over `nprobe` starts (see [`calibrate`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Start {
    nprobe: usize,
    near: usize,
}

impl Start {
    /// New lists: from one list.
    pub(super) const FRESH: Start = Start { nprobe: 1, near: 1 };

    /// Lists measured before: from half their numbers, what a fifth more
    /// rows could need at least.
    pub(super) fn after(q: &Quantizer) -> Start {
        Start {
            nprobe: q.nprobe() / 2,
            near: q.near_nprobe() / 2,
        }
    }
}

/// The smallest `nprobe` from `start` on reaching [`TARGET_RECALL`] and
/// [`NEAR_RECALL`] on `truth`'s queries, the smallest reaching
/// [`NEAR_ONLY_RECALL`] alone (the near `nprobe`, at most the other), and
/// the rows a probe of the first number of lists of `flat` reads; `None`
/// when cancelled.
pub(super) fn calibrate(
    truth: &Truth,
    flat: &FlatStore,
    kernel: Kernel,
    start: Start,
    cancel: &AtomicBool,
) -> Option<Calibration> {
    let queries = &truth.queries;
    let nlist = flat.quantizer.as_ref()?.lists();
    let wanted: usize = truth.found.iter().map(|t| t.0).sum();
    let near_wanted: usize = truth.found.iter().map(|t| t.2).sum();
    // The walk starts at the near start; past the near `nprobe`, at the
    // default's start at least.
    let mut nprobe = start.near.clamp(1, nlist);
    let mut near_nprobe = None;
    let recall = loop {
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        let (mut found, mut near_found) = (0, 0);
        for (q, &(_, tenth, near)) in queries.iter().zip(&truth.found) {
            let hits = probe(flat, kernel, q, nprobe);
            found += hits.iter().filter(|h| h.distance <= tenth).count();
            // A hit within NEAR is a true neighbour within NEAR (its
            // distance is exact), counted up to as many as the true top 10
            // holds: the bench's `within NPHD 0.25`. The top 10 themselves
            // are what TARGET_RECALL asks for.
            near_found += hits.iter().filter(|h| h.distance <= NEAR).count().min(near);
        }
        let near_enough = near_found as f64 >= NEAR_RECALL * near_wanted as f64;
        if near_nprobe.is_none() && near_found as f64 >= NEAR_ONLY_RECALL * near_wanted as f64 {
            near_nprobe = Some(nprobe);
        }
        if (near_enough && found as f64 >= TARGET_RECALL * wanted as f64) || nprobe >= nlist {
            break found as f64 / wanted as f64;
        }
        // Steps of 1/8: the last one overshoots the target by little.
        nprobe = (nprobe + 1).max(nprobe * 9 / 8).min(nlist);
        if near_nprobe.is_some() {
            nprobe = nprobe.max(start.nprobe).min(nlist);
        }
    };
    let near_nprobe = near_nprobe.filter(|_| near_wanted >= NEAR_EVIDENCE);
    let rows: usize = queries
        .iter()
        .map(|(_, q)| flat.rows_in(&flat.probe(q, nprobe).unwrap_or_default()))
        .sum();
    Some(Calibration {
        nprobe,
        near_nprobe,
        recall,
        rows_read: rows as f64 / queries.len().max(1) as f64,
    })
}
