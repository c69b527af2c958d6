//! Maintenance: `save`, `rebuild`, `compact`, `copy`. Each is crash-atomic:
//! a kill at any instant leaves the old complete state or the new one.
//!
//! "Unit index" below means the unit types' and the simprint types'
//! similarity indexes alike (see `simprint_index.rs`).
//!
//! * `save` writes each unit index (committed by its manifest, tagged with
//!   the journal position it reflects), then trims the journal up to that
//!   position in one store transaction.
//! * `rebuild` refills the store's own derived rows (INSTANCE rows, simprint
//!   rows and per-type counts) in one transaction, then builds every unit index anew
//!   in a new directory beside the old one ([`LocalIndex::rebuild_units`])
//!   and switches to the new directories in one store transaction. Its
//!   intent is recorded first, so a writable open after a crash resumes it.
//! * `compact` rewrites each unit index's shards without dead rows,
//!   committed by the manifest swap, then saves.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::features::SimprintType;
use super::index_set::{index_error, Family, Fresh, IndexSet, IndexType};
use super::meta::{self, RebuildIntent};
use super::simprint_index as sims;
use super::{
    io, stored_features_in_txn, stored_units, stored_units_in_txn, EngineError, IndexOptions,
    LocalIndex,
};
use crate::codec::UnitType;
use crate::index::{ShardedIndex, ShardedOptions};
use crate::store::{StoreError, StoreTxn};
use crate::sync::lock;

/// Refill every simprint row and type from the entries' features, in one
/// store transaction (a rebuild, and the upgrade from format 2).
pub(super) fn refill_simprints(w: &mut StoreTxn<'_, '_>) -> Result<(), StoreError> {
    w.clear_simprints()?;
    let mut from = 0u64;
    loop {
        let chunk = w.entries_from(from, CHUNK)?;
        let Some(&(last, _)) = chunk.last() else {
            return Ok(());
        };
        for (key, json) in &chunk {
            for f in stored_features_in_txn(json)? {
                w.add_simprints(&f.kind.to_string(), u64::from(f.bits), *key, &f.simprints)?;
            }
        }
        if last == u64::MAX {
            return Ok(());
        }
        from = last + 1;
    }
}

/// Which derived indexes a rebuild recreates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// Every unit type and simprint type the entries have; indexes of
    /// other types are dropped.
    All,
    /// These unit types and simprint types.
    Some {
        units: BTreeSet<UnitType>,
        simprints: BTreeSet<SimprintType>,
    },
}

impl Target {
    pub(super) fn is_none(&self) -> bool {
        matches!(self, Target::Some { units, simprints } if units.is_empty() && simprints.is_empty())
    }

    /// Both targets' indexes.
    pub(super) fn union(self, other: Target) -> Target {
        match (self, other) {
            (Target::All, _) | (_, Target::All) => Target::All,
            (
                Target::Some {
                    mut units,
                    mut simprints,
                },
                Target::Some {
                    units: u,
                    simprints: s,
                },
            ) => {
                units.extend(u);
                simprints.extend(s);
                Target::Some { units, simprints }
            }
        }
    }

    pub(super) fn intent(&self) -> RebuildIntent {
        match self {
            Target::All => RebuildIntent {
                all: true,
                ..RebuildIntent::default()
            },
            Target::Some { units, simprints } => RebuildIntent {
                all: false,
                types: units.iter().map(|t| t.name()).collect(),
                simprints: simprints.iter().map(ToString::to_string).collect(),
            },
        }
    }

    pub(super) fn from_intent(intent: &RebuildIntent) -> Target {
        if intent.all {
            return Target::All;
        }
        Target::Some {
            units: intent
                .types
                .iter()
                .filter_map(|n| n.parse::<UnitType>().ok())
                .filter(|t| t.is_similarity())
                .collect(),
            simprints: intent
                .simprints
                .iter()
                .filter_map(|n| SimprintType::parse(n).ok())
                .collect(),
        }
    }
}

/// The index of `t` among `fresh`, created in its place when not yet there.
fn fresh_index<'a, T: IndexType>(
    fresh: &'a mut Fresh<T>,
    t: &T,
    options: ShardedOptions,
    place: &impl Fn(&str) -> Result<(String, PathBuf), EngineError>,
) -> Result<&'a ShardedIndex<T::Key>, EngineError> {
    let (_, idx) = match fresh.entry(t.clone()) {
        Entry::Occupied(e) => e.into_mut(),
        Entry::Vacant(e) => {
            let (name, dir) = place(&t.dir_base())?;
            let idx = ShardedIndex::<T::Key>::create(dir, options).map_err(t.error())?;
            e.insert((name, idx))
        }
    };
    Ok(idx)
}

/// Save rebuilt indexes, tagged with journal position `seq`.
fn save_fresh<T: IndexType>(fresh: &Fresh<T>, seq: u64) -> Result<(), EngineError> {
    for (t, (_, idx)) in fresh {
        idx.save_tagged(seq).map_err(t.error())?;
    }
    Ok(())
}

/// Entries read per store transaction by the chunked walks.
const CHUNK: usize = 10_000;

impl LocalIndex {
    /// Write every unit index and trim the journal.
    pub fn save(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let _w = lock(&self.writer);
        self.save_locked()
    }

    /// Wait until every unit index's background work — shard rotations and
    /// tiered merges — is done (a merge failure is returned). Searches and
    /// writes may run meanwhile; this only waits.
    pub fn wait_background(&self) -> Result<(), EngineError> {
        for (label, idx) in self.indexes().every() {
            idx.drain().map_err(index_error(label))?;
        }
        Ok(())
    }

    /// [`LocalIndex::save`] with the writer lock held: each unit index is
    /// saved tagged with the newest journal position (no write can come in
    /// between), then the journal is trimmed through it.
    pub(super) fn save_locked(&self) -> Result<(), EngineError> {
        if self.unapplied.load(Ordering::Acquire) {
            // A write's unit index update failed after its commit: apply
            // every journaled change again (idempotent) before trimming.
            self.replay_journal()?;
            self.unapplied.store(false, Ordering::Release);
        }
        let seq = self.store.journal_last()?;
        for (label, idx) in self.indexes().every() {
            idx.save_tagged(seq).map_err(index_error(label))?;
        }
        self.store.trim_journal(seq)?;
        Ok(())
    }

    /// Recreate every derived index (INSTANCE rows, simprint rows, entry
    /// counts, unit and simprint indexes) from the stored entries, then save. Crash-atomic: searches
    /// keep using the old unit indexes until the new ones are complete.
    pub fn rebuild(&self) -> Result<(), EngineError> {
        self.check_writable()?;
        let _w = lock(&self.writer);
        self.rebuild_store_rows()?;
        self.change_indexes(|set| self.rebuild_units(set, &Target::All))?;
        self.save_locked()
    }

    /// Rebuild the unit indexes of the named unit types only (e.g.
    /// `CONTENT-TEXT-V0`), crash-atomically like [`LocalIndex::rebuild`],
    /// then save.
    pub fn rebuild_unit_types(&self, unit_types: &[&str]) -> Result<(), EngineError> {
        self.check_writable()?;
        let mut set = BTreeSet::new();
        for (i, name) in unit_types.iter().enumerate() {
            let t: UnitType = name.parse().map_err(|source| EngineError::Iscc {
                context: format!("unit_types[{i}]"),
                source,
            })?;
            if !t.is_similarity() {
                return Err(EngineError::Invalid(format!(
                    "unit_types[{i}]: {t} has no similarity index (only META, SEMANTIC, CONTENT and DATA types of version 0 do)"
                )));
            }
            set.insert(t);
        }
        if set.is_empty() {
            return Err(EngineError::Invalid("no unit type to rebuild".into()));
        }
        let _w = lock(&self.writer);
        let target = Target::Some {
            units: set,
            simprints: BTreeSet::new(),
        };
        self.change_indexes(|set| self.rebuild_units(set, &target))?;
        self.save_locked()
    }

    /// Refill the INSTANCE rows, the simprint rows and the per-type entry
    /// counts from the entries, in one store transaction.
    fn rebuild_store_rows(&self) -> Result<(), EngineError> {
        self.store.write(|w| {
            w.clear_instances()?;
            refill_simprints(w)?;
            let mut counts: BTreeMap<String, u64> = BTreeMap::new();
            let mut from = 0u64;
            loop {
                let chunk = w.entries_from(from, CHUNK)?;
                let Some(&(last, _)) = chunk.last() else {
                    break;
                };
                for (key, json) in &chunk {
                    for u in stored_units_in_txn(json)? {
                        let t = u.unit_type();
                        if t.is_instance() {
                            w.add_instance(u.body(), *key)?;
                        } else if t.is_similarity() {
                            *counts.entry(t.name()).or_default() += 1;
                        }
                    }
                }
                if last == u64::MAX {
                    break;
                }
                from = last + 1;
            }
            w.set_counts(&counts)
        })?;
        Ok(())
    }

    /// Build the unit and simprint indexes of `target` afresh from the
    /// entries, each in a new directory (`content-text-v0.N`,
    /// `simprint-semantic-text-v0.N`), save them, then switch `set` to them
    /// after one store transaction names them, and delete the old
    /// directories. The intent is recorded before anything is built and
    /// cleared by the switch. The caller holds the writer lock (or is
    /// opening the index); searches use the set before until `set` is
    /// published.
    pub(super) fn rebuild_units(
        &self,
        set: &mut IndexSet,
        target: &Target,
    ) -> Result<(), EngineError> {
        let intent = target.intent();
        let gen = self.store.write(|w| {
            let gen = w.meta(meta::NEXT_DIR_GEN)?.unwrap_or(1);
            w.set_meta(meta::NEXT_DIR_GEN, &(gen + 1))?;
            w.set_meta(meta::REBUILD, &intent)?;
            Ok(gen)
        })?;
        let seq = self.store.journal_last()?;
        let (units, sims) = self.build_fresh(target, |base| {
            let name = format!("{base}.{gen}");
            let dir = self.root.join(&name);
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
            }
            Ok((name, dir))
        })?;
        save_fresh(&units, seq)?;
        save_fresh(&sims, seq)?;
        // The switch: one store transaction names the new directories.
        let unit_dirs = set.units.dirs_after(&units, target);
        let sim_dirs = set.sims.dirs_after(&sims, target);
        self.store.write(|w| {
            w.set_meta(meta::UNIT_DIRS, &Family::dir_names(&unit_dirs))?;
            w.set_meta(meta::SIMPRINT_DIRS, &Family::dir_names(&sim_dirs))?;
            w.delete_meta(meta::REBUILD)?;
            Ok(())
        })?;
        // Now in memory: the old indexes are dropped unsaved (their
        // directories are deleted), the new ones take their place.
        let mut stale = set.units.switch(units, target, unit_dirs);
        stale.extend(set.sims.switch(sims, target, sim_dirs));
        for name in stale {
            // Best effort: a directory left here is removed as a leftover
            // on the next writable open.
            let _ = std::fs::remove_dir_all(self.root.join(name));
        }
        Ok(())
    }

    /// The unit and simprint indexes of `target` built from the stored
    /// entries, each created in the directory `place` gives for its base
    /// name (returning the name to record and the path).
    pub(super) fn build_fresh(
        &self,
        target: &Target,
        place: impl Fn(&str) -> Result<(String, PathBuf), EngineError>,
    ) -> Result<(Fresh<UnitType>, Fresh<SimprintType>), EngineError> {
        let options = Self::sharded_options(&self.params);
        let mut units: Fresh<UnitType> = BTreeMap::new();
        let mut sims: Fresh<SimprintType> = BTreeMap::new();
        self.for_each_chunk(|chunk| {
            let mut by_type: BTreeMap<UnitType, (Vec<u64>, Vec<Vec<u8>>)> = BTreeMap::new();
            for (key, json) in chunk {
                for u in stored_units(json)? {
                    let t = u.unit_type();
                    if t.is_similarity() && t.targeted(target) {
                        let e = by_type.entry(t).or_default();
                        e.0.push(*key);
                        e.1.push(u.body().to_vec());
                    }
                }
            }
            for (t, (keys, bodies)) in by_type {
                fresh_index(&mut units, &t, options, &place)?
                    .upsert(&keys, &bodies)
                    .map_err(t.error())?;
            }
            for (kind, (bits, keys, prints)) in
                sims::rows_of_entries(chunk, |k| k.targeted(target))?
            {
                fresh_index(&mut sims, &kind, self.simprint_options(bits), &place)?
                    .upsert(&keys, &prints)
                    .map_err(kind.error())?;
            }
            Ok(())
        })?;
        Ok((units, sims))
    }

    /// Rewrite every unit and simprint index without its dead rows (tombstoned by
    /// updates and removals), then save. Returns the rows dropped.
    pub fn compact(&self) -> Result<usize, EngineError> {
        self.check_writable()?;
        let _w = lock(&self.writer);
        let mut removed = 0;
        for (label, idx) in self.indexes().every() {
            removed += idx.compact().map_err(index_error(label))?;
        }
        self.save_locked()?;
        Ok(removed)
    }

    /// Run `f` on every stored entry, in chunks in ID order (each chunk
    /// read in its own transaction).
    pub(super) fn for_each_chunk(
        &self,
        mut f: impl FnMut(&[(u64, Vec<u8>)]) -> Result<(), EngineError>,
    ) -> Result<(), EngineError> {
        let mut from = 0u64;
        loop {
            let chunk = self.store.entries_from(from, CHUNK)?;
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
    pub fn copy(&self) -> Result<LocalIndex, EngineError> {
        self.check_open()?;
        let copy = LocalIndex::open(
            None,
            IndexOptions {
                params: self.params,
                realm: self.realm.get().map(|r| r.id()),
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
}
