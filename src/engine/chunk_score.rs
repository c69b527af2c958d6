//! The scoring rule of granular (chunk) matches: which stored entries share
//! segments with a query, and how much of the query they cover.
//!
//! For each query simprint `q` of type `T` (`b` bits), its *hits* are the
//! stored chunks of type `T` within the simprint threshold `t`:
//! `sim = 1 − hamming(q, chunk) / b ≥ t`. Then:
//!
//! * `df(q)` = the number of distinct entries among `q`'s hits (its
//!   document frequency at this threshold: exact and near collisions);
//! * `idf(q) = ln(1 + N_T / (1 + df(q)))`, with `N_T` the entries holding
//!   simprints of type `T` (the smooth IDF iscc-search uses, always > 0
//!   when `N_T > 0`);
//! * for an entry `D`, `best(q, D)` = the highest `sim` of `q` to any chunk
//!   of `D` (0 when none of `D`'s chunks is a hit of `q`);
//! * type score `S_T(D) = Σ_q idf(q)·best(q, D) / Σ_q idf(q)` over the
//!   query's simprints of type `T`; overall score `S(D)` = the same sums
//!   taken over every query simprint of every type: the IDF-weighted share
//!   of the query that `D` covers. A query simprint nobody matches still
//!   weighs in the denominator (with the largest idf), so covering a little
//!   of a long query scores low.
//!
//! Entries are ranked by `S` (descending), ties by ISCC-ID (ascending).
//!
//! Where iscc-search 0.3.3 differs, and why this rule does not follow it:
//! it weighs each (query simprint, entry) pair by the exact-collision count
//! of the *stored* simprint that entry matched, so one query simprint
//! weighs differently per entry and the scores of two entries are not
//! shares of the same whole; here a query simprint has one weight for
//! every entry. It counts only the `limit × 20` nearest chunks per query
//! simprint, so a segment shared by more entries than that is credited to
//! an arbitrary few; here every hit up to [`CHUNK_CANDIDATES`] per query
//! simprint counts (beyond it the nearest are kept and `df` is a lower
//! bound).

use std::collections::{BTreeMap, HashMap, HashSet};

/// The most hits one query simprint contributes (nearest first).
pub const CHUNK_CANDIDATES: usize = 10_000;

/// A stored chunk within the threshold of a query simprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    /// Key of the entry.
    pub(super) id: u64,
    /// Chunk number in the entry's feature set.
    pub(super) chunk: u64,
    /// Hamming distance in bits.
    pub(super) distance: u32,
}

/// The query simprints of one type with their hits.
#[derive(Debug, Clone)]
pub(super) struct TypeHits {
    /// Bits per simprint.
    pub(super) bits: u16,
    /// Entries holding simprints of the type (`N_T`).
    pub(super) entries: u64,
    /// Hits per query simprint, in query order.
    pub(super) hits: Vec<Vec<Hit>>,
}

/// The best chunk of an entry for one query simprint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Best {
    /// Position of the query simprint.
    pub(super) query: usize,
    /// The entry's chunk.
    pub(super) chunk: u64,
    /// Its similarity.
    pub(super) sim: f64,
    /// The query simprint's document frequency.
    pub(super) df: u64,
}

/// An entry's score for one type.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TypeScore {
    pub(super) score: f64,
    /// Query simprints of the type that the entry matched.
    pub(super) matches: usize,
    /// Query simprints of the type.
    pub(super) queried: usize,
    /// Per matched query simprint, the entry's best chunk.
    pub(super) best: Vec<Best>,
}

/// An entry's scores.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Scored {
    pub(super) id: u64,
    pub(super) score: f64,
    /// Per type (by the caller's type key).
    pub(super) types: BTreeMap<String, TypeScore>,
}

/// Smooth inverse document frequency.
pub(super) fn idf(df: u64, entries: u64) -> f64 {
    if entries == 0 {
        return 0.0;
    }
    (1.0 + entries as f64 / (1.0 + df as f64)).ln()
}

/// Score every entry hit by the query (see the module docs) and return
/// the best `count`, best first.
pub(super) fn rank(types: &BTreeMap<String, TypeHits>, count: usize) -> Vec<Scored> {
    // Per type: each query simprint's idf and df.
    let mut total_idf = 0.0;
    let mut weights: BTreeMap<&str, Vec<(f64, u64)>> = BTreeMap::new();
    for (name, t) in types {
        let w: Vec<(f64, u64)> = t
            .hits
            .iter()
            .map(|hits| {
                let df = hits.iter().map(|h| h.id).collect::<HashSet<_>>().len() as u64;
                (idf(df, t.entries), df)
            })
            .collect();
        total_idf += w.iter().map(|(i, _)| i).sum::<f64>();
        weights.insert(name, w);
    }
    // Per entry, per type, per query simprint: the best chunk.
    let mut best: HashMap<u64, BTreeMap<&str, BTreeMap<usize, Best>>> = HashMap::new();
    for (name, t) in types {
        let w = &weights[name.as_str()];
        for (q, hits) in t.hits.iter().enumerate() {
            for h in hits {
                let sim = 1.0 - f64::from(h.distance) / f64::from(t.bits);
                let slot = best
                    .entry(h.id)
                    .or_default()
                    .entry(name)
                    .or_default()
                    .entry(q);
                let candidate = Best {
                    query: q,
                    chunk: h.chunk,
                    sim,
                    df: w[q].1,
                };
                slot.and_modify(|b| {
                    // The most similar chunk; of equals, the first.
                    if sim > b.sim || (sim == b.sim && h.chunk < b.chunk) {
                        *b = candidate;
                    }
                })
                .or_insert(candidate);
            }
        }
    }
    let mut scored: Vec<Scored> = best
        .into_iter()
        .map(|(id, per_type)| {
            let mut sum = 0.0;
            let mut out = BTreeMap::new();
            for (name, picks) in per_type {
                let w = &weights[name];
                let type_idf: f64 = w.iter().map(|(i, _)| i).sum();
                let part: f64 = picks.values().map(|b| w[b.query].0 * b.sim).sum();
                sum += part;
                out.insert(
                    name.to_string(),
                    TypeScore {
                        score: if type_idf > 0.0 { part / type_idf } else { 0.0 },
                        matches: picks.len(),
                        queried: w.len(),
                        best: picks.into_values().collect(),
                    },
                );
            }
            Scored {
                id,
                score: if total_idf > 0.0 {
                    sum / total_idf
                } else {
                    0.0
                },
                types: out,
            }
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    scored.truncate(count);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: u64, chunk: u64, distance: u32) -> Hit {
        Hit {
            id,
            chunk,
            distance,
        }
    }

    fn one_type(entries: u64, hits: Vec<Vec<Hit>>) -> BTreeMap<String, TypeHits> {
        BTreeMap::from([(
            "T".to_string(),
            TypeHits {
                bits: 64,
                entries,
                hits,
            },
        )])
    }

    #[test]
    fn a_rare_shared_chunk_outranks_common_ones() {
        // Query of 3 simprints over 100 entries: q0 and q1 are boilerplate
        // (in 50 entries each), q2 is rare (only in entry 7).
        let common: Vec<Hit> = (10..60).map(|id| hit(id, 0, 0)).collect();
        let hits = vec![common.clone(), common, vec![hit(7, 3, 0)]];
        let ranked = rank(&one_type(100, hits), 100);
        // Entry 7 shares one rare chunk, entries 10.. share two common ones.
        assert_eq!(ranked[0].id, 7);
        let (i_common, i_rare) = (idf(50, 100), idf(1, 100));
        let total = 2.0 * i_common + i_rare;
        assert!((ranked[0].score - i_rare / total).abs() < 1e-12);
        assert!((ranked[1].score - 2.0 * i_common / total).abs() < 1e-12);
        assert_eq!(ranked[0].types["T"].matches, 1);
        assert_eq!(ranked[0].types["T"].queried, 3);
        assert_eq!(ranked[0].types["T"].best[0].chunk, 3);
        assert_eq!(ranked[0].types["T"].best[0].df, 1);
        // Ties between the common entries go by key.
        assert_eq!(ranked[1].id, 10);
        assert_eq!(ranked.len(), 51);
    }

    #[test]
    fn similarity_weighs_and_the_best_chunk_is_kept() {
        // Entry 1 has two chunks near q0 (4 and 16 bits off): the nearer
        // counts; entry 2 matches q0 exactly.
        let hits = vec![vec![hit(1, 5, 16), hit(1, 2, 4), hit(2, 0, 0)], vec![]];
        let ranked = rank(&one_type(10, hits), 10);
        let i0 = idf(2, 10);
        let i1 = idf(0, 10);
        assert_eq!(ranked[0].id, 2);
        assert!((ranked[0].score - i0 / (i0 + i1)).abs() < 1e-12);
        assert_eq!(ranked[1].id, 1);
        let b = ranked[1].types["T"].best[0];
        assert_eq!((b.chunk, b.sim), (2, 1.0 - 4.0 / 64.0));
        assert!((ranked[1].score - i0 * (1.0 - 4.0 / 64.0) / (i0 + i1)).abs() < 1e-12);
        // A full match of every query simprint scores 1.
        let full = rank(
            &one_type(10, vec![vec![hit(3, 0, 0)], vec![hit(3, 1, 0)]]),
            1,
        );
        assert_eq!(full[0].score, 1.0);
    }

    #[test]
    fn types_share_one_whole_and_count_cuts() {
        let mut types = one_type(4, vec![vec![hit(1, 0, 0)]]);
        types.insert(
            "U".into(),
            TypeHits {
                bits: 128,
                entries: 4,
                hits: vec![vec![hit(2, 0, 0)], vec![hit(2, 1, 64)]],
            },
        );
        let ranked = rank(&types, 10);
        let (it, iu0, iu1) = (idf(1, 4), idf(1, 4), idf(1, 4));
        let total = it + iu0 + iu1;
        let two = ranked.iter().find(|s| s.id == 2).unwrap();
        assert!((two.score - (iu0 + 0.5 * iu1) / total).abs() < 1e-12);
        assert!((two.types["U"].score - (iu0 + 0.5 * iu1) / (iu0 + iu1)).abs() < 1e-12);
        assert!(!two.types.contains_key("T"));
        assert_eq!(rank(&types, 1).len(), 1);
        assert!(rank(&BTreeMap::new(), 10).is_empty());
    }
}
