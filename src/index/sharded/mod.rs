//! `ShardedIndex`: a similarity index that outgrows one in-RAM graph.
//!
//! Rows live in *shards*, each a [`UnitIndex`]. One **active** shard in RAM
//! takes every write; when its serialized size passes `shard_size` it is
//! frozen, written to disk under a new file generation and replaced by its
//! memory-mapped copy (**sealed**). A batch that crosses the boundary is
//! split there, so no shard grows far past `shard_size`. Rotation runs
//! inline or on a background thread with back-pressure
//! (`max_pending_rotations`); a frozen shard stays in the shard list — and
//! searchable — until its mapped copy takes its place in one step, so no
//! read ever misses it.
//!
//! * Keys: `u64` or 128-bit (`[u8; 16]`, see [`key`]); vectors: ISCC unit
//!   bodies under NPHD (64–256 bits, any mix) or fixed-length bit vectors
//!   under plain Hamming ([`VectorKind`]).
//! * Every live key has exactly one live copy. `add`/`add_once` skip keys
//!   that are live anywhere (first write wins); `upsert` writes the new
//!   copy to the active shard and hides older ones (last write wins);
//!   `remove` deletes from the active shard and hides copies in sealed
//!   shards with [`tombstones`]. So `len` is always exact, and a search
//!   never returns a stale copy (the filter runs inside the graph walk and
//!   the exact scan, so hidden rows cost no result slots).
//! * A scalable bloom filter (`bloom.isbf`) rejects absent keys in `get`,
//!   `contains`, `count`, `remove` and `add` before any shard is touched.
//! * Durability: see [`manifest`]. `save` makes the current state durable;
//!   a completed rotation makes its shard durable. A crash loses at most
//!   the rows added since the last of these (the engine replays them from
//!   its journal).
//! * Concurrency: `Send + Sync`; reads run in parallel with each other and
//!   with writes (which are serialised). A writable open takes an advisory
//!   lock (`LOCK`), so a second writer process gets [`ShardedError::Locked`];
//!   read-only opens need no lock.
//!
//! Files of this module: `options.rs` (parameters), `error.rs`, `key.rs`
//! (key kinds and the per-shard key table), `shard.rs` (one shard),
//! `open.rs` (create/open/recover), `write.rs` (add, upsert, remove),
//! `promote.rs` (reading the saved active shard into RAM ahead of the
//! first write), `rotate.rs` (freezing and writing the active shard), `search.rs`,
//! `iter.rs`, `commit.rs` (manifest commits), `maintain.rs` (save, bloom
//! rebuild, compaction, close), `merge.rs` (tiered merging of sealed
//! shards), `manifest.rs`, `tombstones.rs`, `stats.rs`.
//!
//! Lock order (take them in this order, never back): `writer` (serialises
//! mutations) → `maintenance` (a merge or a compaction) → `commit`
//! (manifest commits) → `state` → a shard's key-table lock or `pending`;
//! `merge` (the merger's state) → `state`. `worker`, `merger` and
//! `dir_lock` are taken with no other lock of this index held, except
//! `worker` and `merger` under `writer` during a rotation.

mod commit;
mod error;
mod iter;
pub mod key;
mod maintain;
pub(crate) mod manifest;
mod merge;
mod open;
mod options;
mod promote;
mod rotate;
mod search;
mod shard;
mod stats;
pub(crate) mod tombstones;
mod write;

use crate::sync::{ReadGuard, RwLock, WriteGuard};
use std::collections::HashMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};

pub(crate) use self::error::io_at;
pub use self::error::ShardedError;
pub use self::iter::ShardedIter;
use self::key::bloom_hash;
pub use self::key::{KeyKind, ShardKey};
pub use self::manifest::SHARDED_FORMAT_VERSION;
pub use self::merge::MergeReport;
pub use self::options::{ShardedOptions, VectorKind, MIN_SHARD_SIZE};
pub use self::search::Match;
use self::shard::Shard;
pub use self::stats::{BloomStats, ShardedStats};
use self::tombstones::Tombstones;
use super::bloom::ScalableBloom;
use crate::lockfile::DirLock;

/// A row about to be written.
struct Fresh {
    key: u128,
    body: Vec<u8>,
    /// A live copy sits in a sealed shard and must be hidden.
    hide: bool,
}

/// How a write treats keys that already exist.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Skip keys live anywhere; first occurrence in a batch wins.
    Once,
    /// Replace; last occurrence in a batch wins.
    Upsert,
}

struct State {
    /// The shard taking writes (`None` when read-only).
    active: Option<Arc<Shard>>,
    /// Sealed shards by id, including frozen ones still being written.
    sealed: Vec<Arc<Shard>>,
    /// Tombstoned rows per sealed shard id.
    dead: HashMap<u32, u64>,
    tombstones: Arc<Tombstones>,
    /// Bumped on every tombstone change; `tomb_saved` is the version and
    /// file of the last commit.
    tomb_version: u64,
    tomb_saved: (u64, Option<String>),
    bloom: ScalableBloom,
    bloom_version: u64,
    bloom_saved: u64,
    next_label: u64,
    /// Estimated serialized bytes of the active shard, and rows since it
    /// was last measured exactly.
    active_bytes: u64,
    since_measure: usize,
    bytes_per_row: u64,
    /// Files superseded by the state (deleted after the next commit).
    garbage: Vec<String>,
    /// The last background rotation failure.
    rotation_error: Option<ShardedError>,
    /// The caller's position that the last full save reflects (see
    /// [`ShardedIndex::save_tagged`]); written with every commit.
    tag: Option<u64>,
}

impl State {
    fn shards(&self) -> Vec<Arc<Shard>> {
        let mut out: Vec<Arc<Shard>> = self.active.iter().cloned().collect();
        out.extend(self.sealed.iter().rev().cloned());
        out
    }

    fn dead_total(&self) -> u64 {
        self.dead.values().sum()
    }

    fn len(&self) -> usize {
        let rows: usize = self.shards().iter().map(|s| s.len()).sum();
        rows - self.dead_total() as usize
    }

    /// The live copy of a key: (shard, label). Newest shard first.
    fn locate(&self, kind: KeyKind, key: u128) -> Option<(Arc<Shard>, u64)> {
        if !self.bloom.contains_hash(bloom_hash(kind, key)) {
            return None;
        }
        if let Some(a) = &self.active {
            if let Some(l) = a.label(key) {
                return Some((Arc::clone(a), l));
            }
        }
        self.sealed.iter().rev().find_map(|s| {
            if self.tombstones.is_dead(key, s.id) {
                return None;
            }
            s.label(key).map(|l| (Arc::clone(s), l))
        })
    }

    fn bloom_insert(&mut self, kind: KeyKind, key: u128) {
        self.bloom.insert_hash(bloom_hash(kind, key));
        self.bloom_version += 1;
    }

    /// Hide every copy of `key` in sealed shards; returns true when a live
    /// copy was hidden.
    fn kill_sealed(&mut self, key: u128) -> bool {
        let Some(upto) = self.sealed.last().map(|s| s.id) else {
            return false;
        };
        let old = self.tombstones.get(key);
        let mut hid_live = false;
        let mut newly_dead = Vec::new();
        for s in &self.sealed {
            if old.is_some_and(|t| s.id <= t) {
                continue;
            }
            if s.label(key).is_some() {
                newly_dead.push(s.id);
                hid_live = true;
            }
        }
        if newly_dead.is_empty() {
            return false;
        }
        for id in newly_dead {
            *self.dead.entry(id).or_insert(0) += 1;
        }
        Arc::make_mut(&mut self.tombstones).kill(key, upto);
        self.tomb_version += 1;
        hid_live
    }
}

struct Inner {
    dir: PathBuf,
    kind: KeyKind,
    options: ShardedOptions,
    read_only: bool,
    /// Opened with `open_detached`: writes stay in memory, nothing is
    /// ever written to `dir`.
    detached: bool,
    state: RwLock<State>,
    /// Serialises mutations (add, remove, save, compact, rotation).
    writer: Mutex<()>,
    /// Serialises manifest commits.
    commit: Mutex<()>,
    /// Background rotations in flight.
    pending: Mutex<usize>,
    pending_done: Condvar,
    next_gen: AtomicU64,
    dirty: AtomicU64,
    closed: AtomicBool,
    /// Released by `close`.
    dir_lock: Mutex<Option<DirLock>>,
    /// Held by a merge or a compaction: they exclude each other (both
    /// replace sealed shards from a snapshot of the tombstones).
    maintenance: Mutex<()>,
    /// The merger thread's state, and its signal both ways.
    merge: Mutex<merge::MergeState>,
    merge_cv: Condvar,
    /// Concurrent single searches, coalesced into batches (see
    /// `crate::combine`).
    combiner: search::SearchCombiner,
    /// The saved active shard being read into RAM ahead of the first
    /// write (see [`promote`]).
    promotion: Mutex<Option<promote::Promotion>>,
}

type Worker = (mpsc::Sender<Arc<Shard>>, std::thread::JoinHandle<()>);

/// A sharded similarity index with keys of type `K` (`u64` or `[u8; 16]`);
/// see the module docs.
pub struct ShardedIndex<K: ShardKey = u64> {
    inner: Arc<Inner>,
    worker: Mutex<Option<Worker>>,
    merger: Mutex<Option<std::thread::JoinHandle<()>>>,
    _key: PhantomData<fn() -> K>,
}

/// A sharded index with 128-bit keys.
pub type ShardedIndex128 = ShardedIndex<[u8; 16]>;

impl<K: ShardKey> std::fmt::Debug for ShardedIndex<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardedIndex")
            .field("path", &self.inner.dir)
            .field("key_kind", &self.inner.kind)
            .finish()
    }
}

/// Initial guess of serialized bytes per row before the first measurement.
const BYTES_PER_ROW_GUESS: u64 = 240;
/// Rows inserted per unit-index call: bounds how long a search of the
/// active shard waits behind a write.
const INSERT_CHUNK: usize = 2048;

impl<K: ShardKey> ShardedIndex<K> {
    fn read(&self) -> ReadGuard<'_, State> {
        self.inner.state.read()
    }

    fn write(&self) -> WriteGuard<'_, State> {
        self.inner.state.write()
    }

    fn check_open(&self) -> Result<(), ShardedError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(ShardedError::Closed);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), ShardedError> {
        self.check_open()?;
        if self.inner.read_only {
            return Err(ShardedError::ReadOnly);
        }
        Ok(())
    }

    /// Writable and owning the directory (not detached): may persist.
    fn check_owner(&self) -> Result<(), ShardedError> {
        self.check_writable()?;
        if self.inner.detached {
            return Err(ShardedError::ReadOnly);
        }
        Ok(())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    /// The stored parameters.
    pub fn options(&self) -> ShardedOptions {
        self.inner.options
    }

    /// True when the directory is never written by this handle (opened
    /// read-only or detached).
    pub fn read_only(&self) -> bool {
        self.inner.read_only || self.inner.detached
    }

    /// The tag of the state last saved (or opened): see
    /// [`ShardedIndex::save_tagged`]. `None` when never tagged.
    pub fn tag(&self) -> Option<u64> {
        self.read().tag
    }

    /// Live keys (exact: every key has one live copy).
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// True when no key is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes since the last save (0 when read-only).
    pub fn dirty(&self) -> u64 {
        if self.inner.read_only {
            0
        } else {
            self.inner.dirty.load(Ordering::Relaxed)
        }
    }

    /// Shards: sealed (incl. rotating) plus the active one.
    pub fn shard_count(&self) -> usize {
        let st = self.read();
        st.sealed.len() + usize::from(st.active.is_some())
    }

    // ---- reads -------------------------------------------------------------

    /// True when `key` is live.
    pub fn contains(&self, key: K) -> Result<bool, ShardedError> {
        self.check_open()?;
        Ok(self.read().locate(self.inner.kind, key.to_u128()).is_some())
    }

    /// Live copies of `key` (0 or 1).
    pub fn count(&self, key: K) -> Result<usize, ShardedError> {
        Ok(usize::from(self.contains(key)?))
    }

    /// The vector stored under `key`.
    pub fn get(&self, key: K) -> Result<Option<Vec<u8>>, ShardedError> {
        self.check_open()?;
        let st = self.read();
        Ok(st
            .locate(self.inner.kind, key.to_u128())
            .and_then(|(s, l)| s.index.get(l))
            .map(|b| self.inner.options.vectors.unpad(b)))
    }

    /// [`ShardedIndex::get`] for many keys.
    pub fn get_many(&self, keys: &[K]) -> Result<Vec<Option<Vec<u8>>>, ShardedError> {
        keys.iter().map(|k| self.get(*k)).collect()
    }

    /// Every live (key, vector), shard by shard, read lazily: sealed shards
    /// in chunks, the active shard's keys snapshotted when the iterator is
    /// made (its vectors read as it goes; keys removed since are skipped).
    pub fn iter(&self) -> Result<ShardedIter<K>, ShardedError> {
        self.check_open()?;
        let st = self.read();
        let active_labels = st
            .active
            .as_ref()
            .map(|a| a.index.keys())
            .unwrap_or_default();
        Ok(ShardedIter {
            active: st.active.clone(),
            active_labels: active_labels.into_iter(),
            sealed: st.sealed.to_vec(),
            tomb: Arc::clone(&st.tombstones),
            vectors: self.inner.options.vectors,
            shard: 0,
            pos: 0,
            buf: Vec::new().into_iter(),
            _key: PhantomData,
        })
    }

    /// Every live key, lazily (see [`ShardedIndex::iter`]).
    pub fn keys(&self) -> Result<impl Iterator<Item = K>, ShardedError> {
        Ok(self.iter()?.map(|(k, _)| k))
    }
}

impl<K: ShardKey> Drop for ShardedIndex<K> {
    /// Finishes background rotations (their shards become durable) but does
    /// not save the active shard: call `save` or `close` for that.
    fn drop(&mut self) {
        self.stop_worker();
        self.stop_merger();
    }
}
