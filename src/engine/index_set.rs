//! The engine's derived similarity indexes as one set: each unit type's
//! index and each simprint type's index, with the directory the store
//! records for each.
//!
//! A published set is never changed: a writer (holding the engine's writer
//! turn, or opening) clones the set, changes the clone — an index created,
//! rebuilt ones switched in, everything reopened by a refresh — and
//! publishes it in one swap ([`Published`]). A search takes the current
//! set (an `Arc` cloned under a guard held for that clone only) and keeps
//! it to the end: it sees one set, never half of a change, and holds no
//! lock while it runs. The rows inside an index still change in place (an
//! add, or a read-only refresh replaying the writer's commits, upserts into
//! the shared `ShardedIndex`): a search overlapping such a change may see it
//! on one unit type and not yet on another, like any search racing a write.
//!
//! Unit and simprint indexes follow the same rules — open what the store
//! names, find the stale and the miscounted, drop the damaged, switch to
//! rebuilt ones — so [`Family`] does each once for both, told apart by
//! [`IndexType`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::features::SimprintType;
use super::maintain::Target;
use super::meta;
use super::recovery::is_damage;
use super::simprint_index::{self as sims};
use super::EngineError;
use crate::codec::UnitType;
use crate::index::{ShardKey, ShardedError, ShardedIndex};
use crate::store::{MetaKey, StoreError, StoreRead};
use crate::sync::RwLock;

/// What sets unit types and simprint types apart for their indexes.
pub(super) trait IndexType: Ord + Clone + std::fmt::Display + Sized {
    /// The row key of this family's indexes.
    type Key: ShardKey;
    /// The store key naming this family's directories.
    const DIRS: MetaKey<BTreeMap<String, String>>;
    /// The directory name of a first index of this type (a rebuilt one
    /// adds `.N`).
    fn dir_base(&self) -> String;
    /// The index's name in messages: `CONTENT-TEXT-V0`, `simprint CONTENT-TEXT-V0`.
    fn label(&self) -> String;
    /// What the store counts for this type (`n` of it), said in a message.
    fn counted(&self, n: u64) -> String;
    /// The directories the store names for this family.
    fn recorded(r: &StoreRead<'_>) -> Result<BTreeMap<Self, String>, StoreError>;
    /// Whether a rebuild of `target` recreates this type's index.
    fn targeted(&self, target: &Target) -> bool;
    /// This family's part of a set, to change.
    fn family_mut(set: &mut IndexSet) -> &mut Family<Self>;

    /// The engine's error for a failure of this type's index.
    fn error(&self) -> impl FnOnce(ShardedError) -> EngineError {
        index_error(self.label())
    }
}

/// The engine's error for a failure of the index `label` names.
pub(super) fn index_error(label: String) -> impl FnOnce(ShardedError) -> EngineError {
    move |source| EngineError::Index {
        unit_type: label,
        source,
    }
}

impl IndexType for UnitType {
    type Key = u64;
    const DIRS: MetaKey<BTreeMap<String, String>> = meta::UNIT_DIRS;

    fn dir_base(&self) -> String {
        self.dir_name()
    }

    fn label(&self) -> String {
        self.name()
    }

    fn counted(&self, n: u64) -> String {
        format!("{n} entries with a {self} unit")
    }

    fn recorded(r: &StoreRead<'_>) -> Result<BTreeMap<Self, String>, StoreError> {
        super::recovery::recorded_dirs(r)
    }

    fn targeted(&self, target: &Target) -> bool {
        match target {
            Target::All => true,
            Target::Some { units, .. } => units.contains(self),
        }
    }

    fn family_mut(set: &mut IndexSet) -> &mut Family<Self> {
        &mut set.units
    }
}

impl IndexType for SimprintType {
    type Key = [u8; 16];
    const DIRS: MetaKey<BTreeMap<String, String>> = meta::SIMPRINT_DIRS;

    fn dir_base(&self) -> String {
        sims::dir_base(self)
    }

    fn label(&self) -> String {
        format!("simprint {self}")
    }

    fn counted(&self, n: u64) -> String {
        format!("{n} chunks of type {self}")
    }

    fn recorded(r: &StoreRead<'_>) -> Result<BTreeMap<Self, String>, StoreError> {
        sims::recorded_dirs(r)
    }

    fn targeted(&self, target: &Target) -> bool {
        match target {
            Target::All => true,
            Target::Some { simprints, .. } => simprints.contains(self),
        }
    }

    fn family_mut(set: &mut IndexSet) -> &mut Family<Self> {
        &mut set.sims
    }
}

/// A family's open indexes and the directories the store names for them.
pub(super) struct Family<T: IndexType> {
    /// Each type's open index.
    pub(super) open: BTreeMap<T, Arc<ShardedIndex<T::Key>>>,
    /// The directory (name under the index root) the store records for
    /// each type. A read-only open whose index was rebuilt in its scratch
    /// directory still lists the recorded name (a refresh compares them).
    pub(super) dirs: BTreeMap<T, String>,
}

impl<T: IndexType> Clone for Family<T> {
    fn clone(&self) -> Self {
        Family {
            open: self.open.clone(),
            dirs: self.dirs.clone(),
        }
    }
}

impl<T: IndexType> Default for Family<T> {
    fn default() -> Self {
        Family {
            open: BTreeMap::new(),
            dirs: BTreeMap::new(),
        }
    }
}

/// Indexes built afresh by a rebuild, each with its directory name.
pub(super) type Fresh<T> = BTreeMap<T, (String, ShardedIndex<<T as IndexType>::Key>)>;

impl<T: IndexType> Family<T> {
    /// The open index of `t`.
    pub(super) fn get(&self, t: &T) -> Option<Arc<ShardedIndex<T::Key>>> {
        self.open.get(t).cloned()
    }

    /// The directory names in the store's form (type name → name).
    pub(super) fn dir_names(dirs: &BTreeMap<T, String>) -> BTreeMap<String, String> {
        dirs.iter()
            .map(|(t, d)| (t.to_string(), d.clone()))
            .collect()
    }

    /// Open every index the store names (`detached`: read-only, see
    /// `ShardedIndex::open_detached`). One that is damaged or missing is
    /// listed in `damaged`; any other failure is returned.
    pub(super) fn open_recorded(
        &mut self,
        root: &Path,
        detached: bool,
        damaged: &mut BTreeMap<T, String>,
    ) -> Result<(), EngineError> {
        for (t, name) in &self.dirs {
            let dir = root.join(name);
            let opened = if detached {
                ShardedIndex::<T::Key>::open_detached(dir)
            } else {
                ShardedIndex::<T::Key>::open(dir)
            };
            match opened {
                Ok(idx) => {
                    self.open.insert(t.clone(), Arc::new(idx));
                }
                Err(e) if is_damage(&e) => {
                    damaged.insert(t.clone(), format!("cannot be opened ({e})"));
                }
                Err(e) => return Err(t.error()(e)),
            }
        }
        Ok(())
    }

    /// Whether an open index was saved before the journal's `floor`.
    pub(super) fn any_before(&self, floor: u64) -> bool {
        self.open
            .values()
            .any(|i| i.tag().is_some_and(|tag| tag < floor))
    }

    /// List in `damaged` each open index saved before the journal's
    /// `floor` (the changes in between are gone).
    pub(super) fn find_trimmed(&self, floor: u64, damaged: &mut BTreeMap<T, String>) {
        for (t, idx) in &self.open {
            if let Some(tag) = idx.tag().filter(|tag| *tag < floor) {
                damaged.insert(
                    t.clone(),
                    format!(
                        "was saved at journal position {tag}, but the store's journal is \
                         trimmed through {floor}: the changes in between are missing"
                    ),
                );
            }
        }
    }

    /// List in `damaged` each type whose index holds another number of
    /// rows than the store counts (`want`; an open index of a type the
    /// store has none of must be empty, a counted type must have one).
    pub(super) fn find_miscounted(
        &self,
        want: &BTreeMap<T, u64>,
        damaged: &mut BTreeMap<T, String>,
    ) {
        let types: std::collections::BTreeSet<&T> = self.open.keys().chain(want.keys()).collect();
        for t in types {
            if damaged.contains_key(t) {
                continue;
            }
            let idx = self.open.get(t);
            let have = idx.map_or(0, |i| i.len() as u64);
            let want = want.get(t).copied().unwrap_or(0);
            if have != want {
                let what = match idx {
                    Some(_) => format!("holds {have} rows"),
                    None => "is missing".to_string(),
                };
                damaged.insert(
                    t.clone(),
                    format!("{what}, but the store has {}", t.counted(want)),
                );
            }
        }
    }

    /// Take the damaged indexes out (dropped unsaved).
    pub(super) fn drop_damaged(&mut self, damaged: &BTreeMap<T, String>) {
        self.open.retain(|t, _| !damaged.contains_key(t));
    }

    /// The directories after a rebuild of `target` switches to `fresh`.
    pub(super) fn dirs_after(&self, fresh: &Fresh<T>, target: &Target) -> BTreeMap<T, String> {
        let mut dirs = self.dirs.clone();
        dirs.retain(|t, _| !t.targeted(target));
        for (t, (name, _)) in fresh {
            dirs.insert(t.clone(), name.clone());
        }
        dirs
    }

    /// Switch to rebuilt indexes (the store names `dirs` already): the
    /// old indexes of `target` are dropped unsaved. Returns the names of
    /// the directories no longer used.
    pub(super) fn switch(
        &mut self,
        fresh: Fresh<T>,
        target: &Target,
        dirs: BTreeMap<T, String>,
    ) -> Vec<String> {
        self.open.retain(|t, _| !t.targeted(target));
        for (t, (_, idx)) in fresh {
            self.open.insert(t, Arc::new(idx));
        }
        let old = std::mem::replace(&mut self.dirs, dirs);
        old.into_iter()
            .filter(|(t, name)| self.dirs.get(t) != Some(name))
            .map(|(_, name)| name)
            .collect()
    }

    /// Take in indexes rebuilt in a read-only open's scratch directory
    /// (the recorded directory names stay).
    pub(super) fn take_scratch(&mut self, fresh: Fresh<T>) {
        for (t, (_, idx)) in fresh {
            self.open.insert(t, Arc::new(idx));
        }
    }
}

/// Every derived similarity index of an engine (see the module docs).
#[derive(Clone, Default)]
pub(super) struct IndexSet {
    pub(super) units: Family<UnitType>,
    pub(super) sims: Family<SimprintType>,
}

impl IndexSet {
    /// The unit index of `t`.
    pub(super) fn unit(&self, t: UnitType) -> Option<Arc<ShardedIndex<u64>>> {
        self.units.get(&t)
    }

    /// The simprint index of `kind`.
    pub(super) fn simprint(&self, kind: &SimprintType) -> Option<Arc<sims::SimprintIndex>> {
        self.sims.get(kind)
    }

    /// Every index, unit types first, each with its label for messages.
    pub(super) fn every(&self) -> Vec<(String, Arc<dyn Derived>)> {
        let units = self
            .units
            .open
            .iter()
            .map(|(t, i)| (t.label(), Arc::clone(i) as Arc<dyn Derived>));
        let sims = self
            .sims
            .open
            .iter()
            .map(|(k, i)| (k.label(), Arc::clone(i) as Arc<dyn Derived>));
        units.chain(sims).collect()
    }
}

/// What maintenance does to any derived index, whatever its key.
pub(super) trait Derived: Send + Sync {
    /// `ShardedIndex::save_tagged`.
    fn save_tagged(&self, seq: u64) -> Result<(), ShardedError>;
    /// `ShardedIndex::compact`.
    fn compact(&self) -> Result<usize, ShardedError>;
    /// Wait for its shard rotations and merges.
    fn drain(&self) -> Result<(), ShardedError>;
    /// `ShardedIndex::settle`.
    fn settle(&self) -> Result<(), ShardedError>;
    /// `ShardedIndex::close`.
    fn close(&self) -> Result<(), ShardedError>;
}

impl<K: ShardKey> Derived for ShardedIndex<K> {
    fn save_tagged(&self, seq: u64) -> Result<(), ShardedError> {
        ShardedIndex::save_tagged(self, seq)
    }

    fn compact(&self) -> Result<usize, ShardedError> {
        ShardedIndex::compact(self)
    }

    fn drain(&self) -> Result<(), ShardedError> {
        self.drain_rotations()?;
        self.drain_merges()
    }

    fn settle(&self) -> Result<(), ShardedError> {
        ShardedIndex::settle(self)
    }

    fn close(&self) -> Result<(), ShardedError> {
        ShardedIndex::close(self)
    }
}

/// The engine's current [`IndexSet`], swapped whole.
#[derive(Default)]
pub(super) struct Published(RwLock<Arc<IndexSet>>);

impl Published {
    /// The current set (the guard is held for the `Arc` clone only).
    pub(super) fn get(&self) -> Arc<IndexSet> {
        Arc::clone(&self.0.read())
    }

    /// Make `set` the current set.
    pub(super) fn put(&self, set: IndexSet) {
        *self.0.write() = Arc::new(set);
    }

    /// Take the current set out, leaving an empty one (close).
    pub(super) fn take(&self) -> Arc<IndexSet> {
        std::mem::take(&mut *self.0.write())
    }
}
