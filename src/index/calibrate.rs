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
    /// Nanoseconds per row of an exact scan.
    pub(crate) scan_ns_per_row: f64,
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
        best = best.min(t.elapsed().as_nanos() as f64 / queries.len() as f64);
    }
    let scan_ns_per_row = (best / flat.len().max(1) as f64).max(1e-3);

    // The graph: 8,192 rows, 64 searches.
    const GRAPH_ROWS: usize = 8_192;
    // A cheap build (expansion 24): the figure wanted is the cost of a
    // search walk, which depends on the search expansion, not on how well
    // the graph was built.
    let params = GraphParams {
        connectivity: 16,
        expansion_add: 24,
        expansion_search: 128,
    };
    let graph = Hnsw::new(params).and_then(|mut h| {
        h.ensure_capacity(GRAPH_ROWS)?;
        let data = rows(GRAPH_ROWS, &mut seed);
        // Built on two threads (usearch takes concurrent inserts).
        let h_ref = &h;
        std::thread::scope(|scope| {
            let parts: Vec<_> = data
                .chunks(GRAPH_ROWS / 2)
                .enumerate()
                .map(|(p, part)| {
                    scope.spawn(move || -> Result<(), String> {
                        for (i, row) in part.iter().enumerate() {
                            h_ref.add((p * GRAPH_ROWS / 2 + i) as u64, &row.0)?;
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
        let queries = rows(64, &mut seed);
        let t = Instant::now();
        for q in &queries {
            std::hint::black_box(h.search(&q.0, 10, None)?);
        }
        Ok(t.elapsed().as_nanos() as f64 / queries.len() as f64)
    });
    let graph = GraphRef {
        rows: GRAPH_ROWS as f64,
        // Without a working graph (usearch out of memory), model one as
        // never paying: scanning is always correct.
        ns: graph.unwrap_or(f64::INFINITY),
        work: (params.expansion_search * params.connectivity) as f64,
    };
    let prior = Prior {
        scan_ns_per_row,
        graph,
    };
    if std::env::var_os("IVDB_DEBUG_COST").is_some() {
        eprintln!("ivdb: calibrated in {:?}: {prior:?}", started.elapsed());
    }
    prior
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_calibration_measures_positive_costs() {
        let p = super::prior();
        eprintln!("calibration: {p:?}");
        assert!(p.scan_ns_per_row > 0.0 && p.scan_ns_per_row < 1e3, "{p:?}");
        assert!(p.graph.ns > 0.0 && p.graph.ns.is_finite(), "{p:?}");
        // A graph search of 8,192 rows costs more than scanning a few rows
        // and less than scanning a billion.
        assert!(p.graph.ns > p.scan_ns_per_row * 10.0, "{p:?}");
        assert!(p.graph.ns < p.scan_ns_per_row * 1e9, "{p:?}");
    }
}
