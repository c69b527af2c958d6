//! Making state durable: writing a rotated shard and committing the
//! manifest (after the bloom filter and tombstones it relies on), then
//! deleting the files it no longer names.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::manifest::{self, Manifest, ShardEntry, BLOOM, SHARDED_FORMAT_VERSION};
use super::shard::{self, Shard};
use super::tombstones::Tombstones;
use super::{io_at, Inner, ShardedError};
use crate::index::bloom::ScalableBloom;
use crate::index::durable;
use crate::lockfile::{DirLock, LockError};
use crate::sync::lock;

/// The writer lock of a sharded index directory.
pub(super) fn acquire_lock(dir: &Path) -> Result<DirLock, ShardedError> {
    DirLock::acquire(dir).map_err(|e| match e {
        LockError::Held | LockError::HeldHere => ShardedError::Locked {
            path: dir.to_path_buf(),
        },
        LockError::Io(source) => ShardedError::Io {
            path: dir.join("LOCK"),
            source,
        },
    })
}

impl Inner {
    /// Write a frozen shard, replace it by its memory-mapped copy, commit.
    pub(super) fn persist(&self, frozen: &Arc<Shard>) -> Result<(), ShardedError> {
        if frozen.is_durable() {
            return Ok(());
        }
        // A frozen shard takes no more writes, so no later writer's turn
        // would adopt a graph still being built for it: wait for it here
        // (the rotation's own thread or save, never an add's). A failed
        // build leaves the shard scan-only, which is still exact.
        let _ = frozen.index.settle();
        let _ = frozen.index.wait_graph();
        let old = frozen.gen();
        let gen = self.next_gen.fetch_add(1, Ordering::AcqRel);
        frozen.save(&self.dir, gen)?;
        let mapped = Arc::new(Shard::open(&self.dir, &frozen.entry(), self.kind, true)?);
        {
            let mut st = self.state.write();
            if let Some(slot) = st.sealed.iter_mut().find(|s| s.id == frozen.id) {
                *slot = mapped;
            }
            if old > 0 {
                st.garbage.extend(shard::file_names(frozen.id, old));
            }
        }
        self.commit()
    }

    /// Write the manifest for the current durable state (after the bloom
    /// filter and tombstones it needs), then delete superseded files.
    pub(super) fn commit(&self) -> Result<(), ShardedError> {
        if self.detached {
            return Ok(());
        }
        let _c = lock(&self.commit);
        let mut plan = self.plan_commit();
        let old_tomb = match self.write_plan(&mut plan) {
            Ok(old) => old,
            Err(e) => {
                // Nothing was committed: the files stay doomed for later.
                self.state.write().garbage.extend(plan.garbage);
                return Err(e);
            }
        };
        {
            let mut st = self.state.write();
            if plan.bloom.is_some() {
                st.bloom_saved = plan.bloom_version;
            }
            if plan.tomb.is_some() {
                st.tomb_saved = (plan.tomb_version, plan.manifest.tombstones.clone());
            }
        }
        let keep: HashSet<String> = plan.manifest.files().into_iter().collect();
        let mut doomed = plan.garbage;
        doomed.extend(old_tomb.filter(|t| Some(t) != plan.manifest.tombstones.as_ref()));
        for name in doomed {
            if !keep.contains(&name) {
                // Best effort: a leftover is removed on the next open.
                let _ = fs::remove_file(self.dir.join(name));
            }
        }
        Ok(())
    }

    /// What a commit writes, taken from the state in one step: the manifest
    /// of the latest durable files, the bloom filter and tombstones when
    /// they changed since last saved, and the files to delete after.
    fn plan_commit(&self) -> CommitPlan {
        let mut st = self.state.write();
        // The latest files of every shard: a shard still rotating is
        // listed with its last saved version, so nothing durable is ever
        // dropped from the manifest.
        let sealed: Vec<ShardEntry> = st
            .sealed
            .iter()
            .filter(|s| s.gen() > 0)
            .map(|s| s.entry())
            .collect();
        let active = st.active.as_ref().map(|a| a.entry()).unwrap_or(ShardEntry {
            id: st.sealed.last().map_or(0, |s| s.id + 1),
            gen: 0,
            rows: 0,
        });
        let manifest = Manifest {
            format: SHARDED_FORMAT_VERSION,
            key_kind: self.kind,
            options: self.options,
            next_gen: 0,
            next_label: st.next_label,
            sealed,
            active,
            tombstones: st.tomb_saved.1.clone(),
            bloom_count: st.bloom.count(),
            tag: st.tag,
        };
        CommitPlan {
            manifest,
            bloom: (st.bloom_version != st.bloom_saved).then(|| st.bloom.clone()),
            bloom_version: st.bloom_version,
            tomb: (st.tomb_version != st.tomb_saved.0).then(|| Arc::clone(&st.tombstones)),
            tomb_version: st.tomb_version,
            garbage: std::mem::take(&mut st.garbage),
        }
    }

    /// Write the plan's bloom filter and tombstones, then its manifest (the
    /// commit point). Returns the tombstone file the manifest no longer
    /// names.
    fn write_plan(&self, plan: &mut CommitPlan) -> Result<Option<String>, ShardedError> {
        let mut old_tomb = None;
        if let Some(b) = &plan.bloom {
            b.save(&self.dir.join(BLOOM))?;
        }
        if let Some(t) = &plan.tomb {
            old_tomb = plan.manifest.tombstones.take();
            if !t.is_empty() {
                let gen = self.next_gen.fetch_add(1, Ordering::AcqRel);
                let name = manifest::tombstone_name(gen);
                let path = self.dir.join(&name);
                durable::write(&path, &t.encode()).map_err(io_at(&path))?;
                plan.manifest.tombstones = Some(name);
            }
        }
        plan.manifest.next_gen = self.next_gen.load(Ordering::Acquire);
        plan.manifest.write(&self.dir)?;
        Ok(old_tomb)
    }
}

/// See [`Inner::plan_commit`].
struct CommitPlan {
    manifest: Manifest,
    bloom: Option<ScalableBloom>,
    bloom_version: u64,
    tomb: Option<Arc<Tombstones>>,
    tomb_version: u64,
    garbage: Vec<String>,
}
