//! The Milvus server the Milvus tests run against, and fresh index names
//! on it (see `milvus_backend.rs`).
#![cfg(feature = "milvus")]

use std::time::{SystemTime, UNIX_EPOCH};

use iscc_vdb::engine::{IndexOptions, IsccIndex, IsccMatches, Query, SearchParams};
use serde_json::{json, Value};

/// The server's base URI (`IVDB_MILVUS_URI`), or `None`: the test then
/// says it did not run and returns.
pub fn server(test: &str) -> Option<String> {
    match std::env::var("IVDB_MILVUS_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri.trim_end_matches('/').to_string()),
        _ => {
            eprintln!("{test}: not run (set IVDB_MILVUS_URI=milvus://HOST:PORT)");
            None
        }
    }
}

/// A fresh index name on the server, dropped when the guard goes.
pub struct Remote {
    pub uri: String,
}

impl Remote {
    /// `{base}/{prefix}_{test}_{pid}_{nanos}`, dropped first if present.
    pub fn new(base: &str, prefix: &str, test: &str) -> Remote {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let uri = format!("{base}/{prefix}_{test}_{}_{nanos}", std::process::id());
        IsccIndex::drop_remote(&uri).unwrap();
        Remote { uri }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Err(e) = IsccIndex::drop_remote(&self.uri) {
            eprintln!("could not drop {}: {e}", self.uri);
        }
    }
}

/// An in-memory local index, the reference the Milvus backend must equal.
pub fn local() -> IsccIndex {
    IsccIndex::open(
        None,
        IndexOptions {
            durable: false,
            ..IndexOptions::default()
        },
    )
    .unwrap()
}

/// Add `records` in batches of 500; their ISCC-IDs.
pub fn add_all(idx: &IsccIndex, records: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in records.chunks(500) {
        let refs: Vec<&Value> = chunk.iter().collect();
        ids.extend(idx.add(&refs).unwrap());
    }
    ids
}

/// A query of a record's units.
pub fn query_by_units(record: &Value) -> Option<Query> {
    let units = record["units"].as_array()?;
    Some(Query::units(
        units.iter().map(|u| u.as_str().unwrap().to_string()),
    ))
}

/// A query of a record's ISCC-CODE.
pub fn query_by_code(record: &Value) -> Option<Query> {
    Some(Query::code(record["iscc_code"].as_str()?))
}

/// The parts of a result both backends must agree on (cost counters are
/// the local engine's own).
pub fn comparable(m: &IsccMatches) -> Value {
    json!({
        "matches": m.matches.iter().map(|x| json!({
            "iscc_id": x.iscc_id,
            "score": x.score,
            "units": x.units.iter().map(|(t, s)| json!([t, s.score, s.distance, s.kept])).collect::<Vec<_>>(),
            "instance": x.instance,
        })).collect::<Vec<_>>(),
        "instance_matches": m.instance_matches,
    })
}

/// Search `queries` on both and assert equal results (`what` names them).
pub fn assert_same_results(
    local: &IsccIndex,
    remote: &IsccIndex,
    queries: &[Query],
    params: &SearchParams,
    what: &str,
) {
    let a = local.search_batch(queries, params).unwrap();
    let b = remote.search_batch(queries, params).unwrap();
    assert_eq!(a.queries.len(), b.queries.len());
    let mut nonempty = 0;
    for (i, (x, y)) in a.queries.iter().zip(&b.queries).enumerate() {
        assert_eq!(
            comparable(x),
            comparable(y),
            "{what}: query {i} ({:?}) differs (left local, right Milvus)",
            queries[i]
        );
        nonempty += usize::from(!x.matches.is_empty());
    }
    assert!(
        nonempty * 2 > queries.len(),
        "{what}: most queries must find something"
    );
}
