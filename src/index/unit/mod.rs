//! `UnitIndex`: one similarity index of variable-length unit bodies (64–256
//! bits) under NPHD — a usearch HNSW graph for approximate search plus the
//! flat store for exact search, `get` and iteration.
//!
//! Concurrency: the index is `Send + Sync`. Searches, `get` and `contains`
//! read a snapshot of the index and hold no lock while they run (see
//! `state.rs`); writers take turns, add a batch to the graph on several
//! threads beside the searches and publish the next snapshot in one swap.
//! Each HNSW search or insertion takes one of usearch's thread slots
//! through a semaphore. A search with its own `expansion_search` waits
//! only for walks with another value (usearch keeps that setting per
//! index; see `gate.rs`).
//!
//! Duplicate keys: `add` skips a key that is already stored (and later
//! repeats of a key within one batch), as iscc-usearch does, and reports how
//! many rows it added; `upsert` replaces (last write wins).
//!
//! Deferred graph: while every search is an exact scan — `exact_threshold`
//! `auto` and scanning this many rows estimated cheaper than a graph search
//! on this machine (see `paths.rs` and `index::cost`), or at most a fixed
//! number of rows — no graph is built and adds cost only the flat store.
//! When the index grows past that point the graph is built from all rows
//! in the background, beside writes and searches, and adopted by a later
//! writer's turn (see `build.rs`): no add waits for it. A threshold change
//! that wants a graph, or an explicitly approximate search (`exact:
//! Some(false)`), builds it at once. With a graph, `auto` picks per search
//! the path measured cheaper on this index.
//!
//! Partitioned lists: with `partition` `auto` (the default) or `always`
//! and `exact_threshold` `auto`, a growing index partitions its rows into
//! lists in the background from a few tens of thousands of rows, keeps the
//! layout when probing is measured at least twice as fast as the scan at
//! the target recall on its own rows (`always`: whatever it costs), and
//! retrains as it doubles (see `retrain.rs`). A partitioned index builds no
//! graph: its approximate searches probe lists, `exact: Some(true)` scans
//! them all.
//!
//! Files: `save(path)` writes `path` (format header, parameters and the flat
//! store, laid out as in memory so `view` maps it without copying) and
//! `path.hnsw` (the usearch graph). Both are written to a temporary name,
//! fsync'd and renamed; the main file's rename commits the save (see
//! `file.rs`: a save cut anywhere opens as the old save or the new).
//!
//! Files of this module: `error.rs` (what can go wrong), `options.rs`
//! (parameters and figures), `slots.rs` (the thread-slot semaphore),
//! `search.rs` (exact and graph search), `file.rs` (the on-disk format),
//! `state.rs` (snapshots, the graph's lock and the writer's turn),
//! `build.rs` (deferred graphs built in the background), `lists.rs`
//! (explicit partitions), `retrain.rs` (partitions chosen by cost, in the
//! background).
//! Lock order: the writer's turn, then the swap lock or a thread slot, then
//! the graph's lock; never the other way round.

mod buffer;
mod build;
mod calibration;
#[cfg(test)]
mod compact_tests;
mod error;
mod file;
mod gate;
mod lists;
mod options;
mod paths;
mod retrain;
mod search;
mod slots;
mod state;

pub use calibration::{NEAR, NEAR_RECALL, TARGET_RECALL};
pub use error::IndexError;
pub use file::graph_path;
pub(crate) use options::check_max_dim;
pub use options::{
    ExactThreshold, Partition, SearchOptions, UnitIndexOptions, UnitIndexStats, DEFAULT_COUNT,
};
pub use retrain::{
    PartitionReport, MIN_ROWS as AUTO_PARTITION_ROWS, RECALIBRATE, ROWS_PER_LIST, SETTLE,
};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::flat::{FlatStore, Hit};
use super::graph::Graph;
use super::hnsw::Hnsw;
use crate::metric::scan::Kernel;
use crate::metric::Row;
use crate::sync::read_lock;
use slots::Slots;
use state::{GraphCell, State, Writer};

/// One NPHD similarity index of unit bodies; see the module docs.
pub struct UnitIndex {
    /// The published snapshot; its lock is held only to clone or replace
    /// the `Arc` (see `state.rs`).
    current: std::sync::RwLock<Arc<State>>,
    /// Writers take turns on it; searches never do.
    writer: Mutex<()>,
    slots: Slots,
    dirty: AtomicU64,
    kernel: Kernel,
    /// What this index's scans and graph searches cost (see `paths.rs`).
    paths: paths::PathCosts,
    /// A deferred graph being built in the background (see `build.rs`).
    build: Mutex<Option<build::Build>>,
    /// A partition being trained in the background (see `retrain.rs`).
    retrain: Mutex<Option<retrain::Retrain>>,
    next_attempt: retrain::NextAttempt,
}

impl Drop for UnitIndex {
    fn drop(&mut self) {
        self.cancel_build();
        self.cancel_partition();
    }
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
        Ok(UnitIndex::from_state(State::new(
            Graph::Ready(hnsw),
            FlatStore::default(),
            options,
            false,
            options.exact_threshold != ExactThreshold::Rows(0),
        )))
    }

    fn from_state(state: State) -> UnitIndex {
        UnitIndex {
            current: std::sync::RwLock::new(Arc::new(state)),
            writer: Mutex::new(()),
            slots: Slots::new(Hnsw::THREAD_SLOTS),
            dirty: AtomicU64::new(0),
            kernel: Kernel::detect(),
            paths: paths::PathCosts::default(),
            build: Mutex::new(None),
            retrain: Mutex::new(None),
            next_attempt: retrain::NextAttempt::default(),
        }
    }

    /// The current snapshot (see `state.rs`): hold it, not a lock.
    fn snapshot(&self) -> Arc<State> {
        Arc::clone(&read_lock(&self.current))
    }

    /// The writer's turn, refused on a read-only view.
    fn writable(&self) -> Result<Writer<'_>, IndexError> {
        let writer = Writer::new(self);
        if writer.state().read_only {
            return Err(IndexError::ReadOnly);
        }
        Ok(writer)
    }

    /// The parameters.
    pub fn options(&self) -> UnitIndexOptions {
        self.snapshot().options
    }

    /// Change the default `expansion_search` (persisted on save).
    pub fn set_expansion_search(&self, n: usize) -> Result<(), IndexError> {
        if n == 0 {
            return Err(IndexError::Option(
                "expansion_search must be at least 1".into(),
            ));
        }
        let mut writer = Writer::new(self);
        writer.state().graph.set_expansion_search(n);
        writer.edit(0, |state| state.options.expansion_search = n);
        Ok(())
    }

    /// Change the exact-search threshold (persisted on save). A deferred
    /// graph the new setting wants for the current size is built now.
    pub fn set_exact_threshold(
        &self,
        threshold: impl Into<ExactThreshold>,
    ) -> Result<(), IndexError> {
        let threshold = threshold.into();
        let mut writer = Writer::new(self);
        writer.edit(0, |state| state.options.exact_threshold = threshold);
        let state = writer.state();
        if state.deferred && !state.read_only && Self::graph_wanted(&state) {
            drop(state);
            self.build_graph(&mut writer)?;
        }
        Ok(())
    }

    /// True while the graph is deferred (see the module docs).
    pub fn graph_deferred(&self) -> bool {
        self.snapshot().deferred
    }

    /// Make sure a graph exists before an explicitly approximate search;
    /// adopt a finished background build when the writer is idle.
    fn ensure_graph(&self, options: &SearchOptions) -> Result<(), IndexError> {
        self.adopt_if_idle();
        // A partitioned index answers an approximate search by its lists.
        let state = self.snapshot();
        if options.exact == Some(false) && state.deferred && state.flat.quantizer.is_none() {
            drop(state);
            let mut writer = Writer::new(self);
            if !writer.state().read_only {
                self.build_graph(&mut writer)?;
            }
        }
        Ok(())
    }

    /// Rows stored.
    pub fn len(&self) -> usize {
        self.snapshot().flat.len()
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
        self.snapshot().read_only
    }

    /// The exact-scan kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// Do now what the first write would otherwise do first: build the
    /// key map of a restored index (about 0.3 s at 1M rows).
    pub(crate) fn prepare_writes(&self) {
        self.snapshot().flat.build_key_map();
    }

    /// True when the key is stored.
    pub fn contains(&self, key: u64) -> bool {
        self.snapshot().flat.contains(key)
    }

    /// Rows stored under the key (0 or 1).
    pub fn count(&self, key: u64) -> usize {
        usize::from(self.contains(key))
    }

    /// The unpadded body stored under the key.
    pub fn get(&self, key: u64) -> Option<Vec<u8>> {
        self.snapshot().flat.get(key).map(|row| row.body().to_vec())
    }

    /// Every key, in storage order.
    pub fn keys(&self) -> Vec<u64> {
        self.snapshot().flat.keys().collect()
    }

    /// Up to `n` rows (key, unpadded body) from storage position `start`,
    /// for chunked iteration (positions are stable while nothing is removed).
    pub fn rows(&self, start: usize, n: usize) -> Vec<(u64, Vec<u8>)> {
        self.snapshot().flat.page(start, n)
    }

    /// Bytes `save` would write (main file and graph), within a few hundred
    /// bytes of header. Walks the graph's node levels: O(rows).
    pub fn serialized_bytes(&self) -> u64 {
        let state = self.snapshot();
        let words: usize = state
            .flat
            .groups()
            .map(|g| g.len() * (1 + g.words()))
            .sum::<usize>()
            + state.flat.odd.len() * file::ODD_ROW_WORDS;
        let graph = state.graph.loaded(|g| g.map_or(0, Hnsw::serialized_length));
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
        self.trial_first(keys.len());
        let mut writer = self.writable()?;
        let state = writer.state();
        let rows = Self::checked_rows(keys, bodies, state.options.max_dim)?;
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let fresh: Vec<(u64, Row)> = keys
            .iter()
            .zip(rows)
            .filter(|(k, _)| seen.insert(**k) && !state.flat.contains(**k))
            .map(|(k, r)| (*k, r))
            .collect();
        drop(state);
        let added = self.insert(&mut writer, &fresh)?;
        self.dirty.fetch_add(added as u64, Ordering::Relaxed);
        Ok(added)
    }

    /// Add a batch under keys the index chooses (iscc-usearch's
    /// `add(None, …)`): counting up from the number of stored rows and
    /// skipping keys in use, so a generated key never collides with a
    /// stored one (usearch's rule, keys from the current size, does after a
    /// removal). Every body is validated before anything is added. Returns
    /// the keys, one per body, in order.
    pub fn add_generated<B: AsRef<[u8]> + Sync>(
        &self,
        bodies: &[B],
    ) -> Result<Vec<u64>, IndexError> {
        self.trial_first(bodies.len());
        let mut writer = self.writable()?;
        let state = writer.state();
        let max_dim = state.options.max_dim;
        let rows = bodies
            .iter()
            .map(|b| row_of(None, b.as_ref(), max_dim))
            .collect::<Result<Vec<_>, _>>()?;
        let mut next = state.flat.len() as u128;
        let mut fresh = Vec::with_capacity(rows.len());
        for row in rows {
            while next <= u128::from(u64::MAX) && state.flat.contains(next as u64) {
                next += 1;
            }
            let key = u64::try_from(next).map_err(|_| {
                IndexError::Option("no free key left to generate (every key is in use)".into())
            })?;
            fresh.push((key, row));
            next += 1;
        }
        drop(state);
        let added = self.insert(&mut writer, &fresh)?;
        self.dirty.fetch_add(added as u64, Ordering::Relaxed);
        Ok(fresh.into_iter().map(|(k, _)| k).collect())
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
        self.trial_first(keys.len());
        let mut writer = self.writable()?;
        let state = writer.state();
        let rows = Self::checked_rows(keys, bodies, state.options.max_dim)?;
        let mut last = std::collections::HashMap::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            last.insert(*k, i);
        }
        let mut replaced = Vec::new();
        let mut fresh = Vec::with_capacity(last.len());
        for (i, (k, row)) in keys.iter().zip(rows).enumerate() {
            if last.get(k) != Some(&i) {
                continue;
            }
            match state.flat.get(*k) {
                Some(old) if old == row => continue, // identical: nothing to do
                Some(_) => replaced.push(*k),
                None => {}
            }
            fresh.push((*k, row));
        }
        drop(state);
        self.remove_present(&mut writer, &replaced)?;
        let added = self.insert(&mut writer, &fresh)?;
        self.dirty
            .fetch_add(replaced.len() as u64 + added as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Remove a key; `Ok(false)` when it was not stored.
    pub fn remove(&self, key: u64) -> Result<bool, IndexError> {
        Ok(self.remove_batch(&[key])? == 1)
    }

    /// Remove keys; returns how many were stored.
    pub fn remove_batch(&self, keys: &[u64]) -> Result<usize, IndexError> {
        let mut writer = self.writable()?;
        let state = writer.state();
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let present: Vec<u64> = keys
            .iter()
            .copied()
            .filter(|k| seen.insert(*k) && state.flat.contains(*k))
            .collect();
        drop(state);
        self.remove_present(&mut writer, &present)?;
        self.dirty
            .fetch_add(present.len() as u64, Ordering::Relaxed);
        Ok(present.len())
    }

    /// Remove stored keys (no repeats): from the graph first (a search
    /// between sees them in its state but not in the graph, and misses them
    /// there as it would after), then from the flat store.
    fn remove_present(&self, writer: &mut Writer<'_>, keys: &[u64]) -> Result<(), IndexError> {
        if keys.is_empty() {
            return Ok(());
        }
        let state = writer.state();
        if !state.deferred {
            for &key in keys {
                state
                    .graph
                    .with(&state.flat, |g| g.remove(key))?
                    .map_err(IndexError::Native)?;
            }
        }
        drop(state);
        self.note_written(keys.iter().copied());
        writer.edit(keys.len(), |state| {
            let flat = Arc::make_mut(&mut state.flat);
            for &key in keys {
                flat.remove(key);
            }
        });
        Ok(())
    }

    /// Remove everything (the parameters stay).
    pub fn reset(&self) -> Result<(), IndexError> {
        let mut writer = self.writable()?;
        self.cancel_build();
        self.restart_partitions(None);
        let options = writer.state().options;
        let hnsw = Hnsw::new(options.graph()).map_err(IndexError::Native)?;
        writer.publish(State::new(
            Graph::Ready(hnsw),
            FlatStore::default(),
            options,
            false,
            options.exact_threshold != ExactThreshold::Rows(0),
        ));
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

    /// Add new rows (keys not stored) to graph and flat store: the graph
    /// first, on several threads beside the searches, then the flat store
    /// in one published edit.
    fn insert(&self, writer: &mut Writer<'_>, rows: &[(u64, Row)]) -> Result<usize, IndexError> {
        if rows.is_empty() {
            return Ok(0);
        }
        self.note_written(rows.iter().map(|(k, _)| *k));
        let state = writer.state();
        if state.deferred {
            drop(state);
            Self::flat_insert(writer, rows.iter());
            // A partition is adopted or started first: while one is
            // trained, or once adopted, no graph is wanted.
            self.retrain_turn(writer)?;
            // A finished background build is adopted (these rows join it);
            // else one is started when the graph now pays. Never built
            // here: the add does not wait (see `build.rs`).
            // A failed build leaves the graph deferred: these rows are
            // stored either way, and the check below starts another.
            let _ = self.adopt_build(writer, false);
            // While a build runs, the cost model need not be asked again.
            let state = writer.state();
            if state.deferred
                && self.graph_allowed(&state)
                && !self.build_pending()
                && Self::graph_wanted(&state)
            {
                drop(state);
                self.start_build(writer)?;
            }
            return Ok(rows.len());
        }
        let result = self.graph_insert(&state.graph, &state.flat, rows);
        // Keep the flat store equal to the graph; only after a failure must
        // each row be checked against the graph.
        let mut taken = Vec::with_capacity(rows.len());
        for row in rows {
            if result.is_ok() || state.graph.with(&state.flat, |g| g.contains(row.0))? {
                taken.push(row);
            }
        }
        drop(state);
        let added = taken.len();
        Self::flat_insert(writer, taken.into_iter());
        result?;
        self.retrain_turn(writer)?;
        Ok(added)
    }

    /// Add rows to the flat store in one edit.
    fn flat_insert<'r>(
        writer: &mut Writer<'_>,
        rows: impl ExactSizeIterator<Item = &'r (u64, Row)>,
    ) {
        writer.edit(rows.len(), |state| {
            let flat = Arc::make_mut(&mut state.flat);
            for (key, row) in rows {
                flat.insert(*key, row);
            }
        });
    }

    /// Add rows to `graph` on several threads (each holding a usearch
    /// thread slot, so searches of the same graph run beside them). On
    /// failure some rows may be in the graph and others not.
    fn graph_insert(
        &self,
        graph: &GraphCell,
        flat: &FlatStore,
        rows: &[(u64, Row)],
    ) -> Result<(), IndexError> {
        if rows.is_empty() {
            return Ok(());
        }
        graph
            .with_mut(flat, |g| g.ensure_capacity(rows.len()))?
            .map_err(IndexError::Native)?;
        let threads = rayon::current_num_threads().clamp(1, Hnsw::THREAD_SLOTS);
        build::on_threads(rows, threads, |part| {
            let _slot = self.slots.acquire();
            for (key, row) in part {
                graph
                    .with(flat, |g| g.add(*key, &row.0))?
                    .map_err(IndexError::Native)?;
            }
            Ok(())
        })
    }

    /// Figures of the index.
    pub fn stats(&self) -> UnitIndexStats {
        let state = self.snapshot();
        let (capacity, graph_len, graph_memory, graph_serialized) = state.graph.loaded(|graph| {
            graph.map_or((0, 0, 0, 0), |h| {
                (
                    h.capacity(),
                    h.size(),
                    h.memory_usage(),
                    h.serialized_length(),
                )
            })
        });
        let (lists, nprobe) = state.flat.layout();
        UnitIndexStats {
            len: state.flat.len(),
            len_by_bits: std::array::from_fn(|g| state.flat.len_of_group(g)),
            capacity,
            graph_len,
            options: state.options,
            graph_memory,
            graph_serialized,
            kernel: self.kernel.name(),
            read_only: state.read_only,
            dirty: self.dirty(),
            lists,
            nprobe,
            partition_pending: self.partition_pending(),
            last_partition: self.last_partition(),
        }
    }
}
