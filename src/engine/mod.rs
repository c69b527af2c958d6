//! `IsccIndex`: the ISCC index — primary store, INSTANCE index and one
//! sharded similarity index per unit type, behind one API.
//!
//! Layout of an index directory:
//!
//! ```text
//! {path}/LOCK               advisory writer lock
//! {path}/primary.lmdb/      the LMDB store (entries, metadata, instance, journal)
//! {path}/content-text-v0/   a sharded unit index per unit type
//! ```
//!
//! Writes: one LMDB transaction per `add`/`remove` batch writes the entries,
//! their INSTANCE rows and a journal record per changed entry, durably
//! (fsync) unless `durable` is off. Then the unit indexes are updated in
//! memory. `save` writes every unit index and trims the journal; on open
//! the journal is replayed into the unit indexes, so an acknowledged entry
//! is never lost, even when the process dies before `save`. A damaged unit
//! index is rebuilt from the store on open.
//!
//! Concurrency: `IsccIndex` is `Send + Sync`; searches and gets run in
//! parallel, writes are serialised. One writer process per directory
//! (`Locked` for a second one); read-only opens see the store's committed
//! entries and the unit indexes as last saved.

mod entry;
pub mod error;
pub mod matches;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::codec::{IdGenerator, IsccId, Realm, Unit, UnitType};
use crate::index::{SearchOptions, ShardedError, ShardedIndex, ShardedOptions, VectorKind};
use crate::lockfile::{DirLock, LockError};
use crate::store::{Store, StoreOptions};

use self::entry::{prepare, query_units, Prepared};
pub use self::error::{EngineError, ErrorKind};
use self::matches::Aggregator;
pub use self::matches::{BatchMatches, IsccMatch, IsccMatches, UnitScore, DEFAULT_UNIT_THRESHOLD};

/// On-disk format version of an index directory (stored in LMDB metadata).
pub const ENGINE_FORMAT_VERSION: u32 = 1;

/// Parameters fixed when an index is created (stored, restored on open).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IndexParams {
    /// Longest unit in bits (64, 128, 192 or 256).
    pub max_dim: usize,
    /// HNSW connectivity.
    pub connectivity: usize,
    /// HNSW expansion at insertion.
    pub expansion_add: usize,
    /// HNSW expansion at search.
    pub expansion_search: usize,
    /// A shard this small or smaller is searched exactly.
    pub exact_threshold: usize,
    /// Shard rotation size in bytes.
    pub shard_size: u64,
}

impl Default for IndexParams {
    fn default() -> IndexParams {
        let s = ShardedOptions::default();
        IndexParams {
            max_dim: 256,
            connectivity: s.connectivity,
            expansion_add: s.expansion_add,
            expansion_search: s.expansion_search,
            exact_threshold: s.exact_threshold,
            shard_size: s.shard_size,
        }
    }
}

/// How to open an index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexOptions {
    /// Parameters for a new index (an existing one keeps its own).
    pub params: IndexParams,
    /// The realm (0 or 1) of a new index; `None`: the realm of the first
    /// ISCC-ID added (0 when IDs are generated).
    pub realm: Option<u8>,
    /// fsync every commit (in-memory indexes never do).
    pub durable: bool,
    /// Open read-only.
    pub read_only: bool,
    /// Hub id of generated ISCC-IDs.
    pub hub_id: u16,
    /// Default `unit_threshold` of searches.
    pub unit_threshold: f32,
}

impl Default for IndexOptions {
    fn default() -> IndexOptions {
        IndexOptions {
            params: IndexParams::default(),
            realm: None,
            durable: true,
            read_only: false,
            hub_id: 0,
            unit_threshold: DEFAULT_UNIT_THRESHOLD,
        }
    }
}

/// A search query: an ISCC-CODE or units (units win when both are given).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Query {
    /// An ISCC-CODE (or unit) to decompose.
    #[serde(default)]
    pub iscc_code: Option<String>,
    /// ISCC-UNITs (any length 64–256 bits).
    #[serde(default)]
    pub units: Option<Vec<String>>,
}

impl Query {
    /// A query by ISCC-CODE.
    pub fn code(code: impl Into<String>) -> Query {
        Query {
            iscc_code: Some(code.into()),
            units: None,
        }
    }

    /// A query by units.
    pub fn units<S: Into<String>>(units: impl IntoIterator<Item = S>) -> Query {
        Query {
            iscc_code: None,
            units: Some(units.into_iter().map(Into::into).collect()),
        }
    }
}

/// Options of a search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchParams {
    /// Matches wanted.
    pub count: usize,
    /// Exhaustive search in every unit index.
    pub exact: bool,
    /// Unit scores below this are dropped (index default when `None`).
    pub unit_threshold: Option<f32>,
}

impl Default for SearchParams {
    fn default() -> SearchParams {
        SearchParams {
            count: 10,
            exact: false,
            unit_threshold: None,
        }
    }
}

/// Figures of one unit index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitTypeInfo {
    /// Units stored.
    pub len: usize,
    /// Shards.
    pub shards: usize,
    /// Tombstoned keys awaiting compaction.
    pub tombstones: usize,
}

/// Figures of an index.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexInfo {
    /// Directory (a temporary one for in-memory indexes).
    pub path: PathBuf,
    /// Entries.
    pub size: u64,
    /// Unit types with an index.
    pub unit_types: Vec<String>,
    /// Per unit type.
    pub units: BTreeMap<String, UnitTypeInfo>,
    /// Realm, once fixed.
    pub realm: Option<u8>,
    /// Parameters.
    pub max_dim: usize,
    /// Opened read-only.
    pub read_only: bool,
    /// In-memory (temporary) index.
    pub in_memory: bool,
    /// Commits are fsync'd.
    pub durable: bool,
    /// Journal records not yet saved into the unit indexes.
    pub journal_pending: usize,
    /// Bytes of the LMDB data file.
    pub store_bytes: u64,
    /// Format version.
    pub format_version: u32,
}

/// What [`IsccIndex::remove_report`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RemoveReport {
    /// ISCC-IDs removed, in request order (canonical form).
    pub removed: Vec<String>,
    /// ISCC-IDs that were not in the index.
    pub not_found: Vec<String>,
    /// Index mappings removed (unit index rows and INSTANCE rows).
    pub mappings: usize,
}

/// A change to apply to the unit indexes.
struct Change {
    key: u64,
    /// Unit types the old version had (all types when unknown).
    old_types: Vec<UnitType>,
    /// Similarity units of the new version.
    units: Vec<Unit>,
}

/// The ISCC index; see the module docs.
pub struct IsccIndex {
    root: PathBuf,
    temp: Mutex<Option<tempfile::TempDir>>,
    store: Store,
    units: RwLock<BTreeMap<UnitType, Arc<ShardedIndex<u64>>>>,
    params: IndexParams,
    realm: RwLock<Option<Realm>>,
    ids: IdGenerator,
    options: IndexOptions,
    writer: Mutex<()>,
    closed: AtomicBool,
    lock: Mutex<Option<DirLock>>,
}

impl std::fmt::Debug for IsccIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsccIndex")
            .field("path", &self.root)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
    move |source| EngineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

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

/// [`stored_units`] inside a store transaction (whose closures return
/// store errors): an undecodable stored entry is a damaged store.
fn stored_units_in_txn(json: &[u8]) -> Result<Vec<Unit>, crate::store::StoreError> {
    stored_units(json).map_err(|e| crate::store::StoreError::Corrupt {
        path: PathBuf::from("entries"),
        why: e.to_string(),
    })
}

impl IsccIndex {
    /// Open (or create) the index at `path`; `None` makes an in-memory index
    /// in a temporary directory (no fsync; removed on close or drop).
    pub fn open(path: Option<&Path>, options: IndexOptions) -> Result<IsccIndex, EngineError> {
        let (root, temp, durable) = match path {
            Some(p) => (p.to_path_buf(), None, options.durable),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("iscc-vdb-")
                    .tempdir()
                    .map_err(io(Path::new("temporary directory")))?;
                (t.path().to_path_buf(), Some(t), false)
            }
        };
        if options.read_only && temp.is_some() {
            return Err(EngineError::Invalid(
                "an in-memory index cannot be opened read-only".into(),
            ));
        }
        if let Some(r) = options.realm {
            Realm::new(r).map_err(|source| EngineError::Iscc {
                context: "option realm".into(),
                source,
            })?;
        }
        let lock = if options.read_only {
            if !root.join("primary.lmdb").exists() {
                return Err(EngineError::NotFound(format!(
                    "index at {} (no primary.lmdb)",
                    root.display()
                )));
            }
            None
        } else {
            std::fs::create_dir_all(&root).map_err(io(&root))?;
            Some(DirLock::acquire(&root).map_err(|e| match e {
                LockError::Held => EngineError::Locked { path: root.clone() },
                LockError::Io(source) => EngineError::Io {
                    path: root.join("LOCK"),
                    source,
                },
            })?)
        };
        let store = Store::open(
            root.join("primary.lmdb"),
            StoreOptions {
                durable,
                read_only: options.read_only,
                ..StoreOptions::default()
            },
        )?;
        // Format version and parameters: written on creation, checked on open.
        let version: Option<u32> = store.get_meta("format_version")?;
        let params = match version {
            Some(v) if v != ENGINE_FORMAT_VERSION => {
                return Err(EngineError::IncompatibleFormat {
                    path: root,
                    found: v,
                    expected: ENGINE_FORMAT_VERSION,
                })
            }
            Some(_) => store
                .get_meta::<IndexParams>("params")?
                .unwrap_or(options.params),
            None => {
                if options.read_only {
                    return Err(EngineError::NotFound(format!(
                        "index at {} (not initialised)",
                        root.display()
                    )));
                }
                Self::check_params(&options.params)?;
                store.write(|w| {
                    w.put_meta("format_version", &ENGINE_FORMAT_VERSION)?;
                    w.put_meta("params", &options.params)?;
                    w.put_meta("max_dim", &options.params.max_dim)?;
                    w.put_meta(
                        "created_at",
                        &crate::codec::iso_time_us(crate::codec::now_us()),
                    )?;
                    if let Some(r) = options.realm {
                        w.put_meta("realm_id", &r)?;
                    }
                    Ok(())
                })?;
                options.params
            }
        };
        let stored_realm: Option<u8> = store.get_meta("realm_id")?;
        if let (Some(s), Some(o)) = (stored_realm, options.realm) {
            if s != o {
                return Err(EngineError::Invalid(format!(
                    "the index at {} holds realm {s}, but realm {o} was requested",
                    root.display()
                )));
            }
        }
        let realm =
            stored_realm
                .map(Realm::new)
                .transpose()
                .map_err(|source| EngineError::Iscc {
                    context: "stored metadata realm_id".into(),
                    source,
                })?;
        let ids =
            IdGenerator::new(options.hub_id, realm.unwrap_or(Realm::R0)).map_err(|source| {
                EngineError::Iscc {
                    context: "option hub_id".into(),
                    source,
                }
            })?;
        if let Some(last) = store.last_id()? {
            ids.advance_past(last);
        }
        let index = IsccIndex {
            root,
            temp: Mutex::new(temp),
            store,
            units: RwLock::new(BTreeMap::new()),
            params,
            realm: RwLock::new(realm),
            ids,
            options: IndexOptions { durable, ..options },
            writer: Mutex::new(()),
            closed: AtomicBool::new(false),
            lock: Mutex::new(lock),
        };
        index.open_unit_indexes()?;
        if !options.read_only {
            index.replay_journal()?;
        }
        Ok(index)
    }

    /// Open an existing index: into RAM for writing, or with `view`
    /// read-only (unit indexes memory-mapped).
    pub fn restore(path: &Path, view: bool) -> Result<IsccIndex, EngineError> {
        if !path.join("primary.lmdb").exists() {
            return Err(EngineError::NotFound(format!(
                "index at {} (no primary.lmdb)",
                path.display()
            )));
        }
        IsccIndex::open(
            Some(path),
            IndexOptions {
                read_only: view,
                ..IndexOptions::default()
            },
        )
    }

    fn check_params(p: &IndexParams) -> Result<(), EngineError> {
        if ![64, 128, 192, 256].contains(&p.max_dim) {
            return Err(EngineError::Invalid(format!(
                "max_dim {} (expected 64, 128, 192 or 256)",
                p.max_dim
            )));
        }
        if p.connectivity < 2
            || p.expansion_add == 0
            || p.expansion_search == 0
            || p.shard_size < 4096
        {
            return Err(EngineError::Invalid(format!(
                "invalid index parameters {p:?}"
            )));
        }
        Ok(())
    }

    fn sharded_options(p: &IndexParams) -> ShardedOptions {
        ShardedOptions {
            vectors: VectorKind::Nphd { max_dim: p.max_dim },
            connectivity: p.connectivity,
            expansion_add: p.expansion_add,
            expansion_search: p.expansion_search,
            exact_threshold: p.exact_threshold,
            shard_size: p.shard_size,
            background_rotation: true,
            ..ShardedOptions::default()
        }
    }

    /// Open every unit index directory; rebuild damaged ones from the store.
    fn open_unit_indexes(&self) -> Result<(), EngineError> {
        let mut found = Vec::new();
        let entries = std::fs::read_dir(&self.root).map_err(io(&self.root))?;
        for e in entries {
            let e = e.map_err(io(&self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(t) = name.parse::<UnitType>() {
                if t.is_similarity() && e.path().is_dir() {
                    found.push(t);
                }
            }
        }
        // Unit types the store says have an index: a missing directory is
        // rebuilt like a damaged one.
        let recorded: Vec<String> = self.store.get_meta("unit_types")?.unwrap_or_default();
        let mut damaged: Vec<UnitType> = recorded
            .iter()
            .filter_map(|n| n.parse::<UnitType>().ok())
            .filter(|t| !found.contains(t))
            .collect();
        if self.options.read_only {
            damaged.clear();
        }
        for t in found {
            let dir = self.root.join(t.dir_name());
            let opened = if self.options.read_only {
                ShardedIndex::<u64>::open_read_only(&dir)
            } else {
                ShardedIndex::<u64>::open(&dir)
            };
            match opened {
                Ok(idx) => {
                    self.units
                        .write()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(t, Arc::new(idx));
                }
                Err(ShardedError::NotFound { .. }) => {}
                Err(
                    e @ (ShardedError::Locked { .. }
                    | ShardedError::KeyKind { .. }
                    | ShardedError::Io { .. }),
                ) => return Err(EngineError::index(t)(e)),
                Err(_) if !self.options.read_only => damaged.push(t),
                Err(e) => return Err(EngineError::index(t)(e)),
            }
        }
        for t in damaged {
            self.rebuild_types(&[t], false)?;
        }
        Ok(())
    }

    fn check_open(&self) -> Result<(), EngineError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(EngineError::Closed);
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), EngineError> {
        self.check_open()?;
        if self.options.read_only {
            return Err(EngineError::ReadOnly);
        }
        Ok(())
    }

    fn realm(&self) -> Realm {
        self.realm
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .unwrap_or(Realm::R0)
    }

    /// Unit types with an open unit index.
    fn open_unit_types(&self) -> Vec<UnitType> {
        self.units
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .copied()
            .collect()
    }

    fn unit_index(&self, t: UnitType) -> Option<Arc<ShardedIndex<u64>>> {
        self.units
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&t)
            .cloned()
    }

    fn unit_index_or_create(&self, t: UnitType) -> Result<Arc<ShardedIndex<u64>>, EngineError> {
        if let Some(i) = self.unit_index(t) {
            return Ok(i);
        }
        let mut units = self.units.write().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = units.get(&t) {
            return Ok(Arc::clone(i));
        }
        let idx = ShardedIndex::<u64>::open_or_create(
            self.root.join(t.dir_name()),
            Self::sharded_options(&self.params),
        )
        .map_err(EngineError::index(t))?;
        let idx = Arc::new(idx);
        units.insert(t, Arc::clone(&idx));
        let names: Vec<String> = units.keys().map(|t| t.name()).collect();
        self.store.put_meta("unit_types", &names)?;
        Ok(idx)
    }

    /// Parse an ISCC-ID string and check its realm.
    fn parse_id(&self, s: &str, context: &str) -> Result<IsccId, EngineError> {
        let id = IsccId::parse(s).map_err(|source| EngineError::Iscc {
            context: context.to_string(),
            source,
        })?;
        let realm = *self.realm.read().unwrap_or_else(|p| p.into_inner());
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

    // ---- add ---------------------------------------------------------------

    /// Add entries (a JSON object or an array of them); returns one ISCC-ID
    /// per entry, in order. See the module docs and [`entry`] for the entry
    /// form. The whole batch is validated before anything is written; a
    /// duplicate ISCC-ID in the batch: the last entry wins; re-adding an
    /// identical entry changes nothing.
    pub fn add_json(&self, json: &str) -> Result<Vec<String>, EngineError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| EngineError::Json(e.to_string()))?;
        self.add_values(&value)
    }

    /// [`IsccIndex::add_json`] for parsed JSON.
    pub fn add_values(&self, value: &Value) -> Result<Vec<String>, EngineError> {
        let list: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        self.add(&list)
    }

    /// Add entries given as JSON values.
    pub fn add(&self, entries: &[&Value]) -> Result<Vec<String>, EngineError> {
        self.check_writable()?;
        let prepared: Vec<Prepared> = entries
            .iter()
            .enumerate()
            .map(|(i, v)| prepare(v, &format!("entries[{i}]")))
            .collect::<Result<_, _>>()?;
        let _w = lock(&self.writer);
        self.check_writable()?;
        // The realm: fixed, or from the first ISCC-ID of this batch.
        let fixed = *self.realm.read().unwrap_or_else(|p| p.into_inner());
        let realm = fixed
            .or_else(|| prepared.iter().find_map(|p| p.id.map(IsccId::realm)))
            .unwrap_or(if self.options.realm == Some(1) {
                Realm::R1
            } else {
                Realm::R0
            });
        for (i, p) in prepared.iter().enumerate() {
            if let Some(id) = p.id {
                if id.realm() != realm {
                    return Err(EngineError::Realm {
                        context: format!("entries[{i}].iscc_id"),
                        id: id.to_string(),
                        found: id.realm().id(),
                        expected: realm.id(),
                    });
                }
                self.ids.advance_past(id.value());
            }
        }
        let gen = if fixed.is_none() {
            IdGenerator::new(self.options.hub_id, realm).map_err(|source| EngineError::Iscc {
                context: "option hub_id".into(),
                source,
            })?
        } else {
            IdGenerator::new(self.options.hub_id, self.ids.realm()).map_err(|source| {
                EngineError::Iscc {
                    context: "option hub_id".into(),
                    source,
                }
            })?
        };
        let mut ids = Vec::with_capacity(prepared.len());
        for p in &prepared {
            ids.push(match p.id {
                Some(id) => id,
                None => gen.next_id().map_err(|source| EngineError::Iscc {
                    context: "generating an ISCC-ID".into(),
                    source,
                })?,
            });
        }
        // Last occurrence of an ID wins.
        let mut last: HashMap<u64, usize> = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            last.insert(id.value(), i);
        }
        let rows: Vec<(u64, Vec<u8>, &Prepared)> = ids
            .iter()
            .enumerate()
            .filter(|(i, id)| last.get(&id.value()) == Some(i))
            .map(|(i, id)| {
                let json = Value::Object(prepared[i].to_json(*id));
                (
                    id.value(),
                    serde_json::to_vec(&json).unwrap_or_default(),
                    &prepared[i],
                )
            })
            .collect();
        let set_realm = fixed.is_none();
        let changes = self.store.write(|w| {
            if set_realm {
                w.put_meta("realm_id", &realm.id())?;
            }
            let mut changes = Vec::new();
            for (key, json, p) in &rows {
                let old = w.get_entry(*key)?;
                if old.as_deref() == Some(&json[..]) {
                    continue;
                }
                let old_units = match &old {
                    Some(o) => stored_units_in_txn(o)?,
                    None => Vec::new(),
                };
                for u in old_units.iter().filter(|u| u.unit_type().is_instance()) {
                    w.remove_instance(u.body(), *key)?;
                }
                w.put_entry(*key, json)?;
                for u in p.units.iter().filter(|u| u.unit_type().is_instance()) {
                    w.add_instance(u.body(), *key)?;
                }
                w.journal(*key)?;
                changes.push(Change {
                    key: *key,
                    old_types: old_units.iter().map(Unit::unit_type).collect(),
                    units: p
                        .units
                        .iter()
                        .filter(|u| u.unit_type().is_similarity())
                        .cloned()
                        .collect(),
                });
            }
            Ok(changes)
        })?;
        if set_realm {
            *self.realm.write().unwrap_or_else(|p| p.into_inner()) = Some(realm);
        }
        self.apply(changes)?;
        Ok(ids.iter().map(IsccId::to_string).collect())
    }

    /// Bring the unit indexes in line with changed entries.
    fn apply(&self, changes: Vec<Change>) -> Result<(), EngineError> {
        let mut upserts: BTreeMap<UnitType, (Vec<u64>, Vec<Vec<u8>>)> = BTreeMap::new();
        let mut removes: BTreeMap<UnitType, Vec<u64>> = BTreeMap::new();
        for c in changes {
            let new_types: HashSet<UnitType> = c.units.iter().map(Unit::unit_type).collect();
            for t in c
                .old_types
                .iter()
                .filter(|t| t.is_similarity() && !new_types.contains(t))
            {
                removes.entry(*t).or_default().push(c.key);
            }
            for u in c.units {
                let e = upserts.entry(u.unit_type()).or_default();
                e.0.push(c.key);
                e.1.push(u.body().to_vec());
            }
        }
        for (t, keys) in removes {
            if let Some(idx) = self.unit_index(t) {
                idx.remove(&keys).map_err(EngineError::index(t))?;
            }
        }
        for (t, (keys, bodies)) in upserts {
            let idx = self.unit_index_or_create(t)?;
            idx.upsert(&keys, &bodies).map_err(EngineError::index(t))?;
        }
        Ok(())
    }

    /// Replay journal records past the last save into the unit indexes.
    fn replay_journal(&self) -> Result<(), EngineError> {
        let journal = self.store.journal()?;
        if journal.is_empty() {
            return Ok(());
        }
        let mut seen = HashSet::new();
        let all = self.open_unit_types();
        let mut changes = Vec::new();
        for (_, key) in journal {
            if !seen.insert(key) {
                continue;
            }
            let units = match self.store.get_entry(key)? {
                Some(json) => stored_units(&json)?,
                None => Vec::new(),
            };
            changes.push(Change {
                key,
                old_types: all.clone(),
                units: units
                    .into_iter()
                    .filter(|u| u.unit_type().is_similarity())
                    .collect(),
            });
        }
        self.apply(changes)
    }

    // ---- get / remove ----------------------------------------------------

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

    /// The stored entry of an ISCC-ID; [`EngineError::NotFound`] (naming
    /// the ID) when there is none.
    pub fn get_one(&self, iscc_id: &str) -> Result<Value, EngineError> {
        self.get(iscc_id)?
            .ok_or_else(|| EngineError::NotFound(iscc_id.to_string()))
    }

    /// [`IsccIndex::get`] for many ISCC-IDs (`None` where absent).
    pub fn get_many(&self, iscc_ids: &[&str]) -> Result<Vec<Option<Value>>, EngineError> {
        iscc_ids.iter().map(|id| self.get(id)).collect()
    }

    /// Remove entries; returns the number of index mappings removed (unit
    /// index rows and INSTANCE rows). Unknown ISCC-IDs remove nothing.
    pub fn remove(&self, iscc_ids: &[&str]) -> Result<usize, EngineError> {
        self.remove_report(iscc_ids).map(|r| r.mappings)
    }

    /// [`IsccIndex::remove`], telling which ISCC-IDs were removed and which
    /// were not in the index (decided inside the removing transaction, so a
    /// concurrent writer cannot make the answer stale).
    pub fn remove_report(&self, iscc_ids: &[&str]) -> Result<RemoveReport, EngineError> {
        self.check_writable()?;
        let ids: Vec<IsccId> = iscc_ids
            .iter()
            .enumerate()
            .map(|(i, s)| self.parse_id(s, &format!("iscc_ids[{i}]")))
            .collect::<Result<_, _>>()?;
        let keys: Vec<u64> = ids.iter().map(|id| id.value()).collect();
        let _w = lock(&self.writer);
        self.check_writable()?;
        let (changes, mappings, removed) = self.store.write(|w| {
            let mut changes = Vec::new();
            let mut mappings = 0;
            let mut seen = HashSet::new();
            let mut removed = HashSet::new();
            for key in &keys {
                if !seen.insert(*key) {
                    continue;
                }
                let Some(old) = w.get_entry(*key)? else {
                    continue;
                };
                removed.insert(*key);
                let units = stored_units_in_txn(&old)?;
                for u in units.iter().filter(|u| u.unit_type().is_instance()) {
                    w.remove_instance(u.body(), *key)?;
                }
                w.delete_entry(*key)?;
                w.journal(*key)?;
                mappings += units.len();
                changes.push(Change {
                    key: *key,
                    old_types: units.iter().map(Unit::unit_type).collect(),
                    units: Vec::new(),
                });
            }
            Ok((changes, mappings, removed))
        })?;
        self.apply(changes)?;
        let mut report = RemoveReport {
            mappings,
            ..RemoveReport::default()
        };
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id.value()) {
                continue;
            }
            let key = id.value();
            let id = id.to_string();
            if removed.contains(&key) {
                report.removed.push(id);
            } else {
                report.not_found.push(id);
            }
        }
        Ok(report)
    }

    // ---- search ------------------------------------------------------------

    /// Search one query.
    pub fn search(&self, query: &Query, params: &SearchParams) -> Result<IsccMatches, EngineError> {
        self.check_open()?;
        let units = query_units(query.iscc_code.as_deref(), query.units.as_deref(), "query")?;
        self.search_units(&units, params)
    }

    /// Search many queries: the units of all queries are grouped by unit
    /// type and each unit index answers its group in one batch (exact scans
    /// then share every cached block of rows across queries, in parallel).
    pub fn search_batch(
        &self,
        queries: &[Query],
        params: &SearchParams,
    ) -> Result<BatchMatches, EngineError> {
        self.check_open()?;
        let units: Vec<Vec<Unit>> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                query_units(
                    q.iscc_code.as_deref(),
                    q.units.as_deref(),
                    &format!("queries[{i}]"),
                )
            })
            .collect::<Result<_, _>>()?;
        let threshold = params.unit_threshold.unwrap_or(self.options.unit_threshold);
        let options = Self::unit_search_options(params);
        let mut aggs: Vec<Aggregator> = units.iter().map(|_| Aggregator::default()).collect();
        let mut by_type: BTreeMap<UnitType, (Vec<usize>, Vec<&[u8]>)> = BTreeMap::new();
        for (qi, list) in units.iter().enumerate() {
            for u in list {
                let t = u.unit_type();
                if t.is_instance() {
                    for (key, _) in self.store.instance_matches(u.body())? {
                        aggs[qi].instance(key);
                    }
                } else {
                    let e = by_type.entry(t).or_default();
                    e.0.push(qi);
                    e.1.push(u.body());
                }
            }
        }
        for (t, (owners, bodies)) in by_type {
            let Some(idx) = self.unit_index(t) else {
                continue;
            };
            let results = idx
                .search_batch(&bodies, &options)
                .map_err(EngineError::index(t))?;
            for (qi, found) in owners.into_iter().zip(results) {
                for m in found {
                    aggs[qi].unit(m.key, t, m.distance);
                }
            }
        }
        let realm = self.realm();
        let results: Vec<IsccMatches> = aggs
            .into_par_iter()
            .map(|a| a.finish(threshold, params.count, realm))
            .collect();
        Ok(BatchMatches { queries: results })
    }

    /// Unit-index search options: more candidates per unit type than
    /// `count` (half as many again, at least 20), so entries strong on
    /// several types are not cut before aggregation.
    fn unit_search_options(params: &SearchParams) -> SearchOptions {
        SearchOptions {
            exact: params.exact.then_some(true),
            ..SearchOptions::count(params.count.saturating_add(params.count / 2).max(20))
        }
    }

    fn search_units(
        &self,
        units: &[Unit],
        params: &SearchParams,
    ) -> Result<IsccMatches, EngineError> {
        let threshold = params.unit_threshold.unwrap_or(self.options.unit_threshold);
        let mut agg = Aggregator::default();
        let options = Self::unit_search_options(params);
        // Unit types are searched in parallel (each on its own core when
        // there are idle ones); INSTANCE lookups go to the store.
        let similar: Vec<&Unit> = units
            .iter()
            .filter(|u| !u.unit_type().is_instance())
            .collect();
        let found: Vec<(UnitType, Vec<crate::index::Match<u64>>)> = similar
            .par_iter()
            .filter_map(|u| {
                let t = u.unit_type();
                self.unit_index(t).map(|idx| {
                    idx.search(u.body(), &options)
                        .map(|m| (t, m))
                        .map_err(EngineError::index(t))
                })
            })
            .collect::<Result<_, _>>()?;
        for (t, matches) in found {
            for m in matches {
                agg.unit(m.key, t, m.distance);
            }
        }
        for u in units.iter().filter(|u| u.unit_type().is_instance()) {
            for (key, _) in self.store.instance_matches(u.body())? {
                agg.instance(key);
            }
        }
        Ok(agg.finish(threshold, params.count, self.realm()))
    }

    // ---- maintenance ---------------------------------------------------------

    /// Write every unit index and trim the journal.
    pub fn save(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let _w = lock(&self.writer);
        self.save_locked()
    }

    fn save_locked(&self) -> Result<(), EngineError> {
        let last = self.store.journal_last()?;
        let units: Vec<(UnitType, Arc<ShardedIndex<u64>>)> = self
            .units
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, i)| (*t, Arc::clone(i)))
            .collect();
        for (t, idx) in units {
            idx.save().map_err(EngineError::index(t))?;
        }
        if let Some(seq) = last {
            self.store.trim_journal(seq)?;
        }
        Ok(())
    }

    /// Recreate every derived index (unit indexes and INSTANCE rows) from the
    /// stored entries, then save.
    pub fn rebuild(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let _w = lock(&self.writer);
        let all = self.open_unit_types();
        self.rebuild_types(&all, true)?;
        self.rebuild_instances()?;
        self.save_locked()
    }

    /// Drop the unit indexes of `types` and refill them from the entries;
    /// with `all`, refill every unit type the entries have.
    fn rebuild_types(&self, types: &[UnitType], all: bool) -> Result<(), EngineError> {
        {
            let mut units = self.units.write().unwrap_or_else(|p| p.into_inner());
            for t in types {
                if let Some(idx) = units.remove(t) {
                    let _ = idx.close();
                }
                let dir = self.root.join(t.dir_name());
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
                }
            }
        }
        let wanted: HashSet<UnitType> = types.iter().copied().collect();
        self.for_each_chunk(|chunk| {
            let mut changes = Vec::with_capacity(chunk.len());
            for (key, json) in chunk {
                let units: Vec<Unit> = stored_units(json)?
                    .into_iter()
                    .filter(|u| {
                        u.unit_type().is_similarity() && (all || wanted.contains(&u.unit_type()))
                    })
                    .collect();
                changes.push(Change {
                    key: *key,
                    old_types: Vec::new(),
                    units,
                });
            }
            self.apply(changes)?;
            Ok(())
        })?;
        Ok(())
    }

    fn rebuild_instances(&self) -> Result<(), EngineError> {
        self.store.write(|w| w.clear_instances())?;
        self.for_each_chunk(|chunk| {
            let rows: Vec<(u64, Vec<u8>)> = chunk
                .iter()
                .map(|(k, json)| {
                    Ok(stored_units(json)?
                        .into_iter()
                        .filter(|u| u.unit_type().is_instance())
                        .map(|u| (*k, u.body().to_vec()))
                        .collect::<Vec<_>>())
                })
                .collect::<Result<Vec<_>, EngineError>>()?
                .into_iter()
                .flatten()
                .collect();
            self.store.write(|w| {
                for (k, b) in &rows {
                    w.add_instance(b, *k)?;
                }
                Ok(())
            })?;
            Ok(())
        })?;
        Ok(())
    }

    /// Run `f` on every stored entry, in chunks of 10,000 in ID order (each
    /// chunk read in its own transaction).
    fn for_each_chunk(
        &self,
        mut f: impl FnMut(&[(u64, Vec<u8>)]) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut from = 0u64;
        loop {
            let chunk = self.store.entries_from(from, 10_000)?;
            let Some(&(last, _)) = chunk.last() else {
                return Ok(());
            };
            f(&chunk)?;
            if last == u64::MAX {
                return Ok(());
            }
            from = last + 1;
        }
    }

    /// A new in-memory index with the same parameters, realm and entries.
    pub fn copy(&self) -> Result<IsccIndex, EngineError> {
        self.check_open()?;
        let copy = IsccIndex::open(
            None,
            IndexOptions {
                params: self.params,
                realm: self
                    .realm
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .map(Realm::id),
                read_only: false,
                ..self.options
            },
        )?;
        self.for_each_chunk(|chunk| {
            let values: Vec<Value> = chunk
                .iter()
                .map(|(_, j)| {
                    serde_json::from_slice(j).map_err(|e| EngineError::Json(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
            let refs: Vec<&Value> = values.iter().collect();
            copy.add(&refs)?;
            Ok(())
        })?;
        Ok(copy)
    }

    /// Number of entries.
    pub fn size(&self) -> Result<u64, EngineError> {
        self.check_open()?;
        Ok(self.store.len()?)
    }

    /// Unit types with at least one stored unit (INSTANCE-NONE-V0 included
    /// when present).
    pub fn unit_types(&self) -> Result<Vec<String>, EngineError> {
        self.check_open()?;
        let mut out: Vec<String> = self
            .units
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, i)| !i.is_empty())
            .map(|(t, _)| t.name())
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
        let units: BTreeMap<String, UnitTypeInfo> = self
            .units
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(t, i)| {
                let s = i.stats();
                (
                    t.name(),
                    UnitTypeInfo {
                        len: s.total_vectors,
                        shards: s.view_shards + usize::from(!s.read_only),
                        tombstones: s.tombstones,
                    },
                )
            })
            .collect();
        Ok(IndexInfo {
            path: self.root.clone(),
            size: self.store.len()?,
            unit_types: self.unit_types()?,
            units,
            realm: self
                .realm
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .map(Realm::id),
            max_dim: self.params.max_dim,
            read_only: self.options.read_only,
            in_memory: lock(&self.temp).is_some(),
            durable: self.options.durable,
            journal_pending: self.store.journal_len()? as usize,
            store_bytes: self.store.disk_bytes(),
            format_version: ENGINE_FORMAT_VERSION,
        })
    }

    /// A user metadata value (stored in LMDB beside the index's own keys).
    pub fn get_metadata(&self, key: &str) -> Result<Option<Value>, EngineError> {
        self.check_open()?;
        Ok(self.store.get_meta(&format!("user:{key}"))?)
    }

    /// Set a user metadata value (one durable transaction).
    pub fn put_metadata(&self, key: &str, value: &Value) -> Result<(), EngineError> {
        self.check_writable()?;
        Ok(self.store.put_meta(&format!("user:{key}"), value)?)
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
            self.save_locked()
        };
        self.closed.store(true, Ordering::Release);
        let units: Vec<Arc<ShardedIndex<u64>>> =
            std::mem::take(&mut *self.units.write().unwrap_or_else(|p| p.into_inner()))
                .into_values()
                .collect();
        for u in units {
            let _ = if in_memory { Ok(()) } else { u.close() };
        }
        lock(&self.lock).take();
        if let Some(t) = lock(&self.temp).take() {
            let _ = t.close();
        }
        result
    }
}
