//! Search across shards: every shard searched in parallel (hidden rows
//! filtered inside each shard's graph walk or scan), then a top-k merge
//! ordered by distance and key.

use std::collections::HashSet;
use std::sync::Arc;

use rayon::prelude::*;

use super::shard::Shard;
use super::tombstones::Tombstones;
use super::{ShardKey, ShardedError, ShardedIndex};
use crate::combine::{CoalesceStats, Combiner};
use crate::index::flat::SharedBound;
use crate::index::{cost, Hit, SearchCounters, SearchOptions};

impl<K: ShardKey> ShardedIndex<K> {
    fn snapshot(&self) -> (Vec<Arc<Shard>>, Arc<Tombstones>, HashSet<u32>) {
        let st = self.read();
        let dead = st
            .dead
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(id, _)| *id)
            .collect();
        (st.shards(), Arc::clone(&st.tombstones), dead)
    }

    fn unit_options(&self, options: &SearchOptions) -> SearchOptions {
        let vk = self.inner.options.vectors;
        SearchOptions {
            max_distance: options.max_distance.map(|d| vk.nphd_bound(d)),
            recall_within: options.recall_within.map(|d| vk.nphd_bound(d)),
            ..*options
        }
    }

    fn query_body(&self, query: &[u8]) -> Result<Vec<u8>, ShardedError> {
        self.inner
            .options
            .vectors
            .query(query)
            .map_err(|why| ShardedError::Vector { key: None, why })
    }

    /// Merge per-shard hits: by distance, then key; one entry per key
    /// (distances as the unit indexes give them, keys as `u128`).
    fn merge_raw(per_shard: Vec<(Arc<Shard>, Vec<Hit>)>, count: usize) -> Vec<(f32, u128)> {
        let mut all: Vec<(f32, u128)> = per_shard
            .iter()
            .flat_map(|(s, hits)| {
                hits.iter()
                    .filter_map(|h| s.key(h.key).map(|k| (h.distance, k)))
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut seen = HashSet::with_capacity(all.len());
        all.retain(|(_, k)| seen.insert(*k));
        all.truncate(count);
        all
    }

    fn to_matches(&self, raw: Vec<(f32, u128)>) -> Vec<Match<K>> {
        let vk = self.inner.options.vectors;
        raw.into_iter()
            .map(|(d, k)| Match {
                key: K::from_u128(k),
                distance: vk.distance(d),
            })
            .collect()
    }

    /// Search every shard (in parallel) and merge the top `count`; ties by
    /// key. `options.exact`, `expansion_search` and `max_distance` apply per
    /// shard (`max_distance` in the index's distance unit).
    ///
    /// Concurrent calls are coalesced: while every core is busy with a
    /// search, calls from other threads wait and are answered together as
    /// one batch (each block of rows read once for all of them), each with
    /// exactly the result it would have had alone (see
    /// [`ShardedIndex::set_coalescing`]).
    pub fn search(
        &self,
        query: &[u8],
        options: &SearchOptions,
    ) -> Result<Vec<Match<K>>, ShardedError> {
        self.search_counted(query, options, &SearchCounters::default())
    }

    /// [`ShardedIndex::search`], adding what the search cost in every
    /// shard to `counters`.
    pub fn search_counted(
        &self,
        query: &[u8],
        options: &SearchOptions,
        counters: &SearchCounters,
    ) -> Result<Vec<Match<K>>, ShardedError> {
        self.check_open()?;
        let body = self.query_body(query)?;
        let unit = self.unit_options(options);
        if unit.threads.is_some() {
            // A caller's own thread count asks for a pool of its own.
            return Ok(self.to_matches(self.search_one(&body, &unit, counters)?));
        }
        let solo = |(body, unit): (Vec<u8>, SearchOptions)| -> SearchReply {
            let c = SearchCounters::default();
            let raw = self.search_one(&body, &unit, &c)?;
            Ok((raw, c.visited(), c.computed()))
        };
        let batch = |requests: &[(Vec<u8>, SearchOptions)]| -> Option<Vec<SearchReply>> {
            let bodies: Vec<&[u8]> = requests.iter().map(|(b, _)| b.as_slice()).collect();
            let counters: Vec<SearchCounters> = bodies.iter().map(|_| Default::default()).collect();
            let raw = self
                .search_bodies(&bodies, &requests[0].1, &counters)
                .ok()?;
            Some(
                raw.into_iter()
                    .zip(&counters)
                    .map(|(r, c)| Ok((r, c.visited(), c.computed())))
                    .collect(),
            )
        };
        let (raw, visited, computed) =
            self.inner
                .combiner
                .run((body, unit), |a, b| a.1 == b.1, solo, batch)?;
        counters.add(visited, computed);
        Ok(self.to_matches(raw))
    }

    /// Turn the coalescing of concurrent searches on (the default) or off
    /// (every call then searches on its own at once, as a benchmark's
    /// baseline).
    pub fn set_coalescing(&self, on: bool) {
        self.inner.combiner.set_enabled(on);
    }

    /// How many concurrent searches were answered together so far.
    pub fn coalesce_stats(&self) -> CoalesceStats {
        self.inner.combiner.stats()
    }

    /// One query body over every shard with unit-index `unit` options.
    fn search_one(
        &self,
        body: &[u8],
        unit: &SearchOptions,
        counters: &SearchCounters,
    ) -> Result<Vec<(f32, u128)>, ShardedError> {
        let (shards, tomb, dead) = self.snapshot();
        // The shards' exact scans share the query's top-k bound: a shard's
        // rows out of reach of what the others already found are not read
        // further (results as without it; see `SharedBound`).
        let bound = SharedBound::default();
        let one = |s: &Arc<Shard>| {
            let keep = |label: u64| s.key(label).is_some_and(|k| !tomb.is_dead(k, s.id));
            let filter: Option<&(dyn Fn(u64) -> bool + Sync)> = if dead.contains(&s.id) {
                Some(&keep)
            } else {
                None
            };
            s.index
                .search_shared(body, unit, filter, counters, Some(&bound))
                .map(|hits| (Arc::clone(s), hits))
        };
        // Shards in parallel where that pays for the hand-off (see
        // `index::cost`), else one after another on the calling thread.
        let estimate = || cost::sum(shards.iter().map(|s| s.index.search_estimate_ns(unit)));
        let per_shard: Vec<(Arc<Shard>, Vec<Hit>)> =
            if cost::worth_splitting(shards.len(), estimate) {
                shards.par_iter().map(one).collect::<Result<_, _>>()?
            } else {
                shards.iter().map(one).collect::<Result<_, _>>()?
            };
        Ok(Self::merge_raw(per_shard, unit.count))
    }

    /// The estimated time of one search over every shard (see
    /// [`UnitIndex::search_estimate_ns`]; `None` before it can be told).
    ///
    /// [`UnitIndex::search_estimate_ns`]: crate::index::UnitIndex::search_estimate_ns
    pub fn search_estimate_ns(&self, options: &SearchOptions) -> Option<f64> {
        let unit = self.unit_options(options);
        let (shards, _, _) = self.snapshot();
        cost::sum(shards.iter().map(|s| s.index.search_estimate_ns(&unit)))
    }

    /// Search many queries; each shard runs the batch in parallel over
    /// queries, then results are merged per query.
    pub fn search_batch<B: AsRef<[u8]> + Sync>(
        &self,
        queries: &[B],
        options: &SearchOptions,
    ) -> Result<Vec<Vec<Match<K>>>, ShardedError> {
        let counters: Vec<SearchCounters> = queries.iter().map(|_| Default::default()).collect();
        self.search_batch_counted(queries, options, &counters)
    }

    /// [`ShardedIndex::search_batch`], adding what each query's search cost
    /// to its element of `counters` (one per query).
    pub fn search_batch_counted<B: AsRef<[u8]> + Sync>(
        &self,
        queries: &[B],
        options: &SearchOptions,
        counters: &[SearchCounters],
    ) -> Result<Vec<Vec<Match<K>>>, ShardedError> {
        self.check_open()?;
        if counters.len() != queries.len() {
            return Err(ShardedError::Option(format!(
                "{} counters for {} queries",
                counters.len(),
                queries.len()
            )));
        }
        let bodies: Vec<Vec<u8>> = queries
            .iter()
            .map(|q| self.query_body(q.as_ref()))
            .collect::<Result<_, _>>()?;
        let unit = self.unit_options(options);
        Ok(self
            .search_bodies(&bodies, &unit, counters)?
            .into_iter()
            .map(|raw| self.to_matches(raw))
            .collect())
    }

    /// Query bodies over every shard with unit-index `unit` options: each
    /// shard answers the whole batch, then results are merged per query.
    fn search_bodies<B: AsRef<[u8]> + Sync>(
        &self,
        bodies: &[B],
        unit: &SearchOptions,
        counters: &[SearchCounters],
    ) -> Result<Vec<Vec<(f32, u128)>>, ShardedError> {
        let (shards, tomb, dead) = self.snapshot();
        let mut per_query: Vec<Vec<(Arc<Shard>, Vec<Hit>)>> =
            (0..bodies.len()).map(|_| Vec::new()).collect();
        for s in &shards {
            let keep = |label: u64| s.key(label).is_some_and(|k| !tomb.is_dead(k, s.id));
            let filter: Option<&(dyn Fn(u64) -> bool + Sync)> = if dead.contains(&s.id) {
                Some(&keep)
            } else {
                None
            };
            let results = s
                .index
                .search_batch_counted(bodies, unit, filter, counters)?;
            for (q, hits) in per_query.iter_mut().zip(results) {
                q.push((Arc::clone(s), hits));
            }
        }
        Ok(per_query
            .into_iter()
            .map(|per_shard| Self::merge_raw(per_shard, unit.count))
            .collect())
    }
}

/// What one coalesced search gives its caller: merged hits (unit-index
/// distances, `u128` keys) and its cost (visited, computed).
pub(super) type SearchReply = Result<(Vec<(f32, u128)>, u64, u64), ShardedError>;

/// The combiner of a sharded index's concurrent single searches: a query
/// body with its unit-index options.
pub(super) type SearchCombiner = Combiner<(Vec<u8>, SearchOptions), SearchReply>;

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match<K> {
    /// The key.
    pub key: K,
    /// NPHD (0.0–1.0) or Hamming bit count, by vector kind.
    pub distance: f32,
}
