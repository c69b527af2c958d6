//! Expected search results of the Rust engine on the corpus, for the Go and
//! Node binding tests to compare with (`bindings/testdata/search_expected.json`).
//! This test fails when the committed fixture differs from what the engine
//! returns now; regenerate with `IVDB_UPDATE_FIXTURES=1 cargo test --test
//! binding_fixture` and commit it.

mod common;

use iscc_vdb::engine::{IndexOptions, IsccIndex, Query, SearchParams};
use serde_json::{json, Value};

#[test]
fn binding_fixture_is_current() {
    let records: Vec<Value> = common::corpus();
    let idx = IsccIndex::open(
        None,
        IndexOptions {
            durable: false,
            ..IndexOptions::default()
        },
    )
    .unwrap();
    for chunk in records.chunks(500) {
        let refs: Vec<&Value> = chunk.iter().collect();
        idx.add(&refs).unwrap();
    }
    let queries: Vec<Query> = records
        .iter()
        .step_by(25)
        .map(|r| match r["units"].as_array() {
            Some(u) => Query::units(u.iter().map(|s| s.as_str().unwrap().to_string())),
            None => Query::code(r["iscc_code"].as_str().unwrap()),
        })
        .collect();
    let params = SearchParams {
        count: 10,
        exact: true,
        ..SearchParams::default()
    };
    let results: Vec<Value> = queries
        .iter()
        // Through a string, as the C ABI's *_json functions write it (f32
        // in its shortest form, not widened to f64).
        .map(|q| {
            let text = serde_json::to_string(&idx.search(q, &params).unwrap()).unwrap();
            serde_json::from_str::<Value>(&text).unwrap()
        })
        .collect();
    let fixture = json!({"count": 10, "queries": queries, "results": results});
    let text = serde_json::to_string_pretty(&fixture).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bindings/testdata/search_expected.json");
    if std::env::var("IVDB_UPDATE_FIXTURES").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "{} differs from the engine's results; regenerate with IVDB_UPDATE_FIXTURES=1 cargo test --test binding_fixture",
        path.display()
    );
}
