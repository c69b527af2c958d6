//! Search by granular features: synthetic documents made of chunks, some
//! shared between documents (exactly and with a few bits flipped), some
//! unique. Every shared chunk is found with its offset and size, unique
//! ones are not; IDF ranks rare shared chunks above common ones; the
//! threshold decides near matches; "more like this" leaves the entry out;
//! the simprint indexes follow updates, removals, reopens (journal replay),
//! rebuilds, damage and read-only opens.

mod common;

use std::collections::BTreeSet;

use common::lcg;
use data_encoding::BASE64URL_NOPAD;
use iscc_vdb::engine::{
    ChunkMatch, ErrorKind, FeatureSet, IndexOptions, IsccIndex, Query, SearchParams, SimprintType,
};
use iscc_vdb::index::ExactThreshold;
use serde_json::{json, Value};

const CODE: &str = "ISCC:KACYPXW445FTYNJ3CYSXHAFJMA2HUWULUNRFE3BLHRSCXYH2M5AEGQY";

fn id(n: u64) -> String {
    iscc_vdb::codec::IsccId::from_parts(1_700_000_000_000_000 + n, 0, iscc_vdb::codec::Realm::R0)
        .unwrap()
        .to_string()
}

fn random_print(seed: &mut u64, bytes: usize) -> Vec<u8> {
    (0..bytes.div_ceil(8))
        .flat_map(|_| lcg(seed).to_be_bytes())
        .take(bytes)
        .collect()
}

/// `print` with the bits at `positions` flipped.
fn flipped(print: &[u8], positions: &[usize]) -> Vec<u8> {
    let mut out = print.to_vec();
    for p in positions {
        out[p / 8] ^= 0x80 >> (p % 8);
    }
    out
}

/// A document: its chunks' simprints, each chunk 1,000 bytes at 1,000 × i
/// plus the document number (so every segment is told apart).
struct Doc {
    n: u64,
    prints: Vec<Vec<u8>>,
}

impl Doc {
    fn offset(&self, chunk: usize) -> u64 {
        chunk as u64 * 1_000 + self.n
    }

    fn size(&self, chunk: usize) -> u64 {
        900 + chunk as u64
    }

    fn entry(&self) -> Value {
        json!({
            "iscc_id": id(self.n),
            "iscc_code": CODE,
            "features": [{
                "maintype": "content", "subtype": "text", "version": 0,
                "simprints": self.prints.iter().map(|p| BASE64URL_NOPAD.encode(p)).collect::<Vec<_>>(),
                "offsets": (0..self.prints.len()).map(|i| self.offset(i)).collect::<Vec<_>>(),
                "sizes": (0..self.prints.len()).map(|i| self.size(i)).collect::<Vec<_>>(),
            }]
        })
    }
}

fn features(prints: &[Vec<u8>]) -> Vec<FeatureSet> {
    vec![FeatureSet {
        kind: SimprintType::parse("CONTENT-TEXT-V0").unwrap(),
        bits: (prints[0].len() * 8) as u16,
        simprints: prints.to_vec(),
        offsets: None,
        sizes: None,
    }]
}

fn params(count: usize) -> SearchParams {
    SearchParams {
        count,
        detail: true,
        ..SearchParams::default()
    }
}

fn fast() -> IndexOptions {
    IndexOptions {
        durable: false,
        ..IndexOptions::default()
    }
}

fn add(idx: &IsccIndex, docs: &[&Doc]) {
    let entries: Vec<Value> = docs.iter().map(|d| d.entry()).collect();
    let refs: Vec<&Value> = entries.iter().collect();
    idx.add(&refs).unwrap();
}

fn search(idx: &IsccIndex, prints: &[Vec<u8>], p: &SearchParams) -> Vec<ChunkMatch> {
    idx.search(&Query::features(features(prints)), p)
        .unwrap()
        .chunk_matches
}

/// A matched segment: query chunk, entry, entry chunk, offset, size.
type Segment = (usize, String, u64, Option<u64>, Option<u64>);

/// The matched segments, sorted.
fn segments(found: &[ChunkMatch]) -> BTreeSet<Segment> {
    found
        .iter()
        .flat_map(|m| {
            m.types["CONTENT-TEXT-V0"]
                .chunks
                .iter()
                .flatten()
                .map(|c| (c.query_chunk, m.iscc_id.clone(), c.chunk, c.offset, c.size))
        })
        .collect()
}

/// 60 documents of 12 random 128-bit chunks; 8 shared segments, each put
/// into 2–4 documents, exactly or with up to 12 bits flipped. Returns the
/// documents and, per shared segment, its original simprint.
fn corpus() -> (Vec<Doc>, Vec<Vec<u8>>) {
    let mut seed = 7;
    let mut docs: Vec<Doc> = (0..60)
        .map(|n| Doc {
            n,
            prints: (0..12).map(|_| random_print(&mut seed, 16)).collect(),
        })
        .collect();
    let shared: Vec<Vec<u8>> = (0..8).map(|_| random_print(&mut seed, 16)).collect();
    for (s, print) in shared.iter().enumerate() {
        for j in 0..(2 + s % 3) {
            let doc = (s * 7 + j * 13) % 60;
            let chunk = (s + j) % 12;
            let bits: Vec<usize> = (0..(j * 4)).map(|b| (b * 11 + s) % 128).collect();
            docs[doc].prints[chunk] = flipped(print, &bits);
        }
    }
    (docs, shared)
}

#[test]
fn every_shared_chunk_is_found_with_its_segment_and_unique_ones_are_not() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let (docs, shared) = corpus();
    add(&idx, &docs.iter().collect::<Vec<_>>());
    // The query: 4 shared segments (as first stored) and 6 unique chunks.
    let mut seed = 99;
    let mut query: Vec<Vec<u8>> = shared[..4].to_vec();
    query.extend((0..6).map(|_| random_print(&mut seed, 16)));
    let found = search(&idx, &query, &params(100));
    let want = brute_force(&docs, &query, 32);
    assert!(want.len() >= 4 * 2, "the corpus shares segments: {want:?}");
    assert_eq!(segments(&found), want);
    // Unique query chunks are matched by nobody.
    assert!(segments(&found).iter().all(|s| s.0 < 4));
    // Scores: similarity of each chunk, and entries ranked by score.
    for m in &found {
        let t = &m.types["CONTENT-TEXT-V0"];
        assert_eq!(t.queried, 10);
        assert_eq!(t.matches, t.chunks.as_ref().unwrap().len());
        assert!(m.score > 0.0 && m.score < 1.0);
        for c in t.chunks.as_ref().unwrap() {
            assert!(c.score >= 0.75 && c.score <= 1.0);
            assert_eq!(c.query, BASE64URL_NOPAD.encode(&query[c.query_chunk]));
        }
    }
    assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
    // The exact scan finds the same; without detail no chunks are listed.
    let exact = SearchParams {
        exact: true,
        ..params(100)
    };
    assert_eq!(search(&idx, &query, &exact), found);
    let plain = search(&idx, &query, &params(100).with_detail(false));
    assert!(plain
        .iter()
        .all(|m| m.types.values().all(|t| t.chunks.is_none())));
    // count cuts the list.
    assert_eq!(search(&idx, &query, &params(2)), found[..2].to_vec());
}

/// The segments within `max_bits` of each query chunk, by brute force over
/// every document's chunks.
fn brute_force(docs: &[Doc], query: &[Vec<u8>], max_bits: u32) -> BTreeSet<Segment> {
    let mut want = BTreeSet::new();
    for (q, print) in query.iter().enumerate() {
        for d in docs {
            for (c, p) in d.prints.iter().enumerate() {
                let dist: u32 = p.iter().zip(print).map(|(a, b)| (a ^ b).count_ones()).sum();
                if dist <= max_bits {
                    want.insert((q, id(d.n), c as u64, Some(d.offset(c)), Some(d.size(c))));
                }
            }
        }
    }
    want
}

#[test]
fn chunk_matches_stay_complete_when_unit_indexes_are_told_to_walk_graphs() {
    // Unit indexes with a graph from the first row: the simprint indexes
    // still never walk one (a walk cannot promise every chunk in range).
    let mut options = fast();
    options.params.exact_threshold = ExactThreshold::Rows(0);
    let dir = tempfile::tempdir().unwrap();
    let idx = IsccIndex::open(Some(dir.path()), options).unwrap();
    let (docs, shared) = corpus();
    add(&idx, &docs.iter().collect::<Vec<_>>());
    let query: Vec<Vec<u8>> = shared.clone();
    let want = brute_force(&docs, &query, 32);
    assert!(want.len() >= 8 * 2);
    assert_eq!(segments(&search(&idx, &query, &params(100))), want);
    // Saved and reopened: the simprint index's stored options say so too.
    idx.close().unwrap();
    drop(idx);
    let idx = IsccIndex::open(Some(dir.path()), options).unwrap();
    assert_eq!(segments(&search(&idx, &query, &params(100))), want);
    drop(idx);
    let sims: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("simprint-")
        })
        .collect();
    assert_eq!(sims.len(), 1, "{sims:?}");
    let sim = iscc_vdb::index::ShardedIndex::<[u8; 16]>::open_read_only(&sims[0]).unwrap();
    assert_eq!(
        sim.options().exact_threshold,
        ExactThreshold::Rows(usize::MAX)
    );
}

trait Detail {
    fn with_detail(self, on: bool) -> Self;
}

impl Detail for SearchParams {
    fn with_detail(self, on: bool) -> SearchParams {
        SearchParams { detail: on, ..self }
    }
}

#[test]
fn rare_shared_chunks_outrank_common_ones() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let mut seed = 3;
    let boiler: Vec<Vec<u8>> = (0..2).map(|_| random_print(&mut seed, 16)).collect();
    let rare = random_print(&mut seed, 16);
    // 30 documents carry both boilerplate chunks; document 100 carries
    // only the rare chunk.
    let mut docs: Vec<Doc> = (0..30)
        .map(|n| Doc {
            n,
            prints: vec![
                boiler[0].clone(),
                random_print(&mut seed, 16),
                boiler[1].clone(),
            ],
        })
        .collect();
    docs.push(Doc {
        n: 100,
        prints: vec![random_print(&mut seed, 16), rare.clone()],
    });
    add(&idx, &docs.iter().collect::<Vec<_>>());
    let query = vec![boiler[0].clone(), boiler[1].clone(), rare];
    let found = search(&idx, &query, &params(50));
    assert_eq!(found.len(), 31);
    assert_eq!(found[0].iscc_id, id(100));
    let (i_common, i_rare) = ((1.0f64 + 31.0 / 31.0).ln(), (1.0f64 + 31.0 / 2.0).ln());
    let total = 2.0 * i_common + i_rare;
    assert!((f64::from(found[0].score) - i_rare / total).abs() < 1e-5);
    assert!((f64::from(found[1].score) - 2.0 * i_common / total).abs() < 1e-5);
    let chunk = &found[0].types["CONTENT-TEXT-V0"].chunks.as_ref().unwrap()[0];
    assert_eq!((chunk.chunk, chunk.freq, chunk.offset), (1, 1, Some(1_100)));
    assert_eq!(
        found[1].types["CONTENT-TEXT-V0"].chunks.as_ref().unwrap()[0].freq,
        30
    );
}

#[test]
fn the_threshold_decides_near_matches() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let mut seed = 11;
    let base = random_print(&mut seed, 8);
    // Document k holds the base simprint with 4·k bits flipped (k = 0..=6).
    let docs: Vec<Doc> = (0..=6)
        .map(|k| Doc {
            n: k,
            prints: vec![flipped(&base, &(0..(4 * k as usize)).collect::<Vec<_>>())],
        })
        .collect();
    add(&idx, &docs.iter().collect::<Vec<_>>());
    let query = vec![base];
    for (threshold, docs) in [(1.0, 1), (0.9, 2), (0.75, 5), (0.6, 7)] {
        let p = SearchParams {
            simprint_threshold: Some(threshold),
            ..params(10)
        };
        let found = search(&idx, &query, &p);
        let ids: Vec<String> = found.iter().map(|m| m.iscc_id.clone()).collect();
        let want: Vec<String> = (0..docs).map(id).collect();
        assert_eq!(ids, want, "threshold {threshold}");
        for (k, m) in found.iter().enumerate() {
            let sim = 1.0 - (4 * k) as f32 / 64.0;
            assert_eq!(
                m.types["CONTENT-TEXT-V0"].chunks.as_ref().unwrap()[0].score,
                sim
            );
        }
    }
    let bad = SearchParams {
        simprint_threshold: Some(1.5),
        ..params(10)
    };
    let e = idx
        .search(&Query::features(features(&[vec![0; 8]])), &bad)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    assert!(e.to_string().contains("simprint_threshold"), "{e}");
    // Another bit length than the index holds for the type: an error.
    let e = idx
        .search(&Query::features(features(&[vec![0; 16]])), &params(10))
        .unwrap_err();
    assert!(e.to_string().contains("64-bit"), "{e}");
    // A type the index does not hold matches nothing.
    let mut other = features(&[vec![0; 8]]);
    other[0].kind = SimprintType::parse("SEMANTIC-IMAGE-V0").unwrap();
    assert!(idx
        .search(&Query::features(other), &params(10))
        .unwrap()
        .chunk_matches
        .is_empty());
}

#[test]
fn more_like_this_uses_the_entrys_units_and_features_and_leaves_it_out() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let (docs, _) = corpus();
    add(&idx, &docs.iter().collect::<Vec<_>>());
    let like = idx.search(&Query::like(id(0)), &params(100)).unwrap();
    let direct = search(&idx, &docs[0].prints, &params(100));
    // The entry itself is left out of both lists.
    assert!(like.chunk_matches.iter().all(|m| m.iscc_id != id(0)));
    assert!(like.matches.iter().all(|m| m.iscc_id != id(0)));
    assert!(direct.iter().any(|m| m.iscc_id == id(0)));
    let others: BTreeSet<String> = direct
        .iter()
        .map(|m| m.iscc_id.clone())
        .filter(|i| *i != id(0))
        .collect();
    let liked: BTreeSet<String> = like
        .chunk_matches
        .iter()
        .map(|m| m.iscc_id.clone())
        .collect();
    assert_eq!(liked, others);
    assert!(!liked.is_empty());
    // Every document has the same ISCC-CODE: the unit search finds them all
    // but the entry itself.
    assert_eq!(like.matches.len(), 59);
    let e = idx
        .search(&Query::like(id(1_000)), &params(10))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let both = Query {
        iscc_code: Some(CODE.into()),
        ..Query::like(id(0))
    };
    // iscc_id takes precedence over the other fields (as in iscc-search).
    assert_eq!(idx.search(&both, &params(100)).unwrap(), like);
}

/// Every (entry, chunk) that a search for each of `prints` finds, as a set.
fn all_segments(idx: &IsccIndex, prints: &[Vec<u8>]) -> BTreeSet<Segment> {
    segments(&search(idx, prints, &params(1_000)))
}

#[test]
fn updates_removals_reopen_rebuild_damage_and_read_only_opens_agree_with_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idx");
    let (docs, shared) = corpus();
    let idx = IsccIndex::open(Some(&path), fast()).unwrap();
    add(&idx, &docs.iter().collect::<Vec<_>>());
    idx.save().unwrap();
    let before = all_segments(&idx, &shared);
    assert!(!before.is_empty());
    // Update: document 0 loses its chunks; removal: the first other holder
    // of segment 0 goes; an identical re-add changes nothing.
    let holder = before
        .iter()
        .find(|s| s.0 == 0 && s.1 != id(0))
        .map(|s| s.1.clone())
        .unwrap();
    let mut seed = 5;
    let fresh = Doc {
        n: 0,
        prints: (0..3).map(|_| random_print(&mut seed, 16)).collect(),
    };
    add(&idx, &[&fresh, &docs[5]]);
    idx.remove(&[holder.as_str()]).unwrap();
    let after = all_segments(&idx, &shared);
    let want: BTreeSet<_> = before
        .iter()
        .filter(|s| s.1 != id(0) && s.1 != holder)
        .cloned()
        .collect();
    assert_eq!(after, want);
    assert!(all_segments(&idx, &fresh.prints)
        .iter()
        .all(|s| s.1 == id(0)));
    let rows = |i: &IsccIndex| i.simprint_types().unwrap()["CONTENT-TEXT-V0"].chunks;
    assert_eq!(rows(&idx), 60 * 12 - 12 - 12 + 3);
    // Not saved: a reopen replays the journal into the saved simprint index.
    drop(idx);
    let idx = IsccIndex::open(Some(&path), fast()).unwrap();
    assert!(
        idx.info().unwrap().repairs.is_empty(),
        "{:?}",
        idx.info().unwrap().repairs
    );
    assert_eq!(all_segments(&idx, &shared), after);
    // A read-only open (of the unsaved state: it replays in memory) sees
    // the same.
    drop(idx);
    let ro = IsccIndex::open(
        Some(&path),
        IndexOptions {
            read_only: true,
            ..fast()
        },
    )
    .unwrap();
    assert_eq!(all_segments(&ro, &shared), after);
    drop(ro);
    // A rebuild equals the original; so does a compacted index.
    let idx = IsccIndex::open(Some(&path), fast()).unwrap();
    idx.rebuild().unwrap();
    assert_eq!(all_segments(&idx, &shared), after);
    assert!(idx.compact().unwrap() == 0);
    assert_eq!(all_segments(&idx, &shared), after);
    drop(idx);
    // Damage: the simprint index's directory is gone → rebuilt on open.
    let sim_dir = std::fs::read_dir(&path)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("simprint-content-text-v0"))
        .unwrap();
    std::fs::remove_dir_all(path.join(&sim_dir)).unwrap();
    let ro = IsccIndex::open(
        Some(&path),
        IndexOptions {
            read_only: true,
            ..fast()
        },
    )
    .unwrap();
    assert!(ro
        .info()
        .unwrap()
        .repairs
        .iter()
        .any(|r| r.contains("simprint CONTENT-TEXT-V0")));
    assert_eq!(all_segments(&ro, &shared), after);
    drop(ro);
    assert!(
        !path.join(&sim_dir).exists(),
        "a read-only open writes nothing"
    );
    let idx = IsccIndex::open(Some(&path), fast()).unwrap();
    let repairs = idx.info().unwrap().repairs;
    assert!(
        repairs
            .iter()
            .any(|r| r.contains("simprint CONTENT-TEXT-V0")),
        "{repairs:?}"
    );
    assert_eq!(all_segments(&idx, &shared), after);
    // Removing every entry with features leaves no rows.
    let ids: Vec<String> = (0..60).map(id).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    idx.remove(&refs).unwrap();
    assert!(all_segments(&idx, &shared).is_empty());
    assert!(idx.simprint_types().unwrap().is_empty());
    drop(idx);
    let idx = IsccIndex::open(Some(&path), fast()).unwrap();
    assert!(idx.info().unwrap().repairs.is_empty());
}

#[test]
fn a_feature_set_without_simprints_is_ignored() {
    // Found by the REST contract fuzz: an empty set once gave its type a
    // bit length of 0, and `rebuild` then failed to create its index.
    let idx = IsccIndex::open(None, fast()).unwrap();
    let empty = json!({"iscc_id": id(1), "iscc_code": CODE,
        "features": [{"maintype": "content", "subtype": "text", "simprints": [], "sizes": null}],
        "simprints": {"SEMANTIC_TEXT_V0": []}});
    idx.add_values(&empty).unwrap();
    assert!(idx.simprint_types().unwrap().is_empty());
    idx.rebuild().unwrap();
    // The type takes the first real length later.
    let wide = Doc {
        n: 2,
        prints: vec![vec![9; 16]],
    };
    add(&idx, &[&wide]);
    assert_eq!(idx.simprint_types().unwrap()["CONTENT-TEXT-V0"].bits, 128);
    idx.rebuild().unwrap();
    let found = search(&idx, &wide.prints, &params(5));
    assert_eq!(found.len(), 1);
    // The entry as a query: its code is searched, its empty sets match nothing.
    let e = idx
        .search(&Query::of_entry(&empty).unwrap(), &params(5))
        .map(|m| m.chunk_matches.len());
    assert_eq!(e.unwrap(), 0);
}
