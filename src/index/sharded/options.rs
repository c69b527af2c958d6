//! Parameters of the sharded index: what its vectors are and how it
//! shards, rotates and filters.

use super::ShardedError;
use crate::metric::{Row, MAX_BITS};

use serde::{Deserialize, Serialize};

use crate::index::unit::check_max_dim;
use crate::index::{ExactThreshold, Partition, UnitIndex, UnitIndexOptions};

/// What the vectors are and how they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VectorKind {
    /// Vectors of 1 to `max_dim / 8` bytes (`max_dim` a multiple of 8 up to
    /// 256; ISCC unit bodies are 8, 16, 24 or 32 bytes), mixed lengths,
    /// compared by NPHD over their common prefix (distance 0.0–1.0).
    Nphd { max_dim: usize },
    /// Bit vectors of exactly `bits` bits (a multiple of 8, at most 256),
    /// compared by Hamming distance (a bit count).
    Hamming { bits: usize },
}

impl VectorKind {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match *self {
            VectorKind::Nphd { max_dim } => check_max_dim(max_dim),
            VectorKind::Hamming { bits } if bits > 0 && bits <= MAX_BITS && bits % 8 == 0 => Ok(()),
            VectorKind::Hamming { bits } => Err(format!(
                "hamming bits {bits} (expected a multiple of 8 from 8 to {MAX_BITS})"
            )),
        }
    }

    /// Bits of the rows as stored (Hamming vectors are zero-padded to whole
    /// 64-bit words, which leaves Hamming distances unchanged).
    pub(crate) fn row_bits(&self) -> usize {
        match *self {
            VectorKind::Nphd { max_dim } => max_dim,
            VectorKind::Hamming { bits } => bits.next_multiple_of(64),
        }
    }

    /// Validate a vector and turn it into the stored body.
    pub(crate) fn body(&self, v: &[u8]) -> Result<Vec<u8>, String> {
        match *self {
            VectorKind::Nphd { max_dim } => {
                Row::new(v).map_err(|e| e.to_string())?;
                if v.len() * 8 > max_dim {
                    return Err(format!(
                        "a code of {} bits exceeds this index's max_dim of {max_dim} bits",
                        v.len() * 8
                    ));
                }
                Ok(v.to_vec())
            }
            VectorKind::Hamming { bits } => {
                if v.len() * 8 != bits {
                    return Err(format!(
                        "a vector of {} bits; this index stores {bits}-bit vectors",
                        v.len() * 8
                    ));
                }
                let mut body = v.to_vec();
                body.resize(bits.div_ceil(64) * 8, 0);
                Ok(body)
            }
        }
    }

    /// A query: NPHD queries may be of any valid length (compared over the
    /// common prefix).
    pub(crate) fn query(&self, v: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            VectorKind::Nphd { .. } => {
                Row::new(v).map_err(|e| e.to_string())?;
                Ok(v.to_vec())
            }
            VectorKind::Hamming { .. } => self.body(v),
        }
    }

    /// The caller's vector from a stored body.
    pub(crate) fn unpad(&self, mut body: Vec<u8>) -> Vec<u8> {
        if let VectorKind::Hamming { bits } = *self {
            body.truncate(bits / 8);
        }
        body
    }

    /// The caller's distance from a stored NPHD.
    pub(crate) fn distance(&self, nphd: f32) -> f32 {
        match self {
            VectorKind::Nphd { .. } => nphd,
            VectorKind::Hamming { .. } => (nphd * self.row_bits() as f32).round(),
        }
    }

    /// A caller's distance bound as an NPHD bound.
    pub(crate) fn nphd_bound(&self, distance: f32) -> f32 {
        match self {
            VectorKind::Nphd { .. } => distance,
            VectorKind::Hamming { .. } => (distance + 0.5) / self.row_bits() as f32,
        }
    }
}

/// Parameters of a sharded index; all are stored in the manifest and
/// restored on open.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShardedOptions {
    /// Vector kind.
    pub vectors: VectorKind,
    /// HNSW connectivity (M).
    pub connectivity: usize,
    /// HNSW expansion at insertion.
    pub expansion_add: usize,
    /// HNSW expansion at search.
    pub expansion_search: usize,
    /// When a shard is searched exactly by default (see [`ExactThreshold`]).
    pub exact_threshold: ExactThreshold,
    /// A shard rotates when its serialized size passes this many bytes.
    pub shard_size: u64,
    /// Target false positive rate of the bloom filter.
    pub bloom_error_rate: f64,
    /// Write rotated shards on a background thread.
    pub background_rotation: bool,
    /// Background rotations in flight before `add` waits.
    pub max_pending_rotations: usize,
    /// Tiered merging: this many adjacent sealed shards of one size tier
    /// are merged into one (in the background with `background_rotation`,
    /// else right after the rotation that completes a tier), so a growing
    /// index keeps O(log N) shards. 0 or 1 turns automatic merging off
    /// ([`ShardedIndex::merge`] still works).
    ///
    /// [`ShardedIndex::merge`]: super::ShardedIndex::merge
    #[serde(default = "default_merge_factor")]
    pub merge_factor: usize,
    /// A merge never writes a shard larger than this many bytes (as
    /// estimated from the files it merges).
    #[serde(default = "default_max_merged_size")]
    pub max_merged_size: u64,
    /// Merges the tiers owe before a rotation (and so `add`) waits for the
    /// background merger: merges never fall behind without bound, and never
    /// stop adds while they keep up.
    #[serde(default = "default_max_pending_merges")]
    pub max_pending_merges: usize,
    /// Whether each shard partitions its rows into lists by itself (see
    /// [`Partition`]; manifests without it: `auto`).
    #[serde(default)]
    pub partition: Partition,
}

fn default_merge_factor() -> usize {
    4
}

fn default_max_merged_size() -> u64 {
    16 << 30
}

fn default_max_pending_merges() -> usize {
    2
}

impl Default for ShardedOptions {
    fn default() -> ShardedOptions {
        let unit = UnitIndexOptions::default();
        ShardedOptions {
            vectors: VectorKind::Nphd {
                max_dim: crate::metric::MAX_BITS,
            },
            connectivity: unit.connectivity,
            expansion_add: unit.expansion_add,
            expansion_search: unit.expansion_search,
            exact_threshold: unit.exact_threshold,
            shard_size: 256 << 20,
            bloom_error_rate: 0.01,
            background_rotation: false,
            max_pending_rotations: 2,
            merge_factor: default_merge_factor(),
            max_merged_size: default_max_merged_size(),
            max_pending_merges: default_max_pending_merges(),
            partition: unit.partition,
        }
    }
}

/// The smallest `shard_size` accepted (bytes). A shard always takes at
/// least one row before it rotates, so any size works: 1 makes a shard per
/// row (iscc-usearch's tests use 1 and 500 to force rotations; tiered
/// merging then folds such shards together). Only 0 is refused.
pub const MIN_SHARD_SIZE: u64 = 1;

impl ShardedOptions {
    pub(crate) fn validate(&self) -> Result<(), ShardedError> {
        self.vectors.validate().map_err(ShardedError::Option)?;
        if self.shard_size < MIN_SHARD_SIZE {
            return Err(ShardedError::Option(format!(
                "shard_size {} (in bytes: at least {MIN_SHARD_SIZE})",
                self.shard_size
            )));
        }
        if !(self.bloom_error_rate > 0.0 && self.bloom_error_rate < 1.0) {
            return Err(ShardedError::Option(format!(
                "bloom_error_rate {} (expected 0 < rate < 1)",
                self.bloom_error_rate
            )));
        }
        if self.max_pending_rotations == 0 {
            return Err(ShardedError::Option(
                "max_pending_rotations must be at least 1".into(),
            ));
        }
        if self.max_pending_merges == 0 {
            return Err(ShardedError::Option(
                "max_pending_merges must be at least 1".into(),
            ));
        }
        if self.merging() && self.max_merged_size < self.shard_size * self.merge_factor as u64 {
            return Err(ShardedError::Option(format!(
                "max_merged_size {} is under merge_factor × shard_size ({} × {}): no tier \
                 could ever merge",
                self.max_merged_size, self.merge_factor, self.shard_size
            )));
        }
        UnitIndex::new(self.unit())?;
        Ok(())
    }

    /// True when sealed shards are merged automatically.
    pub(crate) fn merging(&self) -> bool {
        self.merge_factor >= 2
    }

    pub(crate) fn unit(&self) -> UnitIndexOptions {
        UnitIndexOptions {
            connectivity: self.connectivity,
            expansion_add: self.expansion_add,
            expansion_search: self.expansion_search,
            max_dim: self.vectors.row_bits(),
            exact_threshold: self.exact_threshold,
            partition: self.partition,
        }
    }
}
