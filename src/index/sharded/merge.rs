//! Tiered merging: sealed shards are merged into larger ones, so a growing
//! index keeps O(log N) shards and a search visits few.
//!
//! Policy (as Lucene's log merge policy merges adjacent segments): a
//! shard's *tier* is `round(log_f(bytes / shard_size))` — a rotated shard is
//! tier 0, `f` of them merged tier 1, and so on. When `merge_factor` (`f`)
//! adjacent sealed shards share a tier they are merged into one, lowest
//! tier first, as long as the result stays under `max_merged_size`. So N
//! rows end in at most `f - 1` shards per tier: O(log_f N) shards.
//!
//! A merge reads the live rows of its shards (tombstoned rows are dropped),
//! writes them as one new shard file generation under the id of the newest
//! of them, and commits it like any shard change: the merged shard replaces
//! its sources in the shard list in one step under the state lock, then one
//! manifest rename makes the new set current. A crash before that rename
//! leaves the old set (the new files are leftovers, removed on the next
//! open); after it, the new set (the old files are the leftovers). Either
//! set is complete.
//!
//! Why the merged shard takes the newest id: a tombstone hides a key in
//! every shard up to an id, and a key's live copy is always its newest copy,
//! so a live row moved up to the newest id of its run stays live, and every
//! tombstone written during the merge (for a key of the run) names an id at
//! or past it. Rows killed while the merge ran are therefore still hidden in
//! the merged shard, and counted as its dead rows.
//!
//! Merges run while adds, searches and removes go on: only a merge and a
//! compaction exclude each other (`maintenance` lock). With
//! `background_rotation` they run on a merger thread and rotations wait
//! (back-pressure) while more than `max_pending_merges` merges are owed;
//! otherwise they run inline after the rotation that completes a tier.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::key::{KeyTable, ShardKey};
use super::shard::{self, Shard};
use super::tombstones::Tombstones;
use super::{io_at, Inner, ShardedError, ShardedIndex, State};
use crate::index::UnitIndex;
use crate::sync::{catch_panic, lock, wait};

/// Rows added to a merged shard per call: a stop request is seen between
/// chunks.
const MERGE_CHUNK: usize = 65_536;

/// The merger thread's shared state.
#[derive(Default)]
pub(super) struct MergeState {
    /// A merge pass was asked for and has not started.
    wanted: bool,
    /// A merge pass is running.
    running: bool,
    /// Stop merging: the index is closing.
    stop: bool,
    /// The last failure of a background merge (cleared when read).
    error: Option<ShardedError>,
    /// Merges completed by this handle.
    pub(super) done: u64,
}

/// What [`ShardedIndex::merge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeReport {
    /// Merges committed.
    pub merges: usize,
    /// Shards merged away (sources minus results).
    pub shards_removed: usize,
    /// Tombstoned or superseded rows the merges dropped.
    pub rows_dropped: u64,
}

/// The tier of a shard of `bytes` bytes.
fn tier(bytes: u64, shard_size: u64, factor: usize) -> u32 {
    let ratio = (bytes as f64 / shard_size.max(1) as f64).max(1.0);
    (ratio.ln() / (factor.max(2) as f64).ln()).round() as u32
}

/// The next automatic merge: the first run of `merge_factor` adjacent,
/// durable shards of the lowest tier that has one, within the size cap.
fn plan_tiered(sealed: &[Arc<Shard>], o: &super::ShardedOptions) -> Option<Range<usize>> {
    let f = o.merge_factor;
    if f < 2 || sealed.len() < f {
        return None;
    }
    let tiers: Vec<Option<u32>> = sealed
        .iter()
        .map(|s| (s.is_durable() && s.gen() > 0).then(|| tier(s.file_bytes(), o.shard_size, f)))
        .collect();
    let mut best: Option<(u32, Range<usize>)> = None;
    for start in 0..=sealed.len() - f {
        let Some(t) = tiers[start] else { continue };
        if !tiers[start..start + f].iter().all(|x| *x == Some(t)) {
            continue;
        }
        let bytes: u64 = sealed[start..start + f]
            .iter()
            .map(|s| s.file_bytes())
            .sum();
        if bytes > o.max_merged_size {
            continue;
        }
        if best.as_ref().is_none_or(|(bt, _)| t < *bt) {
            best = Some((t, start..start + f));
        }
    }
    best.map(|(_, r)| r)
}

/// Merges the tiers owe now: disjoint runs found one after another.
fn backlog(sealed: &[Arc<Shard>], o: &super::ShardedOptions) -> usize {
    let mut rest: Vec<Arc<Shard>> = sealed.to_vec();
    let mut owed = 0;
    while let Some(r) = plan_tiered(&rest, o) {
        owed += 1;
        rest.drain(r);
    }
    owed
}

/// The next forced merge towards `max_shards` sealed shards: the adjacent
/// run (of up to `merge_factor`, at least 2, shards) with the fewest bytes
/// that fits the size cap.
fn plan_forced(
    sealed: &[Arc<Shard>],
    o: &super::ShardedOptions,
    max_shards: usize,
) -> Option<Range<usize>> {
    let n = sealed.len();
    if n <= max_shards.max(1) {
        return None;
    }
    let width = (n - max_shards.max(1) + 1)
        .min(o.merge_factor.max(2))
        .max(2);
    (0..=n.saturating_sub(width))
        .map(|s| s..s + width)
        .filter(|r| {
            sealed[r.clone()]
                .iter()
                .all(|s| s.is_durable() && s.gen() > 0)
        })
        .map(|r| {
            (
                sealed[r.clone()]
                    .iter()
                    .map(|s| s.file_bytes())
                    .sum::<u64>(),
                r,
            )
        })
        .filter(|(bytes, _)| *bytes <= o.max_merged_size)
        .min_by_key(|(bytes, r)| (*bytes, r.start))
        .map(|(_, r)| r)
}

/// A run of shards rewritten by [`Inner::rewrite_live`].
pub(super) struct Rewritten {
    /// The new shard, mapped (`None`: no live row was left).
    pub(super) shard: Option<Arc<Shard>>,
    /// Tombstoned rows left out.
    pub(super) dropped: u64,
}

impl Inner {
    /// The live rows of `run` (tombstoned ones dropped, oldest shard first)
    /// written as one new shard under the newest id of the run, mapped. This
    /// is a merge of several shards and the compaction of one. `Ok(None)`
    /// when `stop` turned true between chunks (nothing is left behind).
    pub(super) fn rewrite_live(
        &self,
        run: &[Arc<Shard>],
        tomb: &Tombstones,
        stop: &dyn Fn() -> bool,
    ) -> Result<Option<Rewritten>, ShardedError> {
        let Some(last) = run.last() else {
            return Ok(Some(Rewritten {
                shard: None,
                dropped: 0,
            }));
        };
        let id = last.id;
        let mut labels = Vec::new();
        let mut bodies = Vec::new();
        let mut table = last.table.as_ref().map(|_| KeyTable::default());
        let mut read = 0usize;
        for s in run {
            let mut pos = 0;
            loop {
                let rows = s.index.rows(pos, 4096);
                if rows.is_empty() {
                    break;
                }
                pos += rows.len();
                read += rows.len();
                for (label, body) in rows {
                    let Some(key) = s.key(label) else { continue };
                    if tomb.is_dead(key, s.id) {
                        continue;
                    }
                    if let Some(t) = table.as_mut() {
                        t.insert(label, key);
                    }
                    labels.push(label);
                    bodies.push(body);
                }
            }
        }
        let dropped = (read - labels.len()) as u64;
        if labels.is_empty() {
            return Ok(Some(Rewritten {
                shard: None,
                dropped,
            }));
        }
        let index = UnitIndex::new(self.options.unit())?;
        for (ls, bs) in labels.chunks(MERGE_CHUNK).zip(bodies.chunks(MERGE_CHUNK)) {
            if stop() {
                return Ok(None);
            }
            index.add_batch(ls, bs)?;
        }
        drop(bodies);
        // The graph these adds wanted is built in the background: wait for
        // it, so the shard is saved with it (a failed build leaves the shard
        // scan-only, which is still exact).
        // A partition they started likewise (see `unit/retrain.rs`).
        let _ = index.settle();
        let _ = index.wait_graph();
        let fresh = Shard::from_parts(id, index, table);
        let gen = self.next_gen.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = fresh.save(&self.dir, gen) {
            for name in shard::file_names(id, gen) {
                let _ = std::fs::remove_file(self.dir.join(name));
            }
            return Err(e);
        }
        let mapped = Shard::open(&self.dir, &fresh.entry(), self.kind, true)?;
        Ok(Some(Rewritten {
            shard: Some(Arc::new(mapped)),
            dropped,
        }))
    }

    fn stopping(&self) -> bool {
        lock(&self.merge).stop
    }

    /// Ask a running merger thread for a pass (a shard became durable).
    pub(super) fn wake_merger(&self) {
        if self.options.merging() {
            lock(&self.merge).wanted = true;
            self.merge_cv.notify_all();
        }
    }

    /// Merge the run `plan` picks, if any: `Ok(None)` when there is nothing
    /// to merge (or the merge was abandoned for a close), else the rows it
    /// dropped.
    fn merge_step(
        &self,
        plan: impl FnOnce(&State) -> Option<Range<usize>>,
    ) -> Result<Option<(usize, u64)>, ShardedError> {
        let _m = lock(&self.maintenance);
        let (run, tomb, dead_before) = {
            let st = self.state.read();
            let Some(range) = plan(&st) else {
                return Ok(None);
            };
            let run: Vec<Arc<Shard>> = st.sealed[range].to_vec();
            let dead: HashMap<u32, u64> = run
                .iter()
                .map(|s| (s.id, st.dead.get(&s.id).copied().unwrap_or(0)))
                .collect();
            (run, Arc::clone(&st.tombstones), dead)
        };
        let Some(id) = run.last().map(|s| s.id) else {
            return Ok(None);
        };
        let Some(Rewritten {
            shard: merged,
            dropped,
        }) = self.rewrite_live(&run, &tomb, &|| self.stopping())?
        else {
            return Ok(None);
        };
        {
            let mut st = self.state.write();
            let pos = st.sealed.iter().position(|s| Arc::ptr_eq(s, &run[0]));
            let intact = pos.is_some_and(|p| {
                st.sealed.len() >= p + run.len()
                    && st.sealed[p..p + run.len()]
                        .iter()
                        .zip(&run)
                        .all(|(a, b)| Arc::ptr_eq(a, b))
            });
            let Some(pos) = pos.filter(|_| intact) else {
                // Only a compaction replaces sealed shards, and it excludes
                // merges: unreachable, but never swap a changed run.
                if let Some(m) = &merged {
                    st.garbage.extend(shard::file_names(m.id, m.gen()));
                }
                return Ok(None);
            };
            // Rows of the run killed while it merged are in the merged
            // shard and hidden there by their tombstones.
            let mut killed_since = 0;
            for s in &run {
                let now = st.dead.remove(&s.id).unwrap_or(0);
                killed_since += now.saturating_sub(dead_before.get(&s.id).copied().unwrap_or(0));
                st.garbage.extend(shard::file_names(s.id, s.gen()));
            }
            match merged {
                Some(m) => {
                    if killed_since > 0 {
                        st.dead.insert(id, killed_since);
                    }
                    st.sealed.splice(pos..pos + run.len(), [m]);
                }
                None => {
                    st.sealed.drain(pos..pos + run.len());
                }
            }
        }
        crate::fault::check(&self.dir.join("merge.commit")).map_err(io_at(&self.dir))?;
        self.commit()?;
        lock(&self.merge).done += 1;
        self.merge_cv.notify_all();
        Ok(Some((run.len(), dropped)))
    }

    /// Run automatic merges until the policy finds none (or a close stops
    /// them).
    pub(super) fn merge_tiers(&self) -> Result<(), ShardedError> {
        while !self.stopping() {
            let o = self.options;
            if self.merge_step(|st| plan_tiered(&st.sealed, &o))?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Merges the tiers owe now.
    pub(super) fn merge_backlog(&self) -> usize {
        backlog(&self.state.read().sealed, &self.options)
    }
}

impl<K: ShardKey> ShardedIndex<K> {
    /// Merge sealed shards until at most `max_shards` (at least 1) remain,
    /// smallest adjacent runs first, within `max_merged_size` (so fewer may
    /// not be reachable). Tombstoned rows are dropped on the way. Each merge
    /// commits on its own (see the module docs of `merge`). Runs on the
    /// calling thread, beside adds and searches; waits for a background
    /// merge or compaction first.
    pub fn merge(&self, max_shards: usize) -> Result<MergeReport, ShardedError> {
        self.check_owner()?;
        self.drain_rotations()?;
        let o = self.inner.options;
        let mut report = MergeReport::default();
        while let Some((sources, dropped)) = self
            .inner
            .merge_step(|st| plan_forced(&st.sealed, &o, max_shards))?
        {
            report.merges += 1;
            report.shards_removed += sources.saturating_sub(1);
            report.rows_dropped += dropped;
            if self.inner.stopping() {
                break;
            }
        }
        Ok(report)
    }

    /// Wait until no automatic merge is owed or running, and return the
    /// last background merge failure, if any.
    pub fn drain_merges(&self) -> Result<(), ShardedError> {
        self.check_open()?;
        if self.read_only() || !self.inner.options.merging() {
            return Ok(());
        }
        self.drain_rotations()?;
        if self.inner.options.background_rotation {
            self.request_merge()?;
            let mut m = lock(&self.inner.merge);
            while m.wanted || m.running {
                m = wait(&self.inner.merge_cv, m);
            }
            if let Some(e) = m.error.take() {
                return Err(e);
            }
            drop(m);
            // A close meanwhile stopped the merger with the pass undone.
            self.check_open()
        } else {
            self.inner.merge_tiers()
        }
    }

    /// Merges completed by this handle (automatic and forced).
    pub fn merges_done(&self) -> u64 {
        lock(&self.inner.merge).done
    }

    /// After a rotation: merge inline, or wake the merger thread and wait
    /// while too many merges are owed (back-pressure).
    pub(super) fn after_rotation(&self) -> Result<(), ShardedError> {
        if !self.inner.options.merging() || self.inner.detached {
            return Ok(());
        }
        if !self.inner.options.background_rotation {
            return self.inner.merge_tiers();
        }
        self.request_merge()?;
        let mut m = lock(&self.inner.merge);
        while m.error.is_none()
            && !m.stop
            && (m.wanted || m.running)
            && self.inner.merge_backlog() > self.inner.options.max_pending_merges
        {
            m = wait(&self.inner.merge_cv, m);
        }
        Ok(())
    }

    /// Ask the merger thread (started on first use) for a merge pass.
    fn request_merge(&self) -> Result<(), ShardedError> {
        let mut merger = lock(&self.merger);
        if merger.is_none() {
            let inner = Arc::clone(&self.inner);
            let handle = std::thread::Builder::new()
                .name("ivdb-merge".into())
                .spawn(move || merger_loop(&inner))
                .map_err(io_at(&self.inner.dir))?;
            *merger = Some(handle);
        }
        let mut m = lock(&self.inner.merge);
        m.wanted = true;
        self.inner.merge_cv.notify_all();
        Ok(())
    }

    /// Stop the merger thread: a merge in progress is abandoned between
    /// chunks (its files are leftovers, removed on the next open).
    pub(super) fn stop_merger(&self) {
        let handle = lock(&self.merger).take();
        if let Some(handle) = handle {
            lock(&self.inner.merge).stop = true;
            self.inner.merge_cv.notify_all();
            let _ = handle.join();
            let mut m = lock(&self.inner.merge);
            // A pass asked for and never run is off: no thread is left to
            // run it, and drain_merges waits while one is wanted.
            m.stop = false;
            m.wanted = false;
            self.inner.merge_cv.notify_all();
        }
    }
}

/// The merger thread: a merge pass per request, until stopped.
fn merger_loop(inner: &Inner) {
    loop {
        {
            let mut m = lock(&inner.merge);
            while !m.stop && !m.wanted {
                m = wait(&inner.merge_cv, m);
            }
            if m.stop {
                return;
            }
            m.wanted = false;
            m.running = true;
        }
        // A panic must still clear `running`: force_merge and back-pressure
        // wait for it.
        let result = catch_panic(|| inner.merge_tiers()).unwrap_or_else(|message| {
            Err(ShardedError::Panicked {
                task: "merger thread",
                message,
            })
        });
        let mut m = lock(&inner.merge);
        m.running = false;
        if let Err(e) = result {
            m.error = Some(e);
        }
        inner.merge_cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::tier;

    #[test]
    fn tiers_grow_by_the_merge_factor() {
        let s = 1000;
        assert_eq!(tier(0, s, 4), 0);
        assert_eq!(tier(900, s, 4), 0);
        assert_eq!(tier(1100, s, 4), 0);
        assert_eq!(tier(3800, s, 4), 1);
        assert_eq!(tier(4100, s, 4), 1);
        assert_eq!(tier(15_000, s, 4), 2);
        assert_eq!(tier(64_000, s, 4), 3);
    }
}
