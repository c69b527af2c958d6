//! What a read snapshot ([`StoreRead`]) and a write transaction
//! ([`StoreTxn`]) can do. Reads that need one consistent view of several
//! databases (the journal, the entries it names and the counts, for
//! instance) run in one [`Store::read`] closure.

use std::collections::BTreeMap;

use heed::RoTxn;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{MetaKey, Store, StoreError, StoreRead, StoreTxn, JOURNAL_FLOOR};

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

/// Reads shared by snapshots and write transactions (a write transaction
/// sees its own changes).
fn get_meta<T: DeserializeOwned>(
    s: &Store,
    txn: &RoTxn<'_>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match s.metadata.get(txn, key).map_err(|e| s.lmdb(e))? {
        Some(bytes) => decode_meta(s, key, bytes).map(Some),
        None => Ok(None),
    }
}

fn get_entry(s: &Store, txn: &RoTxn<'_>, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(s.entries
        .get(txn, &id)
        .map_err(|e| s.lmdb(e))?
        .map(<[u8]>::to_vec))
}

fn entries_from(
    s: &Store,
    txn: &RoTxn<'_>,
    from: u64,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let iter = s.entries.range(txn, &(from..)).map_err(|e| s.lmdb(e))?;
    let mut out = Vec::with_capacity(limit.min(4096));
    for item in iter.take(limit) {
        let (k, v) = item.map_err(|e| s.lmdb(e))?;
        out.push((k, v.to_vec()));
    }
    Ok(out)
}

fn journal_last(s: &Store, txn: &RoTxn<'_>) -> Result<u64, StoreError> {
    match s.journal.last(txn).map_err(|e| s.lmdb(e))? {
        Some((seq, _)) => Ok(seq),
        None => Ok(get_meta(s, txn, JOURNAL_FLOOR.name())?.unwrap_or(0)),
    }
}

impl StoreRead<'_> {
    /// A typed metadata value.
    pub fn meta<T: DeserializeOwned>(&self, key: MetaKey<T>) -> Result<Option<T>, StoreError> {
        get_meta(self.store, self.txn, key.name())
    }

    /// A metadata value under a free-form key.
    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        get_meta(self.store, self.txn, key)
    }

    /// The stored JSON of an entry.
    pub fn get_entry(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        get_entry(self.store, self.txn, id)
    }

    /// Number of entries.
    // No caller asks only whether the store is empty (the engine counts).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Result<u64, StoreError> {
        let s = self.store;
        s.entries.len(self.txn).map_err(|e| s.lmdb(e))
    }

    /// Up to `limit` entries with ids ≥ `from`, in id order.
    pub fn entries_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        entries_from(self.store, self.txn, from, limit)
    }

    /// Journal records (sequence, ISCC-ID) in order.
    pub fn journal(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let s = self.store;
        let mut out = Vec::new();
        for item in s.journal.iter(self.txn).map_err(|e| s.lmdb(e))? {
            out.push(item.map_err(|e| s.lmdb(e))?);
        }
        Ok(out)
    }

    /// The sequence number of the newest change.
    pub fn journal_last(&self) -> Result<u64, StoreError> {
        journal_last(self.store, self.txn)
    }

    /// Journal records with a sequence number above `seq`, in order.
    pub fn journal_after(&self, seq: u64) -> Result<Vec<(u64, u64)>, StoreError> {
        let s = self.store;
        let mut out = Vec::new();
        let from = seq.saturating_add(1);
        for item in s
            .journal
            .range(self.txn, &(from..))
            .map_err(|e| s.lmdb(e))?
        {
            out.push(item.map_err(|e| s.lmdb(e))?);
        }
        Ok(out)
    }

    /// The journal floor (see [`JOURNAL_FLOOR`]; 0 when never trimmed).
    pub fn journal_floor(&self) -> Result<u64, StoreError> {
        Ok(self.meta(JOURNAL_FLOOR)?.unwrap_or(0))
    }

    /// Entries per unit type name, or `None` for a store written before
    /// counts were kept.
    pub fn counts(&self) -> Result<Option<BTreeMap<String, u64>>, StoreError> {
        let s = self.store;
        let Some(db) = s.counts else {
            return Ok(None);
        };
        let mut out = BTreeMap::new();
        for item in db.iter(self.txn).map_err(|e| s.lmdb(e))? {
            let (k, v) = item.map_err(|e| s.lmdb(e))?;
            out.insert(k.to_string(), v);
        }
        Ok(Some(out))
    }

    /// Every stored INSTANCE match of `body` (see
    /// [`Store::instance_matches`]).
    pub fn instance_matches(&self, body: &[u8]) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let s = self.store;
        let mut out = Vec::new();
        let iter = s
            .instance
            .prefix_iter(self.txn, body)
            .map_err(|e| s.lmdb(e))?;
        for item in iter {
            let (k, id) = item.map_err(|e| s.lmdb(e))?;
            out.push((id, k.to_vec()));
        }
        for len in (8..body.len()).step_by(8) {
            let short = &body[..len];
            if let Some(dups) = s
                .instance
                .get_duplicates(self.txn, short)
                .map_err(|e| s.lmdb(e))?
            {
                for item in dups {
                    let (k, id) = item.map_err(|e| s.lmdb(e))?;
                    out.push((id, k.to_vec()));
                }
            }
        }
        Ok(out)
    }
}

impl StoreTxn<'_, '_> {
    /// A typed metadata value, as this transaction sees it.
    pub fn meta<T: DeserializeOwned>(&self, key: MetaKey<T>) -> Result<Option<T>, StoreError> {
        get_meta(self.store, self.txn, key.name())
    }

    /// Set a typed metadata value.
    pub fn set_meta<T: Serialize>(&mut self, key: MetaKey<T>, value: &T) -> Result<(), StoreError> {
        self.put_meta(key.name(), value)
    }

    /// Delete a typed metadata value.
    pub fn delete_meta<T>(&mut self, key: MetaKey<T>) -> Result<bool, StoreError> {
        let s = self.store;
        s.metadata
            .delete(self.txn, key.name())
            .map_err(|e| s.lmdb(e))
    }

    /// Set a metadata value under a free-form key.
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
        get_entry(self.store, self.txn, id)
    }

    /// Up to `limit` entries with ids ≥ `from`, as this transaction sees
    /// them.
    pub fn entries_from(&self, from: u64, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        entries_from(self.store, self.txn, from, limit)
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
    /// returns its sequence number (above every earlier one, trimmed or
    /// not).
    pub fn journal(&mut self, id: u64) -> Result<u64, StoreError> {
        let s = self.store;
        let next = journal_last(s, self.txn)? + 1;
        s.journal.put(self.txn, &next, &id).map_err(|e| s.lmdb(e))?;
        Ok(next)
    }

    /// Delete journal records up to and including `seq`; the floor rises to
    /// `seq`. Returns the number of records deleted.
    pub fn trim_journal(&mut self, seq: u64) -> Result<usize, StoreError> {
        let s = self.store;
        let n = s
            .journal
            .delete_range(self.txn, &(..=seq))
            .map_err(|e| s.lmdb(e))?;
        let floor: u64 = self.meta(JOURNAL_FLOOR)?.unwrap_or(0);
        if seq > floor {
            self.set_meta(JOURNAL_FLOOR, &seq)?;
        }
        Ok(n)
    }

    fn counts_db(
        &self,
    ) -> Result<heed::Database<'static, heed::types::Str, super::BeU64>, StoreError> {
        self.store.counts.ok_or(StoreError::ReadOnly)
    }

    /// Change the entry count of a unit type by `delta` (never below 0:
    /// a count that would go negative is a damaged store).
    pub fn add_count(&mut self, unit_type: &str, delta: i64) -> Result<(), StoreError> {
        let s = self.store;
        let db = self.counts_db()?;
        let old = db.get(self.txn, unit_type).map_err(|e| s.lmdb(e))?;
        let new = old.unwrap_or(0) as i64 + delta;
        if new < 0 {
            return Err(StoreError::Corrupt {
                path: s.path.clone(),
                why: format!("count of {unit_type} would fall below zero"),
            });
        }
        if new == 0 {
            db.delete(self.txn, unit_type).map_err(|e| s.lmdb(e))?;
            Ok(())
        } else {
            db.put(self.txn, unit_type, &(new as u64))
                .map_err(|e| s.lmdb(e))
        }
    }

    /// Replace every count (after a full recount).
    pub fn set_counts(&mut self, counts: &BTreeMap<String, u64>) -> Result<(), StoreError> {
        let s = self.store;
        let db = self.counts_db()?;
        db.clear(self.txn).map_err(|e| s.lmdb(e))?;
        for (k, v) in counts.iter().filter(|(_, v)| **v > 0) {
            db.put(self.txn, k, v).map_err(|e| s.lmdb(e))?;
        }
        Ok(())
    }
}
