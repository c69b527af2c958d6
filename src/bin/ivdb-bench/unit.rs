//! `ivdb-bench unit`, `crossover` and `bloom`: the unit index, where the
//! exact scan stops beating HNSW, and the bloom filter.

use std::path::PathBuf;
use std::time::Instant;

use iscc_vdb::index::{ExactThreshold, SearchOptions, UnitIndex, UnitIndexOptions};
use iscc_vdb::metric::scan::Kernel;
use iscc_vdb::testing::dataset::Dataset;

use crate::support::*;

#[derive(clap::Args)]
pub(crate) struct UnitArgs {
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
    /// `auto` (by measured cost, the default) or a row count.
    #[arg(long, default_value = "auto", value_parser = parse_threshold)]
    exact_threshold: ExactThreshold,
}

/// `auto` or a row count.
pub(crate) fn parse_threshold(s: &str) -> Result<ExactThreshold, String> {
    match s {
        "auto" => Ok(ExactThreshold::Auto),
        n => n
            .parse::<usize>()
            .map(ExactThreshold::Rows)
            .map_err(|e| format!("{n:?}: {e} (expected auto or a row count)")),
    }
}

/// HNSW parameters shared by the unit and sharded benchmarks.
#[derive(clap::Args)]
pub(crate) struct HnswArgs {
    #[arg(long, default_value_t = 16)]
    pub(crate) connectivity: usize,
    #[arg(long, default_value_t = 128)]
    pub(crate) expansion_add: usize,
    #[arg(long, default_value_t = 128)]
    pub(crate) expansion_search: usize,
}

pub(crate) fn unit(args: &UnitArgs) {
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
        exact_threshold: args.exact_threshold,
        ..UnitIndexOptions::default()
    };
    println!("options: {options:?}");
    let keys: Vec<u64> = (0..args.n as u64).collect();

    // Add, 1 thread, on a sample.
    let sample = args.add_sample.min(args.n);
    {
        let idx = UnitIndex::new(options).expect("index");
        let rate = add_in_batches(&idx, &keys[..sample], &data.codes[..sample], 1);
        println!("add 1 thread: {rate:.0} codes/s ({sample} codes)");
    }
    // Add, 2 threads, everything.
    let mut summary = Summary::default();
    summary.add("n", args.n as f64);
    summary.add("shards", 1.0);
    let idx = UnitIndex::new(options).expect("index");
    let add_rate = add_in_batches(&idx, &keys, &data.codes, 2);
    println!("add 2 threads: {add_rate:.0} codes/s ({} codes)", args.n);
    summary.add("add_codes_per_s", add_rate);
    println!("peak RSS after build: {:.0} MB", peak_rss_mb());
    println!(
        "graph after add: {}",
        if idx.graph_deferred() {
            "not built (scanning is cheaper at this size)"
        } else {
            "built"
        }
    );

    // Exact scan: ground truth, single query and batch.
    let exact = SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(10)
    };
    let single_n = args.q.min(300);
    let (exact_single, _) = pool(1).install(|| qps_single(&idx, &data.queries[..single_n], &exact));
    println!("exact scan single-query 1 thread: {exact_single:.0} q/s");
    summary.add("exact_qps_1t", exact_single);
    // A pool of 2: one query's scan split over both threads.
    let (exact_single2, _) =
        pool(2).install(|| qps_single(&idx, &data.queries[..single_n], &exact));
    println!("exact scan single-query 2 threads: {exact_single2:.0} q/s");
    summary.add("exact_qps_2t", exact_single2);
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

    // HNSW at the default expansion (built now if auto deferred it).
    let approx = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(10)
    };
    if idx.graph_deferred() {
        let t = Instant::now();
        idx.search_with(&data.queries[0], &approx).expect("graph");
        println!(
            "graph built for the hnsw figures: {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    let (single, got) = pool(1).install(|| qps_single(&idx, &data.queries, &approx));
    let (tie, ids) = recall(&truth, &got);
    let within = recall_within(&truth, &got, WITHIN_THRESHOLD);
    println!("hnsw ef={} single-query 1 thread: {single:.0} q/s, recall@10 tie-aware {tie:.4}, ids {ids:.4}, within NPHD {WITHIN_THRESHOLD} {within:.4}", args.hnsw.expansion_search);
    summary.add("hnsw_qps_1t", single);
    // The index's own choice (auto: the path measured cheaper here).
    let default = SearchOptions::count(10);
    for threads in [1, 2] {
        let (q, got) = pool(threads).install(|| qps_single(&idx, &data.queries, &default));
        summary.add(format!("default_qps_{threads}t"), q);
        if threads == 1 {
            summary.add("recall10", recall(&truth, &got).0);
            summary.add(
                "recall_within_threshold",
                recall_within(&truth, &got, WITHIN_THRESHOLD),
            );
        }
    }
    println!(
        "hnsw batch 1 thread: {:.0} q/s",
        qps_batch(&idx, &data.queries, approx, 1)
    );
    println!(
        "hnsw batch 2 threads: {:.0} q/s",
        qps_batch(&idx, &data.queries, approx, 2)
    );

    // Searches passing their own expansion_search, two threads at once
    // (usearch keeps the value per index; see `index/unit/gate.rs`).
    let ef = args.hnsw.expansion_search;
    let own = |ef: usize| SearchOptions {
        expansion_search: Some(ef),
        ..approx
    };
    let both_default = qps_threads(&idx, &data.queries, &[approx, approx]);
    let both_own = qps_threads(&idx, &data.queries, &[own(ef), own(ef)]);
    let mixed = qps_threads(&idx, &data.queries, &[approx, own(2 * ef)]);
    println!(
        "hnsw 2 threads single-query: default ef {both_default:.0} q/s; both passing ef={ef} per call {both_own:.0} q/s; one default and one ef={} per call {mixed:.0} q/s",
        2 * ef
    );
    summary.add("hnsw_default_ef_qps_2t", both_default);
    summary.add("hnsw_per_call_ef_qps_2t", both_own);
    summary.add("hnsw_mixed_ef_qps_2t", mixed);

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
    summary.add(
        "bytes_per_code",
        (main_bytes + graph_bytes) as f64 / args.n as f64,
    );
    drop(idx);
    for view in [false, true] {
        let peak = child_peak_rss_mb("open", args.q, args.n, &path, view.then_some("--view"));
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
        median(loads.clone()),
        median(views.clone()),
        median(firsts)
    );
    summary.add("open_ms", median(views));
    summary.add("load_ms", median(loads));
    let viewed = UnitIndex::restore(&path, true).expect("view");
    let (vq, got) = qps_single(&viewed, &data.queries, &approx);
    let (tie, _) = recall(&truth, &got);
    println!("viewed index hnsw single-query: {vq:.0} q/s, recall tie-aware {tie:.4}");
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    summary.print();
}

pub(crate) fn crossover(q: usize) {
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

pub(crate) fn bloom(n: u64) {
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
