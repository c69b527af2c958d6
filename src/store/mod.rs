//! The primary store: one LMDB environment (via heed) holding the source of
//! truth of an ISCC index. Every other index is derived from it.
//!
//! Named databases:
//!
//! | name | key → value | |
//! |---|---|---|
//! | `entries` | ISCC-ID (u64, big-endian) → entry JSON | big-endian keys sort numerically, so iteration is in ID (time) order |
//! | `metadata` | UTF-8 key → JSON value | realm, parameters, format version, unit directories, user keys ([`MetaKey`]) |
//! | `instance` | INSTANCE body → ISCC-ID (dupsort) | exact and prefix matches at 64–256 bits |
//! | `journal` | sequence (u64, big-endian) → ISCC-ID | changes not yet saved into every unit index |
//! | `counts` | unit type name → entries with a unit of that type | kept in the same transactions as the entries, so an open can check each unit index against it |
//! | `simprints` | simprint type name, 0, simprint bytes → ISCC-ID (u64 BE) + chunk (u32 BE) (dupsort) | exact simprint collisions and document frequencies ([`simprints`]) |
//! | `simprint_types` | simprint type name → bits, entries, chunks (3 × u64 BE) | one bit length per type; counts kept like `counts` |
//!
//! Writes go through [`Store::write`], which runs a closure in one write
//! transaction and, when LMDB reports a full map, aborts, doubles the map
//! and runs the closure again — a caller never sees `MDB_MAP_FULL`. The map
//! can only be resized while no transaction is open, so every transaction
//! holds a shared guard that the resize takes exclusively. A reader whose
//! map another process grew (`MDB_MAP_RESIZED`) adopts the new size and
//! retries.

mod meta;
pub(crate) mod simprints;
mod txn;

use std::path::{Path, PathBuf};

use crate::sync::{ReadGuard, RwLock};
use heed::byteorder::BE;
use heed::types::{Bytes, Str, U64};
use heed::{
    CommitOrAbort, Database, DatabaseFlags, Env, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use self::meta::{MetaKey, JOURNAL_FLOOR};
use crate::kind::{self, ErrorKind};

/// Errors of the primary store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An LMDB error.
    #[error("{}", lmdb_message(path, source))]
    Lmdb { path: PathBuf, source: heed::Error },
    /// A file or directory could not be created or read.
    #[error("{}", crate::kind::io_message(path, source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A stored value that does not decode.
    #[error("damaged value in {path}: {why}")]
    Corrupt { path: PathBuf, why: String },
    /// A write to a store opened read-only.
    #[error("the store is open read-only")]
    ReadOnly,
}

fn lmdb_kind(path: &Path, source: &heed::Error) -> ErrorKind {
    match source {
        heed::Error::Io(io) => kind::io_kind_at(io, path),
        heed::Error::Mdb(heed::MdbError::Invalid)
        | heed::Error::Mdb(heed::MdbError::VersionMismatch) => ErrorKind::IncompatibleFormat,
        heed::Error::Mdb(heed::MdbError::Corrupted)
        | heed::Error::Mdb(heed::MdbError::PageNotFound) => ErrorKind::Corrupt,
        heed::Error::Mdb(heed::MdbError::MapFull) => ErrorKind::DiskFull,
        // LMDB allows one open of an environment per process.
        heed::Error::EnvAlreadyOpened => ErrorKind::Locked,
        _ => ErrorKind::Internal,
    }
}

fn lmdb_message(path: &Path, source: &heed::Error) -> String {
    if lmdb_kind(path, source) == ErrorKind::DiskFull {
        format!("{} (LMDB: {source})", kind::disk_full_message(path))
    } else {
        format!("LMDB error in {}: {source}", path.display())
    }
}

impl StoreError {
    /// The stable category.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Lmdb { path, source } => lmdb_kind(path, source),
            StoreError::Io { path, source } => kind::io_kind_at(source, path),
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::ReadOnly => ErrorKind::ReadOnly,
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// fsync on every commit (false: faster, for tests and in-memory use;
    /// a crash may lose the last commits but never corrupts the file).
    pub durable: bool,
    /// Open read-only (no writes; other processes may write meanwhile).
    pub read_only: bool,
    /// Initial map size in bytes (grows by itself when full).
    pub map_size: usize,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            durable: true,
            read_only: false,
            map_size: 64 << 20,
        }
    }
}

type BeU64 = U64<BE>;

/// The LMDB primary store; see the module docs.
pub struct Store {
    env: Env<WithoutTls>,
    path: PathBuf,
    entries: Database<'static, BeU64, Bytes>,
    metadata: Database<'static, Str, Bytes>,
    instance: Database<'static, Bytes, BeU64>,
    journal: Database<'static, BeU64, BeU64>,
    /// `None` only in a read-only open of a store written before counts
    /// were kept (the engine then counts the entries itself).
    counts: Option<Database<'static, Str, BeU64>>,
    /// `None` only in a read-only open of a store written before simprints
    /// were indexed (format 2).
    simprints: Option<Database<'static, Bytes, Bytes>>,
    simprint_types: Option<Database<'static, Str, Bytes>>,
    read_only: bool,
    /// Shared by every transaction, exclusive for a map resize.
    map_guard: RwLock<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// A write transaction of the store (see [`Store::write`]).
pub struct StoreTxn<'s, 't> {
    store: &'s Store,
    txn: &'s mut RwTxn<'t>,
    /// Simprint row changes of this transaction, applied in key order just
    /// before it commits (see [`simprints`]).
    simprint_ops: simprints::PendingOps,
}

/// A read transaction of the store (see [`Store::read`]).
pub struct StoreRead<'s> {
    store: &'s Store,
    txn: &'s RoTxn<'s, WithoutTls>,
}

fn page_round(n: usize) -> usize {
    n.next_multiple_of(4096 * 16)
}

type Dbs = (
    Database<'static, BeU64, Bytes>,
    Database<'static, Str, Bytes>,
    Database<'static, Bytes, BeU64>,
    Database<'static, BeU64, BeU64>,
    Option<Database<'static, Str, BeU64>>,
    Option<Database<'static, Bytes, Bytes>>,
    Option<Database<'static, Str, Bytes>>,
);

/// The store's named databases, each declared once with its key and value
/// types (and flags): `databases!(dbo, txn, open)` opens them in a read
/// transaction (each `Option`, absent when missing), `databases!(dbo, txn,
/// create)` creates the missing ones in a write transaction.
macro_rules! databases {
    ($dbo:ident, $txn:ident, $how:ident) => {{
        let entries = $dbo
            .database_options()
            .types::<BeU64, Bytes>()
            .name("entries")
            .$how($txn)?;
        let metadata = $dbo
            .database_options()
            .types::<Str, Bytes>()
            .name("metadata")
            .$how($txn)?;
        let instance = $dbo
            .database_options()
            .types::<Bytes, BeU64>()
            .name("instance")
            .flags(DatabaseFlags::DUP_SORT)
            .$how($txn)?;
        let journal = $dbo
            .database_options()
            .types::<BeU64, BeU64>()
            .name("journal")
            .$how($txn)?;
        let counts = $dbo
            .database_options()
            .types::<Str, BeU64>()
            .name("counts")
            .$how($txn)?;
        let simprints = $dbo
            .database_options()
            .types::<Bytes, Bytes>()
            .name("simprints")
            .flags(DatabaseFlags::DUP_SORT)
            .$how($txn)?;
        let simprint_types = $dbo
            .database_options()
            .types::<Str, Bytes>()
            .name("simprint_types")
            .$how($txn)?;
        (
            entries,
            metadata,
            instance,
            journal,
            counts,
            simprints,
            simprint_types,
        )
    }};
}

impl Store {
    /// Open (or create, unless read-only) the environment in `dir`.
    pub fn open(dir: impl AsRef<Path>, options: StoreOptions) -> Result<Store, StoreError> {
        let path = dir.as_ref().to_path_buf();
        if !options.read_only {
            std::fs::create_dir_all(&path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
        }
        let lmdb = |source| StoreError::Lmdb {
            path: path.clone(),
            source,
        };
        let mut flags = EnvFlags::empty();
        if !options.durable {
            flags |= EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC;
        }
        if options.read_only {
            flags |= EnvFlags::READ_ONLY;
        }
        let mut builder = EnvOpenOptions::new().read_txn_without_tls();
        builder
            .map_size(page_round(options.map_size))
            .max_dbs(16)
            .max_readers(510);
        // SAFETY: heed's contract for `flags`/`open`: the environment is not
        // opened twice in this process (heed checks and returns
        // EnvAlreadyOpened) and the files are not modified outside LMDB;
        // NO_SYNC only trades durability of the last commits, never safety.
        let env = unsafe {
            builder.flags(flags);
            builder.open(&path)
        }
        .map_err(lmdb)?;
        let (entries, metadata, instance, journal, counts, simprints, simprint_types) =
            if options.read_only {
                Self::open_databases(&env)
                    .map_err(lmdb)?
                    .ok_or_else(|| StoreError::Corrupt {
                        path: path.clone(),
                        why: "not an iscc-vdb store (named databases missing)".into(),
                    })?
            } else {
                Self::create_databases(&env).map_err(lmdb)?
            };
        Ok(Store {
            env,
            path,
            entries,
            metadata,
            instance,
            journal,
            counts,
            simprints,
            simprint_types,
            read_only: options.read_only,
            map_guard: RwLock::new(()),
        })
    }

    /// The named databases of a read-only open (`None`: not our store).
    fn open_databases(env: &Env<WithoutTls>) -> Result<Option<Dbs>, heed::Error> {
        let rtxn = env.read_txn()?;
        let dbs = env
            .open_databases_and_commit(rtxn, |dbo, rtxn| -> Result<_, heed::Error> {
                Ok(CommitOrAbort::<_, ()>::Commit(databases!(dbo, rtxn, open)))
            })?
            .unwrap_commit();
        Ok(match dbs {
            (Some(e), Some(m), Some(i), Some(j), c, sp, st) => Some((e, m, i, j, c, sp, st)),
            _ => None,
        })
    }

    /// The named databases of a writable open, created when missing.
    fn create_databases(env: &Env<WithoutTls>) -> Result<Dbs, heed::Error> {
        let wtxn = env.write_txn()?;
        Ok(env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> Result<_, heed::Error> {
                let (e, m, i, j, c, sp, st) = databases!(dbo, wtxn, create);
                Ok(CommitOrAbort::<_, ()>::Commit((
                    e,
                    m,
                    i,
                    j,
                    Some(c),
                    Some(sp),
                    Some(st),
                )))
            })?
            .unwrap_commit())
    }

    fn lmdb(&self, source: heed::Error) -> StoreError {
        StoreError::Lmdb {
            path: self.path.clone(),
            source,
        }
    }

    fn guard(&self) -> ReadGuard<'_, ()> {
        self.map_guard.read()
    }

    /// Run `f` on a read transaction (one consistent snapshot).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&StoreRead<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut adopted = false;
        loop {
            let _g = self.guard();
            let txn = match self.env.read_txn() {
                Ok(t) => t,
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) if !adopted => {
                    drop(_g);
                    self.adopt_map_size()?;
                    adopted = true;
                    continue;
                }
                Err(e) => return Err(self.lmdb(e)),
            };
            return f(&StoreRead {
                store: self,
                txn: &txn,
            });
        }
    }

    /// Another process grew the map beyond ours: adopt its size (no
    /// transaction of this process may be open meanwhile).
    fn adopt_map_size(&self) -> Result<(), StoreError> {
        let _g = self.map_guard.write();
        // SAFETY: the exclusive guard is held, so no transaction of this
        // process is open; size 0 tells LMDB to adopt the file's map size.
        unsafe { self.env.resize(0) }.map_err(|e| self.lmdb(e))
    }

    /// Run `f` in one write transaction and commit. When the map is full the
    /// transaction is aborted, the map doubled and `f` run again, so `f`
    /// must only act through the transaction.
    pub fn write<T>(
        &self,
        mut f: impl FnMut(&mut StoreTxn<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if self.read_only {
            return Err(StoreError::ReadOnly);
        }
        loop {
            let attempt = {
                let _g = self.guard();
                let mut txn = self.env.write_txn().map_err(|e| self.lmdb(e))?;
                let mut w = StoreTxn {
                    store: self,
                    txn: &mut txn,
                    simprint_ops: simprints::PendingOps::default(),
                };
                let result = f(&mut w).and_then(|v| w.apply_simprint_ops().map(|()| v));
                drop(w);
                match result {
                    Ok(v) => txn.commit().map(|()| v).map_err(|e| self.lmdb(e)),
                    Err(e) => Err(e),
                }
            };
            match attempt {
                Err(StoreError::Lmdb {
                    source: heed::Error::Mdb(heed::MdbError::MapFull),
                    ..
                }) => self.grow()?,
                Err(StoreError::Lmdb {
                    source: heed::Error::Mdb(heed::MdbError::MapResized),
                    ..
                }) => self.adopt_map_size()?,
                other => return other,
            }
        }
    }

    /// Double the map (no transaction may be open: the exclusive guard
    /// waits for all of them).
    fn grow(&self) -> Result<(), StoreError> {
        let _g = self.map_guard.write();
        let size = self.env.info().map_size;
        // SAFETY: the exclusive guard is held, so no transaction of this
        // process is open (every transaction holds the shared guard).
        unsafe { self.env.resize(page_round(size.saturating_mul(2))) }.map_err(|e| self.lmdb(e))
    }

    /// Current map size in bytes.
    #[cfg(test)]
    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// Bytes of the data file.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::metadata(self.path.join("data.mdb")).map_or(0, |m| m.len())
    }

    /// A typed metadata value.
    pub fn meta<T: DeserializeOwned>(&self, key: MetaKey<T>) -> Result<Option<T>, StoreError> {
        self.read(|r| r.meta(key))
    }

    /// A metadata value under a free-form key (user metadata).
    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.read(|r| r.get_meta(key))
    }

    /// Set a metadata value under a free-form key (its own transaction).
    pub fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.write(|w| w.put_meta(key, value))
    }

    /// The stored JSON of an entry.
    pub fn get_entry(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|r| r.get_entry(id))
    }

    /// Number of entries.
    // No caller asks only whether the store is empty (the engine counts).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Result<u64, StoreError> {
        self.read(|r| r.len())
    }

    /// Up to `limit` entries with ids ≥ `from`, in id order.
    pub fn entries_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|r| r.entries_from(from, limit))
    }

    /// The largest entry id.
    pub fn last_id(&self) -> Result<Option<u64>, StoreError> {
        self.read(|r| {
            Ok(self
                .entries
                .last(r.txn)
                .map_err(|e| self.lmdb(e))?
                .map(|(k, _)| k))
        })
    }

    /// Journal records (sequence, ISCC-ID) in order.
    #[cfg(test)]
    pub fn journal(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        self.read(|r| r.journal())
    }

    /// The sequence number of the newest change (the last journal record,
    /// or the floor when the journal is empty).
    pub fn journal_last(&self) -> Result<u64, StoreError> {
        self.read(|r| r.journal_last())
    }

    /// Number of journal records.
    pub fn journal_len(&self) -> Result<u64, StoreError> {
        self.read(|r| self.journal.len(r.txn).map_err(|e| self.lmdb(e)))
    }

    /// Delete journal records up to and including `seq` and raise the
    /// floor to `seq` (one transaction).
    pub fn trim_journal(&self, seq: u64) -> Result<usize, StoreError> {
        self.write(|w| w.trim_journal(seq))
    }

    /// True when at least one INSTANCE row is stored.
    pub fn has_instances(&self) -> Result<bool, StoreError> {
        self.read(|r| {
            Ok(self
                .instance
                .first(r.txn)
                .map_err(|e| self.lmdb(e))?
                .is_some())
        })
    }

    /// Every stored INSTANCE match of `body`: stored bodies that start with
    /// it (same or longer) and stored bodies it starts with (shorter), as
    /// (ISCC-ID, stored body).
    pub fn instance_matches(&self, body: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|r| r.instance_matches(body))
    }
}

#[cfg(test)]
mod tests;
