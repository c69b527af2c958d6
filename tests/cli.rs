//! The `iscc-vdb` binary: `explain` output and exit codes.
#![cfg(feature = "cli")]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run iscc-vdb");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn explain_prints_every_vector_like_iscc_core() {
    let data = common::json("codec-vectors.json");
    let cases = data["iscc"].as_array().unwrap();
    let inputs: Vec<&str> = cases.iter().map(|c| c["input"].as_str().unwrap()).collect();
    let out = run(&["explain", "--lines"], Some(&inputs.join("\n")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases.len());
    for (got, case) in lines.iter().zip(cases) {
        for key in [
            "kind",
            "canonical",
            "unit_type",
            "bit_length",
            "units",
            "header_hex",
        ] {
            assert_eq!(got[key], case[key], "{key} of {}", case["input"]);
        }
    }
}

#[test]
fn explain_shows_iscc_id_fields() {
    let out = run(&["explain", "ISCC:MAIP777777777777"], None);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = &v[0]["iscc_id"];
    assert_eq!(id["realm"], 0);
    assert_eq!(id["hub_id"], 4095);
    assert_eq!(id["timestamp_us"], 4_503_599_627_370_495u64);
    assert_eq!(id["iso_time"], "2112-09-17T23:53:47.370495Z");
    assert_eq!(id["u64"], u64::MAX);
}

#[test]
fn explain_reports_bad_input_and_fails() {
    let out = run(
        &["explain", "ISCC:EAAYW3CSFZQI75D2", "ISCX:EAAYW3CSFZQI75D2"],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["unit_type"], "CONTENT-TEXT-V0");
    assert!(v[1]["error"].as_str().unwrap().contains("unknown scheme"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ISCX"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["no-such-command"], None).status.code(), Some(2));
    assert!(run(&["--version"], None).status.success());
}

// ---- index commands ----------------------------------------------------------

fn run_at(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut full = vec!["--path", dir.to_str().unwrap()];
    full.extend_from_slice(args);
    run(&full, stdin)
}

fn ok_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn index_commands_on_the_corpus() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let records = common::corpus();
    let corpus = common::testdata("corpus.jsonl");

    // add from JSON Lines: one ID per record, the records' own IDs, in order
    let ids = ok_json(&run_at(
        &dir,
        &[
            "add",
            "--file",
            corpus.to_str().unwrap(),
            "--batch-size",
            "300",
        ],
        None,
    ));
    let ids: Vec<&str> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let want: Vec<&str> = records
        .iter()
        .map(|r| r["iscc_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, want);

    // info
    let info = ok_json(&run_at(&dir, &["info"], None));
    assert_eq!(info["size"], 2000);
    assert_eq!(info["journal_pending"], 0, "add saved on exit");
    assert!(info["unit_types"].as_array().unwrap().len() >= 5);
    let table = run_at(&dir, &["info", "--format", "table"], None);
    assert!(String::from_utf8_lossy(&table.stdout).contains("entries          2000"));

    // get: one entry as stored, several as an array with null for unknown
    let r = &records[7];
    let id = r["iscc_id"].as_str().unwrap();
    let got = ok_json(&run_at(&dir, &["get", id], None));
    assert_eq!(got["iscc_code"], r["iscc_code"]);
    assert_eq!(got["group"], r["group"]);
    let absent = "ISCC:MAIGGGMBUD3TAUAR";
    let out = run_at(&dir, &["get", id, absent], None);
    assert_eq!(out.status.code(), Some(4));
    let both: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(both[0]["iscc_id"], r["iscc_id"]);
    assert!(both[1].is_null());
    assert!(stderr(&out).contains(absent));

    // search by code: the record itself at score 1.0 among the top
    let code = r["iscc_code"].as_str().unwrap();
    let m = ok_json(&run_at(
        &dir,
        &["search", "--iscc-code", code, "--count", "5"],
        None,
    ));
    let matches = m["matches"].as_array().unwrap();
    assert!(!matches.is_empty() && matches.len() <= 5);
    assert!(matches
        .iter()
        .any(|x| x["iscc_id"] == r["iscc_id"] && x["score"] == 1.0));
    assert!(m["instance_matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == id));
    // by units, exact: the same best score
    let units: Vec<&str> = r["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    let mut args = vec!["search", "--exact", "--count", "3", "--units"];
    args.extend(&units);
    let m2 = ok_json(&run_at(&dir, &args, None));
    assert_eq!(m2["matches"][0]["score"], 1.0);
    // several codes: a batch, one result per code
    let code2 = records[100]["iscc_code"].as_str().unwrap();
    let b = ok_json(&run_at(&dir, &["search", "--iscc-code", code, code2], None));
    assert_eq!(b.as_array().unwrap().len(), 2);
    assert!(b[1]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["iscc_id"] == records[100]["iscc_id"]));
    let t = run_at(
        &dir,
        &["search", "--iscc-code", code, "--format", "table"],
        None,
    );
    assert!(String::from_utf8_lossy(&t.stdout).contains(id));

    // search --file: every corpus record as a query (the entries file works
    // as a query file), one result per line, in order
    let all = ok_json(&run_at(
        &dir,
        &["search", "--file", corpus.to_str().unwrap()],
        None,
    ));
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 2000);
    let selfs = all
        .iter()
        .zip(&records)
        .filter(|(m, r)| {
            m["matches"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["iscc_id"] == r["iscc_id"])
        })
        .count();
    assert!(selfs >= 1990, "{selfs} of 2000 records find themselves");
    assert_eq!(all[100], b[1], "file search equals the single search");
    let queries = format!("{}\n{{\"units\": [\"ISCC:XX\"]}}\n", records[0]);
    let out = run_at(&dir, &["search", "--file", "-"], Some(&queries));
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 2: units[0]"),
        "{}",
        stderr(&out)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing printed for a failed first batch"
    );

    // remove: a report; an unknown ID → exit 4 (the known one still removed)
    let out = run_at(&dir, &["remove", id, absent], None);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let rep: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rep["removed"], serde_json::json!([id]));
    assert_eq!(rep["not_found"], serde_json::json!([absent]));
    assert!(rep["mappings"].as_u64().unwrap() >= 2);
    assert_eq!(run_at(&dir, &["get", id], None).status.code(), Some(4));
    let m = ok_json(&run_at(
        &dir,
        &["search", "--iscc-code", code, "--count", "50"],
        None,
    ));
    assert!(m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["iscc_id"] != id));

    // rebuild and save report the index
    let info = ok_json(&run_at(&dir, &["rebuild"], None));
    assert_eq!(info["size"], 1999);
    let after = ok_json(&run_at(&dir, &["search", "--iscc-code", code2], None));
    // The rebuild dropped the removed entry's rows, so the same matches
    // cost fewer rows scanned.
    let matches = |v: &Value| (v["matches"].clone(), v["instance_matches"].clone());
    assert_eq!(
        matches(&after),
        matches(&b[1]),
        "search after rebuild equals before"
    );
    assert!(after["computed_distances"].as_u64() < b[1]["computed_distances"].as_u64());
    let info = ok_json(&run_at(&dir, &["--pretty", "save"], None));
    assert_eq!(info["size"], 1999);

    // single adds: generated ID, explicit ID, units; idempotent re-add
    let new = ok_json(&run_at(&dir, &["add", "--iscc-code", code], None));
    let new_id = new[0].as_str().unwrap().to_string();
    assert!(new_id.starts_with("ISCC:MAI") && new_id != id);
    let again = ok_json(&run_at(
        &dir,
        &["add", "--iscc-id", id, "--units", units[0], units[1]],
        None,
    ));
    assert_eq!(again[0], id);
    let got = ok_json(&run_at(&dir, &["get", id], None));
    assert_eq!(got["units"].as_array().unwrap().len(), 2);
    assert_eq!(ok_json(&run_at(&dir, &["info"], None))["size"], 2001);
}

#[test]
fn add_reads_arrays_stdin_and_env_path() {
    let tmp = tempfile::tempdir().unwrap();
    let records = common::corpus();
    // A JSON array file, pretty-printed.
    let arr = tmp.path().join("entries.json");
    std::fs::write(&arr, serde_json::to_string_pretty(&records[..50]).unwrap()).unwrap();
    let dir = tmp.path().join("a");
    let ids = ok_json(&run_at(
        &dir,
        &["add", "--file", arr.to_str().unwrap()],
        None,
    ));
    assert_eq!(ids.as_array().unwrap().len(), 50);
    assert_eq!(ids[49], records[49]["iscc_id"]);
    // Standard input: concatenated pretty objects (not one per line).
    let text: String = records[50..80]
        .iter()
        .map(|r| serde_json::to_string_pretty(r).unwrap() + "\n\n")
        .collect();
    let ids = ok_json(&run_at(&dir, &["add", "--file", "-"], Some(&text)));
    assert_eq!(ids.as_array().unwrap().len(), 30);
    assert_eq!(ids[0], records[50]["iscc_id"]);
    // The path from ISCC_VDB_PATH.
    let out = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(["info"])
        .env("ISCC_VDB_PATH", &dir)
        .output()
        .unwrap();
    assert_eq!(ok_json(&out)["size"], 80);
}

#[test]
fn bad_input_gives_exit_status_and_message() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let records = common::corpus();

    // No index yet: reading commands say so (4), nothing is created.
    let out = run_at(
        &dir,
        &[
            "search",
            "--iscc-code",
            "ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("no index at"), "{}", stderr(&out));
    assert!(!dir.exists());
    assert_eq!(run_at(&dir, &["info"], None).status.code(), Some(4));

    // Malformed ISCC → 3 with the offending value.
    let out = run_at(&dir, &["add", "--iscc-code", "ISCC:NOTANISCC"], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("NOTANISCC"), "{}", stderr(&out));
    // Usage errors → 2.
    assert_eq!(run_at(&dir, &["add"], None).status.code(), Some(2));
    assert_eq!(
        run_at(&dir, &["search", "--count", "0", "--iscc-code", "x"], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(run_at(&dir, &["get"], None).status.code(), Some(2));
    // Missing file → 4.
    let out = run_at(&dir, &["add", "--file", "/no/such/file.jsonl"], None);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("/no/such/file.jsonl"));

    // A file whose 5th line is broken JSON: nothing after it, line named.
    let mut lines: Vec<String> = records[..10].iter().map(|r| r.to_string()).collect();
    lines[4] = "{\"iscc_code\": ".to_string() + "\"ISCC:KAC";
    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let out = run_at(&dir, &["add", "--file", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("line 5"), "{}", stderr(&out));

    // A valid JSON line with a bad unit on line 3: stops, names line 3.
    let mut lines: Vec<String> = records[..6].iter().map(|r| r.to_string()).collect();
    let mut broken = records[2].clone();
    broken["units"][0] = Value::from("ISCC:AAAZZZZ");
    lines[2] = broken.to_string();
    let bad = tmp.path().join("bad-unit.jsonl");
    std::fs::write(&bad, lines.join("\n")).unwrap();
    let dir2 = tmp.path().join("idx2");
    let out = run_at(
        &dir2,
        &["add", "--file", bad.to_str().unwrap(), "--batch-size", "2"],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    let msg = stderr(&out);
    assert!(
        msg.contains("line 3") && msg.contains("ISCC:AAAZZZZ"),
        "{msg}"
    );
    assert!(msg.contains("2 entries before line 3 were added"), "{msg}");
    assert_eq!(ok_json(&run_at(&dir2, &["info"], None))["size"], 2);
    // --keep-going: every good entry added, the bad one reported, exit 3.
    let dir3 = tmp.path().join("idx3");
    let out = run_at(
        &dir3,
        &["add", "--file", bad.to_str().unwrap(), "--keep-going"],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    let ids: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ids.as_array().unwrap().len(), 5);
    assert!(stderr(&out).contains("skipped") && stderr(&out).contains("line 3"));
    assert_eq!(ok_json(&run_at(&dir3, &["info"], None))["size"], 5);

    // --keep-going also skips a line of broken JSON and reads on.
    let mut lines: Vec<String> = records[10..14].iter().map(|r| r.to_string()).collect();
    lines.insert(2, "{\"iscc_code\": \"ISCC:KAC".to_string());
    let out = run_at(
        &dir3,
        &["add", "--keep-going", "--file", "-"],
        Some(&lines.join("\n")),
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 3: invalid JSON"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(ok_json(&run_at(&dir3, &["info"], None))["size"], 9);

    // An ISCC-ID of the other realm → 3.
    let out = run_at(&dir3, &["get", "ISCC:MEIGGGMBT3LBUEH7"], None);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("realm"), "{}", stderr(&out));
    // Not JSON at all.
    let out = run_at(&dir3, &["add", "--file", "-"], Some("hello"));
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("line 1"));
}

#[test]
fn granular_features_from_files_and_in_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let records = common::corpus();
    let sp = |n: u64| data_encoding::BASE64URL_NOPAD.encode(&(n << 32).to_be_bytes());
    // Two entries from a file share chunk 5; a third is added with
    // `add --features` from an `.iscc.json`-like file.
    let mut entries: Vec<Value> = records[..2].to_vec();
    entries[0]["features"] = serde_json::json!([{"maintype": "content", "subtype": "text",
        "simprints": [sp(1), sp(5)], "offsets": [0, 700], "sizes": [700, 300]}]);
    entries[1]["features"] = serde_json::json!([{"maintype": "content", "subtype": "text",
        "simprints": [sp(5)], "offsets": [40], "sizes": [60]}]);
    let file = tmp.path().join("entries.json");
    std::fs::write(&file, serde_json::to_string(&entries).unwrap()).unwrap();
    let out = run_at(
        &dir,
        &["add", "--file", file.to_str().unwrap(), "--no-progress"],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let iscc = tmp.path().join("doc.iscc.json");
    let doc = serde_json::json!({"iscc": records[2]["iscc_code"], "features": [{"maintype": "content",
        "subtype": "text", "simprints": [sp(5), sp(9)]}]});
    std::fs::write(&iscc, doc.to_string()).unwrap();
    let code = records[2]["iscc_code"].as_str().unwrap();
    let out = run_at(
        &dir,
        &[
            "add",
            "--iscc-code",
            code,
            "--features",
            iscc.to_str().unwrap(),
        ],
        None,
    );
    let third = ok_json(&out)[0].as_str().unwrap().to_string();
    // Search by a features file (a bare list of feature sets, on stdin).
    let query =
        serde_json::json!([{"maintype": "content", "subtype": "text", "simprints": [sp(5)]}]);
    let out = run_at(
        &dir,
        &["search", "--features", "-", "--detail"],
        Some(&query.to_string()),
    );
    let found = ok_json(&out);
    let ids: Vec<&str> = found["chunk_matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["iscc_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3, "{found}");
    for id in [
        records[0]["iscc_id"].as_str().unwrap(),
        records[1]["iscc_id"].as_str().unwrap(),
        &third,
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    // The table shows each matched segment.
    let out = run_at(
        &dir,
        &[
            "search",
            "--features",
            iscc.to_str().unwrap(),
            "--detail",
            "--format",
            "table",
        ],
        None,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("3 chunk matches"), "{table}");
    assert!(
        table.contains("query chunk 0 ~ chunk 1 (bytes 700+300)"),
        "{table}"
    );
    assert!(
        table.contains("query chunk 0 ~ chunk 0 (bytes 40+60)"),
        "{table}"
    );
    // "More like this" leaves the entry out.
    let out = run_at(&dir, &["search", "--like", &third], None);
    let like = ok_json(&out);
    let liked: Vec<&str> = like["chunk_matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["iscc_id"].as_str().unwrap())
        .collect();
    assert_eq!(liked.len(), 2, "{like}");
    assert!(!liked.contains(&third.as_str()));
    // Bad features files: exit status 3 and a line naming the file.
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, r#"{"title": "no features"}"#).unwrap();
    let out = run_at(&dir, &["search", "--features", bad.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("bad.json: no `features`"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        &bad,
        r#"[{"maintype": "content", "subtype": "text", "simprints": ["AAAA"]}]"#,
    )
    .unwrap();
    let out = run_at(
        &dir,
        &[
            "add",
            "--iscc-code",
            code,
            "--features",
            bad.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("24 bits"), "{}", stderr(&out));
}

/// `export --to DIR` and `import --from DIR` copy every entry between local
/// indexes (a second export resumes and copies nothing); bad batches and
/// a copy into itself are refused.
#[test]
fn export_and_import_copy_between_local_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let (a, b, c) = (path("a"), path("b"), path("c"));
    let records: Vec<Value> = common::corpus().into_iter().take(300).collect();
    let input: String = records.iter().map(|r| format!("{r}\n")).collect();
    let out = run(&["--path", &a, "add", "--file", "-"], Some(&input));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ids: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    let copy = |args: &[&str]| -> Value {
        let out = run(args, None);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = copy(&["--path", &a, "export", "--to", &b, "--batch", "64"]);
    assert_eq!(first["copied"], 300, "{first}");
    assert_eq!(first["resumed"], false, "{first}");
    let again = copy(&["--path", &a, "export", "--to", &b]);
    assert_eq!(
        (again["copied"].as_u64(), again["resumed"].as_bool()),
        (Some(0), Some(true)),
        "{again}"
    );
    let imported = copy(&["--path", &c, "import", "--from", &b, "--quiet"]);
    assert_eq!(imported["copied"], 300, "{imported}");
    let mut get = vec!["--path", &c, "get"];
    get.extend(ids.iter().map(String::as_str));
    let mut get_a = vec!["--path", &a, "get"];
    get_a.extend(ids.iter().map(String::as_str));
    assert_eq!(copy(&get), copy(&get_a));
    for (args, status, says) in [
        (
            vec!["--path", &a, "export", "--to", &b, "--batch", "0"],
            2,
            "--batch",
        ),
        (vec!["--path", &a, "export", "--to", &a], 6, ""),
    ] {
        let out = run(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(status), "{args:?}: {err}");
        assert!(err.contains(says), "{err}");
    }
}
