//! Compact graph files (`index::graph::compact`) against the unit index
//! that writes them: usearch gets back exactly the bytes it wrote, files
//! of the older formats still open, and a graph paired with the wrong flat
//! store is refused.

use super::file::{graph_path, SavedGraph};
use super::{UnitIndex, UnitIndexOptions};
use crate::index::graph::{compact, expand};
use crate::index::IndexError;

/// A body for `key` (version `v`): every stored length, every seventh row
/// byte-granular.
fn body(key: u64, v: u64) -> Vec<u8> {
    let len = if key % 7 == 3 {
        1 + (key as usize % 31)
    } else {
        8 * (1 + (key as usize % 4))
    };
    (0..len)
        .map(|i| {
            ((key ^ v << 40).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 8 * 8)) as u8 ^ i as u8
        })
        .collect()
}

/// A graph index of 600 rows, 86 removed and 8 of those added again with
/// other bodies: the graph keeps freed nodes (their vectors are not in the
/// flat store) beside live ones.
fn churned() -> UnitIndex {
    let index = UnitIndex::new(UnitIndexOptions {
        exact_threshold: 0.into(),
        ..UnitIndexOptions::default()
    })
    .unwrap();
    for k in 0..600 {
        assert!(index.add(k, &body(k, 0)).unwrap());
    }
    for k in (0..600).step_by(7) {
        assert!(index.remove(k).unwrap());
    }
    for k in (0..600).step_by(11).filter(|k| k % 7 == 0) {
        assert!(index.add(k, &body(k, 1)).unwrap());
    }
    index
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The bytes usearch writes for a state's graph.
fn graph_bytes(state: &super::state::State) -> Vec<u8> {
    state
        .graph
        .with(&state.flat, |g| g.to_bytes())
        .unwrap()
        .unwrap()
}

#[test]
fn a_compact_graph_expands_to_the_bytes_usearch_wrote() {
    let index = churned();
    let state = index.snapshot();
    let full = graph_bytes(&state);
    let c = compact(&full, &state.flat).unwrap();
    let file = [&c.prefix[..], c.tail].concat();
    let slots = u64_at(&file, 16) as usize;
    let inline = u64_at(&file, 24) as usize;
    assert_eq!(
        slots,
        u32::from_le_bytes(full[..4].try_into().unwrap()) as usize
    );
    // Every live row is named in the flat store; only freed nodes are inline.
    assert_eq!(state.flat.len(), 600 - 86 + 8);
    assert_eq!(inline, slots - state.flat.len());
    assert!(inline > 0, "the churn left no freed node to keep inline");
    // 33 bytes a slot become a 4-byte reference, plus the inline rows.
    let pad = c.prefix.len() - (32 + 4 * slots + 33 * inline);
    assert!(pad < 8);
    assert_eq!(
        full.len() + 24 + pad + 4 * slots,
        file.len() + 33 * (slots - inline)
    );
    assert_eq!(expand(&file, &state.flat).unwrap(), full);
}

#[test]
fn a_compact_graph_refuses_another_flat_store_and_damage() {
    let index = churned();
    let state = index.snapshot();
    let full = graph_bytes(&state);
    let c = compact(&full, &state.flat).unwrap();
    let file = [&c.prefix[..], c.tail].concat();

    // The same keys in another order: every reference names another key.
    let mut reordered = crate::index::flat::FlatStore::default();
    let mut rows = state.flat.all_rows();
    rows.reverse();
    for (k, row) in &rows {
        reordered.insert(*k, row);
    }
    let err = expand(&file, &reordered).unwrap_err();
    assert!(err.contains("is key"), "{err}");
    // Fewer rows than the references name.
    let mut fewer = crate::index::flat::FlatStore::default();
    for (k, row) in rows.iter().take(10) {
        fewer.insert(*k, row);
    }
    let err = expand(&file, &fewer).unwrap_err();
    assert!(err.contains("names row") || err.contains("is key"), "{err}");
    // Cut anywhere, or without its magic.
    for cut in [
        0,
        20,
        40,
        c.prefix.len() - 1,
        c.prefix.len() + 50,
        file.len() - 1,
    ] {
        assert!(expand(&file[..cut], &state.flat).is_err(), "cut at {cut}");
    }
    let mut magic = file.clone();
    magic[0] ^= 1;
    assert!(expand(&magic, &state.flat).unwrap_err().contains("magic"));
    // An inline reference past the inline rows.
    let mut bad = file.clone();
    let inline_ref = (0..u64_at(&file, 16) as usize)
        .map(|s| 32 + 4 * s)
        .find(|&at| file[at + 3] & 0x80 != 0)
        .unwrap();
    bad[inline_ref..inline_ref + 4].copy_from_slice(&(0x8000_0000u32 | 99_999).to_le_bytes());
    assert!(expand(&bad, &state.flat)
        .unwrap_err()
        .contains("inline row"));
}

#[test]
fn saved_graphs_are_compact_and_files_of_the_older_forms_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let index = churned();
    let queries: Vec<Vec<u8>> = (0..600).step_by(23).map(|k| body(k, 0)).collect();
    let answers: Vec<_> = queries
        .iter()
        .map(|q| index.search(q, 10).unwrap())
        .collect();

    let path = dir.path().join("compact.ivdb");
    index.save(&path).unwrap();
    let graph = std::fs::read(graph_path(&path)).unwrap();
    assert_eq!(&graph[..8], b"IVDBGRC1");
    assert_eq!(std::fs::read(&path).unwrap()[8..12], 3u32.to_le_bytes());
    let full_len = {
        let state = index.snapshot();
        state
            .graph
            .with(&state.flat, |g| g.serialized_length())
            .unwrap()
    };
    assert!(
        graph.len() + 20 * 500 < full_len,
        "{} vs {full_len}",
        graph.len()
    );

    // The same index with its graph in usearch's form (format 2: it has
    // byte-granular rows), as earlier builds wrote it.
    let old = dir.path().join("old.ivdb");
    {
        let state = index.snapshot();
        let saved = SavedGraph::usearch_form(&state).unwrap();
        let mut main = Vec::new();
        UnitIndex::write_main(&mut main, &state, &saved, index.saved_attempt()).unwrap();
        std::fs::write(&old, &main).unwrap();
        std::fs::write(graph_path(&old), saved.parts().concat()).unwrap();
        assert_eq!(main[8..12], 2u32.to_le_bytes());
    }

    for p in [&path, &old] {
        for view in [false, true] {
            let back = UnitIndex::restore(p, view).unwrap();
            assert_eq!(back.rows(0, 1_000), index.rows(0, 1_000));
            for (q, a) in queries.iter().zip(&answers) {
                assert_eq!(&back.search(q, 10).unwrap(), a, "{p:?} view {view}");
            }
        }
    }
    // A buffer carries the compact form too.
    let bytes = index.to_bytes().unwrap();
    assert!(bytes.len() < std::fs::metadata(&path).unwrap().len() as usize + graph.len() + 1);
    let back = UnitIndex::from_bytes(&bytes).unwrap();
    for (q, a) in queries.iter().zip(&answers) {
        assert_eq!(&back.search(q, 10).unwrap(), a);
    }
}

#[test]
fn a_compact_graph_saved_with_another_flat_store_is_refused_on_open() {
    // Two indexes of the same keys in another order: the first's graph
    // beside the second's main file passes the length and checksum only
    // if the header is rewritten, which is what this test does, to reach
    // the key check behind them.
    let dir = tempfile::tempdir().unwrap();
    let a = churned();
    let path = dir.path().join("a.ivdb");
    a.save(&path).unwrap();
    let b = UnitIndex::new(a.options()).unwrap();
    let mut rows = a.rows(0, 10_000);
    rows.reverse();
    for (k, body) in &rows {
        b.add(*k, body).unwrap();
    }
    let state = b.snapshot();
    let graph = std::fs::read(graph_path(&path)).unwrap();
    let mut main = Vec::new();
    let saved = SavedGraph::of(&a.snapshot()).unwrap();
    UnitIndex::write_main(&mut main, &state, &saved, b.saved_attempt()).unwrap();
    std::fs::write(&path, &main).unwrap();
    assert_eq!(saved.parts().concat(), graph);
    for view in [false, true] {
        let err = UnitIndex::restore(&path, view).and_then(|i| i.search(&rows[0].1, 3));
        match err {
            Err(IndexError::Corrupt { why, .. }) => assert!(why.contains("is key"), "{why}"),
            other => panic!("view {view}: {other:?}"),
        }
    }
}
