//! `ivdb-bench engine`: the ISCC index with whole entries.

use std::path::PathBuf;
use std::time::Instant;

use iscc_vdb::testing::write_jsonl;

use crate::support::*;

#[derive(clap::Args)]
pub(crate) struct EngineArgs {
    /// Entries.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) n: usize,
    /// Queries.
    #[arg(long, default_value_t = 1_000)]
    q: usize,
    /// Entries per add call.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) batch: usize,
    /// Skip the durable (fsync per batch) build.
    #[arg(long)]
    no_durable: bool,
    /// Directory (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write the generated entries and queries there, one JSON object
    /// a line (`entries.jsonl`, `queries.jsonl`), so another face (the
    /// Python bench) can measure the same data.
    #[arg(long)]
    export: Option<PathBuf>,
    /// The unit indexes' partition mode: auto, always or off.
    #[arg(long, default_value = "auto")]
    partition: String,
    /// Search the index a previous run left in `--dir` instead of building
    /// it again (to profile or compare searches alone).
    #[arg(long, requires = "dir")]
    pub(crate) reuse: bool,
    /// Rounds of single-query searches per count (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
    /// After the local index, build the same entries through the Milvus
    /// backend at this URI (`milvus://HOST:PORT/NAME[?index=ivf...]`; an
    /// index of that name is dropped first, unless `--reuse` finds it
    /// holding N entries) and measure it the same way.
    #[arg(long)]
    uri: Option<String>,
    /// Skip the local index (with `--uri`: measure Milvus alone).
    #[arg(long, requires = "uri")]
    no_local: bool,
}

pub(crate) use iscc_vdb::testing::dataset::engine_entries;

pub(crate) fn engine(args: &EngineArgs) {
    println!(
        "# ivdb-bench engine: N={} entries, Q={} queries, batches of {}",
        args.n, args.q, args.batch
    );
    println!("cpu features: {}", cpu_features());
    let t = Instant::now();
    let (entries, queries) = engine_entries(args.n, args.q);
    println!("generated in {:.1} s (META 64b, CONTENT-TEXT and DATA 64-256b clustered, INSTANCE 64-256b unique)", t.elapsed().as_secs_f64());
    println!(
        "entries sha256 (compact JSON, one per line): {}",
        entries_digest(&entries)
    );
    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir).expect("export dir");
        write_jsonl(&dir.join("entries.jsonl"), &entries);
        write_jsonl(&dir.join("queries.jsonl"), &queries);
        println!("exported entries and queries to {}", dir.display());
    }
    let mut summary = Summary::default();
    summary.add("n", args.n as f64);
    let tmp;
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    let partition: iscc_vdb::index::Partition =
        serde_json::from_value(serde_json::Value::String(args.partition.clone()))
            .expect("--partition");
    println!("partition: {}", args.partition);
    let truth = if args.no_local {
        None
    } else {
        Some(local(
            args,
            &entries,
            &queries,
            &root,
            partition,
            &mut summary,
        ))
    };
    #[cfg(feature = "milvus")]
    if let Some(uri) = &args.uri {
        crate::milvus::milvus(
            uri,
            args,
            &entries,
            &queries,
            truth.as_deref(),
            &mut summary,
        );
    }
    #[cfg(not(feature = "milvus"))]
    if args.uri.is_some() {
        panic!("--uri needs the milvus feature");
    }
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    summary.print();
}

/// Build (or reuse) the local index and measure it; its exact results.
fn local(
    args: &EngineArgs,
    entries: &[serde_json::Value],
    queries: &[iscc_vdb::engine::Query],
    root: &std::path::Path,
    partition: iscc_vdb::index::Partition,
    summary: &mut Summary,
) -> Vec<Ranked> {
    use iscc_vdb::engine::{IndexOptions, IsccIndex};
    let build = |durable: bool, path: &std::path::Path| -> f64 {
        let _ = std::fs::remove_dir_all(path);
        let mut options = IndexOptions {
            durable,
            ..IndexOptions::default()
        };
        options.params.partition = partition;
        let idx = IsccIndex::open(Some(path), options).expect("open");
        let t = Instant::now();
        for chunk in entries.chunks(args.batch) {
            let refs: Vec<&serde_json::Value> = chunk.iter().collect();
            idx.add(&refs).expect("add");
        }
        let add_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        idx.close().expect("close");
        let close_s = t.elapsed().as_secs_f64();
        println!(
            "add ({}): {:.0} entries/s ({:.1} s), then close/save {:.1} s",
            if durable {
                "durable: fsync per batch"
            } else {
                "non-durable"
            },
            args.n as f64 / add_s,
            add_s,
            close_s
        );
        add_s
    };
    let fast_dir = root.join("engine-fast");
    let reused = [root.join("engine-durable"), fast_dir.clone()]
        .into_iter()
        .find(|d| args.reuse && d.is_dir());
    let path = if let Some(d) = reused {
        println!("reusing the index in {}", d.display());
        d
    } else if args.no_durable {
        let add_s = build(false, &fast_dir);
        summary.add("add_per_s", args.n as f64 / add_s);
        fast_dir.clone()
    } else {
        let add_s = build(false, &fast_dir);
        summary.add("add_per_s", args.n as f64 / add_s);
        let d = root.join("engine-durable");
        build(true, &d);
        let _ = std::fs::remove_dir_all(&fast_dir);
        d
    };
    // The kernel writes a fresh build's dirty pages back some 30 s later,
    // possibly while the searches below are timed: flushed first.
    let t = Instant::now();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    println!("written back in {:.1} s", t.elapsed().as_secs_f64());
    let disk = dir_bytes(&path);
    println!(
        "disk: {:.1} MB, {:.0} bytes/entry",
        disk as f64 / 1e6,
        disk as f64 / args.n as f64
    );
    let mut opens = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let idx = IsccIndex::open(Some(&path), IndexOptions::default()).expect("reopen");
        opens.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(idx);
    }
    println!("reopen median {:.1} ms", median(opens));
    let idx = IsccIndex::open(Some(&path), IndexOptions::default()).expect("open");
    let info = idx.info().expect("info");
    println!("size {} unit types {:?}", info.size, info.unit_types);
    for (t, u) in &info.units {
        println!(
            "  {t}: {} units in {} shards, {} of them in partitioned shards",
            u.len, u.shards, u.partitioned
        );
    }
    measure_searches(&idx, queries, args.rounds, summary, "");
    recall_vs_exact(&idx, queries, summary, "")
}

/// A query's exact matches: (key, score), best first.
pub(crate) type Ranked = Vec<(u64, f32)>;

/// Single-query (1 thread, median of `rounds`) and batch (2 threads)
/// searches of count 10 and 100; summary names start with `prefix`.
pub(crate) fn measure_searches(
    idx: &iscc_vdb::engine::IsccIndex,
    queries: &[iscc_vdb::engine::Query],
    rounds: usize,
    summary: &mut Summary,
    prefix: &str,
) {
    use iscc_vdb::engine::SearchParams;
    for count in [10usize, 100] {
        let params = SearchParams {
            count,
            ..SearchParams::default()
        };
        let mut lat = Vec::with_capacity(queries.len());
        let mut runs = Vec::new();
        pool(1).install(|| {
            for _ in 0..rounds.max(1) {
                lat.clear();
                let t = Instant::now();
                for q in queries {
                    let s = Instant::now();
                    std::hint::black_box(idx.search(q, &params).expect("search"));
                    lat.push(s.elapsed().as_secs_f64() * 1000.0);
                }
                runs.push(queries.len() as f64 / t.elapsed().as_secs_f64());
            }
        });
        lat.sort_by(f64::total_cmp);
        let p = |x: f64| lat[((lat.len() as f64 * x) as usize).min(lat.len() - 1)];
        let t = Instant::now();
        let batch = pool(2).install(|| idx.search_batch(queries, &params).expect("batch"));
        let batch_qps = queries.len() as f64 / t.elapsed().as_secs_f64();
        let found = batch.queries.iter().filter(|m| !m.is_empty()).count();
        println!(
            "search count {count}: single-query 1 thread {:.0} q/s (median of {}), p50 {:.2} ms, p99 {:.2} ms; batch 2 threads {batch_qps:.0} q/s; {found}/{} queries matched",
            median(runs.clone()),
            runs.len(),
            p(0.5),
            p(0.99),
            queries.len()
        );
        summary.add(format!("{prefix}search{count}_qps"), median(runs));
        summary.add(format!("{prefix}batch{count}_qps"), batch_qps);
    }
}
/// The default search (count 10) against `exact: true` on every query:
/// tie-aware recall (a match at the exact 10th match's score or better
/// counts) and the exact search's own speed on 1 thread; the exact results.
pub(crate) fn recall_vs_exact(
    idx: &iscc_vdb::engine::IsccIndex,
    queries: &[iscc_vdb::engine::Query],
    summary: &mut Summary,
    prefix: &str,
) -> Vec<Ranked> {
    use iscc_vdb::engine::SearchParams;
    let default = SearchParams {
        count: 10,
        ..SearchParams::default()
    };
    let exact = SearchParams {
        exact: true,
        ..default
    };
    let t = Instant::now();
    let truth: Vec<_> = pool(1).install(|| {
        queries
            .iter()
            .map(|q| idx.search(q, &exact).expect("exact search"))
            .collect()
    });
    let exact_qps = queries.len() as f64 / t.elapsed().as_secs_f64();
    let (mut found, mut wanted) = (0usize, 0usize);
    for (q, want) in queries.iter().zip(&truth) {
        let got = idx.search(q, &default).expect("search");
        let floor = want.matches.last().map_or(f32::INFINITY, |m| m.score);
        let keys: std::collections::HashSet<u64> = want.matches.iter().map(|m| m.key).collect();
        wanted += want.matches.len();
        found += got
            .matches
            .iter()
            .take(want.matches.len())
            .filter(|m| keys.contains(&m.key) || m.score >= floor)
            .count();
    }
    let recall = if wanted == 0 {
        1.0
    } else {
        found as f64 / wanted as f64
    };
    println!(
        "search count 10 against exact: tie-aware recall {recall:.4} ({found}/{wanted} matches); exact single-query 1 thread {exact_qps:.0} q/s"
    );
    summary.add(format!("{prefix}recall10_vs_exact"), recall);
    summary.add(format!("{prefix}exact10_qps"), exact_qps);
    truth
        .iter()
        .map(|r| r.matches.iter().map(|m| (m.key, m.score)).collect())
        .collect()
}
