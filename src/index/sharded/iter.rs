//! Lazy iteration over the live rows of a sharded index.

use std::marker::PhantomData;
use std::sync::Arc;

use super::key::ShardKey;
use super::options::VectorKind;
use super::shard::Shard;
use super::tombstones::Tombstones;

/// Lazy iterator over live (key, vector) pairs; see [`super::ShardedIndex::iter`].
pub struct ShardedIter<K> {
    pub(super) active: Option<Arc<Shard>>,
    pub(super) active_labels: std::vec::IntoIter<u64>,
    pub(super) sealed: Vec<Arc<Shard>>,
    pub(super) tomb: Arc<Tombstones>,
    pub(super) vectors: VectorKind,
    pub(super) shard: usize,
    pub(super) pos: usize,
    pub(super) buf: std::vec::IntoIter<(u128, Vec<u8>)>,
    pub(super) _key: PhantomData<fn() -> K>,
}

impl<K: ShardKey> Iterator for ShardedIter<K> {
    type Item = (K, Vec<u8>);

    fn next(&mut self) -> Option<(K, Vec<u8>)> {
        loop {
            if let Some((k, body)) = self.buf.next() {
                return Some((K::from_u128(k), self.vectors.unpad(body)));
            }
            if let Some(active) = &self.active {
                for label in self.active_labels.by_ref() {
                    let (Some(key), Some(body)) = (active.key(label), active.index.get(label))
                    else {
                        continue;
                    };
                    return Some((K::from_u128(key), self.vectors.unpad(body)));
                }
                self.active = None;
            }
            let s = self.sealed.get(self.shard)?;
            let rows = s.index.rows(self.pos, 1024);
            if rows.is_empty() {
                self.shard += 1;
                self.pos = 0;
                continue;
            }
            self.pos += rows.len();
            let live: Vec<(u128, Vec<u8>)> = rows
                .into_iter()
                .filter_map(|(l, b)| s.key(l).map(|k| (k, b)))
                .filter(|(k, _)| !self.tomb.is_dead(*k, s.id))
                .collect();
            self.buf = live.into_iter();
        }
    }
}
