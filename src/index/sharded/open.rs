//! Opening a sharded index: create, open for writing, open read-only or
//! detached, and what an open repairs (leftover files, the bloom filter).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Condvar, Mutex};

use super::commit::acquire_lock;
use super::key::{bloom_hash, KeyKind};
use super::manifest::{Manifest, ShardEntry, BLOOM, SHARDED_FORMAT_VERSION};
use super::shard::Shard;
use super::tombstones::Tombstones;
use super::BYTES_PER_ROW_GUESS;
use super::{io_at, Inner, ShardKey, ShardedError, ShardedIndex, ShardedOptions, State};
use crate::combine::Combiner;
use crate::index::bloom::{BloomError, ScalableBloom};
use crate::lockfile::DirLock;
use crate::sync::RwLock;

/// How an index directory is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Owns the directory (lock held): writes are persisted.
    Writer,
    /// Reads the saved state; no writes.
    ReadOnly,
    /// Reads the saved state; writes stay in memory.
    Detached,
}

impl<K: ShardKey> ShardedIndex<K> {
    /// Create a new index in `dir` (created if missing). Fails with
    /// [`ShardedError::AlreadyExists`] when `dir` holds an index.
    pub fn create(dir: impl AsRef<Path>, options: ShardedOptions) -> Result<Self, ShardedError> {
        let dir = dir.as_ref();
        options.validate()?;
        fs::create_dir_all(dir).map_err(io_at(dir))?;
        let lock = acquire_lock(dir)?;
        if Manifest::read(dir)?.is_some() {
            return Err(ShardedError::AlreadyExists {
                path: dir.to_path_buf(),
            });
        }
        let manifest = Manifest {
            format: SHARDED_FORMAT_VERSION,
            key_kind: K::KIND,
            options,
            next_gen: 1,
            next_label: 0,
            sealed: Vec::new(),
            active: ShardEntry {
                id: 0,
                gen: 0,
                rows: 0,
            },
            tombstones: None,
            bloom_count: 0,
            tag: None,
        };
        let bloom = ScalableBloom::new(0, options.bloom_error_rate);
        bloom.save(&dir.join(BLOOM))?;
        manifest.write(dir)?;
        Self::from_manifest(dir, manifest, Mode::Writer, Some(lock))
    }

    /// Open the index in `dir` for reading and writing; its parameters come
    /// from the manifest.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, ShardedError> {
        let dir = dir.as_ref();
        let lock = acquire_lock(dir).map_err(|e| match e {
            ShardedError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ShardedError::NotFound {
                    path: dir.to_path_buf(),
                }
            }
            e => e,
        })?;
        let manifest = Manifest::read(dir)?.ok_or_else(|| ShardedError::NotFound {
            path: dir.to_path_buf(),
        })?;
        Self::from_manifest(dir, manifest, Mode::Writer, Some(lock))
    }

    /// Open the index in `dir` if there is one, else create it with
    /// `options` (an existing index keeps its stored parameters).
    pub fn open_or_create(
        dir: impl AsRef<Path>,
        options: ShardedOptions,
    ) -> Result<Self, ShardedError> {
        let dir = dir.as_ref();
        match Self::open(dir) {
            Err(ShardedError::NotFound { .. }) => Self::create(dir, options),
            other => other,
        }
    }

    /// Open read-only: every shard memory-mapped, no active shard, no lock;
    /// writes return [`ShardedError::ReadOnly`].
    pub fn open_read_only(dir: impl AsRef<Path>) -> Result<Self, ShardedError> {
        let dir = dir.as_ref();
        let manifest = Manifest::read(dir)?.ok_or_else(|| ShardedError::NotFound {
            path: dir.to_path_buf(),
        })?;
        Self::from_manifest(dir, manifest, Mode::ReadOnly, None)
    }

    /// Open the saved state of `dir` without owning it: no lock, nothing is
    /// ever written to `dir`, but writes are accepted into an in-memory
    /// shard (never rotated, never saved) — for a reader that must catch up
    /// with changes it knows from elsewhere. `save`, `compact` and
    /// `rebuild_bloom` return [`ShardedError::ReadOnly`].
    pub fn open_detached(dir: impl AsRef<Path>) -> Result<Self, ShardedError> {
        let dir = dir.as_ref();
        let manifest = Manifest::read(dir)?.ok_or_else(|| ShardedError::NotFound {
            path: dir.to_path_buf(),
        })?;
        Self::from_manifest(dir, manifest, Mode::Detached, None)
    }

    fn from_manifest(
        dir: &Path,
        m: Manifest,
        mode: Mode,
        lock: Option<DirLock>,
    ) -> Result<Self, ShardedError> {
        let read_only = mode != Mode::Writer;
        if m.key_kind != K::KIND {
            return Err(ShardedError::KeyKind {
                path: dir.to_path_buf(),
                found: m.key_kind,
                expected: K::KIND,
            });
        }
        if !read_only {
            Self::remove_leftovers(dir, &m)?;
        }
        let kind = m.key_kind;
        let (active, sealed) = Self::open_shards(dir, &m, mode)?;
        let tombstones = match &m.tombstones {
            Some(name) => {
                let path = dir.join(name);
                let bytes = fs::read(&path).map_err(io_at(&path))?;
                Tombstones::decode(&bytes).map_err(|why| ShardedError::Corrupt { path, why })?
            }
            None => Tombstones::default(),
        };
        let dead = dead_rows(&tombstones, &sealed);
        let next_label = next_label(m.next_label, active.iter().chain(&sealed));
        let bloom = Self::open_bloom(dir, &m, kind, read_only, active.iter().chain(&sealed))?;
        let state = State {
            active_bytes: 0,
            since_measure: usize::MAX / 2,
            bytes_per_row: BYTES_PER_ROW_GUESS,
            active,
            sealed,
            dead,
            tombstones: Arc::new(tombstones),
            tomb_version: 0,
            tomb_saved: (0, m.tombstones.clone()),
            bloom,
            bloom_version: 0,
            bloom_saved: 0,
            next_label,
            garbage: Vec::new(),
            rotation_error: None,
            tag: m.tag,
        };
        let index = ShardedIndex {
            inner: Arc::new(Inner {
                dir: dir.to_path_buf(),
                kind,
                options: m.options,
                read_only: mode == Mode::ReadOnly,
                detached: mode == Mode::Detached,
                state: RwLock::new(state),
                writer: Mutex::new(()),
                commit: Mutex::new(()),
                pending: Mutex::new(0),
                pending_done: Condvar::new(),
                next_gen: AtomicU64::new(m.next_gen.max(1)),
                dirty: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                dir_lock: Mutex::new(lock),
                maintenance: Mutex::new(()),
                merge: Mutex::new(Default::default()),
                merge_cv: Condvar::new(),
                combiner: Combiner::per_core(),
                promotion: Mutex::new(None),
            }),
            worker: Mutex::new(None),
            merger: Mutex::new(None),
            _key: PhantomData,
        };
        index.start_promotion();
        Ok(index)
    }

    /// The manifest's shards as this mode uses them: the active shard
    /// (writers and detached opens write to one) and the sealed ones.
    #[allow(clippy::type_complexity)]
    fn open_shards(
        dir: &Path,
        m: &Manifest,
        mode: Mode,
    ) -> Result<(Option<Arc<Shard>>, Vec<Arc<Shard>>), ShardedError> {
        let kind = m.key_kind;
        let mut sealed = Vec::with_capacity(m.sealed.len() + 1);
        for e in &m.sealed {
            sealed.push(Arc::new(Shard::open(dir, e, kind, true)?));
        }
        // The active shard opens mapped too; the first write reads it into
        // RAM (`promote`), so opening stays cheap.
        let active = if m.active.gen > 0 {
            Some(Shard::open(dir, &m.active, kind, true)?)
        } else {
            None
        };
        let fresh = |id: u32| Shard::new(id, kind, m.options.unit()).map(Arc::new);
        Ok(match (mode, active) {
            (Mode::ReadOnly, Some(a)) => {
                sealed.push(Arc::new(a));
                (None, sealed)
            }
            (Mode::ReadOnly, None) => (None, sealed),
            (Mode::Writer, Some(a)) => (Some(Arc::new(a)), sealed),
            (Mode::Writer | Mode::Detached, None) => (Some(fresh(m.active.id)?), sealed),
            // The saved active shard stays mapped; writes go to a new one
            // in RAM with the next id, so tombstones can hide its rows.
            (Mode::Detached, Some(a)) => {
                sealed.push(Arc::new(a));
                (Some(fresh(m.active.id + 1)?), sealed)
            }
        })
    }

    /// Remove temporaries and files no manifest names (interrupted or
    /// superseded writes).
    fn remove_leftovers(dir: &Path, m: &Manifest) -> Result<(), ShardedError> {
        let keep: HashSet<String> = m.files().into_iter().collect();
        for entry in fs::read_dir(dir).map_err(io_at(dir))? {
            let entry = entry.map_err(io_at(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(".tmp")
                || name.starts_with("shard_")
                || name.starts_with("tombstones.");
            if ours && !keep.contains(&name) {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_at(&path))?;
            }
        }
        Ok(())
    }

    /// Load the bloom filter; rebuild it (sized from the real key count)
    /// when missing, damaged or older than the manifest.
    fn open_bloom<'a>(
        dir: &Path,
        m: &Manifest,
        kind: KeyKind,
        read_only: bool,
        shards: impl Iterator<Item = &'a Arc<Shard>>,
    ) -> Result<ScalableBloom, ShardedError> {
        let path = dir.join(BLOOM);
        match ScalableBloom::load(&path) {
            Ok(b) if b.count() >= m.bloom_count => return Ok(b),
            Ok(_) | Err(BloomError::Corrupt { .. }) => {}
            Err(BloomError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        let bloom = Self::build_bloom(kind, m.options.bloom_error_rate, shards, |_, _| true);
        if !read_only {
            bloom.save(&path)?;
        }
        Ok(bloom)
    }

    /// A filter of every key of `shards` that `keep(shard, key)` accepts.
    pub(super) fn build_bloom<'a>(
        kind: KeyKind,
        error_rate: f64,
        shards: impl Iterator<Item = &'a Arc<Shard>>,
        keep: impl Fn(&Shard, u128) -> bool,
    ) -> ScalableBloom {
        let mut hashes = Vec::new();
        for s in shards {
            for label in s.index.keys() {
                if let Some(key) = s.key(label) {
                    if keep(s, key) {
                        hashes.push(bloom_hash(kind, key));
                    }
                }
            }
        }
        // Twice the keys: room to grow before a second filter is chained.
        let mut bloom = ScalableBloom::new(2 * hashes.len() as u64, error_rate);
        for h in hashes {
            bloom.insert_hash(h);
        }
        bloom
    }
}

/// Rows hidden per shard (only tombstoned keys need a look).
fn dead_rows(tombstones: &Tombstones, sealed: &[Arc<Shard>]) -> HashMap<u32, u64> {
    let mut dead: HashMap<u32, u64> = HashMap::new();
    for (key, upto) in tombstones.iter() {
        for s in sealed.iter().filter(|s| s.id <= upto) {
            if s.label(key).is_some() {
                *dead.entry(s.id).or_insert(0) += 1;
            }
        }
    }
    dead
}

/// The next free label: past the manifest's and every shard's largest.
fn next_label<'a>(saved: u64, shards: impl Iterator<Item = &'a Arc<Shard>>) -> u64 {
    let mut next = saved;
    for s in shards {
        if let Some(t) = &s.table {
            if let Some(max) = t.read().max_label() {
                next = next.max(max + 1);
            }
        }
    }
    next
}
