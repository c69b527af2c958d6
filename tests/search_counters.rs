//! The search counters (`visited_members`, `computed_distances`) are real
//! counts: an exact search computes one distance per stored row of each
//! queried unit type; a graph search counts what the walk did, within the
//! bounds the walk must respect.

mod common;

use iscc_vdb::codec::Iscc;
use iscc_vdb::engine::{IndexOptions, IndexParams, IsccIndex, Query, SearchParams};
use serde_json::Value;

use common::corpus;

fn open(exact_threshold: usize) -> IsccIndex {
    let options = IndexOptions {
        durable: false,
        params: IndexParams {
            exact_threshold: exact_threshold.into(),
            ..IndexParams::default()
        },
        ..IndexOptions::default()
    };
    IsccIndex::open(None, options).unwrap()
}

fn add(idx: &IsccIndex, records: &[Value]) {
    for chunk in records.chunks(500) {
        let refs: Vec<&Value> = chunk.iter().collect();
        idx.add(&refs).unwrap();
    }
}

/// Rows stored for each similarity unit type of a code's units.
fn rows_for(idx: &IsccIndex, code: &str) -> u64 {
    let info = idx.info().unwrap();
    Iscc::parse(code)
        .unwrap()
        .units()
        .iter()
        .filter_map(|u| info.units.get(&u.unit_type().name()))
        .map(|u| u.len as u64)
        .sum()
}

#[test]
fn exact_search_counts_every_row_of_each_queried_type() {
    let records = corpus();
    let idx = open(1_000_000);
    add(&idx, &records);
    let exact = SearchParams {
        exact: true,
        ..SearchParams::default()
    };
    let coded: Vec<&str> = records
        .iter()
        .filter_map(|r| r["iscc_code"].as_str())
        .collect();
    for code in coded.iter().step_by(97) {
        let m = idx.search(&Query::code(*code), &exact).unwrap();
        let rows = rows_for(&idx, code);
        assert!(rows > 0);
        assert_eq!(m.computed_distances, rows, "{code}");
        assert_eq!(m.visited_members, rows, "{code}");
    }
    // A batch counts per query, the same as one query at a time.
    let queries: Vec<Query> = coded.iter().take(5).map(|c| Query::code(*c)).collect();
    let batch = idx.search_batch(&queries, &exact).unwrap();
    for (q, m) in queries.iter().zip(&batch.queries) {
        let code = q.iscc_code.as_deref().unwrap();
        assert_eq!(m.computed_distances, rows_for(&idx, code));
    }
    // An empty index computes nothing.
    let empty = open(1_000_000);
    let m = empty.search(&Query::code(coded[0]), &exact).unwrap();
    assert_eq!((m.visited_members, m.computed_distances), (0, 0));
}

#[test]
fn graph_search_counts_its_walk() {
    let records = corpus();
    // Threshold 0: every shard is searched through its HNSW graph.
    let idx = open(0);
    add(&idx, &records);
    let mut graph_cheaper = 0;
    let coded: Vec<&str> = records
        .iter()
        .filter_map(|r| r["iscc_code"].as_str())
        .collect();
    for code in coded.iter().step_by(101) {
        let m = idx
            .search(&Query::code(*code), &SearchParams::default())
            .unwrap();
        let rows = rows_for(&idx, code);
        assert!(m.visited_members > 0, "{code}");
        // Nodes taken into the candidate sets were each measured once.
        assert!(m.visited_members <= m.computed_distances, "{code}");
        // A walk usually measures fewer rows than a scan would.
        graph_cheaper += usize::from(m.computed_distances < rows);
        let batch = idx
            .search_batch(&[Query::code(*code)], &SearchParams::default())
            .unwrap();
        assert_eq!(
            batch.queries[0].computed_distances, m.computed_distances,
            "a batch of one walks the same graph"
        );
    }
    assert!(
        graph_cheaper > 0,
        "no graph search computed fewer distances than a scan"
    );
}
