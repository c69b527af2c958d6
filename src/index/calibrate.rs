//! The once-per-process calibration behind `exact_threshold: auto`: what a
//! scanned row and a graph search cost on this machine, measured on
//! synthetic rows before any real search has been timed.
//!
//! It runs the first time an index in `auto` mode is big enough for the
//! answer to matter (see [`super::cost::graph_pays`]) and takes a fraction
//! of a second: an exact scan of 65,536 rows with the kernel in use, and a
//! graph of 8,192 rows (connectivity 16, expansion 128 — the defaults)
//! built (on two threads) and searched 64 times. The rows are pseudo-random bodies of 64 to
//! 256 bits, a harder case for a graph than clustered real codes, so the
//! prior leans to the scan; real searches refine both figures (see
//! [`super::cost`]).

use std::sync::OnceLock;
use std::time::Instant;

use super::cost::GraphRef;
use super::flat::{FlatStore, ScanQuery};
use super::hnsw::{GraphParams, Hnsw};
use crate::metric::scan::Kernel;
use crate::metric::Row;

/// What the calibration measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prior {
    /// Nanoseconds per 64-bit word an exact scan reads (see
    /// `FlatStore::words`).
    pub(crate) scan_ns_per_word: f64,
    /// A graph search: rows, nanoseconds, walk.
    pub(crate) graph: GraphRef,
}

static PRIOR: OnceLock<Prior> = OnceLock::new();

/// The calibration (run on first use).
pub(crate) fn prior() -> Prior {
    *PRIOR.get_or_init(measure)
}

fn rows(n: usize, seed: &mut u64) -> Vec<Row> {
    let mut next = || {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 11
    };
    (0..n)
        .filter_map(|_| {
            let words = 1 + (next() % 4) as usize;
            let body: Vec<u8> = (0..8 * words).map(|_| next() as u8).collect();
            Row::new(&body).ok()
        })
        .collect()
}

fn measure() -> Prior {
    let started = Instant::now();
    let mut seed = 0x1cc_5eed;
    let kernel = Kernel::detect();

    // The scan: best of 5 passes of 4 queries over 65,536 rows.
    const SCAN_ROWS: usize = 65_536;
    let mut flat = FlatStore::default();
    for (i, row) in rows(SCAN_ROWS, &mut seed).iter().enumerate() {
        flat.insert(i as u64, row);
    }
    let queries: Vec<ScanQuery> = rows(4, &mut seed).iter().map(ScanQuery::new).collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for q in &queries {
            std::hint::black_box(flat.search(kernel, q, 10, None, None));
        }
        best = best.min(t.elapsed().as_nanos() as f64);
    }
    let words: u64 = queries.iter().map(|q| flat.words(q.len)).sum();
    let scan_ns_per_word = (best / words.max(1) as f64).max(1e-4);

    // The graph: 8,192 rows, 64 searches.
    const GRAPH_ROWS: usize = 8_192;
    let params = GraphParams {
        connectivity: 16,
        expansion_add: 24,
        expansion_search: 128,
    };
    let data = rows(GRAPH_ROWS, &mut seed);
    let queries = rows(64, &mut seed);
    let graph = GraphRef {
        rows: GRAPH_ROWS as f64,
        // Without a working graph (usearch out of memory), model one as
        // never paying: scanning is always correct.
        ns: graph_search_ns(params, &data, &queries).unwrap_or(f64::INFINITY),
        work: (params.expansion_search * params.connectivity) as f64,
    };
    let prior = Prior {
        scan_ns_per_word,
        graph,
    };
    if super::cost::debug_cost() {
        eprintln!("ivdb: calibrated in {:?}: {prior:?}", started.elapsed());
    }
    prior
}

/// Nanoseconds per search (count 10) of a graph of `data` built on two
/// threads with `params` (usearch takes concurrent inserts), averaged over
/// `queries`. The build is cheap (its expansion is the caller's choice):
/// the figure wanted is the cost of a search walk, which depends on the
/// search expansion and the size, much less on how well the graph was built.
fn graph_search_ns(params: GraphParams, data: &[Row], queries: &[Row]) -> Result<f64, String> {
    let mut h = Hnsw::new(params)?;
    h.ensure_capacity(data.len())?;
    let h_ref = &h;
    let half = data.len().div_ceil(2).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = data
            .chunks(half)
            .enumerate()
            .map(|(p, part)| {
                scope.spawn(move || -> Result<(), String> {
                    for (i, row) in part.iter().enumerate() {
                        h_ref.add((p * half + i) as u64, &row.0)?;
                    }
                    Ok(())
                })
            })
            .collect();
        parts.into_iter().try_for_each(|p| {
            p.join()
                .unwrap_or_else(|_| Err("calibration panicked".into()))
        })
    })?;
    if queries.is_empty() {
        return Err("no queries".into());
    }
    let t = Instant::now();
    for q in queries {
        std::hint::black_box(h.search(&q.0, 10, None)?);
    }
    Ok(t.elapsed().as_nanos() as f64 / queries.len() as f64)
}

/// Rows of the larger graph of a trial (see [`trial`]).
pub(crate) const TRIAL_ROWS: usize = 65_536;
/// Rows of the smaller graph of a trial.
const TRIAL_SMALL_ROWS: usize = 8_192;

/// Graph search costs measured on an index's own rows, before that index
/// builds a graph the model says pays: graphs of 8,192 and of up to
/// 65,536 of `sample`'s rows (the smaller a prefix of the larger), each
/// searched by 32 of the sample's rows with a few bits flipped, at
/// `connectivity` and `expansion_search`. Two sizes give the growth of a
/// search with the rows on this machine — its caches included, which a
/// graph of 8,192 rows fits and a big one does not — so a decision for a
/// million rows extrapolates from 65,536, not from 8,192 by a log. About
/// two seconds on two cores; run once per process (see [`super::cost`]).
pub(crate) fn trial(sample: &[Row], connectivity: usize, expansion_search: usize) -> Vec<GraphRef> {
    let started = Instant::now();
    let params = GraphParams {
        connectivity,
        expansion_add: 24,
        expansion_search,
    };
    let mut seed: u64 = 0x7e1a1;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    // The sample comes group by group (by length); shuffled, a prefix of
    // it has every length.
    let mut sample = sample.to_vec();
    for i in (1..sample.len()).rev() {
        sample.swap(i, next() as usize % (i + 1));
    }
    let step = (sample.len() / 32).max(1);
    let queries: Vec<Row> = sample
        .iter()
        .step_by(step)
        .take(32)
        .map(|row| {
            let mut row = *row;
            let bits = 8 * row.len().max(1);
            for _ in 0..8 {
                let bit = next() as usize % bits;
                // Body bytes follow the length byte.
                row.0[1 + bit / 8] ^= 1 << (bit % 8);
            }
            row
        })
        .collect();
    let work = (expansion_search.max(10) * connectivity) as f64;
    let mut out = Vec::new();
    for size in [TRIAL_SMALL_ROWS, sample.len().min(TRIAL_ROWS)] {
        if size < TRIAL_SMALL_ROWS
            || size > sample.len()
            || out.iter().any(|r: &GraphRef| r.rows == size as f64)
        {
            continue;
        }
        if let Ok(ns) = graph_search_ns(params, &sample[..size], &queries) {
            out.push(GraphRef {
                rows: size as f64,
                ns,
                work,
            });
        }
    }
    if super::cost::debug_cost() {
        eprintln!("ivdb: graph trial in {:?}: {out:?}", started.elapsed());
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_calibration_measures_positive_costs() {
        let p = super::prior();
        eprintln!("calibration: {p:?}");
        assert!(
            p.scan_ns_per_word > 0.0 && p.scan_ns_per_word < 1e3,
            "{p:?}"
        );
        assert!(p.graph.ns > 0.0 && p.graph.ns.is_finite(), "{p:?}");
        // A graph search of 8,192 rows costs more than scanning a few rows
        // and less than scanning a billion.
        assert!(p.graph.ns > p.scan_ns_per_word * 10.0, "{p:?}");
        assert!(p.graph.ns < p.scan_ns_per_word * 1e9, "{p:?}");
    }

    #[test]
    fn a_trial_measures_graphs_of_two_sizes_from_the_sample() {
        let mut seed = 3;
        let sample = super::rows(20_000, &mut seed);
        let refs = super::trial(&sample, 16, 64);
        let sizes: Vec<f64> = refs.iter().map(|r| r.rows).collect();
        assert_eq!(sizes, [8192.0, 20_000.0]);
        for r in &refs {
            assert!(r.ns.is_finite() && r.ns > 0.0, "{r:?}");
            assert_eq!(r.work, (64 * 16) as f64);
        }
        // Too small a sample for even the smaller graph: nothing measured.
        assert!(super::trial(&sample[..1000], 16, 64).is_empty());
    }
}
