//! Search on the Milvus backend: each similarity unit through its type's
//! prefix collections (see the module docs of `milvus` for why this is the
//! local engine's NPHD exactly), INSTANCE units through the INSTANCE
//! collection, then the local engine's aggregation.

use std::collections::{BTreeMap, HashMap, HashSet};

use milvus::value::ValueVec;

use super::super::entry::query_units;
use super::super::matches::Aggregator;
use super::super::search::unit_candidates;
use super::super::{BatchMatches, EngineError, IsccMatches, Query, SearchParams};
use super::{int_list, MilvusIndex, CHUNK};
use crate::codec::{Unit, UnitType};

/// Most rows Milvus returns per query vector.
const MAX_TOPK: usize = 16_384;

/// One sub-search: a unit type's collection of `bits`-bit prefixes, all of
/// it (`filtered` false: codes at least that long) or only codes of exactly
/// that length.
type Group = (UnitType, usize, bool);

/// A sub-search to run: its group, the rows to ask for, the query vectors.
type Ask<'q> = (Group, usize, Vec<&'q [u8]>);

/// One query's unit type: (query number, unit type).
type Slot = (usize, UnitType);

/// `(key, Hamming distance)` rows of one query vector, nearest first.
type Rows = Vec<(i64, u32)>;

/// `(NPHD, key)` best first.
type Ranked = Vec<(f32, u64)>;

impl MilvusIndex {
    /// Search one query.
    pub(crate) fn search(
        &self,
        query: &Query,
        params: &SearchParams,
    ) -> Result<IsccMatches, EngineError> {
        let mut batch = self.search_batch(std::slice::from_ref(query), params)?;
        Ok(batch.queries.pop().unwrap_or_default())
    }

    /// Search many queries: one Milvus search per prefix collection and
    /// filter for the whole batch.
    pub(crate) fn search_batch(
        &self,
        queries: &[Query],
        params: &SearchParams,
    ) -> Result<BatchMatches, EngineError> {
        self.check_open()?;
        params.check()?;
        let mut units: Vec<Vec<Unit>> = Vec::with_capacity(queries.len());
        for (i, q) in queries.iter().enumerate() {
            let context = if queries.len() == 1 {
                "query".to_string()
            } else {
                format!("queries[{i}]")
            };
            if q.is_granular() {
                return Err(self.unsupported(&format!(
                    "{context}: search by granular features or by ISCC-ID (\"more like this\")"
                )));
            }
            units.push(query_units(
                q.iscc_code.as_deref(),
                q.units.as_deref(),
                &context,
            )?);
        }
        let k = unit_candidates(params.count);
        if k > MAX_TOPK {
            return Err(EngineError::Invalid(format!(
                "count {}: a Milvus index answers at most {} matches per search (Milvus returns at most {MAX_TOPK} rows per sub-search)",
                params.count,
                MAX_TOPK * 2 / 3
            )));
        }
        let mut aggs: Vec<Aggregator> = units.iter().map(|_| Aggregator::default()).collect();
        let mut groups: BTreeMap<Group, (Vec<usize>, Vec<&[u8]>)> = BTreeMap::new();
        let mut instance: Vec<(usize, &[u8])> = Vec::new();
        for (qi, list) in units.iter().enumerate() {
            for u in list {
                let (t, body) = (u.unit_type(), u.body());
                if t.is_instance() {
                    instance.push((qi, body));
                    continue;
                }
                for l in (8..=body.len()).step_by(8) {
                    let g = groups.entry((t, l * 8, l < body.len())).or_default();
                    g.0.push(qi);
                    g.1.push(&body[..l]);
                }
            }
        }
        // Over-fetch: Milvus breaks ties at its cut arbitrarily, the local
        // engine by key; 2k + 16 rows and a cut at k after sorting by
        // (distance, key) give the local answer unless rows tie across the
        // cut, which `complete_ties` then fetches.
        let limit = (2 * k + 16).min(MAX_TOPK);
        let nprobe = self.ann.probes(self.nprobe, params.exact);
        let mut present = Vec::new();
        for (group, owned) in groups {
            if self.conn.exists(&self.unit_name(group.0, group.1))? {
                present.push((group, owned));
            }
        }
        // Every sub-search and the INSTANCE lookup side by side: each waits
        // on the server for most of its time (strong consistency).
        let asks: Vec<Ask<'_>> = present
            .iter()
            .map(|(group, (_, vectors))| (*group, limit, vectors.clone()))
            .collect();
        let (found, instance_hits) = std::thread::scope(|s| {
            let instance = s.spawn(|| self.instance_matches(&instance));
            let found = self.fetch_all(&asks, nprobe);
            let instance = instance
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            (found, instance)
        });
        let mut hits: BTreeMap<(usize, UnitType), Vec<Fetched>> = BTreeMap::new();
        for ((group, (owners, vectors)), found) in present.into_iter().zip(found?) {
            for ((qi, rows), vector) in owners.into_iter().zip(found).zip(vectors) {
                hits.entry((qi, group.0)).or_default().push(Fetched {
                    group,
                    vector,
                    limit,
                    rows,
                });
            }
        }
        for ((qi, t), best) in self.complete_ties(hits, k, nprobe)? {
            for (d, key) in best {
                aggs[qi].unit(key, t, d);
            }
        }
        for (qi, key) in instance_hits? {
            aggs[qi].instance(key);
        }
        self.forget_missing(&mut aggs)?;
        let threshold = params.unit_threshold.unwrap_or(self.options.unit_threshold);
        let realm = self.realm_or_default();
        Ok(BatchMatches {
            queries: aggs
                .into_iter()
                .map(|a| a.finish(threshold, params.count, realm))
                .collect(),
        })
    }

    /// The best `k` of each query's unit over its groups, by (NPHD, key)
    /// as the local engine ranks them. A group that returned all the rows
    /// it was asked for may hold back rows tying with its last one; when
    /// such a tie reaches the cut, that group is asked again for more (up
    /// to Milvus's limit) until the cut is certain. Each round asks again
    /// for every such group of the whole batch at once.
    fn complete_ties(
        &self,
        mut open: BTreeMap<Slot, Vec<Fetched<'_>>>,
        k: usize,
        nprobe: Option<usize>,
    ) -> Result<Vec<(Slot, Ranked)>, EngineError> {
        let mut done = Vec::with_capacity(open.len());
        while !open.is_empty() {
            // Per (group, new limit): the vectors to fetch again and where
            // their rows go.
            let mut again: BTreeMap<(Group, usize), Vec<(Slot, usize)>> = BTreeMap::new();
            for (key, fetched) in &mut open {
                let all = best(fetched, k);
                let Some(cut) = all.last().filter(|_| all.len() == k).map(|l| l.0) else {
                    continue;
                };
                for (i, f) in fetched.iter_mut().enumerate() {
                    let held_back = f.rows.len() >= f.limit
                        && f.limit < MAX_TOPK
                        && f.nphd().last().is_some_and(|last| last.0 <= cut);
                    if held_back {
                        f.limit = (f.limit * 4).min(MAX_TOPK);
                        again.entry((f.group, f.limit)).or_default().push((*key, i));
                    }
                }
            }
            let asks: Vec<Ask<'_>> = again
                .iter()
                .map(|((group, limit), owners)| {
                    let vectors = owners.iter().map(|(key, i)| open[key][*i].vector).collect();
                    (*group, *limit, vectors)
                })
                .collect();
            let found = self.fetch_all(&asks, nprobe)?;
            for (owners, rows) in again.values().zip(found) {
                for ((key, i), rows) in owners.iter().zip(rows) {
                    if let Some(f) = open.get_mut(key).and_then(|v| v.get_mut(*i)) {
                        f.rows = rows;
                    }
                }
            }
            let waiting: HashSet<Slot> = again.values().flatten().map(|(key, _)| *key).collect();
            let settled: Vec<Slot> = open
                .keys()
                .filter(|key| !waiting.contains(key))
                .copied()
                .collect();
            for key in settled {
                if let Some(fetched) = open.remove(&key) {
                    done.push((key, best(&fetched, k)));
                }
            }
        }
        Ok(done)
    }

    /// Run the sub-searches `asks` side by side: per ask, per vector, the
    /// rows found.
    fn fetch_all(
        &self,
        asks: &[Ask<'_>],
        nprobe: Option<usize>,
    ) -> Result<Vec<Vec<Rows>>, EngineError> {
        std::thread::scope(|s| {
            let running: Vec<_> = asks
                .iter()
                .map(|(group, limit, vectors)| {
                    let name = self.unit_name(group.0, group.1);
                    let filter = group_filter(*group);
                    s.spawn(move || self.conn.search(&name, vectors, *limit, &filter, nprobe))
                })
                .collect();
            running
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// `(query, key)` for every stored INSTANCE unit that equals a query's
    /// INSTANCE unit or is a prefix of it or has it as prefix (as locally).
    fn instance_matches(&self, units: &[(usize, &[u8])]) -> Result<Vec<(usize, u64)>, EngineError> {
        let name = self.instance_name();
        if units.is_empty() || !self.conn.exists(&name)? {
            return Ok(Vec::new());
        }
        // Every INSTANCE unit has at least 64 bits, so a match shares the
        // first word: fetch the rows of each first word, compare the rest.
        let mut words: Vec<u64> = units
            .iter()
            .map(|(_, b)| u64::from_be_bytes(b[..8].try_into().unwrap_or_default()))
            .collect();
        words.sort_unstable();
        words.dedup();
        let mut stored: HashMap<i64, Vec<(u64, Vec<u8>)>> = HashMap::new();
        for chunk in words.chunks(CHUNK) {
            let expr = format!("w0 in {}", int_list(chunk));
            let mut rows = self.conn.query(&name, &expr, &["id", "w0", "body"])?;
            if let (
                Some(ValueVec::Long(ids)),
                Some(ValueVec::Long(w0)),
                Some(ValueVec::String(bodies)),
            ) = (rows.remove("id"), rows.remove("w0"), rows.remove("body"))
            {
                for ((id, w), body) in ids.into_iter().zip(w0).zip(bodies) {
                    stored.entry(w).or_default().push((id as u64, unhex(&body)));
                }
            }
        }
        let mut out = Vec::new();
        for (qi, body) in units {
            let w = u64::from_be_bytes(body[..8].try_into().unwrap_or_default()) as i64;
            for (key, s) in stored.get(&w).into_iter().flatten() {
                if s.starts_with(body) || body.starts_with(s) {
                    out.push((*qi, *key));
                }
            }
        }
        Ok(out)
    }

    /// Drop candidates without an entries row (an add or remove cut
    /// short: see the module docs).
    fn forget_missing(&self, aggs: &mut [Aggregator]) -> Result<(), EngineError> {
        let mut keys: Vec<u64> = aggs.iter().flat_map(Aggregator::keys).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let present: HashSet<u64> = self.present(&keys)?;
        let gone: HashSet<u64> = keys.into_iter().filter(|k| !present.contains(k)).collect();
        if !gone.is_empty() {
            for a in aggs.iter_mut() {
                a.forget(&gone);
            }
        }
        Ok(())
    }

    /// The keys of `keys` with an entries row.
    fn present(&self, keys: &[u64]) -> Result<HashSet<u64>, EngineError> {
        let entries = self.entries_name();
        let mut out = HashSet::new();
        if !self.conn.exists(&entries)? {
            return Ok(out);
        }
        for chunk in keys.chunks(CHUNK) {
            let expr = format!("id in {}", int_list(chunk));
            if let Some(ValueVec::Long(ids)) =
                self.conn.query(&entries, &expr, &["id"])?.remove("id")
            {
                out.extend(ids.into_iter().map(|k| k as u64));
            }
        }
        Ok(out)
    }
}

/// The Milvus filter of a group: only codes of exactly its length when it
/// is shorter than the query.
fn group_filter((_, bits, filtered): Group) -> String {
    if filtered {
        format!("len == {bits}")
    } else {
        String::new()
    }
}

/// The best `k` rows of one query's unit over its groups, by (NPHD, key)
/// as the local engine ranks them.
fn best(fetched: &[Fetched<'_>], k: usize) -> Ranked {
    let mut all: Ranked = fetched.iter().flat_map(Fetched::nphd).collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    all.truncate(k);
    all
}

/// What one sub-search of one query returned.
struct Fetched<'q> {
    group: Group,
    vector: &'q [u8],
    /// Rows asked for.
    limit: usize,
    /// `(key, Hamming distance)`, nearest first.
    rows: Vec<(i64, u32)>,
}

impl Fetched<'_> {
    /// The rows as `(NPHD, key)`.
    fn nphd(&self) -> Vec<(f32, u64)> {
        let bits = self.group.1 as f32;
        self.rows
            .iter()
            .map(|(key, h)| (*h as f32 / bits, *key as u64))
            .collect()
    }
}

/// Bytes of a lower-case hex string (stored by this backend).
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
