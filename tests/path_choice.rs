//! `exact_threshold: auto`: the search path chosen by measured cost. Where
//! the choice is the scan, results equal the forced exact search; where it
//! is the graph, recall meets the floor; small indexes build no graph; the
//! setting round-trips as `"auto"` or a row count.

use iscc_vdb::index::{
    ExactThreshold, Hit, SearchCounters, SearchOptions, ShardedIndex, ShardedOptions, UnitIndex,
    UnitIndexOptions,
};
use iscc_vdb::testing::dataset::Dataset;

fn exact(count: usize) -> SearchOptions {
    SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(count)
    }
}

fn keys(hits: &[Hit]) -> Vec<u64> {
    hits.iter().map(|h| h.key).collect()
}

#[test]
fn a_small_auto_index_builds_no_graph_and_scans_exactly() {
    let data = Dataset::generate(3000, 50, 5);
    let idx = UnitIndex::new(UnitIndexOptions::default()).unwrap();
    assert_eq!(idx.options().exact_threshold, ExactThreshold::Auto);
    let keys_in: Vec<u64> = (0..3000).collect();
    idx.add_batch(&keys_in, &data.codes).unwrap();
    // 3,000 rows are fewer than one graph walk computes: no graph.
    assert!(idx.graph_deferred());
    for q in &data.queries {
        let counters = SearchCounters::default();
        let got = idx
            .search_counted(q, &SearchOptions::count(10), None, &counters)
            .unwrap();
        assert_eq!(counters.visited(), 3000, "a scan visits every row");
        assert_eq!(got, idx.search_with(q, &exact(10)).unwrap());
    }
    let (scan, graph) = idx.path_estimates_ns(&SearchOptions::count(10));
    assert!(scan > 0.0);
    assert_eq!(graph, None);
}

#[test]
fn the_auto_choice_equals_exact_where_it_scans_and_meets_the_recall_floor_where_it_walks() {
    let n = 30_000;
    let data = Dataset::generate(n, 200, 9);
    let idx = UnitIndex::new(UnitIndexOptions::default()).unwrap();
    let ks: Vec<u64> = (0..n as u64).collect();
    idx.add_batch(&ks, &data.codes).unwrap();
    // Make sure a graph exists, whatever auto decided for this size.
    let approx = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(10)
    };
    idx.search_with(&data.queries[0], &approx).unwrap();
    assert!(!idx.graph_deferred());
    let (scan, graph) = idx.path_estimates_ns(&SearchOptions::count(10));
    let graph = graph.expect("a graph was built");
    assert!(scan > 0.0 && graph > 0.0, "{scan} {graph}");

    let (mut scanned, mut walked, mut found, mut wanted) = (0, 0, 0usize, 0usize);
    for q in &data.queries {
        let (scan, graph) = idx.path_estimates_ns(&SearchOptions::count(10));
        let graph = graph.expect("the graph stays");
        let counters = SearchCounters::default();
        let got = idx
            .search_counted(q, &SearchOptions::count(10), None, &counters)
            .unwrap();
        let truth = idx.search_with(q, &exact(10)).unwrap();
        if counters.visited() == n as u64 && counters.computed() == n as u64 {
            scanned += 1;
            assert_eq!(got, truth, "a scan is exact");
            // The scan was chosen because it was estimated no dearer (the
            // estimates move with every search, so compare the ones taken
            // just before).
            assert!(scan <= graph * 1.5, "scanned at {scan} ns vs {graph} ns");
        } else {
            walked += 1;
            assert!(counters.computed() < n as u64);
            let t = keys(&truth);
            found += keys(&got).iter().filter(|k| t.contains(k)).count();
            wanted += t.len();
        }
    }
    eprintln!("auto at {n} rows: {scanned} scanned, {walked} walked the graph");
    assert_eq!(scanned + walked, data.queries.len());
    if walked > 0 {
        let recall = found as f64 / wanted as f64;
        assert!(
            recall >= 0.95,
            "recall@10 {recall} where the graph was chosen"
        );
    }
}

#[test]
fn forced_paths_and_row_thresholds_still_decide() {
    let data = Dataset::generate(2000, 10, 3);
    let ks: Vec<u64> = (0..2000).collect();
    // Rows(0): a graph from the first row, default searches walk it.
    let graph_first = UnitIndex::new(UnitIndexOptions {
        exact_threshold: ExactThreshold::Rows(0),
        ..UnitIndexOptions::default()
    })
    .unwrap();
    graph_first.add_batch(&ks, &data.codes).unwrap();
    assert!(!graph_first.graph_deferred());
    let counters = SearchCounters::default();
    graph_first
        .search_counted(&data.queries[0], &SearchOptions::count(10), None, &counters)
        .unwrap();
    assert!(counters.visited() < 2000, "the graph was walked");
    // Rows(5000): scans up to 5,000 rows, no graph.
    let scans = UnitIndex::new(UnitIndexOptions {
        exact_threshold: ExactThreshold::Rows(5000),
        ..UnitIndexOptions::default()
    })
    .unwrap();
    scans.add_batch(&ks, &data.codes).unwrap();
    assert!(scans.graph_deferred());
    // Switching to auto keeps a small index graph-free.
    scans.set_exact_threshold(ExactThreshold::Auto).unwrap();
    assert!(scans.graph_deferred());
    scans.set_exact_threshold(0).unwrap();
    assert!(!scans.graph_deferred(), "Rows(0) builds the graph now");
}

#[test]
fn sharded_auto_search_equals_exact_where_shards_scan() {
    let dir = tempfile::tempdir().unwrap();
    let data = Dataset::generate(6000, 40, 21);
    let idx = ShardedIndex::<u64>::create(
        dir.path(),
        ShardedOptions {
            shard_size: 32 << 10,
            merge_factor: 0,
            ..ShardedOptions::default()
        },
    )
    .unwrap();
    let ks: Vec<u64> = (0..6000).collect();
    idx.add(&ks, &data.codes).unwrap();
    assert!(idx.shard_count() > 3);
    for q in &data.queries {
        let counters = SearchCounters::default();
        let got = idx
            .search_counted(q, &SearchOptions::count(10), &counters)
            .unwrap();
        // Every shard is small: every one scans, so the answer is exact.
        assert_eq!(counters.visited(), 6000);
        assert_eq!(got, idx.search(q, &exact(10)).unwrap());
    }
}

#[test]
fn the_threshold_reads_and_writes_auto_or_a_row_count() {
    let auto: ExactThreshold = serde_json::from_str("\"auto\"").unwrap();
    assert_eq!(auto, ExactThreshold::Auto);
    assert_eq!(serde_json::to_string(&auto).unwrap(), "\"auto\"");
    let rows: ExactThreshold = serde_json::from_str("1200").unwrap();
    assert_eq!(rows, ExactThreshold::Rows(1200));
    assert_eq!(serde_json::to_string(&rows).unwrap(), "1200");
    for bad in ["\"sometimes\"", "-1", "1.5", "null"] {
        let err = serde_json::from_str::<ExactThreshold>(bad).unwrap_err();
        assert!(
            err.to_string().contains("exact_threshold") || bad == "1.5" || bad == "null",
            "{bad}: {err}"
        );
    }
    // The engine's open options take both.
    use iscc_vdb::engine::IndexOptions;
    let o = IndexOptions::from_json(Some(r#"{"exact_threshold": "auto"}"#), false).unwrap();
    assert_eq!(o.params.exact_threshold, ExactThreshold::Auto);
    let o = IndexOptions::from_json(Some(r#"{"exact_threshold": 10}"#), false).unwrap();
    assert_eq!(o.params.exact_threshold, ExactThreshold::Rows(10));
    let err = IndexOptions::from_json(Some(r#"{"exact_threshold": "x"}"#), false).unwrap_err();
    assert!(err.to_string().contains("exact_threshold"), "{err}");
}

#[test]
fn the_partition_mode_is_an_engine_parameter_kept_with_the_index() {
    use iscc_vdb::engine::{IndexOptions, IsccIndex};
    use iscc_vdb::index::Partition;
    assert_eq!(IndexOptions::default().params.partition, Partition::Auto);
    for (text, want) in [
        ("auto", Partition::Auto),
        ("always", Partition::Always),
        ("off", Partition::Off),
    ] {
        let json = format!(r#"{{"partition": "{text}"}}"#);
        let o = IndexOptions::from_json(Some(&json), false).unwrap();
        assert_eq!(o.params.partition, want);
        assert_eq!(serde_json::to_string(&want).unwrap(), format!("\"{text}\""));
    }
    // (null, as for every open option, means the default.)
    for bad in [r#""sometimes""#, "3", "[]"] {
        let json = format!(r#"{{"partition": {bad}}}"#);
        let err = IndexOptions::from_json(Some(&json), false).unwrap_err();
        assert!(err.to_string().contains("partition"), "{bad}: {err}");
    }
    // Stored with the parameters: a reopen keeps it, whatever it is asked.
    let dir = tempfile::tempdir().unwrap();
    let off = IndexOptions::from_json(Some(r#"{"partition": "off"}"#), false).unwrap();
    let idx = IsccIndex::open(Some(dir.path()), off).unwrap();
    assert_eq!(idx.params().partition, Partition::Off);
    let entry = &iscc_vdb::testing::dataset::engine_entries(1, 0).0[0];
    idx.add(&[entry]).unwrap();
    idx.close().unwrap();
    drop(idx);
    // ... and handed to every unit index's shards (their manifests say it).
    let manifests: Vec<String> = walk(dir.path())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "manifest.json"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!manifests.is_empty());
    for m in &manifests {
        let v: serde_json::Value = serde_json::from_str(m).unwrap();
        assert_eq!(v["options"]["partition"], "off", "{m}");
    }
    let idx = IsccIndex::open(Some(dir.path()), IndexOptions::default()).unwrap();
    assert_eq!(idx.params().partition, Partition::Off);
    idx.close().unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
