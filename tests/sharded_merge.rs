//! Tiered merging of sealed shards: many small shards merge into few;
//! searches, `get`, `contains` and `keys` equal a model before, during
//! (reader threads) and after a merge; writes during a background merge
//! are kept; tombstoned and superseded rows are dropped; and a merge killed
//! by SIGKILL at any of 12 points leaves the old or the new set of shards,
//! both complete; a merge whose commit fails leaves the old set on disk and
//! a consistent index in memory.

mod common;

use common::{brute, lcg, random_body as body};

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use iscc_vdb::index::{SearchOptions, ShardedIndex, ShardedIndex128, ShardedOptions};

fn exact(count: usize) -> SearchOptions {
    SearchOptions {
        exact: Some(true),
        ..SearchOptions::count(count)
    }
}

type Model = BTreeMap<u64, Vec<u8>>;

fn found(idx: &ShardedIndex, q: &[u8], options: &SearchOptions) -> Vec<(u64, f32)> {
    idx.search(q, options)
        .unwrap()
        .into_iter()
        .map(|m| (m.key, m.distance))
        .collect()
}

/// Every read of the index equals the model: len, keys, get and contains
/// of every key ever used, and exact searches.
fn check(idx: &ShardedIndex, model: &Model, used: u64, seed: u64, label: &str) {
    assert_eq!(idx.len(), model.len(), "{label}: len");
    let mut keys: Vec<u64> = idx.keys().unwrap().collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        model.keys().copied().collect::<Vec<_>>(),
        "{label}: keys"
    );
    for key in 0..used {
        assert_eq!(
            idx.get(key).unwrap().as_ref(),
            model.get(&key),
            "{label}: get {key}"
        );
        assert_eq!(idx.contains(key).unwrap(), model.contains_key(&key));
    }
    let mut s = seed;
    for _ in 0..20 {
        let q = body(&mut s);
        assert_eq!(found(idx, &q, &exact(8)), brute(model, &q, 8), "{label}");
    }
}

/// Options for many small shards that nothing merges by itself.
fn unmerged(shard_size: u64) -> ShardedOptions {
    ShardedOptions {
        shard_size,
        merge_factor: 0,
        ..ShardedOptions::default()
    }
}

/// Build `shards`-odd small shards with removes and upserts spread over
/// them (so tombstoned and superseded rows exist), saved. Returns the model
/// and the number of keys used.
fn build_unmerged(dir: &Path, rows: u64) -> (Model, u64) {
    let idx = ShardedIndex::<u64>::create(dir, unmerged(16 << 10)).unwrap();
    let mut model = Model::new();
    let mut seed = 7;
    for key in 0..rows {
        let b = body(&mut seed);
        idx.add(&[key], &[&b]).unwrap();
        model.insert(key, b);
        if key % 7 == 3 {
            let victim = lcg(&mut seed) % (key + 1);
            idx.remove(&[victim]).unwrap();
            model.remove(&victim);
        }
        if key % 5 == 1 {
            let k = lcg(&mut seed) % (key + 1);
            let b = body(&mut seed);
            idx.upsert(&[k], &[&b]).unwrap();
            model.insert(k, b);
        }
    }
    idx.close().unwrap();
    (model, rows)
}

#[test]
fn many_small_shards_merge_into_one_and_equal_a_model_before_during_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let (model, used) = build_unmerged(dir.path(), 6000);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    let before = idx.shard_count();
    assert!(before >= 10, "{before} shards");
    let dead = idx.stats().dead_rows;
    assert!(dead > 100, "{dead} dead rows");
    check(&idx, &model, used, 1, "before");

    // Readers compare with the model while the merge runs.
    let stop = AtomicBool::new(false);
    let report = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2u64)
            .map(|r| {
                let (idx, model, stop) = (&idx, &model, &stop);
                scope.spawn(move || {
                    let mut rounds = 0;
                    let mut s = 100 + r;
                    while !stop.load(Ordering::Acquire) || rounds == 0 {
                        let key = lcg(&mut s) % used;
                        assert_eq!(idx.get(key).unwrap().as_ref(), model.get(&key));
                        assert_eq!(idx.contains(key).unwrap(), model.contains_key(&key));
                        let q = body(&mut s);
                        assert_eq!(found(idx, &q, &exact(5)), brute(model, &q, 5));
                        assert_eq!(idx.len(), model.len());
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        let report = idx.merge(1).unwrap();
        stop.store(true, Ordering::Release);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
        report
    });
    // One sealed shard plus the active one; every dead row dropped.
    assert_eq!(idx.shard_count(), 2, "{report:?}");
    assert_eq!(report.shards_removed, before - 2);
    assert_eq!(report.rows_dropped, dead, "{report:?}");
    assert_eq!(idx.stats().dead_rows, 0);
    check(&idx, &model, used, 2, "after");
    // The default search path agrees with the exact one on the merged
    // shard too (as long as it scans; a graph must find the query itself).
    for key in model.keys().take(50) {
        let hit = idx.search(&model[key], &SearchOptions::count(1)).unwrap();
        assert_eq!(hit[0].distance, 0.0, "{key}");
    }
    idx.close().unwrap();
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert_eq!(idx.shard_count(), 2);
    check(&idx, &model, used, 3, "reopened");
    // Only the files of the current state are left.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("shard_"))
        .collect();
    assert!(names.len() <= 6, "{names:?}");
}

#[test]
fn tiered_merging_keeps_the_shard_count_logarithmic() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        shard_size: 8 << 10,
        merge_factor: 3,
        ..ShardedOptions::default()
    };
    let idx = ShardedIndex::<u64>::create(dir.path(), options).unwrap();
    let mut model = Model::new();
    let mut seed = 11;
    let mut most = 0;
    for batch in 0..120u64 {
        let keys: Vec<u64> = (batch * 100..batch * 100 + 100).collect();
        let bodies: Vec<Vec<u8>> = keys.iter().map(|_| body(&mut seed)).collect();
        idx.add(&keys, &bodies).unwrap();
        model.extend(keys.into_iter().zip(bodies));
        most = most.max(idx.shard_count());
    }
    // 12,000 rows in 8 KiB shards: 44 rotations here. Tiers of 3 hold at
    // most 2 shards each: log_3(44) ≈ 3.4 tiers, so at most ~2 × 5 + 1.
    let shards = idx.shard_count();
    // Each merge of 3 leaves 2 shards fewer: the rotations were
    // shards - 1 + 2 × merges.
    eprintln!(
        "{} rotations, {} merges, {shards} shards (at most {most})",
        shards as u64 - 1 + 2 * idx.merges_done(),
        idx.merges_done()
    );
    assert!(idx.merges_done() >= 10, "{} merges", idx.merges_done());
    assert!(shards <= 2 * 5 + 1, "{shards} shards");
    assert!(most <= 2 * 5 + 2, "at most {most} shards on the way");
    check(&idx, &model, 12_000, 4, "tiered");
}

#[test]
fn writes_during_background_merges_are_kept_with_128_bit_keys() {
    let dir = tempfile::tempdir().unwrap();
    let options = ShardedOptions {
        shard_size: 8 << 10,
        merge_factor: 2,
        background_rotation: true,
        ..ShardedOptions::default()
    };
    let idx = ShardedIndex128::create(dir.path(), options).unwrap();
    let key_of = |i: u64| {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&i.to_le_bytes());
        k[8..].copy_from_slice(&(i ^ 0x5555).to_be_bytes());
        k
    };
    let mut model: BTreeMap<[u8; 16], Vec<u8>> = BTreeMap::new();
    let mut seed = 17;
    for i in 0..8000u64 {
        let b = body(&mut seed);
        idx.add(&[key_of(i)], &[&b]).unwrap();
        model.insert(key_of(i), b);
        match i % 10 {
            // Upsert or remove keys of older (sealed, merging) shards.
            2 => {
                let k = key_of(lcg(&mut seed) % (i + 1));
                let b = body(&mut seed);
                idx.upsert(&[k], &[&b]).unwrap();
                model.insert(k, b);
            }
            5 => {
                let k = key_of(lcg(&mut seed) % (i + 1));
                idx.remove(&[k]).unwrap();
                model.remove(&k);
            }
            _ => {}
        }
    }
    idx.drain_merges().unwrap();
    assert!(idx.merges_done() > 5, "{} merges", idx.merges_done());
    let verify = |idx: &ShardedIndex128, label: &str| {
        assert_eq!(idx.len(), model.len(), "{label}");
        let mut listed: Vec<([u8; 16], Vec<u8>)> = idx.iter().unwrap().collect();
        listed.sort();
        let want: Vec<([u8; 16], Vec<u8>)> = model.iter().map(|(k, v)| (*k, v.clone())).collect();
        assert_eq!(listed, want, "{label}");
        for i in (0..8000u64).step_by(13) {
            assert_eq!(idx.get(key_of(i)).unwrap().as_ref(), model.get(&key_of(i)));
        }
    };
    verify(&idx, "merged");
    idx.close().unwrap();
    let idx = ShardedIndex128::open(dir.path()).unwrap();
    verify(&idx, "reopened");
    // Compaction after merges keeps everything too.
    idx.compact().unwrap();
    verify(&idx, "compacted");
}

#[test]
fn a_merge_whose_commit_fails_leaves_a_consistent_index_before_and_after_reopen() {
    use iscc_vdb::testing::fault;
    let dir = tempfile::tempdir().unwrap();
    let (model, used) = build_unmerged(dir.path(), 3000);
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    let before = idx.shard_count();
    // The merged shard is written, swapped in memory, then the manifest
    // commit fails.
    fault::fail_next_write("merge.commit");
    assert!(idx.merge(1).is_err());
    check(&idx, &model, used, 60, "after the failed commit");
    // The manifest on disk still names the old set: a reader sees it whole.
    let reader = ShardedIndex::<u64>::open_read_only(dir.path()).unwrap();
    assert_eq!(reader.shard_count(), before);
    check(&reader, &model, used, 61, "old set on disk");
    drop(reader);
    // The next commit (a save) writes the merged state.
    idx.save().unwrap();
    idx.close().unwrap();
    let idx = ShardedIndex::<u64>::open(dir.path()).unwrap();
    assert!(idx.shard_count() < before);
    check(&idx, &model, used, 62, "reopened");
}

/// The child process of the SIGKILL test: merge the index named by
/// `IVDB_MERGE_CHILD` one step at a time down to one sealed shard, printing
/// a line after each committed step (run with `--ignored` by that test).
#[test]
#[ignore = "child process of the merge SIGKILL test"]
fn child_process_merge_entry() {
    let Some(dir) = std::env::var_os("IVDB_MERGE_CHILD") else {
        return;
    };
    let idx = ShardedIndex::<u64>::open(&dir).unwrap();
    let mut sealed = idx.stats().view_shards;
    while sealed > 1 {
        idx.merge(sealed - 1).unwrap();
        sealed = idx.stats().view_shards;
        println!("merged to {sealed}");
    }
    idx.close().unwrap();
    println!("done");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn child(dir: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([
        "--exact",
        "child_process_merge_entry",
        "--ignored",
        "--nocapture",
        "--quiet",
    ])
    .env("IVDB_MERGE_CHILD", dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    c
}

/// Lines a child printed about its merge steps.
fn step_lines(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("merged to")).count()
}

#[test]
fn a_merge_killed_anywhere_leaves_a_complete_set_of_shards() {
    use std::io::BufRead;
    let base = tempfile::tempdir().unwrap();
    let built = base.path().join("built");
    let (model, used) = build_unmerged(&built, 20_000);
    let shards_before = ShardedIndex::<u64>::open_read_only(&built)
        .unwrap()
        .shard_count();

    // A whole run: how many steps it takes and how long.
    let whole = base.path().join("whole");
    copy_dir(&built, &whole);
    let started = Instant::now();
    let out = child(&whole).output().unwrap();
    let duration = started.elapsed();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("done"), "{text}");
    let steps = step_lines(&text);
    assert!(steps >= 12, "{steps} merge steps");

    // Kill i waits for step line `i × steps / 12`, then a little longer
    // (0 to 11 ms), so the kills land in different merges and at different
    // moments within one (reading rows, building, writing, committing).
    const KILLS: usize = 12;
    let mut outcomes = HashSet::new();
    for i in 0..KILLS {
        let dir = base.path().join(format!("kill{i}"));
        copy_dir(&built, &dir);
        let mut process = child(&dir).spawn().unwrap();
        let mut lines = std::io::BufReader::new(process.stdout.take().unwrap()).lines();
        let wait_for = i * steps / KILLS;
        for _ in 0..wait_for {
            lines.next();
        }
        std::thread::sleep(std::time::Duration::from_millis(i as u64));
        // SIGKILL (std's kill), then reap.
        let _ = process.kill();
        let _ = process.wait();
        // A read-only open writes nothing and sees a complete set.
        let reader = ShardedIndex::<u64>::open_read_only(&dir).unwrap();
        let label = format!("kill {i} after step {wait_for}");
        check(&reader, &model, used, 5 + i as u64, &label);
        let shards = reader.shard_count();
        assert!(shards <= shards_before, "{label}: {shards} shards");
        outcomes.insert(shards);
        drop(reader);
        // A writable open cleans leftovers and can merge on.
        let idx = ShardedIndex::<u64>::open(&dir).unwrap();
        check(&idx, &model, used, 50, &label);
        idx.merge(1).unwrap();
        assert_eq!(idx.shard_count(), 2, "{label}");
        check(&idx, &model, used, 51, &label);
        idx.close().unwrap();
    }
    eprintln!(
        "a merge run of {steps} steps in {duration:?} from {shards_before} shards; shard \
         counts the {KILLS} kills left: {outcomes:?}"
    );
    // The kills caught the run at many stages.
    assert!(outcomes.len() >= KILLS / 2, "{outcomes:?}");
}

/// The child of `a_reset_killed_anywhere_leaves_the_old_or_an_empty_index`:
/// opens, then resets when a line comes in on stdin.
#[test]
#[ignore = "child process of the reset SIGKILL test"]
fn child_process_reset_entry() {
    let Some(dir) = std::env::var_os("IVDB_RESET_CHILD") else {
        return;
    };
    let idx = ShardedIndex::<u64>::open(&dir).unwrap();
    println!("opened");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    idx.reset().unwrap();
    println!("reset");
    idx.close().unwrap();
}

#[test]
fn a_reset_killed_anywhere_leaves_the_old_or_an_empty_index() {
    use std::io::BufRead;
    let base = tempfile::tempdir().unwrap();
    let built = base.path().join("built");
    let (model, used) = build_unmerged(&built, 20_000);
    let empty = Model::new();
    let mut outcomes = Vec::new();
    // Kill 0 lands before the reset starts (the child waits for a line);
    // kill i of 1..=11 lands (i - 1) × 2 ms after it was told to start:
    // during and after the commit; kill 12 after the child said it reset.
    const KILLS: u64 = 13;
    for i in 0..KILLS {
        let dir = base.path().join(format!("kill{i}"));
        copy_dir(&built, &dir);
        let mut process = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_process_reset_entry",
                "--ignored",
                "--nocapture",
                "--quiet",
            ])
            .env("IVDB_RESET_CHILD", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(process.stdout.take().unwrap()).lines();
        // libtest prints its own lines first: wait for the child's.
        let opened = lines.find_map(|l| l.ok().filter(|l| l == "opened"));
        assert_eq!(
            opened.as_deref(),
            Some("opened"),
            "the child did not open the index"
        );
        let mut stdin = process.stdin.take().unwrap();
        if i > 0 {
            use std::io::Write;
            writeln!(stdin, "go").unwrap();
            stdin.flush().unwrap();
        }
        if i == KILLS - 1 {
            let said = lines.find_map(|l| l.ok().filter(|l| l == "reset"));
            assert_eq!(said.as_deref(), Some("reset"), "the child did not reset");
        } else if i > 0 {
            std::thread::sleep(std::time::Duration::from_millis(2 * (i - 1)));
        }
        // SIGKILL (std's kill), then reap.
        let _ = process.kill();
        let _ = process.wait();
        drop(stdin);
        let label = format!("reset kill {i}");
        // Whole or empty, never between: a read-only open sees one of them.
        let reader = ShardedIndex::<u64>::open_read_only(&dir).unwrap();
        let was_reset = reader.is_empty();
        let want = if was_reset { &empty } else { &model };
        check(&reader, want, used, 60 + i, &label);
        drop(reader);
        // A writable open cleans up and agrees.
        let idx = ShardedIndex::<u64>::open(&dir).unwrap();
        check(&idx, want, used, 80 + i, &label);
        idx.close().unwrap();
        outcomes.push(was_reset);
    }
    eprintln!("kills that found the reset committed: {outcomes:?}");
    // The kill before the reset found the old index whole, the kill after
    // it the empty one; those between found one or the other (checked).
    assert_eq!(outcomes.len() as u64, KILLS);
    assert!(!outcomes[0], "a kill before the reset found it committed");
    assert!(
        outcomes[KILLS as usize - 1],
        "a kill after the reset found the old index"
    );
}
