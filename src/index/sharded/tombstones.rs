//! Tombstones: deletions of rows in sealed (memory-mapped, immutable)
//! shards.
//!
//! A tombstone maps a key to a shard id `t`: every copy of the key in a
//! shard with id ≤ `t` is dead. Writes go to the active shard, whose id is
//! always greater than any tombstone, so a key written again after a
//! removal is live, and removing it once more moves `t` past that copy too
//! — a removed key can never come back from an older shard (the reference
//! keeps a plain key set, and `add` clearing it resurrects stale copies).
//!
//! File (`tombstones.NNNNNN.bin`, named in the manifest): magic
//! `IVDBTOMB`, version (u32), reserved (u32), count (u64), then (key u128,
//! shard id u32) records, then a checksum of everything before it.

use std::collections::HashMap;

use crate::index::bloom::checksum;

const MAGIC: &[u8; 8] = b"IVDBTOMB";
const VERSION: u32 = 1;

/// Key → highest shard id whose copy is dead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tombstones {
    map: HashMap<u128, u32>,
}

impl Tombstones {
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True when the copy of `key` in shard `shard` is dead.
    #[inline]
    pub(crate) fn is_dead(&self, key: u128, shard: u32) -> bool {
        self.map.get(&key).is_some_and(|&t| shard <= t)
    }

    /// The current watermark of a key.
    pub(crate) fn get(&self, key: u128) -> Option<u32> {
        self.map.get(&key).copied()
    }

    /// Kill every copy of `key` in shards up to `upto`.
    pub(crate) fn kill(&mut self, key: u128, upto: u32) {
        let t = self.map.entry(key).or_insert(upto);
        *t = (*t).max(upto);
    }

    /// Every (key, watermark).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u128, u32)> + '_ {
        self.map.iter().map(|(k, t)| (*k, *t))
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<(u128, u32)> = self.map.iter().map(|(k, t)| (*k, *t)).collect();
        entries.sort_unstable();
        let mut out = Vec::with_capacity(24 + entries.len() * 20 + 8);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
        for (k, t) in entries {
            out.extend_from_slice(&k.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Tombstones, String> {
        if bytes.len() < 32 || &bytes[..8] != MAGIC {
            return Err("missing IVDBTOMB magic".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body).to_le_bytes() != sum {
            return Err("checksum mismatch".into());
        }
        let version = u32::from_le_bytes([body[8], body[9], body[10], body[11]]);
        if version != VERSION {
            return Err(format!("tombstone format {version}, expected {VERSION}"));
        }
        let mut n = [0u8; 8];
        n.copy_from_slice(&body[16..24]);
        let n = u64::from_le_bytes(n) as usize;
        let records = &body[24..];
        if records.len() % 20 != 0 || records.len() / 20 != n {
            return Err("length does not match the tombstone count".into());
        }
        let mut map = HashMap::with_capacity(n);
        for r in records.chunks_exact(20) {
            let mut k = [0u8; 16];
            k.copy_from_slice(&r[..16]);
            let t = u32::from_le_bytes([r[16], r[17], r[18], r[19]]);
            map.insert(u128::from_le_bytes(k), t);
        }
        Ok(Tombstones { map })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_semantics_and_round_trip() {
        let mut t = Tombstones::default();
        t.kill(7, 2);
        assert!(t.is_dead(7, 0) && t.is_dead(7, 2) && !t.is_dead(7, 3));
        t.kill(7, 1); // never lowers
        assert!(t.is_dead(7, 2));
        t.kill(u128::MAX, 9);
        let back = Tombstones::decode(&t.encode()).unwrap();
        assert_eq!(back, t);
        assert_eq!(t.iter().count(), 2);
        let mut bad = t.encode();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        assert!(Tombstones::decode(&bad).is_err());
    }
}
