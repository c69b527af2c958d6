//! Search: each similarity unit in its unit type's index (unit types in
//! parallel), INSTANCE units through the store, then aggregation.

use std::collections::BTreeMap;
use std::sync::Arc;

use rayon::prelude::*;

use super::entry::query_units;
use super::index_set::IndexSet;
use super::matches::Aggregator;
use super::{BatchMatches, EngineError, IsccMatches, LocalIndex, Query, SearchParams};
use crate::codec::{Unit, UnitType};
use crate::combine::Combiner;
use crate::index::{cost, CoalesceStats, SearchCounters, SearchOptions, ShardedIndex};

/// Candidates each unit type contributes to a query's aggregation: half as
/// many again as `count`, at least 20, so entries strong on several types
/// are not cut before aggregation (every backend asks for this many).
pub(super) fn unit_candidates(count: usize) -> usize {
    count.saturating_add(count / 2).max(20)
}

impl LocalIndex {
    // ---- search ------------------------------------------------------------

    /// Search one query: its units in the unit indexes (`matches`), its
    /// granular features in the simprint indexes (`chunk_matches`).
    pub fn search(&self, query: &Query, params: &SearchParams) -> Result<IsccMatches, EngineError> {
        self.check_open()?;
        params.check()?;
        if query.is_granular() {
            let set = self.indexes();
            return cost::on_pool(|| self.search_granular(&set, query, params, "query"));
        }
        let units = query_units(query.iscc_code.as_deref(), query.units.as_deref(), "query")?;
        // Concurrent searches with the same parameters are answered as one
        // batch while every core is busy (see `crate::combine`).
        self.search_coalesced(units, params)
    }

    /// [`IsccIndex::search`] of one unit-only query, through the combiner.
    fn search_coalesced(
        &self,
        units: Vec<Unit>,
        params: &SearchParams,
    ) -> Result<IsccMatches, EngineError> {
        self.combiner.run(
            (units, *params),
            |a, b| a.1 == b.1,
            |(units, params)| self.search_units(&self.indexes(), &units, &params, None),
            |requests| {
                let lists: Vec<&[Unit]> = requests.iter().map(|(u, _)| u.as_slice()).collect();
                let found = self
                    .search_unit_lists(&self.indexes(), &lists, &requests[0].1)
                    .ok()?;
                Some(found.into_iter().map(Ok).collect())
            },
        )
    }

    /// Turn the coalescing of concurrent searches on (the default) or off
    /// (a benchmark's baseline): see [`LocalIndex::search`].
    pub fn set_coalescing(&self, on: bool) {
        self.combiner.set_enabled(on);
    }

    /// How many concurrent searches were answered together so far (the
    /// engine's own; unit indexes coalesce their direct callers too).
    pub fn coalesce_stats(&self) -> CoalesceStats {
        self.combiner.stats()
    }

    /// Search many queries: the units of all queries are grouped by unit
    /// type and each unit index answers its group in one batch (exact scans
    /// then share every cached block of rows across queries, in parallel).
    pub fn search_batch(
        &self,
        queries: &[Query],
        params: &SearchParams,
    ) -> Result<BatchMatches, EngineError> {
        self.check_open()?;
        params.check()?;
        self.search_batch_in(&self.indexes(), queries, params)
    }

    /// [`IsccIndex::search_batch`] on one set of indexes.
    fn search_batch_in(
        &self,
        set: &IndexSet,
        queries: &[Query],
        params: &SearchParams,
    ) -> Result<BatchMatches, EngineError> {
        // Unit-only queries are answered together; granular ones (features
        // or "more like this") one by one.
        let mut plain: Vec<usize> = Vec::new();
        let mut units: Vec<Vec<Unit>> = Vec::new();
        let mut out: Vec<Option<IsccMatches>> = vec![None; queries.len()];
        for (i, q) in queries.iter().enumerate() {
            let context = format!("queries[{i}]");
            if q.is_granular() {
                out[i] = Some(self.search_granular(set, q, params, &context)?);
            } else {
                units.push(query_units(
                    q.iscc_code.as_deref(),
                    q.units.as_deref(),
                    &context,
                )?);
                plain.push(i);
            }
        }
        let lists: Vec<&[Unit]> = units.iter().map(Vec::as_slice).collect();
        for (i, found) in plain
            .into_iter()
            .zip(self.search_unit_lists(set, &lists, params)?)
        {
            out[i] = Some(found);
        }
        Ok(BatchMatches {
            queries: out.into_iter().map(Option::unwrap_or_default).collect(),
        })
    }

    /// A query with granular features or by an entry's ISCC-ID: its units
    /// (if any) through the unit indexes, its features through the simprint
    /// indexes; "more like this" leaves the entry itself out of both.
    fn search_granular(
        &self,
        set: &IndexSet,
        query: &Query,
        params: &SearchParams,
        context: &str,
    ) -> Result<IsccMatches, EngineError> {
        let (units, features, exclude) = match &query.iscc_id {
            // "More like this" takes precedence over the other fields.
            Some(id) => {
                let id = self.parse_id(id, &format!("{context}.iscc_id"))?;
                let json = self
                    .store
                    .get_entry(id.value())?
                    .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
                let units = super::stored_units(&json)?;
                let features = super::simprint_index::stored_features(&json)?;
                (units, features, Some(id.value()))
            }
            None if query.iscc_code.is_none() && query.units.is_none() => {
                (Vec::new(), query.features.clone(), None)
            }
            None => (
                query_units(query.iscc_code.as_deref(), query.units.as_deref(), context)?,
                query.features.clone(),
                None,
            ),
        };
        let mut found = self.search_units(set, &units, params, exclude)?;
        found.chunk_matches = self.search_chunks(set, &features, params, exclude)?;
        Ok(found)
    }

    /// The units of many queries: grouped by unit type, each unit index
    /// answering its group in one batch.
    fn search_unit_lists(
        &self,
        set: &IndexSet,
        units: &[&[Unit]],
        params: &SearchParams,
    ) -> Result<Vec<IsccMatches>, EngineError> {
        let threshold = params.unit_threshold.unwrap_or(self.options.unit_threshold);
        let options = Self::unit_search_options(params, threshold);
        let mut aggs: Vec<Aggregator> = units.iter().map(|_| Aggregator::default()).collect();
        let mut by_type: BTreeMap<UnitType, (Vec<usize>, Vec<&[u8]>)> = BTreeMap::new();
        for (qi, list) in units.iter().enumerate() {
            for u in list.iter() {
                let t = u.unit_type();
                if t.is_instance() {
                    for (key, _) in self.store.instance_matches(u.body())? {
                        aggs[qi].instance(key);
                    }
                } else {
                    let e = by_type.entry(t).or_default();
                    e.0.push(qi);
                    e.1.push(u.body());
                }
            }
        }
        for (t, (owners, bodies)) in by_type {
            let Some(idx) = set.unit(t) else {
                continue;
            };
            let counters: Vec<SearchCounters> = owners.iter().map(|_| Default::default()).collect();
            let results = idx
                .search_batch_counted(&bodies, &options, &counters)
                .map_err(EngineError::index(t))?;
            for (qi, c) in owners.iter().zip(&counters) {
                aggs[*qi].counters.add(c.visited(), c.computed());
            }
            for (qi, found) in owners.into_iter().zip(results) {
                for m in found {
                    aggs[qi].unit(m.key, t, m.distance);
                }
            }
        }
        let realm = self.realm();
        Ok(aggs
            .into_par_iter()
            .map(|a| a.finish(threshold, params.count, realm))
            .collect())
    }

    /// Unit-index search options: more candidates per unit type than
    /// `count` (half as many again, at least 20), so entries strong on
    /// several types are not cut before aggregation; recall needed within
    /// `threshold`'s distance only (a unit score below it counts for
    /// nothing: lists beyond a query's near neighbours need no probe).
    fn unit_search_options(params: &SearchParams, threshold: f32) -> SearchOptions {
        SearchOptions {
            exact: params.exact.then_some(true),
            recall_within: Some(1.0 - threshold),
            ..SearchOptions::count(unit_candidates(params.count))
        }
    }

    /// Search one query's units; `exclude` is an entry never returned
    /// (asked for one more, so `count` still comes back).
    fn search_units(
        &self,
        set: &IndexSet,
        units: &[Unit],
        params: &SearchParams,
        exclude: Option<u64>,
    ) -> Result<IsccMatches, EngineError> {
        let threshold = params.unit_threshold.unwrap_or(self.options.unit_threshold);
        let mut agg = Aggregator::default();
        agg.exclude = exclude;
        let wanted = SearchParams {
            count: params.count.saturating_add(usize::from(exclude.is_some())),
            ..*params
        };
        let options = Self::unit_search_options(&wanted, threshold);
        // Unit types are searched in parallel where that pays for the
        // hand-off to the thread pool (see `index::cost`), else one after
        // another on the calling thread; INSTANCE lookups go to the store.
        let similar: Vec<(&Unit, Arc<ShardedIndex<u64>>)> = units
            .iter()
            .filter(|u| !u.unit_type().is_instance())
            .filter_map(|u| set.unit(u.unit_type()).map(|idx| (u, idx)))
            .collect();
        let counters = &agg.counters;
        let one = |(u, idx): &(&Unit, Arc<ShardedIndex<u64>>)| {
            let t = u.unit_type();
            idx.search_counted(u.body(), &options, counters)
                .map(|m| (t, m))
                .map_err(EngineError::index(t))
        };
        let estimate = || cost::sum(similar.iter().map(|(_, i)| i.search_estimate_ns(&options)));
        let found: Vec<(UnitType, Vec<crate::index::Match<u64>>)> =
            if cost::worth_splitting(similar.len(), estimate) {
                similar.par_iter().map(one).collect::<Result<_, _>>()?
            } else {
                similar.iter().map(one).collect::<Result<_, _>>()?
            };
        for (t, matches) in found {
            for m in matches {
                agg.unit(m.key, t, m.distance);
            }
        }
        for u in units.iter().filter(|u| u.unit_type().is_instance()) {
            for (key, _) in self.store.instance_matches(u.body())? {
                agg.instance(key);
            }
        }
        Ok(agg.finish(threshold, params.count, self.realm()))
    }
}

/// The combiner of an engine's concurrent single searches: a query's units
/// with its parameters.
pub(super) type SearchCombiner =
    Combiner<(Vec<Unit>, SearchParams), Result<IsccMatches, EngineError>>;
