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

mod commit;
mod iter;
pub mod key;
pub(crate) mod manifest;
mod open;
mod options;
mod search;
mod shard;
pub(crate) mod tombstones;

use crate::sync::{lock, wait, RwLockExt};
use std::collections::{HashMap, HashSet};
use std::io;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use self::iter::ShardedIter;
use self::key::{bloom_hash, KeyTable};
pub use self::key::{KeyKind, ShardKey};
pub use self::manifest::SHARDED_FORMAT_VERSION;
pub use self::options::{
    BloomStats, Match, ShardedError, ShardedOptions, ShardedStats, VectorKind,
};
use self::shard::Shard;
use self::tombstones::Tombstones;
use super::bloom::ScalableBloom;
use super::UnitIndex;
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
}

type Worker = (mpsc::Sender<Arc<Shard>>, std::thread::JoinHandle<()>);

/// A sharded similarity index with keys of type `K` (`u64` or `[u8; 16]`);
/// see the module docs.
pub struct ShardedIndex<K: ShardKey = u64> {
    inner: Arc<Inner>,
    worker: Mutex<Option<Worker>>,
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

pub(crate) fn io_at(path: &Path) -> impl FnOnce(io::Error) -> ShardedError + '_ {
    move |source| ShardedError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn key_text(kind: KeyKind, key: u128) -> String {
    match kind {
        KeyKind::U64 => (key as u64).to_string(),
        KeyKind::U128 => format!("{key:032x}"),
    }
}

/// Initial guess of serialized bytes per row before the first measurement.
const BYTES_PER_ROW_GUESS: u64 = 240;
/// Rows inserted per unit-index call: bounds how long a search of the
/// active shard waits behind a write.
const INSERT_CHUNK: usize = 2048;

impl<K: ShardKey> ShardedIndex<K> {
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.inner.state.read_or_recover()
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write_or_recover()
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

    // ---- writes ------------------------------------------------------------

    /// Add vectors under keys that are not live anywhere; live keys (and
    /// repeats in the batch) are skipped — first write wins, across every
    /// shard. Every vector is validated before anything is written. Returns
    /// how many were added.
    pub fn add<B: AsRef<[u8]>>(&self, keys: &[K], vectors: &[B]) -> Result<usize, ShardedError> {
        self.write_batch(keys, vectors, Mode::Once)
    }

    /// The same as [`ShardedIndex::add`]: first write wins across shards
    /// (the reference's `add` only checks the active shard; ours always
    /// checks them all, helped by the bloom filter).
    pub fn add_once<B: AsRef<[u8]>>(
        &self,
        keys: &[K],
        vectors: &[B],
    ) -> Result<usize, ShardedError> {
        self.write_batch(keys, vectors, Mode::Once)
    }

    /// Insert or replace: the new vector becomes the key's only live copy
    /// (last write wins, also within the batch). An identical vector is
    /// left alone. Returns how many keys were written.
    pub fn upsert<B: AsRef<[u8]>>(&self, keys: &[K], vectors: &[B]) -> Result<usize, ShardedError> {
        self.write_batch(keys, vectors, Mode::Upsert)
    }

    fn write_batch<B: AsRef<[u8]>>(
        &self,
        keys: &[K],
        vectors: &[B],
        mode: Mode,
    ) -> Result<usize, ShardedError> {
        self.check_writable()?;
        if keys.len() != vectors.len() {
            return Err(ShardedError::BatchMismatch {
                keys: keys.len(),
                vectors: vectors.len(),
            });
        }
        let kind = self.inner.kind;
        let vk = self.inner.options.vectors;
        let mut items: Vec<(u128, Vec<u8>)> = Vec::with_capacity(keys.len());
        for (k, v) in keys.iter().zip(vectors) {
            let key = k.to_u128();
            let body = vk.body(v.as_ref()).map_err(|why| ShardedError::Vector {
                key: Some(key_text(kind, key)),
                why,
            })?;
            items.push((key, body));
        }
        // One occurrence per key: the first (add) or the last (upsert).
        let mut seen = HashSet::with_capacity(items.len());
        if mode == Mode::Upsert {
            items.reverse();
        }
        items.retain(|(k, _)| seen.insert(*k));
        if mode == Mode::Upsert {
            items.reverse();
        }

        let _w = lock(&self.inner.writer);
        self.check_writable()?;
        self.promote_active()?;
        // Decide per key against the current state; note which keys have a
        // live copy in a sealed shard to hide once the new one is in.
        let fresh: Vec<Fresh> = {
            let st = self.read();
            items
                .into_iter()
                .filter_map(|(key, body)| match st.locate(kind, key) {
                    None => Some(Fresh {
                        key,
                        body,
                        hide: false,
                    }),
                    Some(_) if mode == Mode::Once => None,
                    // Even a copy in the active shard may be sealed by a
                    // rotation before this row goes in: hide in any case.
                    Some((s, l)) => {
                        (s.index.get(l).as_deref() != Some(&body[..])).then_some(Fresh {
                            key,
                            body,
                            hide: true,
                        })
                    }
                })
                .collect()
        };
        let written = fresh.len();
        let mut rest = &fresh[..];
        while !rest.is_empty() {
            let room = self.room()?;
            if room == 0 {
                self.rotate()?;
                continue;
            }
            let (chunk, tail) = rest.split_at(room.min(rest.len()).min(INSERT_CHUNK));
            self.insert_chunk(chunk)?;
            rest = tail;
        }
        self.inner
            .dirty
            .fetch_add(written as u64, Ordering::Relaxed);
        Ok(written)
    }

    /// Read a memory-mapped active shard (after open) into RAM.
    fn promote_active(&self) -> Result<(), ShardedError> {
        let active = self.read().active.clone();
        let Some(active) = active else {
            return Ok(());
        };
        if !active.index.is_read_only() {
            return Ok(());
        }
        let path = shard::main_path(&self.inner.dir, active.id, active.gen());
        let index = UnitIndex::restore(&path, false)?;
        let table = active.table.as_ref().map(|t| t.read_or_recover().clone());
        let promoted = Shard::from_parts(active.id, index, table);
        promoted.adopt_files(&active);
        let mut st = self.write();
        st.active = Some(Arc::new(promoted));
        st.since_measure = usize::MAX / 2;
        Ok(())
    }

    /// Rows the active shard takes before it must rotate (0: rotate now).
    fn room(&self) -> Result<usize, ShardedError> {
        let mut st = self.write();
        let Some(active) = st.active.clone() else {
            return Err(ShardedError::ReadOnly);
        };
        let rows = active.len();
        if self.inner.detached {
            // Nothing is written: the in-memory shard never rotates.
            return Ok(usize::MAX);
        }
        let limit = self.inner.options.shard_size;
        if st.since_measure >= (rows / 4).max(1024) || st.active_bytes >= limit {
            st.active_bytes = active.index.serialized_bytes();
            st.since_measure = 0;
            st.bytes_per_row = if rows >= 256 {
                (st.active_bytes / rows as u64).max(1)
            } else {
                BYTES_PER_ROW_GUESS
            };
        }
        if st.active_bytes >= limit && rows > 0 {
            return Ok(0);
        }
        Ok((limit.saturating_sub(st.active_bytes) / st.bytes_per_row).max(1) as usize)
    }

    /// Insert rows into the active shard, then hide older copies.
    fn insert_chunk(&self, chunk: &[Fresh]) -> Result<(), ShardedError> {
        let kind = self.inner.kind;
        let active = {
            let mut st = self.write();
            // Bloom first: a row must never be findable while the filter
            // still rejects its key.
            for f in chunk {
                st.bloom_insert(kind, f.key);
            }
            st.active.clone().ok_or(ShardedError::ReadOnly)?
        };
        let labels: Vec<u64> = match &active.table {
            None => chunk.iter().map(|f| f.key as u64).collect(),
            Some(t) => {
                let mut t = t.write_or_recover();
                let mut st = self.write();
                chunk
                    .iter()
                    .map(|f| match t.label(f.key) {
                        Some(l) => l,
                        None => {
                            let l = st.next_label;
                            st.next_label += 1;
                            t.insert(l, f.key);
                            l
                        }
                    })
                    .collect()
            }
        };
        let bodies: Vec<&[u8]> = chunk.iter().map(|f| &f.body[..]).collect();
        active.mark_changed();
        let result = active.index.upsert_batch(&labels, &bodies);
        if let (Err(_), Some(t)) = (&result, &active.table) {
            // Drop labels whose rows did not make it in.
            let mut t = t.write_or_recover();
            for (l, f) in labels.iter().zip(chunk) {
                if !active.index.contains(*l) {
                    t.remove_key(f.key);
                }
            }
        }
        result?;
        let mut st = self.write();
        for f in chunk.iter().filter(|f| f.hide) {
            st.kill_sealed(f.key);
        }
        st.since_measure += chunk.len();
        st.active_bytes += st.bytes_per_row * chunk.len() as u64;
        Ok(())
    }

    /// Remove keys: from the active shard directly, from sealed shards by
    /// tombstone. Returns how many were live.
    pub fn remove(&self, keys: &[K]) -> Result<usize, ShardedError> {
        self.check_writable()?;
        let _w = lock(&self.inner.writer);
        self.check_writable()?;
        self.promote_active()?;
        let kind = self.inner.kind;
        let mut removed = 0;
        let mut seen = HashSet::new();
        for k in keys {
            let key = k.to_u128();
            if !seen.insert(key) {
                continue;
            }
            let mut st = self.write();
            if st.locate(kind, key).is_none() {
                continue;
            }
            let active = st.active.clone().ok_or(ShardedError::ReadOnly)?;
            let mut live = false;
            if let Some(label) = active.label(key) {
                active.mark_changed();
                live |= active.index.remove(label)?;
                if let Some(t) = &active.table {
                    t.write_or_recover().remove_key(key);
                }
            }
            live |= st.kill_sealed(key);
            removed += usize::from(live);
        }
        self.inner
            .dirty
            .fetch_add(removed as u64, Ordering::Relaxed);
        Ok(removed)
    }

    // ---- rotation ----------------------------------------------------------

    /// Freeze the active shard, start a new one, and write the frozen one
    /// (inline or on the background thread).
    fn rotate(&self) -> Result<(), ShardedError> {
        let background = self.inner.options.background_rotation;
        if background {
            // Back-pressure: wait while too many rotations are in flight.
            let mut pending = lock(&self.inner.pending);
            while *pending >= self.inner.options.max_pending_rotations {
                pending = wait(&self.inner.pending_done, pending);
            }
        }
        let frozen = {
            let mut st = self.write();
            let old = st.active.take().ok_or(ShardedError::ReadOnly)?;
            let next = match Shard::new(old.id + 1, self.inner.kind, self.inner.options.unit()) {
                Ok(s) => s,
                Err(e) => {
                    st.active = Some(old);
                    return Err(e);
                }
            };
            st.active = Some(Arc::new(next));
            st.sealed.push(Arc::clone(&old));
            st.active_bytes = 0;
            st.since_measure = usize::MAX / 2;
            old
        };
        if background {
            *lock(&self.inner.pending) += 1;
            let mut worker = lock(&self.worker);
            if worker.is_none() {
                let (tx, rx) = mpsc::channel::<Arc<Shard>>();
                let inner = Arc::clone(&self.inner);
                let handle = std::thread::Builder::new()
                    .name("ivdb-rotation".into())
                    .spawn(move || {
                        for shard in rx {
                            let id = shard.id;
                            if let Err(e) = inner.persist(&shard) {
                                let mut st = inner.state.write_or_recover();
                                st.rotation_error = Some(ShardedError::Rotation {
                                    id,
                                    source: Box::new(e),
                                });
                            }
                            let mut pending = lock(&inner.pending);
                            *pending -= 1;
                            inner.pending_done.notify_all();
                        }
                    })
                    .map_err(io_at(&self.inner.dir))?;
                *worker = Some((tx, handle));
            }
            if let Some((tx, _)) = worker.as_ref() {
                if tx.send(Arc::clone(&frozen)).is_ok() {
                    return Ok(());
                }
            }
            *lock(&self.inner.pending) -= 1;
        }
        self.inner
            .persist(&frozen)
            .map_err(|e| ShardedError::Rotation {
                id: frozen.id,
                source: Box::new(e),
            })
    }

    /// Wait for background rotations, then write any frozen shard that is
    /// still only in memory (a failed rotation is retried here).
    pub fn drain_rotations(&self) -> Result<(), ShardedError> {
        self.check_open()?;
        {
            let mut pending = lock(&self.inner.pending);
            while *pending > 0 {
                pending = wait(&self.inner.pending_done, pending);
            }
        }
        if self.inner.read_only {
            return Ok(());
        }
        let unwritten: Vec<Arc<Shard>> = self
            .read()
            .sealed
            .iter()
            .filter(|s| !s.is_durable())
            .cloned()
            .collect();
        for s in unwritten {
            self.inner.persist(&s)?;
        }
        self.write().rotation_error = None;
        Ok(())
    }

    /// Pending background rotations.
    pub fn pending_rotations(&self) -> usize {
        *lock(&self.inner.pending)
    }

    // ---- persistence -------------------------------------------------------

    /// Make the current state durable: drain rotations, write the active
    /// shard (if changed), the bloom filter, tombstones and the manifest.
    pub fn save(&self) -> Result<(), ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.save_locked(None)
    }

    /// [`ShardedIndex::save`], recording `tag` in the manifest as the
    /// caller's position (e.g. a journal sequence number) that the saved
    /// state reflects. Later commits (rotations) keep it until the next
    /// tagged save; [`ShardedIndex::tag`] reads it back after an open.
    pub fn save_tagged(&self, tag: u64) -> Result<(), ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.save_locked(Some(tag))
    }

    fn save_locked(&self, tag: Option<u64>) -> Result<(), ShardedError> {
        self.drain_rotations()?;
        let active = self.read().active.clone();
        if let Some(a) = active {
            if !a.is_durable() && (a.len() > 0 || a.gen() > 0) {
                let old = a.gen();
                let gen = self.inner.next_gen.fetch_add(1, Ordering::AcqRel);
                a.save(&self.inner.dir, gen)?;
                if old > 0 {
                    self.write().garbage.extend(shard::file_names(a.id, old));
                }
            }
        }
        // A filter that had to chain many times is slow to query: resize it
        // to the real key count.
        if self.read().bloom.filters() > 3 {
            self.rebuild_bloom_locked();
        }
        if let Some(t) = tag {
            // No rotation is in flight (drained above, and new ones need
            // the writer lock), so the next commit is this save's.
            self.write().tag = Some(t);
        }
        self.inner.commit()?;
        self.inner.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Rebuild the bloom filter from the live keys (sized to their number)
    /// and save it. Returns the number of keys.
    pub fn rebuild_bloom(&self) -> Result<usize, ShardedError> {
        self.check_open()?;
        let _w = lock(&self.inner.writer);
        let n = self.rebuild_bloom_locked();
        if !self.read_only() {
            self.inner.commit()?;
        }
        Ok(n)
    }

    fn rebuild_bloom_locked(&self) -> usize {
        let (shards, tomb) = {
            let st = self.read();
            (st.shards(), Arc::clone(&st.tombstones))
        };
        let bloom = Self::build_bloom(
            self.inner.kind,
            self.inner.options.bloom_error_rate,
            shards.iter(),
            |s, key| !tomb.is_dead(key, s.id),
        );
        let n = shards.iter().map(|s| s.len()).sum::<usize>();
        let mut st = self.write();
        // Keys added since the snapshot were inserted into the old filter
        // only; a writer holds the lock, so there are none.
        st.bloom = bloom;
        st.bloom_version += 1;
        n - st.dead_total() as usize
    }

    /// Rewrite sealed shards without their tombstoned rows, drop shards left
    /// empty, clear tombstones, rebuild the bloom filter and save. Returns
    /// the number of rows removed.
    pub fn compact(&self) -> Result<usize, ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.drain_rotations()?;
        let (sealed, tomb, dead) = {
            let st = self.read();
            (
                st.sealed.clone(),
                Arc::clone(&st.tombstones),
                st.dead.clone(),
            )
        };
        let mut removed = 0u64;
        let mut replaced: Vec<(u32, Option<Arc<Shard>>)> = Vec::new();
        for s in &sealed {
            let d = dead.get(&s.id).copied().unwrap_or(0);
            if d == 0 {
                continue;
            }
            let mut labels = Vec::new();
            let mut bodies = Vec::new();
            let mut table = s.table.as_ref().map(|_| KeyTable::default());
            let mut pos = 0;
            loop {
                let rows = s.index.rows(pos, 4096);
                if rows.is_empty() {
                    break;
                }
                pos += rows.len();
                for (label, body) in rows {
                    let Some(key) = s.key(label) else { continue };
                    if tomb.is_dead(key, s.id) {
                        continue;
                    }
                    if let Some(t) = table.as_mut() {
                        t.insert(label, key);
                    }
                    labels.push(label);
                    bodies.push(body);
                }
            }
            removed += (s.len() - labels.len()) as u64;
            if labels.is_empty() {
                replaced.push((s.id, None));
                continue;
            }
            let index = UnitIndex::new(self.inner.options.unit())?;
            index.add_batch(&labels, &bodies)?;
            let fresh = Shard::from_parts(s.id, index, table);
            let gen = self.inner.next_gen.fetch_add(1, Ordering::AcqRel);
            fresh.save(&self.inner.dir, gen)?;
            let entry = fresh.entry();
            replaced.push((
                s.id,
                Some(Arc::new(Shard::open(
                    &self.inner.dir,
                    &entry,
                    self.inner.kind,
                    true,
                )?)),
            ));
        }
        {
            let mut st = self.write();
            for (id, new) in replaced {
                let Some(pos) = st.sealed.iter().position(|s| s.id == id) else {
                    continue;
                };
                let old_gen = st.sealed[pos].gen();
                st.garbage.extend(shard::file_names(id, old_gen));
                match new {
                    Some(n) => st.sealed[pos] = n,
                    None => {
                        st.sealed.remove(pos);
                    }
                }
            }
            st.dead.clear();
            st.tombstones = Arc::new(Tombstones::default());
            st.tomb_version += 1;
        }
        self.rebuild_bloom_locked();
        self.save_locked(None)?;
        Ok(removed as usize)
    }

    /// Drain rotations, save (when writable and changed) and close; later
    /// calls return [`ShardedError::Closed`].
    pub fn close(&self) -> Result<(), ShardedError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let result = if self.read_only() {
            Ok(())
        } else {
            let _w = lock(&self.inner.writer);
            let changed = self.inner.dirty.load(Ordering::Relaxed) > 0
                || self.read().sealed.iter().any(|s| !s.is_durable());
            if changed {
                self.save_locked(None)
            } else {
                self.drain_rotations()
            }
        };
        self.inner.closed.store(true, Ordering::Release);
        self.stop_worker();
        lock(&self.inner.dir_lock).take();
        result
    }

    fn stop_worker(&self) {
        if let Some((tx, handle)) = lock(&self.worker).take() {
            drop(tx);
            let _ = handle.join();
        }
    }

    // ---- iteration and figures --------------------------------------------

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

    /// Figures of the index.
    pub fn stats(&self) -> ShardedStats {
        let st = self.read();
        let o = &self.inner.options;
        let (dimensions, metric) = match o.vectors {
            VectorKind::Nphd { max_dim } => (max_dim, "nphd"),
            VectorKind::Hamming { bits } => (bits, "hamming"),
        };
        let active_mem = st.active.as_ref().map_or(0, |a| {
            let s = a.index.stats();
            s.graph_memory + s.len * 40
        });
        ShardedStats {
            total_vectors: st.len(),
            dimensions,
            metric,
            dtype: "b1x8",
            connectivity: o.connectivity,
            expansion_add: o.expansion_add,
            expansion_search: o.expansion_search,
            view_shards: st.sealed.len(),
            active_shard_vectors: st.active.as_ref().map_or(0, |a| a.len()),
            shard_size: o.shard_size,
            dirty: self.dirty(),
            tombstones: st.tombstones.len(),
            bloom_filter: BloomStats {
                count: st.bloom.count(),
                filters: st.bloom.filters(),
                size_bytes: st.bloom.size_bytes(),
                error_rate: o.bloom_error_rate,
            },
            memory_usage: active_mem + st.bloom.size_bytes() + st.tombstones.len() * 40,
            path: self.inner.dir.clone(),
            read_only: self.read_only(),
            key_kind: self.inner.kind,
            pending_rotations: *lock(&self.inner.pending),
            dead_rows: st.dead_total(),
        }
    }

    /// The last background rotation failure, if any (cleared by a
    /// successful `drain_rotations`/`save`).
    pub fn rotation_error(&self) -> Option<String> {
        self.read().rotation_error.as_ref().map(|e| e.to_string())
    }
}

impl<K: ShardKey> Drop for ShardedIndex<K> {
    /// Finishes background rotations (their shards become durable) but does
    /// not save the active shard: call `save` or `close` for that.
    fn drop(&mut self) {
        self.stop_worker();
    }
}
