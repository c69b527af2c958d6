//! The choice between the exact scan and the graph for one index in
//! `exact_threshold: auto` mode, by what each costs *on this index*.
//!
//! Each index keeps two moving averages of its own searches: nanoseconds
//! per scanned row and nanoseconds per graph search (at its default
//! expansion). Before its graph was ever searched, the first `auto` search
//! measures both on 16 of the index's own rows as queries (graph) and 4
//! (scan) — a few milliseconds at a million rows — and reports the graph's
//! figure to [`cost::note_graph`], so later build decisions in this process
//! model graphs from a real one. From then on every search keeps the
//! averages current, so a choice made on a cold cache or a busy machine
//! corrects itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::{State, UnitIndex};
use crate::index::calibrate::TRIAL_ROWS;
use crate::index::cost::{self, GraphRef};
use crate::index::flat::ScanQuery;
use crate::index::SearchOptions;
use crate::metric::Row;

/// A moving average of f64 in an atomic (0 bits: none yet).
#[derive(Debug, Default)]
pub(super) struct Average(AtomicU64);

impl Average {
    pub(super) fn get(&self) -> Option<f64> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    /// Fold in one figure (weight 1/8; racing updates may lose one).
    pub(super) fn add(&self, x: f64) {
        if !(x.is_finite() && x > 0.0) {
            return;
        }
        let new = self.get().map_or(x, |old| old + (x - old) / 8.0);
        self.0.store(new.to_bits(), Ordering::Relaxed);
    }
}

/// What this index's searches cost.
#[derive(Debug, Default)]
pub(super) struct PathCosts {
    /// Per 64-bit word read (see `FlatStore::words`).
    pub(super) scan_ns_per_word: Average,
    pub(super) graph_ns: Average,
}

impl UnitIndex {
    /// What a search with `options` is estimated to cost here, in
    /// nanoseconds: (exact scan, graph search; `None` without a graph).
    /// With `exact_threshold: auto` the default search takes the cheaper
    /// (the scan on a tie). The first call on an index with a graph
    /// measures it (see the module docs).
    pub fn path_estimates_ns(&self, options: &SearchOptions) -> (f64, Option<f64>) {
        let state = self.snapshot();
        let (scan, graph) = self.path_estimates(&state, options, 4);
        (scan, graph.is_finite().then_some(graph))
    }

    /// The walk of a graph search: `max(expansion, count) × connectivity`.
    pub(super) fn walk(state: &State, options: &SearchOptions) -> usize {
        let ef = options
            .expansion_search
            .unwrap_or(state.options.expansion_search);
        ef.max(options.count) * state.options.connectivity
    }

    /// True when a search with `options` by a query of `query_words`
    /// words scans (see the module docs).
    pub(super) fn use_exact(
        &self,
        state: &State,
        options: &SearchOptions,
        query_words: usize,
    ) -> bool {
        if options.must_scan() {
            return true;
        }
        if options.exact == Some(false) {
            return false;
        }
        let rows = state.flat.len();
        if state.deferred {
            return true;
        }
        if let Some(exact) = state.options.exact_threshold.fixed(rows) {
            return exact;
        }
        let (scan, graph) = self.path_estimates(state, options, query_words);
        scan <= graph
    }

    /// Estimated nanoseconds of a scan by a query of `query_words` words
    /// and of a graph search with `options` (graph: infinite while there is
    /// none).
    pub(super) fn path_estimates(
        &self,
        state: &State,
        options: &SearchOptions,
        query_words: usize,
    ) -> (f64, f64) {
        let per_word = self
            .paths
            .scan_ns_per_word
            .get()
            .unwrap_or_else(cost::scan_ns_per_word);
        let scan = state.flat.words(query_words) as f64 * per_word;
        if state.deferred {
            return (scan, f64::INFINITY);
        }
        let default = SearchOptions {
            expansion_search: None,
            ..SearchOptions::count(1)
        };
        let base_walk = Self::walk(state, &default) as f64;
        let graph = match self.paths.graph_ns.get() {
            Some(ns) => ns,
            None => self.calibrate(state),
        };
        (scan, graph * Self::walk(state, options) as f64 / base_walk)
    }

    /// Measure this index's graph and scan on its own rows (see the module
    /// docs); returns nanoseconds per graph search.
    fn calibrate(&self, state: &State) -> f64 {
        let rows = state.flat.len();
        let step = (rows / 16).max(1);
        let samples: Vec<Row> = state
            .flat
            .keys()
            .step_by(step)
            .take(16)
            .filter_map(|k| state.flat.get(k))
            .collect();
        if samples.is_empty() {
            return f64::INFINITY;
        }
        let count = 10;
        let t = Instant::now();
        {
            let _slot = self.slots.acquire();
            let ef = state.options.expansion_search;
            let walked = state.graph.search(&state.flat, ef, |graph| {
                samples
                    .iter()
                    .all(|row| graph.search(&row.0, count, None).is_ok())
            });
            if !matches!(walked, Ok(true)) {
                return f64::INFINITY;
            }
        }
        let graph_ns = t.elapsed().as_nanos() as f64 / samples.len() as f64;
        let t = Instant::now();
        for row in samples.iter().take(4) {
            std::hint::black_box(state.flat.search(
                self.kernel,
                &ScanQuery::new(row),
                count,
                None,
                None,
            ));
        }
        if rows as u64 >= cost::LARGE_SCAN {
            let scanned: u64 = samples
                .iter()
                .take(4)
                .map(|r| state.flat.words(r.len().div_ceil(8)))
                .sum();
            self.paths
                .scan_ns_per_word
                .add(t.elapsed().as_nanos() as f64 / scanned.max(1) as f64);
        }
        self.paths.graph_ns.add(graph_ns);
        cost::note_graph(GraphRef {
            rows: rows as f64,
            ns: graph_ns,
            work: (state.options.expansion_search.max(count) * state.options.connectivity) as f64,
        });
        graph_ns
    }

    /// Before a write of `adding` rows takes the writer's turn: if the
    /// graph decision it leads to would run the once-per-process trial
    /// (seconds of graph builds, see [`cost::graph_pays`]), start it in the
    /// background from rows sampled from a snapshot, so neither this write
    /// nor the readers wait for it; the index stays scan-only until it has
    /// answered (a later write asks again).
    pub(super) fn trial_first(&self, adding: usize) {
        let state = self.snapshot();
        let rows = state.flat.len().saturating_add(adding);
        let want = rows.min(TRIAL_ROWS);
        // Fewer rows than the trial wants: it runs under the lock
        // after the insert (a first bulk add into an empty index).
        if state.flat.len() < want
            || !state.deferred
            || !self.graph_allowed(&state)
            || state.read_only
            || state.options.exact_threshold.fixed(rows).is_some()
            || !cost::trial_due(
                rows,
                state.flat.words(4),
                Self::walk(&state, &SearchOptions::count(1)),
            )
        {
            return;
        }
        let (connectivity, expansion_search) =
            (state.options.connectivity, state.options.expansion_search);
        // Sampled and priced on the trial's thread, from this snapshot.
        let prepare = move || (Self::sample(&state, want), Self::scan_price(&state));
        cost::start_trial(prepare, connectivity, expansion_search);
    }

    /// Nanoseconds per word read (see `FlatStore::words`) of exact scans
    /// (count 10) of the whole index by 16 of its rows with 8 bits flipped
    /// (best of three passes; `None` for an empty index): the price of this
    /// index's real queries, whose near neighbours all being present is what
    /// lets a scan stop early.
    fn scan_price(state: &State) -> Option<f64> {
        let rows = state.flat.len();
        let mut queries: Vec<ScanQuery> = Vec::new();
        let mut seed: u64 = 0x5ca9;
        for (_, mut row) in state
            .flat
            .rows_every((rows / 16).max(1))
            .into_iter()
            .take(16)
        {
            let bits = 8 * row.len().max(1);
            for _ in 0..8 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let bit = (seed >> 33) as usize % bits;
                // Body bytes follow the length byte.
                row.0[1 + bit / 8] ^= 1 << (bit % 8);
            }
            queries.push(ScanQuery::new(&row));
        }
        if queries.is_empty() {
            return None;
        }
        let words: u64 = queries.iter().map(|q| state.flat.words(q.len)).sum();
        let kernel = crate::metric::scan::Kernel::detect();
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t = Instant::now();
            for q in &queries {
                std::hint::black_box(state.flat.search(kernel, q, 10, None, None));
            }
            best = best.min(t.elapsed().as_nanos() as f64);
        }
        Some(best / words.max(1) as f64)
    }

    /// About `n` rows spread evenly over the index.
    fn sample(state: &State, n: usize) -> Vec<Row> {
        let mut rows = state.flat.rows_every(state.flat.len() / n.max(1));
        rows.truncate(n);
        rows.into_iter().map(|(_, row)| row).collect()
    }

    /// True when the graph should exist for `rows` rows (see
    /// [`crate::index::ExactThreshold`]).
    pub(super) fn graph_wanted(state: &State) -> bool {
        let rows = state.flat.len();
        match state.options.exact_threshold.fixed(rows) {
            Some(exact) => !exact,
            None => {
                let default = SearchOptions::count(1);
                let sample = |n: usize| Self::sample(state, n);
                let scan_price = || Self::scan_price(state);
                cost::graph_pays(
                    rows,
                    state.flat.words(4),
                    Self::walk(state, &default),
                    state.options.connectivity,
                    state.options.expansion_search,
                    &sample,
                    &scan_price,
                )
            }
        }
    }
}
