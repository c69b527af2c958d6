//! Keys of a sharded index: 64-bit integers or 128-bit values (UUIDs given
//! as 16 bytes).
//!
//! usearch and the unit index key rows by `u64`. With 64-bit keys the key
//! *is* the row label. With 128-bit keys every row gets a fresh `u64` label
//! from the index's counter, and each shard keeps a [`KeyTable`] mapping
//! labels to keys and back (persisted beside the shard as `*.keys`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

use crate::index::bloom::{checksum, ScalableBloom};

/// The key kind of an index, recorded in its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// `u64` keys.
    U64,
    /// 128-bit keys (`[u8; 16]`).
    U128,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyKind::U64 => "64-bit",
            KeyKind::U128 => "128-bit",
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u64 {}
    impl Sealed for [u8; 16] {}
}

/// A key type of a sharded index: `u64` or `[u8; 16]`.
pub trait ShardKey:
    Copy + Eq + Hash + Ord + Debug + Send + Sync + 'static + sealed::Sealed
{
    /// The kind recorded in the manifest.
    const KIND: KeyKind;
    /// The internal (order-preserving) representation.
    fn to_u128(self) -> u128;
    /// Back from the internal representation.
    fn from_u128(v: u128) -> Self;
}

impl ShardKey for u64 {
    const KIND: KeyKind = KeyKind::U64;
    fn to_u128(self) -> u128 {
        u128::from(self)
    }
    fn from_u128(v: u128) -> u64 {
        v as u64
    }
}

impl ShardKey for [u8; 16] {
    const KIND: KeyKind = KeyKind::U128;
    fn to_u128(self) -> u128 {
        u128::from_be_bytes(self)
    }
    fn from_u128(v: u128) -> [u8; 16] {
        v.to_be_bytes()
    }
}

/// The bloom hash of an internal key.
pub(crate) fn bloom_hash(kind: KeyKind, key: u128) -> u64 {
    match kind {
        KeyKind::U64 => ScalableBloom::hash64(key as u64),
        KeyKind::U128 => ScalableBloom::hash128(&key.to_be_bytes()),
    }
}

/// Label ↔ key of one shard with 128-bit keys.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeyTable {
    by_label: HashMap<u64, u128>,
    by_key: HashMap<u128, u64>,
}

const MAGIC: &[u8; 8] = b"IVDBKEYS";
const VERSION: u32 = 1;

impl KeyTable {
    pub(crate) fn label(&self, key: u128) -> Option<u64> {
        self.by_key.get(&key).copied()
    }

    pub(crate) fn key(&self, label: u64) -> Option<u128> {
        self.by_label.get(&label).copied()
    }

    pub(crate) fn insert(&mut self, label: u64, key: u128) {
        self.by_label.insert(label, key);
        self.by_key.insert(key, label);
    }

    pub(crate) fn remove_key(&mut self, key: u128) -> Option<u64> {
        let label = self.by_key.remove(&key)?;
        self.by_label.remove(&label);
        Some(label)
    }

    pub(crate) fn max_label(&self) -> Option<u64> {
        self.by_label.keys().copied().max()
    }

    /// File bytes: magic, version, reserved, count, (label, key) pairs in
    /// label order, checksum; little-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut pairs: Vec<(u64, u128)> = self.by_label.iter().map(|(l, k)| (*l, *k)).collect();
        pairs.sort_unstable();
        let mut out = Vec::with_capacity(24 + pairs.len() * 24 + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(pairs.len() as u64).to_le_bytes());
        for (l, k) in pairs {
            out.extend_from_slice(&l.to_le_bytes());
            out.extend_from_slice(&k.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<KeyTable, String> {
        if bytes.len() < 32 || &bytes[..8] != MAGIC {
            return Err("missing IVDBKEYS magic".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body).to_le_bytes() != sum {
            return Err("checksum mismatch".into());
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&body[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        if version != VERSION {
            return Err(format!("key table version {version}, expected {VERSION}"));
        }
        let n = word(16) as usize;
        if (body.len() - 24) / 24 != n || (body.len() - 24) % 24 != 0 {
            return Err("length does not match the key count".into());
        }
        let mut table = KeyTable::default();
        for i in 0..n {
            let at = 24 + i * 24;
            let label = word(at);
            let key = u128::from(word(at + 8)) | (u128::from(word(at + 16)) << 64);
            table.insert(label, key);
        }
        if table.by_key.len() != n || table.by_label.len() != n {
            return Err("duplicate labels or keys".into());
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table_round_trips_and_rejects_damage() {
        let mut t = KeyTable::default();
        for i in 0..100u64 {
            t.insert(i * 3, (u128::from(i) << 70) | u128::from(i));
        }
        t.remove_key(u128::from(5u64) << 70 | 5);
        let bytes = t.encode();
        let back = KeyTable::decode(&bytes).unwrap();
        assert_eq!(back.by_label, t.by_label);
        assert_eq!(back.label(u128::from(7u64) << 70 | 7), Some(21));
        let mut bad = bytes.clone();
        bad[30] ^= 1;
        assert!(KeyTable::decode(&bad).is_err());
        assert!(KeyTable::decode(&bytes[..bytes.len() - 9]).is_err());
    }

    #[test]
    fn u128_order_follows_bytes() {
        let a = [0u8; 16];
        let mut b = [0u8; 16];
        b[0] = 1;
        assert!(a.to_u128() < b.to_u128());
        assert_eq!(<[u8; 16]>::from_u128(b.to_u128()), b);
    }
}
