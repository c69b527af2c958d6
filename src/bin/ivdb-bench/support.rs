//! What the scenarios share: digests of what was indexed, thread pools,
//! peak RSS, CPU features, medians, recall and q/s loops.

use std::time::Instant;

use iscc_vdb::index::{Hit, SearchOptions, UnitIndex};
use iscc_vdb::testing::dataset::Dataset;
use sha2::{Digest, Sha256};

/// SHA-256 of entries as compact JSON, one per line (what was indexed).
pub(crate) fn entries_digest(entries: &[serde_json::Value]) -> String {
    let mut sha = Sha256::new();
    for e in entries {
        sha.update(e.to_string().as_bytes());
        sha.update(b"\n");
    }
    hex(&sha.finalize())
}

/// Lower-case hex of a digest.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bench dataset (`bench-dataset.md`, seed 42), with its SHA-256 printed.
pub(crate) fn dataset_with_digest(n: usize, q: usize) -> Dataset {
    let t = Instant::now();
    let data = Dataset::generate(n, q, 42);
    let mut sha = Sha256::new();
    for bytes in data.concatenated() {
        sha.update(bytes);
    }
    let digest = hex(&sha.finalize());
    println!(
        "dataset sha256: {digest} (generated in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    data
}

pub(crate) fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

pub(crate) fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

pub(crate) fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

pub(crate) fn cpu_features() -> String {
    let mut f = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! feat {
            ($($name:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($name) { f.push($name); }
            )*};
        }
        feat!("popcnt", "avx2", "avx512f", "avx512vpopcntdq", "avx512bw");
    }
    f.join(" ")
}

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Recall@k: tie-aware (a hit counts when its distance is within the true
/// k-th distance) and by ids (overlap with the tie-broken exact list).
pub(crate) fn recall(truth: &[Vec<Hit>], got: &[Vec<Hit>]) -> (f64, f64) {
    let (mut tie, mut ids, mut total) = (0usize, 0usize, 0usize);
    for (t, g) in truth.iter().zip(got) {
        let worst = t.last().map_or(1.0, |h| h.distance);
        total += t.len();
        tie += g
            .iter()
            .filter(|h| h.distance <= worst)
            .count()
            .min(t.len());
        ids += g
            .iter()
            .filter(|h| t.iter().any(|x| x.key == h.key))
            .count();
    }
    (tie as f64 / total as f64, ids as f64 / total as f64)
}

/// The engine's default unit threshold as an NPHD: the neighbours an
/// engine user sees.
pub(crate) const WITHIN_THRESHOLD: f32 = 0.25;

/// Recall of the true neighbours within `max_distance` (of the exact top-k):
/// the share of them a search returned (a returned hit within the distance
/// is one of them, its distance being exact; capped per query).
pub(crate) fn recall_within(truth: &[Vec<Hit>], got: &[Vec<Hit>], max_distance: f32) -> f64 {
    let (mut found, mut total) = (0usize, 0usize);
    for (t, g) in truth.iter().zip(got) {
        let want = t.iter().filter(|h| h.distance <= max_distance).count();
        total += want;
        found += g
            .iter()
            .filter(|h| h.distance <= max_distance)
            .count()
            .min(want);
    }
    if total == 0 {
        1.0
    } else {
        found as f64 / total as f64
    }
}

/// The closing `summary:` line of a run: name=value pairs a script can
/// compare across runs.
#[derive(Default)]
pub(crate) struct Summary(Vec<(String, f64)>);

impl Summary {
    pub(crate) fn add(&mut self, name: impl Into<String>, value: f64) {
        self.0.push((name.into(), value));
    }

    pub(crate) fn print(&self) {
        // Rates and sizes to a tenth, ratios and recalls to 4 places.
        let pairs: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                if v.abs() >= 100.0 {
                    format!("{k}={v:.1}")
                } else {
                    format!("{k}={v:.4}")
                }
            })
            .collect();
        println!("summary: {}", pairs.join(" "));
    }
}

/// Add `codes` under `keys` in batches of 10,000 on a pool of `threads`;
/// returns codes per second.
pub(crate) fn add_in_batches(
    idx: &UnitIndex,
    keys: &[u64],
    codes: &[Vec<u8>],
    threads: usize,
) -> f64 {
    let t = Instant::now();
    pool(threads).install(|| {
        for (k, c) in keys.chunks(10_000).zip(codes.chunks(10_000)) {
            idx.add_batch(k, c).expect("add");
        }
    });
    keys.len() as f64 / t.elapsed().as_secs_f64()
}

pub(crate) fn qps_single(
    idx: &UnitIndex,
    queries: &[Vec<u8>],
    opts: &SearchOptions,
) -> (f64, Vec<Vec<Hit>>) {
    let t = Instant::now();
    let out: Vec<Vec<Hit>> = queries
        .iter()
        .map(|q| idx.search_with(q, opts).expect("search"))
        .collect();
    (queries.len() as f64 / t.elapsed().as_secs_f64(), out)
}

/// Queries per second of one thread per entry of `opts`, each searching
/// every query one at a time with its options, all at once.
pub(crate) fn qps_threads(idx: &UnitIndex, queries: &[Vec<u8>], opts: &[SearchOptions]) -> f64 {
    let t = Instant::now();
    std::thread::scope(|s| {
        for o in opts {
            s.spawn(move || {
                for q in queries {
                    idx.search_with(q, o).expect("search");
                }
            });
        }
    });
    (queries.len() * opts.len()) as f64 / t.elapsed().as_secs_f64()
}

pub(crate) fn qps_batch(
    idx: &UnitIndex,
    queries: &[Vec<u8>],
    opts: SearchOptions,
    threads: usize,
) -> f64 {
    let opts = SearchOptions {
        threads: Some(threads),
        ..opts
    };
    let t = Instant::now();
    idx.search_batch(queries, &opts).expect("batch search");
    queries.len() as f64 / t.elapsed().as_secs_f64()
}

pub(crate) fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |rd| {
        rd.filter_map(Result::ok)
            .map(|e| {
                let p = e.path();
                if p.is_dir() {
                    dir_bytes(&p)
                } else {
                    e.metadata().map_or(0, |m| m.len())
                }
            })
            .sum()
    })
}

/// Peak RSS (MB) of a fresh `ivdb-bench <subcommand> --q Q --n N PATH
/// [extra]` process, which opens an index and searches the dataset's
/// queries (this process's own peak includes the dataset and the build).
pub(crate) fn child_peak_rss_mb(
    subcommand: &str,
    q: usize,
    n: usize,
    path: &std::path::Path,
    extra: Option<&str>,
) -> f64 {
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([subcommand, "--q", &q.to_string(), "--n", &n.to_string()])
        .arg(path)
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run ivdb-bench {subcommand}: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN)
}
