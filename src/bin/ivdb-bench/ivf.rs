//! `ivdb-bench ivf`: the partitioned (IVF) path of a unit index on the
//! nphd-clusters dataset, minutes even at 10M codes (no graph is built):
//! add rates before and after partitioning, the partition's build time,
//! then per `nprobe` single-query q/s on 1 and 2 threads with tie-aware
//! recall@10, recall by ids and recall within NPHD 0.25 (of the top 10, and
//! of every row within 0.25: a range search), beside the exact scan
//! measured in the same run; disk bytes per code and open times.

use std::time::{Duration, Instant};

use iscc_vdb::index::{ExactThreshold, Hit, SearchOptions, UnitIndex, UnitIndexOptions};
use iscc_vdb::testing::dataset::{Dataset, Generator};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::support::*;

#[derive(clap::Args)]
pub(crate) struct IvfArgs {
    /// Codes in the index.
    #[arg(long, default_value_t = 1_000_000)]
    n: usize,
    /// Queries.
    #[arg(long, default_value_t = 1_000)]
    q: usize,
    /// Lists (0: one per 2,500 codes, at least 16).
    #[arg(long, default_value_t = 0)]
    lists: usize,
    /// The nprobe values measured, comma-separated.
    #[arg(long, default_value = "16,32,64,128,256")]
    nprobe: String,
    /// Share of the codes added after partitioning (the add rate into a
    /// partitioned index).
    #[arg(long, default_value_t = 0.1)]
    late: f64,
    /// Default options: the index partitions itself as it grows (lists and
    /// nprobe by its own calibration); measured with its default nprobe
    /// first, then the `--nprobe` values.
    #[arg(long)]
    auto: bool,
}

/// About one list per 2,500 codes, at least 16: lists of a few thousand
/// rows keep the per-list overhead small beside the rows scanned.
fn default_lists(n: usize) -> usize {
    (n / 2_500).max(16)
}

fn quantiles(mut v: Vec<f32>) -> String {
    v.sort_by(f32::total_cmp);
    let at = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    format!(
        "p10 {:.4} p50 {:.4} p90 {:.4} p99 {:.4} max {:.4}",
        at(0.1),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    )
}

/// The run's codes, generated a million at a time (on 2 threads) just
/// before they are added: 100M codes held as separate vectors would not fit
/// in memory (~14 GB). The SHA-256 is taken as they go, over the bytes
/// `dataset_with_digest` hashes (codes, then queries).
struct Stream {
    gen: Generator,
    next: u64,
    sha: Sha256,
    /// The process's RSS in MB before the first code.
    rss: f64,
}

impl Stream {
    /// Add codes up to `end` (exclusive) on `threads` threads, in batches
    /// of 10,000; the rate of the add calls alone, and of the whole
    /// including generating the codes (a retrain in the background may run
    /// through either).
    fn add(&mut self, idx: &UnitIndex, end: usize, threads: usize) -> (f64, f64) {
        let pool = pool(threads);
        let (start, mut adding) = (self.next, Duration::ZERO);
        let t = Instant::now();
        while self.next < end as u64 {
            let stop = (self.next + 1_000_000).min(end as u64);
            let gen = &self.gen;
            let codes: Vec<Vec<u8>> = pool.install(|| {
                (self.next..stop)
                    .into_par_iter()
                    .map(|j| gen.code(j))
                    .collect()
            });
            for c in &codes {
                self.sha.update(c);
            }
            let keys: Vec<u64> = (self.next..stop).collect();
            let a = Instant::now();
            pool.install(|| {
                for (k, c) in keys.chunks(10_000).zip(codes.chunks(10_000)) {
                    idx.add_batch(k, c).expect("add");
                }
            });
            adding += a.elapsed();
            self.next = stop;
        }
        let n = (self.next - start) as f64;
        (
            n / adding.as_secs_f64().max(1e-9),
            n / t.elapsed().as_secs_f64().max(1e-9),
        )
    }

    /// Bytes per code the process grew by since the stream was made: the
    /// built index (with what the allocator keeps free), printed and noted
    /// once every code was added.
    fn ram(&self, summary: &mut Summary) {
        let grown = (status_mb("VmRSS:") - self.rss) * 1024.0 * 1024.0 / self.next.max(1) as f64;
        println!("RAM: the process grew by {grown:.1} bytes/code while building the index");
        summary.add("ram_built_bytes_per_code", grown);
    }

    /// The dataset's SHA-256, once every code was added.
    fn digest(self, queries: &[Vec<u8>]) -> String {
        let mut sha = self.sha;
        for q in queries {
            sha.update(q);
        }
        hex(&sha.finalize())
    }
}

pub(crate) fn ivf(args: &IvfArgs) {
    println!("# ivdb-bench ivf: N={} Q={}", args.n, args.q);
    println!("cpu features: {}", cpu_features());
    let gen = Generator::new(args.n, 42);
    let data = Dataset {
        codes: Vec::new(),
        queries: (0..args.q as u64).map(|j| gen.query(j)).collect(),
    };
    let mut stream = Stream {
        gen,
        next: 0,
        sha: Sha256::new(),
        rss: status_mb("VmRSS:"),
    };
    let options = if args.auto {
        UnitIndexOptions::default()
    } else {
        UnitIndexOptions {
            exact_threshold: ExactThreshold::Rows(usize::MAX),
            ..UnitIndexOptions::default()
        }
    };
    let early = args.n - (args.n as f64 * args.late.clamp(0.0, 0.9)) as usize;
    let mut summary = Summary::default();
    summary.add("n", args.n as f64);
    let idx = UnitIndex::new(options).expect("index");
    if args.auto {
        auto(args, idx, stream, &data, &mut summary);
        return;
    }
    let (add_rate, wall) = stream.add(&idx, early, 2);
    println!("add 2 threads, not partitioned: {add_rate:.0} codes/s ({early} codes; {wall:.0}/s with generating them)");
    summary.add("add_codes_per_s", add_rate);

    // The exact scan before partitioning, to compare with the same scan of
    // the partitioned store below (the lists cost it their per-list calls).
    let exact = SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(10)
    };
    let single_n = args.q.min(200);
    let (before, _) = pool(1).install(|| qps_single(&idx, &data.queries[..single_n], &exact));
    println!("exact scan single-query before partitioning: {before:.0} q/s on 1 thread");
    summary.add("exact_unpartitioned_qps_1t", before);

    let lists = if args.lists == 0 {
        default_lists(args.n)
    } else {
        args.lists
    };
    let t = Instant::now();
    pool(2).install(|| idx.partition(lists, 1).expect("partition"));
    let part_s = t.elapsed().as_secs_f64();
    println!("partition into {lists} lists (train + rebuild, 2 threads): {part_s:.2} s");
    summary.add("lists", lists as f64);
    summary.add("partition_s", part_s);
    let (rate, wall) = stream.add(&idx, args.n, 2);
    let late = args.n - early;
    if late > 0 {
        println!("add 2 threads, partitioned: {rate:.0} codes/s ({late} codes; {wall:.0}/s with generating them)");
        summary.add("add_partitioned_codes_per_s", rate);
    }
    stream.ram(&mut summary);
    println!("dataset sha256: {}", stream.digest(&data.queries));
    println!("peak RSS: {:.0} MB", peak_rss_mb());

    let truth = exact_truth(&idx, &data);
    let (e1, _) = pool(1).install(|| qps_single(&idx, &data.queries[..single_n], &exact));
    let e2 = qps_threads(&idx, &data.queries[..single_n], &[exact, exact]);
    println!("exact scan single-query: {e1:.0} q/s on 1 thread, {e2:.0} q/s on 2 threads");
    summary.add("exact_qps_1t", e1);
    summary.add("exact_qps_2t", e2);
    measure_nprobes(&idx, &data, &truth, &args.nprobe, &mut summary);

    disk_and_open(idx, &data, args.n, &mut summary);
    summary.print();
}

/// One probe setting: single queries on 1 and 2 threads, recall against
/// `truth`, rows read, range recall; figures under `label`.
fn measure(
    idx: &UnitIndex,
    data: &Dataset,
    truth: &[Vec<Hit>],
    o: SearchOptions,
    label: &str,
    summary: &mut Summary,
) {
    let exact = SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(10)
    };
    let (q1, got) = pool(1).install(|| qps_single(idx, &data.queries, &o));
    let q2 = qps_threads(idx, &data.queries, &[o, o]);
    let (tie, ids) = recall(truth, &got);
    let within = recall_within(truth, &got, WITHIN_THRESHOLD);
    let counters = iscc_vdb::index::SearchCounters::default();
    for q in data.queries.iter().take(100) {
        idx.search_counted(q, &o, None, &counters).expect("search");
    }
    let read = counters.visited() as f64 / 100.0 / idx.len() as f64;
    // Range recall: every row within NPHD 0.25 (up to 1,000 per
    // query), what an engine threshold search wants, found by the probe
    // alone (`exact: false`; a bounded search is otherwise a scan) against
    // the exact range of the first 100 queries.
    let range = |o: SearchOptions| SearchOptions {
        count: 1_000,
        max_distance: Some(WITHIN_THRESHOLD),
        ..o
    };
    let probe_only = SearchOptions {
        exact: Some(false),
        ..o
    };
    let (mut found, mut total) = (0usize, 0usize);
    let (mut complete_s, mut differing) = (0.0, 0usize);
    for q in data.queries.iter().take(100) {
        let want = idx.search_with(q, &range(exact)).expect("range");
        let t = Instant::now();
        let default = idx.search_with(q, &range(o)).expect("range");
        complete_s += t.elapsed().as_secs_f64();
        differing += usize::from(default != want);
        let got = idx.search_with(q, &range(probe_only)).expect("range");
        total += want.len();
        found += got.iter().filter(|h| want.contains(h)).count();
    }
    let range_recall = found as f64 / total.max(1) as f64;
    println!(
        "{label:>9}: {q1:>6.0} q/s on 1 thread, {q2:>6.0} on 2; recall@10 tie-aware {tie:.4}, ids {ids:.4}, within NPHD {WITHIN_THRESHOLD} {within:.4}; every row within {WITHIN_THRESHOLD}: probe alone {range_recall:.4} of {:.1} per query, complete (default) {:.0} q/s, {differing} of 100 differing from the exact range; rows read {:.2}%",
        total as f64 / 100.0,
        100.0 / complete_s.max(1e-9),
        100.0 * read
    );
    summary.add(format!("{label}_range_recall"), range_recall);
    summary.add(format!("{label}_qps_1t"), q1);
    summary.add(format!("{label}_qps_2t"), q2);
    summary.add(format!("{label}_recall10"), tie);
    summary.add(format!("{label}_recall_within"), within);
}

/// Save, bytes per code on disk, and view + first search times.
fn disk_and_open(idx: UnitIndex, data: &Dataset, n: usize, summary: &mut Summary) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ivf.ivu");
    let t = Instant::now();
    idx.save(&path).expect("save");
    let save_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path).expect("file").len()
        + std::fs::metadata(iscc_vdb::index::graph_path(&path))
            .expect("graph file")
            .len();
    println!(
        "save {save_s:.2} s; disk {:.1} bytes/code",
        bytes as f64 / n as f64
    );
    summary.add("bytes_per_code", bytes as f64 / n as f64);
    // RAM of a reading process: what a view of the saved file holds
    // resident after every query (the built index's is printed after the
    // adds).
    drop(idx);
    let mut opens = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let v = UnitIndex::restore(&path, true).expect("view");
        v.search(&data.queries[0], 10).expect("search");
        opens.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "view (mmap) + first search: median {:.1} ms",
        median(opens.clone())
    );
    summary.add("open_ms", median(opens));
    let rss = status_mb("VmRSS:");
    let view = UnitIndex::restore(&path, true).expect("view");
    for q in &data.queries {
        view.search(q, 10).expect("search");
    }
    let resident = (status_mb("VmRSS:") - rss) * 1024.0 * 1024.0;
    drop(view);
    // A writer's steady state: the file loaded into memory (no build
    // leftovers in the allocator), measured the same way.
    let rss = status_mb("VmRSS:");
    let loaded = UnitIndex::restore(&path, false).expect("load");
    // Its key map is built on first use: a writer's first write builds it.
    loaded.contains(0);
    let owned = (status_mb("VmRSS:") - rss) * 1024.0 * 1024.0;
    drop(loaded);
    println!(
        "RAM: a view holds {:.1} bytes/code resident after {} queries; loaded into memory with its key map (a writer) {:.1} bytes/code",
        resident / n as f64,
        data.queries.len(),
        owned / n as f64
    );
    summary.add("ram_view_bytes_per_code", resident / n as f64);
    summary.add("ram_loaded_bytes_per_code", owned / n as f64);
}

/// `--auto`: default options; the index partitions itself while the codes
/// are added (see `unit/retrain.rs`), measured at its own nprobe, then at
/// the `--nprobe` values.
fn auto(args: &IvfArgs, idx: UnitIndex, mut stream: Stream, data: &Dataset, summary: &mut Summary) {
    let (rate, wall) = stream.add(&idx, args.n, 2);
    println!("add 2 threads, partitioning itself meanwhile: {rate:.0} codes/s ({wall:.0}/s with generating them)");
    summary.add("add_codes_per_s", rate);
    summary.add("add_wall_codes_per_s", wall);
    let t = Instant::now();
    idx.wait_partition().expect("partition");
    stream.ram(summary);
    println!("dataset sha256: {}", stream.digest(&data.queries));
    let wait_s = t.elapsed().as_secs_f64();
    let (lists, nprobe) = idx.lists();
    let near = idx.near_nprobe();
    println!(
        "after the adds: waited {wait_s:.2} s for a partition in progress; {lists} lists, default nprobe {nprobe} (near {near}), graph deferred {}",
        idx.graph_deferred()
    );
    if let Some(r) = idx.last_partition() {
        println!(
            "last attempt: {} rows, {} lists, nprobe {} at recall {:.4} on own rows reading {:.0} rows, probe {:.0} µs (near {:.0} µs) vs scan {:.0} µs per query, kept {}, {:.2} s",
            r.rows,
            r.lists,
            r.nprobe,
            r.recall,
            r.rows_read,
            r.probe_ns / 1e3,
            r.near_probe_ns / 1e3,
            r.scan_ns / 1e3,
            r.kept,
            r.seconds
        );
    }
    summary.add("lists", lists as f64);
    summary.add("default_nprobe", nprobe as f64);
    summary.add("near_nprobe", near as f64);
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    let truth = exact_truth(&idx, data);
    measure(
        &idx,
        data,
        &truth,
        SearchOptions::count(10),
        "auto",
        summary,
    );
    // What a caller needing only neighbours within NPHD 0.25 gets (the
    // engine under its default unit threshold): the near nprobe.
    let within = SearchOptions {
        recall_within: Some(iscc_vdb::index::NEAR),
        ..SearchOptions::count(10)
    };
    measure(&idx, data, &truth, within, "near", summary);
    measure_nprobes(&idx, data, &truth, &args.nprobe, summary);
    disk_and_open(idx, data, args.n, summary);
    summary.print();
}

/// [`measure`] at each `nprobe` of the comma-separated list `nprobes`.
fn measure_nprobes(
    idx: &UnitIndex,
    data: &Dataset,
    truth: &[Vec<Hit>],
    nprobes: &str,
    summary: &mut Summary,
) {
    let nprobes: Vec<usize> = nprobes
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .unwrap_or_else(|_| panic!("--nprobe {n:?}: expected numbers"))
        })
        .collect();
    for nprobe in nprobes {
        let o = SearchOptions {
            nprobe: Some(nprobe),
            ..SearchOptions::count(10)
        };
        measure(idx, data, truth, o, &format!("nprobe{nprobe}"), summary);
    }
}

/// The exact top 10 of every query (2 threads), and the 10th neighbour's
/// distance distribution printed.
fn exact_truth(idx: &UnitIndex, data: &Dataset) -> Vec<Vec<Hit>> {
    let truth: Vec<Vec<Hit>> = idx
        .search_batch(
            &data.queries,
            &SearchOptions {
                exact: Some(true),
                threads: Some(2),
                ..SearchOptions::count(10)
            },
        )
        .expect("truth");
    println!(
        "10th neighbour's NPHD over the queries: {}",
        quantiles(
            truth
                .iter()
                .filter_map(|t| t.last())
                .map(|h| h.distance)
                .collect()
        )
    );
    truth
}
