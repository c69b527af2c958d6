//! The manifest (`manifest.json`): every parameter of a sharded index and
//! the list of files that make up its current state.
//!
//! The manifest is the commit point. Shard, key-table and tombstone files
//! are written once under a new generation number and never modified; a
//! state becomes current when a manifest naming its files has been
//! durably renamed into place. Files no manifest names are leftovers of an
//! interrupted write (or superseded) and are removed on the next writable
//! open.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::key::KeyKind;
use super::{ShardedError, ShardedOptions};
use crate::index::durable;

/// File name of the manifest.
pub(crate) const MANIFEST: &str = "manifest.json";
/// File name of the bloom filter.
pub(crate) const BLOOM: &str = "bloom.isbf";
/// On-disk format version of a sharded index directory.
pub const SHARDED_FORMAT_VERSION: u32 = 1;

/// A shard as the manifest records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardEntry {
    pub(crate) id: u32,
    /// File generation; 0 means no file (an active shard never saved).
    pub(crate) gen: u64,
    /// Rows in the file.
    pub(crate) rows: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) format: u32,
    pub(crate) key_kind: KeyKind,
    pub(crate) options: ShardedOptions,
    /// Next file generation to hand out.
    pub(crate) next_gen: u64,
    /// Next row label (128-bit keys).
    pub(crate) next_label: u64,
    /// Sealed shards with files (a rotating shard appears with its last
    /// saved version, if any).
    pub(crate) sealed: Vec<ShardEntry>,
    /// The active shard (generation 0 when it was never saved).
    pub(crate) active: ShardEntry,
    /// Tombstone file, when there are tombstones.
    pub(crate) tombstones: Option<String>,
    /// Keys the saved bloom filter held at this commit; a filter file that
    /// holds fewer predates it and is rebuilt.
    pub(crate) bloom_count: u64,
    /// The owner's position that the last tagged save reflects (the
    /// engine's journal sequence number); absent before the first.
    #[serde(default)]
    pub(crate) tag: Option<u64>,
}

/// Base name of a shard's files (`shard_000003.000017`).
pub(crate) fn shard_stem(id: u32, gen: u64) -> String {
    format!("shard_{id:06}.{gen:06}")
}

pub(crate) fn tombstone_name(gen: u64) -> String {
    format!("tombstones.{gen:06}.bin")
}

impl Manifest {
    /// Every file name this manifest refers to.
    pub(crate) fn files(&self) -> Vec<String> {
        let mut out = vec![MANIFEST.to_string(), BLOOM.to_string()];
        for s in self.sealed.iter().chain(std::iter::once(&self.active)) {
            if s.gen > 0 {
                let stem = shard_stem(s.id, s.gen);
                out.push(format!("{stem}.ivu"));
                out.push(format!("{stem}.ivu.hnsw"));
                out.push(format!("{stem}.keys"));
            }
        }
        out.extend(self.tombstones.clone());
        out
    }

    pub(crate) fn read(dir: &Path) -> Result<Option<Manifest>, ShardedError> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ShardedError::Io { path, source }),
        };
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let version: Version =
            serde_json::from_slice(&bytes).map_err(|e| ShardedError::Corrupt {
                path: path.clone(),
                why: format!("not a manifest: {e}"),
            })?;
        if version.format != SHARDED_FORMAT_VERSION {
            return Err(ShardedError::IncompatibleFormat {
                path,
                found: version.format,
                expected: SHARDED_FORMAT_VERSION,
            });
        }
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| ShardedError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        m.options.validate().map_err(|e| ShardedError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        let mut ids: Vec<u32> = m.sealed.iter().map(|s| s.id).collect();
        ids.push(m.active.id);
        if ids.windows(2).any(|w| w[0] >= w[1]) {
            return Err(ShardedError::Corrupt {
                path,
                why: "shard ids are not increasing".into(),
            });
        }
        Ok(Some(m))
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<(), ShardedError> {
        let path = dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(self).map_err(|e| ShardedError::Corrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        durable::write(&path, &json).map_err(|source| ShardedError::Io { path, source })
    }
}
