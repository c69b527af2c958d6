//! `UnitIndex`: one similarity index of variable-length unit bodies (64–256
//! bits) under NPHD — a usearch HNSW graph for approximate search plus the
//! flat store for exact search, `get` and iteration.
//!
//! Concurrency: the index is `Send + Sync`. Searches, `get` and `contains`
//! run in parallel under a shared lock (each HNSW search takes one of
//! usearch's thread slots through a semaphore); writes take the exclusive
//! lock, grow capacity as needed and add a batch to the graph on several
//! threads. A search with its own `expansion_search` also takes the
//! exclusive lock, since usearch keeps that setting per index.
//!
//! Duplicate keys: `add` skips a key that is already stored (and later
//! repeats of a key within one batch), as iscc-usearch does, and reports how
//! many rows it added; `upsert` replaces (last write wins).
//!
//! Deferred graph: while an index holds at most `exact_threshold` rows
//! every search is an exact scan (faster there), so no graph is built and
//! adds cost only the flat store. The graph is built from all rows, on all
//! cores, when the index grows past the threshold, when the threshold is
//! lowered below its size, or when an approximate search is asked for
//! explicitly (`exact: Some(false)`).
//!
//! Files: `save(path)` writes `path` (format header, parameters and the flat
//! store, laid out as in memory so `view` maps it without copying) and
//! `path.hnsw` (the usearch graph). Both are written to a temporary name,
//! fsync'd and renamed, graph first.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use memmap2::Mmap;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kind::ErrorKind;

use super::flat::{FlatStore, Group, Hit, Keep, ScanQuery, Words};
use super::graph::{checksum, Graph, GraphFile, LazyGraph};
use super::hnsw::{GraphParams, Hnsw};
use crate::metric::scan::Kernel;
use crate::metric::{BodyError, Row};
use crate::sync::{lock, wait, RwLockExt};

/// File magic of a saved unit index.
const MAGIC: &[u8; 8] = b"IVDBUNIT";
/// On-disk format version; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;
/// Index size at or under which searches are exact by default: below it the
/// SIMD scan is faster than the graph and exact (`ivdb-bench crossover`:
/// equal speed near 300,000 bench codes on one AVX-512 core).
pub const DEFAULT_EXACT_THRESHOLD: usize = 300_000;

/// Errors of the unit index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A body the index cannot store or search.
    #[error("{}{source}", key.map(|k| format!("key {k}: ")).unwrap_or_default())]
    Body {
        /// The key of the offending entry, when there is one.
        key: Option<u64>,
        /// What is wrong with the body.
        source: BodyError,
    },
    /// A body longer than the index's `max_dim`.
    #[error("{}a code of {bits} bits exceeds this index's max_dim of {max_dim} bits", key.map(|k| format!("key {k}: ")).unwrap_or_default())]
    TooLong {
        key: Option<u64>,
        bits: usize,
        max_dim: usize,
    },
    /// Keys and bodies of a batch differ in number.
    #[error("{keys} keys but {bodies} bodies")]
    BatchMismatch { keys: usize, bodies: usize },
    /// An invalid option.
    #[error("invalid option: {0}")]
    Option(String),
    /// A write to an index opened with `view`.
    #[error("the index is read-only (memory-mapped with view); load it to modify it")]
    ReadOnly,
    /// A file could not be read or written.
    #[error("{}", crate::kind::io_message(path, source))]
    Io { path: PathBuf, source: io::Error },
    /// A file that is not a valid unit index.
    #[error("{path} is not a valid unit index file: {why}")]
    Corrupt { path: PathBuf, why: String },
    /// A file of another on-disk format version.
    #[error("{path} has on-disk format version {found}; this build reads version {expected}: rebuild the index from its primary store")]
    IncompatibleFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// An error reported by usearch.
    #[error("usearch: {0}")]
    Native(String),
}

impl IndexError {
    /// The stable category (a full disk is [`ErrorKind::DiskFull`], also
    /// when usearch only says that a write failed).
    pub fn kind(&self) -> ErrorKind {
        match self {
            IndexError::Body { .. } | IndexError::TooLong { .. } => ErrorKind::InvalidIscc,
            IndexError::BatchMismatch { .. } | IndexError::Option(_) => ErrorKind::InvalidArgument,
            IndexError::ReadOnly => ErrorKind::ReadOnly,
            IndexError::Io { path, source } => crate::kind::io_kind_at(source, path),
            IndexError::Corrupt { .. } => ErrorKind::Corrupt,
            IndexError::IncompatibleFormat { .. } => ErrorKind::IncompatibleFormat,
            IndexError::Native(_) => ErrorKind::Internal,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> IndexError + '_ {
    move |source| IndexError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Parameters of a unit index; all are persisted and restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitIndexOptions {
    /// HNSW connectivity (M): neighbours per node.
    pub connectivity: usize,
    /// HNSW expansion at insertion (efConstruction).
    pub expansion_add: usize,
    /// HNSW expansion at search (ef), default for every search.
    pub expansion_search: usize,
    /// Longest body in bits (64, 128, 192 or 256).
    pub max_dim: usize,
    /// Searches are exact while the index holds at most this many rows.
    pub exact_threshold: usize,
}

impl Default for UnitIndexOptions {
    fn default() -> UnitIndexOptions {
        UnitIndexOptions {
            connectivity: 16,
            expansion_add: 128,
            // At 1M codes of the bench dataset: recall@10 0.987 at ~2,400 q/s
            // (64 gives 0.97 at ~4,200 q/s); smaller indexes are exact anyway.
            expansion_search: 128,
            max_dim: 256,
            exact_threshold: DEFAULT_EXACT_THRESHOLD,
        }
    }
}

impl UnitIndexOptions {
    fn validate(&self) -> Result<(), IndexError> {
        if !(2..=1024).contains(&self.connectivity) {
            return Err(IndexError::Option(format!(
                "connectivity {} (expected 2..=1024)",
                self.connectivity
            )));
        }
        if self.expansion_add == 0 || self.expansion_search == 0 {
            return Err(IndexError::Option("expansions must be at least 1".into()));
        }
        if ![64, 128, 192, 256].contains(&self.max_dim) {
            return Err(IndexError::Option(format!(
                "max_dim {} (expected 64, 128, 192 or 256)",
                self.max_dim
            )));
        }
        Ok(())
    }

    fn graph(&self) -> GraphParams {
        GraphParams {
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            expansion_search: self.expansion_search,
        }
    }
}

/// Options of one search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    /// Number of results wanted.
    pub count: usize,
    /// `Some(true)`: exact scan; `Some(false)`: HNSW; `None`: exact while
    /// the index is at most `exact_threshold` rows.
    pub exact: Option<bool>,
    /// HNSW expansion for this call only (the index default otherwise).
    pub expansion_search: Option<usize>,
    /// Drop results farther than this NPHD.
    pub max_distance: Option<f32>,
    /// Threads for a batch search (`None`: all cores).
    pub threads: Option<usize>,
}

impl Default for SearchOptions {
    fn default() -> SearchOptions {
        SearchOptions {
            count: 10,
            exact: None,
            expansion_search: None,
            max_distance: None,
            threads: None,
        }
    }
}

impl SearchOptions {
    /// Default options with `count` results.
    pub fn count(count: usize) -> SearchOptions {
        SearchOptions {
            count,
            ..SearchOptions::default()
        }
    }
}

/// Figures of a unit index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitIndexStats {
    /// Rows stored.
    pub len: usize,
    /// Rows per length: 64, 128, 192, 256 bits.
    pub len_by_bits: [usize; 4],
    /// Graph capacity (rows).
    pub capacity: usize,
    /// The persisted parameters.
    pub options: UnitIndexOptions,
    /// Bytes usearch reports for the graph in memory.
    pub graph_memory: usize,
    /// Bytes the graph takes when saved.
    pub graph_serialized: usize,
    /// Exact-scan kernel in use.
    pub kernel: &'static str,
    /// True when memory-mapped read-only.
    pub read_only: bool,
    /// Changes since the last save/load/view/reset.
    pub dirty: u64,
}

/// A counting semaphore guarding usearch's thread slots.
struct Slots {
    free: Mutex<usize>,
    cond: Condvar,
}

struct SlotGuard<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n),
            cond: Condvar::new(),
        }
    }

    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = lock(&self.free);
        while *free == 0 {
            free = wait(&self.cond, free);
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = lock(&self.0.free);
        *free += 1;
        self.0.cond.notify_one();
    }
}

struct State {
    graph: Graph,
    flat: FlatStore,
    options: UnitIndexOptions,
    read_only: bool,
    /// No graph yet (see the module docs): the graph holds no rows.
    deferred: bool,
}

/// One NPHD similarity index of unit bodies; see the module docs.
pub struct UnitIndex {
    state: RwLock<State>,
    slots: Slots,
    dirty: AtomicU64,
    kernel: Kernel,
}

impl std::fmt::Debug for UnitIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnitIndex")
            .field("len", &self.len())
            .finish()
    }
}

/// Validate a body against the index limits and pad it into a row.
fn row_of(key: Option<u64>, body: &[u8], max_dim: usize) -> Result<Row, IndexError> {
    let row = Row::new(body).map_err(|source| IndexError::Body { key, source })?;
    if body.len() * 8 > max_dim {
        return Err(IndexError::TooLong {
            key,
            bits: body.len() * 8,
            max_dim,
        });
    }
    Ok(row)
}

fn hits(keys: Vec<u64>, distances: Vec<f32>, max_distance: Option<f32>) -> Vec<Hit> {
    let mut out: Vec<Hit> = keys
        .into_iter()
        .zip(distances)
        .map(|(key, distance)| Hit { distance, key })
        .filter(|h| max_distance.is_none_or(|m| h.distance <= m))
        .collect();
    out.sort();
    out
}

impl UnitIndex {
    /// An empty index.
    pub fn new(options: UnitIndexOptions) -> Result<UnitIndex, IndexError> {
        options.validate()?;
        let hnsw = Hnsw::new(options.graph()).map_err(IndexError::Native)?;
        Ok(UnitIndex::from_state(State {
            graph: Graph::Ready(hnsw),
            flat: FlatStore::default(),
            options,
            read_only: false,
            deferred: options.exact_threshold > 0,
        }))
    }

    fn from_state(state: State) -> UnitIndex {
        UnitIndex {
            state: RwLock::new(state),
            slots: Slots::new(Hnsw::THREAD_SLOTS),
            dirty: AtomicU64::new(0),
            kernel: Kernel::detect(),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read_or_recover()
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write_or_recover()
    }

    fn writable(&self) -> Result<RwLockWriteGuard<'_, State>, IndexError> {
        let state = self.write();
        if state.read_only {
            return Err(IndexError::ReadOnly);
        }
        Ok(state)
    }

    /// The parameters.
    pub fn options(&self) -> UnitIndexOptions {
        self.read().options
    }

    /// Change the default `expansion_search` (persisted on save).
    pub fn set_expansion_search(&self, n: usize) -> Result<(), IndexError> {
        if n == 0 {
            return Err(IndexError::Option(
                "expansion_search must be at least 1".into(),
            ));
        }
        let mut state = self.write();
        state.options.expansion_search = n;
        state.graph.set_expansion_search(n);
        Ok(())
    }

    /// Change the exact-search threshold (persisted on save). Lowering it
    /// under the current size builds a deferred graph now.
    pub fn set_exact_threshold(&self, n: usize) -> Result<(), IndexError> {
        let mut state = self.write();
        state.options.exact_threshold = n;
        if state.deferred && state.flat.len() > n && !state.read_only {
            Self::build_graph(&mut state)?;
        }
        Ok(())
    }

    /// True while the graph is deferred (see the module docs).
    pub fn graph_deferred(&self) -> bool {
        self.read().deferred
    }

    /// Build the deferred graph from every row.
    fn build_graph(state: &mut State) -> Result<(), IndexError> {
        if !state.deferred {
            return Ok(());
        }
        let rows = state.flat.all_rows();
        let hnsw = Hnsw::new(state.options.graph()).map_err(IndexError::Native)?;
        state.graph = Graph::Ready(hnsw);
        Self::graph_insert(state, &rows)?;
        state.deferred = false;
        Ok(())
    }

    /// Make sure a graph exists before an explicitly approximate search.
    fn ensure_graph(&self, options: &SearchOptions) -> Result<(), IndexError> {
        if options.exact == Some(false) && self.read().deferred {
            let mut state = self.write();
            if !state.read_only {
                Self::build_graph(&mut state)?;
            }
        }
        Ok(())
    }

    /// Rows stored.
    pub fn len(&self) -> usize {
        self.read().flat.len()
    }

    /// True when no row is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes since the last save/load/view/reset: adds, and removals of
    /// keys that existed.
    pub fn dirty(&self) -> u64 {
        self.dirty.load(Ordering::Relaxed)
    }

    /// True when memory-mapped read-only (opened with `view`).
    pub fn is_read_only(&self) -> bool {
        self.read().read_only
    }

    /// The exact-scan kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// True when the key is stored.
    pub fn contains(&self, key: u64) -> bool {
        self.read().flat.contains(key)
    }

    /// Rows stored under the key (0 or 1).
    pub fn count(&self, key: u64) -> usize {
        usize::from(self.contains(key))
    }

    /// The unpadded body stored under the key.
    pub fn get(&self, key: u64) -> Option<Vec<u8>> {
        self.read().flat.get(key).map(|row| row.body().to_vec())
    }

    /// Every key, in storage order.
    pub fn keys(&self) -> Vec<u64> {
        self.read().flat.keys().collect()
    }

    /// Up to `n` rows (key, unpadded body) from storage position `start`,
    /// for chunked iteration (positions are stable while nothing is removed).
    pub fn rows(&self, start: usize, n: usize) -> Vec<(u64, Vec<u8>)> {
        let state = self.read();
        let mut out = Vec::with_capacity(n.min(state.flat.len().saturating_sub(start)));
        let mut skip = start;
        for group in &state.flat.groups {
            let len = group.len();
            if skip >= len {
                skip -= len;
                continue;
            }
            let keys = group.keys.as_slice();
            let cols: Vec<&[u64]> = group.cols.iter().map(Words::as_slice).collect();
            for i in skip..len {
                if out.len() == n {
                    return out;
                }
                let mut body = Vec::with_capacity(8 * cols.len());
                for col in &cols {
                    body.extend_from_slice(&col[i].to_le_bytes());
                }
                out.push((keys[i], body));
            }
            skip = 0;
        }
        out
    }

    /// Bytes `save` would write (main file and graph), within a few hundred
    /// bytes of header. Walks the graph's node levels: O(rows).
    pub fn serialized_bytes(&self) -> u64 {
        let state = self.read();
        let words: usize = state
            .flat
            .groups
            .iter()
            .map(|g| g.len() * (1 + g.cols.len()))
            .sum();
        let graph = state.graph.loaded().map_or(0, Hnsw::serialized_length);
        (512 + words * 8 + graph) as u64
    }

    /// Add one body; `Ok(false)` when the key is already stored (skipped).
    pub fn add(&self, key: u64, body: &[u8]) -> Result<bool, IndexError> {
        Ok(self.add_batch(&[key], &[body])? == 1)
    }

    /// Add a batch; keys already stored (or repeated in the batch) are
    /// skipped. Every body is validated before anything is added. Returns
    /// the number of rows added.
    pub fn add_batch<B: AsRef<[u8]> + Sync>(
        &self,
        keys: &[u64],
        bodies: &[B],
    ) -> Result<usize, IndexError> {
        let mut state = self.writable()?;
        let rows = Self::checked_rows(keys, bodies, state.options.max_dim)?;
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let fresh: Vec<(u64, Row)> = keys
            .iter()
            .zip(rows)
            .filter(|(k, _)| seen.insert(**k) && !state.flat.contains(**k))
            .map(|(k, r)| (*k, r))
            .collect();
        let added = Self::insert(&mut state, &fresh)?;
        self.dirty.fetch_add(added as u64, Ordering::Relaxed);
        Ok(added)
    }

    /// Insert or replace one body (last write wins).
    pub fn upsert(&self, key: u64, body: &[u8]) -> Result<(), IndexError> {
        self.upsert_batch(&[key], &[body])
    }

    /// Insert or replace a batch; for a key repeated in the batch the last
    /// body wins.
    pub fn upsert_batch<B: AsRef<[u8]> + Sync>(
        &self,
        keys: &[u64],
        bodies: &[B],
    ) -> Result<(), IndexError> {
        let mut state = self.writable()?;
        let rows = Self::checked_rows(keys, bodies, state.options.max_dim)?;
        let mut last = std::collections::HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            last.insert(*k, i);
        }
        let mut removed = 0u64;
        let mut fresh = Vec::with_capacity(last.len());
        for (i, (k, row)) in keys.iter().zip(rows).enumerate() {
            if last.get(k) != Some(&i) {
                continue;
            }
            if state.flat.get(*k) == Some(row) {
                continue; // identical: nothing to do
            }
            if state.flat.remove(*k) {
                if !state.deferred {
                    state.graph.get()?.remove(*k).map_err(IndexError::Native)?;
                }
                removed += 1;
            }
            fresh.push((*k, row));
        }
        let added = Self::insert(&mut state, &fresh)?;
        self.dirty
            .fetch_add(removed + added as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Remove a key; `Ok(false)` when it was not stored.
    pub fn remove(&self, key: u64) -> Result<bool, IndexError> {
        Ok(self.remove_batch(&[key])? == 1)
    }

    /// Remove keys; returns how many were stored.
    pub fn remove_batch(&self, keys: &[u64]) -> Result<usize, IndexError> {
        let mut state = self.writable()?;
        let mut removed = 0;
        for &key in keys {
            if state.flat.remove(key) {
                if !state.deferred {
                    state.graph.get()?.remove(key).map_err(IndexError::Native)?;
                }
                removed += 1;
            }
        }
        self.dirty.fetch_add(removed as u64, Ordering::Relaxed);
        Ok(removed)
    }

    /// Remove everything (the parameters stay).
    pub fn reset(&self) -> Result<(), IndexError> {
        let mut state = self.writable()?;
        state.graph = Graph::Ready(Hnsw::new(state.options.graph()).map_err(IndexError::Native)?);
        state.flat = FlatStore::default();
        state.deferred = state.options.exact_threshold > 0;
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn checked_rows<B: AsRef<[u8]>>(
        keys: &[u64],
        bodies: &[B],
        max_dim: usize,
    ) -> Result<Vec<Row>, IndexError> {
        if keys.len() != bodies.len() {
            return Err(IndexError::BatchMismatch {
                keys: keys.len(),
                bodies: bodies.len(),
            });
        }
        keys.iter()
            .zip(bodies)
            .map(|(k, b)| row_of(Some(*k), b.as_ref(), max_dim))
            .collect()
    }

    /// Add new rows to graph and flat store; the graph part runs on all
    /// cores (the exclusive lock is held, so every usearch thread slot is free).
    fn insert(state: &mut State, rows: &[(u64, Row)]) -> Result<usize, IndexError> {
        if rows.is_empty() {
            return Ok(0);
        }
        if state.deferred {
            for (key, row) in rows {
                state.flat.insert(*key, row);
            }
            if state.flat.len() > state.options.exact_threshold {
                Self::build_graph(state)?;
            }
            return Ok(rows.len());
        }
        let result = Self::graph_insert(state, rows);
        // Keep the flat store equal to the graph; only after a failure must
        // each row be checked against the graph.
        let mut added = 0;
        for (key, row) in rows {
            if result.is_ok() || state.graph.get()?.contains(*key) {
                state.flat.insert(*key, row);
                added += 1;
            }
        }
        result.map(|()| added)
    }

    /// Add rows to the graph on all cores. On failure, rows the graph did
    /// not take are dropped from the flat store too (the two stay equal).
    fn graph_insert(state: &mut State, rows: &[(u64, Row)]) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        state
            .graph
            .get_mut()?
            .ensure_capacity(rows.len())
            .map_err(IndexError::Native)?;
        let threads = rayon::current_num_threads().clamp(1, Hnsw::THREAD_SLOTS);
        let chunk = rows.len().div_ceil(threads).max(64);
        let hnsw = state.graph.get()?;
        let results: Vec<Result<(), String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = rows
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        for (key, row) in part {
                            hnsw.add(*key, &row.0)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("a graph insertion thread panicked".into()))
                })
                .collect()
        });
        match results.into_iter().find_map(Result::err) {
            Some(why) => Err(IndexError::Native(why)),
            None => Ok(()),
        }
    }

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
        let row = row_of(None, query, 256)?;
        self.ensure_graph(options)?;
        if let Some(ef) = options
            .expansion_search
            .filter(|_| options.exact != Some(true))
        {
            return self.with_expansion(ef, |state| self.search_row(state, &row, options, keep));
        }
        let state = self.read();
        self.search_row(&state, &row, options, keep)
    }

    fn use_exact(state: &State, options: &SearchOptions) -> bool {
        options
            .exact
            .unwrap_or(state.flat.len() <= state.options.exact_threshold)
    }

    fn search_row(
        &self,
        state: &State,
        row: &Row,
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
    ) -> Result<Vec<Hit>, IndexError> {
        let exact = |state: &State| {
            state.flat.search(
                self.kernel,
                &ScanQuery::new(row),
                options.count,
                options.max_distance,
                keep,
            )
        };
        if options.count == 0 || state.flat.len() == 0 {
            return Ok(Vec::new());
        }
        if Self::use_exact(state, options) || state.deferred {
            return Ok(exact(state));
        }
        let graph = state.graph.get()?;
        let _slot = self.slots.acquire();
        let found = match keep {
            Some(keep) => graph.filtered_search(&row.0, options.count, keep),
            None => graph.search(&row.0, options.count),
        };
        Ok(match found {
            Ok((keys, distances)) => hits(keys, distances, options.max_distance),
            // usearch only fails a search on exhausted resources; the exact
            // scan is always correct.
            Err(_) => exact(state),
        })
    }

    /// Run `f` with a per-call `expansion_search` under the exclusive lock
    /// (usearch keeps the setting per index), restoring the default after.
    fn with_expansion<T>(
        &self,
        ef: usize,
        f: impl FnOnce(&State) -> Result<T, IndexError>,
    ) -> Result<T, IndexError> {
        if ef == 0 {
            return Err(IndexError::Option(
                "expansion_search must be at least 1".into(),
            ));
        }
        let mut state = self.write();
        let default = state.options.expansion_search;
        state.graph.set_expansion_search(ef);
        let result = f(&state);
        state.graph.set_expansion_search(default);
        result
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
        let rows: Vec<Row> = queries
            .iter()
            .map(|q| row_of(None, q.as_ref(), 256))
            .collect::<Result<_, _>>()?;
        self.ensure_graph(options)?;
        let run = || -> Result<Vec<Vec<Hit>>, IndexError> {
            if let Some(ef) = options
                .expansion_search
                .filter(|_| options.exact != Some(true))
            {
                return self
                    .with_expansion(ef, |state| self.batch_rows(state, &rows, options, keep));
            }
            let state = self.read();
            self.batch_rows(&state, &rows, options, keep)
        };
        match options.threads {
            Some(n) => rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .build()
                .map_err(|e| IndexError::Option(format!("threads: {e}")))?
                .install(run),
            None => run(),
        }
    }

    fn batch_rows(
        &self,
        state: &State,
        rows: &[Row],
        options: &SearchOptions,
        keep: Option<Keep<'_>>,
    ) -> Result<Vec<Vec<Hit>>, IndexError> {
        if (Self::use_exact(state, options) || state.deferred) && options.count > 0 {
            // Chunks of queries share each cached block of rows.
            const CHUNK: usize = 16;
            let queries: Vec<ScanQuery> = rows.iter().map(ScanQuery::new).collect();
            return Ok(queries
                .par_chunks(CHUNK)
                .flat_map_iter(|chunk| {
                    state.flat.search_many(
                        self.kernel,
                        chunk,
                        options.count,
                        options.max_distance,
                        keep,
                    )
                })
                .collect());
        }
        rows.par_iter()
            .map(|row| self.search_row(state, row, options, keep))
            .collect()
    }

    /// Figures of the index.
    pub fn stats(&self) -> UnitIndexStats {
        let state = self.read();
        let g = &state.flat.groups;
        UnitIndexStats {
            len: state.flat.len(),
            len_by_bits: [g[0].len(), g[1].len(), g[2].len(), g[3].len()],
            capacity: state.graph.loaded().map_or(0, Hnsw::capacity),
            options: state.options,
            graph_memory: state.graph.loaded().map_or(0, Hnsw::memory_usage),
            graph_serialized: state.graph.loaded().map_or(0, Hnsw::serialized_length),
            kernel: self.kernel.name(),
            read_only: state.read_only,
            dirty: self.dirty(),
        }
    }
}

// ---- persistence ---------------------------------------------------------

/// The JSON header of a saved unit index.
#[derive(Debug, Serialize, Deserialize)]
struct FileHeader {
    format: u32,
    options: UnitIndexOptions,
    /// Rows per group (64, 128, 192, 256 bits).
    groups: [usize; 4],
    /// Size of the graph file written with it.
    graph_bytes: u64,
    /// The graph is deferred (empty): see the module docs.
    #[serde(default)]
    deferred: bool,
    /// xxh3-64 of the graph file, verified before usearch reads it
    /// (absent in files written before checksums were kept).
    #[serde(default)]
    graph_xxh3: Option<u64>,
}

/// `path` + ".hnsw": the usearch graph beside the main file.
pub fn graph_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".hnsw");
    PathBuf::from(p)
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".tmp");
    PathBuf::from(p)
}

fn path_str(path: &Path) -> Result<&str, IndexError> {
    path.to_str().ok_or_else(|| IndexError::Io {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "path is not UTF-8"),
    })
}

/// fsync a file and its directory.
fn sync_file_and_dir(path: &Path) -> Result<(), IndexError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn u64s_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: u64 has no padding; the byte view covers exactly the slice,
    // and u8 has alignment 1.
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), std::mem::size_of_val(words)) }
}

impl UnitIndex {
    /// Save to `path` and `path.hnsw` (atomic replace, fsync'd); resets `dirty`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        let path = path.as_ref();
        let state = self.read();
        let graph = graph_path(path);
        let graph_tmp = tmp_path(&graph);
        state
            .graph
            .get()?
            .save(path_str(&graph_tmp)?)
            .map_err(|why| {
                // usearch reports a failed write as text: a full disk is
                // told apart by looking at the free space.
                if crate::kind::disk_is_full(&graph_tmp) {
                    IndexError::Io {
                        path: graph_tmp.clone(),
                        source: io::Error::from_raw_os_error(libc::ENOSPC),
                    }
                } else {
                    IndexError::Native(why)
                }
            })?;
        sync_file_and_dir(&graph_tmp)?;
        let (graph_bytes, graph_xxh3) = {
            let f = File::open(&graph_tmp).map_err(io_err(&graph_tmp))?;
            // SAFETY: a private temporary file this call just wrote and
            // synced; nothing else writes it.
            let map = unsafe { Mmap::map(&f) }.map_err(io_err(&graph_tmp))?;
            (map.len() as u64, checksum(&map))
        };

        let g = &state.flat.groups;
        let header = FileHeader {
            format: FORMAT_VERSION,
            options: state.options,
            groups: [g[0].len(), g[1].len(), g[2].len(), g[3].len()],
            graph_bytes,
            deferred: state.deferred,
            graph_xxh3: Some(graph_xxh3),
        };
        let json = serde_json::to_vec(&header).map_err(|e| IndexError::Native(e.to_string()))?;
        let tmp = tmp_path(path);
        {
            let mut f = io::BufWriter::new(File::create(&tmp).map_err(io_err(&tmp))?);
            let mut head = Vec::with_capacity(16 + json.len() + 8);
            head.extend_from_slice(MAGIC);
            head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
            head.extend_from_slice(&(json.len() as u32).to_le_bytes());
            head.extend_from_slice(&json);
            head.resize(head.len().next_multiple_of(8), b' ');
            f.write_all(&head).map_err(io_err(&tmp))?;
            f.flush().map_err(io_err(&tmp))?;
            crate::fault::check(&tmp).map_err(io_err(&tmp))?;
            for group in g {
                f.write_all(u64s_as_bytes(group.keys.as_slice()))
                    .map_err(io_err(&tmp))?;
                for col in &group.cols {
                    f.write_all(u64s_as_bytes(col.as_slice()))
                        .map_err(io_err(&tmp))?;
                }
            }
            f.into_inner()
                .map_err(|e| io_err(&tmp)(e.into_error()))?
                .sync_all()
                .map_err(io_err(&tmp))?;
        }
        // Graph first, then the main file that names its size.
        fs::rename(&graph_tmp, &graph).map_err(io_err(&graph))?;
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_file_and_dir(path)?;
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Read and check the header; returns it and the data offset.
    fn read_header(path: &Path, bytes: &[u8]) -> Result<(FileHeader, usize), IndexError> {
        let corrupt = |why: &str| IndexError::Corrupt {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(corrupt("missing IVDBUNIT magic"));
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != FORMAT_VERSION {
            return Err(IndexError::IncompatibleFormat {
                path: path.to_path_buf(),
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let json_len = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
        let json = bytes
            .get(16..16 + json_len)
            .ok_or_else(|| corrupt("truncated header"))?;
        let header: FileHeader =
            serde_json::from_slice(json).map_err(|e| corrupt(&format!("bad header: {e}")))?;
        header.options.validate()?;
        let offset = (16 + json_len).next_multiple_of(8);
        let words: usize = header
            .groups
            .iter()
            .enumerate()
            .map(|(g, n)| n * (g + 2))
            .sum();
        if bytes.len() != offset + words * 8 {
            return Err(corrupt(&format!(
                "{} bytes, expected {} (truncated or padded)",
                bytes.len(),
                offset + words * 8
            )));
        }
        Ok((header, offset))
    }

    /// The flat store over file bytes: owned copies, or slices of the map.
    fn flat_from(header: &FileHeader, offset: usize, map: &Arc<Mmap>, copy: bool) -> FlatStore {
        let mut flat = FlatStore::default();
        let mut pos = offset;
        let mut take = |len: usize| {
            let words = if copy {
                let bytes = &map[pos..pos + len * 8];
                Words::Owned(
                    bytes
                        .chunks_exact(8)
                        .map(|c| {
                            u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                        })
                        .collect(),
                )
            } else {
                Words::Mapped {
                    map: Arc::clone(map),
                    offset: pos,
                    len,
                }
            };
            pos += len * 8;
            words
        };
        for (g, &n) in header.groups.iter().enumerate() {
            let keys = take(n);
            let cols = (0..=g).map(|_| take(n)).collect();
            flat.groups[g] = Group { keys, cols };
        }
        flat.reindex();
        flat
    }

    fn open_file(path: &Path, view: bool) -> Result<State, IndexError> {
        let file = File::open(path).map_err(io_err(path))?;
        // SAFETY: the file is opened read-only and files are only ever
        // replaced by rename, never modified in place, so the mapping's
        // contents do not change under us.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(io_err(path))?);
        let (header, offset) = Self::read_header(path, &map)?;
        if !cfg!(target_endian = "little") {
            return Err(IndexError::Corrupt {
                path: path.to_path_buf(),
                why: "unit index files are little-endian".into(),
            });
        }
        let flat = Self::flat_from(&header, offset, &map, !view);
        let graph_rows = if header.deferred { 0 } else { flat.len() };
        let file = GraphFile::open(&graph_path(path), header.graph_bytes, header.graph_xxh3)?;
        let graph = if view {
            Graph::Lazy(LazyGraph {
                file,
                params: header.options.graph(),
                rows: graph_rows,
                cell: std::sync::OnceLock::new(),
            })
        } else {
            let hnsw = file.load(header.options.graph())?;
            if hnsw.size() != graph_rows {
                return Err(IndexError::Corrupt {
                    path: file.path.clone(),
                    why: format!(
                        "{} rows, but the flat store has {}",
                        hnsw.size(),
                        graph_rows
                    ),
                });
            }
            Graph::Ready(hnsw)
        };
        Ok(State {
            graph,
            flat,
            options: header.options,
            read_only: view,
            deferred: header.deferred,
        })
    }

    /// Replace this index with the one saved at `path`, read into RAM.
    pub fn load(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        let state = Self::open_file(path.as_ref(), false)?;
        *self.write() = state;
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Replace this index with the one saved at `path`, memory-mapped
    /// read-only (writes then return [`IndexError::ReadOnly`]).
    pub fn view(&self, path: impl AsRef<Path>) -> Result<(), IndexError> {
        let state = Self::open_file(path.as_ref(), true)?;
        *self.write() = state;
        self.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Open a saved index: into RAM, or memory-mapped read-only with `view`.
    /// Needs no parameters: they come from the file.
    pub fn restore(path: impl AsRef<Path>, view: bool) -> Result<UnitIndex, IndexError> {
        Ok(UnitIndex::from_state(Self::open_file(path.as_ref(), view)?))
    }

    /// A deep, writable copy in RAM (dirty 0).
    pub fn copy(&self) -> Result<UnitIndex, IndexError> {
        let state = self.read();
        let mut flat = state.flat.clone();
        flat.make_owned();
        let hnsw = state.graph.get()?.copy().map_err(IndexError::Native)?;
        Ok(UnitIndex::from_state(State {
            graph: Graph::Ready(hnsw),
            flat,
            options: state.options,
            read_only: false,
            deferred: state.deferred,
        }))
    }
}
