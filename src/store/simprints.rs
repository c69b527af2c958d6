//! The store's simprint rows: every chunk of every entry's granular
//! features under its simprint, kept in the entries' own transactions.
//!
//! * `simprints` (dupsort): key = the type name (`SEMANTIC-TEXT-V0`), a 0
//!   byte, the simprint's bytes; values = ISCC-ID (u64 BE) and chunk number
//!   (u32 BE), sorted, so one key lists every chunk with exactly that
//!   simprint — exact collisions — and its distinct ISCC-IDs are the
//!   simprint's document frequency.
//! * `simprint_types`: type name → bits, entries and chunks (3 × u64 BE):
//!   the one bit length of the type's simprints (fixed by its first entry)
//!   and how many entries and chunks have it, for IDF and for checks.
//!
//! A batch's chunk rows land at random places of the `simprints` tree (a
//! simprint is a hash), so putting them as entries come made every put a
//! walk from the root through cold pages. A transaction instead collects
//! its row changes and applies them sorted by key just before it commits
//! ([`StoreTxn::apply_simprint_ops`]): neighbouring puts share the pages of
//! their path. The sort is stable, so changes of one row keep their order
//! and the result is that of applying them as they came; nothing reads the
//! rows inside a write transaction before they are applied.

use std::collections::BTreeMap;

use heed::RoTxn;

use super::{Store, StoreError, StoreRead, StoreTxn};

/// What the store holds of one simprint type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SimprintTypeRow {
    /// Bits per simprint.
    pub(crate) bits: u64,
    /// Entries with simprints of the type.
    pub(crate) entries: u64,
    /// Chunks (simprints) of the type over all entries.
    pub(crate) chunks: u64,
}

impl SimprintTypeRow {
    fn encode(&self) -> [u8; 24] {
        let mut out = [0u8; 24];
        out[..8].copy_from_slice(&self.bits.to_be_bytes());
        out[8..16].copy_from_slice(&self.entries.to_be_bytes());
        out[16..].copy_from_slice(&self.chunks.to_be_bytes());
        out
    }

    fn decode(s: &Store, kind: &str, bytes: &[u8]) -> Result<SimprintTypeRow, StoreError> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                bytes.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        match (bytes.len(), word(0), word(1), word(2)) {
            (24, Some(bits), Some(entries), Some(chunks)) => Ok(SimprintTypeRow {
                bits,
                entries,
                chunks,
            }),
            _ => Err(StoreError::Corrupt {
                path: s.path.clone(),
                why: format!("simprint type {kind:?}: a row of {} bytes", bytes.len()),
            }),
        }
    }
}

/// The two databases, as `Store` declares them.
type RowsDb = heed::Database<'static, heed::types::Bytes, heed::types::Bytes>;
type TypesDb = heed::Database<'static, heed::types::Str, heed::types::Bytes>;

fn key(kind: &str, simprint: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(kind.len() + 1 + simprint.len());
    k.extend_from_slice(kind.as_bytes());
    k.push(0);
    k.extend_from_slice(simprint);
    k
}

fn value(id: u64, chunk: u32) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(&id.to_be_bytes());
    v[8..].copy_from_slice(&chunk.to_be_bytes());
    v
}

/// A chunk's row: key (type, 0, simprint) and value (ISCC-ID, chunk).
type ChunkRow = (Vec<u8>, [u8; 12]);

/// Row changes a write transaction has yet to apply: a row and whether it
/// is put (else deleted).
#[derive(Debug, Default)]
pub(crate) struct PendingOps(Vec<(ChunkRow, bool)>);

/// The row of each chunk of one entry's simprints.
fn chunk_rows(
    s: &Store,
    kind: &str,
    id: u64,
    simprints: &[Vec<u8>],
) -> Result<Vec<ChunkRow>, StoreError> {
    simprints
        .iter()
        .enumerate()
        .map(|(chunk, sp)| {
            let chunk = u32::try_from(chunk).map_err(|_| StoreError::Corrupt {
                path: s.path.clone(),
                why: format!("more than {} chunks in one entry", u32::MAX),
            })?;
            Ok((key(kind, sp), value(id, chunk)))
        })
        .collect()
}

fn decode_value(s: &Store, v: &[u8]) -> Result<(u64, u32), StoreError> {
    let bad = || StoreError::Corrupt {
        path: s.path.clone(),
        why: format!("a simprint row value of {} bytes (expected 12)", v.len()),
    };
    let id = v.get(..8).and_then(|b| b.try_into().ok()).ok_or_else(bad)?;
    let chunk = v
        .get(8..12)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(bad)?;
    if v.len() != 12 {
        return Err(bad());
    }
    Ok((u64::from_be_bytes(id), u32::from_be_bytes(chunk)))
}

fn matches(
    s: &Store,
    txn: &RoTxn<'_>,
    kind: &str,
    simprint: &[u8],
) -> Result<Vec<(u64, u32)>, StoreError> {
    let Some(db) = s.simprints else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if let Some(dups) = db
        .get_duplicates(txn, &key(kind, simprint))
        .map_err(|e| s.lmdb(e))?
    {
        for item in dups {
            let (_, v) = item.map_err(|e| s.lmdb(e))?;
            out.push(decode_value(s, v)?);
        }
    }
    Ok(out)
}

fn types(s: &Store, txn: &RoTxn<'_>) -> Result<BTreeMap<String, SimprintTypeRow>, StoreError> {
    let Some(db) = s.simprint_types else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for item in db.iter(txn).map_err(|e| s.lmdb(e))? {
        let (k, v) = item.map_err(|e| s.lmdb(e))?;
        out.insert(k.to_string(), SimprintTypeRow::decode(s, k, v)?);
    }
    Ok(out)
}

impl StoreRead<'_> {
    /// Every chunk (ISCC-ID, chunk number) whose simprint of type `kind`
    /// is exactly `simprint`, ordered by ISCC-ID then chunk.
    pub fn simprint_matches(
        &self,
        kind: &str,
        simprint: &[u8],
    ) -> Result<Vec<(u64, u32)>, StoreError> {
        matches(self.store, self.txn, kind, simprint)
    }

    /// Every simprint type the store holds.
    pub(crate) fn simprint_types(&self) -> Result<BTreeMap<String, SimprintTypeRow>, StoreError> {
        types(self.store, self.txn)
    }
}

impl StoreTxn<'_, '_> {
    fn simprint_dbs(&self) -> Result<(RowsDb, TypesDb), StoreError> {
        match (self.store.simprints, self.store.simprint_types) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(StoreError::ReadOnly),
        }
    }

    /// Index the chunks of one entry's simprints of type `kind` (`bits`
    /// each; chunk number = position) and count the entry and its chunks.
    pub fn add_simprints(
        &mut self,
        kind: &str,
        bits: u64,
        id: u64,
        simprints: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let s = self.store;
        let (_, kinds) = self.simprint_dbs()?;
        for row in chunk_rows(s, kind, id, simprints)? {
            self.simprint_ops.0.push((row, true));
        }
        let old = match kinds.get(self.txn, kind).map_err(|e| s.lmdb(e))? {
            Some(b) => SimprintTypeRow::decode(s, kind, b)?,
            None => SimprintTypeRow {
                bits,
                ..SimprintTypeRow::default()
            },
        };
        let row = SimprintTypeRow {
            bits: old.bits,
            entries: old.entries + 1,
            chunks: old.chunks + simprints.len() as u64,
        };
        kinds
            .put(self.txn, kind, &row.encode())
            .map_err(|e| s.lmdb(e))
    }

    /// Drop the chunks [`StoreTxn::add_simprints`] indexed for one entry
    /// (the same simprints) and uncount them; the type keeps its bit
    /// length while any entry has it.
    pub fn remove_simprints(
        &mut self,
        kind: &str,
        id: u64,
        simprints: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let s = self.store;
        let (_, kinds) = self.simprint_dbs()?;
        for row in chunk_rows(s, kind, id, simprints)? {
            self.simprint_ops.0.push((row, false));
        }
        let Some(bytes) = kinds.get(self.txn, kind).map_err(|e| s.lmdb(e))? else {
            return Err(StoreError::Corrupt {
                path: s.path.clone(),
                why: format!("simprints of type {kind} removed, but the type is not counted"),
            });
        };
        let old = SimprintTypeRow::decode(s, kind, bytes)?;
        let (Some(entries), Some(chunks)) = (
            old.entries.checked_sub(1),
            old.chunks.checked_sub(simprints.len() as u64),
        ) else {
            return Err(StoreError::Corrupt {
                path: s.path.clone(),
                why: format!("count of simprint type {kind} would fall below zero"),
            });
        };
        if entries == 0 {
            kinds.delete(self.txn, kind).map_err(|e| s.lmdb(e))?;
            return Ok(());
        }
        let row = SimprintTypeRow {
            entries,
            chunks,
            ..old
        };
        kinds
            .put(self.txn, kind, &row.encode())
            .map_err(|e| s.lmdb(e))
    }

    /// Delete every simprint row and type (before refilling them from the
    /// entries).
    pub fn clear_simprints(&mut self) -> Result<(), StoreError> {
        let s = self.store;
        let (rows, kinds) = self.simprint_dbs()?;
        // Changes not yet applied would be cleared with the rest.
        self.simprint_ops.0.clear();
        rows.clear(self.txn).map_err(|e| s.lmdb(e))?;
        kinds.clear(self.txn).map_err(|e| s.lmdb(e))
    }
}

impl StoreTxn<'_, '_> {
    /// Apply the transaction's pending simprint row changes in key order
    /// (see the module docs); [`super::Store::write`] calls it before
    /// every commit.
    pub(super) fn apply_simprint_ops(&mut self) -> Result<(), StoreError> {
        if self.simprint_ops.0.is_empty() {
            return Ok(());
        }
        let s = self.store;
        let (rows, _) = self.simprint_dbs()?;
        let mut ops = std::mem::take(&mut self.simprint_ops.0);
        ops.sort_by(|a, b| a.0.cmp(&b.0));
        for ((k, v), put) in ops {
            if put {
                rows.put(self.txn, &k, &v).map_err(|e| s.lmdb(e))?;
            } else {
                rows.delete_one_duplicate(self.txn, &k, &v)
                    .map_err(|e| s.lmdb(e))?;
            }
        }
        Ok(())
    }
}
