//! Searches never stall behind writers, builds or each other.
//!
//! `unit_index_under_mixed_load`: a child process runs, on one unit index,
//! 9 threads of searches (single, batch, exact, per-call expansion,
//! filtered, batches on a pool of their own, searches started on pool
//! threads, and a mix) beside a writer that adds,
//! removes, upserts, saves, reloads, resets and rebuilds the graph, and a
//! reader of a second handle (a read-only view of each save). A watchdog in
//! the child turns any thread without progress for 10 s into a failure with
//! every thread's stack (gdb); the parent bounds the whole run. It runs
//! `IVDB_STRESS_SECS` seconds (default 30).
//!
//! `engine_under_mixed_load`: the same on one engine (`IsccIndex`): searches
//! (single, exact, batch), `get` and `info` beside a writer that adds,
//! removes, saves, compacts and rebuilds; probe entries never removed are
//! always found with every unit type they answered with at the start.
//!
//! `searches_complete_while_a_graph_is_built`: counts searches completed
//! while a deferred graph is being built (no timing is asserted: a count).

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use iscc_vdb::engine::{IndexOptions, IsccIndex, Query, SearchParams};
use iscc_vdb::index::{
    ExactThreshold, Hit, Partition, SearchOptions, UnitIndex, UnitIndexOptions, AUTO_PARTITION_ROWS,
};
use iscc_vdb::testing::dataset::Dataset;

/// Seconds the mixed-load run lasts.
fn stress_secs() -> u64 {
    std::env::var("IVDB_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30)
}

/// A stall this long fails the run.
const STALL: Duration = Duration::from_secs(10);

#[test]
fn unit_index_under_mixed_load() {
    run_child("unit_index_mixed_load_child");
}

/// The same load on an index past the size it partitions itself at
/// (`partition: always`): lists are trained beside it on a snapshot, the
/// writes made meanwhile replayed and the layout swapped in, again after
/// each load and reset; at the end, probing every list equals the scan.
#[test]
fn partitioning_unit_index_under_mixed_load() {
    run_child_in("unit_index_mixed_load_child", "partition");
}

#[test]
fn engine_under_mixed_load() {
    run_child("engine_mixed_load_child");
}

/// Run the stress child `name` of this binary for [`stress_secs`] and
/// print its summary line; its failure (or a hang) fails the test.
fn run_child(name: &str) {
    run_child_in(name, "");
}

/// [`run_child`] with `IVDB_STRESS_MODE` set to `mode`.
fn run_child_in(name: &str, mode: &str) {
    let secs = stress_secs();
    let exe = std::env::current_exe().expect("test binary path");
    let out = common::child::output_within(
        Command::new(exe)
            .args(["--exact", name, "--ignored"])
            .args(["--nocapture", "--test-threads", "1"])
            .env("IVDB_STRESS_SECS", secs.to_string())
            .env("IVDB_STRESS_MODE", mode),
        Duration::from_secs(secs + 120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the stress child failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let summary = stdout
        .lines()
        .find_map(|l| l.find("stress:").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}\n{stderr}"));
    println!("{summary}");
}

/// Progress of one thread: a counter the watchdog reads.
struct Progress {
    names: Vec<&'static str>,
    counts: Vec<AtomicU64>,
}

impl Progress {
    fn new(names: Vec<&'static str>) -> Arc<Progress> {
        let counts = names.iter().map(|_| AtomicU64::new(0)).collect();
        Arc::new(Progress { names, counts })
    }

    fn tick(&self, i: usize) {
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    fn total(&self, name: &str) -> u64 {
        self.names
            .iter()
            .zip(&self.counts)
            .filter(|(n, _)| **n == name)
            .map(|(_, c)| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// Watch `progress` until `done`: a counter unchanged for [`STALL`] prints
/// every thread's stack of this process and exits with status 3.
fn watchdog(progress: Arc<Progress>, done: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut last: Vec<(u64, Instant)> = progress
            .counts
            .iter()
            .map(|c| (c.load(Ordering::Relaxed), Instant::now()))
            .collect();
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(200));
            for (i, c) in progress.counts.iter().enumerate() {
                let now = c.load(Ordering::Relaxed);
                if now != last[i].0 {
                    last[i] = (now, Instant::now());
                } else if last[i].1.elapsed() > STALL && !done.load(Ordering::Relaxed) {
                    // gdb stops this thread too: its output goes to a
                    // file (a pipe this thread drains would fill and hang).
                    let file = std::env::temp_dir()
                        .join(format!("ivdb-stress-stacks-{}.txt", std::process::id()));
                    let stacks = std::fs::File::create(&file)
                        .and_then(|out| {
                            Command::new("gdb")
                                .args(["-batch", "-nx", "-p", &std::process::id().to_string()])
                                .args(["-ex", "thread apply all bt 30"])
                                .stdin(std::process::Stdio::null())
                                .stdout(out.try_clone()?)
                                .stderr(out)
                                .status()
                        })
                        .and_then(|_| std::fs::read_to_string(&file))
                        .unwrap_or_else(|e| format!("(gdb did not run: {e})"));
                    let _ = std::fs::remove_file(&file);
                    eprintln!(
                        "STALL: thread {i} ({}) made no progress for {STALL:?} (count {now})\n{stacks}",
                        progress.names[i]
                    );
                    std::process::exit(3);
                }
            }
        }
    })
}

fn sorted(hits: &[Hit]) -> bool {
    hits.windows(2).all(|w| w[0] <= w[1])
}

/// The child of `unit_index_under_mixed_load` (not a test on its own).
#[test]
#[ignore = "child process of unit_index_under_mixed_load"]
fn unit_index_mixed_load_child() {
    let secs = stress_secs();
    let partitioning = std::env::var("IVDB_STRESS_MODE").is_ok_and(|m| m == "partition");
    // Rows at the start and after each reset: past the partition size in
    // partition mode (so each load and reset trains lists again), else past
    // the graph threshold.
    let (start, refill, options) = if partitioning {
        let rows = AUTO_PARTITION_ROWS as u64 + 1_000;
        let options = UnitIndexOptions {
            partition: Partition::Always,
            ..UnitIndexOptions::default()
        };
        (rows, rows, options)
    } else {
        let options = UnitIndexOptions {
            exact_threshold: ExactThreshold::Rows(2_000),
            ..UnitIndexOptions::default()
        };
        (1_500, 3_000, options)
    };
    let data = Arc::new(Dataset::generate(refill as usize * 2, 64, 11));
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("unit.ivdb");
    let index = Arc::new(UnitIndex::new(options).unwrap());
    let keys: Vec<u64> = (0..start).collect();
    index
        .add_batch(&keys, &data.codes[..start as usize])
        .unwrap();
    index.save(&saved).unwrap();
    let view = Arc::new(std::sync::Mutex::new(Arc::new(
        UnitIndex::restore(&saved, true).unwrap(),
    )));

    let kinds = [
        "single",
        "batch",
        "exact",
        "expansion",
        "batch-expansion",
        "filtered",
        "pool-batch",
        "from-pool",
        "mixed",
    ];
    let mut names: Vec<&'static str> = kinds.to_vec();
    names.push("writer");
    names.push("view-reader");
    let progress = Progress::new(names);
    let done = Arc::new(AtomicBool::new(false));
    let dog = watchdog(Arc::clone(&progress), Arc::clone(&done));
    let deadline = Instant::now() + Duration::from_secs(secs);

    let mut threads = Vec::new();
    for (t, kind) in kinds.iter().copied().enumerate() {
        let (index, data, progress, done) = (
            Arc::clone(&index),
            Arc::clone(&data),
            Arc::clone(&progress),
            Arc::clone(&done),
        );
        threads.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !done.load(Ordering::Relaxed) {
                let q = &data.queries[(n * 8 + t) % data.queries.len()];
                let batch = &data.queries[n % 32..n % 32 + 16];
                let kind = if kind == "mixed" {
                    kinds[n % (kinds.len() - 1)]
                } else {
                    kind
                };
                match kind {
                    "single" => assert!(sorted(&index.search(q, 10).unwrap())),
                    "exact" => assert!(sorted(&index.search_exact(q, 10).unwrap())),
                    "expansion" => {
                        let options = SearchOptions {
                            expansion_search: Some(16 + n % 64),
                            ..SearchOptions::count(10)
                        };
                        assert!(sorted(&index.search_with(q, &options).unwrap()));
                    }
                    // Searches started on pool threads, as a sharded index
                    // and the engine start theirs (a pool thread waiting
                    // for a lock may be the work the holder waits for).
                    "from-pool" => {
                        use rayon::prelude::*;
                        let found: Vec<Vec<Hit>> = batch[..4]
                            .par_iter()
                            .map(|q| index.search(q, 10).unwrap())
                            .collect();
                        assert!(found.iter().all(|h| sorted(h)));
                    }
                    "filtered" => {
                        let keep = |k: u64| k.is_multiple_of(3);
                        let hits = index
                            .search_filtered(q, &SearchOptions::count(10), Some(&keep))
                            .unwrap();
                        assert!(hits.iter().all(|h| h.key.is_multiple_of(3)));
                    }
                    _ => {
                        let options = SearchOptions {
                            expansion_search: (kind == "batch-expansion").then_some(24 + n % 40),
                            threads: (kind == "pool-batch").then_some(2),
                            ..SearchOptions::count(10)
                        };
                        let found = index.search_batch(batch, &options).unwrap();
                        assert_eq!(found.len(), batch.len());
                        assert!(found.iter().all(|h| sorted(h)));
                    }
                }
                progress.tick(t);
                n += 1;
            }
        }));
    }
    {
        let (view, data, progress, done) = (
            Arc::clone(&view),
            Arc::clone(&data),
            Arc::clone(&progress),
            Arc::clone(&done),
        );
        let me = kinds.len() + 1;
        threads.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !done.load(Ordering::Relaxed) {
                let handle = Arc::clone(&view.lock().unwrap());
                let q = &data.queries[n % data.queries.len()];
                let hits = handle.search(q, 10).unwrap();
                assert!(sorted(&hits) && !hits.is_empty());
                progress.tick(me);
                n += 1;
            }
        }));
    }

    // The writer, on this thread.
    let me = kinds.len();
    let mut cycle = 0u64;
    let mut next = start;
    let mut writes = 0u64;
    // A load or reset replaces the rows, which cancels a partition being
    // trained: in partition mode they come rarely enough for one to finish.
    let (reload_every, reset_every) = if partitioning { (200, 300) } else { (20, 30) };
    // Partition attempts seen finished (each report differs in its time).
    let mut partitions = 0u64;
    let mut last = index.last_partition();
    while Instant::now() < deadline {
        let at = |k: u64| &data.codes[(k % data.codes.len() as u64) as usize];
        let keys: Vec<u64> = (next..next + 200).collect();
        let bodies: Vec<&Vec<u8>> = keys.iter().map(|&k| at(k)).collect();
        assert_eq!(index.add_batch(&keys, &bodies).unwrap(), 200);
        next += 200;
        let gone: Vec<u64> = (next - 400..next - 300).collect();
        index.remove_batch(&gone).unwrap();
        let changed: Vec<u64> = (next - 200..next - 150).collect();
        let bodies: Vec<&Vec<u8>> = changed.iter().map(|&k| at(k + 7)).collect();
        index.upsert_batch(&changed, &bodies).unwrap();
        writes += 3;
        if cycle % 5 == 4 {
            index.save(&saved).unwrap();
            *view.lock().unwrap() = Arc::new(UnitIndex::restore(&saved, true).unwrap());
            writes += 1;
        }
        if cycle % reload_every == reload_every - 1 {
            index.load(&saved).unwrap();
            writes += 1;
        }
        if cycle % reset_every == reset_every - 1 {
            // A rebuild: empty, refilled in one batch past the threshold,
            // so the graph is built again (beside the searches).
            index.reset().unwrap();
            let keys: Vec<u64> = (0..refill).collect();
            index
                .add_batch(&keys, &data.codes[..refill as usize])
                .unwrap();
            next = refill;
            writes += 2;
        }
        if index.last_partition() != last {
            last = index.last_partition();
            partitions += 1;
        }
        progress.tick(me);
        cycle += 1;
    }
    done.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a search thread panicked");
    }
    dog.join().unwrap();
    if partitioning {
        // Every row written while lists were trained is in them: probing
        // every list is the exact scan.
        index.wait_partition().unwrap();
        let (lists, _) = index.lists();
        assert!(
            lists > 1 && partitions > 0,
            "lists {lists}, partitions {partitions}"
        );
        common::assert_every_list_is_exact(&index, &data.queries[..50], "stress");
    }
    let searches: u64 = kinds.iter().map(|k| progress.total(k)).sum();
    println!(
        "stress: secs={secs} partitioning={partitioning} partitions={partitions} \
         searches={searches} writes={writes} cycles={cycle} view_searches={} per_kind={:?}",
        progress.total("view-reader"),
        kinds
            .iter()
            .map(|k| (*k, progress.total(k)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn searches_complete_while_a_graph_is_built() {
    let data = Dataset::generate(60_000, 64, 5);
    let index = Arc::new(
        UnitIndex::new(UnitIndexOptions {
            exact_threshold: ExactThreshold::Rows(1_000_000),
            ..UnitIndexOptions::default()
        })
        .unwrap(),
    );
    let keys: Vec<u64> = (0..data.codes.len() as u64).collect();
    index.add_batch(&keys, &data.codes).unwrap();
    assert!(index.graph_deferred());
    let building = Arc::new(AtomicBool::new(false));
    let built = Arc::new(AtomicBool::new(false));
    let during = Arc::new(AtomicU64::new(0));
    let queries = Arc::new(data.queries.clone());
    let searchers: Vec<_> = (0..2)
        .map(|t| {
            let (index, data, building, built, during) = (
                Arc::clone(&index),
                Arc::clone(&queries),
                Arc::clone(&building),
                Arc::clone(&built),
                Arc::clone(&during),
            );
            std::thread::spawn(move || {
                let mut n = t;
                while !built.load(Ordering::Acquire) {
                    let was_building = building.load(Ordering::Acquire);
                    let hits = index.search(&data[n % data.len()], 10).unwrap();
                    assert_eq!(hits.len(), 10);
                    // Counted only when the build was running both before
                    // and after this search.
                    if was_building && !built.load(Ordering::Acquire) {
                        during.fetch_add(1, Ordering::Relaxed);
                    }
                    n += 2;
                }
            })
        })
        .collect();
    building.store(true, Ordering::Release);
    // Wanting a graph at this size builds it now, from every row.
    index.set_exact_threshold(ExactThreshold::Rows(0)).unwrap();
    built.store(true, Ordering::Release);
    for s in searchers {
        s.join().unwrap();
    }
    assert!(!index.graph_deferred());
    let during = during.load(Ordering::Relaxed);
    assert!(
        during >= 100,
        "only {during} searches completed while the graph of 60,000 rows was built"
    );
    println!("searches during the build: {during}");
}

/// An add that makes the graph pay starts its build in the background and
/// returns: adds (and removes) go on while the graph of 60,000 rows is
/// built — at least 100 of them complete with the graph still deferred —
/// and `wait_graph` then publishes a graph holding exactly the rows stored
/// (those written during the build included).
#[test]
fn adds_complete_while_a_graph_is_built() {
    let data = Dataset::generate(60_400, 64, 6);
    let index = UnitIndex::new(UnitIndexOptions {
        exact_threshold: ExactThreshold::Rows(50_000),
        ..UnitIndexOptions::default()
    })
    .unwrap();
    let keys: Vec<u64> = (0..data.codes.len() as u64).collect();
    index
        .add_batch(&keys[..60_000], &data.codes[..60_000])
        .unwrap();
    let mut during: usize = 0;
    for (k, c) in keys[60_000..].iter().zip(&data.codes[60_000..]) {
        if !index.graph_deferred() {
            break;
        }
        index.add_batch(&[*k], &[c]).unwrap();
        if k % 4 == 0 {
            assert_eq!(index.remove_batch(&[k - 60_000]).unwrap(), 1);
        }
        during += 1;
    }
    println!("adds during the build: {during}");
    assert!(
        during >= 100,
        "only {during} single adds completed while the graph of 60,000 rows was built"
    );
    index.wait_graph().unwrap();
    assert!(!index.graph_deferred());
    let stored = index.len();
    assert_eq!(stored, 60_000 + during - during.div_ceil(4));
    assert_eq!(index.stats().graph_len, stored);
    // The graph answers for a row added during the build, not for one
    // removed then.
    let approximate = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(1)
    };
    let last = 60_000 + during - 1;
    let hits = index.search_with(&data.codes[last], &approximate).unwrap();
    assert_eq!(hits[0].key, last as u64);
    let hits = index.search_with(&data.codes[0], &approximate).unwrap();
    assert!(hits.iter().all(|h| h.key != 0));
}

/// The child of `engine_under_mixed_load` (not a test on its own).
#[test]
#[ignore = "child process of engine_under_mixed_load"]
fn engine_mixed_load_child() {
    let secs = stress_secs();
    let records = common::corpus();
    let dir = tempfile::tempdir().unwrap();
    let options = IndexOptions {
        durable: false,
        ..IndexOptions::default()
    };
    let index = IsccIndex::open(Some(dir.path()), options).unwrap();
    let query_of = |r: &serde_json::Value| match r["units"].as_array() {
        Some(units) => Query::units(units.iter().map(|u| u.as_str().unwrap().to_string())),
        None => Query::code(r["iscc_code"].as_str().unwrap()),
    };
    let add = |rs: &[serde_json::Value]| {
        let refs: Vec<&serde_json::Value> = rs.iter().collect();
        index.add(&refs).unwrap().len()
    };
    // Records 0..100 are never removed; the writer keeps a window of 700
    // of the others, adding at its front and removing at its back.
    const KEPT: usize = 100;
    const WINDOW: usize = 700;
    assert_eq!(add(&records[..KEPT + WINDOW]), KEPT + WINDOW);
    index.save().unwrap();
    let params = SearchParams::default();
    let exact = SearchParams {
        exact: true,
        ..SearchParams::default()
    };
    // Each probe with the unit types its own entry answered with.
    let probes: Vec<(Query, String, Vec<String>)> = records[..KEPT]
        .iter()
        .step_by(10)
        .map(|r| {
            let q = query_of(r);
            let id = r["iscc_id"].as_str().unwrap().to_string();
            let found = index.search(&q, &params).unwrap();
            let own = found
                .matches
                .iter()
                .find(|m| m.iscc_id == id)
                .expect("finds itself");
            let types = own.units.keys().cloned().collect();
            (q, id, types)
        })
        .collect();
    let check = |found: &iscc_vdb::engine::IsccMatches,
                 (_, id, types): &(Query, String, Vec<String>)| {
        let own = found
            .matches
            .iter()
            .find(|m| &m.iscc_id == id)
            .unwrap_or_else(|| panic!("probe {id} not found"));
        let got: Vec<String> = own.units.keys().cloned().collect();
        assert_eq!(&got, types, "probe {id}: every unit type answers");
    };

    let kinds = ["search", "exact", "batch", "get", "info"];
    let mut names: Vec<&'static str> = kinds.to_vec();
    names.push("writer");
    let progress = Progress::new(names);
    let done = AtomicBool::new(false);
    let dog_done = Arc::new(AtomicBool::new(false));
    let dog = watchdog(Arc::clone(&progress), Arc::clone(&dog_done));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut cycles, mut writes) = (0u64, 0u64);
    std::thread::scope(|s| {
        for (t, kind) in kinds.iter().copied().enumerate() {
            let (index, probes, progress, done, check) =
                (&index, &probes, &progress, &done, &check);
            let (params, exact) = (&params, &exact);
            s.spawn(move || {
                let mut n = 0usize;
                while !done.load(Ordering::Relaxed) {
                    let probe = &probes[n % probes.len()];
                    match kind {
                        "search" => check(&index.search(&probe.0, params).unwrap(), probe),
                        "exact" => check(&index.search(&probe.0, exact).unwrap(), probe),
                        "batch" => {
                            let queries: Vec<Query> = probes.iter().map(|p| p.0.clone()).collect();
                            let found = index.search_batch(&queries, params).unwrap();
                            assert_eq!(found.queries.len(), probes.len());
                            for (f, p) in found.queries.iter().zip(probes) {
                                check(f, p);
                            }
                        }
                        "get" => {
                            let got = index
                                .get(&probe.1)
                                .unwrap()
                                .expect("a probe entry is stored");
                            assert_eq!(got["iscc_id"], probe.1.as_str());
                        }
                        _ => {
                            let size = index.info().unwrap().size;
                            assert!(size >= KEPT as u64, "size {size}");
                        }
                    }
                    progress.tick(t);
                    n += 1;
                }
            });
        }
        // The writer, on this thread.
        let me = kinds.len();
        let others = KEPT..records.len();
        let mut front = KEPT + WINDOW;
        let mut back = KEPT;
        let wrap = |i: usize| others.start + (i - others.start) % others.len();
        while Instant::now() < deadline {
            let adding: Vec<serde_json::Value> = (front..front + 50)
                .map(|i| records[wrap(i)].clone())
                .collect();
            assert_eq!(add(&adding), 50);
            front += 50;
            let gone: Vec<String> = (back..back + 50)
                .map(|i| records[wrap(i)]["iscc_id"].as_str().unwrap().to_string())
                .collect();
            let gone: Vec<&str> = gone.iter().map(String::as_str).collect();
            // (It counts unit and INSTANCE rows removed, several per entry.)
            assert!(index.remove(&gone).unwrap() >= 50);
            back += 50;
            writes += 2;
            match cycles % 7 {
                2 => index.save().unwrap(),
                4 => drop(index.compact().unwrap()),
                6 => index.rebuild().unwrap(),
                _ => writes -= 1,
            }
            writes += 1;
            assert_eq!(index.size().unwrap(), (KEPT + WINDOW) as u64);
            progress.tick(me);
            cycles += 1;
        }
        done.store(true, Ordering::Relaxed);
    });
    dog_done.store(true, Ordering::Relaxed);
    dog.join().unwrap();
    let searches: u64 = ["search", "exact", "batch"]
        .iter()
        .map(|k| progress.total(k))
        .sum();
    index.close().unwrap();
    println!(
        "stress: engine secs={secs} searches={searches} writes={writes} cycles={cycles} per_kind={:?}",
        kinds
            .iter()
            .map(|k| (*k, progress.total(k)))
            .collect::<Vec<_>>()
    );
}
