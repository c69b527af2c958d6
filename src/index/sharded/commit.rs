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
use super::{io_at, Inner, ShardedError};
use crate::index::durable;
use crate::lockfile::{DirLock, LockError};
use crate::sync::{lock, RwLockExt};

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
        let old = frozen.gen();
        let gen = self.next_gen.fetch_add(1, Ordering::AcqRel);
        frozen.save(&self.dir, gen)?;
        let mapped = Arc::new(Shard::open(&self.dir, &frozen.entry(), self.kind, true)?);
        {
            let mut st = self.state.write_or_recover();
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
        let (mut manifest, bloom, bloom_version, tomb, tomb_version, garbage) = {
            let mut st = self.state.write_or_recover();
            // The latest files of every shard: a shard still rotating is
            // listed with its last saved version, so nothing durable is
            // ever dropped from the manifest.
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
            let bloom = (st.bloom_version != st.bloom_saved).then(|| st.bloom.clone());
            let tomb = (st.tomb_version != st.tomb_saved.0).then(|| Arc::clone(&st.tombstones));
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
            let garbage = std::mem::take(&mut st.garbage);
            (
                manifest,
                bloom,
                st.bloom_version,
                tomb,
                st.tomb_version,
                garbage,
            )
        };
        let restore_garbage = |g: Vec<String>| {
            let mut st = self.state.write_or_recover();
            st.garbage.extend(g);
        };
        let mut old_tomb = None;
        let result = (|| {
            if let Some(b) = &bloom {
                b.save(&self.dir.join(BLOOM))?;
            }
            if let Some(t) = &tomb {
                old_tomb = manifest.tombstones.take();
                if !t.is_empty() {
                    let gen = self.next_gen.fetch_add(1, Ordering::AcqRel);
                    let name = manifest::tombstone_name(gen);
                    let path = self.dir.join(&name);
                    durable::write(&path, &t.encode()).map_err(io_at(&path))?;
                    manifest.tombstones = Some(name);
                }
            }
            manifest.next_gen = self.next_gen.load(Ordering::Acquire);
            manifest.write(&self.dir)
        })();
        if let Err(e) = result {
            restore_garbage(garbage);
            return Err(e);
        }
        {
            let mut st = self.state.write_or_recover();
            if bloom.is_some() {
                st.bloom_saved = bloom_version;
            }
            if tomb.is_some() {
                st.tomb_saved = (tomb_version, manifest.tombstones.clone());
            }
        }
        let keep: HashSet<String> = manifest.files().into_iter().collect();
        let mut doomed = garbage;
        doomed.extend(old_tomb.filter(|t| Some(t) != manifest.tombstones.as_ref()));
        for name in doomed {
            if !keep.contains(&name) {
                // Best effort: a leftover is removed on the next open.
                let _ = fs::remove_file(self.dir.join(name));
            }
        }
        Ok(())
    }
}
