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

use super::features::SimprintType;
use super::index_set::{Family, IndexSet, IndexType};
use super::maintain::Target;
use super::meta::{self, RebuildIntent};
use super::simprint_index as sims;
use super::write::Change;
use super::{
    stored_units, stored_units_in_txn, EngineError, IndexOptions, IndexParams, LocalIndex,
    ENGINE_FORMAT_VERSION,
};
use crate::codec::UnitType;
use crate::index::ShardedError;
use crate::kind::ErrorKind;
use crate::store::{Store, StoreError, StoreRead};
use crate::sync::lock;

/// A changed entry: its ISCC-ID and its stored JSON (`None` when removed).
pub(super) type Changed = (u64, Option<Vec<u8>>);

/// The entries journal `records` (sequence number, ISCC-ID) name, each
/// once, with their stored JSON as `r` sees it.
fn changed_of(r: &StoreRead<'_>, records: Vec<(u64, u64)>) -> Result<Vec<Changed>, StoreError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (_, key) in records {
        if seen.insert(key) {
            out.push((key, r.get_entry(key)?));
        }
    }
    Ok(out)
}

/// The store's state that the unit indexes are checked against, read in
/// one snapshot.
pub(super) struct Snapshot {
    pub(super) floor: u64,
    /// The newest journal sequence number the snapshot saw.
    pub(super) last: u64,
    /// Changed entries since the last save: (ISCC-ID, its stored JSON or
    /// `None` when removed), each once.
    changed: Vec<Changed>,
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

    /// Take the damaged indexes out of `set` (dropped unsaved).
    fn drop_from(&self, set: &mut IndexSet) {
        set.units.drop_damaged(&self.units);
        set.sims.drop_damaged(&self.sims);
    }

    /// Each damaged index with its reason, for the notes.
    fn reasons(&self) -> Vec<String> {
        let units = self
            .units
            .iter()
            .map(|(t, why)| format!("the {} index {why}", t.label()));
        let sims = self
            .sims
            .iter()
            .map(|(k, why)| format!("the {} index {why}", k.label()));
        units.chain(sims).collect()
    }
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
                    w.set_meta(meta::UNIT_DIRS, &Family::dir_names(&dirs))?;
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
            LocalIndex::check_params(&options.params)?;
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
pub(super) fn is_damage(e: &ShardedError) -> bool {
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

impl LocalIndex {
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
            let changed = changed_of(r, r.journal()?)?;
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
        let mut set = IndexSet::default();
        (set.units.dirs, set.sims.dirs) = self
            .store
            .read(|r| Ok((UnitType::recorded(r)?, SimprintType::recorded(r)?)))?;
        self.remove_leftovers(&set)?;
        let mut damaged = Damaged::default();
        set.units
            .open_recorded(&self.root, false, &mut damaged.units)?;
        set.sims
            .open_recorded(&self.root, false, &mut damaged.sims)?;
        let snap = self.snapshot()?;
        self.check_units(&mut set, &snap, &mut damaged)?;
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
            self.rebuild_units(&mut set, &target)?;
            self.note("rebuilt; the index is consistent with its store".into());
        }
        self.indexes.put(set);
        Ok(())
    }

    /// Open and check the unit indexes for a read-only open (or a refresh
    /// after the writer saved or rebuilt): the next set is built whole —
    /// opened, replayed, rebuilt in scratch where damaged — and published
    /// in one swap, while searches use the set before.
    pub(super) fn open_units_read_only(&self) -> Result<(), EngineError> {
        // Format 1 kept no counts (a writable open would upgrade it).
        let legacy = self.store.meta(meta::FORMAT_VERSION)? < Some(ENGINE_FORMAT_VERSION);
        // A writer may save (and trim its journal) between our look at the
        // unit indexes and at the store: then look again.
        for attempt in 0..3 {
            let mut set = IndexSet::default();
            (set.units.dirs, set.sims.dirs) = self
                .store
                .read(|r| Ok((UnitType::recorded(r)?, SimprintType::recorded(r)?)))?;
            let mut damaged = Damaged::default();
            set.units
                .open_recorded(&self.root, true, &mut damaged.units)?;
            set.sims
                .open_recorded(&self.root, true, &mut damaged.sims)?;
            let snap = self.snapshot()?;
            let stale = set.units.any_before(snap.floor) || set.sims.any_before(snap.floor);
            if stale && attempt < 2 {
                continue;
            }
            if legacy {
                *lock(&self.legacy_counts) = Some(snap.counts.clone());
            }
            self.check_units(&mut set, &snap, &mut damaged)?;
            if !damaged.is_empty() {
                for why in damaged.reasons() {
                    self.note(format!(
                        "{why}; rebuilt in memory for this read-only open \
                         (open the index for writing to repair it on disk)"
                    ));
                }
                self.rebuild_in_scratch(&mut set, &damaged)?;
            }
            self.indexes.put(set);
            *lock(&self.seen) = (snap.floor, snap.last);
            return Ok(());
        }
        Ok(())
    }

    /// Steps 2–4 of the module docs on the indexes of `set`: drop stale
    /// ones, replay the journal into the rest, compare row counts. What is
    /// wrong lands in `damaged` (and out of `set`).
    fn check_units(
        &self,
        set: &mut IndexSet,
        snap: &Snapshot,
        damaged: &mut Damaged,
    ) -> Result<(), EngineError> {
        set.units.find_trimmed(snap.floor, &mut damaged.units);
        set.sims.find_trimmed(snap.floor, &mut damaged.sims);
        damaged.drop_from(set);
        let sim_skip: BTreeSet<SimprintType> = damaged.sims.keys().cloned().collect();
        self.replay(set, &snap.changed, &damaged.units, &sim_skip)?;
        let unit_counts: BTreeMap<UnitType, u64> = snap
            .counts
            .iter()
            .filter_map(|(name, n)| {
                let t = name.parse::<UnitType>().ok()?;
                t.is_similarity().then_some((t, *n))
            })
            .collect();
        set.units.find_miscounted(&unit_counts, &mut damaged.units);
        set.sims.find_miscounted(&snap.chunks, &mut damaged.sims);
        damaged.drop_from(set);
        Ok(())
    }

    /// Bring the unit and simprint indexes of `set` in line with changed
    /// entries (each given with its stored JSON, `None` when removed):
    /// idempotent. Indexes of the types in `skip` and `sim_skip` are left
    /// out (those are rebuilt instead).
    pub(super) fn replay(
        &self,
        set: &mut IndexSet,
        changed: &[Changed],
        skip: &BTreeMap<UnitType, String>,
        sim_skip: &BTreeSet<SimprintType>,
    ) -> Result<(), EngineError> {
        let all: Vec<UnitType> = set.units.open.keys().copied().collect();
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
        self.apply_to(set, changes, sim_skip)
    }

    /// Replay every journaled change into the current set (writer lock
    /// held).
    pub(super) fn replay_journal(&self) -> Result<(), EngineError> {
        let (changed, _) = self.journaled_after(None)?;
        self.change_indexes(|set| self.replay(set, &changed, &BTreeMap::new(), &BTreeSet::new()))
    }

    /// The entries the journal names (after sequence number `after`, or
    /// all), each once with its stored JSON (`None` when removed), and the
    /// newest sequence number read.
    pub(super) fn journaled_after(
        &self,
        after: Option<u64>,
    ) -> Result<(Vec<Changed>, u64), EngineError> {
        Ok(self.store.read(|r| {
            let records = match after {
                Some(seq) => r.journal_after(seq)?,
                None => r.journal()?,
            };
            Ok((changed_of(r, records)?, r.journal_last()?))
        })?)
    }

    /// Delete directories of unit and simprint indexes the store does not
    /// name (left by an interrupted rebuild, or superseded by a finished
    /// one).
    fn remove_leftovers(&self, set: &IndexSet) -> Result<(), EngineError> {
        let current: BTreeSet<&String> = set
            .units
            .dirs
            .values()
            .chain(set.sims.dirs.values())
            .collect();
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

    /// Build the damaged unit and simprint indexes of `set` from the
    /// entries, in the scratch directory (read-only opens), each in a
    /// directory of its own (a later refresh may rebuild again while
    /// searches still use these).
    fn rebuild_in_scratch(&self, set: &mut IndexSet, damaged: &Damaged) -> Result<(), EngineError> {
        let scratch = self.scratch_dir()?;
        let (units, sims) = self.build_fresh(&damaged.target(), |base| {
            let mut n = 1u64;
            loop {
                let name = format!("{base}.rebuilt{n}");
                let dir = scratch.join(&name);
                if !dir.exists() {
                    return Ok((name, dir));
                }
                n += 1;
            }
        })?;
        set.units.take_scratch(units);
        set.sims.take_scratch(sims);
        Ok(())
    }
}
