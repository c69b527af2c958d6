//! `ivdb-bench engine --uri milvus://…`: the same entries and queries
//! through the Milvus backend, measured as the local index is (add rate,
//! single-query and batch q/s, exact q/s, recall of the default search
//! against exact) and its exact results compared with the local engine's.

use std::time::Instant;

use iscc_vdb::engine::{IndexOptions, IsccIndex, Query};

use crate::engine::{measure_searches, recall_vs_exact, EngineArgs, Ranked};
use crate::support::Summary;

/// Build the index `uri` names from scratch (an index of that name is
/// dropped first) and measure it; `truth` are the local engine's exact
/// results on the same queries, when it ran.
pub(crate) fn milvus(
    uri: &str,
    args: &EngineArgs,
    entries: &[serde_json::Value],
    queries: &[Query],
    truth: Option<&[Ranked]>,
    summary: &mut Summary,
) {
    println!("# Milvus backend: {uri}");
    let path = std::path::Path::new(uri);
    let reused = if args.reuse {
        IsccIndex::open(Some(path), IndexOptions::default())
            .ok()
            .filter(|idx| idx.info().is_ok_and(|i| i.size == args.n as u64))
    } else {
        None
    };
    let idx = match reused {
        Some(idx) => {
            println!("reusing the index of {} entries", args.n);
            idx
        }
        None => build(uri, args, entries, summary),
    };
    seal(&idx, summary);
    let info = idx.info().expect("info");
    println!("size {} unit types {:?}", info.size, info.unit_types);
    measure_searches(&idx, queries, args.rounds, summary, "milvus_");
    let exact = recall_vs_exact(&idx, queries, summary, "milvus_");
    if let Some(truth) = truth {
        let same = exact
            .iter()
            .zip(truth)
            .filter(|(got, want)| same_ranking(got, want))
            .count();
        println!(
            "exact search through Milvus equals the local engine's on {same}/{} queries (ids up to ties, scores)",
            queries.len()
        );
        summary.add(
            "milvus_exact_equal_local",
            same as f64 / queries.len() as f64,
        );
    }
    idx.close().expect("close");
}

/// Drop the index `uri` names, add `entries` in batches and wait for
/// Milvus to index them; the open index.
fn build(
    uri: &str,
    args: &EngineArgs,
    entries: &[serde_json::Value],
    summary: &mut Summary,
) -> IsccIndex {
    let dropped = IsccIndex::drop_remote(uri).expect("drop the bench index");
    if dropped > 0 {
        println!("dropped {dropped} collections of an earlier run");
    }
    let idx = IsccIndex::open(Some(std::path::Path::new(uri)), IndexOptions::default())
        .expect("open the Milvus index");
    let t = Instant::now();
    let mut last = Instant::now();
    for (i, chunk) in entries.chunks(args.batch).enumerate() {
        let refs: Vec<&serde_json::Value> = chunk.iter().collect();
        idx.add(&refs).expect("add through Milvus");
        if last.elapsed().as_secs() >= 60 {
            let done = (i + 1) * args.batch;
            println!(
                "  {done} entries in {:.0} s ({:.0} entries/s)",
                t.elapsed().as_secs_f64(),
                done as f64 / t.elapsed().as_secs_f64()
            );
            last = Instant::now();
        }
    }
    let add_s = t.elapsed().as_secs_f64();
    println!("add: {:.0} entries/s ({add_s:.1} s)", args.n as f64 / add_s);
    summary.add("milvus_add_per_s", args.n as f64 / add_s);
    idx
}

/// Seal the growing segments (`save`: Milvus searches growing segments by
/// brute force, the vector index covers sealed ones) and wait for the
/// indexes.
fn seal(idx: &IsccIndex, summary: &mut Summary) {
    let t = Instant::now();
    idx.save().expect("flush");
    let flush_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    idx.wait_background().expect("wait for Milvus's indexes");
    let wait_s = t.elapsed().as_secs_f64();
    println!("flushed in {flush_s:.1} s, indexes built {wait_s:.1} s later");
    summary.add("milvus_flush_s", flush_s);
    summary.add("milvus_index_wait_s", wait_s);
}

/// The same scores rank by rank, and the same ids except among the matches
/// tied at the last score (which of those make the cut is arbitrary).
fn same_ranking(got: &Ranked, want: &Ranked) -> bool {
    if got.len() != want.len() || got.iter().zip(want).any(|(g, w)| g.1 != w.1) {
        return false;
    }
    let Some(floor) = want.last().map(|w| w.1) else {
        return true;
    };
    let above = |r: &Ranked| {
        let mut keys: Vec<u64> = r.iter().filter(|m| m.1 > floor).map(|m| m.0).collect();
        keys.sort_unstable();
        keys
    };
    above(got) == above(want)
}
