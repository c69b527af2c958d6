//! `ivdb-bench serve-load`: the REST server under concurrent load.

use std::path::PathBuf;
use std::time::Instant;

use crate::engine::engine_entries;
use crate::support::*;

#[derive(clap::Args)]
pub(crate) struct ServeLoadArgs {
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
    /// The server binaries to run, each measured in turn in this one run
    /// (e.g. an older build beside this one); `iscc-vdb` beside this bench
    /// when absent.
    #[arg(long = "server-exe")]
    server_exes: Vec<PathBuf>,
    /// Rounds over the server binaries (alternated).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Single durable adds measured while the clients search (0: none).
    #[arg(long, default_value_t = 200)]
    adds: usize,
}

/// One load run: `clients` threads post `bodies` round-robin for `secs`;
/// returns (requests/s, sorted latencies in ms, errors).
pub(crate) fn load_run(
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

pub(crate) fn serve_load(args: &ServeLoadArgs) {
    use iscc_vdb::engine::{IndexOptions, IsccIndex};
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
    // Entries for the writer: stored ones under new ISCC-IDs (past every
    // stored one), one per add.
    let fresh: Vec<serde_json::Value> = (0..args.adds)
        .map(|k| {
            let mut e = entries[k % entries.len()].clone();
            let id = iscc_vdb::codec::IsccId::from_parts(
                1_700_000_000_000_000 + (args.n + k) as u64,
                0,
                iscc_vdb::codec::Realm::new(0).expect("realm"),
            )
            .expect("id");
            e["iscc_id"] = serde_json::json!(id.to_string());
            e
        })
        .collect();
    drop(entries);
    let exes = if args.server_exes.is_empty() {
        vec![std::env::current_exe()
            .expect("current exe")
            .with_file_name("iscc-vdb")]
    } else {
        args.server_exes.clone()
    };
    let mut summary = Vec::new();
    for round in 0..args.rounds {
        for (e, exe) in exes.iter().enumerate() {
            println!("## round {round}, server {}", exe.display());
            let figures = serve_run(args, &dir, exe, &queries, &fresh);
            for (name, value) in figures {
                summary.push((format!("s{e}_{name}"), value));
            }
        }
    }
    // Medians over rounds per server and figure.
    let mut names: Vec<String> = summary.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    names.dedup();
    let line: Vec<String> = names
        .iter()
        .map(|n| {
            let v: Vec<f64> = summary
                .iter()
                .filter(|(m, _)| m == n)
                .map(|(_, v)| *v)
                .collect();
            format!("{n}={:.2}", median(v))
        })
        .collect();
    println!("summary: {}", line.join(" "));
}

/// Start the server `exe` on `dir`, measure searches (and the writer's
/// adds under search load), stop it. Returns named figures.
fn serve_run(
    args: &ServeLoadArgs,
    dir: &std::path::Path,
    exe: &std::path::Path,
    queries: &[iscc_vdb::engine::Query],
    fresh: &[serde_json::Value],
) -> Vec<(String, f64)> {
    use std::io::BufRead;
    let mut figures = Vec::new();
    let mut child = std::process::Command::new(exe)
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
            figures.push((
                format!("search{count}_c{clients}_rps"),
                median(rates.clone()),
            ));
            figures.push((
                format!("search{count}_c{clients}_p99_ms"),
                median(p99.clone()),
            ));
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
    if !fresh.is_empty() {
        figures.extend(writer_under_load(args, addr, queries, fresh));
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let status = child.wait().expect("wait");
    println!("server stopped: {status}");
    figures
}

/// One writer posting single durable adds (`fresh`, one entry each, one
/// after another) while `args.clients` keep-alive clients search (count
/// 10) as fast as they can; then the same entries are removed again so
/// the next run starts from the same index. Prints and returns the add
/// latencies (p50, p99, max) and the searches' rate and p99 meanwhile.
fn writer_under_load(
    args: &ServeLoadArgs,
    addr: std::net::SocketAddr,
    queries: &[iscc_vdb::engine::Query],
    fresh: &[serde_json::Value],
) -> Vec<(String, f64)> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let bodies: Arc<Vec<serde_json::Value>> = Arc::new(
        queries
            .iter()
            .map(|q| serde_json::json!({"units": q.units, "count": 10}))
            .collect(),
    );
    let done = Arc::new(AtomicBool::new(false));
    let searchers: Vec<_> = (0..args.clients)
        .map(|c| {
            let (bodies, done) = (Arc::clone(&bodies), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut client = iscc_vdb::testing::client::Client::new(addr);
                let mut lat = Vec::new();
                let mut i = c * 7919;
                while !done.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if let Ok(r) = client.post("/search", &bodies[i % bodies.len()]) {
                        if r.status == 200 {
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                    }
                    i += 1;
                }
                lat
            })
        })
        .collect();
    // Let the searchers reach their pace first.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let started = Instant::now();
    let mut writer = iscc_vdb::testing::client::Client::new(addr);
    let mut adds = Vec::with_capacity(fresh.len());
    let mut failed = 0usize;
    for e in fresh {
        let t = Instant::now();
        match writer.post("/add", &serde_json::json!({ "entries": [e] })) {
            Ok(r) if r.status == 200 => adds.push(t.elapsed().as_secs_f64() * 1000.0),
            _ => failed += 1,
        }
    }
    let secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let mut searches: Vec<f64> = searchers
        .into_iter()
        .flat_map(|h| h.join().expect("searcher"))
        .collect();
    searches.sort_by(f64::total_cmp);
    // The first add apart: a once-per-process cost lands on it.
    let first = adds.first().copied().unwrap_or(f64::NAN);
    let slowest_at = adds
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    adds.sort_by(f64::total_cmp);
    let pct = |v: &[f64], x: f64| {
        v.get(((v.len() as f64 * x) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let ids: Vec<&serde_json::Value> = fresh.iter().map(|e| &e["iscc_id"]).collect();
    let removed = writer
        .post("/remove", &serde_json::json!({ "iscc_ids": ids }))
        .map(|r| r.status)
        .unwrap_or(0);
    let search_rate = searches.len() as f64 / (secs + 2.0);
    println!(
        "writer: {} single durable adds beside {} searching clients in {secs:.1} s: \
         add p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (add #{slowest_at}; the first took {first:.2} ms), \
         failed {failed}; searches meanwhile \
         {search_rate:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (remove after: {removed})",
        adds.len(),
        args.clients,
        pct(&adds, 0.5),
        pct(&adds, 0.99),
        adds.last().copied().unwrap_or(f64::NAN),
        pct(&searches, 0.5),
        pct(&searches, 0.99),
        searches.last().copied().unwrap_or(f64::NAN),
    );
    vec![
        ("add_p50_ms".into(), pct(&adds, 0.5)),
        ("add_p99_ms".into(), pct(&adds, 0.99)),
        (
            "add_max_ms".into(),
            adds.last().copied().unwrap_or(f64::NAN),
        ),
        ("search_under_writes_rps".into(), search_rate),
        ("search_under_writes_p99_ms".into(), pct(&searches, 0.99)),
    ]
}
