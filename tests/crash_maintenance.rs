//! Maintenance survives SIGKILL at any instant: `iscc-vdb rebuild`,
//! `iscc-vdb compact` and `iscc-vdb add --file` (which saves at the end)
//! run as child processes over 40,000 entries and are killed at 12 points
//! spread over each run. After every kill:
//!
//! * a read-only open (which must write nothing) finds 20 sampled stored
//!   entries by their similarity units alone, each at the top, and by their
//!   granular features alone, each at the top of the chunk matches; every
//!   unit index holds as many rows as the stored entries have units of its
//!   type, and the simprint index as many as they have chunks (counted here
//!   from the entries themselves);
//! * a writable open leaves a consistent index whose exact search results
//!   (unit and chunk matches) equal those after a fresh rebuild.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iscc_vdb::engine::{IndexOptions, IndexParams, IsccIndex, Query, SearchParams};
use serde_json::Value;

const N: usize = 40_000;
const KILLS: usize = 12;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
}

/// Small shards, so rotations, several shards and compaction all happen.
fn options() -> IndexOptions {
    IndexOptions {
        params: IndexParams {
            shard_size: 512 << 10,
            ..IndexParams::default()
        },
        ..IndexOptions::default()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// The simprint type of the entries' granular features.
const TYPE: &str = "CONTENT-TEXT-V0";

/// Granular features for every entry: a 64-bit chunk of its own (random)
/// and one shared by the 8 entries of its group.
fn with_features(entries: &mut [Value]) {
    let mut seed = 17;
    let sp = |v: u64| data_encoding::BASE64URL_NOPAD.encode(&v.to_be_bytes());
    let shared: Vec<u64> = (0..entries.len().div_ceil(8))
        .map(|_| common::lcg(&mut seed))
        .collect();
    for (i, e) in entries.iter_mut().enumerate() {
        e["features"] = serde_json::json!([{"maintype": "content", "subtype": "text",
            "simprints": [sp(common::lcg(&mut seed)), sp(shared[i / 8])],
            "offsets": [0, 1000], "sizes": [1000, 500]}]);
    }
}

/// Chunks of an entry's features.
fn chunk_count(entry: &Value) -> u64 {
    entry["features"][0]["simprints"]
        .as_array()
        .map_or(0, |a| a.len() as u64)
}

/// A query by an entry's granular features alone.
fn features_query(entry: &Value) -> Query {
    Query::of_entry(&serde_json::json!({"features": entry["features"]})).unwrap()
}

/// Similarity units of an entry (INSTANCE left out: found by units alone).
fn similarity_units(entry: &Value) -> Vec<String> {
    entry["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .filter(|u| {
            let t = iscc_vdb::codec::Unit::parse(u).unwrap().unit_type();
            t.is_similarity()
        })
        .collect()
}

/// Run `args` on `dir` to the end; its duration.
fn run_whole(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = bin()
        .arg("--path")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

/// Start `args` on `dir` and SIGKILL it after `after`; true when it was
/// still running (the kill landed).
fn run_killed(dir: &Path, args: &[&str], after: Duration) -> bool {
    let mut child = bin()
        .arg("--path")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let running = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    running
}

/// The checks after a kill; `ids` are every ISCC-ID that may be stored.
fn check_after_kill(dir: &Path, ids: &[String], label: &str) {
    // Read-only first: finds everything, writes nothing.
    let before = common::file_states(dir);
    let ro = IsccIndex::restore(dir, true).unwrap_or_else(|e| panic!("{label}: {e}"));
    let stored: Vec<(String, Value)> = ids
        .iter()
        .filter_map(|id| ro.get(id).unwrap().map(|e| (id.clone(), e)))
        .collect();
    assert_eq!(stored.len() as u64, ro.size().unwrap(), "{label}");
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for (_, e) in &stored {
        for u in similarity_units(e) {
            let t = iscc_vdb::codec::Unit::parse(&u).unwrap().unit_type();
            *want.entry(t.name()).or_default() += 1;
        }
    }
    let info = ro.info().unwrap();
    let have: BTreeMap<String, usize> = info
        .units
        .iter()
        .filter(|(_, u)| u.len > 0)
        .map(|(t, u)| (t.clone(), u.len))
        .collect();
    assert_eq!(have, want, "{label}: unit index rows vs stored entries");
    let chunks: u64 = stored.iter().map(|(_, e)| chunk_count(e)).sum();
    let sims = info.simprints.get(TYPE);
    assert_eq!(
        sims.map_or((0, 0), |s| (s.chunks, s.rows)),
        (chunks, chunks),
        "{label}: simprint rows and index rows vs stored chunks"
    );
    if !stored.is_empty() {
        // 20 samples spread over the stored entries, the newest included.
        let step = (stored.len() / 20).max(1);
        let mut samples: Vec<&(String, Value)> = stored.iter().step_by(step).take(19).collect();
        samples.push(stored.last().unwrap());
        for (id, entry) in samples {
            // Count 200: an exact match of one unit alone scores 1.0, and
            // the generated META units take only 4,096 values, so about ten
            // entries tie at the top with each (ordered by ISCC-ID).
            let m = ro
                .search(
                    &Query::units(similarity_units(entry)),
                    &SearchParams {
                        count: 200,
                        ..SearchParams::default()
                    },
                )
                .unwrap();
            // At the top: a perfect score (near-duplicate clusters hold
            // entries with the same units, tied with it).
            let top = m.matches.first().map_or(0.0, |m| m.score);
            let own = m.matches.iter().find(|m| &m.iscc_id == id);
            assert!(
                own.is_some_and(|o| o.score == 1.0 && top == 1.0),
                "{label}: {id} not at the top: {:?}",
                m.matches.iter().take(3).collect::<Vec<_>>()
            );
            // By its features alone: first of the chunk matches, every
            // chunk matched (its own chunk is unique to it).
            let c = ro
                .search(&features_query(entry), &SearchParams::default())
                .unwrap();
            let first = c.chunk_matches.first();
            assert!(
                first.is_some_and(|f| &f.iscc_id == id && f.score == 1.0),
                "{label}: {id} not first by features: {:?}",
                c.chunk_matches.iter().take(3).collect::<Vec<_>>()
            );
        }
    }
    ro.close().unwrap();
    drop(ro);
    assert_eq!(
        common::file_states(dir),
        before,
        "{label}: the read-only open wrote"
    );

    // Writable: consistent, and equal to a fresh rebuild.
    let idx = IsccIndex::open(Some(dir), IndexOptions::default()).unwrap();
    let info = idx.info().unwrap();
    for (t, u) in &info.units {
        assert_eq!(
            u.len as u64, u.entries,
            "{label}: {t} after a writable open"
        );
    }
    let queries: Vec<Query> = stored
        .iter()
        .step_by((stored.len() / 25).max(1))
        .flat_map(|(_, e)| [Query::units(similarity_units(e)), features_query(e)])
        .collect();
    let exact = SearchParams {
        exact: true,
        ..SearchParams::default()
    };
    // The matches, not what finding them cost (a rebuild drops dead rows,
    // so its scans compare fewer).
    let results = |b: iscc_vdb::engine::BatchMatches| -> Vec<_> {
        b.queries
            .into_iter()
            .map(|m| (m.matches, m.instance_matches, m.chunk_matches))
            .collect()
    };
    let found = results(idx.search_batch(&queries, &exact).unwrap());
    idx.rebuild().unwrap();
    assert_eq!(
        results(idx.search_batch(&queries, &exact).unwrap()),
        found,
        "{label}: results differ from a fresh rebuild"
    );
    idx.close().unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    entries: Vec<Value>,
    ids: Vec<String>,
    file: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut entries = common::generated_entries(N);
    with_features(&mut entries);
    let ids = entries
        .iter()
        .map(|e| e["iscc_id"].as_str().unwrap().to_string())
        .collect();
    let file = root.join("entries.jsonl");
    iscc_vdb::testing::write_jsonl(&file, &entries);
    Fixture {
        _tmp: tmp,
        root,
        entries,
        ids,
        file,
    }
}

/// Kill `args` at KILLS points spread over a run on copies of `base`.
fn kill_points(f: &Fixture, base: &Path, args: &[&str], label: &str) {
    let whole = f.root.join(format!("{label}-whole"));
    copy_dir(base, &whole);
    let t = run_whole(&whole, args);
    check_after_kill(&whole, &f.ids, &format!("{label} (not killed)"));
    let mut landed = 0;
    // KILLS points spread over the run; when timing jitter let some land
    // after a short run ended, more points in between until at least 10
    // kills landed.
    // A loaded machine can make the measured run slower than the killed
    // ones: a third series packs points into the first half.
    let points = (1..=KILLS)
        .map(|k| k as f64 / (KILLS + 1) as f64)
        .chain((1..=KILLS).map(|k| (k as f64 - 0.5) / (KILLS + 1) as f64))
        .chain((1..=KILLS).map(|k| (k as f64 - 0.25) / (2 * (KILLS + 1)) as f64));
    for (k, fraction) in points.enumerate() {
        if k >= KILLS && landed >= 10 {
            break;
        }
        let dir = f.root.join(format!("{label}-{k}"));
        copy_dir(base, &dir);
        let at = t.mul_f64(fraction);
        if run_killed(&dir, args, at) {
            landed += 1;
        }
        check_after_kill(&dir, &f.ids, &format!("{label} killed at {at:?} of {t:?}"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    eprintln!("{label}: a whole run took {t:?}; {landed} kills landed while it ran");
    assert!(
        landed >= 10,
        "{label}: only {landed} kills landed while it ran ({t:?})"
    );
}

#[test]
fn rebuild_compact_and_add_survive_sigkill_anywhere() {
    let f = fixture();
    // A saved index of all entries, then one with dead rows: 8,000 removed
    // and 8,000 updated without their META unit.
    let full = f.root.join("full");
    {
        let idx = IsccIndex::open(Some(&full), options()).unwrap();
        for chunk in f.entries.chunks(2000) {
            let refs: Vec<&Value> = chunk.iter().collect();
            idx.add(&refs).unwrap();
        }
        idx.close().unwrap();
    }
    kill_points(&f, &full, &["rebuild"], "rebuild");

    let churned = f.root.join("churned");
    copy_dir(&full, &churned);
    {
        let idx = IsccIndex::open(Some(&churned), options()).unwrap();
        let gone: Vec<&str> = f.ids[..8000].iter().map(String::as_str).collect();
        idx.remove(&gone).unwrap();
        let updated: Vec<Value> = f.entries[8000..16_000]
            .iter()
            .map(|e| {
                let mut e = e.clone();
                let units: Vec<Value> = e["units"].as_array().unwrap()[1..].to_vec();
                e["units"] = Value::Array(units);
                e
            })
            .collect();
        let refs: Vec<&Value> = updated.iter().collect();
        idx.add(&refs).unwrap();
        idx.close().unwrap();
        drop(idx);
        let ro = IsccIndex::restore(&churned, true).unwrap();
        let dead: usize = ro
            .info()
            .unwrap()
            .units
            .values()
            .map(|u| u.tombstones)
            .sum();
        assert!(dead > 0, "the churned index has tombstones to compact");
    }
    kill_points(&f, &churned, &["compact"], "compact");

    let empty = f.root.join("empty");
    IsccIndex::open(Some(&empty), options())
        .unwrap()
        .close()
        .unwrap();
    let file = f.file.to_string_lossy().into_owned();
    kill_points(
        &f,
        &empty,
        &[
            "add",
            "--file",
            &file,
            "--no-progress",
            "--batch-size",
            "1000",
        ],
        "add+save",
    );
}
