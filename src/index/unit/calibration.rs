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
use crate::metric::{whole_words, Row};

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

/// Queries whose probes a calibration walks and races.
pub(super) const QUERIES: usize = 256;

/// Most queries the near `nprobe` is measured on.
const MAX_QUERIES: usize = 2_048;

/// Rows the calibration's exact answers may visit in all: the near
/// `nprobe` is measured on [`QUERIES`] queries from 8M rows on and on up to
/// [`MAX_QUERIES`] below 1M. It is a tail (the lists holding the last
/// 0.5 % of near neighbours): 256 queries placed it anywhere from 30 to 81
/// lists for like lists at 1M rows of the engine bench — 2,050 against
/// 3,200 q/s for the engine's search — and 2,048 queries at 30-41
/// (2026-12-06). Small indexes afford that; in large ones 256 queries hold
/// more near neighbours anyway.
const QUERY_ROWS: usize = 1 << 31;

/// Queries the near `nprobe` of `rows` rows is measured on.
fn query_count(rows: usize) -> usize {
    (QUERY_ROWS / rows.max(1)).clamp(QUERIES, MAX_QUERIES)
}

/// Rows within [`NEAR`] of a query that its near measurement places (the
/// nearest; a probe must find as many of them as the true top 10 holds).
const NEAR_ROWS: usize = 64;

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
    let n = query_count(flat.len());
    flat.rows_every((flat.len() / n).max(1))
        .into_iter()
        .take(n)
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
    /// The queries whose probes are walked and raced ([`QUERIES`] at most,
    /// spread over all).
    pub(super) queries: Vec<Query>,
    /// Per query of `queries`: neighbours found, the 10th's distance, those
    /// within NEAR.
    found: Vec<(usize, f32, usize)>,
    /// Per query of all: what the near `nprobe` is measured on.
    near: Vec<NearSet>,
    /// The key of each query of `near` (its row is the query).
    #[cfg(test)]
    keys: Vec<u64>,
    /// Mean nanoseconds of one exact scan of `basis` (one round, unraced).
    pub(super) scan_ns: f64,
}

/// A query's neighbours within [`NEAR`], for the near `nprobe`.
struct NearSet {
    /// The query's first word (lists are probed by it).
    word: u64,
    /// Of its true top 10, those within NEAR: as many as a probe must find.
    wanted: usize,
    /// The rows within NEAR, nearest first ([`NEAR_ROWS`] at most).
    keys: Vec<u64>,
    /// Their first words (`None`: a byte-granular row, which no list
    /// holds): the lists that new centroids would put them in.
    words: Vec<Option<u64>>,
}

impl Truth {
    /// `None` when cancelled or when no query has a neighbour.
    pub(super) fn of(basis: &FlatStore, kernel: Kernel, cancel: &AtomicBool) -> Option<Truth> {
        let all = queries(basis);
        // QUERIES of them spread over all are walked and raced.
        let (n, m) = (all.len(), all.len().min(QUERIES));
        let t = Instant::now();
        let (mut queries, mut found, mut near) = (Vec::new(), Vec::new(), Vec::new());
        for (i, q) in all.iter().enumerate() {
            if cancel.load(Ordering::Relaxed) {
                return None;
            }
            // Rows within NEAR: a bounded scan (the bound prunes from the
            // first row on).
            let within = basis.search(kernel, &q.1, NEAR_ROWS + 1, Some(NEAR), None);
            let keys: Vec<u64> = without(within, q.0, NEAR_ROWS)
                .iter()
                .map(|h| h.key)
                .collect();
            let words = keys
                .iter()
                .map(|&key| {
                    let row = basis.get(key)?;
                    whole_words(row.len()).then(|| row.words()[0])
                })
                .collect();
            // Of its true top 10, those within NEAR are its nearest such.
            let wanted = keys.len().min(K);
            near.push(NearSet {
                word: q.1.words[0],
                wanted,
                keys,
                words,
            });
            if (i + 1) * m / n != i * m / n {
                let top = scan(basis, kernel, q);
                let tenth = top.last().map_or(f32::INFINITY, |h| h.distance);
                queries.push(*q);
                found.push((top.len(), tenth, wanted));
            }
        }
        let scan_ns = t.elapsed().as_nanos() as f64 / all.len().max(1) as f64;
        found.iter().any(|f| f.0 > 0).then_some(Truth {
            queries,
            found,
            near,
            #[cfg(test)]
            keys: all.iter().map(|q| q.0).collect(),
            scan_ns,
        })
    }

    /// The fewest lists of `flat` whose probes find [`NEAR_ONLY_RECALL`] of
    /// the neighbours within [`NEAR`] (as many of each query's as its true
    /// top 10 holds), over all queries; `None` with fewer such neighbours
    /// than [`NEAR_EVIDENCE`] or an unpartitioned `flat`.
    ///
    /// Not walked like the default: each neighbour's list is ranked among
    /// the lists in the order a probe visits them, and a probe of `p` lists
    /// finds a query's first `wanted` ranks below `p` — so the answer is a
    /// quantile of those ranks, exact for these queries, at the cost of one
    /// ordering of the lists per query.
    fn near_nprobe(&self, flat: &FlatStore) -> Option<usize> {
        let quantizer = flat.quantizer.as_ref()?;
        self.near_ranks(quantizer, |set, i| match flat.list_of_key(set.keys[i]) {
            Some(list) => list,
            // Not stored: a probe never finds it.
            None => Some(usize::MAX),
        })
        .map(|(p, _)| p)
    }

    /// What a near probe of `quantizer`'s lists, not laid out yet, would
    /// read: the mean share of rows in the lists it probes at its near
    /// `nprobe` ([`Truth::near_nprobe`], each near row placed in the list
    /// of its nearest centroid), with `sizes` the rows of each list in a
    /// sample; `None` as for the near `nprobe`. Lower is cheaper: the
    /// measure candidate centroids are chosen by (see `lists::best`).
    pub(super) fn near_share(&self, quantizer: &Quantizer, sizes: &[usize]) -> Option<f64> {
        let (p, orders) = self.near_ranks(quantizer, |set, i| {
            set.words[i].map(|word| quantizer.nearest(word))
        })?;
        let total: usize = sizes.iter().sum();
        let read: usize = orders
            .iter()
            .map(|order| {
                order
                    .iter()
                    .take(p)
                    .map(|&l| sizes.get(l as usize).copied().unwrap_or(0))
                    .sum::<usize>()
            })
            .sum();
        Some(read as f64 / (total.max(1) * orders.len().max(1)) as f64)
    }

    /// The near `nprobe` of `quantizer`'s lists (see
    /// [`Truth::near_nprobe`]), each near row's list told by `list_of`
    /// (`None`: no list holds it, every probe reads it), and the probe
    /// order of the lists for each query that has near neighbours.
    fn near_ranks(
        &self,
        quantizer: &Quantizer,
        list_of: impl Fn(&NearSet, usize) -> Option<usize>,
    ) -> Option<(usize, Vec<Vec<u32>>)> {
        let nlist = quantizer.lists();
        let mut rank = vec![0usize; nlist];
        let mut needed: Vec<usize> = Vec::new();
        let mut orders = Vec::new();
        for set in self.near.iter().filter(|s| s.wanted > 0) {
            let order: Vec<u32> = quantizer
                .probe(set.word, nlist)
                .into_iter()
                .map(|(list, _)| list)
                .collect();
            for (i, &list) in order.iter().enumerate() {
                rank[list as usize] = i;
            }
            // Lists a probe must read to reach each row.
            let mut lists: Vec<usize> = (0..set.keys.len())
                .map(|i| match list_of(set, i) {
                    Some(list) => rank.get(list).map_or(usize::MAX, |r| r + 1),
                    None => 1,
                })
                .collect();
            lists.sort_unstable();
            lists.truncate(set.wanted);
            needed.extend(lists);
            orders.push(order);
        }
        if needed.len() < NEAR_EVIDENCE {
            return None;
        }
        needed.sort_unstable();
        let must = (NEAR_ONLY_RECALL * needed.len() as f64).ceil() as usize;
        let p = needed[must.clamp(1, needed.len()) - 1];
        Some((p.clamp(1, nlist), orders))
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
}

impl Start {
    /// New lists: from one list.
    pub(super) const FRESH: Start = Start { nprobe: 1 };

    /// Lists measured before: from half their number, what a fifth more
    /// rows could need at least.
    pub(super) fn after(q: &Quantizer) -> Start {
        Start {
            nprobe: q.nprobe() / 2,
        }
    }
}

/// The smallest `nprobe` from `start` on reaching [`TARGET_RECALL`] and
/// [`NEAR_RECALL`] on `truth`'s queries, the near `nprobe` (reaching
/// [`NEAR_ONLY_RECALL`] alone, at most the other; see
/// [`Truth::near_nprobe`]), and the rows a probe of the first number of
/// lists of `flat` reads; `None` when cancelled.
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
    let mut nprobe = start.nprobe.clamp(1, nlist);
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
        if (near_enough && found as f64 >= TARGET_RECALL * wanted as f64) || nprobe >= nlist {
            break found as f64 / wanted as f64;
        }
        // Steps of 1/8: the last one overshoots the target by little.
        nprobe = (nprobe + 1).max(nprobe * 9 / 8).min(nlist);
    };
    let near_nprobe = truth.near_nprobe(flat).map(|p| p.min(nprobe));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::UnitIndex;
    use crate::testing::dataset::Dataset;

    /// Near neighbours found by real probes of `p` lists, over all of the
    /// truth's near queries, and how many were wanted.
    fn near_found(truth: &Truth, flat: &FlatStore, p: usize) -> (usize, usize) {
        let kernel = Kernel::detect();
        let (mut found, mut wanted) = (0, 0);
        for (set, key) in truth.near.iter().zip(&truth.keys) {
            let Some(row) = flat.get(*key) else { continue };
            let hits = probe(flat, kernel, &(*key, ScanQuery::new(&row)), p);
            found += hits
                .iter()
                .filter(|h| h.distance <= NEAR)
                .count()
                .min(set.wanted);
            wanted += set.wanted;
        }
        (found, wanted)
    }

    /// The near `nprobe` read off the lists' ranks is the one real probes
    /// need: it finds NEAR_ONLY_RECALL of the near neighbours, one list
    /// fewer does not.
    #[test]
    fn the_near_nprobe_from_ranks_is_what_probes_need() {
        let data = Dataset::generate(30_000, 10, 5);
        let index = UnitIndex::new(crate::index::UnitIndexOptions::default()).unwrap();
        let keys: Vec<u64> = (0..data.codes.len() as u64).collect();
        index.add_batch(&keys, &data.codes).unwrap();
        let basis = index.snapshot().flat.clone();
        let flat = super::super::lists::trained(&basis, 64, 1);
        let truth = Truth::of(&flat, Kernel::detect(), &AtomicBool::new(false)).unwrap();
        let p = truth
            .near_nprobe(&flat)
            .expect("clustered rows have near neighbours");
        assert!(p > 1 && p < 64, "near nprobe {p} of 64 lists");
        let (found, wanted) = near_found(&truth, &flat, p);
        assert!(
            found as f64 >= NEAR_ONLY_RECALL * wanted as f64,
            "{found} of {wanted} at {p}"
        );
        let (fewer, _) = near_found(&truth, &flat, p - 1);
        assert!(
            (fewer as f64) < NEAR_ONLY_RECALL * wanted as f64,
            "{fewer} of {wanted} at {}",
            p - 1
        );
    }
}
