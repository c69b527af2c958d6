//! `ivdb-bench features`: granular features (SIMPRINT chunk matching) in
//! the engine, without any binding in between: add entries/s with
//! features and chunk-search q/s on 1 and 2 threads.
//!
//! Data as `bindings/python/bench/bench_features_vs_iscc_search.py` draws
//! it (not bit for bit: a Rust generator): the engine bench's entries, each
//! with `--chunks` 64-bit CONTENT-TEXT-V0 simprints; every fourth chunk is
//! a segment shared with other documents (a pool of `n / 8` segments, 0-3
//! bits flipped), the rest unique. Queries: the features of `--q` stored
//! documents, count 10.

use std::time::Instant;

use data_encoding::BASE64URL_NOPAD;
use iscc_vdb::engine::{FeatureSet, IndexOptions, IsccIndex, Query, SearchParams, SimprintType};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::engine::engine_entries;
use crate::support::*;

#[derive(clap::Args)]
pub(crate) struct FeaturesArgs {
    /// Documents.
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Simprints per document.
    #[arg(long, default_value_t = 20)]
    chunks: usize,
    /// Queries (the features of stored documents).
    #[arg(long, default_value_t = 500)]
    q: usize,
    /// Entries per add call.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
}

fn next(seed: &mut u64) -> u64 {
    // SplitMix64: fast, and every bit well mixed (simprints are random
    // 64-bit values).
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Per document, its simprints (64-bit values).
fn documents(n: usize, chunks: usize, seed: u64) -> Vec<Vec<u64>> {
    let mut s = seed;
    let pool: Vec<u64> = (0..(n / 8).max(1)).map(|_| next(&mut s)).collect();
    (0..n)
        .map(|_| {
            (0..chunks)
                .map(|c| {
                    if c % 4 == 0 {
                        let mut v = pool[(next(&mut s) % pool.len() as u64) as usize];
                        for _ in 0..next(&mut s) % 4 {
                            v ^= 1 << (next(&mut s) % 64);
                        }
                        v
                    } else {
                        next(&mut s)
                    }
                })
                .collect()
        })
        .collect()
}

fn feature_json(simprints: &[u64]) -> Value {
    let encoded: Vec<String> = simprints
        .iter()
        .map(|v| BASE64URL_NOPAD.encode(&v.to_be_bytes()))
        .collect();
    let offsets: Vec<u64> = (0..simprints.len() as u64).map(|i| i * 1024).collect();
    let sizes = vec![1024u64; simprints.len()];
    json!([{"maintype": "content", "subtype": "text", "version": 0,
            "simprints": encoded, "offsets": offsets, "sizes": sizes}])
}

pub(crate) fn features(args: &FeaturesArgs) {
    println!(
        "# ivdb-bench features: N={} documents x {} simprints (64-bit), Q={} queries, batches of {}",
        args.n, args.chunks, args.q, args.batch
    );
    println!("cpu features: {}", cpu_features());
    let (mut entries, _) = engine_entries(args.n, 1);
    let docs = documents(args.n, args.chunks, 7);
    let mut digest = Sha256::new();
    for (e, d) in entries.iter_mut().zip(&docs) {
        for v in d {
            digest.update(v.to_be_bytes());
        }
        e["features"] = feature_json(d);
    }
    println!(
        "simprints sha256: {:x}; entries sha256: {}",
        digest.finalize(),
        entries_digest(&entries)
    );
    let mut summary = Summary::default();
    summary.add("n", args.n as f64);
    let tmp = tempfile::tempdir().expect("tempdir");
    let idx = IsccIndex::open(
        Some(tmp.path()),
        IndexOptions {
            durable: false,
            ..IndexOptions::default()
        },
    )
    .expect("open");
    let t = Instant::now();
    for chunk in entries.chunks(args.batch) {
        let refs: Vec<&Value> = chunk.iter().collect();
        idx.add(&refs).expect("add");
    }
    let add_s = t.elapsed().as_secs_f64();
    println!(
        "add with features (non-durable): {:.0} entries/s ({:.1} s)",
        args.n as f64 / add_s,
        add_s
    );
    summary.add("add_per_s", args.n as f64 / add_s);
    let kind = SimprintType::parse("CONTENT-TEXT-V0").expect("type");
    let step = (args.n / args.q.max(1)).max(1);
    let queries: Vec<(usize, Query)> = (0..args.n)
        .step_by(step)
        .take(args.q)
        .map(|i| {
            let set = FeatureSet {
                kind: kind.clone(),
                bits: 64,
                simprints: docs[i].iter().map(|v| v.to_be_bytes().to_vec()).collect(),
                offsets: None,
                sizes: None,
            };
            (i, Query::features(vec![set]))
        })
        .collect();
    let params = SearchParams {
        count: 10,
        ..SearchParams::default()
    };
    // 0: from this (non-pool) thread into rayon's global pool, as every
    // binding calls the library.
    for threads in [1usize, 2, 0] {
        let mut runs = Vec::new();
        let mut own_first = 0;
        let mut run = || {
            for _ in 0..3 {
                own_first = 0;
                let t = Instant::now();
                for (_, q) in &queries {
                    let found = idx.search(q, &params).expect("search");
                    // The query's own document ranks first (whole overlap).
                    if found
                        .chunk_matches
                        .first()
                        .is_some_and(|m| m.score >= 0.999)
                    {
                        own_first += 1;
                    }
                }
                runs.push(queries.len() as f64 / t.elapsed().as_secs_f64());
            }
        };
        if threads == 0 {
            run();
        } else {
            pool(threads).install(run);
        }
        let label = if threads == 0 {
            "global pool, caller outside it".to_string()
        } else {
            format!("{threads} thread(s)")
        };
        println!(
            "chunk search count 10, {label}: {:.1} q/s (median of 3); {own_first}/{} queries found a whole match first",
            median(runs.clone()),
            queries.len()
        );
        let name = if threads == 0 {
            "search_global_qps".to_string()
        } else {
            format!("search_{threads}t_qps")
        };
        summary.add(name, median(runs));
    }
    println!("peak RSS: {:.0} MB", peak_rss_mb());
    summary.print();
}
