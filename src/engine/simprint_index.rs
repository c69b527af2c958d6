//! The derived similarity indexes of granular features: one sharded
//! Hamming index per simprint type, whose rows are the chunks of every
//! entry's simprints of that type, keyed by (ISCC-ID, chunk number).
//!
//! They follow the unit indexes' rules (see the engine's module docs): the
//! store's `simprints` rows, written in the entries' own transactions, are
//! the truth; these indexes are brought in line after each commit, saved
//! tagged with the journal position they reflect, replayed from the journal
//! on open, checked against the store's chunk count of their type, rebuilt
//! crash-atomically into a new directory (`simprint-semantic-text-v0.N`)
//! named by the store's [`meta::SIMPRINT_DIRS`] in the transaction that
//! switches to it, and rebuilt in a scratch directory by a read-only open.
//!
//! A row's key is 16 bytes: the ISCC-ID (u64 BE) then the chunk number
//! (u64 BE), so every chunk of an entry is found from its ISCC-ID alone.
//! An entry's chunks of one type are always rows `0..n`: an update upserts
//! `0..n` and removes the rows from `n` on while there are any, which needs
//! no knowledge of the old version (journal replay has none).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::features::{features_of, FeatureSet, SimprintType};
use super::index_set::{Family, IndexSet};
use super::{io, meta, EngineError, LocalIndex};
use crate::index::{ExactThreshold, ShardedIndex, ShardedOptions, VectorKind};
use crate::store::StoreRead;

/// A simprint type's similarity index.
pub(super) type SimprintIndex = ShardedIndex<[u8; 16]>;

/// The row key of an entry's chunk.
pub(super) fn chunk_key(id: u64, chunk: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// ISCC-ID and chunk number of a row key.
pub(super) fn key_parts(k: [u8; 16]) -> (u64, u64) {
    let v = u128::from_be_bytes(k);
    ((v >> 64) as u64, v as u64)
}

/// The bit length of a simprint index's rows.
fn bits_of(idx: &SimprintIndex) -> usize {
    match idx.options().vectors {
        VectorKind::Hamming { bits } => bits,
        VectorKind::Nphd { max_dim } => max_dim,
    }
}

/// The plain directory name of a type's index (a rebuilt one adds `.N`).
pub(super) fn dir_base(kind: &SimprintType) -> String {
    format!("simprint-{}", kind.to_string().to_ascii_lowercase())
}

/// The directories the store names for simprint indexes.
pub(super) fn recorded_dirs(
    r: &StoreRead<'_>,
) -> Result<BTreeMap<SimprintType, String>, crate::store::StoreError> {
    Ok(r.meta(meta::SIMPRINT_DIRS)?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(t, d)| Some((SimprintType::parse(&t).ok()?, d)))
        .collect())
}

/// How an entry's features changed, for the simprint indexes.
#[derive(Debug, Clone)]
pub(super) struct FeatureChange {
    pub(super) key: u64,
    /// The old version's feature sets; `None` when unknown (a journal
    /// replay): then every open type is checked for rows to drop.
    pub(super) old: Option<Vec<FeatureSet>>,
    /// The new version's feature sets (none for a removal).
    pub(super) new: Vec<FeatureSet>,
}

/// Rows to write and tails to drop, per type, for a batch of changes.
#[derive(Default)]
struct TypeWork {
    bits: u16,
    keys: Vec<[u8; 16]>,
    vectors: Vec<Vec<u8>>,
    /// (ISCC-ID, first chunk number that must not exist).
    tails: Vec<(u64, u64)>,
}

impl LocalIndex {
    /// The index options of a simprint type of `bits` bits: the engine's
    /// shard parameters over plain Hamming distance, searched by scan only.
    ///
    /// A chunk search asks for *every* stored chunk within the threshold
    /// (up to [`CHUNK_CANDIDATES`]), a range no HNSW walk can promise to
    /// return whole; the cost trial that decides graphs for unit indexes
    /// prices a count-1 search and built graphs here during bulk adds
    /// (measured: 15-20 % of add time at 2M simprints) that no chunk
    /// search then used. So no graph is ever built for simprints.
    ///
    /// [`CHUNK_CANDIDATES`]: super::CHUNK_CANDIDATES
    pub(super) fn simprint_options(&self, bits: u16) -> ShardedOptions {
        ShardedOptions {
            vectors: VectorKind::Hamming {
                bits: usize::from(bits),
            },
            exact_threshold: ExactThreshold::Rows(usize::MAX),
            ..Self::sharded_options(&self.params)
        }
    }

    /// Bring the simprint indexes of `set` in line with changed entries.
    /// Types in `skip` are left alone (they are being rebuilt). Idempotent.
    pub(super) fn apply_features(
        &self,
        set: &mut IndexSet,
        changes: &[FeatureChange],
        skip: &BTreeSet<SimprintType>,
    ) -> Result<(), EngineError> {
        let open: Vec<SimprintType> = set.sims.open.keys().cloned().collect();
        let mut work: BTreeMap<SimprintType, TypeWork> = BTreeMap::new();
        for c in changes {
            let old_of = |kind: &SimprintType| {
                c.old
                    .as_ref()
                    .and_then(|o| o.iter().find(|f| &f.kind == kind))
            };
            for f in &c.new {
                if skip.contains(&f.kind) {
                    continue;
                }
                // An unchanged feature set of a known old version costs nothing.
                if old_of(&f.kind) == Some(f) {
                    continue;
                }
                let w = work.entry(f.kind.clone()).or_default();
                w.bits = f.bits;
                for (chunk, sp) in f.simprints.iter().enumerate() {
                    w.keys.push(chunk_key(c.key, chunk as u64));
                    w.vectors.push(sp.clone());
                }
                w.tails.push((c.key, f.simprints.len() as u64));
            }
            let gone: Vec<SimprintType> = match &c.old {
                Some(old) => old.iter().map(|f| f.kind.clone()).collect(),
                None => open.clone(),
            };
            for kind in gone {
                if skip.contains(&kind) || c.new.iter().any(|f| f.kind == kind) {
                    continue;
                }
                work.entry(kind).or_default().tails.push((c.key, 0));
            }
        }
        for (kind, w) in work {
            let err = || EngineError::simprint_index(&kind);
            let open = set.simprint(&kind);
            // Dropped rows first: once a type's last entry is gone, its
            // bit length is free, and an empty index can take the new one.
            if let Some(idx) = &open {
                let mut dead = Vec::new();
                for (id, from) in w.tails {
                    let mut chunk = from;
                    while idx.contains(chunk_key(id, chunk)).map_err(err())? {
                        dead.push(chunk_key(id, chunk));
                        chunk += 1;
                    }
                }
                if !dead.is_empty() {
                    idx.remove(&dead).map_err(err())?;
                }
            }
            if w.keys.is_empty() {
                continue;
            }
            let idx = match open {
                Some(i) if bits_of(&i) == usize::from(w.bits) => i,
                Some(i) if i.is_empty() => self.replace_simprint_index(set, &kind, w.bits)?,
                Some(i) => {
                    return Err(EngineError::Invalid(format!(
                        "internal: the simprint {kind} index holds {} rows of {} bits, \
                         but {}-bit rows are to be added",
                        i.len(),
                        bits_of(&i),
                        w.bits
                    )))
                }
                None => self.index_or_create(set, &kind, self.simprint_options(w.bits))?,
            };
            idx.upsert(&w.keys, &w.vectors).map_err(err())?;
        }
        Ok(())
    }

    /// Replace the empty simprint index of `kind` by one of `bits` bits (the
    /// type's bit length changed after its last entry went): in a new
    /// directory that one store transaction names (a read-only open: in
    /// its scratch directory).
    fn replace_simprint_index(
        &self,
        set: &mut IndexSet,
        kind: &SimprintType,
        bits: u16,
    ) -> Result<Arc<SimprintIndex>, EngineError> {
        let options = self.simprint_options(bits);
        let err = EngineError::simprint_index(kind);
        let idx = if self.options.read_only {
            let dir = self
                .scratch_dir()?
                .join(format!("{}.{bits}", dir_base(kind)));
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
            }
            SimprintIndex::create(&dir, options).map_err(err)?
        } else {
            let gen = self
                .store
                .read(|r| r.meta(meta::NEXT_DIR_GEN))?
                .unwrap_or(1);
            let name = format!("{}.{gen}", dir_base(kind));
            let dir = self.root.join(&name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
            }
            let idx = SimprintIndex::create(&dir, options).map_err(err)?;
            let mut next = set.sims.dirs.clone();
            let old = next.insert(kind.clone(), name);
            self.store.write(|w| {
                w.set_meta(meta::NEXT_DIR_GEN, &(gen + 1))?;
                w.set_meta(meta::SIMPRINT_DIRS, &Family::dir_names(&next))
            })?;
            set.sims.dirs = next;
            if let Some(old) = old {
                // Best effort: a directory left here is a leftover that the
                // next writable open removes.
                let _ = std::fs::remove_dir_all(self.root.join(old));
            }
            idx
        };
        let idx = Arc::new(idx);
        // The old (empty) index is dropped unsaved: its directory is gone.
        set.sims.open.insert(kind.clone(), Arc::clone(&idx));
        Ok(idx)
    }

    /// The feature changes of journaled entries (stored JSON, `None` when
    /// removed), the old versions unknown.
    pub(super) fn replayed_features(
        changed: &[(u64, Option<Vec<u8>>)],
    ) -> Result<Vec<FeatureChange>, EngineError> {
        changed
            .iter()
            .map(|(key, json)| {
                let new = match json {
                    Some(j) => stored_features(j)?,
                    None => Vec::new(),
                };
                Ok(FeatureChange {
                    key: *key,
                    old: None,
                    new,
                })
            })
            .collect()
    }
}

/// The feature sets of a stored entry.
pub(super) fn stored_features(json: &[u8]) -> Result<Vec<FeatureSet>, EngineError> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| EngineError::Json(e.to_string()))?;
    match &v {
        serde_json::Value::Object(obj) => features_of(obj, "stored entry"),
        _ => Err(EngineError::Json(
            "a stored entry that is not a JSON object".into(),
        )),
    }
}

/// Per type, the rows of a chunk of entries (for rebuilds): keys and
/// simprints, with the type's bit length.
pub(super) type RowsByType = BTreeMap<SimprintType, (u16, Vec<[u8; 16]>, Vec<Vec<u8>>)>;

/// The simprint rows of stored entries whose type `wants` accepts.
pub(super) fn rows_of_entries(
    chunk: &[(u64, Vec<u8>)],
    wants: impl Fn(&SimprintType) -> bool,
) -> Result<RowsByType, EngineError> {
    let mut out: RowsByType = BTreeMap::new();
    for (key, json) in chunk {
        for f in stored_features(json)? {
            if !wants(&f.kind) {
                continue;
            }
            let e = out
                .entry(f.kind.clone())
                .or_insert_with(|| (f.bits, Vec::new(), Vec::new()));
            for (chunk, sp) in f.simprints.into_iter().enumerate() {
                e.1.push(chunk_key(*key, chunk as u64));
                e.2.push(sp);
            }
        }
    }
    Ok(out)
}
