//! Persistence and upkeep: save (optionally tagged with the engine's journal
//! position), the bloom filter rebuild, compaction, reset and close.

use super::key::ShardKey;
use super::shard::Shard;
use super::tombstones::Tombstones;
use super::{shard, ShardedError, ShardedIndex};
use crate::sync::lock;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl<K: ShardKey> ShardedIndex<K> {
    /// Make the current state durable: drain rotations, write the active
    /// shard (if changed), the bloom filter, tombstones and the manifest.
    pub fn save(&self) -> Result<(), ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.save_locked(None)
    }

    /// [`ShardedIndex::save`], recording `tag` in the manifest as the
    /// caller's position (e.g. a journal sequence number) that the saved
    /// state reflects. Later commits (rotations) keep it until the next
    /// tagged save; [`ShardedIndex::tag`] reads it back after an open.
    pub fn save_tagged(&self, tag: u64) -> Result<(), ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.save_locked(Some(tag))
    }

    fn save_locked(&self, tag: Option<u64>) -> Result<(), ShardedError> {
        self.drain_rotations()?;
        let active = self.read().active.clone();
        if let Some(a) = active {
            if !a.is_durable() && (a.len() > 0 || a.gen() > 0) {
                let old = a.gen();
                let gen = self.inner.next_gen.fetch_add(1, Ordering::AcqRel);
                a.save(&self.inner.dir, gen)?;
                if old > 0 {
                    self.write().garbage.extend(shard::file_names(a.id, old));
                }
            }
        }
        // A filter that had to chain many times is slow to query: resize it
        // to the real key count.
        if self.read().bloom.filters() > 3 {
            self.rebuild_bloom_locked();
        }
        if let Some(t) = tag {
            // No rotation is in flight (drained above, and new ones need
            // the writer lock), so the next commit is this save's.
            self.write().tag = Some(t);
        }
        self.inner.commit()?;
        self.inner.dirty.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// Rebuild the bloom filter from the live keys (sized to their number)
    /// and save it. Returns the number of keys.
    pub fn rebuild_bloom(&self) -> Result<usize, ShardedError> {
        self.check_open()?;
        let _w = lock(&self.inner.writer);
        let n = self.rebuild_bloom_locked();
        if !self.read_only() {
            self.inner.commit()?;
        }
        Ok(n)
    }

    fn rebuild_bloom_locked(&self) -> usize {
        let (shards, tomb) = {
            let st = self.read();
            (st.shards(), Arc::clone(&st.tombstones))
        };
        let bloom = Self::build_bloom(
            self.inner.kind,
            self.inner.options.bloom_error_rate,
            shards.iter(),
            |s, key| !tomb.is_dead(key, s.id),
        );
        let n = shards.iter().map(|s| s.len()).sum::<usize>();
        let mut st = self.write();
        // Keys added since the snapshot were inserted into the old filter
        // only; a writer holds the lock, so there are none.
        st.bloom = bloom;
        st.bloom_version += 1;
        n - st.dead_total() as usize
    }

    /// Rewrite sealed shards without their tombstoned rows, drop shards left
    /// empty, clear tombstones, rebuild the bloom filter and save. Returns
    /// the number of rows removed.
    pub fn compact(&self) -> Result<usize, ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.drain_rotations()?;
        let _m = lock(&self.inner.maintenance);
        let (sealed, tomb, dead) = {
            let st = self.read();
            (
                st.sealed.clone(),
                Arc::clone(&st.tombstones),
                st.dead.clone(),
            )
        };
        let mut removed = 0u64;
        let mut replaced: Vec<(u32, Option<Arc<Shard>>)> = Vec::new();
        for s in &sealed {
            if dead.get(&s.id).copied().unwrap_or(0) == 0 {
                continue;
            }
            // Never stopped (`|| false`), so always rewritten.
            if let Some(r) = self
                .inner
                .rewrite_live(std::slice::from_ref(s), &tomb, &|| false)?
            {
                removed += r.dropped;
                replaced.push((s.id, r.shard));
            }
        }
        {
            let mut st = self.write();
            for (id, new) in replaced {
                let Some(pos) = st.sealed.iter().position(|s| s.id == id) else {
                    continue;
                };
                let old_gen = st.sealed[pos].gen();
                st.garbage.extend(shard::file_names(id, old_gen));
                match new {
                    Some(n) => st.sealed[pos] = n,
                    None => {
                        st.sealed.remove(pos);
                    }
                }
            }
            st.dead.clear();
            st.tombstones = Arc::new(Tombstones::default());
            st.tomb_version += 1;
        }
        self.rebuild_bloom_locked();
        self.save_locked(None)?;
        Ok(removed as usize)
    }

    /// Remove every key, durably at once: one manifest commit names no
    /// shard, then the old shard files are deleted (a crash before the
    /// commit leaves the old index, after it an empty one). Returns the
    /// number of live keys removed. Unlike iscc-usearch's `reset`, which
    /// empties only memory (the rows come back when the directory is opened
    /// again), nothing removed here ever returns. If the commit fails, the
    /// index is already empty in memory and the next save (or reset)
    /// commits that.
    pub fn reset(&self) -> Result<usize, ShardedError> {
        self.check_owner()?;
        let _w = lock(&self.inner.writer);
        self.drain_rotations()?;
        // No merge or compaction runs beside it.
        let _m = lock(&self.inner.maintenance);
        let next_id = {
            let st = self.read();
            st.shards().iter().map(|s| s.id + 1).max().unwrap_or(0)
        };
        let fresh = Arc::new(Shard::new(
            next_id,
            self.inner.kind,
            self.inner.options.unit(),
        )?);
        let removed = {
            let mut st = self.write();
            let removed = st.len();
            for s in st.shards() {
                if s.gen() > 0 {
                    st.garbage.extend(shard::file_names(s.id, s.gen()));
                }
            }
            st.sealed.clear();
            st.active = Some(fresh);
            st.dead.clear();
            st.tombstones = Arc::new(Tombstones::default());
            st.tomb_version += 1;
            st.bloom = Self::build_bloom(
                self.inner.kind,
                self.inner.options.bloom_error_rate,
                std::iter::empty(),
                |_, _| true,
            );
            st.bloom_version += 1;
            st.active_bytes = 0;
            st.since_measure = usize::MAX / 2;
            removed
        };
        self.inner.commit()?;
        self.inner.dirty.store(0, Ordering::Relaxed);
        Ok(removed)
    }

    /// Wait for the active shard's partition attempt in progress (or one
    /// due), and adopt it, so that the next save writes it. A close does
    /// this: an attempt cut short by a close was lost, and one that never
    /// finished within a process's life (a bulk load closed right after
    /// its last add, a CLI run) left its shard scanning every row on the
    /// next open. It costs the attempt's training time (seconds at 1M rows).
    pub fn settle(&self) -> Result<(), ShardedError> {
        if self.read_only() {
            return Ok(());
        }
        let _w = lock(&self.inner.writer);
        self.settle_locked()
    }

    fn settle_locked(&self) -> Result<(), ShardedError> {
        let active = self.read().active.clone();
        match active {
            Some(a) if !a.index.is_read_only() => Ok(a.index.settle()?),
            _ => Ok(()),
        }
    }

    /// Drain rotations, settle the active shard ([`ShardedIndex::settle`]),
    /// save (when writable and changed) and close; later calls return
    /// [`ShardedError::Closed`].
    pub fn close(&self) -> Result<(), ShardedError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        // A merge in progress is abandoned (its files are leftovers).
        self.stop_merger();
        let result = if self.read_only() {
            Ok(())
        } else {
            let _w = lock(&self.inner.writer);
            // A failed attempt leaves the shard as it was, which is exact.
            let _ = self.settle_locked();
            let st = self.read();
            let changed = self.inner.dirty.load(Ordering::Relaxed) > 0
                || st.sealed.iter().any(|s| !s.is_durable())
                || st.active.as_ref().is_some_and(|a| !a.is_durable());
            drop(st);
            if changed {
                self.save_locked(None)
            } else {
                self.drain_rotations()
            }
        };
        self.inner.closed.store(true, Ordering::Release);
        self.stop_worker();
        lock(&self.inner.dir_lock).take();
        result
    }
}
