//! One shard: a unit index (in RAM while active, memory-mapped once
//! sealed) plus, for 128-bit keys, its label table.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::key::{KeyKind, KeyTable};
use super::manifest::{shard_stem, ShardEntry};
use super::ShardedError;
use crate::index::{durable, UnitIndex, UnitIndexOptions};
use crate::sync::RwLock;

pub(crate) struct Shard {
    pub(crate) id: u32,
    /// Generation of the files that hold this shard (0: none).
    gen: AtomicU64,
    /// True when those files hold exactly the current rows.
    durable: AtomicBool,
    /// Rows in those files.
    file_rows: AtomicU64,
    /// Bytes of those files (unit index and graph): the size tier merging
    /// sorts shards into.
    file_bytes: AtomicU64,
    pub(crate) index: UnitIndex,
    /// Label ↔ key for 128-bit keys; `None` for 64-bit keys (label = key).
    pub(crate) table: Option<RwLock<KeyTable>>,
}

impl std::fmt::Debug for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shard")
            .field("id", &self.id)
            .field("gen", &self.gen())
            .field("rows", &self.index.len())
            .finish()
    }
}

pub(crate) fn main_path(dir: &Path, id: u32, gen: u64) -> PathBuf {
    dir.join(format!("{}.ivu", shard_stem(id, gen)))
}

fn keys_path(dir: &Path, id: u32, gen: u64) -> PathBuf {
    dir.join(format!("{}.keys", shard_stem(id, gen)))
}

/// Every file a shard generation may have.
/// (`.ivu.hnsw.next` only after a cut save, see `index::unit::file`).
pub(crate) fn file_names(id: u32, gen: u64) -> [String; 4] {
    let stem = shard_stem(id, gen);
    [
        format!("{stem}.ivu"),
        format!("{stem}.ivu.hnsw"),
        format!("{stem}.ivu.hnsw.next"),
        format!("{stem}.keys"),
    ]
}

/// Bytes of a unit index file and its graph file (a missing graph file —
/// a scan-only shard — counts 0).
fn files_bytes(main: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    size(main) + size(&crate::index::graph_path(main))
}

impl Shard {
    /// An empty shard.
    pub(crate) fn new(
        id: u32,
        kind: KeyKind,
        options: UnitIndexOptions,
    ) -> Result<Shard, ShardedError> {
        Ok(Shard {
            id,
            gen: AtomicU64::new(0),
            durable: AtomicBool::new(false),
            file_rows: AtomicU64::new(0),
            file_bytes: AtomicU64::new(0),
            index: UnitIndex::new(options)?,
            table: (kind == KeyKind::U128).then(|| RwLock::new(KeyTable::default())),
        })
    }

    /// A shard from rows already in a unit index.
    pub(crate) fn from_parts(id: u32, index: UnitIndex, table: Option<KeyTable>) -> Shard {
        Shard {
            id,
            gen: AtomicU64::new(0),
            durable: AtomicBool::new(false),
            file_rows: AtomicU64::new(0),
            file_bytes: AtomicU64::new(0),
            index,
            table: table.map(RwLock::new),
        }
    }

    pub(crate) fn gen(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    /// Its files hold what it holds: no row changed since its save, and no
    /// layout was adopted since (a partition trained in the background
    /// changes no row, only the unit index's `dirty` count).
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.load(Ordering::Acquire) && self.index.dirty() == 0
    }

    /// Note that rows changed since the last save.
    pub(crate) fn mark_changed(&self) {
        self.durable.store(false, Ordering::Release);
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Bytes of this shard's files (0 before it was first written).
    pub(crate) fn file_bytes(&self) -> u64 {
        self.file_bytes.load(Ordering::Acquire)
    }

    /// The manifest entry of this shard's latest files.
    pub(crate) fn entry(&self) -> ShardEntry {
        ShardEntry {
            id: self.id,
            gen: self.gen(),
            rows: self.file_rows.load(Ordering::Acquire),
        }
    }

    /// Take over the file record of `other` (same rows, other memory).
    pub(crate) fn adopt_files(&self, other: &Shard) {
        self.gen.store(other.gen(), Ordering::Release);
        self.file_rows
            .store(other.file_rows.load(Ordering::Acquire), Ordering::Release);
        self.file_bytes.store(other.file_bytes(), Ordering::Release);
        self.durable.store(other.is_durable(), Ordering::Release);
    }

    /// The label of a key stored in this shard.
    #[inline]
    pub(crate) fn label(&self, key: u128) -> Option<u64> {
        match &self.table {
            None => {
                let k = key as u64;
                self.index.contains(k).then_some(k)
            }
            Some(t) => t.read().label(key),
        }
    }

    /// The key of a label.
    #[inline]
    pub(crate) fn key(&self, label: u64) -> Option<u128> {
        match &self.table {
            None => Some(u128::from(label)),
            Some(t) => t.read().key(label),
        }
    }

    /// Write this shard under generation `gen` (unit index, graph, key
    /// table; each durably) and record it.
    pub(crate) fn save(&self, dir: &Path, gen: u64) -> Result<(), ShardedError> {
        if let Some(t) = &self.table {
            let bytes = t.read().encode();
            let path = keys_path(dir, self.id, gen);
            durable::write(&path, &bytes).map_err(|source| ShardedError::Io { path, source })?;
        }
        let rows = self.len() as u64;
        let path = main_path(dir, self.id, gen);
        self.index.save(&path)?;
        self.file_bytes.store(files_bytes(&path), Ordering::Release);
        self.file_rows.store(rows, Ordering::Release);
        self.gen.store(gen, Ordering::Release);
        self.durable.store(true, Ordering::Release);
        Ok(())
    }

    /// Open a saved shard: memory-mapped (`view`) or read into RAM.
    pub(crate) fn open(
        dir: &Path,
        entry: &ShardEntry,
        kind: KeyKind,
        view: bool,
    ) -> Result<Shard, ShardedError> {
        let path = main_path(dir, entry.id, entry.gen);
        let index = UnitIndex::restore(&path, view)?;
        if index.len() as u64 != entry.rows {
            return Err(ShardedError::Corrupt {
                path,
                why: format!(
                    "{} rows, but the manifest records {}",
                    index.len(),
                    entry.rows
                ),
            });
        }
        let table = match kind {
            KeyKind::U64 => None,
            KeyKind::U128 => {
                let kp = keys_path(dir, entry.id, entry.gen);
                let bytes = std::fs::read(&kp).map_err(|source| ShardedError::Io {
                    path: kp.clone(),
                    source,
                })?;
                let table = KeyTable::decode(&bytes).map_err(|why| ShardedError::Corrupt {
                    path: kp.clone(),
                    why,
                })?;
                if index.keys().iter().any(|l| table.key(*l).is_none()) {
                    return Err(ShardedError::Corrupt {
                        path: kp,
                        why: "a row has no key in the key table".into(),
                    });
                }
                Some(RwLock::new(table))
            }
        };
        Ok(Shard {
            id: entry.id,
            gen: AtomicU64::new(entry.gen),
            durable: AtomicBool::new(true),
            file_rows: AtomicU64::new(entry.rows),
            file_bytes: AtomicU64::new(files_bytes(&path)),
            index,
            table,
        })
    }
}
