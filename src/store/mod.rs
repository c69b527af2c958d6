//! The primary store: one LMDB environment (via heed) holding the source of
//! truth of an ISCC index. Every other index is derived from it.
//!
//! Named databases:
//!
//! | name | key → value | |
//! |---|---|---|
//! | `entries` | ISCC-ID (u64, big-endian) → entry JSON | big-endian keys sort numerically, so iteration is in ID (time) order |
//! | `metadata` | UTF-8 key → JSON value | realm, max_dim, format version, user keys |
//! | `instance` | INSTANCE body → ISCC-ID (dupsort) | exact and prefix matches at 64–256 bits |
//! | `journal` | sequence (u64, big-endian) → ISCC-ID | changes not yet saved into every unit index |
//!
//! Writes go through [`Store::write`], which runs a closure in one write
//! transaction and, when LMDB reports a full map, aborts, doubles the map
//! and runs the closure again — a caller never sees `MDB_MAP_FULL`. The map
//! can only be resized while no transaction is open, so every transaction
//! holds a shared guard that the resize takes exclusively.

use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use heed::byteorder::BE;
use heed::types::{Bytes, Str, U64};
use heed::{
    CommitOrAbort, Database, DatabaseFlags, Env, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Errors of the primary store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An LMDB error.
    #[error("LMDB error in {path}: {source}")]
    Lmdb { path: PathBuf, source: heed::Error },
    /// A file or directory could not be created or read.
    #[error("I/O error on {path}: {source}")]
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
}

fn page_round(n: usize) -> usize {
    n.next_multiple_of(4096 * 16)
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
            .max_dbs(8)
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
        let (entries, metadata, instance, journal) = if options.read_only {
            let rtxn = env.read_txn().map_err(lmdb)?;
            let dbs = env
                .open_databases_and_commit(rtxn, |dbo, rtxn| -> Result<_, heed::Error> {
                    let e = dbo.open_database::<BeU64, Bytes>(rtxn, Some("entries"))?;
                    let m = dbo.open_database::<Str, Bytes>(rtxn, Some("metadata"))?;
                    let i = dbo
                        .database_options()
                        .types::<Bytes, BeU64>()
                        .name("instance")
                        .flags(DatabaseFlags::DUP_SORT)
                        .open(rtxn)?;
                    let j = dbo.open_database::<BeU64, BeU64>(rtxn, Some("journal"))?;
                    Ok(CommitOrAbort::<_, ()>::Commit((e, m, i, j)))
                })
                .map_err(lmdb)?
                .unwrap_commit();
            match dbs {
                (Some(e), Some(m), Some(i), Some(j)) => (e, m, i, j),
                _ => {
                    return Err(StoreError::Corrupt {
                        path,
                        why: "not an iscc-vdb store (named databases missing)".into(),
                    })
                }
            }
        } else {
            let wtxn = env.write_txn().map_err(lmdb)?;
            env.create_databases_and_commit(wtxn, |dbo, wtxn| -> Result<_, heed::Error> {
                let e = dbo.create_database::<BeU64, Bytes>(wtxn, Some("entries"))?;
                let m = dbo.create_database::<Str, Bytes>(wtxn, Some("metadata"))?;
                let i = dbo
                    .database_options()
                    .types::<Bytes, BeU64>()
                    .name("instance")
                    .flags(DatabaseFlags::DUP_SORT)
                    .create(wtxn)?;
                let j = dbo.create_database::<BeU64, BeU64>(wtxn, Some("journal"))?;
                Ok(CommitOrAbort::<_, ()>::Commit((e, m, i, j)))
            })
            .map_err(lmdb)?
            .unwrap_commit()
        };
        Ok(Store {
            env,
            path,
            entries,
            metadata,
            instance,
            journal,
            read_only: options.read_only,
            map_guard: RwLock::new(()),
        })
    }

    /// The environment directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lmdb(&self, source: heed::Error) -> StoreError {
        StoreError::Lmdb {
            path: self.path.clone(),
            source,
        }
    }

    fn guard(&self) -> RwLockReadGuard<'_, ()> {
        self.map_guard.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on a read transaction.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&StoreRead<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _g = self.guard();
        let txn = self.env.read_txn().map_err(|e| self.lmdb(e))?;
        f(&StoreRead {
            store: self,
            txn: &txn,
        })
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
                let result = f(&mut StoreTxn {
                    store: self,
                    txn: &mut txn,
                });
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
                other => return other,
            }
        }
    }

    /// Double the map (no transaction may be open: the exclusive guard
    /// waits for all of them).
    fn grow(&self) -> Result<(), StoreError> {
        let _g = self.map_guard.write().unwrap_or_else(|p| p.into_inner());
        let size = self.env.info().map_size;
        // SAFETY: the exclusive guard is held, so no transaction of this
        // process is open (every transaction holds the shared guard).
        unsafe { self.env.resize(page_round(size.saturating_mul(2))) }.map_err(|e| self.lmdb(e))
    }

    /// Current map size in bytes.
    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// Bytes of the data file.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::metadata(self.path.join("data.mdb")).map_or(0, |m| m.len())
    }

    /// Write a compacted copy of the environment into `dir`.
    pub fn copy_to(&self, dir: &Path) -> Result<(), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let _g = self.guard();
        self.env
            .copy_to_path(dir.join("data.mdb"), heed::CompactionOption::Enabled)
            .map_err(|e| self.lmdb(e))?;
        Ok(())
    }

    /// A metadata value.
    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.read(|r| r.get_meta(key))
    }

    /// Set a metadata value (its own transaction).
    pub fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), StoreError> {
        self.write(|w| w.put_meta(key, value))
    }

    /// The stored JSON of an entry.
    pub fn get_entry(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|r| r.get_entry(id))
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64, StoreError> {
        self.read(|r| self.entries.len(r.txn).map_err(|e| self.lmdb(e)))
    }

    /// True when there is no entry.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// Up to `limit` entries with ids ≥ `from`, in id order.
    pub fn entries_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.read(|r| {
            let iter = self
                .entries
                .range(r.txn, &(from..))
                .map_err(|e| self.lmdb(e))?;
            let mut out = Vec::with_capacity(limit.min(4096));
            for item in iter.take(limit) {
                let (k, v) = item.map_err(|e| self.lmdb(e))?;
                out.push((k, v.to_vec()));
            }
            Ok(out)
        })
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
    pub fn journal(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        self.read(|r| {
            let mut out = Vec::new();
            for item in self.journal.iter(r.txn).map_err(|e| self.lmdb(e))? {
                out.push(item.map_err(|e| self.lmdb(e))?);
            }
            Ok(out)
        })
    }

    /// The sequence number of the last journal record.
    pub fn journal_last(&self) -> Result<Option<u64>, StoreError> {
        self.read(|r| {
            Ok(self
                .journal
                .last(r.txn)
                .map_err(|e| self.lmdb(e))?
                .map(|(seq, _)| seq))
        })
    }

    /// Number of journal records.
    pub fn journal_len(&self) -> Result<u64, StoreError> {
        self.read(|r| self.journal.len(r.txn).map_err(|e| self.lmdb(e)))
    }

    /// Delete journal records up to and including `seq`.
    pub fn trim_journal(&self, seq: u64) -> Result<usize, StoreError> {
        self.write(|w| {
            w.store
                .journal
                .delete_range(w.txn, &(..=seq))
                .map_err(|e| w.store.lmdb(e))
        })
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
        self.read(|r| {
            let mut out = Vec::new();
            let iter = self
                .instance
                .prefix_iter(r.txn, body)
                .map_err(|e| self.lmdb(e))?;
            for item in iter {
                let (k, id) = item.map_err(|e| self.lmdb(e))?;
                out.push((id, k.to_vec()));
            }
            for len in (8..body.len()).step_by(8) {
                let short = &body[..len];
                if let Some(dups) = self
                    .instance
                    .get_duplicates(r.txn, short)
                    .map_err(|e| self.lmdb(e))?
                {
                    for item in dups {
                        let (k, id) = item.map_err(|e| self.lmdb(e))?;
                        out.push((id, k.to_vec()));
                    }
                }
            }
            Ok(out)
        })
    }
}

/// A read transaction of the store.
pub struct StoreRead<'s> {
    store: &'s Store,
    txn: &'s RoTxn<'s, WithoutTls>,
}

fn decode_meta<T: DeserializeOwned>(
    store: &Store,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        path: store.path.clone(),
        why: format!("metadata {key:?}: {e}"),
    })
}

impl StoreRead<'_> {
    /// A metadata value.
    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let s = self.store;
        match s.metadata.get(self.txn, key).map_err(|e| s.lmdb(e))? {
            Some(bytes) => decode_meta(s, key, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// The stored JSON of an entry.
    pub fn get_entry(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let s = self.store;
        Ok(s.entries
            .get(self.txn, &id)
            .map_err(|e| s.lmdb(e))?
            .map(<[u8]>::to_vec))
    }
}

impl StoreTxn<'_, '_> {
    /// A metadata value, as this transaction sees it.
    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let s = self.store;
        match s.metadata.get(self.txn, key).map_err(|e| s.lmdb(e))? {
            Some(bytes) => decode_meta(s, key, bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Set a metadata value.
    pub fn put_meta<T: Serialize>(&mut self, key: &str, value: &T) -> Result<(), StoreError> {
        let s = self.store;
        let bytes = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt {
            path: s.path.clone(),
            why: e.to_string(),
        })?;
        s.metadata.put(self.txn, key, &bytes).map_err(|e| s.lmdb(e))
    }

    /// The stored JSON of an entry, as this transaction sees it.
    pub fn get_entry(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        let s = self.store;
        Ok(s.entries
            .get(self.txn, &id)
            .map_err(|e| s.lmdb(e))?
            .map(<[u8]>::to_vec))
    }

    /// Store an entry.
    pub fn put_entry(&mut self, id: u64, json: &[u8]) -> Result<(), StoreError> {
        let s = self.store;
        s.entries.put(self.txn, &id, json).map_err(|e| s.lmdb(e))
    }

    /// Delete an entry; false when absent.
    pub fn delete_entry(&mut self, id: u64) -> Result<bool, StoreError> {
        let s = self.store;
        s.entries.delete(self.txn, &id).map_err(|e| s.lmdb(e))
    }

    /// Delete every entry, instance row and journal record.
    pub fn clear_all(&mut self) -> Result<(), StoreError> {
        let s = self.store;
        s.entries.clear(self.txn).map_err(|e| s.lmdb(e))?;
        s.instance.clear(self.txn).map_err(|e| s.lmdb(e))?;
        s.journal.clear(self.txn).map_err(|e| s.lmdb(e))
    }

    /// Delete every INSTANCE row.
    pub fn clear_instances(&mut self) -> Result<(), StoreError> {
        let s = self.store;
        s.instance.clear(self.txn).map_err(|e| s.lmdb(e))
    }

    /// Index an INSTANCE body under an ISCC-ID.
    pub fn add_instance(&mut self, body: &[u8], id: u64) -> Result<(), StoreError> {
        let s = self.store;
        s.instance.put(self.txn, body, &id).map_err(|e| s.lmdb(e))
    }

    /// Remove one INSTANCE row.
    pub fn remove_instance(&mut self, body: &[u8], id: u64) -> Result<bool, StoreError> {
        let s = self.store;
        s.instance
            .delete_one_duplicate(self.txn, body, &id)
            .map_err(|e| s.lmdb(e))
    }

    /// Append a journal record for an ISCC-ID whose derived rows changed;
    /// returns its sequence number.
    pub fn journal(&mut self, id: u64) -> Result<u64, StoreError> {
        let s = self.store;
        let next = s
            .journal
            .last(self.txn)
            .map_err(|e| s.lmdb(e))?
            .map_or(1, |(seq, _)| seq + 1);
        s.journal.put(self.txn, &next, &id).map_err(|e| s.lmdb(e))?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(dir: &Path) -> Store {
        Store::open(
            dir,
            StoreOptions {
                durable: false,
                map_size: 1 << 20,
                ..StoreOptions::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn entries_meta_and_journal() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        s.write(|w| {
            w.put_entry(5, b"{\"a\":1}")?;
            w.put_entry(u64::MAX, b"{}")?;
            w.put_entry(1 << 40, b"{}")?;
            w.put_meta("realm_id", &1)?;
            w.journal(5)?;
            w.journal(7)
        })
        .unwrap();
        assert_eq!(s.get_entry(5).unwrap().unwrap(), b"{\"a\":1}");
        assert_eq!(s.get_meta::<u8>("realm_id").unwrap(), Some(1));
        let ids: Vec<u64> = s
            .entries_from(0, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(ids, vec![5, 1 << 40, u64::MAX], "numeric order");
        assert_eq!(s.last_id().unwrap(), Some(u64::MAX));
        assert_eq!(s.journal().unwrap(), vec![(1, 5), (2, 7)]);
        s.trim_journal(1).unwrap();
        assert_eq!(s.journal().unwrap(), vec![(2, 7)]);
        assert_eq!(
            (s.journal_last().unwrap(), s.journal_len().unwrap()),
            (Some(2), 1)
        );
        assert_eq!(s.len().unwrap(), 3);
    }

    #[test]
    fn instance_prefix_matches_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let long: Vec<u8> = (0..32).collect();
        s.write(|w| {
            w.add_instance(&long, 1)?;
            w.add_instance(&long[..8], 2)?;
            w.add_instance(&long[..16], 3)?;
            w.add_instance(&[9u8; 8], 4)?;
            w.add_instance(&long, 5)
        })
        .unwrap();
        let ids = |q: &[u8]| {
            let mut v: Vec<u64> = s
                .instance_matches(q)
                .unwrap()
                .into_iter()
                .map(|m| m.0)
                .collect();
            v.sort();
            v
        };
        assert_eq!(ids(&long[..8]), vec![1, 2, 3, 5]);
        assert_eq!(ids(&long[..24]), vec![1, 2, 3, 5]);
        assert_eq!(ids(&long), vec![1, 2, 3, 5]);
        let mut other = long.clone();
        other[12] ^= 1;
        assert_eq!(ids(&other), vec![2], "only the 64-bit prefix is shared");
        s.write(|w| w.remove_instance(&long, 1)).unwrap();
        assert_eq!(ids(&long), vec![2, 3, 5]);
    }

    #[test]
    fn the_map_grows_when_full() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(dir.path());
        let before = s.map_size();
        let blob = vec![7u8; 100_000];
        for i in 0..100u64 {
            s.write(|w| w.put_entry(i, &blob)).unwrap();
        }
        assert!(s.map_size() > before);
        assert_eq!(s.len().unwrap(), 100);
        // One transaction larger than the whole map also succeeds.
        s.write(|w| {
            for i in 100..200u64 {
                w.put_entry(i, &blob)?;
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(s.len().unwrap(), 200);
    }

    #[test]
    fn read_only_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()));
        let ro = Store::open(
            dir.path(),
            StoreOptions {
                read_only: true,
                ..StoreOptions::default()
            },
        )
        .unwrap();
        assert!(matches!(ro.put_meta("x", &1), Err(StoreError::ReadOnly)));
        assert!(Store::open(
            dir.path().join("missing"),
            StoreOptions {
                read_only: true,
                ..StoreOptions::default()
            }
        )
        .is_err());
    }
}
