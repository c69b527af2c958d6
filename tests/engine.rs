//! The ISCC index (engine) on the shared corpus and on hand-made cases:
//! add/get symmetry, self and group matches, aggregation, INSTANCE prefix
//! matching, update semantics, rebuild, crash safety, locking, bad input.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use iscc_vdb::codec::{IsccId, Realm, Unit, UnitType};
use iscc_vdb::engine::{ErrorKind, IndexOptions, IsccIndex, Query, SearchParams};
use serde_json::{json, Value};

use common::corpus;

fn fast() -> IndexOptions {
    IndexOptions {
        durable: false,
        ..IndexOptions::default()
    }
}

fn query_of(record: &Value) -> Query {
    match record["units"].as_array() {
        Some(units) => Query::units(units.iter().map(|u| u.as_str().unwrap().to_string())),
        None => Query::code(record["iscc_code"].as_str().unwrap()),
    }
}

fn add_all(idx: &IsccIndex, records: &[Value]) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in records.chunks(500) {
        let refs: Vec<&Value> = chunk.iter().collect();
        ids.extend(idx.add(&refs).unwrap());
    }
    ids
}

/// Concurrent engine searches (more threads than cores, mixed parameters)
/// are coalesced into batches and each caller gets exactly the result it
/// gets alone (matches, scores, instance matches, cost counters).
#[test]
fn coalesced_engine_searches_equal_searches_alone() {
    let records = corpus();
    let idx = IsccIndex::open(None, fast()).unwrap();
    add_all(&idx, &records);
    let queries: Vec<Query> = records.iter().step_by(41).map(query_of).collect();
    let params = [
        SearchParams::default(),
        SearchParams {
            count: 3,
            exact: true,
            ..SearchParams::default()
        },
        SearchParams {
            unit_threshold: Some(0.6),
            ..SearchParams::default()
        },
    ];
    idx.set_coalescing(false);
    let want: Vec<Vec<_>> = params
        .iter()
        .map(|p| queries.iter().map(|q| idx.search(q, p).unwrap()).collect())
        .collect();
    assert!(want[0].iter().all(|m| !m.matches.is_empty()));
    idx.set_coalescing(true);
    std::thread::scope(|s| {
        for t in 0..8usize {
            let (idx, queries, want, params) = (&idx, &queries, &want, &params);
            s.spawn(move || {
                for round in 0..4 {
                    for (i, q) in queries.iter().enumerate() {
                        let p = (t + i + round) % params.len();
                        assert_eq!(idx.search(q, &params[p]).unwrap(), want[p][i], "query {i}");
                    }
                }
            });
        }
    });
    let stats = idx.coalesce_stats();
    assert!(
        stats.batches > 0,
        "8 threads never shared a batch: {stats:?}"
    );
}

/// The whole corpus: add with given IDs, get, self match, group recall.
#[test]
fn corpus_add_get_and_search() {
    let records = corpus();
    assert_eq!(records.len(), 2000);
    let idx = IsccIndex::open(None, fast()).unwrap();
    let ids = add_all(&idx, &records);
    assert_eq!(idx.size().unwrap(), 2000);
    for (r, id) in records.iter().zip(&ids) {
        assert_eq!(r["iscc_id"].as_str().unwrap(), id);
        let got = idx.get(id).unwrap().unwrap();
        // Extra fields come back as given; units are canonical.
        for key in ["group", "kind", "variant", "bits"] {
            assert_eq!(got[key], r[key], "{id} {key}");
        }
        if let Some(units) = r["units"].as_array() {
            let want: Vec<String> = units
                .iter()
                .map(|u| Unit::parse(u.as_str().unwrap()).unwrap().to_string())
                .collect();
            let have: Vec<String> = got["units"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_string())
                .collect();
            assert_eq!(have, want, "{id}");
        }
    }
    let mut types = idx.unit_types().unwrap();
    types.sort();
    assert!(types.contains(&"CONTENT-TEXT-V0".to_string()));
    assert!(types.contains(&"INSTANCE-NONE-V0".to_string()));

    // Symmetry: what get returns can be added to another index.
    let other = IsccIndex::open(None, fast()).unwrap();
    let got: Vec<Value> = ids.iter().map(|id| idx.get(id).unwrap().unwrap()).collect();
    assert_eq!(add_all(&other, &got), ids);
    for id in ids.iter().step_by(97) {
        assert_eq!(other.get(id).unwrap(), idx.get(id).unwrap());
    }

    // Self match and group members in the top 10.
    let mut groups: HashMap<u64, Vec<&str>> = HashMap::new();
    for (r, id) in records.iter().zip(&ids) {
        groups
            .entry(r["group"].as_u64().unwrap())
            .or_default()
            .push(id);
    }
    let queries: Vec<Query> = records.iter().map(query_of).collect();
    let params = SearchParams {
        count: 10,
        ..SearchParams::default()
    };
    let batch = idx.search_batch(&queries, &params).unwrap();
    // The batch path (grouped by unit type) answers like single searches.
    for (q, m) in queries.iter().zip(&batch.queries).step_by(41) {
        assert_eq!(&idx.search(q, &params).unwrap(), m);
    }
    let (mut found, mut wanted, mut tied_out) = (0usize, 0usize, 0usize);
    for ((r, id), (q, m)) in records
        .iter()
        .zip(&ids)
        .zip(queries.iter().zip(&batch.queries))
    {
        let top = m.matches[0].score;
        assert!((top - 1.0).abs() < 1e-6, "{id}: best score {top}");
        if !m.matches.iter().any(|x| &x.iscc_id == id) {
            // More than `count` entries tie with it at 1.0 (shorter units
            // of the same item are prefixes of its units) and ties go by
            // ISCC-ID: it must then appear, tied at 1.0, in a longer list.
            assert!(
                m.matches.iter().all(|x| x.score == top),
                "{id} does not find itself"
            );
            let more = idx
                .search(
                    q,
                    &SearchParams {
                        count: 200,
                        ..params
                    },
                )
                .unwrap();
            let me = more.matches.iter().find(|x| &x.iscc_id == id);
            assert_eq!(me.map(|x| x.score), Some(top), "{id} is not tied first");
            tied_out += 1;
        }
        let members = &groups[&r["group"].as_u64().unwrap()];
        let others: Vec<&&str> = members.iter().filter(|m| *m != id).collect();
        let cap = others.len().min(9);
        wanted += cap;
        found += others
            .iter()
            .filter(|o| m.matches.iter().any(|x| x.iscc_id == ***o))
            .count()
            .min(cap);
    }
    let group_recall = found as f64 / wanted as f64;
    println!("group members found in the top 10: {found}/{wanted} = {group_recall:.3}; records tied at 1.0 with more than 10 others: {tied_out}");
    assert!(group_recall >= 0.80, "group recall {group_recall:.3}");
    // Exact search agrees on the self match.
    let exact = idx
        .search(
            &queries[5],
            &SearchParams {
                exact: true,
                ..params
            },
        )
        .unwrap();
    assert!(exact.matches.iter().any(|m| m.iscc_id == ids[5]));
    // mean_recall on the batch: every record's own ID expected.
    let expected: Vec<Vec<String>> = ids.iter().map(|i| vec![i.clone()]).collect();
    let r = batch.mean_recall(&expected, Some(10));
    assert!((r - (2000 - tied_out) as f64 / 2000.0).abs() < 1e-9, "{r}");
}

#[test]
fn generated_ids_are_unique_increasing_and_realm_fixed() {
    let records = corpus();
    let idx = IsccIndex::open(None, fast()).unwrap();
    let stripped: Vec<Value> = records
        .iter()
        .take(600)
        .map(|r| {
            let mut r = r.clone();
            r.as_object_mut().unwrap().remove("iscc_id");
            r
        })
        .collect();
    let ids = add_all(&idx, &stripped);
    let keys: Vec<u64> = ids
        .iter()
        .map(|s| IsccId::parse(s).unwrap().value())
        .collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(idx.size().unwrap(), 600);
    assert_eq!(idx.info().unwrap().realm, Some(0));
    // An ID of the other realm is refused, naming the entry.
    let r1 = IsccId::from_parts(1_700_000_000_000_000, 1, Realm::new(1).unwrap()).unwrap();
    let mut e = records[0].clone();
    e["iscc_id"] = json!(r1.to_string());
    let err = idx.add(&[&e]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::WrongRealm, "{err}");
    assert!(err.to_string().contains("entries[0].iscc_id"), "{err}");
}

fn unit(t: &str, body: &[u8]) -> String {
    Unit::new(t.parse::<UnitType>().unwrap(), body)
        .unwrap()
        .to_string()
}

fn id(n: u64) -> String {
    IsccId::from_parts(1_700_000_000_000_000 + n, 0, Realm::new(0).unwrap())
        .unwrap()
        .to_string()
}

/// Bodies with a known number of flipped bits from a base.
fn flipped(base: &[u8], bits: usize) -> Vec<u8> {
    let mut b = base.to_vec();
    for i in 0..bits {
        b[i / 8] ^= 1 << (i % 8);
    }
    b
}

#[test]
fn aggregation_and_instance_prefixes_through_the_engine() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let text = [0x5Au8; 8];
    let data = [0xA5u8; 8];
    let inst: Vec<u8> = (0..32).collect();
    let entries = [
        // 1: CONTENT-TEXT 4 bits off (0.9375), DATA 8 bits off (0.875).
        json!({"iscc_id": id(1), "units": [unit("CONTENT-TEXT-V0", &flipped(&text, 4)), unit("DATA-NONE-V0", &flipped(&data, 8))]}),
        // 2: CONTENT-TEXT exact (1.0), DATA 32 bits off (0.5: dropped).
        json!({"iscc_id": id(2), "units": [unit("CONTENT-TEXT-V0", &text), unit("DATA-NONE-V0", &flipped(&data, 32))]}),
        // 3: only the 256-bit INSTANCE.
        json!({"iscc_id": id(3), "units": [unit("INSTANCE-NONE-V0", &inst)]}),
        // 4: a 64-bit INSTANCE prefix of the same.
        json!({"iscc_id": id(4), "units": [unit("INSTANCE-NONE-V0", &inst[..8])]}),
        // 5: DATA 20 bits off (0.6875: dropped) only.
        json!({"iscc_id": id(5), "units": [unit("DATA-NONE-V0", &flipped(&data, 20))]}),
    ];
    let refs: Vec<&Value> = entries.iter().collect();
    idx.add(&refs).unwrap();
    let q = Query::units([
        unit("CONTENT-TEXT-V0", &text),
        unit("DATA-NONE-V0", &data),
        unit("INSTANCE-NONE-V0", &inst[..16]),
    ]);
    let m = idx.search(&q, &SearchParams::default()).unwrap();
    let order: Vec<&str> = m.keys();
    assert_eq!(
        order,
        [id(2), id(3), id(4), id(1)]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let s1 = (0.9375f64.powi(4) + 0.875f64.powi(4)) / (0.9375 + 0.875);
    assert!((f64::from(m.matches[3].score) - s1).abs() < 1e-5);
    assert_eq!(m.matches[0].score, 1.0);
    assert_eq!(m.matches[0].units["CONTENT-TEXT-V0"].distance, 0.0);
    assert!(!m.matches[0].units["DATA-NONE-V0"].kept);
    assert!(m.matches[1].instance && m.matches[2].instance);
    assert_eq!(m.instance_matches, vec![id(3), id(4)]);
    // A lower threshold brings back the weak DATA-only entry.
    let low = idx
        .search(
            &q,
            &SearchParams {
                unit_threshold: Some(0.6),
                ..SearchParams::default()
            },
        )
        .unwrap();
    assert!(low.keys().contains(&id(5).as_str()));
    // INSTANCE prefixes both ways at every length.
    for len in [8, 16, 24, 32] {
        let q = Query::units([unit("INSTANCE-NONE-V0", &inst[..len])]);
        let m = idx.search(&q, &SearchParams::default()).unwrap();
        assert_eq!(m.instance_matches, vec![id(3), id(4)], "length {len}");
    }
    let mut other = inst.clone();
    other[9] ^= 1;
    let m = idx
        .search(
            &Query::units([unit("INSTANCE-NONE-V0", &other)]),
            &SearchParams::default(),
        )
        .unwrap();
    assert_eq!(
        m.instance_matches,
        vec![id(4)],
        "only the 64-bit prefix is shared"
    );
}

#[test]
fn updates_replace_everything_and_identical_re_adds_do_nothing() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let text = [0x11u8; 16];
    let inst_old = [0x22u8; 8];
    let inst_new = [0x33u8; 8];
    let v1 = json!({"iscc_id": id(7), "units": [unit("CONTENT-TEXT-V0", &text), unit("INSTANCE-NONE-V0", &inst_old)], "title": "a"});
    idx.add(&[&v1]).unwrap();
    let pending = idx.info().unwrap().journal_pending;
    // Identical: no journal record, nothing touched.
    idx.add(&[&v1]).unwrap();
    assert_eq!(idx.info().unwrap().journal_pending, pending);
    // New version without CONTENT-TEXT and with another INSTANCE.
    let v2 = json!({"iscc_id": id(7), "units": [unit("META-NONE-V0", &[9u8; 8]), unit("INSTANCE-NONE-V0", &inst_new)], "title": "b"});
    idx.add(&[&v2]).unwrap();
    assert_eq!(idx.get(&id(7)).unwrap().unwrap()["title"], "b");
    let by_text = idx
        .search(
            &Query::units([unit("CONTENT-TEXT-V0", &text)]),
            &SearchParams::default(),
        )
        .unwrap();
    assert!(by_text.is_empty(), "a dropped unit type still matches");
    let by_old = idx
        .search(
            &Query::units([unit("INSTANCE-NONE-V0", &inst_old)]),
            &SearchParams::default(),
        )
        .unwrap();
    assert!(by_old.is_empty(), "a stale INSTANCE row still matches");
    let by_new = idx
        .search(
            &Query::units([unit("INSTANCE-NONE-V0", &inst_new)]),
            &SearchParams::default(),
        )
        .unwrap();
    assert_eq!(by_new.keys(), vec![id(7).as_str()]);
    assert_eq!(idx.size().unwrap(), 1);
    // Duplicate IDs in one batch: the last wins.
    let a = json!({"iscc_id": id(8), "units": [unit("DATA-NONE-V0", &[0u8; 8])], "n": 1});
    let b = json!({"iscc_id": id(8), "units": [unit("DATA-NONE-V0", &[0xFFu8; 8])], "n": 2});
    let ids = idx.add(&[&a, &b]).unwrap();
    assert_eq!(ids, vec![id(8), id(8)]);
    assert_eq!(idx.get(&id(8)).unwrap().unwrap()["n"], 2);
    let m = idx
        .search(
            &Query::units([unit("DATA-NONE-V0", &[0u8; 8])]),
            &SearchParams::default(),
        )
        .unwrap();
    assert!(m.is_empty());
    // Remove from every index.
    assert_eq!(idx.remove(&[&id(7), &id(999)]).unwrap(), 2);
    assert_eq!(idx.get(&id(7)).unwrap(), None);
    for q in [
        Query::units([unit("META-NONE-V0", &[9u8; 8])]),
        Query::units([unit("INSTANCE-NONE-V0", &inst_new)]),
    ] {
        assert!(idx.search(&q, &SearchParams::default()).unwrap().is_empty());
    }
    assert_eq!(idx.size().unwrap(), 1);
}

#[test]
fn rebuild_equals_the_original_and_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let records = corpus();
    let queries: Vec<Query> = records.iter().step_by(13).map(query_of).collect();
    let params = SearchParams::default();
    let before;
    {
        let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
        add_all(&idx, &records[..1200]);
        before = idx.search_batch(&queries, &params).unwrap();
        idx.rebuild().unwrap();
        idx.put_metadata("owner", &json!({"name": "test"})).unwrap();
        assert_eq!(
            idx.get_metadata("realm_id").unwrap(),
            None,
            "user keys are apart"
        );
        let after = idx.search_batch(&queries, &params).unwrap();
        assert_eq!(after, before);
        idx.close().unwrap();
        assert_eq!(idx.size().unwrap_err().kind(), ErrorKind::Closed);
    }
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(idx.size().unwrap(), 1200);
    assert_eq!(idx.search_batch(&queries, &params).unwrap(), before);
    assert_eq!(idx.info().unwrap().journal_pending, 0);
    drop(idx);
    // Read-only (view) sees the same.
    let ro = IsccIndex::restore(dir.path(), true).unwrap();
    assert_eq!(ro.search_batch(&queries, &params).unwrap(), before);
    assert_eq!(
        ro.add(&[&records[1500]]).unwrap_err().kind(),
        ErrorKind::ReadOnly
    );
    assert_eq!(
        ro.get_metadata("owner").unwrap(),
        Some(json!({"name": "test"}))
    );
    // copy() is an independent in-memory index with the same answers.
    let copy = ro.copy().unwrap();
    assert_eq!(copy.search_batch(&queries, &params).unwrap(), before);
    assert!(copy.info().unwrap().in_memory);
}

/// A read-only open follows its writer by `refresh` — new commits replayed,
/// a save or a rebuild answered by reopening the index set — while two
/// threads search it without a pause: every search answers, and the saved
/// entry it looks for is always found with every one of its unit types
/// (a search never sees a set half reopened). After each refresh the
/// newest entry is found; at the end both handles hold the same rows. The
/// reader is a child process (one process opens a store once), driven by
/// lines on its stdin.
#[test]
fn a_read_only_open_follows_its_writer_while_it_is_searched() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let records = corpus();
    let writer = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    let ids = add_all(&writer, &records[..600]);
    writer.save().unwrap();
    let mut proc = Command::new(std::env::current_exe().unwrap())
        .args([
            "read_only_follower_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("IVDB_ENGINE_DIR", dir.path())
        .env("IVDB_PROBE_ID", &ids[0])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = proc.id();
    // A hung child is killed, so the reads below end instead of hanging.
    let (finished, deadline) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if deadline
            .recv_timeout(std::time::Duration::from_secs(300))
            .is_err()
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let mut to = proc.stdin.take().unwrap();
    let mut from = BufReader::new(proc.stdout.take().unwrap()).lines();
    let mut reply = |what: &str| -> String {
        from.by_ref()
            .map(|l| l.unwrap())
            .find_map(|l| l.find("REPLY ").map(|at| l[at + 6..].to_string()))
            .unwrap_or_else(|| panic!("the reader ended before answering {what}"))
    };
    assert_eq!(reply("open"), "open");
    for round in 0..9usize {
        let from = 600 + round * 60;
        let added = add_all(&writer, &records[from..from + 60]);
        match round % 3 {
            0 => {} // new commits only: replayed
            1 => writer.save().unwrap(),
            _ => writer.rebuild().unwrap(),
        }
        let newest = added.last().unwrap();
        writeln!(to, "refresh {} {newest}", from + 59).unwrap();
        assert_eq!(
            reply("refresh"),
            format!("refreshed {newest}"),
            "round {round}"
        );
    }
    writeln!(to, "end").unwrap();
    let w = writer.info().unwrap();
    let mut rows: Vec<String> = w
        .units
        .iter()
        .map(|(t, u)| format!("{t}={}", u.len))
        .collect();
    rows.insert(0, format!("size={}", w.size));
    assert_eq!(reply("end"), rows.join(" "));
    assert!(proc.wait().unwrap().success());
    finished.send(()).unwrap();
    watchdog.join().unwrap();
}

/// The reader of the test above (run with `--ignored` by it).
#[test]
#[ignore = "child process of a_read_only_open_follows_its_writer_while_it_is_searched"]
fn read_only_follower_child() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let Ok(dir) = std::env::var("IVDB_ENGINE_DIR") else {
        return;
    };
    let probe_id = std::env::var("IVDB_PROBE_ID").unwrap();
    let records = corpus();
    let reader = IsccIndex::open(
        Some(Path::new(&dir)),
        IndexOptions {
            read_only: true,
            ..fast()
        },
    )
    .unwrap();
    let params = SearchParams::default();
    let probe = query_of(&records[0]);
    let want = reader.search(&probe, &params).unwrap();
    let top = want
        .matches
        .first()
        .expect("the probe finds itself")
        .clone();
    assert_eq!(top.iscc_id, probe_id);
    println!("REPLY open");
    let done = AtomicBool::new(false);
    let searches = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (reader, probe, params, top, done, searches) =
                (&reader, &probe, &params, &top, &done, &searches);
            s.spawn(move || {
                while !done.load(Ordering::Acquire) {
                    let found = reader.search(probe, params).unwrap();
                    let m = found
                        .matches
                        .iter()
                        .find(|m| m.iscc_id == top.iscc_id)
                        .expect("the saved probe entry is always found");
                    assert_eq!(
                        m.units.keys().collect::<Vec<_>>(),
                        top.units.keys().collect::<Vec<_>>(),
                        "every unit type of the probe answers"
                    );
                    searches.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for line in std::io::stdin().lines() {
            let line = line.unwrap();
            let words: Vec<&str> = line.split(' ').collect();
            match words[..] {
                ["refresh", record, newest] => {
                    assert!(reader.refresh().unwrap(), "the reader catches up");
                    assert!(!reader.refresh().unwrap(), "then it is current");
                    let record = &records[record.parse::<usize>().unwrap()];
                    let found = reader.search(&query_of(record), &params).unwrap();
                    assert!(
                        found.matches.iter().any(|m| m.iscc_id == newest),
                        "the newest entry is found after the refresh"
                    );
                    println!("REPLY refreshed {newest}");
                }
                _ => break,
            }
        }
        done.store(true, Ordering::Release);
    });
    assert!(searches.load(Ordering::Relaxed) > 0);
    let r = reader.info().unwrap();
    let mut rows: Vec<String> = r
        .units
        .iter()
        .map(|(t, u)| format!("{t}={}", u.len))
        .collect();
    rows.insert(0, format!("size={}", r.size));
    eprintln!("reader: {} searches", searches.load(Ordering::Relaxed));
    println!("REPLY {}", rows.join(" "));
}

#[test]
fn a_damaged_unit_index_is_rebuilt_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let records = corpus();
    let queries: Vec<Query> = records.iter().step_by(50).map(query_of).collect();
    let before = {
        let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
        add_all(&idx, &records[..800]);
        let b = idx
            .search_batch(&queries, &SearchParams::default())
            .unwrap();
        idx.close().unwrap();
        b
    };
    // Truncate a shard file of CONTENT-TEXT-V0.
    let unit_dir = dir.path().join("content-text-v0");
    let victim = std::fs::read_dir(&unit_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "ivu"))
        .unwrap();
    std::fs::write(&victim, b"garbage").unwrap();
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(
        idx.search_batch(&queries, &SearchParams::default())
            .unwrap(),
        before
    );
    idx.close().unwrap();
    drop(idx);
    // A missing unit index directory is rebuilt too.
    std::fs::remove_dir_all(dir.path().join("data-none-v0")).unwrap();
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    assert_eq!(
        idx.search_batch(&queries, &SearchParams::default())
            .unwrap(),
        before
    );
}

#[test]
fn bad_input_gets_clear_errors_and_writes_nothing() {
    let idx = IsccIndex::open(None, fast()).unwrap();
    let good = unit("DATA-NONE-V0", &[1u8; 8]);
    let cases: Vec<(String, ErrorKind, &str)> = vec![
        ("{not json".into(), ErrorKind::InvalidJson, "invalid JSON"),
        (json!([{"units": [good], "iscc_id": id(1)}, {"iscc_code": "ISCC:NOTVALID"}]).to_string(), ErrorKind::InvalidIscc, "entries[1].iscc_code"),
        (json!({"iscc_id": id(1)}).to_string(), ErrorKind::InvalidArgument, "neither iscc_code nor units"),
        (json!({"units": []}).to_string(), ErrorKind::InvalidArgument, "empty units"),
        (json!({"units": ["ISCC:GAA7KNIMBHNQRM35", "ISCC:GAA7KNIMBHNQRM3!"]}).to_string(), ErrorKind::InvalidIscc, "units[1]"),
        (json!({"units": [good, good]}).to_string(), ErrorKind::InvalidArgument, "second DATA-NONE-V0"),
        (json!({"units": [good], "iscc_id": "ISCC:KAC475P7M763L47RCRMCVHWARKR65EZ2DIDXOBMNZ4ZXIFKJBA2QL7Y"}).to_string(), ErrorKind::InvalidIscc, "iscc_id"),
        (json!({"units": [unit("DATA-NONE-V0", &[1u8; 4])]}).to_string(), ErrorKind::InvalidIscc, "32 bits"),
        (json!({"units": 5}).to_string(), ErrorKind::InvalidArgument, "array"),
        (json!(7).to_string(), ErrorKind::InvalidArgument, "object"),
        // Granular features: one length per simprint type, named in the error.
        (json!([{"units": [good]}, {"units": [good], "features": [{"maintype": "semantic", "subtype": "text",
            "simprints": ["AQEBAQEBAQE", "AQEBAQEBAQEBAQEBAQEBAQ"]}]}]).to_string(),
            ErrorKind::InvalidArgument, "entries[1]: features[0]: simprint 1 of type SEMANTIC-TEXT-V0 has 128 bits"),
        (json!({"units": [good], "simprints": {"SEMANTIC_TEXT_V0": [{"simprint": "AQE"}]}}).to_string(),
            ErrorKind::InvalidArgument, "has 16 bits"),
    ];
    for (input, kind, needle) in cases {
        let err = idx.add_json(&input).unwrap_err();
        assert_eq!(err.kind(), kind, "{input}: {err}");
        assert!(err.to_string().contains(needle), "{input}: {err}");
        assert_eq!(idx.size().unwrap(), 0, "nothing half-written by {input}");
    }
    assert_eq!(idx.get(&id(1)).unwrap(), None);
    // Valid features are accepted and returned as given.
    let features = json!([{"maintype": "semantic", "subtype": "text", "version": 0,
        "simprints": ["AQEBAQEBAQE"], "offsets": [0], "sizes": [12], "contents": ["a segment"]}]);
    let added = idx
        .add_json(&json!({"iscc_id": id(2), "units": [good], "features": features}).to_string())
        .unwrap();
    assert_eq!(added, vec![id(2)]);
    let stored = idx.get_one(&id(2)).unwrap();
    assert_eq!(stored["features"], features);
    idx.remove(&[id(2).as_str()]).unwrap();
    let err = idx.get_one(&id(1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&id(1)), "{err}");
    assert_eq!(
        idx.get("ISCC:XYZ").unwrap_err().kind(),
        ErrorKind::InvalidIscc
    );
    let q = Query::default();
    assert_eq!(
        idx.search(&q, &SearchParams::default()).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        idx.remove(&["nonsense"]).unwrap_err().kind(),
        ErrorKind::InvalidIscc
    );
}

/// Run by the tests below as a child process (with `--ignored`).
#[test]
#[ignore = "child process of the engine's process tests"]
fn child_process_helper() {
    let Ok(mode) = std::env::var("IVDB_ENGINE_CHILD") else {
        return;
    };
    let dir = std::env::var("IVDB_ENGINE_DIR").unwrap();
    let opened = IsccIndex::open(Some(Path::new(&dir)), IndexOptions::default());
    if mode == "open" {
        match opened {
            Ok(_) => println!("OPENED"),
            Err(e) => println!("ERROR {}", e.kind().name()),
        }
        return;
    }
    let idx = opened.unwrap();
    let records: Vec<Value> = corpus().iter().enumerate().map(with_features).collect();
    for chunk in records.chunks(100) {
        let refs: Vec<&Value> = chunk.iter().collect();
        let ids = idx.add(&refs).unwrap();
        // Acknowledged: durably committed.
        println!("ACK {}", ids.join(" "));
    }
    println!("DONE");
    std::thread::sleep(std::time::Duration::from_secs(600));
}

/// A corpus record with granular features: a chunk of its own and one
/// shared with every tenth record.
fn with_features((i, record): (usize, &Value)) -> Value {
    let mut r = record.clone();
    let sp = |n: u64| data_encoding::BASE64URL_NOPAD.encode(&n.to_be_bytes());
    r["features"] = json!([{"maintype": "semantic", "subtype": "text", "version": 0,
        "simprints": [sp(i as u64), sp(1_000_000 + (i % 10) as u64)]}]);
    r
}

fn child(mode: &str, dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process_helper",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("IVDB_ENGINE_CHILD", mode)
        .env("IVDB_ENGINE_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

#[test]
fn acknowledged_entries_survive_sigkill_before_save() {
    let dir = tempfile::tempdir().unwrap();
    let mut proc = child("add", dir.path());
    let mut acked: Vec<String> = Vec::new();
    // The harness prints "test … " before the child's first line: look for
    // the marker anywhere in a line. The reader stays open until the kill.
    let mut lines = BufReader::new(proc.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find("ACK ") {
            acked.extend(line[at + 4..].split(' ').map(String::from));
            if acked.len() >= 700 {
                break;
            }
        }
    }
    // While the writer lives, a second writer process is refused.
    let mut second = child("open", dir.path());
    let out = BufReader::new(second.stdout.take().unwrap())
        .lines()
        .map(|l| l.unwrap())
        .filter(|l| l.contains("OPENED") || l.contains("ERROR"))
        .last()
        .unwrap();
    second.wait().unwrap();
    assert!(out.ends_with("ERROR LOCKED"), "{out}");
    proc.kill().unwrap(); // SIGKILL: no save, no destructors
    proc.wait().unwrap();
    drop(lines);
    assert!(acked.len() >= 700);
    let idx = IsccIndex::open(Some(dir.path()), fast()).unwrap();
    let records = corpus();
    let by_id: HashMap<&str, &Value> = records
        .iter()
        .map(|r| (r["iscc_id"].as_str().unwrap(), r))
        .collect();
    for id in &acked {
        assert!(idx.get(id).unwrap().is_some(), "{id} lost");
        let m = idx
            .search(&query_of(by_id[id.as_str()]), &SearchParams::default())
            .unwrap();
        assert!(
            m.keys().contains(&id.as_str()),
            "{id} not searchable after the crash"
        );
    }
    // Every acknowledged entry's chunks are in the store.
    let position: HashMap<&str, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r["iscc_id"].as_str().unwrap(), i))
        .collect();
    for id in &acked {
        let i = position[id.as_str()] as u64;
        let sp = |n: u64| data_encoding::BASE64URL_NOPAD.encode(&n.to_be_bytes());
        let own = idx.simprint_collisions("SEMANTIC-TEXT-V0", &sp(i)).unwrap();
        assert!(
            own.chunks.iter().any(|c| &c.iscc_id == id && c.chunk == 0),
            "{id}"
        );
        let shared = idx
            .simprint_collisions("SEMANTIC-TEXT-V0", &sp(1_000_000 + i % 10))
            .unwrap();
        assert!(
            shared
                .chunks
                .iter()
                .any(|c| &c.iscc_id == id && c.chunk == 1),
            "{id}"
        );
    }
    let types = idx.simprint_types().unwrap();
    let stored = types["SEMANTIC-TEXT-V0"];
    assert!(stored.entries >= acked.len() as u64 && stored.chunks == 2 * stored.entries);
    assert_eq!(stored.entries, idx.size().unwrap());
    // The simprint index was replayed too: each acknowledged entry's own
    // chunk is found by a query one bit off (a near match, which only the
    // index answers), in the journal-replayed index as after a rebuild.
    assert_eq!(stored.rows, stored.chunks);
    let near = |idx: &IsccIndex| -> Vec<Vec<(String, u64)>> {
        let params = SearchParams {
            simprint_threshold: Some(1.0 - 1.0 / 64.0),
            detail: true,
            ..SearchParams::default()
        };
        acked
            .iter()
            .map(|id| {
                let bits = (position[id.as_str()] as u64) | 1 << 63;
                let q = json!({"features": [{"maintype": "semantic", "subtype": "text",
                    "simprints": [data_encoding::BASE64URL_NOPAD.encode(&bits.to_be_bytes())]}]});
                let found = idx.search(&Query::of_entry(&q).unwrap(), &params).unwrap();
                let hits: Vec<(String, u64)> = found
                    .chunk_matches
                    .iter()
                    .flat_map(|m| {
                        let chunks = m.types["SEMANTIC-TEXT-V0"].chunks.clone().unwrap();
                        chunks.into_iter().map(|c| (m.iscc_id.clone(), c.chunk))
                    })
                    .collect();
                assert_eq!(hits, vec![(id.clone(), 0)], "{id}");
                hits
            })
            .collect()
    };
    let replayed = near(&idx);
    idx.rebuild().unwrap();
    assert_eq!(near(&idx), replayed);
}
