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

/// `n` generated entries with META, CONTENT-TEXT and DATA units (clustered
/// bench-dataset bodies of 64–256 bits) and a unique INSTANCE unit, and
/// increasing ISCC-IDs (the engine benchmark's entries).
pub fn generated_entries(n: usize) -> Vec<serde_json::Value> {
    use iscc_vdb::codec::{IsccId, Realm, Unit, UnitType};
    use iscc_vdb::testing::dataset::{mix64, r, Dataset};
    let text = Dataset::generate(n, 0, 42);
    let data = Dataset::generate(n, 0, 43);
    let unit = |t: UnitType, body: &[u8]| Unit::new(t, body).expect("unit").to_string();
    let meta = |i: u64| (mix64(i ^ 0x4D45_5441) % 4096).to_le_bytes();
    let instance = |i: u64| {
        let len = 8 * (1 + (r(7, 0, i) % 4) as usize);
        (0..len / 8)
            .flat_map(|w| r(9, w as u64, i).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let realm = Realm::new(0).expect("realm");
    (0..n)
        .map(|i| {
            let id = IsccId::from_parts(1_700_000_000_000_000 + i as u64, 0, realm).expect("id");
            serde_json::json!({
                "iscc_id": id.to_string(),
                "units": [
                    unit(UnitType::META, &meta(i as u64)),
                    unit(UnitType::CONTENT_TEXT, &text.codes[i]),
                    unit(UnitType::DATA, &data.codes[i]),
                    unit(UnitType::INSTANCE, &instance(i as u64)),
                ],
                "title": format!("entry {i}"),
            })
        })
        .collect()
}

/// Every file under `dir` with its size and modification time — but
/// LMDB's `lock.mdb`: its reader table is shared memory in which every
/// reader registers (that is how LMDB readers and the writer coordinate),
/// not index data. Two equal snapshots: nothing was written.
pub fn file_states(
    dir: &std::path::Path,
) -> std::collections::BTreeMap<PathBuf, (u64, std::time::SystemTime)> {
    let mut out = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("read dir") {
        let e = e.expect("dir entry");
        let m = e.metadata().expect("metadata");
        if e.file_name() == "lock.mdb" {
            continue;
        }
        if m.is_dir() {
            out.extend(file_states(&e.path()));
        } else {
            out.insert(e.path(), (m.len(), m.modified().expect("mtime")));
        }
    }
    out
}
