//! Promotion: the saved active shard opens memory-mapped (opening stays
//! cheap) and must be read into RAM before it can take a write.
//!
//! At 1M rows that read — the file, the compact graph expanded, the key
//! map built — takes about a second, and it used to fall on the first write
//! after open (a REST `add` answering in a second). A writable open now
//! starts it on a thread at once ([`ShardedIndex::start_promotion`]); the
//! first write adopts the finished copy, waits for the one under way, or —
//! when none matches the active shard any more — reads it itself.
//!
//! The background copy is tagged with the shard's id, file generation and
//! rows, and adopted only when all still match: a mapped shard's rows
//! change only through a write, which promotes first (under the writer
//! lock), and files rewritten by a save or a compaction carry a new
//! generation. Nothing is
//! written to disk here, so a kill at any point loses nothing.

use super::shard::{self, Shard};
use super::{ShardKey, ShardedError, ShardedIndex};
use crate::index::{IndexError, UnitIndex};
use crate::sync::lock;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A read of the active shard into RAM running (or done) on a thread.
pub(super) struct Promotion {
    id: u32,
    gen: u64,
    rows: usize,
    handle: JoinHandle<Result<UnitIndex, IndexError>>,
}

impl<K: ShardKey> ShardedIndex<K> {
    /// Start reading the mapped active shard into RAM on a thread (writable
    /// opens only; nothing to do for an active shard already in RAM).
    pub(super) fn start_promotion(&self) {
        if self.inner.read_only || self.inner.detached {
            return;
        }
        let Some(active) = self.mapped_active() else {
            return;
        };
        let (id, gen, rows) = (active.id, active.gen(), active.len());
        let path: PathBuf = shard::main_path(&self.inner.dir, id, gen);
        let spawned = std::thread::Builder::new()
            .name("ivdb-promote".into())
            .spawn(move || {
                let index = UnitIndex::restore(&path, false)?;
                index.prepare_writes();
                Ok(index)
            });
        // A thread that cannot start leaves the read to the first write.
        if let Ok(handle) = spawned {
            *lock(&self.inner.promotion) = Some(Promotion {
                id,
                gen,
                rows,
                handle,
            });
        }
    }

    /// The active shard when it is still the memory-mapped one of the open.
    fn mapped_active(&self) -> Option<Arc<Shard>> {
        let active = self.read().active.clone()?;
        active.index.is_read_only().then_some(active)
    }

    /// The background copy of shard `id` generation `gen`, when one was
    /// started for exactly that shard and succeeded (waits for it to finish).
    fn take_promotion(&self, id: u32, gen: u64, rows: usize) -> Option<UnitIndex> {
        let p = lock(&self.inner.promotion).take()?;
        if (p.id, p.gen, p.rows) != (id, gen, rows) {
            return None;
        }
        match p.handle.join() {
            Ok(Ok(index)) if index.len() == rows && !index.is_read_only() => Some(index),
            // A failed or panicked read is redone inline, so its error is
            // reported by the write that needs it.
            _ => None,
        }
    }

    /// Read a memory-mapped active shard (after open) into RAM, under the
    /// writer lock, before the first change to it.
    pub(super) fn promote_active(&self) -> Result<(), ShardedError> {
        let Some(active) = self.mapped_active() else {
            return Ok(());
        };
        let (id, gen) = (active.id, active.gen());
        let index = match self.take_promotion(id, gen, active.len()) {
            Some(index) => index,
            None => UnitIndex::restore(shard::main_path(&self.inner.dir, id, gen), false)?,
        };
        let table = active.table.as_ref().map(|t| t.read().clone());
        let promoted = Shard::from_parts(id, index, table);
        promoted.adopt_files(&active);
        let mut st = self.write();
        st.active = Some(Arc::new(promoted));
        st.since_measure = usize::MAX / 2;
        Ok(())
    }

    /// True while a background promotion waits to be adopted (tests).
    #[cfg(test)]
    pub(super) fn promotion_pending(&self) -> bool {
        lock(&self.inner.promotion).is_some()
    }
}

#[cfg(test)]
mod tests {
    use crate::index::sharded::{ShardedIndex, ShardedOptions};

    fn code(i: u64) -> Vec<u8> {
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes().to_vec()
    }

    fn saved_index(dir: &std::path::Path, rows: u64) {
        let idx: ShardedIndex = ShardedIndex::create(dir, ShardedOptions::default()).unwrap();
        let keys: Vec<u64> = (0..rows).collect();
        let vecs: Vec<Vec<u8>> = keys.iter().map(|k| code(*k)).collect();
        idx.add(&keys, &vecs).unwrap();
        idx.close().unwrap();
    }

    /// The main file of the index's active shard.
    fn active_file(idx: &ShardedIndex, dir: &std::path::Path) -> std::path::PathBuf {
        let st = idx.read();
        let a = st.active.as_ref().unwrap();
        super::shard::main_path(dir, a.id, a.gen())
    }

    /// The first write takes the copy read in the background: with the
    /// shard's file gone after that read, only the adopted copy can serve.
    #[test]
    fn first_write_adopts_the_background_copy() {
        let tmp = tempfile::tempdir().unwrap();
        saved_index(tmp.path(), 5_000);
        let idx: ShardedIndex = ShardedIndex::open(tmp.path()).unwrap();
        assert!(idx.promotion_pending());
        let main = active_file(&idx, tmp.path());
        // Let the read finish, then take the file away from any later read.
        let p = crate::sync::lock(&idx.inner.promotion).take().unwrap();
        while !p.handle.is_finished() {
            std::thread::yield_now();
        }
        *crate::sync::lock(&idx.inner.promotion) = Some(p);
        let moved = tmp.path().join("moved.ivu");
        std::fs::rename(&main, &moved).unwrap();
        idx.add(&[9_999_999], &[code(9_999_999)]).unwrap();
        assert!(!idx.promotion_pending());
        assert_eq!(idx.len(), 5_001);
        assert_eq!(idx.get(17).unwrap(), Some(code(17)));
        assert_eq!(idx.get(9_999_999).unwrap(), Some(code(9_999_999)));
        std::fs::rename(&moved, &main).unwrap();
        idx.close().unwrap();
        let back: ShardedIndex = ShardedIndex::open_read_only(tmp.path()).unwrap();
        assert_eq!(back.len(), 5_001);
    }

    /// A copy tagged for another shard is never adopted: the write reads
    /// the shard itself (here: fails, naming the missing file).
    #[test]
    fn a_stale_copy_is_not_adopted() {
        let tmp = tempfile::tempdir().unwrap();
        saved_index(tmp.path(), 3_000);
        let idx: ShardedIndex = ShardedIndex::open(tmp.path()).unwrap();
        let main = active_file(&idx, tmp.path());
        crate::sync::lock(&idx.inner.promotion)
            .as_mut()
            .expect("a writable open starts a promotion")
            .gen += 1;
        let moved = tmp.path().join("moved.ivu");
        std::fs::rename(&main, &moved).unwrap();
        let err = idx.add(&[7_000_000], &[code(7_000_000)]).unwrap_err();
        assert!(err.to_string().contains(".ivu"), "{err}");
        assert!(!idx.promotion_pending());
        std::fs::rename(&moved, &main).unwrap();
        idx.add(&[7_000_000], &[code(7_000_000)]).unwrap();
        assert_eq!(idx.len(), 3_001);
    }

    /// Read-only and detached opens start nothing.
    #[test]
    fn readers_start_no_promotion() {
        let tmp = tempfile::tempdir().unwrap();
        saved_index(tmp.path(), 100);
        let ro: ShardedIndex = ShardedIndex::open_read_only(tmp.path()).unwrap();
        assert!(!ro.promotion_pending());
        let det: ShardedIndex = ShardedIndex::open_detached(tmp.path()).unwrap();
        assert!(!det.promotion_pending());
    }
}
