//! What every open does before the index answers: check the on-disk format
//! (upgrading format 1), open each unit index the store names, and check
//! it against the store — the truth:
//!
//! 1. A unit index that cannot be opened (missing directory or manifest,
//!    damaged file) is rebuilt.
//! 2. A unit index saved at a journal position below the journal's floor
//!    misses changes the journal no longer holds: rebuilt.
//! 3. The journal (changes since the last save) is replayed.
//! 4. Each unit index must then hold exactly as many rows as the store has
//!    entries with a unit of its type (the counts are kept in the entries'
//!    own transactions): otherwise rebuilt.
//! 5. A rebuild the store records as unfinished is resumed.
//!
//! A writable open repairs on disk (crash-atomically, see [`maintain`]);
//! a read-only open never writes to the index directory: it replays into
//! memory and rebuilds into a scratch directory elsewhere. Every repair is
//! said on stderr and listed in `info().repairs`.
//!
//! [`maintain`]: super::maintain

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use super::features::SimprintType;
use super::maintain::Target;
use super::meta::{self, RebuildIntent};
use super::simprint_index::{self as sims, SimprintIndex};
use super::write::Change;
use super::{
    stored_units, stored_units_in_txn, EngineError, IndexOptions, IndexParams, IsccIndex,
    ENGINE_FORMAT_VERSION,
};
use crate::codec::UnitType;
use crate::index::{ShardedError, ShardedIndex};
use crate::kind::ErrorKind;
use crate::store::{Store, StoreError, StoreRead};
use crate::sync::lock;

/// The store's state that the unit indexes are checked against, read in
/// one snapshot.
pub(super) struct Snapshot {
    pub(super) floor: u64,
    /// The newest journal sequence number the snapshot saw.
    pub(super) last: u64,
    /// Changed entries since the last save: (ISCC-ID, its stored JSON or
    /// `None` when removed), each once.
    changed: Vec<(u64, Option<Vec<u8>>)>,
    counts: BTreeMap<String, u64>,
    /// Chunks per simprint type, as the store counts them.
    chunks: BTreeMap<SimprintType, u64>,
    rebuild: Option<RebuildIntent>,
}

/// What failed a check, per derived index: the unit types' and the
/// simprint types' (each with the reason).
#[derive(Default)]
pub(super) struct Damaged {
    units: BTreeMap<UnitType, String>,
    sims: BTreeMap<SimprintType, String>,
}

impl Damaged {
    fn target(&self) -> Target {
        Target::Some {
            units: self.units.keys().copied().collect(),
            simprints: self.sims.keys().cloned().collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.units.is_empty() && self.sims.is_empty()
    }

    /// Each damaged index with its reason, for the notes.
    fn reasons(&self) -> Vec<String> {
        let units = self
            .units
            .iter()
            .map(|(t, why)| format!("the {t} index {why}"));
        let sims = self
            .sims
            .iter()
            .map(|(k, why)| format!("the simprint {k} index {why}"));
        units.chain(sims).collect()
    }
}

/// Unit type name → directory name, as stored.
pub(super) fn dir_names(dirs: &BTreeMap<UnitType, String>) -> BTreeMap<String, String> {
    dirs.iter().map(|(t, d)| (t.name(), d.clone())).collect()
}

/// Entries per similarity unit type, counted from the entries (format 1
/// stores kept no counts).
fn count_entries(r: &StoreRead<'_>) -> Result<BTreeMap<String, u64>, StoreError> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut from = 0u64;
    loop {
        let chunk = r.entries_from(from, 10_000)?;
        let Some(&(last, _)) = chunk.last() else {
            return Ok(counts);
        };
        for (_, json) in &chunk {
            for u in stored_units_in_txn(json)? {
                if u.unit_type().is_similarity() {
                    *counts.entry(u.unit_type().name()).or_default() += 1;
                }
            }
        }
        if last == u64::MAX {
            return Ok(counts);
        }
        from = last + 1;
    }
}

/// The directories the store names (format 1: the recorded unit types
/// under their plain directory names).
pub(super) fn recorded_dirs(r: &StoreRead<'_>) -> Result<BTreeMap<UnitType, String>, StoreError> {
    let names: BTreeMap<String, String> = match r.meta(meta::UNIT_DIRS)? {
        Some(d) => d,
        None => r
            .meta(meta::LEGACY_UNIT_TYPES)?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|n| n.parse::<UnitType>().ok())
            .map(|t| (t.name(), t.dir_name()))
            .collect(),
    };
    Ok(names
        .into_iter()
        .filter_map(|(t, d)| Some((t.parse::<UnitType>().ok()?, d)))
        .filter(|(t, _)| t.is_similarity())
        .collect())
}

/// Check (or on creation write) the format version and parameters;
/// upgrade a format-1 index on a writable open.
pub(super) fn check_format(
    store: &Store,
    root: &Path,
    options: &IndexOptions,
) -> Result<IndexParams, EngineError> {
    let version = store.meta(meta::FORMAT_VERSION)?;
    match version {
        Some(v) if v > ENGINE_FORMAT_VERSION || v == 0 => Err(EngineError::IncompatibleFormat {
            path: root.to_path_buf(),
            found: v,
            expected: ENGINE_FORMAT_VERSION,
        }),
        Some(v) => {
            if v < ENGINE_FORMAT_VERSION && !options.read_only {
                // The writer lock is held: nothing changes between the
                // read and the write.
                let (dirs, counts) = store.read(|r| Ok((recorded_dirs(r)?, count_entries(r)?)))?;
                store.write(|w| {
                    w.set_counts(&counts)?;
                    if v < 3 {
                        super::maintain::refill_simprints(w)?;
                    }
                    w.set_meta(meta::UNIT_DIRS, &dir_names(&dirs))?;
                    w.set_meta(meta::FORMAT_VERSION, &ENGINE_FORMAT_VERSION)
                })?;
            }
            Ok(store.meta(meta::PARAMS)?.unwrap_or(options.params))
        }
        None => {
            if options.read_only {
                return Err(EngineError::NotFound(format!(
                    "index at {} (not initialised)",
                    root.display()
                )));
            }
            IsccIndex::check_params(&options.params)?;
            store.write(|w| {
                w.set_meta(meta::FORMAT_VERSION, &ENGINE_FORMAT_VERSION)?;
                w.set_meta(meta::PARAMS, &options.params)?;
                w.set_meta(meta::MAX_DIM, &options.params.max_dim)?;
                w.set_meta(
                    meta::CREATED_AT,
                    &crate::codec::iso_time_us(crate::codec::now_us()),
                )?;
                if let Some(r) = options.realm {
                    w.set_meta(meta::REALM_ID, &r)?;
                }
                w.set_meta(meta::UNIT_DIRS, &BTreeMap::new())
            })?;
            Ok(options.params)
        }
    }
}

/// True when a unit index failed to open because it is damaged or missing
/// (rebuild it), not because of the environment (report it).
fn is_damage(e: &ShardedError) -> bool {
    match e.kind() {
        ErrorKind::NotFound | ErrorKind::Corrupt | ErrorKind::IncompatibleFormat => true,
        // A shard file the manifest names is gone.
        ErrorKind::Io => matches!(
            e,
            ShardedError::Index(crate::index::IndexError::Io { source, .. })
                | ShardedError::Io { source, .. }
                if source.kind() == std::io::ErrorKind::NotFound
        ),
        _ => false,
    }
}

impl IsccIndex {
    /// Say what the open repaired: stderr and `info().repairs`.
    fn note(&self, what: String) {
        // Never a panic when stderr is closed (a library must not die of it).
        let _ = writeln!(
            std::io::stderr().lock(),
            "iscc-vdb: {}: {what}",
            self.root.display()
        );
        lock(&self.repairs).push(what);
    }

    /// Open and check the unit indexes (see the module docs).
    pub(super) fn open_units(&self) -> Result<(), EngineError> {
        if self.options.read_only {
            self.open_units_read_only()
        } else {
            self.open_units_writable()
        }
    }

    /// The store's state for the checks, in one snapshot.
    fn snapshot(&self) -> Result<Snapshot, EngineError> {
        let legacy = self.store.meta(meta::FORMAT_VERSION)? < Some(ENGINE_FORMAT_VERSION);
        Ok(self.store.read(|r| {
            let mut seen = BTreeSet::new();
            let mut changed = Vec::new();
            for (_, key) in r.journal()? {
                if seen.insert(key) {
                    changed.push((key, r.get_entry(key)?));
                }
            }
            let counts = if legacy {
                count_entries(r)?
            } else {
                r.counts()?.unwrap_or_default()
            };
            let chunks = r
                .simprint_types()?
                .into_iter()
                .filter_map(|(name, row)| Some((SimprintType::parse(&name).ok()?, row.chunks)))
                .collect();
            Ok(Snapshot {
                floor: r.journal_floor()?,
                last: r.journal_last()?,
                changed,
                counts,
                chunks,
                rebuild: r.meta(meta::REBUILD)?,
            })
        })?)
    }

    fn open_units_writable(&self) -> Result<(), EngineError> {
        let (dirs, sim_dirs) = self
            .store
            .read(|r| Ok((recorded_dirs(r)?, sims::recorded_dirs(r)?)))?;
        *lock(&self.dirs) = dirs.clone();
        *lock(&self.sims.dirs) = sim_dirs.clone();
        self.remove_leftovers(&dirs, &sim_dirs)?;
        let mut damaged = Damaged::default();
        for (t, name) in &dirs {
            match ShardedIndex::<u64>::open(self.root.join(name)) {
                Ok(idx) => {
                    self.units.write().insert(*t, Arc::new(idx));
                }
                Err(e) if is_damage(&e) => {
                    damaged.units.insert(*t, format!("cannot be opened ({e})"));
                }
                Err(e) => return Err(EngineError::index(*t)(e)),
            }
        }
        for (k, name) in &sim_dirs {
            match SimprintIndex::open(self.root.join(name)) {
                Ok(idx) => {
                    self.sims.open.write().insert(k.clone(), Arc::new(idx));
                }
                Err(e) if is_damage(&e) => {
                    damaged
                        .sims
                        .insert(k.clone(), format!("cannot be opened ({e})"));
                }
                Err(e) => return Err(EngineError::simprint_index(k)(e)),
            }
        }
        let snap = self.snapshot()?;
        self.check_units(&snap, &mut damaged)?;
        let mut target = damaged.target();
        for why in damaged.reasons() {
            self.note(format!("{why}; rebuilding it from the store"));
        }
        if let Some(intent) = &snap.rebuild {
            let what = if intent.all {
                "of every unit index".to_string()
            } else {
                intent
                    .types
                    .iter()
                    .cloned()
                    .chain(intent.simprints.iter().map(|k| format!("simprint {k}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            self.note(format!("an interrupted rebuild ({what}) is resumed"));
            target = target.union(Target::from_intent(intent));
        }
        if !target.is_none() {
            self.rebuild_units(&target)?;
            self.note("rebuilt; the index is consistent with its store".into());
        }
        Ok(())
    }

    pub(super) fn open_units_read_only(&self) -> Result<(), EngineError> {
        // Format 1 kept no counts (a writable open would upgrade it).
        let legacy = self.store.meta(meta::FORMAT_VERSION)? < Some(ENGINE_FORMAT_VERSION);
        // A writer may save (and trim its journal) between our look at the
        // unit indexes and at the store: then look again.
        for attempt in 0..3 {
            let (dirs, sim_dirs) = self
                .store
                .read(|r| Ok((recorded_dirs(r)?, sims::recorded_dirs(r)?)))?;
            let mut opened = BTreeMap::new();
            let mut opened_sims = BTreeMap::new();
            let mut damaged = Damaged::default();
            for (t, name) in &dirs {
                match ShardedIndex::<u64>::open_detached(self.root.join(name)) {
                    Ok(idx) => {
                        opened.insert(*t, Arc::new(idx));
                    }
                    Err(e) if is_damage(&e) => {
                        damaged.units.insert(*t, format!("cannot be opened ({e})"));
                    }
                    Err(e) => return Err(EngineError::index(*t)(e)),
                }
            }
            for (k, name) in &sim_dirs {
                match SimprintIndex::open_detached(self.root.join(name)) {
                    Ok(idx) => {
                        opened_sims.insert(k.clone(), Arc::new(idx));
                    }
                    Err(e) if is_damage(&e) => {
                        damaged
                            .sims
                            .insert(k.clone(), format!("cannot be opened ({e})"));
                    }
                    Err(e) => return Err(EngineError::simprint_index(k)(e)),
                }
            }
            let snap = self.snapshot()?;
            let old = |tag: Option<u64>| tag.is_some_and(|tag| tag < snap.floor);
            let stale =
                opened.values().any(|i| old(i.tag())) || opened_sims.values().any(|i| old(i.tag()));
            if stale && attempt < 2 {
                continue;
            }
            if legacy {
                *lock(&self.legacy_counts) = Some(snap.counts.clone());
            }
            *self.units.write() = opened;
            *self.sims.open.write() = opened_sims;
            *lock(&self.dirs) = dirs.clone();
            *lock(&self.sims.dirs) = sim_dirs.clone();
            *lock(&self.seen) = (snap.floor, snap.last);
            self.check_units(&snap, &mut damaged)?;
            if !damaged.is_empty() {
                for why in damaged.reasons() {
                    self.note(format!(
                        "{why}; rebuilt in memory for this read-only open \
                         (open the index for writing to repair it on disk)"
                    ));
                }
                self.rebuild_in_scratch(&damaged)?;
            }
            return Ok(());
        }
        Ok(())
    }

    /// Steps 2–4 of the module docs on the open unit and simprint
    /// indexes: drop stale ones, replay the journal into the rest, compare
    /// row counts. What is wrong lands in `damaged` (and out of the open
    /// set).
    fn check_units(&self, snap: &Snapshot, damaged: &mut Damaged) -> Result<(), EngineError> {
        let trimmed = |tag: u64| {
            format!(
                "was saved at journal position {tag}, but the store's journal is \
                 trimmed through {}: the changes in between are missing",
                snap.floor
            )
        };
        for (t, idx) in self.unit_indexes() {
            if let Some(tag) = idx.tag().filter(|tag| *tag < snap.floor) {
                damaged.units.insert(t, trimmed(tag));
            }
        }
        for (k, idx) in self.simprint_indexes() {
            if let Some(tag) = idx.tag().filter(|tag| *tag < snap.floor) {
                damaged.sims.insert(k, trimmed(tag));
            }
        }
        self.drop_damaged(damaged);
        let sim_skip: BTreeSet<SimprintType> = damaged.sims.keys().cloned().collect();
        self.replay(&snap.changed, &damaged.units, &sim_skip)?;
        let mut types: BTreeSet<UnitType> = self.open_unit_types().into_iter().collect();
        types.extend(
            snap.counts
                .keys()
                .filter_map(|n| n.parse::<UnitType>().ok()),
        );
        for t in types {
            if damaged.units.contains_key(&t) || !t.is_similarity() {
                continue;
            }
            let have = self.unit_index(t).map_or(0, |i| i.len() as u64);
            let want = snap.counts.get(&t.name()).copied().unwrap_or(0);
            if have != want {
                let what = if self.unit_index(t).is_some() {
                    format!("holds {have} rows")
                } else {
                    "is missing".to_string()
                };
                damaged.units.insert(
                    t,
                    format!("{what}, but the store has {want} entries with a {t} unit"),
                );
            }
        }
        let mut kinds: BTreeSet<SimprintType> = self
            .simprint_indexes()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        kinds.extend(snap.chunks.keys().cloned());
        for k in kinds {
            if damaged.sims.contains_key(&k) {
                continue;
            }
            let idx = self.simprint_index(&k);
            let have = idx.as_ref().map_or(0, |i| i.len() as u64);
            let want = snap.chunks.get(&k).copied().unwrap_or(0);
            if have != want {
                let what = if idx.is_some() {
                    format!("holds {have} rows")
                } else {
                    "is missing".to_string()
                };
                damaged.sims.insert(
                    k.clone(),
                    format!("{what}, but the store has {want} chunks of type {k}"),
                );
            }
        }
        self.drop_damaged(damaged);
        Ok(())
    }

    /// Bring the open unit and simprint indexes in line with changed
    /// entries (each given with its stored JSON, `None` when removed):
    /// idempotent. Indexes of the types in `skip` and `sim_skip` are left
    /// out (those are rebuilt instead).
    pub(super) fn replay(
        &self,
        changed: &[(u64, Option<Vec<u8>>)],
        skip: &BTreeMap<UnitType, String>,
        sim_skip: &BTreeSet<SimprintType>,
    ) -> Result<(), EngineError> {
        let all = self.open_unit_types();
        let features = Self::replayed_features(changed)?;
        let mut changes = Vec::with_capacity(changed.len());
        for ((key, json), features) in changed.iter().zip(features) {
            let units = match json {
                Some(j) => stored_units(j)?,
                None => Vec::new(),
            };
            changes.push(Change {
                key: *key,
                old_types: all.clone(),
                units: units
                    .into_iter()
                    .filter(|u| u.unit_type().is_similarity() && !skip.contains_key(&u.unit_type()))
                    .collect(),
                features: Some(features),
            });
        }
        self.apply_skipping(changes, sim_skip)
    }

    /// Replay every journaled change (writer lock held).
    pub(super) fn replay_journal(&self) -> Result<(), EngineError> {
        let changed = self.store.read(|r| {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for (_, key) in r.journal()? {
                if seen.insert(key) {
                    out.push((key, r.get_entry(key)?));
                }
            }
            Ok(out)
        })?;
        self.replay(&changed, &BTreeMap::new(), &BTreeSet::new())
    }

    /// Take damaged indexes out of the open set (dropped unsaved).
    fn drop_damaged(&self, damaged: &Damaged) {
        let mut units = self.units.write();
        for t in damaged.units.keys() {
            units.remove(t);
        }
        let mut open = self.sims.open.write();
        for k in damaged.sims.keys() {
            open.remove(k);
        }
    }

    /// Delete directories of unit and simprint indexes the store does not
    /// name (left by an interrupted rebuild, or superseded by a finished
    /// one).
    fn remove_leftovers(
        &self,
        dirs: &BTreeMap<UnitType, String>,
        sim_dirs: &BTreeMap<SimprintType, String>,
    ) -> Result<(), EngineError> {
        let current: BTreeSet<&String> = dirs.values().chain(sim_dirs.values()).collect();
        let entries = std::fs::read_dir(&self.root).map_err(super::io(&self.root))?;
        for e in entries {
            let e = e.map_err(super::io(&self.root))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.split('.').next().unwrap_or_default();
            let ours = base
                .parse::<UnitType>()
                .is_ok_and(|t| t.is_similarity() && base == t.dir_name())
                || base.strip_prefix("simprint-").is_some_and(|k| {
                    SimprintType::parse(k).is_ok_and(|k| base == sims::dir_base(&k))
                });
            if ours && e.path().is_dir() && !current.contains(&name) {
                std::fs::remove_dir_all(e.path()).map_err(super::io(&e.path()))?;
                self.note(format!(
                    "removed {name}, a unit index directory the store does not name \
                     (left by an interrupted or superseded rebuild)"
                ));
            }
        }
        Ok(())
    }

    /// Build the damaged unit and simprint indexes from the entries into
    /// the scratch directory (read-only opens).
    fn rebuild_in_scratch(&self, damaged: &Damaged) -> Result<(), EngineError> {
        let scratch = self.scratch_dir()?;
        let options = Self::sharded_options(&self.params);
        let mut fresh: BTreeMap<UnitType, ShardedIndex<u64>> = BTreeMap::new();
        for t in damaged.units.keys() {
            let dir = scratch.join(format!("{}.rebuilt", t.dir_name()));
            let idx = ShardedIndex::<u64>::create(&dir, options).map_err(EngineError::index(*t))?;
            fresh.insert(*t, idx);
        }
        let mut fresh_sims: BTreeMap<SimprintType, SimprintIndex> = BTreeMap::new();
        self.for_each_chunk(|chunk| {
            let mut by_type: BTreeMap<UnitType, (Vec<u64>, Vec<Vec<u8>>)> = BTreeMap::new();
            for (key, json) in chunk {
                for u in stored_units(json)? {
                    if damaged.units.contains_key(&u.unit_type()) {
                        let e = by_type.entry(u.unit_type()).or_default();
                        e.0.push(*key);
                        e.1.push(u.body().to_vec());
                    }
                }
            }
            for (t, (keys, bodies)) in by_type {
                if let Some(idx) = fresh.get(&t) {
                    idx.upsert(&keys, &bodies).map_err(EngineError::index(t))?;
                }
            }
            for (kind, (bits, keys, prints)) in
                sims::rows_of_entries(chunk, |k| damaged.sims.contains_key(k))?
            {
                let err = || EngineError::simprint_index(&kind);
                let idx = match fresh_sims.entry(kind.clone()) {
                    std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::btree_map::Entry::Vacant(e) => {
                        let dir = scratch.join(format!("{}.rebuilt", sims::dir_base(&kind)));
                        e.insert(
                            SimprintIndex::create(&dir, self.simprint_options(bits))
                                .map_err(err())?,
                        )
                    }
                };
                idx.upsert(&keys, &prints).map_err(err())?;
            }
            Ok(())
        })?;
        let mut units = self.units.write();
        for (t, idx) in fresh {
            units.insert(t, Arc::new(idx));
        }
        let mut open = self.sims.open.write();
        for (k, idx) in fresh_sims {
            open.insert(k, Arc::new(idx));
        }
        Ok(())
    }
}
