//! The sharded index: the reference's behaviour list, ported, plus
//! durability and a randomized model check.

mod common;

use common::{brute, lcg, random_body as body};

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use iscc_vdb::index::{
    ExactThreshold, SearchOptions, ShardedError, ShardedIndex, ShardedIndex128, ShardedOptions,
    VectorKind,
};
use iscc_vdb::testing::fault;

/// Small shards with graphs built from the first row (exact_threshold 0),
/// so shard sizes are those of full HNSW shards; no automatic merging, so
/// the shards rotation makes stay (merging: `tests/sharded_merge.rs`).
fn small(shard_size: u64) -> ShardedOptions {
    ShardedOptions {
        shard_size,
        exact_threshold: ExactThreshold::Rows(0),
        merge_factor: 0,
        ..ShardedOptions::default()
    }
}

fn exact(count: usize) -> SearchOptions {
    SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(count)
    }
}

fn found(idx: &ShardedIndex, q: &[u8], k: usize) -> Vec<(u64, f32)> {
    idx.search(q, &exact(k))
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.distance))
        .collect()
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn rotation_by_size_and_a_large_batch_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let size = 64 << 10;
    let idx = ShardedIndex::create(dir.path(), small(size)).unwrap();
    let mut seed = 1;
    let keys: Vec<u64> = (0..3000).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    // One batch far larger than a shard.
    assert_eq!(idx.add(&keys, &bodies).unwrap(), 3000);
    let shards = idx.shard_count();
    assert!(
        shards >= 6,
        "3000 rows in 64 KiB shards gave {shards} shards"
    );
    assert_eq!(idx.len(), 3000);
    idx.save().unwrap();
    // No shard file grows far past shard_size.
    for name in files(dir.path()) {
        if name.starts_with("shard_") && name.ends_with(".ivu") {
            let main = std::fs::metadata(dir.path().join(&name)).unwrap().len();
            let graph = std::fs::metadata(dir.path().join(format!("{name}.hnsw")))
                .unwrap()
                .len();
            assert!(
                main + graph <= size + size / 4,
                "{name}: {} bytes for shard_size {size}",
                main + graph
            );
        }
    }
    // Adding one at a time rotates too.
    let idx2 = ShardedIndex::create(dir.path().join("b"), small(size)).unwrap();
    for (k, b) in keys.iter().zip(&bodies).take(800) {
        idx2.add(&[*k], &[b]).unwrap();
    }
    assert!(idx2.shard_count() >= 2);
    assert_eq!(idx2.len(), 800);
    for (k, b) in keys.iter().zip(&bodies).take(800) {
        assert_eq!(idx2.get(*k).unwrap().as_ref(), Some(b));
    }
}

#[test]
fn search_merges_active_and_sealed_shards_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(64 << 10)).unwrap();
    let mut seed = 7;
    let mut model = BTreeMap::new();
    for chunk in 0..10u64 {
        let keys: Vec<u64> = (chunk * 200..chunk * 200 + 200).collect();
        let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
        idx.add(&keys, &bodies).unwrap();
        model.extend(keys.into_iter().zip(bodies));
    }
    assert!(idx.shard_count() > 3);
    for _ in 0..30 {
        let q = body(&mut seed);
        assert_eq!(found(&idx, &q, 10), brute(&model, &q, 10));
    }
    // Batch search agrees with single searches.
    let queries: Vec<Vec<u8>> = (0..20).map(|_| body(&mut seed)).collect();
    let batch = idx.search_batch(&queries, &exact(5)).unwrap();
    for (q, b) in queries.iter().zip(batch) {
        let b: Vec<(u64, f32)> = b.into_iter().map(|m| (m.key, m.distance)).collect();
        assert_eq!(b, brute(&model, q, 5));
    }
    // A stored row finds itself first through the graphs too.
    let approx = SearchOptions {
        exact: Some(false),
        ..SearchOptions::count(5)
    };
    let (k, b) = model.iter().nth(777).unwrap();
    let hits = idx.search(b, &approx).unwrap();
    assert_eq!(hits[0].distance, 0.0);
    assert!(hits.iter().any(|m| m.key == *k));
}

#[test]
fn background_rotation_keeps_every_row_visible() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        background_rotation: true,
        max_pending_rotations: 1,
        ..small(48 << 10)
    };
    let idx = ShardedIndex::create(dir.path(), options).unwrap();
    let mut seed = 3;
    let mut model = BTreeMap::new();
    for round in 0..12u64 {
        let keys: Vec<u64> = (round * 150..round * 150 + 150).collect();
        let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
        idx.add(&keys, &bodies).unwrap();
        model.extend(keys.into_iter().zip(bodies));
        // While rotations may be in flight: nothing is missing.
        assert_eq!(idx.len(), model.len());
        for (k, b) in model.iter().step_by(37) {
            assert!(idx.contains(*k).unwrap());
            assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
        }
        let (k, b) = model.iter().next_back().unwrap();
        assert_eq!(idx.search(b, &exact(1)).unwrap()[0].key, *k);
        assert!(idx.pending_rotations() <= 1);
    }
    idx.drain_rotations().unwrap();
    assert_eq!(idx.pending_rotations(), 0);
    assert!(idx.shard_count() > 4);
    assert_eq!(idx.len(), model.len());
    idx.close().unwrap();
    assert!(matches!(idx.contains(0), Err(ShardedError::Closed)));
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.len(), model.len());
    for (k, b) in &model {
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
    }
}

/// Readers in other threads never see a gap while shards rotate.
#[test]
fn concurrent_readers_see_no_gap_during_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        background_rotation: true,
        ..small(32 << 10)
    };
    let idx = ShardedIndex::create(dir.path(), options).unwrap();
    let mut seed = 5;
    let first: Vec<Vec<u8>> = (0..300).map(|_| body(&mut seed)).collect();
    let keys: Vec<u64> = (0..300).collect();
    idx.add(&keys, &first).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut checks = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        for k in (0..300u64).step_by(29) {
                            assert!(idx.contains(k).unwrap(), "key {k} vanished");
                            assert!(idx.len() >= 300);
                            let hit = idx.search(&first[k as usize], &exact(1)).unwrap();
                            assert_eq!(hit[0].distance, 0.0);
                        }
                        checks += 1;
                    }
                    checks
                })
            })
            .collect();
        let mut seed = 99;
        for round in 0..8u64 {
            let keys: Vec<u64> = (1000 + round * 200..1000 + round * 200 + 200).collect();
            let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
            idx.add(&keys, &bodies).unwrap();
        }
        idx.drain_rotations().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    });
    assert_eq!(idx.len(), 300 + 1600);
}

#[test]
fn get_contains_count_across_shards_with_bloom() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 11;
    let keys: Vec<u64> = (0..1500).map(|i| i * 2).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    idx.add(&keys, &bodies).unwrap();
    assert!(idx.shard_count() > 3);
    for (k, b) in keys.iter().zip(&bodies) {
        assert!(idx.contains(*k).unwrap());
        assert_eq!(idx.count(*k).unwrap(), 1);
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
        assert!(!idx.contains(k + 1).unwrap());
        assert_eq!(idx.count(k + 1).unwrap(), 0);
        assert_eq!(idx.get(k + 1).unwrap(), None);
    }
    let stats = idx.stats();
    assert_eq!(stats.total_vectors, 1500);
    assert!(stats.bloom_filter.count >= 1400);
    let got = idx.get_many(&[0, 1, 2]).unwrap();
    assert_eq!(
        got,
        vec![Some(bodies[0].clone()), None, Some(bodies[1].clone())]
    );
}

#[test]
fn tombstones_hide_keys_everywhere_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 13;
    let keys: Vec<u64> = (0..1000).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    idx.add(&keys, &bodies).unwrap();
    // Keys in sealed shards (early) and in the active shard (last).
    let gone = [0u64, 1, 50, 400, 999];
    assert_eq!(idx.remove(&gone).unwrap(), 5);
    assert_eq!(
        idx.remove(&gone).unwrap(),
        0,
        "a second remove finds nothing"
    );
    let check = |idx: &ShardedIndex| {
        assert_eq!(idx.len(), 995);
        for &k in &gone {
            assert!(!idx.contains(k).unwrap());
            assert_eq!(idx.count(k).unwrap(), 0);
            assert_eq!(idx.get(k).unwrap(), None);
            // Its own body no longer finds it.
            let hits = idx.search(&bodies[k as usize], &exact(20)).unwrap();
            assert!(hits.iter().all(|m| m.key != k));
            assert_eq!(hits.len(), 20, "hidden rows take no result slots");
        }
        let listed: Vec<u64> = idx.keys().unwrap().collect();
        assert_eq!(listed.len(), 995);
        assert!(gone.iter().all(|k| !listed.contains(k)));
        assert_eq!(idx.stats().total_vectors, 995);
    };
    check(&idx);
    idx.close().unwrap();
    drop(idx);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    check(&idx);
    assert!(idx.stats().tombstones >= 4);
    // upsert + remove cannot bring an old copy back.
    let fresh = body(&mut seed);
    idx.upsert(&[0], &[&fresh]).unwrap();
    assert_eq!(idx.get(0).unwrap(), Some(fresh.clone()));
    assert_eq!(idx.remove(&[0]).unwrap(), 1);
    assert_eq!(idx.get(0).unwrap(), None);
    // And again after the re-added copy was sealed by rotations.
    idx.upsert(&[1], &[&fresh]).unwrap();
    let more: Vec<u64> = (5000..6000).collect();
    let more_bodies: Vec<Vec<u8>> = more.iter().map(|_| body(&mut seed)).collect();
    idx.add(&more, &more_bodies).unwrap();
    assert_eq!(idx.remove(&[1]).unwrap(), 1);
    idx.save().unwrap();
    drop(idx);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    for k in [0u64, 1] {
        assert_eq!(idx.get(k).unwrap(), None, "key {k} came back");
        assert!(idx
            .search(&bodies[k as usize], &exact(5))
            .unwrap()
            .iter()
            .all(|m| m.key != k));
        assert!(idx
            .search(&fresh, &exact(5))
            .unwrap()
            .iter()
            .all(|m| m.key != k));
    }
    assert_eq!(idx.len(), 995 + 1000);
}

#[test]
fn upsert_across_rotations_hides_the_stale_copy() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 17;
    let keys: Vec<u64> = (0..800).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    idx.add(&keys, &bodies).unwrap();
    // Key 3 sits in a sealed shard; replace it with something far away.
    let replacement: Vec<u8> = bodies[3].iter().map(|b| !b).collect();
    assert_eq!(idx.upsert(&[3], &[&replacement]).unwrap(), 1);
    assert_eq!(idx.len(), 800);
    // A search for the old body: the stale copy would rank first.
    let hits = idx.search(&bodies[3], &exact(10)).unwrap();
    assert!(hits.iter().all(|m| m.key != 3), "stale copy returned");
    let hits = idx
        .search(
            &bodies[3],
            &SearchOptions {
                exact: Some(false),
                ..SearchOptions::count(10)
            },
        )
        .unwrap();
    assert!(
        hits.iter().all(|m| m.key != 3),
        "stale copy returned by HNSW"
    );
    assert_eq!(idx.search(&replacement, &exact(1)).unwrap()[0].key, 3);
    assert_eq!(idx.get(3).unwrap(), Some(replacement.clone()));
    // An identical upsert is a no-op.
    assert_eq!(idx.upsert(&[3], &[&replacement]).unwrap(), 0);
    // Last write wins inside a batch.
    let a = body(&mut seed);
    let b = body(&mut seed);
    idx.upsert(&[5, 5], &[&a, &b]).unwrap();
    assert_eq!(idx.get(5).unwrap(), Some(b));
    assert_eq!(idx.len(), 800);
}

#[test]
fn add_once_is_first_write_wins_across_shards() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 19;
    let keys: Vec<u64> = (0..600).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    assert_eq!(idx.add_once(&keys, &bodies).unwrap(), 600);
    let other: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    // Every key exists somewhere (mostly sealed): nothing is written.
    assert_eq!(idx.add_once(&keys, &other).unwrap(), 0);
    assert_eq!(idx.add(&keys[..10], &other[..10]).unwrap(), 0);
    for (k, b) in keys.iter().zip(&bodies) {
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
    }
    // First occurrence wins inside a batch.
    let x = body(&mut seed);
    let y = body(&mut seed);
    assert_eq!(idx.add_once(&[9000, 9000], &[&x, &y]).unwrap(), 1);
    assert_eq!(idx.get(9000).unwrap(), Some(x));
    assert_eq!(idx.len(), 601);
}

#[test]
fn compact_removes_dead_rows_and_keeps_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 23;
    let keys: Vec<u64> = (0..1200).collect();
    let mut model: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    idx.add(&keys, &bodies).unwrap();
    model.extend(keys.iter().copied().zip(bodies.clone()));
    // Remove every third key; replace every fifth.
    let removed: Vec<u64> = keys.iter().copied().filter(|k| k % 3 == 0).collect();
    idx.remove(&removed).unwrap();
    for k in &removed {
        model.remove(k);
    }
    let upserted: Vec<u64> = keys.iter().copied().filter(|k| k % 5 == 1).collect();
    let new_bodies: Vec<Vec<u8>> = upserted.iter().map(|_| body(&mut seed)).collect();
    idx.upsert(&upserted, &new_bodies).unwrap();
    model.extend(upserted.iter().copied().zip(new_bodies));
    let dead = idx.stats().dead_rows;
    assert!(dead > 300, "{dead} dead rows");
    let shards_before = idx.shard_count();
    assert_eq!(idx.compact().unwrap() as u64, dead);
    assert_eq!(idx.stats().dead_rows, 0);
    assert_eq!(idx.stats().tombstones, 0);
    assert_eq!(idx.len(), model.len());
    assert!(idx.shard_count() <= shards_before);
    let check = |idx: &ShardedIndex| {
        let mut listed: Vec<(u64, Vec<u8>)> = idx.iter().unwrap().collect();
        listed.sort();
        let want: Vec<(u64, Vec<u8>)> = model.iter().map(|(k, b)| (*k, b.clone())).collect();
        assert_eq!(listed, want);
        let mut s = 29;
        for _ in 0..10 {
            let q = body(&mut s);
            assert_eq!(found(idx, &q, 10), brute(&model, &q, 10));
        }
    };
    check(&idx);
    // Nothing left on disk but the current files.
    assert!(!files(dir.path())
        .iter()
        .any(|f| f.starts_with("tombstones")));
    drop(idx);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    check(&idx);
    assert_eq!(idx.compact().unwrap(), 0);
}

#[test]
fn read_only_refuses_writes_and_reads_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 31;
    let keys: Vec<u64> = (0..700).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    {
        let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
        idx.add(&keys, &bodies).unwrap();
        idx.remove(&[3]).unwrap();
        idx.close().unwrap();
    }
    let ro = ShardedIndex::<u64>::open_read_only(dir.path()).unwrap();
    assert!(ro.read_only());
    assert_eq!(ro.len(), 699);
    assert_eq!(ro.dirty(), 0);
    assert_eq!(ro.get(10).unwrap().as_ref(), Some(&bodies[10]));
    assert_eq!(ro.get(3).unwrap(), None);
    assert_eq!(ro.search(&bodies[699], &exact(1)).unwrap()[0].key, 699);
    assert!(matches!(
        ro.add(&[5000], &[&bodies[0]]),
        Err(ShardedError::ReadOnly)
    ));
    assert!(matches!(
        ro.upsert(&[1], &[&bodies[0]]),
        Err(ShardedError::ReadOnly)
    ));
    assert!(matches!(ro.remove(&[1]), Err(ShardedError::ReadOnly)));
    assert!(matches!(ro.save(), Err(ShardedError::ReadOnly)));
    assert!(matches!(ro.compact(), Err(ShardedError::ReadOnly)));
    // A writer may hold the directory meanwhile; a second writer may not.
    let w = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert!(matches!(
        ShardedIndex::<u64>::open(dir.path()),
        Err(ShardedError::Locked { .. })
    ));
    drop(w);
    ShardedIndex::<u64>::open(dir.path()).unwrap();
}

#[test]
fn a_failed_shard_write_leaves_the_previous_state_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 37;
    let keys: Vec<u64> = (0..300).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    let idx = ShardedIndex::create(dir.path(), small(1 << 20)).unwrap();
    idx.add(&keys[..200], &bodies[..200]).unwrap();
    idx.save().unwrap();
    let before = files(dir.path());
    idx.add(&keys[200..], &bodies[200..]).unwrap();
    // The next write of a shard file dies half-way.
    fault::fail_next_write(&dir.path().join("shard_000000").to_string_lossy());
    let err = idx.save().unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    // In memory nothing is lost; a retry succeeds.
    assert_eq!(idx.len(), 300);
    // A crash now: reopen sees the previous save.
    let leftovers: Vec<String> = files(dir.path())
        .into_iter()
        .filter(|f| !before.contains(f))
        .collect();
    assert!(
        leftovers.iter().any(|f| f.ends_with(".tmp")),
        "{leftovers:?}"
    );
    std::mem::forget(idx); // like a crash: no drop, lock released below
    let copy = tempfile::tempdir().unwrap();
    for f in files(dir.path()) {
        std::fs::copy(dir.path().join(&f), copy.path().join(&f)).unwrap();
    }
    let idx = ShardedIndex::<u64>::open(copy.path()).unwrap();
    assert_eq!(idx.len(), 200);
    for (k, b) in keys.iter().zip(&bodies).take(200) {
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
    }
    // Stale temporaries were removed on open.
    assert!(files(copy.path()).iter().all(|f| !f.ends_with(".tmp")));
    assert_eq!(
        files(copy.path())
            .into_iter()
            .filter(|f| f != "LOCK")
            .collect::<Vec<_>>(),
        before
            .into_iter()
            .filter(|f| f != "LOCK")
            .collect::<Vec<_>>()
    );
}

/// The bloom filter file is replaced like every other index file: a save
/// whose bloom write fails half-way leaves the old filter and the old
/// manifest (a reopen sees the previous save whole), and a retry commits.
#[test]
fn a_failed_bloom_write_leaves_the_previous_state_intact() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 43;
    let keys: Vec<u64> = (0..300).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    let idx = ShardedIndex::create(dir.path(), small(1 << 20)).unwrap();
    idx.add(&keys[..200], &bodies[..200]).unwrap();
    idx.save().unwrap();
    let bloom = dir.path().join("bloom.isbf");
    let old_bloom = std::fs::read(&bloom).unwrap();
    let old_manifest = std::fs::read(dir.path().join("manifest.json")).unwrap();
    idx.add(&keys[200..], &bodies[200..]).unwrap();
    fault::fail_next_write(&bloom.to_string_lossy());
    let err = idx.save().unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(std::fs::read(&bloom).unwrap(), old_bloom);
    assert!(
        dir.path().join("bloom.isbf.tmp").exists(),
        "left as a crash would"
    );
    assert_eq!(
        std::fs::read(dir.path().join("manifest.json")).unwrap(),
        old_manifest
    );
    // A crash now: a reopen (of a copy) has the previous save, whole.
    let copy = tempfile::tempdir().unwrap();
    for f in files(dir.path()).into_iter().filter(|f| f != "LOCK") {
        std::fs::copy(dir.path().join(&f), copy.path().join(&f)).unwrap();
    }
    let old = ShardedIndex::<u64>::open_read_only(copy.path()).unwrap();
    assert_eq!(old.len(), 200);
    assert!(old.contains(199).unwrap() && !old.contains(200).unwrap());
    drop(old);
    // The retry commits everything.
    idx.save().unwrap();
    drop(idx);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.len(), 300);
    for (k, b) in keys.iter().zip(&bodies) {
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
    }
}

#[test]
fn a_failed_rotation_keeps_rows_in_memory_and_save_retries() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 41;
    let keys: Vec<u64> = (0..120).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    idx.add(&keys, &bodies).unwrap();
    fault::fail_next_write(&dir.path().join("shard_000000").to_string_lossy());
    let more: Vec<u64> = (1000..1400).collect();
    let more_bodies: Vec<Vec<u8>> = more.iter().map(|_| body(&mut seed)).collect();
    let err = idx.add(&more, &more_bodies).unwrap_err();
    assert!(matches!(err, ShardedError::Rotation { id: 0, .. }), "{err}");
    // Every row that went in is still there.
    for (k, b) in keys.iter().zip(&bodies) {
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
    }
    let n = idx.len();
    idx.save().unwrap();
    drop(idx);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.len(), n);
}

#[test]
fn stale_temporaries_are_cleaned_and_a_corrupt_bloom_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 43;
    let keys: Vec<u64> = (0..500).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    {
        let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
        idx.add(&keys, &bodies).unwrap();
        idx.close().unwrap();
    }
    std::fs::write(dir.path().join("shard_000001.000099.ivu.tmp"), b"half").unwrap();
    std::fs::write(dir.path().join("shard_000042.000099.ivu"), b"orphan").unwrap();
    std::fs::write(dir.path().join("manifest.json.tmp"), b"{").unwrap();
    // Damage the bloom filter.
    let bloom = dir.path().join("bloom.isbf");
    let mut bytes = std::fs::read(&bloom).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    std::fs::write(&bloom, &bytes).unwrap();
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    let names = files(dir.path());
    assert!(names.iter().all(|f| !f.ends_with(".tmp")), "{names:?}");
    assert!(!names.contains(&"shard_000042.000099.ivu".to_string()));
    for k in &keys {
        assert!(idx.contains(*k).unwrap(), "false negative for {k}");
    }
    assert!(iscc_vdb::index::bloom::ScalableBloom::load(&bloom).is_ok());
    // A missing filter is rebuilt too; a read-only open rebuilds in memory.
    drop(idx);
    std::fs::remove_file(&bloom).unwrap();
    let ro = ShardedIndex::<u64>::open_read_only(dir.path()).unwrap();
    assert!(keys.iter().all(|k| ro.contains(*k).unwrap()));
    assert!(!bloom.exists());
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert!(keys.iter().all(|k| idx.contains(*k).unwrap()));
    assert!(bloom.exists());
}

#[test]
fn a_damaged_shard_is_reported_with_its_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 47;
    let keys: Vec<u64> = (0..400).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    {
        let idx = ShardedIndex::create(dir.path(), small(32 << 10)).unwrap();
        idx.add(&keys, &bodies).unwrap();
        idx.close().unwrap();
    }
    let victim = files(dir.path())
        .into_iter()
        .find(|f| f.starts_with("shard_000000") && f.ends_with(".ivu"))
        .unwrap();
    let path = dir.path().join(&victim);
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 8)
        .unwrap();
    let err = ShardedIndex::<u64>::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains(&victim), "{err}");
    let err = ShardedIndex::<u64>::open(dir.path().join("nothing")).unwrap_err();
    assert!(matches!(err, ShardedError::NotFound { .. }), "{err}");
}

#[test]
fn keys_of_128_bits_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex128::create(dir.path(), small(32 << 10)).unwrap();
    let mut seed = 53;
    let keys: Vec<[u8; 16]> = (0..700)
        .map(|_| {
            let mut k = [0u8; 16];
            k[..8].copy_from_slice(&lcg(&mut seed).to_le_bytes());
            k[8..].copy_from_slice(&lcg(&mut seed).to_le_bytes());
            k
        })
        .collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    assert_eq!(idx.add(&keys, &bodies).unwrap(), 700);
    assert!(idx.shard_count() > 2);
    idx.remove(&keys[..5]).unwrap();
    let replacement = body(&mut seed);
    idx.upsert(&keys[10..11], &[&replacement]).unwrap();
    let check = |idx: &ShardedIndex128| {
        assert_eq!(idx.len(), 695);
        for (i, (k, b)) in keys.iter().zip(&bodies).enumerate() {
            let want = match i {
                0..=4 => None,
                10 => Some(replacement.clone()),
                _ => Some(b.clone()),
            };
            assert_eq!(idx.get(*k).unwrap(), want, "key #{i}");
        }
        let hit = idx.search(&bodies[100], &exact(1)).unwrap();
        assert_eq!(hit[0].key, keys[100]);
        let mut listed: Vec<[u8; 16]> = idx.keys().unwrap().collect();
        listed.sort();
        let mut want: Vec<[u8; 16]> = keys[5..].to_vec();
        want.sort();
        assert_eq!(listed, want);
    };
    check(&idx);
    idx.close().unwrap();
    drop(idx);
    let idx = ShardedIndex128::open(dir.path()).unwrap();
    check(&idx);
    idx.compact().unwrap();
    check(&idx);
    // Opening with the other key type is refused.
    drop(idx);
    assert!(matches!(
        ShardedIndex::<u64>::open(dir.path()),
        Err(ShardedError::KeyKind { .. })
    ));
}

#[test]
fn fixed_length_hamming_vectors() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        vectors: VectorKind::Hamming { bits: 72 },
        ..small(32 << 10)
    };
    let idx = ShardedIndex::create(dir.path(), options).unwrap();
    let mut seed = 59;
    let vecs: Vec<Vec<u8>> = (0..600)
        .map(|_| (0..9).map(|_| lcg(&mut seed) as u8).collect())
        .collect();
    let keys: Vec<u64> = (0..600).collect();
    idx.add(&keys, &vecs).unwrap();
    let q = &vecs[17];
    let hits = idx.search(q, &exact(600)).unwrap();
    assert_eq!(hits[0].key, 17);
    assert_eq!(hits[0].distance, 0.0);
    for h in &hits {
        let want: u32 = q
            .iter()
            .zip(&vecs[h.key as usize])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(h.distance, want as f32, "key {}", h.key);
    }
    assert!(hits.windows(2).all(|w| w[0].distance <= w[1].distance));
    let capped = idx
        .search(
            q,
            &SearchOptions {
                max_distance: Some(30.0),
                ..exact(600)
            },
        )
        .unwrap();
    assert!(capped.iter().all(|h| h.distance <= 30.0));
    assert_eq!(idx.get(17).unwrap().as_ref(), Some(&vecs[17]));
    // Wrong lengths are refused, for rows and for queries.
    let err = idx.add(&[9999], &[vec![0u8; 8]]).unwrap_err();
    assert!(err.to_string().contains("72-bit"), "{err}");
    assert!(idx.search(&[0u8; 16], &exact(1)).is_err());
    drop(idx);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.options().vectors, VectorKind::Hamming { bits: 72 });
    assert_eq!(idx.stats().metric, "hamming");
}

#[test]
fn bad_input_gets_clear_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(1 << 20)).unwrap();
    let good = vec![1u8; 8];
    // Any whole number of bytes up to max_dim is a vector (a 7-byte one
    // below); empty and longer ones are errors, never truncated.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![], "empty"),
        (vec![1u8; 33], "264 bits"),
        (vec![1u8; 40], "320 bits"),
    ];
    for (bad, word) in cases {
        let err = idx.add(&[1, 2], &[good.clone(), bad]).unwrap_err();
        assert!(err.to_string().contains("key 2"), "{err}");
        assert!(err.to_string().contains(word), "{err}");
        assert_eq!(idx.len(), 0, "nothing half-written");
    }
    assert!(matches!(
        idx.add(&[1, 2], std::slice::from_ref(&good)),
        Err(ShardedError::BatchMismatch { .. })
    ));
    assert!(idx.search(&[], &exact(1)).is_err());
    assert_eq!(idx.add(&[3], &[vec![1u8; 7]]).unwrap(), 1);
    let hits = idx.search(&[1u8; 9], &exact(1)).unwrap();
    assert_eq!((hits[0].key, hits[0].distance), (3, 0.0));
    assert_eq!(idx.remove(&[3]).unwrap(), 1);
    let bad = ShardedOptions {
        shard_size: 0,
        ..ShardedOptions::default()
    };
    let err = ShardedIndex::<u64>::create(dir.path().join("x"), bad).unwrap_err();
    assert!(
        matches!(err, ShardedError::Option(_)) && err.to_string().contains("at least 1"),
        "{err}"
    );
    assert!(matches!(
        ShardedIndex::<u64>::create(dir.path(), ShardedOptions::default()),
        Err(ShardedError::Locked { .. }) | Err(ShardedError::AlreadyExists { .. })
    ));
    idx.close().unwrap();
    assert!(matches!(idx.add(&[1], &[&good]), Err(ShardedError::Closed)));
    assert!(matches!(
        idx.search(&good, &exact(1)),
        Err(ShardedError::Closed)
    ));
}

/// Shards far smaller than a unit index file (iscc-usearch's tests use
/// 500 bytes): every shard still takes rows, and every row stays found.
#[test]
fn tiny_shards_rotate_and_keep_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        shard_size: 500,
        vectors: VectorKind::Nphd { max_dim: 64 },
        ..ShardedOptions::default()
    };
    let idx = ShardedIndex::<u64>::create(dir.path().join("t"), options).unwrap();
    let mut seed = 9;
    let rows: Vec<Vec<u8>> = (0..100)
        .map(|_| common::lcg(&mut seed).to_le_bytes().to_vec())
        .collect();
    for (k, row) in rows.iter().enumerate() {
        idx.add(&[k as u64], &[row]).unwrap();
    }
    let shards = idx.stats().view_shards;
    assert!(shards >= 2, "{shards} shards");
    for (k, row) in rows.iter().enumerate() {
        let hits = idx.search(row, &exact(1)).unwrap();
        assert_eq!((hits[0].key, hits[0].distance), (k as u64, 0.0), "row {k}");
    }
    idx.close().unwrap();
    let reopened = ShardedIndex::<u64>::open(dir.path().join("t")).unwrap();
    assert_eq!(reopened.len(), 100);
}

#[test]
fn parameters_live_in_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        connectivity: 12,
        expansion_add: 40,
        expansion_search: 33,
        shard_size: 100_000,
        exact_threshold: ExactThreshold::Rows(5),
        vectors: VectorKind::Nphd { max_dim: 128 },
        background_rotation: true,
        max_pending_rotations: 3,
        bloom_error_rate: 0.02,
        merge_factor: 3,
        max_merged_size: 1 << 30,
        max_pending_merges: 1,
        partition: iscc_vdb::index::Partition::Off,
    };
    {
        let idx = ShardedIndex::<u64>::create(dir.path(), options).unwrap();
        idx.add(&[1], &[[7u8; 16]]).unwrap();
        assert!(idx.add(&[2], &[[7u8; 24]]).is_err(), "over max_dim");
        idx.close().unwrap();
    }
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.options(), options);
    let s = idx.stats();
    assert_eq!(
        (s.connectivity, s.expansion_search, s.dimensions),
        (12, 33, 128)
    );
    assert_eq!(idx.get(1).unwrap(), Some(vec![7u8; 16]));
}

/// 10,000 random operations against a plain in-memory model, with
/// rotations, reopen, compaction and background writes along the way.
#[test]
fn random_operations_match_a_model() {
    let dir = tempfile::tempdir().unwrap();
    // Default exact_threshold: shards without graphs (deferred), rotating
    // on the flat store's size.
    let options = ShardedOptions {
        background_rotation: true,
        shard_size: 8 << 10,
        ..ShardedOptions::default()
    };
    let mut idx = ShardedIndex::<u64>::create(dir.path(), options).unwrap();
    let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut seed = 61;
    let mut merges = 0;
    for step in 0..10_000u32 {
        let key = lcg(&mut seed) % 1500;
        match lcg(&mut seed) % 100 {
            0..=34 => {
                let b = body(&mut seed);
                let added = idx.add(&[key], &[&b]).unwrap();
                assert_eq!(added == 1, !model.contains_key(&key), "add {key} at {step}");
                model.entry(key).or_insert(b);
            }
            35..=54 => {
                let b = body(&mut seed);
                idx.upsert(&[key], &[&b]).unwrap();
                model.insert(key, b);
            }
            55..=74 => {
                let n = idx.remove(&[key]).unwrap();
                assert_eq!(
                    n == 1,
                    model.remove(&key).is_some(),
                    "remove {key} at {step}"
                );
            }
            75..=94 => {
                assert_eq!(
                    idx.get(key).unwrap(),
                    model.get(&key).cloned(),
                    "get {key} at {step}"
                );
                assert_eq!(idx.contains(key).unwrap(), model.contains_key(&key));
            }
            95..=97 => {
                let q = body(&mut seed);
                let sorted: BTreeMap<u64, Vec<u8>> =
                    model.iter().map(|(k, v)| (*k, v.clone())).collect();
                assert_eq!(
                    found(&idx, &q, 7),
                    brute(&sorted, &q, 7),
                    "search at {step}"
                );
            }
            98 => {
                merges += idx.merges_done();
                idx.close().unwrap();
                drop(idx);
                idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
            }
            _ => {
                idx.compact().unwrap();
            }
        }
        if step % 500 == 0 {
            assert_eq!(idx.len(), model.len(), "len at {step}");
        }
    }
    // A last run of adds without a reopen: its rotations leave merges due,
    // which `drain_merges` runs whatever the machine's load did to the
    // background merges above (a close stops a running merge, and on a
    // loaded machine the reopens can interrupt every one: seen once in CI).
    for key in 2_000..6_000u64 {
        let b = body(&mut seed);
        idx.add(&[key], &[&b]).unwrap();
        model.insert(key, b);
    }
    idx.drain_merges().unwrap();
    merges += idx.merges_done();
    assert_eq!(idx.len(), model.len());
    let mut listed: Vec<(u64, Vec<u8>)> = idx.iter().unwrap().collect();
    listed.sort();
    let mut want: Vec<(u64, Vec<u8>)> = model.into_iter().collect();
    want.sort();
    assert_eq!(listed, want);
    // Background merges ran along the way and kept the shard count down.
    assert!(merges > 0, "no merge ran");
    assert!(idx.shard_count() < 12, "{} shards", idx.shard_count());
}

/// Concurrent single searches (more threads than cores) are coalesced into
/// batches, and each caller gets exactly what it gets alone: same keys,
/// distances, order and cost counters, for exact scans and HNSW graphs, with
/// tombstones, mixed query lengths and several option sets at once.
#[test]
fn coalesced_searches_return_exactly_what_each_gets_alone() {
    use iscc_vdb::index::SearchCounters;
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        exact_threshold: ExactThreshold::Rows(3_000),
        ..small(64 << 10)
    };
    let idx = ShardedIndex::create(dir.path(), options).unwrap();
    let mut seed = 17;
    let n = 12_000u64;
    let keys: Vec<u64> = (0..n).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    for (k, b) in keys.chunks(2_000).zip(bodies.chunks(2_000)) {
        idx.add(k, b).unwrap();
    }
    idx.remove(&(0..n).step_by(7).collect::<Vec<_>>()).unwrap();
    assert!(idx.stats().view_shards >= 1);
    let queries: Vec<Vec<u8>> = (0..48)
        .map(|i| {
            let mut q = bodies[(i * 211) % n as usize].clone();
            q[0] ^= 0x11;
            // Mixed lengths: 64 to 256 bits.
            q.truncate(8 * (1 + i % 4).min(q.len() / 8));
            q
        })
        .collect();
    let option_sets = [
        exact(10),
        SearchOptions::count(5),
        SearchOptions {
            max_distance: Some(0.3),
            ..exact(25)
        },
    ];
    let alone = |q: &[u8], o: &SearchOptions| {
        let c = SearchCounters::default();
        let found: Vec<(u64, f32)> = idx
            .search_counted(q, o, &c)
            .unwrap()
            .into_iter()
            .map(|m| (m.key, m.distance))
            .collect();
        (found, c.visited(), c.computed())
    };
    idx.set_coalescing(false);
    let want: Vec<Vec<_>> = option_sets
        .iter()
        .map(|o| queries.iter().map(|q| alone(q, o)).collect())
        .collect();
    assert!(want[0].iter().all(|(f, _, _)| f.len() == 10));
    idx.set_coalescing(true);
    std::thread::scope(|s| {
        for t in 0..8usize {
            let (queries, want, option_sets, alone) = (&queries, &want, &option_sets, &alone);
            s.spawn(move || {
                for round in 0..6 {
                    for (i, q) in queries.iter().enumerate() {
                        let o = (t + i + round) % option_sets.len();
                        assert_eq!(alone(q, &option_sets[o]), want[o][i], "query {i} set {o}");
                    }
                }
            });
        }
    });
    let stats = idx.coalesce_stats();
    assert!(
        stats.batches > 0 && stats.requests >= 2 * stats.batches,
        "8 threads on {} cores never shared a batch: {stats:?}",
        rayon::current_num_threads()
    );
}

#[test]
fn reset_removes_every_key_durably_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 53;
    let keys: Vec<u64> = (0..400).collect();
    let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
    let idx = ShardedIndex::create(dir.path(), small(16 << 10)).unwrap();
    idx.add(&keys, &bodies).unwrap();
    assert_eq!(idx.remove(&keys[..10]).unwrap(), 10);
    // An upsert replacing a live key counts a removal and an add.
    let dirty = idx.dirty();
    idx.upsert(&[20], &[body(&mut seed)]).unwrap();
    assert_eq!(idx.dirty(), dirty + 2);
    idx.save().unwrap();
    assert!(idx.shard_count() >= 3, "{} shards", idx.shard_count());

    // A reset whose commit fails changes nothing on disk: a crash then
    // reopens the old index, every key there.
    fault::fail_next_write(&dir.path().join("manifest").to_string_lossy());
    assert!(idx.reset().unwrap_err().to_string().contains("injected"));
    let copy = tempfile::tempdir().unwrap();
    for f in files(dir.path()).into_iter().filter(|f| f != "LOCK") {
        std::fs::copy(dir.path().join(&f), copy.path().join(&f)).unwrap();
    }
    let old = ShardedIndex::<u64>::open_read_only(copy.path()).unwrap();
    assert_eq!(old.len(), 390);
    assert_eq!(old.get(100).unwrap().as_ref(), Some(&bodies[100]));
    drop(old);

    // The retry commits: nothing left, in memory or on disk.
    assert_eq!(
        idx.reset().unwrap(),
        0,
        "the failed reset already emptied memory"
    );
    assert_eq!(idx.len(), 0);
    assert_eq!(idx.dirty(), 0);
    for k in [0u64, 20, 100, 399] {
        assert!(!idx.contains(k).unwrap());
        assert_eq!(idx.get(k).unwrap(), None);
    }
    assert!(idx.search(&bodies[100], &exact(10)).unwrap().is_empty());
    let left = files(dir.path());
    assert!(
        left.iter()
            .all(|f| !f.starts_with("shard_") && !f.starts_with("tombstones")),
        "{left:?}"
    );

    // New keys after a reset; a reopen sees only them.
    idx.add(&[1000, 1001], &[bodies[0].clone(), bodies[1].clone()])
        .unwrap();
    assert_eq!(found(&idx, &bodies[0], 1), vec![(1000, 0.0)]);
    idx.close().unwrap();
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.len(), 2);
    assert!(!idx.contains(100).unwrap());
    assert_eq!(idx.get(1001).unwrap().as_ref(), Some(&bodies[1]));
    // And a reset of that, reopened: empty.
    assert_eq!(idx.reset().unwrap(), 2);
    idx.close().unwrap();
    let ro = ShardedIndex::<u64>::open_read_only(dir.path()).unwrap();
    assert_eq!(ro.len(), 0);
    assert!(matches!(ro.reset(), Err(ShardedError::ReadOnly)));
}

#[test]
fn generated_keys_count_up_from_len_and_never_repeat_a_live_key() {
    let dir = tempfile::tempdir().unwrap();
    let idx = ShardedIndex::create(dir.path(), small(8 << 10)).unwrap();
    let mut seed = 41;
    // Explicit keys ahead of the counter, in several sealed shards.
    let explicit: Vec<u64> = (0..300).map(|k| k * 2).collect();
    let bodies: Vec<Vec<u8>> = explicit.iter().map(|_| body(&mut seed)).collect();
    assert_eq!(idx.add(&explicit, &bodies).unwrap(), 300);
    assert!(idx.stats().view_shards > 2, "the test needs sealed shards");
    let more: Vec<Vec<u8>> = (0..400).map(|_| body(&mut seed)).collect();
    let keys = idx.add_generated(&more).unwrap();
    // From len() = 300 upwards, skipping the even keys in use below 600.
    let mut expected = Vec::new();
    let mut next = 300u64;
    while expected.len() < 400 {
        if !(next < 600 && next.is_multiple_of(2)) {
            expected.push(next);
        }
        next += 1;
    }
    assert_eq!(keys, expected);
    for (k, b) in keys.iter().zip(&more) {
        assert_eq!(idx.get(*k).unwrap().as_ref(), Some(b));
    }
    for (k, b) in explicit.iter().zip(&bodies) {
        assert_eq!(
            idx.get(*k).unwrap().as_ref(),
            Some(b),
            "explicit key {k} kept"
        );
    }
    assert_eq!(idx.len(), 700);
    // A removal makes len() a key in use: it is skipped, not reused.
    assert!(idx.remove(&[0]).unwrap() == 1);
    let one = idx.add_generated(&[body(&mut seed)]).unwrap();
    assert!(one[0] >= 699 && idx.get(one[0]).unwrap().is_some());
    assert_eq!(idx.len(), 700);
    // A bad vector anywhere: nothing is written, the error says why.
    let before = idx.len();
    let err = idx
        .add_generated(&[body(&mut seed), vec![0u8; 40]])
        .unwrap_err();
    assert!(
        matches!(err, ShardedError::Vector { key: None, .. }),
        "{err}"
    );
    assert_eq!(idx.len(), before);
    // Survives a reopen: the keys stay where they were written.
    idx.close().unwrap();
    let back = ShardedIndex::open(dir.path()).unwrap();
    for (k, b) in keys.iter().zip(&more) {
        assert_eq!(back.get(*k).unwrap().as_ref(), Some(b));
    }
}

/// Shards partition themselves as their unit indexes do (per the
/// `partition` option), and the figures say how many rows sit in
/// partitioned shards: a merge into one shard of more rows than a unit
/// index starts partitioning at waits for its partition before it commits.
#[test]
fn a_merged_shard_is_partitioned_and_the_figures_count_its_rows() {
    use iscc_vdb::index::{Partition, AUTO_PARTITION_ROWS};
    let n = AUTO_PARTITION_ROWS as u64 + 8_000;
    for partition in [Partition::Always, Partition::Off] {
        let dir = tempfile::tempdir().unwrap();
        let options = ShardedOptions {
            shard_size: 256 << 10,
            merge_factor: 0,
            partition,
            ..ShardedOptions::default()
        };
        let idx = ShardedIndex::create(dir.path(), options).unwrap();
        let mut seed = 5;
        let mut model = BTreeMap::new();
        for start in (0..n).step_by(4_000) {
            let keys: Vec<u64> = (start..(start + 4_000).min(n)).collect();
            let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
            idx.add(&keys, &bodies).unwrap();
            model.extend(keys.into_iter().zip(bodies));
        }
        idx.drain_rotations().unwrap();
        assert!(idx.shard_count() > 2, "{}", idx.shard_count());
        assert_eq!(idx.stats().partitioned_rows, 0, "small shards stay whole");
        idx.merge(1).unwrap();
        let stats = idx.stats();
        assert!(stats.view_shards <= 2, "{}", stats.view_shards);
        let biggest = (stats.total_vectors - stats.active_shard_vectors) as u64;
        if partition == Partition::Always {
            assert!(biggest >= AUTO_PARTITION_ROWS as u64);
            assert!(stats.partitioned_rows as u64 >= biggest, "{stats:?}");
        } else {
            assert_eq!(stats.partitioned_rows, 0);
        }
        // Whatever the layout, an exact search is the brute-force answer,
        // and reopening keeps the layout.
        for _ in 0..5 {
            let q = body(&mut seed);
            assert_eq!(found(&idx, &q, 10), brute(&model, &q, 10));
        }
        let before = stats.partitioned_rows;
        idx.close().unwrap();
        drop(idx);
        let idx: ShardedIndex = ShardedIndex::open(dir.path()).unwrap();
        assert_eq!(idx.stats().partitioned_rows, before);
    }
}
