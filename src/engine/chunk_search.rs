//! Search by granular features: the stored entries that share content
//! segments (chunks) with a query's simprints, scored by the rule of
//! `chunk_score.rs`.
//!
//! Hits of a query simprint come from two places: its exact collisions
//! from the store (complete, whatever the index's search path) and its
//! near matches within the threshold from the type's similarity index
//! (nearest first, up to [`CHUNK_CANDIDATES`]).

use std::collections::{BTreeMap, HashSet};

use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;

use super::chunk_score::{self, Hit, Scored, TypeHits, CHUNK_CANDIDATES};
use super::features::FeatureSet;
use super::index_set::IndexSet;
use super::simprint_index::{key_parts, stored_features};
use super::{EngineError, LocalIndex, SearchParams};
use crate::codec::IsccId;
use crate::index::SearchOptions;

/// The default simprint threshold: a stored chunk matches a query
/// simprint when at least this share of their bits agree.
pub const DEFAULT_SIMPRINT_THRESHOLD: f32 = 0.75;

/// One matched segment (with `detail`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MatchedChunk {
    /// The query simprint (base64url).
    pub query: String,
    /// The entry's matching simprint (base64url).
    #[serde(rename = "match")]
    pub matched: String,
    /// Their similarity (1 − Hamming distance / bits).
    pub score: f32,
    /// Entries matching the query simprint (its document frequency).
    pub freq: u64,
    /// Byte offset of the entry's segment, when the entry gave offsets.
    pub offset: Option<u64>,
    /// Byte size of the entry's segment, when the entry gave sizes.
    pub size: Option<u64>,
    /// Position of the query simprint in its feature set.
    pub query_chunk: usize,
    /// Position of the entry's chunk in its feature set.
    pub chunk: u64,
}

/// How an entry matched the query's simprints of one type.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TypeChunkScore {
    /// IDF-weighted share of the type's query simprints matched.
    pub score: f32,
    /// Query simprints of the type the entry matched.
    pub matches: usize,
    /// Query simprints of the type.
    pub queried: usize,
    /// The matched segments (when `detail` was asked), by query position.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<Vec<MatchedChunk>>,
}

/// An entry that shares segments with the query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChunkMatch {
    /// The entry.
    pub iscc_id: String,
    /// IDF-weighted share of all query simprints matched (0–1).
    pub score: f32,
    /// Per simprint type with a match (`SEMANTIC-TEXT-V0`, …).
    pub types: BTreeMap<String, TypeChunkScore>,
}

impl LocalIndex {
    /// The entries sharing segments with `features`, best first (at most
    /// `params.count`), leaving out the entry `exclude` (a "more like this"
    /// query: `features` are that entry's own). A simprint type
    /// the index does not hold matches nothing; one it holds with another
    /// bit length is an error.
    pub(super) fn search_chunks(
        &self,
        set: &IndexSet,
        features: &[FeatureSet],
        params: &SearchParams,
        exclude: Option<u64>,
    ) -> Result<Vec<ChunkMatch>, EngineError> {
        if features.is_empty() {
            return Ok(Vec::new());
        }
        let threshold = params
            .simprint_threshold
            .unwrap_or(DEFAULT_SIMPRINT_THRESHOLD);
        let held = self.store.read(|r| r.simprint_types())?;
        let mut types: BTreeMap<String, TypeHits> = BTreeMap::new();
        for f in features {
            let name = f.kind.to_string();
            let Some(row) = held.get(&name) else {
                // Nothing stored of the type: no hits, full weight.
                let hits = vec![Vec::new(); f.simprints.len()];
                let entries = 0;
                types.insert(name, type_hits(f, entries, hits));
                continue;
            };
            if row.bits != u64::from(f.bits) {
                return Err(EngineError::Invalid(format!(
                    "query features: simprints of type {name} have {} bits, but this index \
                     holds {}-bit simprints of that type",
                    f.bits, row.bits
                )));
            }
            let hits = self.simprint_hits(set, f, threshold, exclude)?;
            // An excluded entry ("more like this") is not one of the
            // entries the query is weighed against; the query's features
            // are its own, so it holds every queried type.
            let entries = row.entries.saturating_sub(u64::from(exclude.is_some()));
            types.insert(name, type_hits(f, entries, hits));
        }
        let ranked = chunk_score::rank(&types, params.count);
        ranked
            .into_iter()
            .map(|s| self.chunk_match(s, features, params.detail))
            .collect()
    }

    /// Per query simprint of `f`: its exact collisions (store) and near
    /// matches (index) within `threshold`, without the entry `exclude`.
    fn simprint_hits(
        &self,
        set: &IndexSet,
        f: &FeatureSet,
        threshold: f32,
        exclude: Option<u64>,
    ) -> Result<Vec<Vec<Hit>>, EngineError> {
        let name = f.kind.to_string();
        let bits = u32::from(f.bits);
        // Largest distance in bits with 1 − d/bits ≥ threshold.
        let max_bits = ((1.0 - f64::from(threshold)) * f64::from(bits) + 1e-9).floor() as u32;
        let mut hits: Vec<Vec<Hit>> = self.store.read(|r| {
            f.simprints
                .iter()
                .map(|sp| {
                    Ok(r.simprint_matches(&name, sp)?
                        .into_iter()
                        .map(|(id, chunk)| Hit {
                            id,
                            chunk: u64::from(chunk),
                            distance: 0,
                        })
                        .collect())
                })
                .collect()
        })?;
        if let Some(idx) = set.simprint(&f.kind) {
            // Always a scan: the near matches must be complete (see
            // `simprint_options`), whatever `params.exact` asks of units.
            let options = SearchOptions {
                exact: Some(true),
                max_distance: Some(max_bits as f32),
                ..SearchOptions::count(CHUNK_CANDIDATES)
            };
            let found = idx
                .search_batch(&f.simprints, &options)
                .map_err(EngineError::simprint_index(&f.kind))?;
            for (list, near) in hits.iter_mut().zip(found) {
                let seen: HashSet<(u64, u64)> = list.iter().map(|h| (h.id, h.chunk)).collect();
                for m in near {
                    let (id, chunk) = key_parts(m.key);
                    let distance = m.distance.round() as u32;
                    if distance <= max_bits && !seen.contains(&(id, chunk)) {
                        list.push(Hit {
                            id,
                            chunk,
                            distance,
                        });
                    }
                }
            }
        }
        if let Some(x) = exclude {
            for list in &mut hits {
                list.retain(|h| h.id != x);
            }
        }
        Ok(hits)
    }

    /// The public form of a scored entry; with `detail`, each best chunk
    /// with its simprint and segment (read from the stored entry).
    fn chunk_match(
        &self,
        s: Scored,
        features: &[FeatureSet],
        detail: bool,
    ) -> Result<ChunkMatch, EngineError> {
        let stored = if detail {
            match self.store.get_entry(s.id)? {
                Some(json) => stored_features(&json)?,
                None => Vec::new(),
            }
        } else {
            Vec::new()
        };
        let types = s
            .types
            .into_iter()
            .map(|(name, t)| {
                let chunks = detail.then(|| {
                    let query = features.iter().find(|f| f.kind.to_string() == name);
                    let own = stored.iter().find(|f| f.kind.to_string() == name);
                    t.best
                        .iter()
                        .map(|b| matched_chunk(b, query, own))
                        .collect()
                });
                let score = TypeChunkScore {
                    score: t.score as f32,
                    matches: t.matches,
                    queried: t.queried,
                    chunks,
                };
                (name, score)
            })
            .collect();
        Ok(ChunkMatch {
            iscc_id: IsccId::from_u64(s.id, self.realm()).to_string(),
            score: s.score as f32,
            types,
        })
    }
}

fn type_hits(f: &FeatureSet, entries: u64, hits: Vec<Vec<Hit>>) -> TypeHits {
    TypeHits {
        bits: f.bits,
        entries,
        hits,
    }
}

/// One best chunk in its public form.
fn matched_chunk(
    b: &chunk_score::Best,
    query: Option<&FeatureSet>,
    own: Option<&FeatureSet>,
) -> MatchedChunk {
    let chunk = usize::try_from(b.chunk).unwrap_or(usize::MAX);
    let encode = |f: Option<&FeatureSet>, i: usize| {
        f.and_then(|f| f.simprints.get(i))
            .map(|s| BASE64URL_NOPAD.encode(s))
            .unwrap_or_default()
    };
    let segment = |list: Option<&Vec<u64>>| list.and_then(|l| l.get(chunk).copied());
    MatchedChunk {
        query: encode(query, b.query),
        matched: encode(own, chunk),
        score: b.sim as f32,
        freq: b.df,
        offset: segment(own.and_then(|f| f.offsets.as_ref())),
        size: segment(own.and_then(|f| f.sizes.as_ref())),
        query_chunk: b.query,
        chunk: b.chunk,
    }
}
