//! `ivdb-bench`: benchmarks that print figures (never pass/fail).
//!
//! `ivdb-bench unit --n 1000000` generates the dataset of
//! `shared/spec/bench-dataset.md`, prints its SHA-256, and measures the unit
//! index: add rate (1 and 2 threads), exact-scan and HNSW search rates
//! (single query and batch, 1 and 2 threads), recall@10 (tie-aware and ids)
//! against the exact scan, the expansion_search curve, bytes per code on
//! disk, peak RSS, load and view times. `ivdb-bench crossover` measures where
//! the exact scan stops beating HNSW.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Parser, Subcommand};
use iscc_vdb::index::{Hit, SearchOptions, UnitIndex, UnitIndexOptions};
use iscc_vdb::metric::scan::Kernel;
use iscc_vdb::testing::dataset::Dataset;
use sha2::{Digest, Sha256};

#[derive(Parser)]
#[command(name = "ivdb-bench", about = "iscc-vdb benchmarks (print figures)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The unit index on the nphd-clusters dataset.
    Unit(UnitArgs),
    /// The REST server (`iscc-vdb serve` as a child process) under
    /// concurrent `/search` load on loopback.
    ServeLoad(ServeLoadArgs),
    /// Exact scan vs HNSW q/s at growing index sizes.
    Crossover {
        #[arg(long, default_value_t = 500)]
        q: usize,
    },
    /// The scalable bloom filter: insert rate, contains misses/s, false positives.
    Bloom {
        #[arg(long, default_value_t = 1_000_000)]
        n: u64,
    },
    /// The ISCC index (engine): whole entries with META, CONTENT-TEXT, DATA
    /// and INSTANCE units.
    Engine(EngineArgs),
    /// The sharded index on the nphd-clusters dataset.
    Sharded(ShardedArgs),
    /// Open a saved sharded index (read-only), search Q dataset queries,
    /// print peak RSS (MB).
    ShardedOpen {
        path: PathBuf,
        #[arg(long, default_value_t = 1_000)]
        q: usize,
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
    },
    /// Open a saved unit index, search Q dataset queries, print peak RSS (MB).
    Open {
        path: PathBuf,
        #[arg(long)]
        view: bool,
        #[arg(long, default_value_t = 1_000)]
        q: usize,
        /// N of the dataset the queries come from.
        #[arg(long, default_value_t = 1_000_000)]
        n: usize,
    },
}

#[derive(clap::Args)]
struct UnitArgs {
    /// Codes in the index.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Queries.
    #[arg(long, default_value_t = 1_000)]
    q: usize,
    /// Codes for the 1-thread add measurement (the 2-thread build adds all).
    #[arg(long, default_value_t = 200_000)]
    add_sample: usize,
    /// Directory for the saved index (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    hnsw: HnswArgs,
    /// Skip the expansion_search curve.
    #[arg(long)]
    no_curve: bool,
}

/// HNSW parameters shared by the unit and sharded benchmarks.
#[derive(clap::Args)]
struct HnswArgs {
    #[arg(long, default_value_t = 16)]
    connectivity: usize,
    #[arg(long, default_value_t = 128)]
    expansion_add: usize,
    #[arg(long, default_value_t = 128)]
    expansion_search: usize,
}

#[derive(clap::Args)]
struct EngineArgs {
    /// Entries.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Queries.
    #[arg(long, default_value_t = 1_000)]
    q: usize,
    /// Entries per add call.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Skip the durable (fsync per batch) build.
    #[arg(long)]
    no_durable: bool,
    /// Directory (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Entries of the engine benchmark: CONTENT-TEXT and DATA bodies from two
/// bench datasets (clustered, mixed 64–256 bits), a 64-bit META body, and
/// a unique INSTANCE body of 64–256 bits; IDs increase with the index.
fn engine_entries(n: usize, q: usize) -> (Vec<serde_json::Value>, Vec<iscc_vdb::engine::Query>) {
    use iscc_vdb::codec::{IsccId, Realm, Unit, UnitType};
    use iscc_vdb::testing::dataset::{mix64, r};
    let text = Dataset::generate(n, q, 42);
    let data = Dataset::generate(n, q, 43);
    let unit = |t: UnitType, body: &[u8]| Unit::new(t, body).expect("unit").to_string();
    let meta = |i: u64| (mix64(i ^ 0x4D45_5441) % 4096).to_le_bytes();
    let instance = |i: u64| {
        let len = 8 * (1 + (r(7, 0, i) % 4) as usize);
        (0..len / 8)
            .flat_map(|w| r(9, w as u64, i).to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let realm = Realm::new(0).expect("realm");
    let entries = (0..n)
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
        .collect();
    let queries = (0..q)
        .map(|j| {
            let mut units = vec![
                unit(UnitType::META, &meta(j as u64 * 7)),
                unit(UnitType::CONTENT_TEXT, &text.queries[j]),
                unit(UnitType::DATA, &data.queries[j]),
            ];
            if j % 2 == 0 {
                // Half the queries carry the INSTANCE of a stored entry.
                units.push(unit(UnitType::INSTANCE, &instance((j * 31 % n) as u64)));
            }
            iscc_vdb::engine::Query::units(units)
        })
        .collect();
    (entries, queries)
}

fn dir_bytes(path: &std::path::Path) -> u64 {
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

fn engine(args: &EngineArgs) {
    use iscc_vdb::engine::{IndexOptions, IsccIndex, SearchParams};
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
    let tmp;
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    let build = |durable: bool, path: &std::path::Path| -> f64 {
        let _ = std::fs::remove_dir_all(path);
        let idx = IsccIndex::open(
            Some(path),
            IndexOptions {
                durable,
                ..IndexOptions::default()
            },
        )
        .expect("open");
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
    build(false, &fast_dir);
    let path = if args.no_durable {
        fast_dir.clone()
    } else {
        let d = root.join("engine-durable");
        build(true, &d);
        let _ = std::fs::remove_dir_all(&fast_dir);
        d
    };
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
    for count in [10usize, 100] {
        let params = SearchParams {
            count,
            ..SearchParams::default()
        };
        let mut lat = Vec::with_capacity(queries.len());
        let mut runs = Vec::new();
        pool(1).install(|| {
            for _ in 0..3 {
                lat.clear();
                let t = Instant::now();
                for q in &queries {
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
        let batch = pool(2).install(|| idx.search_batch(&queries, &params).expect("batch"));
        let batch_qps = queries.len() as f64 / t.elapsed().as_secs_f64();
        let found = batch.queries.iter().filter(|m| !m.is_empty()).count();
        println!(
            "search count {count}: single-query 1 thread {:.0} q/s (median of 3), p50 {:.2} ms, p99 {:.2} ms; batch 2 threads {batch_qps:.0} q/s; {found}/{} queries matched",
            median(runs),
            p(0.5),
            p(0.99),
            queries.len()
        );
    }
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}

#[derive(clap::Args)]
struct ServeLoadArgs {
    /// Entries (as in `ivdb-bench engine`).
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Distinct queries (cycled).
    #[arg(long, default_value_t = 1_000)]
    q: usize,
    /// Concurrent clients (one keep-alive connection each).
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds measured per run (after 2 s of warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Runs per configuration (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Index directory: built there when it holds no index (a temporary one
    /// by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Passed to `iscc-vdb serve --search-concurrency` (its default when
    /// absent).
    #[arg(long)]
    search_concurrency: Option<usize>,
}

/// One load run: `clients` threads post `bodies` round-robin for `secs`;
/// returns (requests/s, sorted latencies in ms, errors).
fn load_run(
    addr: std::net::SocketAddr,
    bodies: &std::sync::Arc<Vec<serde_json::Value>>,
    clients: usize,
    secs: f64,
) -> (f64, Vec<f64>, usize) {
    use std::time::Duration;
    let stop_at = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..clients)
        .map(|c| {
            let bodies = std::sync::Arc::clone(bodies);
            std::thread::spawn(move || {
                let mut client = iscc_vdb::testing::client::Client::new(addr);
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut i = c * 7919;
                while Instant::now() < stop_at {
                    let body = &bodies[i % bodies.len()];
                    i += 1;
                    let t = Instant::now();
                    match client.post("/search", body) {
                        Ok(r) if r.status == 200 => lat.push(t.elapsed().as_secs_f64() * 1000.0),
                        _ => errors += 1,
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let t = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (lat, e) = h.join().expect("client thread");
        all.extend(lat);
        errors += e;
    }
    let elapsed = t.elapsed().as_secs_f64().max(secs);
    all.sort_by(f64::total_cmp);
    (all.len() as f64 / elapsed, all, errors)
}

fn serve_load(args: &ServeLoadArgs) {
    use iscc_vdb::engine::{IndexOptions, IsccIndex};
    use std::io::BufRead;
    println!(
        "# ivdb-bench serve-load: N={} entries, {} clients, {} s x {} runs per configuration",
        args.n, args.clients, args.seconds, args.runs
    );
    println!("cpu features: {}", cpu_features());
    let (entries, queries) = engine_entries(args.n, args.q);
    println!(
        "entries sha256 (compact JSON, one per line): {}",
        entries_digest(&entries)
    );
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().join("index")
        }
    };
    if !dir.join("primary.lmdb").exists() {
        let idx = IsccIndex::open(
            Some(&dir),
            IndexOptions {
                durable: false,
                ..IndexOptions::default()
            },
        )
        .expect("open");
        let t = Instant::now();
        for chunk in entries.chunks(1000) {
            let refs: Vec<&serde_json::Value> = chunk.iter().collect();
            idx.add(&refs).expect("add");
        }
        idx.close().expect("close");
        println!(
            "built {} entries in {:.1} s",
            args.n,
            t.elapsed().as_secs_f64()
        );
    }
    drop(entries);
    let exe = std::env::current_exe()
        .expect("current exe")
        .with_file_name("iscc-vdb");
    let mut child = std::process::Command::new(&exe)
        .args([
            "--path",
            dir.to_str().expect("utf-8 path"),
            "serve",
            "--port",
            "0",
        ])
        .args(
            args.search_concurrency
                .map(|c| vec!["--search-concurrency".to_string(), c.to_string()])
                .unwrap_or_default(),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "start {}: {e} (build it: cargo build --release)",
                exe.display()
            )
        });
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = lines.next().expect("server line").expect("read");
    let addr: std::net::SocketAddr = line
        .rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .expect("address");
    println!("server: {line}");
    for count in [10usize, 100] {
        let bodies: std::sync::Arc<Vec<serde_json::Value>> = std::sync::Arc::new(
            queries
                .iter()
                .map(|q| serde_json::json!({"units": q.units, "count": count}))
                .collect(),
        );
        for clients in [1, args.clients] {
            load_run(addr, &bodies, clients, 2.0);
            let mut rates = Vec::new();
            let mut p50 = Vec::new();
            let mut p99 = Vec::new();
            let mut errors = 0;
            for _ in 0..args.runs {
                let (rate, lat, e) = load_run(addr, &bodies, clients, args.seconds);
                rates.push(rate);
                let p = |x: f64| {
                    lat[((lat.len() as f64 * x) as usize).min(lat.len().saturating_sub(1))]
                };
                p50.push(p(0.5));
                p99.push(p(0.99));
                errors += e;
            }
            println!(
                "POST /search count {count}, {clients:>2} clients: {:.0} req/s (median of {}; runs {:?}), p50 {:.2} ms, p99 {:.2} ms, errors {errors}",
                median(rates.clone()),
                args.runs,
                rates.iter().map(|r| r.round() as u64).collect::<Vec<_>>(),
                median(p50),
                median(p99)
            );
        }
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    println!("server stopped: {status}");
}

#[derive(clap::Args)]
struct ShardedArgs {
    /// Codes in the index.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Queries.
    #[arg(long, default_value_t = 1_000)]
    q: usize,
    /// Shards the codes should fill (sets shard_size from a bytes-per-code
    /// estimate; the count reached is printed).
    #[arg(long, default_value_t = 5)]
    shards: usize,
    /// Serialized bytes per code used for shard_size (M=16: ~207).
    #[arg(long, default_value_t = 207.0)]
    bytes_per_code: f64,
    /// Directory for the index (a temporary one by default).
    #[arg(long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    hnsw: HnswArgs,
    /// Also build one unit index of the same codes, for the q/s ratio.
    #[arg(long)]
    compare_unit: bool,
    /// Single queries timed for the exact-scan rates.
    #[arg(long, default_value_t = 300)]
    exact_q: usize,
    /// Reuse the index already in `--dir` (skip the build).
    #[arg(long)]
    reuse: bool,
}

fn sharded(args: &ShardedArgs) {
    use iscc_vdb::index::{ShardedIndex, ShardedOptions};
    println!(
        "# ivdb-bench sharded: N={} Q={} target shards {}",
        args.n, args.q, args.shards
    );
    println!("cpu features: {}", cpu_features());
    let data = dataset_with_digest(args.n, args.q);
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().join("sharded")
        }
    };
    let reuse = args.reuse && dir.join("manifest.json").exists();
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let options = ShardedOptions {
        connectivity: args.hnsw.connectivity,
        expansion_add: args.hnsw.expansion_add,
        expansion_search: args.hnsw.expansion_search,
        shard_size: (args.n as f64 * args.bytes_per_code / args.shards as f64).ceil() as u64,
        // Graphs from the first row, so shards have the size of full HNSW
        // shards (a default index defers graphs up to 300,000 rows); the
        // exact-scan rates are measured with `exact` below.
        exact_threshold: 0,
        background_rotation: true,
        ..ShardedOptions::default()
    };
    println!("options: {options:?}");
    let keys: Vec<u64> = (0..args.n as u64).collect();
    if reuse {
        println!("reusing the index in {}", dir.display());
    } else {
        let idx = ShardedIndex::<u64>::create(&dir, options).expect("create");
        let t = Instant::now();
        for (k, c) in keys.chunks(10_000).zip(data.codes.chunks(10_000)) {
            idx.add(k, c).expect("add");
        }
        let add_s = t.elapsed().as_secs_f64();
        let t2 = Instant::now();
        idx.close().expect("close");
        let close_s = t2.elapsed().as_secs_f64();
        println!(
            "add 2 threads (background rotation): {:.0} codes/s; incl. final close/save {:.0} codes/s ({:.1} s + {:.1} s)",
            args.n as f64 / add_s,
            args.n as f64 / (add_s + close_s),
            add_s,
            close_s
        );
        println!("peak RSS after build: {:.0} MB", peak_rss_mb());
        drop(idx);
    }

    // Disk.
    let mut disk = 0u64;
    let mut shard_files = 0;
    for e in std::fs::read_dir(&dir).expect("dir") {
        let e = e.expect("entry");
        disk += e.metadata().expect("meta").len();
        shard_files += usize::from(e.file_name().to_string_lossy().ends_with(".ivu"));
    }
    println!(
        "disk: {:.1} MB, {:.1} bytes/code, {shard_files} shard files",
        disk as f64 / 1e6,
        disk as f64 / args.n as f64
    );

    // Open times: read-only and writable (both map every shard).
    let mut ro_ms = Vec::new();
    let mut rw_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let ro = ShardedIndex::<u64>::open_read_only(&dir).expect("open ro");
        ro_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(ro);
        let t = Instant::now();
        let rw = ShardedIndex::<u64>::open(&dir).expect("open");
        rw_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(rw);
    }
    println!(
        "open median: read-only {:.1} ms, writable {:.1} ms",
        median(ro_ms),
        median(rw_ms)
    );
    let idx = ShardedIndex::<u64>::open_read_only(&dir).expect("open");
    println!("shards: {}, len {}", idx.shard_count(), idx.len());
    let exact = SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(10)
    };
    let approx = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(10)
    };
    let to_hits = |m: Vec<iscc_vdb::index::Match<u64>>| -> Vec<Hit> {
        m.into_iter()
            .map(|m| Hit {
                distance: m.distance,
                key: m.key,
            })
            .collect()
    };
    let t = Instant::now();
    let first = idx.search(&data.queries[0], &approx).expect("search");
    println!(
        "first approximate search after open (maps every graph): {:.1} ms",
        t.elapsed().as_secs_f64() * 1000.0
    );
    drop(first);
    let truth: Vec<Vec<Hit>> = idx
        .search_batch(&data.queries, &exact)
        .expect("truth")
        .into_iter()
        .map(to_hits)
        .collect();
    let single = |opts: &SearchOptions, qs: &[Vec<u8>], threads: usize| {
        pool(threads).install(|| {
            let mut runs = Vec::new();
            let mut got = Vec::new();
            for _ in 0..3 {
                let t = Instant::now();
                got = qs
                    .iter()
                    .map(|q| to_hits(idx.search(q, opts).expect("search")))
                    .collect::<Vec<_>>();
                runs.push(qs.len() as f64 / t.elapsed().as_secs_f64());
            }
            (median(runs), got)
        })
    };
    let mut sharded_hnsw = 0.0;
    let mut sharded_exact = 0.0;
    for threads in [1, 2] {
        let (q, got) = single(&approx, &data.queries, threads);
        let (tie, ids) = recall(&truth, &got);
        println!("hnsw ef={} single-query {threads} thread(s): {q:.0} q/s, recall@10 tie-aware {tie:.4}, ids {ids:.4}", args.hnsw.expansion_search);
        let (e, _) = single(&exact, &data.queries[..args.exact_q.min(args.q)], threads);
        let e = e.max(f64::MIN_POSITIVE);
        println!("exact single-query {threads} thread(s): {e:.0} q/s (recall 1)");
        if threads == 1 {
            sharded_hnsw = q;
            sharded_exact = e;
        }
    }
    for threads in [1, 2] {
        let t = Instant::now();
        let got: Vec<Vec<Hit>> = pool(threads).install(|| {
            idx.search_batch(&data.queries, &approx)
                .expect("batch")
                .into_iter()
                .map(to_hits)
                .collect()
        });
        let qps = args.q as f64 / t.elapsed().as_secs_f64();
        let (tie, _) = recall(&truth, &got);
        println!("hnsw batch {threads} thread(s): {qps:.0} q/s, recall tie-aware {tie:.4}");
    }
    // Bloom rejection through the index API.
    let probes = 5_000_000u64;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let hits = (0..probes)
            .filter(|k| idx.contains(k | 1 << 62).expect("contains"))
            .count();
        runs.push(probes as f64 / t.elapsed().as_secs_f64());
        std::hint::black_box(hits);
    }
    println!(
        "contains (absent keys) median {:.1} M/s; bloom {:?}",
        median(runs) / 1e6,
        idx.stats().bloom_filter
    );
    let out = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "sharded-open",
            "--q",
            &args.q.to_string(),
            "--n",
            &args.n.to_string(),
        ])
        .arg(&dir)
        .output()
        .expect("run ivdb-bench sharded-open");
    let peak: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(f64::NAN);
    println!(
        "peak RSS of a process that opens the index read-only and searches {} queries (hnsw): {peak:.0} MB ({:.2}x the {:.0} MB on disk)",
        args.q,
        peak / (disk as f64 / 1e6),
        disk as f64 / 1e6
    );
    drop(idx);

    if args.compare_unit {
        let unit = UnitIndex::new(UnitIndexOptions {
            connectivity: args.hnsw.connectivity,
            expansion_add: args.hnsw.expansion_add,
            expansion_search: args.hnsw.expansion_search,
            exact_threshold: 0,
            ..UnitIndexOptions::default()
        })
        .expect("unit");
        let t = Instant::now();
        for (k, c) in keys.chunks(10_000).zip(data.codes.chunks(10_000)) {
            unit.add_batch(k, c).expect("add");
        }
        println!(
            "single unit index: add 2 threads {:.0} codes/s",
            args.n as f64 / t.elapsed().as_secs_f64()
        );
        let (q, got) = pool(1).install(|| {
            let mut runs = Vec::new();
            let mut got = Vec::new();
            for _ in 0..3 {
                let (r, g) = qps_single(&unit, &data.queries, &approx);
                runs.push(r);
                got = g;
            }
            (median(runs), got)
        });
        let (tie, _) = recall(&truth, &got);
        println!(
            "single unit index: hnsw single-query 1 thread {q:.0} q/s, recall tie-aware {tie:.4}"
        );
        let (e, _) = pool(1)
            .install(|| qps_single(&unit, &data.queries[..args.exact_q.min(args.q)], &exact));
        println!("single unit index: exact single-query 1 thread {e:.0} q/s");
        println!(
            "ratio sharded/single hnsw (1 thread): sharded hnsw {:.2}, sharded exact {:.2}",
            sharded_hnsw / q,
            sharded_exact / q
        );
    }
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}

/// The bench dataset (`bench-dataset.md`, seed 42), with its SHA-256 printed.
/// SHA-256 of entries as compact JSON, one per line (what was indexed).
fn entries_digest(entries: &[serde_json::Value]) -> String {
    let mut sha = Sha256::new();
    for e in entries {
        sha.update(e.to_string().as_bytes());
        sha.update(b"\n");
    }
    sha.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn dataset_with_digest(n: usize, q: usize) -> Dataset {
    let t = Instant::now();
    let data = Dataset::generate(n, q, 42);
    let mut sha = Sha256::new();
    for bytes in data.concatenated() {
        sha.update(bytes);
    }
    let digest: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "dataset sha256: {digest} (generated in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    data
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn peak_rss_mb() -> f64 {
    status_mb("VmHWM:")
}

fn status_mb(field: &str) -> f64 {
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

fn cpu_features() -> String {
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Recall@k: tie-aware (a hit counts when its distance is within the true
/// k-th distance) and by ids (overlap with the tie-broken exact list).
fn recall(truth: &[Vec<Hit>], got: &[Vec<Hit>]) -> (f64, f64) {
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

fn qps_single(idx: &UnitIndex, queries: &[Vec<u8>], opts: &SearchOptions) -> (f64, Vec<Vec<Hit>>) {
    let t = Instant::now();
    let out: Vec<Vec<Hit>> = queries
        .iter()
        .map(|q| idx.search_with(q, opts).expect("search"))
        .collect();
    (queries.len() as f64 / t.elapsed().as_secs_f64(), out)
}

fn qps_batch(idx: &UnitIndex, queries: &[Vec<u8>], opts: SearchOptions, threads: usize) -> f64 {
    let opts = SearchOptions {
        threads: Some(threads),
        ..opts
    };
    let t = Instant::now();
    idx.search_batch(queries, &opts).expect("batch search");
    queries.len() as f64 / t.elapsed().as_secs_f64()
}

fn unit(args: &UnitArgs) {
    println!("# ivdb-bench unit: N={} Q={}", args.n, args.q);
    println!("cpu features: {}", cpu_features());
    println!(
        "exact-scan kernel: {} (available: {})",
        Kernel::detect().name(),
        Kernel::available()
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let data = dataset_with_digest(args.n, args.q);
    let mut mix = [0usize; 4];
    for c in &data.codes {
        mix[c.len() / 8 - 1] += 1;
    }
    println!(
        "length mix: 64b {:.1}% 128b {:.1}% 192b {:.1}% 256b {:.1}%",
        100.0 * mix[0] as f64 / args.n as f64,
        100.0 * mix[1] as f64 / args.n as f64,
        100.0 * mix[2] as f64 / args.n as f64,
        100.0 * mix[3] as f64 / args.n as f64
    );
    let options = UnitIndexOptions {
        connectivity: args.hnsw.connectivity,
        expansion_add: args.hnsw.expansion_add,
        expansion_search: args.hnsw.expansion_search,
        exact_threshold: 0,
        ..UnitIndexOptions::default()
    };
    println!("options: {options:?}");
    let keys: Vec<u64> = (0..args.n as u64).collect();

    // Add, 1 thread, on a sample.
    let sample = args.add_sample.min(args.n);
    {
        let idx = UnitIndex::new(options).expect("index");
        let t = Instant::now();
        pool(1).install(|| {
            for (k, c) in keys[..sample]
                .chunks(10_000)
                .zip(data.codes[..sample].chunks(10_000))
            {
                idx.add_batch(k, c).expect("add");
            }
        });
        println!(
            "add 1 thread: {:.0} codes/s ({} codes)",
            sample as f64 / t.elapsed().as_secs_f64(),
            sample
        );
    }
    // Add, 2 threads, everything.
    let idx = UnitIndex::new(options).expect("index");
    let t = Instant::now();
    pool(2).install(|| {
        for (k, c) in keys.chunks(10_000).zip(data.codes.chunks(10_000)) {
            idx.add_batch(k, c).expect("add");
        }
    });
    println!(
        "add 2 threads: {:.0} codes/s ({} codes)",
        args.n as f64 / t.elapsed().as_secs_f64(),
        args.n
    );
    println!("peak RSS after build: {:.0} MB", peak_rss_mb());

    // Exact scan: ground truth, single query and batch.
    let exact = SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(10)
    };
    let single_n = args.q.min(300);
    let (exact_single, _) = qps_single(&idx, &data.queries[..single_n], &exact);
    println!("exact scan single-query 1 thread: {exact_single:.0} q/s");
    let t = Instant::now();
    let truth = idx
        .search_batch(
            &data.queries,
            &SearchOptions {
                threads: Some(1),
                ..exact
            },
        )
        .expect("exact batch");
    println!(
        "exact scan batch 1 thread: {:.0} q/s",
        args.q as f64 / t.elapsed().as_secs_f64()
    );
    println!(
        "exact scan batch 2 threads: {:.0} q/s",
        qps_batch(&idx, &data.queries, exact, 2)
    );

    // HNSW at the default expansion.
    let approx = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(10)
    };
    let (single, got) = pool(1).install(|| qps_single(&idx, &data.queries, &approx));
    let (tie, ids) = recall(&truth, &got);
    println!("hnsw ef={} single-query 1 thread: {single:.0} q/s, recall@10 tie-aware {tie:.4}, ids {ids:.4}", args.hnsw.expansion_search);
    println!(
        "hnsw batch 1 thread: {:.0} q/s",
        qps_batch(&idx, &data.queries, approx, 1)
    );
    println!(
        "hnsw batch 2 threads: {:.0} q/s",
        qps_batch(&idx, &data.queries, approx, 2)
    );

    if !args.no_curve {
        println!("expansion_search curve (single-query, 1 thread):");
        for ef in [32, 48, 64, 96, 128, 144, 160, 176, 192, 256, 384, 512] {
            idx.set_expansion_search(ef).expect("ef");
            let (qps, got) = qps_single(&idx, &data.queries, &approx);
            let (tie, ids) = recall(&truth, &got);
            println!("  ef {ef:>3}: {qps:>7.0} q/s  recall tie-aware {tie:.4}  ids {ids:.4}");
        }
        idx.set_expansion_search(args.hnsw.expansion_search)
            .expect("ef");
    }

    // Disk, load, view.
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("bench-unit.ivdb");
    let t = Instant::now();
    idx.save(&path).expect("save");
    let save_s = t.elapsed().as_secs_f64();
    let main_bytes = std::fs::metadata(&path).expect("file").len();
    let graph_bytes = std::fs::metadata(iscc_vdb::index::graph_path(&path))
        .expect("graph")
        .len();
    println!(
        "save: {save_s:.2} s; disk {:.1} bytes/code (flat store {:.1} + graph {:.1})",
        (main_bytes + graph_bytes) as f64 / args.n as f64,
        main_bytes as f64 / args.n as f64,
        graph_bytes as f64 / args.n as f64
    );
    let index_mb = (main_bytes + graph_bytes) as f64 / 1e6;
    drop(idx);
    // Peak RSS of a fresh process that opens the index and answers the
    // queries (this process's own peak includes the dataset and the build).
    for view in [false, true] {
        let out = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "open",
                "--q",
                &args.q.to_string(),
                "--n",
                &args.n.to_string(),
            ])
            .arg(&path)
            .args(view.then_some("--view"))
            .output()
            .expect("run ivdb-bench open");
        let text = String::from_utf8_lossy(&out.stdout);
        let peak: f64 = text.trim().parse().unwrap_or(f64::NAN);
        println!(
            "peak RSS of a process that {} the index and searches {} queries: {peak:.0} MB ({:.2}x the {index_mb:.0} MB on disk)",
            if view { "views" } else { "loads" },
            args.q,
            peak / index_mb
        );
    }
    let mut loads = Vec::new();
    let mut views = Vec::new();
    let mut firsts = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let l = UnitIndex::restore(&path, false).expect("load");
        loads.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(l);
        let t = Instant::now();
        let v = UnitIndex::restore(&path, true).expect("view");
        views.push(t.elapsed().as_secs_f64() * 1000.0);
        // The graph of a view is mapped on its first approximate search.
        let t = Instant::now();
        v.search_with(&data.queries[0], &approx).expect("search");
        firsts.push(t.elapsed().as_secs_f64() * 1000.0);
        drop(v);
    }
    println!(
        "load (RAM) median {:.1} ms; view (mmap) median {:.1} ms, then first approximate search (maps the graph) {:.1} ms",
        median(loads),
        median(views),
        median(firsts)
    );
    let viewed = UnitIndex::restore(&path, true).expect("view");
    let (vq, got) = qps_single(&viewed, &data.queries, &approx);
    let (tie, _) = recall(&truth, &got);
    println!("viewed index hnsw single-query: {vq:.0} q/s, recall tie-aware {tie:.4}");
    println!("peak RSS: {:.0} MB", peak_rss_mb());
}

fn crossover(q: usize) {
    println!(
        "# ivdb-bench crossover: exact scan vs HNSW (default options), single query, 1 thread"
    );
    println!("# each size is its own dataset (bench-dataset.md with that N)");
    for n in [
        1_000usize, 10_000, 50_000, 100_000, 200_000, 300_000, 500_000,
    ] {
        let data = Dataset::generate(n, q, 42);
        let keys: Vec<u64> = (0..n as u64).collect();
        let idx = UnitIndex::new(UnitIndexOptions::default()).expect("index");
        idx.add_batch(&keys, &data.codes).expect("add");
        let exact = SearchOptions {
            exact: Some(true),
            ..SearchOptions::count(10)
        };
        let approx = SearchOptions {
            exact: Some(false),
            ..SearchOptions::count(10)
        };
        let (e, truth) = pool(1).install(|| qps_single(&idx, &data.queries, &exact));
        let (h, got) = pool(1).install(|| qps_single(&idx, &data.queries, &approx));
        let (tie, _) = recall(&truth, &got);
        println!(
            "  n {n:>7}: exact {e:>8.0} q/s   hnsw {h:>8.0} q/s (recall {tie:.3})   {}",
            if e >= h { "exact wins" } else { "hnsw wins" }
        );
    }
}

fn bloom(n: u64) {
    use iscc_vdb::index::bloom::ScalableBloom;
    println!("# ivdb-bench bloom: {n} keys, target error 1%, 1 thread");
    for expected in [n, 1_000] {
        let mut bloom = ScalableBloom::new(expected, 0.01);
        let t = Instant::now();
        for k in 0..n {
            bloom.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        }
        let insert = n as f64 / t.elapsed().as_secs_f64();
        let probes = 5_000_000u64;
        let mut runs = Vec::new();
        let mut hits = 0u64;
        for _ in 0..3 {
            let t = Instant::now();
            hits = (0..probes)
                .filter(|k| bloom.contains(k.wrapping_mul(0xD1B5_4A32_D192_ED03) | 1 << 63))
                .count() as u64;
            runs.push(probes as f64 / t.elapsed().as_secs_f64());
        }
        println!(
            "  sized for {expected:>9}: {} filters, {:.1} MB, insert {:.1} M/s, contains (absent keys) {:.1} M/s median, false positives {:.3}%",
            bloom.filters(),
            bloom.size_bytes() as f64 / 1e6,
            insert / 1e6,
            median(runs) / 1e6,
            100.0 * hits as f64 / probes as f64
        );
    }
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Command::Unit(args) => unit(&args),
        Command::Crossover { q } => crossover(q),
        Command::Bloom { n } => bloom(n),
        Command::Sharded(args) => sharded(&args),
        Command::Engine(args) => engine(&args),
        Command::ServeLoad(args) => serve_load(&args),
        Command::ShardedOpen { path, q, n } => {
            let idx = iscc_vdb::index::ShardedIndex::<u64>::open_read_only(&path).expect("open");
            let queries = Dataset::queries(n, q, 42);
            let approx = SearchOptions {
                exact: Some(false),
                ..SearchOptions::count(10)
            };
            idx.search_batch(&queries, &approx).expect("search");
            println!("{:.1}", peak_rss_mb());
        }
        Command::Open { path, view, q, n } => {
            let idx = UnitIndex::restore(&path, view).expect("open");
            let queries = Dataset::queries(n, q, 42);
            let approx = SearchOptions {
                exact: Some(false),
                ..SearchOptions::count(10)
            };
            idx.search_batch(&queries, &approx).expect("search");
            println!("{:.1}", peak_rss_mb());
        }
    }
}
