//! The partitioned (IVF) path of unit indexes: probing every list gives
//! exactly the exact scan's answer (mixed lengths included), the default
//! `nprobe` meets a recall floor on clustered and on uniform data, and
//! adds, removes, upserts, saves and loads keep the lists equal to a
//! model of the rows; a bounded search stays complete.

use std::collections::BTreeMap;

use iscc_vdb::index::{ExactThreshold, Hit, Partition, SearchOptions, UnitIndex, UnitIndexOptions};
use iscc_vdb::metric::nphd;
use iscc_vdb::testing::dataset::Dataset;

fn scan_only() -> UnitIndex {
    // No graph: the partition is the only approximate path here.
    UnitIndex::new(UnitIndexOptions {
        exact_threshold: ExactThreshold::Rows(usize::MAX),
        ..UnitIndexOptions::default()
    })
    .unwrap()
}

/// An index that partitions itself from its first rows on, without
/// timing whether that pays (`partition: always`).
fn partitioning_itself() -> UnitIndex {
    UnitIndex::new(UnitIndexOptions {
        partition: Partition::Always,
        ..UnitIndexOptions::default()
    })
    .unwrap()
}

fn exact(count: usize) -> SearchOptions {
    SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(count)
    }
}

fn probing(count: usize, nprobe: usize) -> SearchOptions {
    SearchOptions {
        nprobe: Some(nprobe),
        ..SearchOptions::count(count)
    }
}

/// The true top-`k` over a model of the rows, by brute force.
fn brute(model: &BTreeMap<u64, Vec<u8>>, q: &[u8], k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = model
        .iter()
        .map(|(&key, body)| Hit {
            distance: nphd(q, body).unwrap(),
            key,
        })
        .collect();
    all.sort();
    all.truncate(k);
    all
}

/// Tie-aware recall@k: a returned hit counts when its distance is at most
/// the true k-th distance.
fn tie_recall(truth: &[Vec<Hit>], got: &[Vec<Hit>]) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for (t, g) in truth.iter().zip(got) {
        let Some(last) = t.last() else { continue };
        total += t.len();
        hit += g
            .iter()
            .take(t.len())
            .filter(|h| h.distance <= last.distance)
            .count();
    }
    hit as f64 / total.max(1) as f64
}

fn uniform(n: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 11
    };
    (0..n)
        .map(|_| {
            let len = 8 * (1 + (next() % 4) as usize);
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

#[test]
fn probing_every_list_is_the_exact_scan_at_every_length() {
    let data = Dataset::generate(20_000, 200, 11);
    let idx = scan_only();
    let keys: Vec<u64> = (0..data.codes.len() as u64).collect();
    idx.add_batch(&keys, &data.codes).unwrap();
    idx.partition(64, 4).unwrap();
    assert_eq!(idx.lists(), (64, 4));
    let model: BTreeMap<u64, Vec<u8>> = keys.iter().copied().zip(data.codes.clone()).collect();
    // Queries of every length against rows of every length.
    let mut queries = data.queries.clone();
    queries.extend(data.codes.iter().step_by(997).map(|c| c[..8].to_vec()));
    for q in &queries {
        let want = idx.search_with(q, &exact(10)).unwrap();
        assert_eq!(want, brute(&model, q, 10), "the exact scan is brute force");
        assert_eq!(idx.search_with(q, &probing(10, 64)).unwrap(), want);
        assert_eq!(idx.search_with(q, &probing(10, 1_000)).unwrap(), want);
        let capped = SearchOptions {
            max_distance: Some(0.2),
            exact: Some(false),
            ..probing(10, 64)
        };
        let mut within = want.clone();
        within.retain(|h| h.distance <= 0.2);
        assert_eq!(idx.search_with(q, &capped).unwrap(), within);
    }
}

#[test]
fn a_bounded_search_finds_every_row_within_its_bound_unless_told_otherwise() {
    let data = Dataset::generate(50_000, 100, 17);
    let idx = scan_only();
    let keys: Vec<u64> = (0..data.codes.len() as u64).collect();
    idx.add_batch(&keys, &data.codes).unwrap();
    // Few lists probed by default: a probe alone misses rows in range.
    idx.partition(128, 2).unwrap();
    let model: BTreeMap<u64, Vec<u8>> = keys.iter().copied().zip(data.codes.clone()).collect();
    let bound = 0.25;
    let (mut within, mut probed) = (0usize, 0usize);
    for q in &data.queries {
        let mut want = brute(&model, q, model.len());
        want.retain(|h| h.distance <= bound);
        want.truncate(1_000);
        let bounded = SearchOptions {
            max_distance: Some(bound),
            ..SearchOptions::count(1_000)
        };
        assert_eq!(
            idx.search_with(q, &bounded).unwrap(),
            want,
            "complete by default"
        );
        let fast = SearchOptions {
            exact: Some(false),
            ..bounded
        };
        let got = idx.search_with(q, &fast).unwrap();
        assert!(got.iter().all(|h| h.distance <= bound && want.contains(h)));
        within += want.len();
        probed += got.len();
    }
    eprintln!("rows within {bound}: {within}, found by a 2-list probe: {probed}");
    assert!(
        within > 0 && probed < within,
        "the probe alone misses rows in range"
    );
}

#[test]
fn the_default_nprobe_meets_the_recall_floor_on_clustered_and_uniform_rows() {
    for (name, codes, queries, floor) in [
        {
            let d = Dataset::generate(50_000, 300, 3);
            ("clustered", d.codes, d.queries, 0.95)
        },
        {
            let rows = uniform(50_000, 5);
            let queries = uniform(300, 6);
            ("uniform", rows, queries, 0.90)
        },
    ] {
        let idx = scan_only();
        let keys: Vec<u64> = (0..codes.len() as u64).collect();
        idx.add_batch(&keys, &codes).unwrap();
        idx.partition(128, 32).unwrap();
        let truth: Vec<Vec<Hit>> = queries
            .iter()
            .map(|q| idx.search_with(q, &exact(10)).unwrap())
            .collect();
        let got: Vec<Vec<Hit>> = queries
            .iter()
            .map(|q| idx.search_with(q, &SearchOptions::count(10)).unwrap())
            .collect();
        let recall = tie_recall(&truth, &got);
        eprintln!("{name}: recall@10 {recall:.4} at the default nprobe");
        assert!(recall >= floor, "{name}: recall@10 {recall:.3} < {floor}");
        // Fewer lists probed, fewer rows read: the path is sublinear.
        let counters = iscc_vdb::index::SearchCounters::default();
        idx.search_counted(&queries[0], &SearchOptions::count(10), None, &counters)
            .unwrap();
        eprintln!(
            "{name}: {} rows read of {}",
            counters.visited(),
            codes.len()
        );
        assert!(
            counters.visited() < codes.len() as u64 / 2,
            "{name}: {} rows read of {}",
            counters.visited(),
            codes.len()
        );
    }
}

#[test]
fn writes_saves_and_loads_keep_the_lists_equal_to_the_model() {
    let data = Dataset::generate(12_000, 100, 21);
    let idx = scan_only();
    let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let keys: Vec<u64> = (0..8_000).collect();
    idx.add_batch(&keys, &data.codes[..8_000]).unwrap();
    model.extend(
        keys.iter()
            .copied()
            .zip(data.codes[..8_000].iter().cloned()),
    );
    idx.partition(32, 32).unwrap();
    // Adds after partitioning go to their lists; removes and upserts
    // (a new body for a key, maybe another list) keep them consistent.
    let more: Vec<u64> = (8_000..12_000).collect();
    idx.add_batch(&more, &data.codes[8_000..]).unwrap();
    model.extend(
        more.iter()
            .copied()
            .zip(data.codes[8_000..].iter().cloned()),
    );
    for key in (0..12_000).step_by(7) {
        assert!(idx.remove(key).unwrap());
        model.remove(&key);
    }
    for key in (3..12_000).step_by(11) {
        let body = data.codes[(key as usize * 31) % 12_000].clone();
        idx.upsert(key, &body).unwrap();
        model.insert(key, body);
    }
    let check = |idx: &UnitIndex, when: &str| {
        assert_eq!(idx.len(), model.len(), "{when}");
        for (key, body) in model.iter().step_by(13) {
            assert_eq!(
                idx.get(*key).as_deref(),
                Some(body.as_slice()),
                "{when}: key {key}"
            );
        }
        for q in data.queries.iter().take(40) {
            let want = brute(&model, q, 10);
            assert_eq!(
                idx.search_with(q, &probing(10, 32)).unwrap(),
                want,
                "{when}"
            );
            assert_eq!(idx.search_with(q, &exact(10)).unwrap(), want, "{when}");
        }
    };
    check(&idx, "after writes");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ivf.ivu");
    idx.save(&path).unwrap();
    for view in [false, true] {
        let back = UnitIndex::restore(&path, view).unwrap();
        assert_eq!(back.lists(), (32, 32));
        check(&back, if view { "viewed" } else { "loaded" });
        for q in data.queries.iter().take(40) {
            let opts = probing(10, 3);
            assert_eq!(
                back.search_with(q, &opts).unwrap(),
                idx.search_with(q, &opts).unwrap()
            );
        }
    }
    // Unpartitioned again: one list, the same rows.
    idx.partition(1, 1).unwrap();
    assert_eq!(idx.lists(), (1, 1));
    check(&idx, "unpartitioned");
}

#[test]
fn bad_partition_parameters_are_refused() {
    let idx = scan_only();
    assert!(idx.partition(0, 1).is_err());
    assert!(idx.partition(4, 0).is_err());
    // An empty index partitions into one list (no words to train on).
    idx.partition(16, 4).unwrap();
    idx.add(1, &[7u8; 8]).unwrap();
    assert_eq!(idx.search(&[7u8; 8], 1).unwrap()[0].key, 1);
}

/// An index partitions itself as it grows (see `unit/retrain.rs`),
/// trained in the background while adds, removes and upserts go on, which
/// are all in the layout it adopts. `always` skips the cost measurement
/// (so the partition is certain here); `auto`, the default, keeps or
/// refuses it by what it measures, and either way loses no write.
#[test]
fn an_index_partitions_itself_and_keeps_every_write_made_meanwhile() {
    let n = 8 * iscc_vdb::index::AUTO_PARTITION_ROWS;
    let data = Dataset::generate(n, 300, 8);
    for mode in [Partition::Always, Partition::Auto] {
        let idx = UnitIndex::new(UnitIndexOptions {
            partition: mode,
            ..UnitIndexOptions::default()
        })
        .unwrap();
        let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut seen_pending = false;
        for start in (0..n).step_by(5_000) {
            let keys: Vec<u64> = (start as u64..(start + 5_000).min(n) as u64).collect();
            let bodies = &data.codes[start..start + keys.len()];
            idx.add_batch(&keys, bodies).unwrap();
            model.extend(keys.iter().copied().zip(bodies.iter().cloned()));
            seen_pending |= idx.partition_pending();
            // Keys of earlier batches change while a partition may be
            // trained.
            for key in (start as u64 / 2..start as u64).step_by(97) {
                if model.remove(&key).is_some() {
                    assert!(idx.remove(key).unwrap());
                }
            }
            for key in (start as u64 / 3..start as u64).step_by(89) {
                let body = data.codes[(key as usize * 7 + 1) % n].clone();
                idx.upsert(key, &body).unwrap();
                model.insert(key, body);
            }
        }
        assert!(seen_pending, "{mode:?}: no partition was started");
        idx.wait_partition().unwrap();
        let (lists, nprobe) = idx.lists();
        eprintln!(
            "{mode:?}: {lists} lists, nprobe {nprobe}, graph deferred {}",
            idx.graph_deferred()
        );
        let report = idx.last_partition().expect("an attempt finished");
        eprintln!("{mode:?}: {report:?}");
        // A kept attempt is the layout; a refused one left the layout as
        // it was (one list, or an earlier attempt's lists: a later attempt
        // measured against a partitioned scan may be refused).
        assert!(!report.kept || report.lists == lists, "{report:?}");
        assert!(report.kept || mode == Partition::Auto, "{report:?}");
        // The rows a probe reads: some, at most all, all when it probes
        // every list.
        assert!(report.rows_read >= 1.0, "{report:?}");
        assert!(report.rows_read <= report.rows as f64, "{report:?}");
        if report.nprobe == report.lists {
            assert_eq!(report.rows_read, report.rows as f64, "{report:?}");
        }
        assert!(
            report.recall >= iscc_vdb::index::TARGET_RECALL || report.nprobe == report.lists,
            "{report:?}"
        );
        if mode == Partition::Always {
            assert_eq!((report.lists, report.nprobe), (lists, nprobe));
            assert!(lists >= 16, "{lists} lists");
            assert!(nprobe < lists, "nprobe {nprobe} of {lists}");
            assert!(idx.graph_deferred(), "a partitioned index builds no graph");
        }
        assert_eq!(idx.len(), model.len());
        for (key, body) in model.iter().step_by(17) {
            assert_eq!(idx.get(*key).as_deref(), Some(body.as_slice()), "key {key}");
        }
        let truth: Vec<Vec<Hit>> = data.queries.iter().map(|q| brute(&model, q, 10)).collect();
        for (q, want) in data.queries.iter().zip(&truth).take(30) {
            assert_eq!(&idx.search_with(q, &exact(10)).unwrap(), want);
            assert_eq!(&idx.search_with(q, &probing(10, lists)).unwrap(), want);
        }
        let got: Vec<Vec<Hit>> = data
            .queries
            .iter()
            .map(|q| idx.search(q, 10).unwrap())
            .collect();
        let recall = tie_recall(&truth, &got);
        eprintln!("{mode:?}: recall@10 {recall:.4} by default");
        assert!(recall >= 0.95, "{mode:?}: recall@10 {recall:.4}");
    }
    // With `partition: off` the same adds leave one list.
    let off = UnitIndex::new(UnitIndexOptions {
        partition: Partition::Off,
        ..UnitIndexOptions::default()
    })
    .unwrap();
    let keys: Vec<u64> = (0..n as u64).collect();
    off.add_batch(&keys, &data.codes).unwrap();
    assert!(!off.partition_pending());
    assert_eq!(off.lists(), (1, 1));
}

/// Replacing an index's rows (reset, load, view) starts its partition
/// attempts afresh: an attempt cut short by a reset used to leave the next
/// one due only at twice the size it was started at, so the refilled index
/// stayed unpartitioned.
#[test]
fn a_reset_index_partitions_its_new_rows() {
    let rows = iscc_vdb::index::AUTO_PARTITION_ROWS + 2_000;
    let data = Dataset::generate(rows, 0, 21);
    let keys: Vec<u64> = (0..rows as u64).collect();
    let index = partitioning_itself();
    index.add_batch(&keys, &data.codes).unwrap();
    // The attempt this started is cut short (or its layout dropped).
    index.reset().unwrap();
    assert_eq!(index.lists().0, 1);
    index.add_batch(&keys, &data.codes).unwrap();
    index.wait_partition().unwrap();
    assert!(
        index.lists().0 > 1,
        "the refilled index was not partitioned"
    );
    assert_eq!(index.last_partition().map(|r| r.rows), Some(rows));
}

/// The default `nprobe` the index measured is measured again once the rows
/// have grown or shrunk by a fifth (the count it was measured at is saved
/// with the lists); an `nprobe` given by an explicit partition stays.
#[test]
fn the_default_nprobe_is_measured_again_as_the_lists_grow_and_shrink() {
    let (a, b) = iscc_vdb::index::RECALIBRATE;
    let rows = iscc_vdb::index::AUTO_PARTITION_ROWS + 2_000;
    let grown = rows * 13 / 10;
    assert!(grown * a >= rows * b && grown < 2 * rows);
    let data = Dataset::generate(grown, 0, 33);
    let keys: Vec<u64> = (0..grown as u64).collect();
    let index = partitioning_itself();
    index.add_batch(&keys[..rows], &data.codes[..rows]).unwrap();
    index.wait_partition().unwrap();
    let first = index.last_partition().expect("a partition");
    assert!(first.kept && !first.recalibrated, "{first:?}");
    assert_eq!(first.rows, rows);
    // A few rows more: not yet due.
    index
        .add_batch(&keys[rows..rows + 100], &data.codes[rows..rows + 100])
        .unwrap();
    index.wait_partition().unwrap();
    assert_eq!(index.last_partition(), Some(first));
    // A fifth more: measured again, the same lists.
    index
        .add_batch(&keys[rows + 100..], &data.codes[rows + 100..])
        .unwrap();
    index.wait_partition().unwrap();
    let again = index.last_partition().expect("a measurement");
    assert!(again.recalibrated && again.kept, "{again:?}");
    assert_eq!((again.rows, again.lists), (grown, first.lists));
    assert!(
        again.recall >= iscc_vdb::index::TARGET_RECALL || again.nprobe == again.lists,
        "{again:?}"
    );
    assert_eq!(index.lists(), (first.lists, again.nprobe));
    // Saved and loaded: measured at `grown` rows, so a fifth fewer is due.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recal.ivu");
    index.save(&path).unwrap();
    let back = UnitIndex::restore(&path, false).unwrap();
    assert_eq!(back.lists(), (first.lists, again.nprobe));
    let shrunk = grown * a / b;
    for key in shrunk as u64..grown as u64 {
        assert!(back.remove(key).unwrap());
    }
    back.wait_partition().unwrap();
    let after = back
        .last_partition()
        .expect("a measurement after the removes");
    assert!(after.recalibrated, "{after:?}");
    assert_eq!((after.rows, after.lists), (shrunk, first.lists));
    assert_eq!(back.lists(), (first.lists, after.nprobe));
    // A given nprobe stays however the rows change.
    let given = partitioning_itself();
    given.add_batch(&keys[..rows], &data.codes[..rows]).unwrap();
    given.wait_partition().unwrap();
    given.partition(20, 7).unwrap();
    given.add_batch(&keys[rows..], &data.codes[rows..]).unwrap();
    given.wait_partition().unwrap();
    assert_eq!(given.lists(), (20, 7));
    assert!(!given.partition_pending());
}

#[test]
fn a_search_needing_only_near_neighbours_probes_the_near_lists_and_finds_them() {
    let near = iscc_vdb::index::NEAR;
    // Rows enough that near neighbours sit in fewer lists than the full
    // top 10 (at 162,000 rows of this dataset they need as many).
    let rows = 500_000;
    let data = Dataset::generate(rows, 300, 35);
    let keys: Vec<u64> = (0..rows as u64).collect();
    let index = partitioning_itself();
    index.add_batch(&keys, &data.codes).unwrap();
    index.wait_partition().unwrap();
    let report = index.last_partition().expect("a partition");
    let measured = report.near_nprobe.expect("near neighbours to measure");
    let (lists, nprobe) = index.lists();
    assert_eq!(
        (lists, nprobe, measured),
        (report.lists, report.nprobe, index.near_nprobe())
    );
    assert!(measured < nprobe, "{report:?}");
    let within = |d: f32| SearchOptions {
        recall_within: Some(d),
        ..SearchOptions::count(10)
    };
    let run = |idx: &UnitIndex, o: &SearchOptions| -> Vec<Vec<Hit>> {
        data.queries
            .iter()
            .map(|q| idx.search_with(q, o).unwrap())
            .collect()
    };
    // The near lists when the caller needs no more than NEAR, the default
    // beyond it; a given nprobe wins.
    let near_hits = run(&index, &within(near));
    assert_eq!(near_hits, run(&index, &probing(10, measured)));
    assert_eq!(run(&index, &within(near / 2.0)), near_hits);
    assert_eq!(
        run(&index, &within(near + 0.05)),
        run(&index, &SearchOptions::count(10))
    );
    let given = SearchOptions {
        nprobe: Some(nprobe + 1),
        ..within(near)
    };
    assert_eq!(run(&index, &given), run(&index, &probing(10, nprobe + 1)));
    // Of the true top 10 within NEAR, the near probe finds (almost) all:
    // the queries are near duplicates the index never saw.
    let truth = run(&index, &exact(10));
    let (mut wanted, mut found) = (0, 0);
    for (t, g) in truth.iter().zip(&near_hits) {
        wanted += t.iter().filter(|h| h.distance <= near).count();
        found += g
            .iter()
            .filter(|h| h.distance <= near)
            .count()
            .min(t.iter().filter(|h| h.distance <= near).count());
    }
    let recall = found as f64 / wanted.max(1) as f64;
    eprintln!("near nprobe {measured} of {nprobe} ({lists} lists): recall within {near} {recall:.4} of {wanted}");
    assert!(wanted > 300 && recall >= 0.99, "{recall} of {wanted}");
    // Saved and loaded: the same near lists.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("near.ivu");
    index.save(&path).unwrap();
    let back = UnitIndex::restore(&path, false).unwrap();
    assert_eq!(back.near_nprobe(), measured);
    assert_eq!(run(&back, &within(near)), near_hits);
    // A given nprobe is measured for no near search: both probe as many.
    back.partition(20, 7).unwrap();
    assert_eq!(back.near_nprobe(), 7);
    assert_eq!(run(&back, &within(near)), run(&back, &probing(10, 7)));
}

/// A first partition refused by its measurement is tried again once the
/// rows have grown by a fifth, not only once they have doubled: lists pay
/// more as they grow in number, and an index refused at 640k rows used to
/// scan every row until 1.28M. Uniform rows have no neighbourhoods a probe
/// could find sooner than the scan: the attempt reads nearly every list and
/// is refused.
#[test]
fn a_refused_partition_is_tried_again_at_a_fifth_more_rows() {
    let first = iscc_vdb::index::AUTO_PARTITION_ROWS;
    let index = UnitIndex::new(UnitIndexOptions::default()).unwrap();
    let rows = uniform(first * 3 / 2, 31);
    let keys: Vec<u64> = (0..rows.len() as u64).collect();
    // Rows `from..to` added; the rows of the last attempt then.
    let grown = |from: usize, to: usize| {
        index.add_batch(&keys[from..to], &rows[from..to]).unwrap();
        index.wait_partition().unwrap();
        index.last_partition().map(|r| r.rows)
    };
    assert_eq!(grown(0, first), Some(first));
    let report = index
        .last_partition()
        .expect("an attempt at the first rows");
    assert!(!report.kept, "uniform rows were partitioned: {report:?}");
    assert_eq!(index.lists().0, 1);
    // A tenth more: not due yet.
    let tenth = first + first / 10;
    assert_eq!(grown(first, tenth), Some(first));
    // A fifth more (4 to 5): due (twice as many used to be).
    let fifth = first + first / 4;
    assert_eq!(grown(tenth, fifth), Some(fifth));
}

/// A save records when the next attempt is due: an index reopened after a
/// refusal does not train and race lists again on its first write (every
/// reopen did, and a close then cut the attempt short or waited for it),
/// and is still due at a fifth more rows.
#[test]
fn a_reopened_index_remembers_its_refused_partition() {
    let first = iscc_vdb::index::AUTO_PARTITION_ROWS;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refused.ivu");
    let rows = uniform(first * 3 / 2, 37);
    let keys: Vec<u64> = (0..rows.len() as u64).collect();
    let index = UnitIndex::new(UnitIndexOptions::default()).unwrap();
    index.add_batch(&keys[..first], &rows[..first]).unwrap();
    index.wait_partition().unwrap();
    let report = index
        .last_partition()
        .expect("an attempt at the first rows");
    assert!(!report.kept, "uniform rows were partitioned: {report:?}");
    index.save(&path).unwrap();

    let back = UnitIndex::restore(&path, false).unwrap();
    let tenth = first + first / 10;
    back.add_batch(&keys[first..tenth], &rows[first..tenth])
        .unwrap();
    assert!(
        !back.partition_pending(),
        "the reopened index tried again what it had refused"
    );
    let fifth = first + first / 4;
    back.add_batch(&keys[tenth..fifth], &rows[tenth..fifth])
        .unwrap();
    back.wait_partition().unwrap();
    assert_eq!(back.last_partition().map(|r| r.rows), Some(fifth));
}

/// A close finishes the partition under way and saves it: a bulk load
/// closed right after its last add lost the attempt, and its shard then
/// scanned every row on every later open (the engine bench at 1M entries:
/// one unit type unpartitioned, 1,575 q/s where ~3,000 were measured).
#[test]
fn a_close_saves_the_partition_under_way() {
    use iscc_vdb::index::{ShardedIndex, ShardedOptions};
    let n = 2 * iscc_vdb::index::AUTO_PARTITION_ROWS;
    let data = Dataset::generate(n, 10, 8);
    let keys: Vec<u64> = (0..n as u64).collect();
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        // Kept without a race: what is tested is that it is not lost.
        partition: Partition::Always,
        ..ShardedOptions::default()
    };
    let idx: ShardedIndex = ShardedIndex::create(dir.path(), options).unwrap();
    idx.add(&keys, &data.codes).unwrap();
    idx.close().unwrap();
    let back: ShardedIndex = ShardedIndex::open_read_only(dir.path()).unwrap();
    assert_eq!(back.len(), n);
    assert_eq!(back.stats().partitioned_rows, n);
}

/// A settle (what a close, a frozen shard and a merged one do before they
/// save) measures the lists' `nprobe` again once the rows have changed by a
/// twentieth since it was measured, and not before: a bulk load closed at
/// a size its lists were last measured well below kept the older, larger
/// near `nprobe` (the engine bench at 1M entries: measured at 840k rows,
/// 58 of 336 lists against 42 of 371 measured at 928k).
#[test]
fn a_settle_measures_the_nprobe_of_the_rows_it_saves() {
    let first = 2 * iscc_vdb::index::AUTO_PARTITION_ROWS;
    let n = first + first / 10;
    let data = Dataset::generate(n, 10, 8);
    let idx = partitioning_itself();
    let keys: Vec<u64> = (0..n as u64).collect();
    idx.add_batch(&keys[..first], &data.codes[..first]).unwrap();
    idx.wait_partition().unwrap();
    let trained = idx.last_partition().expect("an attempt was made");
    assert_eq!((trained.rows, trained.recalibrated), (first, false));
    // A thirtieth more: no new measurement.
    let a = first + first / 30;
    idx.add_batch(&keys[first..a], &data.codes[first..a])
        .unwrap();
    idx.settle().unwrap();
    assert_eq!(idx.last_partition(), Some(trained));
    // A tenth in all (less than the fifth a write waits for): measured.
    idx.add_batch(&keys[a..], &data.codes[a..]).unwrap();
    idx.wait_partition().unwrap();
    assert_eq!(idx.last_partition(), Some(trained), "a write measured");
    idx.settle().unwrap();
    let settled = idx.last_partition().expect("a measurement");
    assert!(settled.recalibrated, "{settled:?}");
    assert_eq!((settled.rows, settled.lists), (n, trained.lists));
    assert_eq!(idx.lists(), (settled.lists, settled.nprobe));
}
