//! `IsccStore`: the primary store of an index directory on its own — the
//! entries and metadata (the truth), without the unit indexes.
//!
//! It is the spec's `IsccStore`: entries by their 64-bit ISCC-ID key, in
//! ID (time) order, and metadata. It shares the engine's write path, so a
//! `put` or `delete` writes exactly what an `LocalIndex` add or remove
//! writes in one transaction — the entry, its INSTANCE rows, the per-unit-
//! type counts and a journal record — and the next `LocalIndex` open of the
//! directory replays the journal into its unit indexes. Derived indexes
//! therefore never silently disagree with entries written here.
//!
//! A writable store holds the directory's writer lock: an `LocalIndex`
//! writer and an `IsccStore` writer of one directory exclude each other
//! (`Locked` from another process, `OpenHere` from this one).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::entry::prepare;
use super::open::{lock_dir, stored_realm};
use super::write::{remove_entry, write_entry};
use super::{meta, recovery, EngineError, IndexOptions};
use crate::codec::{IsccId, Realm};
use crate::lockfile::DirLock;
use crate::store::{Store, StoreOptions};
use crate::sync::lock;

/// The primary store of an index directory; see the module docs.
pub struct IsccStore {
    root: PathBuf,
    store: Store,
    /// The realm of the entries: stored, or fixed by the first `put`.
    realm: OnceLock<Realm>,
    /// The realm a new store takes (the `realm` option, else 0).
    wanted: Realm,
    read_only: bool,
    durable: bool,
    /// Serialises writes (the realm is fixed inside the first one).
    writer: Mutex<()>,
    lock: Mutex<Option<DirLock>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for IsccStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsccStore")
            .field("path", &self.root)
            .finish()
    }
}

/// Figures of a store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoreInfo {
    /// The index directory.
    pub path: PathBuf,
    /// Number of entries.
    pub size: u64,
    /// The realm of the entries (`None` before the first entry).
    pub realm: Option<u8>,
    /// Opened read-only.
    pub read_only: bool,
    /// Commits are fsync'd.
    pub durable: bool,
    /// Changes no unit index has seen yet (replayed by the next open of an
    /// `LocalIndex` on the directory).
    pub journal_pending: u64,
}

impl IsccStore {
    /// Open (or create, unless `options.read_only`) the store of the index
    /// directory `path` (its LMDB environment is `path/primary.lmdb`). The
    /// options are the engine's open options: `realm`, `durable`,
    /// `read_only`, and for a new directory the index parameters an
    /// `LocalIndex` will use.
    pub fn open(path: &Path, options: IndexOptions) -> Result<IsccStore, EngineError> {
        if path.join("data.mdb").exists() && !path.join("primary.lmdb").exists() {
            let parent = path.parent().unwrap_or(path);
            return Err(EngineError::Invalid(format!(
                "{} is the LMDB environment of an index, not an index directory: \
                 open its directory {}",
                path.display(),
                parent.display()
            )));
        }
        let wanted =
            Realm::new(options.realm.unwrap_or(0)).map_err(|source| EngineError::Iscc {
                context: "option realm".into(),
                source,
            })?;
        let lock = lock_dir(path, options.read_only)?;
        let store = Store::open(
            path.join("primary.lmdb"),
            StoreOptions {
                durable: options.durable,
                read_only: options.read_only,
                ..StoreOptions::default()
            },
        )?;
        recovery::check_format(&store, path, &options)?;
        let realm = stored_realm(&store, path, options.realm)?;
        Ok(IsccStore {
            root: path.to_path_buf(),
            store,
            realm: realm.map(OnceLock::from).unwrap_or_default(),
            wanted,
            read_only: options.read_only,
            durable: options.durable,
            writer: Mutex::new(()),
            lock: Mutex::new(lock),
            closed: AtomicBool::new(false),
        })
    }

    fn check_open(&self) -> Result<(), EngineError> {
        super::check_state(&self.closed, self.read_only, false)
    }

    fn check_writable(&self) -> Result<(), EngineError> {
        super::check_state(&self.closed, self.read_only, true)
    }

    /// The ISCC-ID of a key in this store's realm.
    pub fn iscc_id(&self, key: u64) -> IsccId {
        IsccId::from_u64(key, self.realm.get().copied().unwrap_or(self.wanted))
    }

    /// Store `entry` (an object with `iscc_code` and/or `units`, optionally
    /// `iscc_id`, and any other fields) under `key`, replacing what was
    /// there; returns its ISCC-ID. The entry is validated as an
    /// `LocalIndex::add` validates it; an `iscc_id` field must name `key`.
    pub fn put(&self, key: u64, entry: &Value) -> Result<IsccId, EngineError> {
        self.check_writable()?;
        let p = prepare(entry, "entry")?;
        let _w = lock(&self.writer);
        self.check_writable()?;
        let fixed = self.realm.get().copied();
        let realm = fixed.unwrap_or(self.wanted);
        let id = IsccId::from_u64(key, realm);
        if let Some(given) = p.id {
            if given.realm() != realm {
                return Err(EngineError::Realm {
                    context: "entry.iscc_id".into(),
                    id: given.to_string(),
                    found: given.realm().id(),
                    expected: realm.id(),
                });
            }
            if given.value() != key {
                return Err(EngineError::Invalid(format!(
                    "entry.iscc_id {given} is not the key {key} ({id})"
                )));
            }
        }
        let json = p.stored_json(id);
        self.store.write(|w| {
            if fixed.is_none() {
                w.set_meta(meta::REALM_ID, &realm.id())?;
            }
            write_entry(w, key, &json, &p).map(|_| ())
        })?;
        // Set once, under the writer lock: no other set can race it.
        let _ = self.realm.set(realm);
        Ok(id)
    }

    /// The stored entry of `key`, or `None`.
    pub fn get(&self, key: u64) -> Result<Option<Value>, EngineError> {
        self.check_open()?;
        match self.store.get_entry(key)? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| EngineError::Json(format!("stored entry {key}: {e}"))),
            None => Ok(None),
        }
    }

    /// Delete the entry of `key` (with its INSTANCE rows and counts, one
    /// journal record); false when there was none.
    pub fn delete(&self, key: u64) -> Result<bool, EngineError> {
        self.check_writable()?;
        let _w = lock(&self.writer);
        self.check_writable()?;
        Ok(self
            .store
            .write(|w| remove_entry(w, key).map(|r| r.is_some()))?)
    }

    /// Up to `limit` entries with keys ≥ `from`, in key (time) order, from
    /// one consistent snapshot.
    pub fn entries(&self, from: u64, limit: usize) -> Result<Vec<(u64, Value)>, EngineError> {
        self.check_open()?;
        entries_page(&self.store, from, limit)
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64, EngineError> {
        self.check_open()?;
        Ok(self.store.len()?)
    }

    /// True when the store holds no entry.
    pub fn is_empty(&self) -> Result<bool, EngineError> {
        Ok(self.len()? == 0)
    }

    /// A user metadata value (the same keys as `LocalIndex::get_metadata`).
    pub fn get_metadata(&self, key: &str) -> Result<Option<Value>, EngineError> {
        self.check_open()?;
        Ok(meta::get_user(&self.store, key)?)
    }

    /// Set a user metadata value (one transaction); the engine's own keys
    /// live apart and cannot be overwritten from here.
    pub fn put_metadata(&self, key: &str, value: &Value) -> Result<(), EngineError> {
        self.check_writable()?;
        Ok(meta::put_user(&self.store, key, value)?)
    }

    /// Figures of the store.
    pub fn info(&self) -> Result<StoreInfo, EngineError> {
        self.check_open()?;
        Ok(StoreInfo {
            path: self.root.clone(),
            size: self.store.len()?,
            realm: self.realm.get().map(|r| r.id()),
            read_only: self.read_only,
            durable: self.durable,
            journal_pending: self.store.journal_len()?,
        })
    }

    /// The index directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Release the store and its writer lock; later calls return
    /// [`EngineError::Closed`]. Every write was committed when it returned,
    /// so closing writes nothing.
    pub fn close(&self) {
        let _w = lock(&self.writer);
        self.closed.store(true, Ordering::Release);
        lock(&self.lock).take();
    }
}

/// Up to `limit` entries of `store` with keys ≥ `from`, in key order,
/// decoded (what `IsccStore::entries` and `LocalIndex::entries_page` list).
pub(super) fn entries_page(
    store: &Store,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Value)>, EngineError> {
    store
        .entries_from(from, limit)?
        .into_iter()
        .map(|(k, bytes)| {
            serde_json::from_slice(&bytes)
                .map(|v| (k, v))
                .map_err(|e| EngineError::Json(format!("stored entry {k}: {e}")))
        })
        .collect()
}
