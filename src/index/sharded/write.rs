//! Writes to a sharded index: add (first write wins), upsert (last write
//! wins) and remove, split into chunks at the rotation boundary.

use super::error::key_text;
use super::key::ShardKey;
use super::{Fresh, Mode, ShardedError, ShardedIndex, BYTES_PER_ROW_GUESS, INSERT_CHUNK};
use crate::sync::lock;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl<K: ShardKey> ShardedIndex<K> {
    /// Add vectors under keys that are not live anywhere; live keys (and
    /// repeats in the batch) are skipped — first write wins, across every
    /// shard. Every vector is validated before anything is written. Returns
    /// how many were added.
    pub fn add<B: AsRef<[u8]>>(&self, keys: &[K], vectors: &[B]) -> Result<usize, ShardedError> {
        self.write_batch(keys, vectors, Mode::Once)
    }

    /// The same as [`ShardedIndex::add`]: first write wins across shards
    /// (the reference's `add` only checks the active shard; ours always
    /// checks them all, helped by the bloom filter).
    pub fn add_once<B: AsRef<[u8]>>(
        &self,
        keys: &[K],
        vectors: &[B],
    ) -> Result<usize, ShardedError> {
        self.write_batch(keys, vectors, Mode::Once)
    }

    /// Insert or replace: the new vector becomes the key's only live copy
    /// (last write wins, also within the batch). An identical vector is
    /// left alone. Returns how many keys were written.
    pub fn upsert<B: AsRef<[u8]>>(&self, keys: &[K], vectors: &[B]) -> Result<usize, ShardedError> {
        self.write_batch(keys, vectors, Mode::Upsert)
    }

    /// A vector checked against the index's vector kind, as stored.
    fn body(&self, key: Option<u128>, vector: &[u8]) -> Result<Vec<u8>, ShardedError> {
        let kind = self.inner.kind;
        self.inner
            .options
            .vectors
            .body(vector)
            .map_err(|why| ShardedError::Vector {
                key: key.map(|k| key_text(kind, k)),
                why,
            })
    }

    fn write_batch<B: AsRef<[u8]>>(
        &self,
        keys: &[K],
        vectors: &[B],
        mode: Mode,
    ) -> Result<usize, ShardedError> {
        self.check_writable()?;
        if keys.len() != vectors.len() {
            return Err(ShardedError::BatchMismatch {
                keys: keys.len(),
                vectors: vectors.len(),
            });
        }
        let kind = self.inner.kind;
        let mut items: Vec<(u128, Vec<u8>)> = Vec::with_capacity(keys.len());
        for (k, v) in keys.iter().zip(vectors) {
            let key = k.to_u128();
            items.push((key, self.body(Some(key), v.as_ref())?));
        }
        // One occurrence per key: the first (add) or the last (upsert).
        let mut seen = HashSet::with_capacity(items.len());
        if mode == Mode::Upsert {
            items.reverse();
        }
        items.retain(|(k, _)| seen.insert(*k));
        if mode == Mode::Upsert {
            items.reverse();
        }

        let _w = lock(&self.inner.writer);
        self.check_writable()?;
        self.promote_active()?;
        // Decide per key against the current state; note which keys have a
        // live copy in a sealed shard to hide once the new one is in.
        let fresh: Vec<Fresh> = {
            let st = self.read();
            items
                .into_iter()
                .filter_map(|(key, body)| match st.locate(kind, key) {
                    None => Some(Fresh {
                        key,
                        body,
                        hide: false,
                    }),
                    Some(_) if mode == Mode::Once => None,
                    // Even a copy in the active shard may be sealed by a
                    // rotation before this row goes in: hide in any case.
                    Some((s, l)) => {
                        (s.index.get(l).as_deref() != Some(&body[..])).then_some(Fresh {
                            key,
                            body,
                            hide: true,
                        })
                    }
                })
                .collect()
        };
        self.write_fresh(&fresh)
    }

    /// Write decided rows (under the writer lock), rotating as shards
    /// fill. Returns how many were written.
    fn write_fresh(&self, fresh: &[Fresh]) -> Result<usize, ShardedError> {
        let written = fresh.len();
        // An upsert replacing a live key is a removal and an add.
        let changes = written + fresh.iter().filter(|f| f.hide).count();
        let mut rest = fresh;
        while !rest.is_empty() {
            let room = self.room()?;
            if room == 0 {
                self.rotate()?;
                continue;
            }
            let (chunk, tail) = rest.split_at(room.min(rest.len()).min(INSERT_CHUNK));
            self.insert_chunk(chunk)?;
            rest = tail;
        }
        self.inner
            .dirty
            .fetch_add(changes as u64, Ordering::Relaxed);
        Ok(written)
    }

    /// Rows the active shard takes before it must rotate (0: rotate now).
    fn room(&self) -> Result<usize, ShardedError> {
        let mut st = self.write();
        let Some(active) = st.active.clone() else {
            return Err(ShardedError::ReadOnly);
        };
        let rows = active.len();
        if self.inner.detached {
            // Nothing is written: the in-memory shard never rotates.
            return Ok(usize::MAX);
        }
        let limit = self.inner.options.shard_size;
        if st.since_measure >= (rows / 4).max(1024) || st.active_bytes >= limit {
            st.active_bytes = active.index.serialized_bytes();
            st.since_measure = 0;
            st.bytes_per_row = if rows >= 256 {
                (st.active_bytes / rows as u64).max(1)
            } else {
                BYTES_PER_ROW_GUESS
            };
        }
        if st.active_bytes >= limit && rows > 0 {
            return Ok(0);
        }
        Ok((limit.saturating_sub(st.active_bytes) / st.bytes_per_row).max(1) as usize)
    }

    /// Insert rows into the active shard, then hide older copies.
    fn insert_chunk(&self, chunk: &[Fresh]) -> Result<(), ShardedError> {
        let kind = self.inner.kind;
        let active = {
            let mut st = self.write();
            // Bloom first: a row must never be findable while the filter
            // still rejects its key.
            for f in chunk {
                st.bloom_insert(kind, f.key);
            }
            st.active.clone().ok_or(ShardedError::ReadOnly)?
        };
        let labels: Vec<u64> = match &active.table {
            None => chunk.iter().map(|f| f.key as u64).collect(),
            Some(t) => {
                let mut t = t.write();
                let mut st = self.write();
                chunk
                    .iter()
                    .map(|f| match t.label(f.key) {
                        Some(l) => l,
                        None => {
                            let l = st.next_label;
                            st.next_label += 1;
                            t.insert(l, f.key);
                            l
                        }
                    })
                    .collect()
            }
        };
        let bodies: Vec<&[u8]> = chunk.iter().map(|f| &f.body[..]).collect();
        active.mark_changed();
        let result = active.index.upsert_batch(&labels, &bodies);
        if let (Err(_), Some(t)) = (&result, &active.table) {
            // Drop labels whose rows did not make it in.
            let mut t = t.write();
            for (l, f) in labels.iter().zip(chunk) {
                if !active.index.contains(*l) {
                    t.remove_key(f.key);
                }
            }
        }
        result?;
        let mut st = self.write();
        for f in chunk.iter().filter(|f| f.hide) {
            st.kill_sealed(f.key);
        }
        st.since_measure += chunk.len();
        st.active_bytes += st.bytes_per_row * chunk.len() as u64;
        Ok(())
    }

    /// Remove keys: from the active shard directly, from sealed shards by
    /// tombstone. Returns how many were live.
    pub fn remove(&self, keys: &[K]) -> Result<usize, ShardedError> {
        self.check_writable()?;
        let _w = lock(&self.inner.writer);
        self.check_writable()?;
        self.promote_active()?;
        let kind = self.inner.kind;
        let mut removed = 0;
        let mut seen = HashSet::new();
        for k in keys {
            let key = k.to_u128();
            if !seen.insert(key) {
                continue;
            }
            let mut st = self.write();
            if st.locate(kind, key).is_none() {
                continue;
            }
            let active = st.active.clone().ok_or(ShardedError::ReadOnly)?;
            let mut live = false;
            if let Some(label) = active.label(key) {
                active.mark_changed();
                live |= active.index.remove(label)?;
                if let Some(t) = &active.table {
                    t.write().remove_key(key);
                }
            }
            live |= st.kill_sealed(key);
            removed += usize::from(live);
        }
        self.inner
            .dirty
            .fetch_add(removed as u64, Ordering::Relaxed);
        Ok(removed)
    }
}

impl ShardedIndex<u64> {
    /// Add vectors under keys the index chooses (iscc-usearch's
    /// `add(None, …)`): counting up from the number of live keys and
    /// skipping every key live in any shard, so a generated key never
    /// collides with a stored one (the reference takes the active shard's
    /// size, which repeats keys of sealed shards and keys added explicitly).
    /// Every vector is validated before anything is written. Returns the
    /// keys, one per vector, in order.
    pub fn add_generated<B: AsRef<[u8]>>(&self, vectors: &[B]) -> Result<Vec<u64>, ShardedError> {
        self.check_writable()?;
        let bodies = vectors
            .iter()
            .map(|v| self.body(None, v.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        let _w = lock(&self.inner.writer);
        self.check_writable()?;
        self.promote_active()?;
        let kind = self.inner.kind;
        // Writers are serialised by the lock held here: the count and the
        // live keys cannot change until the rows are in.
        let mut next = self.len() as u128;
        let fresh: Vec<Fresh> = {
            let st = self.read();
            let mut fresh = Vec::with_capacity(bodies.len());
            for body in bodies {
                while st.locate(kind, next).is_some() {
                    next += 1;
                }
                if next > u128::from(u64::MAX) {
                    return Err(ShardedError::Option(
                        "no free key left to generate (every key up to 2**64 - 1 is in use)".into(),
                    ));
                }
                fresh.push(Fresh {
                    key: next,
                    body,
                    hide: false,
                });
                next += 1;
            }
            fresh
        };
        self.write_fresh(&fresh)?;
        Ok(fresh.iter().map(|f| f.key as u64).collect())
    }
}
