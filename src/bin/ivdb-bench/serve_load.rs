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
