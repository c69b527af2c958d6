//! Search results and the aggregation rule.
//!
//! Per query and candidate, each unit type keeps its best unit score
//! `s = 1 − NPHD`. Scores below `unit_threshold` are dropped; an INSTANCE
//! match counts as a kept score of 1.0; a candidate with no kept score is
//! dropped. The total is `Σ s⁴ / Σ s` over the kept scores (a weighted mean
//! that favours strong matches), and matches are ordered by total
//! (descending), then by ISCC-ID (ascending) so the order is deterministic.
//! Every match carries its per-unit-type scores and distances, so a caller
//! can re-aggregate.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::codec::{IsccId, Realm, UnitType};
use crate::index::SearchCounters;

/// Default `unit_threshold`.
pub const DEFAULT_UNIT_THRESHOLD: f32 = 0.75;

/// The best match of one unit type for a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct UnitScore {
    /// `1 − distance`.
    pub score: f32,
    /// NPHD between the query unit and the stored unit.
    pub distance: f32,
    /// True when the score counts towards the total (≥ `unit_threshold`).
    pub kept: bool,
}

/// One matching entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IsccMatch {
    /// The entry's ISCC-ID.
    pub iscc_id: String,
    /// The ISCC-ID as its u64 key.
    #[serde(skip)]
    pub key: u64,
    /// The aggregated score (0–1).
    pub score: f32,
    /// `1 − score`.
    pub distance: f32,
    /// Per unit type (e.g. `CONTENT-TEXT-V0`), the best unit score.
    pub units: BTreeMap<String, UnitScore>,
    /// True when an INSTANCE unit matched exactly or by prefix.
    pub instance: bool,
}

/// The result of one query.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IsccMatches {
    /// Matches, best first.
    pub matches: Vec<IsccMatch>,
    /// ISCC-IDs of every entry whose INSTANCE unit matched (also beyond
    /// `count`), ascending.
    pub instance_matches: Vec<String>,
    /// Members the similarity search looked at, over every unit type and
    /// shard: rows of exact scans plus graph nodes the HNSW walks took into
    /// their candidate sets (see [`crate::index::SearchCounters`]).
    pub visited_members: u64,
    /// Distances the similarity search computed (rows of exact scans plus
    /// the NPHD computations of graph walks).
    pub computed_distances: u64,
    /// Entries sharing content segments with the query's granular
    /// features, best first (empty for a query without features).
    pub chunk_matches: Vec<super::ChunkMatch>,
}

impl IsccMatches {
    /// Number of matches.
    pub fn len(&self) -> usize {
        self.matches.len()
    }

    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    /// The ISCC-IDs, best first.
    pub fn keys(&self) -> Vec<&str> {
        self.matches.iter().map(|m| m.iscc_id.as_str()).collect()
    }
}

/// The results of a batch of queries.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BatchMatches {
    /// One result per query, in query order.
    pub queries: Vec<IsccMatches>,
}

impl BatchMatches {
    /// Mean recall against expected ISCC-IDs: per query, the share of the
    /// first `count` expected IDs (or all, when `None`) found among the first
    /// `count` matches; queries with nothing expected are skipped.
    pub fn mean_recall(&self, expected: &[Vec<String>], count: Option<usize>) -> f64 {
        let mut sum = 0.0;
        let mut n = 0usize;
        for (got, want) in self.queries.iter().zip(expected) {
            let k = count.unwrap_or(want.len());
            let want: HashSet<&str> = want.iter().take(k).map(String::as_str).collect();
            if want.is_empty() {
                continue;
            }
            let found = got
                .matches
                .iter()
                .take(k)
                .filter(|m| want.contains(m.iscc_id.as_str()))
                .count();
            sum += found as f64 / want.len() as f64;
            n += 1;
        }
        if n == 0 {
            0.0
        } else {
            sum / n as f64
        }
    }
}

#[derive(Default)]
struct Candidate {
    units: BTreeMap<UnitType, (f32, f32)>,
    instance: bool,
}

/// Collects per-unit-type hits of one query and aggregates them.
#[derive(Default)]
pub(crate) struct Aggregator {
    candidates: HashMap<u64, Candidate>,
    instance: Vec<u64>,
    /// What the query's unit index searches cost.
    pub(crate) counters: SearchCounters,
    /// An entry never to return ("more like this" leaves out its own).
    pub(crate) exclude: Option<u64>,
}

impl Aggregator {
    /// A unit-type hit at NPHD `distance`.
    pub(crate) fn unit(&mut self, key: u64, unit_type: UnitType, distance: f32) {
        let score = 1.0 - distance;
        let c = self.candidates.entry(key).or_default();
        let best = c.units.entry(unit_type).or_insert((score, distance));
        if score > best.0 {
            *best = (score, distance);
        }
    }

    /// An INSTANCE match.
    pub(crate) fn instance(&mut self, key: u64) {
        self.candidates.entry(key).or_default().instance = true;
        self.instance.push(key);
    }

    /// Every candidate's key (units and INSTANCE matches).
    #[cfg(feature = "milvus")]
    pub(crate) fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.candidates.keys().copied()
    }

    /// Forget the candidates of `gone` (entries a backend found missing).
    #[cfg(feature = "milvus")]
    pub(crate) fn forget(&mut self, gone: &HashSet<u64>) {
        self.candidates.retain(|k, _| !gone.contains(k));
        self.instance.retain(|k| !gone.contains(k));
    }

    /// Aggregate and keep the best `count`.
    pub(crate) fn finish(mut self, threshold: f32, count: usize, realm: Realm) -> IsccMatches {
        let id = |k: u64| IsccId::from_u64(k, realm).to_string();
        if let Some(x) = self.exclude {
            self.candidates.remove(&x);
            self.instance.retain(|k| *k != x);
        }
        let mut scored: Vec<(f32, u64, Candidate)> = self
            .candidates
            .drain()
            .filter_map(|(key, c)| {
                let kept = c
                    .units
                    .values()
                    .map(|(s, _)| *s)
                    .filter(|s| *s >= threshold)
                    .chain(c.instance.then_some(1.0));
                let (num, den) = kept.fold((0.0f64, 0.0f64), |(n, d), s| {
                    let s = f64::from(s);
                    (n + s.powi(4), d + s)
                });
                (den > 0.0).then(|| ((num / den) as f32, key, c))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.truncate(count);
        self.instance.sort_unstable();
        self.instance.dedup();
        IsccMatches {
            matches: scored
                .into_iter()
                .map(|(total, key, c)| IsccMatch {
                    iscc_id: id(key),
                    key,
                    score: total,
                    distance: 1.0 - total,
                    units: c
                        .units
                        .into_iter()
                        .map(|(t, (score, distance))| {
                            (
                                t.name(),
                                UnitScore {
                                    score,
                                    distance,
                                    kept: score >= threshold,
                                },
                            )
                        })
                        .collect(),
                    instance: c.instance,
                })
                .collect(),
            instance_matches: self.instance.into_iter().map(id).collect(),
            visited_members: self.counters.visited(),
            computed_distances: self.counters.computed(),
            chunk_matches: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_rule_on_hand_made_cases() {
        let mut a = Aggregator::default();
        // Key 1: two kept scores 0.9 and 0.8 → (0.9⁴+0.8⁴)/(0.9+0.8).
        a.unit(1, UnitType::CONTENT_TEXT, 0.1);
        a.unit(1, UnitType::META, 0.2);
        a.unit(1, UnitType::META, 0.5); // worse: ignored
                                        // Key 2: one kept 0.95, one dropped 0.5.
        a.unit(2, UnitType::CONTENT_TEXT, 0.05);
        a.unit(2, UnitType::DATA, 0.5);
        // Key 3: only below the threshold → dropped.
        a.unit(3, UnitType::DATA, 0.3);
        // Key 4: INSTANCE only → total 1.0.
        a.instance(4);
        // Keys 5 and 6 tie: order by key.
        a.unit(6, UnitType::CONTENT_TEXT, 0.2);
        a.unit(5, UnitType::CONTENT_TEXT, 0.2);
        let m = a.finish(0.75, 10, Realm::new(0).unwrap());
        let keys: Vec<u64> = m.matches.iter().map(|m| m.key).collect();
        assert_eq!(keys, vec![4, 2, 1, 5, 6]);
        let t1 = (0.9f64.powi(4) + 0.8f64.powi(4)) / (0.9 + 0.8);
        let got1 = m.matches.iter().find(|m| m.key == 1).unwrap();
        assert!((f64::from(got1.score) - t1).abs() < 1e-5);
        let got2 = m.matches.iter().find(|m| m.key == 2).unwrap();
        assert!((got2.score - 0.95f32.powi(3)).abs() < 1e-5);
        assert!(!got2.units["DATA-NONE-V0"].kept);
        assert_eq!(m.matches[0].score, 1.0);
        assert!(m.matches[0].instance);
        assert_eq!(m.instance_matches.len(), 1);
        // A lower threshold keeps key 3.
        let mut b = Aggregator::default();
        b.unit(3, UnitType::DATA, 0.3);
        assert_eq!(b.finish(0.5, 10, Realm::new(0).unwrap()).len(), 1);
    }

    #[test]
    fn mean_recall_counts_overlap() {
        let q = |ids: &[&str]| IsccMatches {
            matches: ids
                .iter()
                .map(|i| IsccMatch {
                    iscc_id: i.to_string(),
                    key: 0,
                    score: 1.0,
                    distance: 0.0,
                    units: BTreeMap::new(),
                    instance: false,
                })
                .collect(),
            ..IsccMatches::default()
        };
        let b = BatchMatches {
            queries: vec![q(&["a", "b", "c"]), q(&["x"])],
        };
        let want = vec![vec!["a".to_string(), "c".into()], vec!["y".to_string()]];
        assert_eq!(b.mean_recall(&want, None), 0.25);
        assert_eq!(b.mean_recall(&want, Some(3)), 0.5);
        assert_eq!(b.mean_recall(&want, Some(1)), 0.5);
    }
}
