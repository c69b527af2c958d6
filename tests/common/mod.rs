//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod child;
#[cfg(feature = "milvus")]
pub mod milvus;
pub mod saved;
#[cfg(all(feature = "cli", feature = "server"))]
pub mod serve;

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
    iscc_vdb::testing::dataset::engine_entries(n, 0).0
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

/// A 64-bit LCG step (the tests' deterministic randomness).
pub fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 11
}

/// A random body of 64–256 bits.
pub fn random_body(seed: &mut u64) -> Vec<u8> {
    let len = 8 * (1 + (lcg(seed) % 4) as usize);
    (0..len).map(|_| lcg(seed) as u8).collect()
}

/// Brute-force top-k of a model (key → body): by NPHD, then key.
pub fn brute(
    model: &std::collections::BTreeMap<u64, Vec<u8>>,
    q: &[u8],
    k: usize,
) -> Vec<(u64, f32)> {
    let mut all: Vec<(u64, f32)> = model
        .iter()
        .map(|(key, b)| (*key, iscc_vdb::metric::nphd(q, b).expect("valid bodies")))
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Assert that probing every list of `index` answers each query exactly as
/// the exact scan does (every row is in some list); returns the lists.
pub fn assert_every_list_is_exact(
    index: &iscc_vdb::index::UnitIndex,
    queries: &[Vec<u8>],
    label: &str,
) -> usize {
    use iscc_vdb::index::SearchOptions;
    let (lists, _) = index.lists();
    let every_list = SearchOptions {
        nprobe: Some(lists),
        ..SearchOptions::count(10)
    };
    for q in queries {
        assert_eq!(
            index.search_with(q, &every_list).unwrap(),
            index.search_exact(q, 10).unwrap(),
            "{label}: probing every list differs from the exact scan"
        );
    }
    lists
}
