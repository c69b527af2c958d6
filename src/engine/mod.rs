//! `LocalIndex`: the ISCC index — primary store, INSTANCE index and one
//! sharded similarity index per unit type, behind one API.
//!
//! Layout of an index directory:
//!
//! ```text
//! {path}/LOCK                 advisory writer lock
//! {path}/primary.lmdb/        the LMDB store (entries, metadata, instance, journal, counts)
//! {path}/content-text-v0/     a sharded unit index per unit type (a rebuilt
//! {path}/content-text-v0.7/     one has a generation suffix; the store names
//!                               the current directory of each type)
//! {path}/simprint-content-text-v0/  a sharded Hamming index per simprint type
//!                               (granular features; see `simprint_index.rs`)
//! ```
//!
//! The store is the truth; unit indexes are derived and never silently
//! disagree with it:
//!
//! * Writes: one LMDB transaction per `add`/`remove` batch writes the
//!   entries, their INSTANCE rows, a journal record per changed entry and
//!   the per-unit-type entry counts, durably (fsync) unless `durable` is
//!   off. Then the unit indexes are updated in memory.
//! * `save` writes every unit index, tagged with the journal position it
//!   reflects, then trims the journal up to there.
//! * Maintenance is crash-atomic: `rebuild` builds new unit indexes in new
//!   directories beside the old ones and switches to them in one store
//!   transaction (an interrupted rebuild, recorded in the store, resumes on
//!   the next writable open); `compact` commits each unit index by its
//!   manifest.
//! * Every open checks each unit index against the store (`recovery.rs`):
//!   the journal is replayed, a unit index saved before the journal's floor,
//!   damaged, missing or holding another number of rows than the store has
//!   entries of its type is rebuilt (a read-only open does all of it in
//!   memory and writes nothing), with a line on stderr and in
//!   [`IndexInfo::repairs`].
//!
//! Concurrency: `LocalIndex` is `Send + Sync`; searches and gets run in
//! parallel, writes are serialised. One writer process per directory
//! (`Locked` for a second one); read-only opens see the store's committed
//! entries and the unit indexes as they were when opened.
//!
//! Searches hold no lock while they run: each takes the current
//! `IndexSet` (every unit and simprint index, cloned as one `Arc` under a
//! guard held for that clone) and keeps it to its end; a write that creates
//! an index, a rebuild's switch and a read-only refresh's reopen publish a
//! new set in one swap (see `index_set.rs`). `realm` is set once. Lock order
//! (take them in this order, never back): `writer` (serialises writes,
//! maintenance, read-only refreshes and so every change of the index set)
//! → the index set's swap lock. `seen`, `temp`, `scratch`, `lock`,
//! `legacy_counts` and `repairs` are leaves: nothing is taken while one is
//! held. A unit index's own locks (see `index::sharded`) and the store's
//! map guard come after all of these. No guard is held across parallel
//! work (see `crate::sync`).
//!
//! Files: `open.rs` (placing, locking, opening), `recovery.rs` (format
//! check, the self-checking open), `write.rs`, `search.rs`, `maintain.rs`,
//! `refresh.rs`, `request.rs` (the JSON grammar every face reads),
//! `simprint_index.rs` (the simprint types' derived indexes),
//! `chunk_search.rs` and `chunk_score.rs` (search by granular features),
//! `chunks.rs` (what the store knows of simprints),
//! `primary.rs` (`IsccStore`: the store of a directory on its own),
//! `index_set.rs` (the derived indexes as one set, swapped whole),
//! `entry.rs`, `matches.rs`, `types.rs`, `meta.rs`, `error.rs`.

mod backend;
mod chunk_score;
mod chunk_search;
mod chunks;
mod entry;
mod error;
pub mod features;
mod index_set;
mod maintain;
mod matches;
mod meta;
#[cfg(feature = "milvus")]
mod milvus;
mod open;
mod primary;
mod recovery;
mod refresh;
pub(crate) mod request;
mod search;
mod simprint_index;
mod transfer;
mod types;
mod write;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::Value;

use crate::codec::{IdGenerator, IsccId, Realm, Unit, UnitType};
use crate::index::ShardedIndex;
use crate::lockfile::DirLock;
use crate::store::Store;
use crate::sync::lock;

use self::index_set::{Family, IndexSet, IndexType};

pub use self::backend::{is_milvus_uri, IsccIndex, MILVUS_SCHEME};
pub use self::chunk_score::CHUNK_CANDIDATES;
pub use self::chunk_search::{
    ChunkMatch, MatchedChunk, TypeChunkScore, DEFAULT_SIMPRINT_THRESHOLD,
};
pub use self::chunks::{ChunkRef, SimprintCollisions, SimprintTypeInfo};
#[cfg(feature = "server")]
pub(crate) use self::entry::type_name as json_type_name;
pub use self::entry::validate_code;
pub use self::error::{EngineError, ErrorKind};
pub use self::features::{FeatureSet, SimprintType};
pub use self::matches::{BatchMatches, IsccMatch, IsccMatches, UnitScore, DEFAULT_UNIT_THRESHOLD};
pub use self::primary::{IsccStore, StoreInfo};
pub use self::request::{SearchRequest, DEFAULT_COUNT, OPEN_OPTION_FIELDS, SEARCH_FIELDS};
pub use self::transfer::{ExportReport, EXPORT_KEY, MAX_EXPORT_BATCH};
pub use self::types::{
    IndexInfo, IndexOptions, IndexParams, Query, RemoveReport, SearchParams, UnitTypeInfo,
    ENGINE_FORMAT_VERSION, MAX_QUERY_UNITS, MAX_SEARCH_COUNT,
};
pub use crate::store::StoreError;

/// The local backend of [`IsccIndex`]: an index directory; see the module
/// docs.
pub(crate) struct LocalIndex {
    root: PathBuf,
    temp: Mutex<Option<tempfile::TempDir>>,
    store: Store,
    /// The unit and simprint indexes with their directories, swapped whole
    /// (see `index_set.rs`).
    indexes: index_set::Published,
    params: IndexParams,
    /// Fixed by the first entry (or the store at open); never changes.
    realm: OnceLock<Realm>,
    ids: IdGenerator,
    options: IndexOptions,
    writer: Mutex<()>,
    closed: AtomicBool,
    /// Set when bringing the unit indexes in line after a commit failed:
    /// the next save replays the whole journal before it trims it.
    unapplied: AtomicBool,
    lock: Mutex<Option<DirLock>>,
    /// Read-only opens: where unit indexes built in memory live (outside
    /// the index directory, removed on close).
    scratch: Mutex<Option<tempfile::TempDir>>,
    /// Entry counts computed at open for a format-1 store (read-only).
    legacy_counts: Mutex<Option<BTreeMap<String, u64>>>,
    /// What the open repaired.
    repairs: Mutex<Vec<String>>,
    /// Read-only opens: the journal floor and newest sequence number the
    /// unit indexes reflect (see [`LocalIndex::refresh`]).
    seen: Mutex<(u64, u64)>,
    /// Concurrent single searches, coalesced into batches.
    combiner: search::SearchCombiner,
}

impl std::fmt::Debug for LocalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIndex")
            .field("path", &self.root)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The guard of every engine call (each backend and the store): `Closed`
/// once `closed` is set; for a `write`, `ReadOnly` on a read-only open.
fn check_state(closed: &AtomicBool, read_only: bool, write: bool) -> Result<(), EngineError> {
    if closed.load(Ordering::Acquire) {
        return Err(EngineError::Closed);
    }
    if write && read_only {
        return Err(EngineError::ReadOnly);
    }
    Ok(())
}

/// Parse an ISCC-ID string; once the index has a realm, it must be of it.
fn parse_id_in(s: &str, context: &str, realm: Option<Realm>) -> Result<IsccId, EngineError> {
    let id = IsccId::parse(s).map_err(|source| EngineError::Iscc {
        context: context.to_string(),
        source,
    })?;
    if let Some(r) = realm {
        if id.realm() != r {
            return Err(EngineError::Realm {
                context: context.to_string(),
                id: id.to_string(),
                found: id.realm().id(),
                expected: r.id(),
            });
        }
    }
    Ok(id)
}

/// Parse a list of ISCC-IDs ([`parse_id_in`]), each named `iscc_ids[i]`
/// in errors.
fn parse_ids_in(iscc_ids: &[&str], realm: Option<Realm>) -> Result<Vec<IsccId>, EngineError> {
    iscc_ids
        .iter()
        .enumerate()
        .map(|(i, s)| parse_id_in(s, &format!("iscc_ids[{i}]"), realm))
        .collect()
}

/// The units of a stored entry.
fn stored_units(json: &[u8]) -> Result<Vec<Unit>, EngineError> {
    let v: Value = serde_json::from_slice(json).map_err(|e| EngineError::Json(e.to_string()))?;
    let list = v
        .get("units")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    list.iter()
        .filter_map(Value::as_str)
        .map(|s| {
            Unit::parse(s).map_err(|source| EngineError::Iscc {
                context: "stored entry".into(),
                source,
            })
        })
        .collect()
}

/// The granular features of a stored entry inside a store transaction
/// (whose closures return store errors): an undecodable stored entry is a
/// damaged store.
fn stored_features_in_txn(
    json: &[u8],
) -> Result<Vec<features::FeatureSet>, crate::store::StoreError> {
    simprint_index::stored_features(json).map_err(|e| crate::store::StoreError::Corrupt {
        path: PathBuf::from("entries"),
        why: e.to_string(),
    })
}

/// [`stored_units`] inside a store transaction (whose closures return
/// store errors): an undecodable stored entry is a damaged store.
fn stored_units_in_txn(json: &[u8]) -> Result<Vec<Unit>, crate::store::StoreError> {
    stored_units(json).map_err(|e| crate::store::StoreError::Corrupt {
        path: PathBuf::from("entries"),
        why: e.to_string(),
    })
}

impl LocalIndex {
    fn check_open(&self) -> Result<(), EngineError> {
        check_state(&self.closed, self.options.read_only, false)
    }

    fn check_writable(&self) -> Result<(), EngineError> {
        check_state(&self.closed, self.options.read_only, true)
    }

    fn realm(&self) -> Realm {
        self.realm.get().copied().unwrap_or(Realm::R0)
    }

    /// The current unit and simprint indexes: one set for a whole search.
    fn indexes(&self) -> Arc<IndexSet> {
        self.indexes.get()
    }

    /// Change the index set: `f` changes a copy of the current set, which
    /// is then published in one swap — also when `f` fails, since what it
    /// created the store may already name. Callers hold the writer's turn
    /// (or are opening): changes are never concurrent. Nothing is held
    /// while `f` runs, so searches go on with the set before.
    fn change_indexes<R>(&self, f: impl FnOnce(&mut IndexSet) -> R) -> R {
        let mut next = IndexSet::clone(&self.indexes());
        let out = f(&mut next);
        self.indexes.put(next);
        out
    }

    /// The index of `t` in `set`, created when there is none: in the index
    /// directory (named in the store in one transaction), or for a
    /// read-only open in its scratch directory.
    fn index_or_create<T: IndexType>(
        &self,
        set: &mut IndexSet,
        t: &T,
        options: crate::index::ShardedOptions,
    ) -> Result<Arc<ShardedIndex<T::Key>>, EngineError> {
        let family = T::family_mut(set);
        if let Some(i) = family.get(t) {
            return Ok(i);
        }
        let idx = if self.options.read_only {
            let dir = self.scratch_dir()?.join(t.dir_base());
            ShardedIndex::<T::Key>::create(&dir, options).map_err(t.error())?
        } else {
            if let Some(name) = family.dirs.get(t) {
                return Err(EngineError::Invalid(format!(
                    "internal: the {} index at {name} is recorded but not open",
                    t.label()
                )));
            }
            let name = t.dir_base();
            let dir = self.root.join(&name);
            // A directory the store does not name is a leftover.
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
            }
            let idx = ShardedIndex::<T::Key>::create(&dir, options).map_err(t.error())?;
            let mut next = family.dirs.clone();
            next.insert(t.clone(), name);
            self.store
                .write(|w| w.set_meta(T::DIRS, &Family::dir_names(&next)))?;
            family.dirs = next;
            idx
        };
        let idx = Arc::new(idx);
        family.open.insert(t.clone(), Arc::clone(&idx));
        Ok(idx)
    }

    /// The scratch directory of a read-only open (created on first use).
    fn scratch_dir(&self) -> Result<PathBuf, EngineError> {
        let mut s = lock(&self.scratch);
        if s.is_none() {
            *s = Some(
                tempfile::Builder::new()
                    .prefix("iscc-vdb-ro-")
                    .tempdir()
                    .map_err(io(Path::new("temporary directory")))?,
            );
        }
        Ok(s.as_ref()
            .map(|t| t.path().to_path_buf())
            .unwrap_or_default())
    }

    /// Parse an ISCC-ID string and check its realm.
    fn parse_id(&self, s: &str, context: &str) -> Result<IsccId, EngineError> {
        parse_id_in(s, context, self.realm.get().copied())
    }

    // ---- get ---------------------------------------------------------------

    /// The stored entry of an ISCC-ID, or `None`.
    pub fn get(&self, iscc_id: &str) -> Result<Option<Value>, EngineError> {
        self.check_open()?;
        let id = self.parse_id(iscc_id, "iscc_id")?;
        match self.store.get_entry(id.value())? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| EngineError::Json(format!("stored entry {id}: {e}"))),
            None => Ok(None),
        }
    }

    /// Up to `limit` stored entries with keys from `from` on, in key order.
    pub fn entries_page(&self, from: u64, limit: usize) -> Result<Vec<(u64, Value)>, EngineError> {
        self.check_open()?;
        primary::entries_page(&self.store, from, limit)
    }

    /// [`LocalIndex::get`] for many ISCC-IDs (`None` where absent).
    pub fn get_many(&self, iscc_ids: &[&str]) -> Result<Vec<Option<Value>>, EngineError> {
        iscc_ids.iter().map(|id| self.get(id)).collect()
    }

    // ---- figures -------------------------------------------------------------

    /// Number of entries.
    pub fn size(&self) -> Result<u64, EngineError> {
        self.check_open()?;
        Ok(self.store.len()?)
    }

    /// Entries per similarity unit type name, as the store counts them.
    fn counts(&self) -> Result<BTreeMap<String, u64>, EngineError> {
        if let Some(c) = lock(&self.legacy_counts).clone() {
            return Ok(c);
        }
        Ok(self.store.read(|r| r.counts())?.unwrap_or_default())
    }

    /// Unit types with at least one stored unit (INSTANCE-NONE-V0 included
    /// when present), as the store — the truth — has them.
    pub fn unit_types(&self) -> Result<Vec<String>, EngineError> {
        self.check_open()?;
        self.unit_types_of(self.counts()?)
    }

    /// The unit type names of `counts` with entries, plus INSTANCE-NONE-V0
    /// when INSTANCE rows exist.
    fn unit_types_of(&self, counts: BTreeMap<String, u64>) -> Result<Vec<String>, EngineError> {
        let mut out: Vec<String> = counts
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|(t, _)| t)
            .collect();
        if self.store.has_instances()? {
            out.push(UnitType::INSTANCE.name());
        }
        out.sort();
        Ok(out)
    }

    /// Figures of the index.
    pub fn info(&self) -> Result<IndexInfo, EngineError> {
        self.check_open()?;
        let counts = self.counts()?;
        let units: BTreeMap<String, UnitTypeInfo> = self
            .indexes()
            .units
            .open
            .iter()
            .map(|(t, i)| {
                let s = i.stats();
                (
                    t.name(),
                    UnitTypeInfo {
                        len: s.total_vectors,
                        entries: counts.get(&t.name()).copied().unwrap_or(0),
                        shards: s.view_shards + usize::from(!s.read_only),
                        tombstones: s.tombstones,
                        partitioned: s.partitioned_rows,
                        memory_bytes: s.memory_usage as u64,
                    },
                )
            })
            .collect();
        Ok(IndexInfo {
            path: self.root.clone(),
            size: self.store.len()?,
            unit_types: self.unit_types_of(counts)?,
            units,
            realm: self.realm.get().map(|r| r.id()),
            max_dim: self.params.max_dim,
            read_only: self.options.read_only,
            in_memory: lock(&self.temp).is_some(),
            durable: self.options.durable,
            journal_pending: self.store.journal_len()? as usize,
            store_bytes: self.store.disk_bytes(),
            format_version: ENGINE_FORMAT_VERSION,
            simprints: self.simprint_types()?,
            repairs: lock(&self.repairs).clone(),
        })
    }

    /// A user metadata value (stored in LMDB beside the index's own keys).
    pub fn get_metadata(&self, key: &str) -> Result<Option<Value>, EngineError> {
        self.check_open()?;
        Ok(meta::get_user(&self.store, key)?)
    }

    /// Set a user metadata value (one durable transaction).
    pub fn put_metadata(&self, key: &str, value: &Value) -> Result<(), EngineError> {
        self.check_writable()?;
        Ok(meta::put_user(&self.store, key, value)?)
    }

    /// The parameters.
    pub fn params(&self) -> IndexParams {
        self.params
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Save (when writable) and close; an in-memory index's directory is
    /// removed. Later calls return [`EngineError::Closed`].
    pub fn close(&self) -> Result<(), EngineError> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let in_memory = lock(&self.temp).is_some();
        let result = if self.options.read_only || in_memory {
            Ok(())
        } else {
            let _w = lock(&self.writer);
            // Partition attempts under way are finished and saved, not lost
            // (see `ShardedIndex::settle`); a failed one changes nothing.
            for (_, idx) in self.indexes().every() {
                let _ = idx.settle();
            }
            self.save_locked()
        };
        self.closed.store(true, Ordering::Release);
        let set = self.indexes.take();
        if !(in_memory || self.options.read_only) {
            for (_, idx) in set.every() {
                let _ = idx.close();
            }
        }
        lock(&self.lock).take();
        if let Some(t) = lock(&self.temp).take() {
            let _ = t.close();
        }
        if let Some(t) = lock(&self.scratch).take() {
            let _ = t.close();
        }
        result
    }
}
