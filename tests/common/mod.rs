//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `../shared/testdata` beside the repository (override: `IVDB_TESTDATA`).
/// A missing folder fails the test: the suite must never pass vacuously.
pub fn testdata(file: &str) -> PathBuf {
    let dir = std::env::var_os("IVDB_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "test data {} is missing: check out ../shared beside the repository or set IVDB_TESTDATA",
        path.display()
    );
    path
}

/// Parse a JSON test data file.
pub fn json(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(testdata(file)).expect("read test data");
    serde_json::from_str(&text).expect("test data is JSON")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 2,000 records of `corpus.jsonl`.
pub fn corpus() -> Vec<serde_json::Value> {
    std::fs::read_to_string(testdata("corpus.jsonl"))
        .expect("read corpus")
        .lines()
        .map(|l| serde_json::from_str(l).expect("corpus line is JSON"))
        .collect()
}
