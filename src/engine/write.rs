//! Writes: `add` and `remove`. Each batch is one store transaction that
//! writes the entries, their INSTANCE rows, a journal record per changed
//! entry and the per-unit-type entry counts; the unit indexes are brought
//! in line after the commit ([`LocalIndex::apply`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use serde_json::Value;

use super::entry::{prepare_all, Prepared};
use super::features::{FeatureSet, SimprintType};
use super::index_set::IndexSet;
use super::simprint_index::FeatureChange;
use super::{
    meta, stored_features_in_txn, stored_units_in_txn, EngineError, IndexOptions, LocalIndex,
    RemoveReport,
};
use crate::codec::{IdGenerator, IsccId, Realm, Unit, UnitType};
use crate::store::{StoreError, StoreTxn};
use crate::sync::lock;

/// A change to apply to the unit indexes.
pub(super) struct Change {
    pub(super) key: u64,
    /// Unit types the old version had (all types when unknown).
    pub(super) old_types: Vec<UnitType>,
    /// Similarity units of the new version.
    pub(super) units: Vec<Unit>,
    /// How its granular features changed (`None`: it had and has none).
    pub(super) features: Option<FeatureChange>,
}

/// Keep the store's per-unit-type entry counts in step with an entry whose
/// units change from `old` to `new` (in the entry's transaction).
fn count_change(w: &mut StoreTxn<'_, '_>, old: &[Unit], new: &[Unit]) -> Result<(), StoreError> {
    let types = |units: &[Unit]| -> HashSet<UnitType> {
        units
            .iter()
            .map(Unit::unit_type)
            .filter(|t| t.is_similarity())
            .collect()
    };
    let (old, new) = (types(old), types(new));
    for t in old.difference(&new) {
        w.add_count(&t.name(), -1)?;
    }
    for t in new.difference(&old) {
        w.add_count(&t.name(), 1)?;
    }
    Ok(())
}

impl LocalIndex {
    // ---- add ---------------------------------------------------------------

    /// Add entries (a JSON object or an array of them); returns one ISCC-ID
    /// per entry, in order. See the module docs and `entry.rs` for the entry
    /// form. The whole batch is validated before anything is written; a
    /// duplicate ISCC-ID in the batch: the last entry wins; re-adding an
    /// identical entry changes nothing.
    pub fn add_json(&self, json: &str) -> Result<Vec<String>, EngineError> {
        let value: Value =
            serde_json::from_str(json).map_err(|e| EngineError::Json(e.to_string()))?;
        self.add_values(&value)
    }

    /// [`LocalIndex::add_json`] for parsed JSON.
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
        let prepared = prepare_all(entries)?;
        let _w = lock(&self.writer);
        self.check_writable()?;
        self.check_simprint_bits(&prepared)?;
        let fixed = self.realm.get().copied();
        let realm = batch_realm(&prepared, fixed, &self.options, &self.ids)?;
        let ids = assign_ids(&prepared, realm, fixed.is_none(), &self.options, &self.ids)?;
        let rows = rows_to_write(&ids, &prepared);
        let set_realm = fixed.is_none();
        let changes = self.store.write(|w| {
            if set_realm {
                w.set_meta(meta::REALM_ID, &realm.id())?;
            }
            rows.iter()
                .filter_map(|(key, json, p)| write_entry(w, *key, json, p).transpose())
                .collect()
        })?;
        if set_realm {
            // Set once, under the writer lock: no other set can race it.
            let _ = self.realm.set(realm);
        }
        let ids: Vec<String> = ids.iter().map(IsccId::to_string).collect();
        self.apply_committed(changes, || ids.clone())?;
        Ok(ids)
    }

    /// Every simprint type has one bit length: the index's (fixed by the
    /// first entry with the type) or, for a new type, the first entry's of
    /// the batch that has it. Checked under the writer lock, before the
    /// batch's transaction, so a mismatch writes nothing.
    fn check_simprint_bits(&self, prepared: &[Prepared]) -> Result<(), EngineError> {
        if prepared.iter().all(|p| p.features.is_empty()) {
            return Ok(());
        }
        let mut known: BTreeMap<String, (u64, String)> = self
            .store
            .read(|r| r.simprint_types())?
            .into_iter()
            .map(|(kind, row)| (kind, (row.bits, "the index holds".to_string())))
            .collect();
        for (i, p) in prepared.iter().enumerate() {
            for f in &p.features {
                let kind = f.kind.to_string();
                let bits = u64::from(f.bits);
                match known.get(&kind) {
                    Some((have, by)) if *have != bits => {
                        return Err(EngineError::Invalid(format!(
                            "entries[{i}]: simprints of type {kind} have {bits} bits, but {by} \
                             {have}-bit simprints of that type (one bit length per type)"
                        )));
                    }
                    Some(_) => {}
                    None => {
                        known.insert(kind, (bits, format!("entries[{i}] has")));
                    }
                }
            }
        }
        Ok(())
    }

    /// [`LocalIndex::apply_to`] the current index set after a commit: a
    /// failure says what was committed, and marks the unit indexes for a
    /// full journal replay before the next save may trim the journal.
    fn apply_committed(
        &self,
        changes: Vec<Change>,
        ids: impl FnOnce() -> Vec<String>,
    ) -> Result<(), EngineError> {
        self.change_indexes(|set| self.apply_to(set, changes, &BTreeSet::new()))
            .map_err(|source| {
                self.unapplied.store(true, Ordering::Release);
                EngineError::AfterCommit {
                    ids: ids(),
                    source: Box::new(source),
                }
            })
    }

    /// Bring the unit and simprint indexes of `set` in line with changed
    /// entries, leaving the simprint indexes of `skip` alone. Rows change
    /// in place; an index created for a new type joins `set`.
    pub(super) fn apply_to(
        &self,
        set: &mut IndexSet,
        changes: Vec<Change>,
        skip: &BTreeSet<SimprintType>,
    ) -> Result<(), EngineError> {
        let features: Vec<FeatureChange> =
            changes.iter().filter_map(|c| c.features.clone()).collect();
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
            if let Some(idx) = set.unit(t) {
                idx.remove(&keys).map_err(EngineError::index(t))?;
            }
        }
        let options = Self::sharded_options(&self.params);
        for (t, (keys, bodies)) in upserts {
            let idx = self.index_or_create(set, &t, options)?;
            idx.upsert(&keys, &bodies).map_err(EngineError::index(t))?;
        }
        if !features.is_empty() {
            self.apply_features(set, &features, skip)?;
        }
        Ok(())
    }

    // ---- remove ----------------------------------------------------------

    /// Remove entries; returns the number of index mappings removed (unit
    /// index rows and INSTANCE rows). Unknown ISCC-IDs remove nothing.
    pub fn remove(&self, iscc_ids: &[&str]) -> Result<usize, EngineError> {
        self.remove_report(iscc_ids).map(|r| r.mappings)
    }

    /// [`LocalIndex::remove`], telling which ISCC-IDs were removed and which
    /// were not in the index (decided inside the removing transaction, so a
    /// concurrent writer cannot make the answer stale).
    pub fn remove_report(&self, iscc_ids: &[&str]) -> Result<RemoveReport, EngineError> {
        self.check_writable()?;
        let ids = super::parse_ids_in(iscc_ids, self.realm.get().copied())?;
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
                let Some((change, n)) = remove_entry(w, *key)? else {
                    continue;
                };
                removed.insert(*key);
                mappings += n;
                changes.push(change);
            }
            Ok((changes, mappings, removed))
        })?;
        let removed_ids = || {
            ids.iter()
                .filter(|id| removed.contains(&id.value()))
                .map(IsccId::to_string)
                .collect()
        };
        self.apply_committed(changes, removed_ids)?;
        Ok(remove_report(&ids, &removed, mappings))
    }
}

/// What a remove did: each distinct ISCC-ID asked for (in order) as
/// removed or not found, and the index mappings removed.
pub(super) fn remove_report(
    ids: &[IsccId],
    removed: &HashSet<u64>,
    mappings: usize,
) -> RemoveReport {
    let mut report = RemoveReport {
        mappings,
        ..RemoveReport::default()
    };
    let mut seen = HashSet::new();
    for id in ids {
        if !seen.insert(id.value()) {
            continue;
        }
        if removed.contains(&id.value()) {
            report.removed.push(id.to_string());
        } else {
            report.not_found.push(id.to_string());
        }
    }
    report
}

/// The realm of a batch: the index's, or (before the first entry) that
/// of the batch's first ISCC-ID or the `realm` option. Every given
/// ISCC-ID must be of it; the ID generator is moved past each.
pub(super) fn batch_realm(
    prepared: &[Prepared],
    fixed: Option<Realm>,
    options: &IndexOptions,
    generator: &IdGenerator,
) -> Result<Realm, EngineError> {
    let realm = fixed
        .or_else(|| prepared.iter().find_map(|p| p.id.map(IsccId::realm)))
        .unwrap_or(if options.realm == Some(1) {
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
            generator.advance_past(id.value());
        }
    }
    Ok(realm)
}

/// The ISCC-ID of each entry: its own, or a new one of the realm.
pub(super) fn assign_ids(
    prepared: &[Prepared],
    realm: Realm,
    new_realm: bool,
    options: &IndexOptions,
    generator: &IdGenerator,
) -> Result<Vec<IsccId>, EngineError> {
    let gen_realm = if new_realm { realm } else { generator.realm() };
    let gen = IdGenerator::new(options.hub_id, gen_realm).map_err(|source| EngineError::Iscc {
        context: "option hub_id".into(),
        source,
    })?;
    prepared
        .iter()
        .map(|p| match p.id {
            Some(id) => Ok(id),
            None => gen.next_id().map_err(|source| EngineError::Iscc {
                context: "generating an ISCC-ID".into(),
                source,
            }),
        })
        .collect()
}

/// The rows of a batch to store: key, stored JSON, prepared entry; when an
/// ISCC-ID occurs more than once its last occurrence wins.
pub(super) fn rows_to_write<'a>(
    ids: &[IsccId],
    prepared: &'a [Prepared],
) -> Vec<(u64, Vec<u8>, &'a Prepared)> {
    let mut last: HashMap<u64, usize> = HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        last.insert(id.value(), i);
    }
    ids.iter()
        .enumerate()
        .filter(|(i, id)| last.get(&id.value()) == Some(i))
        .map(|(i, id)| (id.value(), prepared[i].stored_json(*id), &prepared[i]))
        .collect()
}

/// Remove one entry in a write transaction: the row, its INSTANCE
/// mappings, the per-type counts and a journal record. `None` when there is
/// no such entry; else the change the unit indexes must follow and the
/// number of index mappings the entry had.
pub(super) fn remove_entry(
    w: &mut StoreTxn<'_, '_>,
    key: u64,
) -> Result<Option<(Change, usize)>, StoreError> {
    let Some(old) = w.get_entry(key)? else {
        return Ok(None);
    };
    let units = stored_units_in_txn(&old)?;
    for u in units.iter().filter(|u| u.unit_type().is_instance()) {
        w.remove_instance(u.body(), key)?;
    }
    let old_features = stored_features_in_txn(&old)?;
    simprint_change(w, key, &old_features, &[])?;
    w.delete_entry(key)?;
    count_change(w, &units, &[])?;
    w.journal(key)?;
    let change = Change {
        key,
        old_types: units.iter().map(Unit::unit_type).collect(),
        units: Vec::new(),
        features: (!old_features.is_empty()).then(|| FeatureChange {
            key,
            old: Some(old_features),
            new: Vec::new(),
        }),
    };
    Ok(Some((change, units.len())))
}

/// Move an entry's simprint rows (and the types' counts) from its `old`
/// feature sets to its `new` ones, in the entry's transaction.
fn simprint_change(
    w: &mut StoreTxn<'_, '_>,
    key: u64,
    old: &[FeatureSet],
    new: &[FeatureSet],
) -> Result<(), StoreError> {
    for f in old {
        w.remove_simprints(&f.kind.to_string(), key, &f.simprints)?;
    }
    for f in new {
        w.add_simprints(&f.kind.to_string(), u64::from(f.bits), key, &f.simprints)?;
    }
    Ok(())
}

/// Store one entry in a write transaction: the row, its INSTANCE mappings,
/// its simprint rows, the per-type counts and the journal. `None` when the stored row is
/// already identical; else the change the unit indexes must follow.
pub(super) fn write_entry(
    w: &mut StoreTxn<'_, '_>,
    key: u64,
    json: &[u8],
    p: &Prepared,
) -> Result<Option<Change>, StoreError> {
    let old = w.get_entry(key)?;
    if old.as_deref() == Some(json) {
        return Ok(None);
    }
    let (old_units, old_features) = match &old {
        Some(o) => (stored_units_in_txn(o)?, stored_features_in_txn(o)?),
        None => (Vec::new(), Vec::new()),
    };
    simprint_change(w, key, &old_features, &p.features)?;
    for u in old_units.iter().filter(|u| u.unit_type().is_instance()) {
        w.remove_instance(u.body(), key)?;
    }
    w.put_entry(key, json)?;
    for u in p.units.iter().filter(|u| u.unit_type().is_instance()) {
        w.add_instance(u.body(), key)?;
    }
    count_change(w, &old_units, &p.units)?;
    w.journal(key)?;
    let features = (!old_features.is_empty() || !p.features.is_empty()).then(|| FeatureChange {
        key,
        old: Some(old_features),
        new: p.features.clone(),
    });
    Ok(Some(Change {
        key,
        old_types: old_units.iter().map(Unit::unit_type).collect(),
        units: p
            .units
            .iter()
            .filter(|u| u.unit_type().is_similarity())
            .cloned()
            .collect(),
        features,
    }))
}
