//! Searching a unit index: the exact SIMD scan below the threshold, the
//! HNSW graph above it, one query or a batch in parallel.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;

use super::{hits, row_of, IndexError, SearchOptions, State, UnitIndex};
use crate::index::cost::{self, Work};
use crate::index::flat::{Hit, Keep, Scan, ScanQuery, SharedBound};
use crate::index::ivf::Quantizer;
use crate::index::SearchCounters;
use crate::metric::{Row, MAX_BITS};

impl UnitIndex {
    /// Search one query body. Results are ordered by distance, then key.
    pub fn search(&self, query: &[u8], count: usize) -> Result<Vec<Hit>, IndexError> {
        self.search_with(query, &SearchOptions::count(count))
    }

    /// Exact search of one query body through the SIMD scan.
    pub fn search_exact(&self, query: &[u8], count: usize) -> Result<Vec<Hit>, IndexError> {
        self.search_with(
            query,
            &SearchOptions {
                exact: Some(true),
                ..SearchOptions::count(count)
            },
        )
    }

    /// Search one query body with options.
    pub fn search_with(
        &self,
        query: &[u8],
        options: &SearchOptions,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_filtered(query, options, None)
    }

    /// Search one query body, considering only keys for which `keep` returns
    /// true (both the graph walk and the exact scan skip the others, so up
    /// to `count` kept results come back however many rows are filtered).
    pub fn search_filtered(
        &self,
        query: &[u8],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_counted(query, options, keep, &SearchCounters::default())
    }

    /// [`UnitIndex::search_filtered`], adding what the search cost to
    /// `counters` (see [`SearchCounters`]).
    pub fn search_counted(
        &self,
        query: &[u8],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
        counters: &SearchCounters,
    ) -> Result<Vec<Hit>, IndexError> {
        self.search_shared(query, options, keep, counters, None)
    }

    /// [`UnitIndex::search_counted`] for one of several scans of one query
    /// running at once (the shards of a sharded index): an exact scan reads
    /// and lowers `shared`, so rows out of reach of the query's top `count`
    /// over all the scans are not read further. Results as alone.
    pub(crate) fn search_shared(
        &self,
        query: &[u8],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
        counters: &SearchCounters,
        shared: Option<&SharedBound>,
    ) -> Result<Vec<Hit>, IndexError> {
        let row = row_of(None, query, MAX_BITS)?;
        Self::check_expansion(options)?;
        self.ensure_graph(options)?;
        let state = self.snapshot();
        self.search_row(&state, &row, options, keep, counters, shared)
    }

    /// A per-call `expansion_search` of 0 is refused before any work.
    fn check_expansion(options: &SearchOptions) -> Result<(), IndexError> {
        if options.expansion_search == Some(0) && options.exact != Some(true) {
            return Err(IndexError::Option(
                "expansion_search must be at least 1".into(),
            ));
        }
        Ok(())
    }

    fn search_row(
        &self,
        state: &State,
        row: &Row,
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
        counters: &SearchCounters,
        shared: Option<&SharedBound>,
    ) -> Result<Vec<Hit>, IndexError> {
        let exact = |state: &State| {
            // The scan compares the query with every row.
            let rows = state.flat.len() as u64;
            let words = state.flat.words(row.len().div_ceil(8));
            counters.add(rows, rows);
            let _in_flight = (rows >= 2 * PART_ROWS).then(BigScan::start);
            let parts = scan_parts(rows, words);
            // The CPU clock is a system call: read it only for scans whose
            // figure is recorded (see `cost::record_scan_cpu`), and only
            // for a scan this thread does alone.
            let cpu = (rows >= cost::LARGE_SCAN && parts == 1)
                .then(cost::thread_cpu)
                .flatten();
            let query = ScanQuery::new(row);
            // A partitioned store is scanned whole, nearest list first: the
            // true neighbours mostly sit there, so the bound is tight before
            // the far lists, whose rows the kernel then drops on their first
            // words (in storage order the far lists came first as often).
            let order = state.flat.probe(&query, usize::MAX);
            let scan = Scan {
                kernel: self.kernel,
                k: options.count,
                max_distance: options.max_distance,
                keep,
                lists: order.as_deref(),
            };
            let (hits, elapsed) = state.flat.search_split(&query, scan, shared, parts);
            cost::record_scan_cpu(rows, words, 1, cpu);
            // Priced by the parts' time together: what the scan costs.
            cost::record(Work::Scan { rows, words }, elapsed);
            if rows >= cost::LARGE_SCAN {
                self.paths
                    .scan_ns_per_word
                    .add(elapsed.as_nanos() as f64 / words.max(1) as f64);
            }
            hits
        };
        if options.count == 0 || state.flat.len() == 0 {
            return Ok(Vec::new());
        }
        if let Some(hits) = self.probe_lists(state, row, options, keep, counters, shared) {
            return Ok(hits);
        }
        if self.use_exact(state, options, row.len().div_ceil(8)) || state.deferred {
            return Ok(exact(state));
        }
        let _slot = self.slots.acquire();
        let t = Instant::now();
        let walk = |g: &crate::index::hnsw::Hnsw| g.search(&row.0, options.count, keep);
        let ef = options
            .expansion_search
            .unwrap_or(state.options.expansion_search);
        let found = state.graph.search(&state.flat, ef, walk)?;
        Ok(match found {
            Ok(mut found) => {
                // The graph is shared with newer states: a key added or
                // removed since this state was taken is not this search's.
                if found.keys.iter().any(|k| !state.flat.contains(*k)) {
                    let kept: Vec<(u64, f32)> = found
                        .keys
                        .iter()
                        .zip(&found.distances)
                        .filter(|(k, _)| state.flat.contains(**k))
                        .map(|(k, d)| (*k, *d))
                        .collect();
                    (found.keys, found.distances) = kept.into_iter().unzip();
                }
                let elapsed = t.elapsed();
                cost::record(Work::Graph(found.computed), elapsed);
                if options.expansion_search.is_none()
                    && options.count <= state.options.expansion_search
                {
                    self.paths.graph_ns.add(elapsed.as_nanos() as f64);
                }
                counters.add(found.visited, found.computed);
                hits(found.keys, found.distances, options.max_distance)
            }
            // usearch only fails a search on exhausted resources; the exact
            // scan is always correct.
            Err(_) => exact(state),
        })
    }

    /// A search of a partitioned index that does not ask for an exact
    /// scan: the query's nearest lists, scanned (see `index::ivf`; all of
    /// them when `nprobe` reaches every list, giving the exact scan's
    /// answer); `None` when the index is not partitioned, the search is
    /// exact, or it is bounded and did not say `exact: false` (see
    /// [`SearchOptions::max_distance`]).
    fn probe_lists(
        &self,
        state: &State,
        row: &Row,
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
        counters: &SearchCounters,
        shared: Option<&SharedBound>,
    ) -> Option<Vec<Hit>> {
        if options.must_scan() {
            return None;
        }
        let quantizer = state.flat.quantizer.as_ref()?;
        let query = ScanQuery::new(row);
        let lists = state
            .flat
            .probe(&query, Self::default_nprobe(quantizer, options))?;
        let rows = state.flat.rows_in(&lists) as u64;
        counters.add(rows, rows);
        let scan = Scan {
            kernel: self.kernel,
            k: options.count,
            max_distance: options.max_distance,
            keep,
            lists: Some(&lists),
        };
        Some(state.flat.search_split(&query, scan, shared, 1).0)
    }

    /// Lists a probe with `options` reads: as asked, or the near default
    /// for a caller needing only near neighbours, or the default (see
    /// [`SearchOptions::recall_within`]).
    fn default_nprobe(quantizer: &Quantizer, options: &SearchOptions) -> usize {
        match (options.nprobe, options.recall_within) {
            (Some(n), _) => n,
            (None, Some(d)) if d <= super::NEAR => quantizer.near_nprobe(),
            (None, _) => quantizer.nprobe(),
        }
    }

    /// The estimated time of one search with `options`, from what
    /// searches of this kind cost so far in this process (`None` before the
    /// first): the rows an exact scan reads, or the distances a graph walk
    /// computes at most (two neighbour lists of `connectivity` per node
    /// taken into the `expansion_search` candidates).
    pub fn search_estimate_ns(&self, options: &SearchOptions) -> Option<f64> {
        let state = self.snapshot();
        let rows = state.flat.len() as u64;
        if rows == 0 || options.count == 0 {
            return Some(0.0);
        }
        if self.use_exact(&state, options, 4) || state.deferred {
            let words = state.flat.words(4);
            return cost::estimate_ns(Work::Scan { rows, words });
        }
        let walk = 2 * Self::walk(&state, options) as u64;
        cost::estimate_ns(Work::Graph(walk.min(rows)))
    }

    /// Search many query bodies in one call, in parallel over cores (or
    /// `options.threads`). Exact batches share each cached block of rows
    /// across queries.
    pub fn search_batch<B: AsRef<[u8]> + Sync>(
        &self,
        queries: &[B],
        options: &SearchOptions,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        self.search_batch_filtered(queries, options, None)
    }

    /// [`UnitIndex::search_batch`] considering only keys `keep` accepts.
    pub fn search_batch_filtered<B: AsRef<[u8]> + Sync>(
        &self,
        queries: &[B],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        let counters: Vec<SearchCounters> = queries.iter().map(|_| Default::default()).collect();
        self.search_batch_counted(queries, options, keep, &counters)
    }

    /// [`UnitIndex::search_batch_filtered`], adding what each query's
    /// search cost to its element of `counters` (one per query).
    pub fn search_batch_counted<B: AsRef<[u8]> + Sync>(
        &self,
        queries: &[B],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
        counters: &[SearchCounters],
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        if counters.len() != queries.len() {
            return Err(IndexError::Option(format!(
                "{} counters for {} queries",
                counters.len(),
                queries.len()
            )));
        }
        let rows: Vec<Row> = queries
            .iter()
            .map(|q| row_of(None, q.as_ref(), MAX_BITS))
            .collect::<Result<_, _>>()?;
        Self::check_expansion(options)?;
        self.ensure_graph(options)?;
        let state = self.snapshot();
        let run = || self.batch_rows(&state, &rows, options, keep, counters);
        match options.threads {
            Some(n) => pool_of(n)?.install(run),
            None => run(),
        }
    }

    fn batch_rows(
        &self,
        state: &State,
        rows: &[Row],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
        counters: &[SearchCounters],
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        let widest = rows.iter().map(|r| r.len().div_ceil(8)).max().unwrap_or(4);
        // A partitioned index probes its lists per query unless asked for
        // exact scans.
        let probes = state.flat.quantizer.is_some() && options.exact != Some(true);
        if !probes
            && (self.use_exact(state, options, widest) || state.deferred)
            && options.count > 0
        {
            let scanned = state.flat.len() as u64;
            for c in counters {
                c.add(scanned, scanned);
            }
            // Chunks of queries share each cached block of rows; at most
            // 16, and no more than an even share per thread (fixed chunks
            // of 16 left one of two cores idle most of a 20-query batch).
            const CHUNK: usize = 16;
            let chunk = rows
                .len()
                .div_ceil(rayon::current_num_threads().max(1))
                .clamp(1, CHUNK);
            let queries: Vec<ScanQuery> = rows.iter().map(ScanQuery::new).collect();
            return Ok(queries
                .par_chunks(chunk)
                .flat_map_iter(|chunk| {
                    let cpu = (scanned >= cost::LARGE_SCAN)
                        .then(cost::thread_cpu)
                        .flatten();
                    let found = state.flat.search_many(
                        self.kernel,
                        chunk,
                        options.count,
                        options.max_distance,
                        keep,
                    );
                    let words = chunk.iter().map(|q| state.flat.words(q.len)).sum();
                    cost::record_scan_cpu(scanned, words, chunk.len(), cpu);
                    found
                })
                .collect());
        }
        rows.par_iter()
            .zip(counters)
            .map(|(row, c)| self.search_row(state, row, options, keep, c, None))
            .collect()
    }
}

/// A pool of `n` threads (at least 1) for batches that ask for their own
/// thread count: made once per count in this process and kept, as making
/// a pool per call costs thread starts each time.
fn pool_of(n: usize) -> Result<Arc<rayon::ThreadPool>, IndexError> {
    static POOLS: Mutex<BTreeMap<usize, Arc<rayon::ThreadPool>>> = Mutex::new(BTreeMap::new());
    let n = n.max(1);
    let mut pools = crate::sync::lock(&POOLS);
    if let Some(pool) = pools.get(&n) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map_err(|e| IndexError::Option(format!("threads: {e}")))?;
    let pool = Arc::new(pool);
    // A few counts are kept; a caller cycling through many pays per call.
    if pools.len() < 4 {
        pools.insert(n, Arc::clone(&pool));
    }
    Ok(pool)
}

/// Rows of one part of a split scan, at least: a shorter part costs about
/// as much in hand-off to the pool as it saves.
const PART_ROWS: u64 = 1 << 16;

/// How many row ranges one exact scan of `rows` rows (`words` words) is cut
/// into, scanned in parallel (see [`FlatStore::search_split`]): the pool's
/// threads shared among the big scans running at once (under load every
/// thread is busy anyway, and a split can only add hand-offs: with 8
/// concurrent callers on 2 cores, splitting every scan measured 0.87–0.98 of
/// not splitting, within that machine's noise), where the estimated scan
/// pays for the hand-off.
///
/// [`FlatStore::search_split`]: crate::index::flat::FlatStore::search_split
fn scan_parts(rows: u64, words: u64) -> usize {
    let most = usize::try_from(rows / PART_ROWS).unwrap_or(usize::MAX);
    let share = rayon::current_num_threads() / BIG_SCANS.load(Ordering::Relaxed).max(1);
    let parts = most.min(share);
    if parts > 1 && cost::worth_splitting(parts, || cost::estimate_ns(Work::Scan { rows, words })) {
        parts
    } else {
        1
    }
}

/// Exact scans of at least two parts' rows running now, in this process.
static BIG_SCANS: AtomicUsize = AtomicUsize::new(0);

/// One of [`BIG_SCANS`], from `start` until dropped.
struct BigScan;

impl BigScan {
    fn start() -> BigScan {
        BIG_SCANS.fetch_add(1, Ordering::Relaxed);
        BigScan
    }
}

impl Drop for BigScan {
    fn drop(&mut self) {
        BIG_SCANS.fetch_sub(1, Ordering::Relaxed);
    }
}
