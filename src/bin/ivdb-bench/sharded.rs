//! `ivdb-bench sharded`: the sharded index on the bench dataset.

use std::path::PathBuf;
use std::time::Instant;

use iscc_vdb::index::{
    ExactThreshold, Hit, SearchOptions, ShardedOptions, UnitIndex, UnitIndexOptions,
};

use crate::support::*;
use crate::unit::HnswArgs;

#[derive(clap::Args)]
pub(crate) struct ShardedArgs {
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
    /// Client threads of the concurrent-callers run (coalesced vs alone).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Reuse the index already in `--dir` (skip the build).
    #[arg(long)]
    reuse: bool,
    /// `auto` (by measured cost, the default) or a row count.
    #[arg(long, default_value = "auto", value_parser = crate::unit::parse_threshold)]
    exact_threshold: ExactThreshold,
    /// Tiered merging: shards per tier merged (0: off).
    #[arg(long, default_value_t = ShardedOptions::default().merge_factor)]
    merge_factor: usize,
    /// After the build, merge down to at most this many sealed shards.
    #[arg(long)]
    merge_to: Option<usize>,
}

pub(crate) fn sharded(args: &ShardedArgs) {
    use iscc_vdb::index::ShardedIndex;
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
    let mut summary = Summary::default();
    summary.add("n", args.n as f64);
    let reuse = args.reuse && dir.join("manifest.json").exists();
    if !reuse {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let options = ShardedOptions {
        connectivity: args.hnsw.connectivity,
        expansion_add: args.hnsw.expansion_add,
        expansion_search: args.hnsw.expansion_search,
        shard_size: (args.n as f64 * args.bytes_per_code / args.shards as f64).ceil() as u64,
        exact_threshold: args.exact_threshold,
        merge_factor: args.merge_factor,
        max_merged_size: u64::MAX,
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
        let mut most = 0;
        for (k, c) in keys.chunks(10_000).zip(data.codes.chunks(10_000)) {
            idx.add(k, c).expect("add");
            most = most.max(idx.shard_count());
        }
        let add_s = t.elapsed().as_secs_f64();
        let t2 = Instant::now();
        idx.drain_merges().expect("merges");
        idx.save().expect("save");
        let close_s = t2.elapsed().as_secs_f64();
        println!(
            "shards: at most {most} during the build, {} after it ({} merges)",
            idx.shard_count(),
            idx.merges_done()
        );
        if let Some(to) = args.merge_to {
            let t3 = Instant::now();
            let report = idx.merge(to).expect("merge");
            println!(
                "merge to {to}: {report:?} in {:.1} s",
                t3.elapsed().as_secs_f64()
            );
        }
        idx.close().expect("close");
        println!(
            "add 2 threads (background rotation): {:.0} codes/s; incl. final close/save {:.0} codes/s ({:.1} s + {:.1} s)",
            args.n as f64 / add_s,
            args.n as f64 / (add_s + close_s),
            add_s,
            close_s
        );
        println!("peak RSS after build: {:.0} MB", peak_rss_mb());
        summary.add("add_codes_per_s", args.n as f64 / (add_s + close_s));
        summary.add("shards_built_max", most as f64);
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
    summary.add("bytes_per_code", disk as f64 / args.n as f64);
    println!(
        "open median: read-only {:.1} ms, writable {:.1} ms",
        median(ro_ms.clone()),
        median(rw_ms)
    );
    summary.add("open_ms", median(ro_ms));
    let idx = ShardedIndex::<u64>::open_read_only(&dir).expect("open");
    println!("shards: {}, len {}", idx.shard_count(), idx.len());
    summary.add("shards", idx.shard_count() as f64);
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
    let mut sharded_default = 0.0;
    for threads in [1, 2] {
        let (q, got) = single(&approx, &data.queries, threads);
        let (tie, ids) = recall(&truth, &got);
        let within = recall_within(&truth, &got, WITHIN_THRESHOLD);
        println!("hnsw ef={} single-query {threads} thread(s): {q:.0} q/s, recall@10 tie-aware {tie:.4}, ids {ids:.4}, within NPHD {WITHIN_THRESHOLD} {within:.4}", args.hnsw.expansion_search);
        let (e, _) = single(&exact, &data.queries[..args.exact_q.min(args.q)], threads);
        let e = e.max(f64::MIN_POSITIVE);
        println!("exact single-query {threads} thread(s): {e:.0} q/s (recall 1)");
        // The index's own choice per shard.
        let (d, got) = single(&SearchOptions::count(10), &data.queries, threads);
        println!("default single-query {threads} thread(s): {d:.0} q/s");
        summary.add(format!("default_qps_{threads}t"), d);
        if threads == 1 {
            sharded_hnsw = q;
            sharded_exact = e;
            sharded_default = d;
            summary.add("hnsw_qps_1t", q);
            summary.add("exact_qps_1t", e);
            summary.add("recall10", recall(&truth, &got).0);
            summary.add(
                "recall_within_threshold",
                recall_within(&truth, &got, WITHIN_THRESHOLD),
            );
        }
    }
    // Concurrent callers, each sending single queries (as REST handlers or
    // C ABI threads do): coalesced into shared passes, and alone, in turn.
    let clients = args.clients.max(1);
    let concurrent = |on: bool| {
        idx.set_coalescing(on);
        let before = idx.coalesce_stats();
        let mut runs = Vec::new();
        let mut same = true;
        for _ in 0..3 {
            let t = Instant::now();
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..clients)
                    .map(|c| {
                        let (idx, data, truth) = (&idx, &data, &truth);
                        s.spawn(move || {
                            let mut same = true;
                            for (i, q) in data.queries.iter().enumerate().skip(c).step_by(clients) {
                                let got = to_hits(
                                    idx.search(q, &SearchOptions::count(10)).expect("search"),
                                );
                                same &= got.len() == truth[i].len();
                            }
                            same
                        })
                    })
                    .collect();
                for h in handles {
                    same &= h.join().expect("client");
                }
            });
            runs.push(data.queries.len() as f64 / t.elapsed().as_secs_f64());
        }
        let after = idx.coalesce_stats();
        let batches = after.batches - before.batches;
        let per = (after.requests - before.requests) as f64 / batches.max(1) as f64;
        (median(runs), batches, per, same)
    };
    let (solo, _, _, _) = concurrent(false);
    let (coalesced, batches, per, same) = concurrent(true);
    println!(
        "default search, {clients} client threads: coalesced {coalesced:.0} q/s ({batches} batches of {per:.1} on average), alone {solo:.0} q/s, ratio {:.2}{}",
        coalesced / solo,
        if same { "" } else { " (RESULT COUNTS DIFFER)" }
    );
    summary.add(format!("coalesced_qps_{clients}c"), coalesced);
    summary.add(format!("alone_qps_{clients}c"), solo);
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
    let peak = child_peak_rss_mb("sharded-open", args.q, args.n, &dir, None);
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
            exact_threshold: args.exact_threshold,
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
        let (d, _) =
            pool(1).install(|| qps_single(&unit, &data.queries, &SearchOptions::count(10)));
        println!("single unit index: default single-query 1 thread {d:.0} q/s");
        println!(
            "ratio sharded/single (1 thread): default {:.2}, hnsw {:.2}, exact {:.2}",
            sharded_default / d,
            sharded_hnsw / q,
            sharded_exact / e
        );
        summary.add("ratio_sharded_single", sharded_default / d);
        summary.add("ratio_sharded_single_hnsw", sharded_hnsw / q);
    }
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    summary.print();
}
