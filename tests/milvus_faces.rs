//! The `iscc-vdb` CLI and its REST server on a `milvus://` path: the same
//! answers as on a local directory (the engine decides; the faces only
//! pass the path on), and a password in the URI never printed.
//!
//! Needs `IVDB_MILVUS_URI=milvus://HOST:PORT` like `milvus_backend.rs`;
//! without it every test says so and passes.
#![cfg(all(feature = "milvus", feature = "cli", feature = "server"))]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::milvus::{server, Remote};
use common::serve::Serve;
use iscc_vdb::engine::IsccIndex;
use serde_json::{json, Value};

/// `uri` with credentials after its scheme (the standalone server has no
/// authentication and ignores them; they must never be printed).
fn with_password(uri: &str) -> String {
    uri.replacen("milvus://", "milvus://ann:s3cret-pw@", 1)
}

fn cli(path: &str, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .arg("--path")
        .arg(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run iscc-vdb");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// Stdout as JSON, the command having succeeded.
fn ok(out: Output, what: &str) -> Value {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what}: {err}");
    assert!(!err.contains("s3cret"), "{what}: {err}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The records of the corpus the faces are tried with: the first 200.
fn records() -> Vec<Value> {
    common::corpus().into_iter().take(200).collect()
}

fn jsonl(records: &[Value]) -> String {
    records.iter().map(|r| format!("{r}\n")).collect()
}

/// Add, get, search (by code and by units, exact), remove and info through
/// the CLI on a URI answer as on a directory; a missing remote index is
/// NOT_FOUND for the commands that read.
#[test]
fn the_cli_on_a_uri_answers_as_on_a_directory() {
    let Some(base) = server("the_cli_on_a_uri_answers_as_on_a_directory") else {
        return;
    };
    let remote = Remote::new(&base, "f", "cli");
    let uri = with_password(&remote.uri);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("idx");
    let local = local.to_str().unwrap();
    let records = records();
    let input = jsonl(&records);
    let ids_local = ok(cli(local, &["add", "--file", "-"], &input), "add local");
    let ids_remote = ok(cli(&uri, &["add", "--file", "-"], &input), "add remote");
    assert_eq!(ids_local, ids_remote);
    let ids: Vec<&str> = ids_local
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut get = vec!["get"];
    get.extend(&ids[..20]);
    assert_eq!(
        ok(cli(local, &get, ""), "get local"),
        ok(cli(&uri, &get, ""), "get remote")
    );
    let codes: String = records
        .iter()
        .filter(|r| r["iscc_code"].is_string())
        .take(30)
        .map(|r| format!("{}\n", json!({"iscc_code": r["iscc_code"]})))
        .collect();
    for args in [
        &["search", "--file", "-", "--exact", "--count", "5"][..],
        &["search", "--file", "-", "--exact", "--count", "20"][..],
    ] {
        let a = ok(cli(local, args, &codes), "search local");
        let b = ok(cli(&uri, args, &codes), "search remote");
        assert_eq!(strip_costs(a), strip_costs(b), "{args:?}");
    }
    let removed = ok(cli(&uri, &["remove", ids[0], ids[1]], ""), "remove");
    assert_eq!(removed["removed"].as_array().unwrap().len(), 2, "{removed}");
    let info = ok(cli(&uri, &["info"], ""), "info");
    assert_eq!(info["size"], json!(records.len() - 2), "{info}");
    assert!(info["path"].as_str().unwrap().starts_with("milvus://"));
    // A name the server has no index of.
    let missing = with_password(&format!("{base}/f_missing_{}", std::process::id()));
    let out = cli(&missing, &["get", ids[2]], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(
        err.contains("f_missing_") && !err.contains("s3cret"),
        "{err}"
    );
}

/// Fields of a search result both backends agree on: its matches (cost
/// counters are the local engine's own).
fn strip_costs(v: Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.into_iter().map(strip_costs).collect()),
        Value::Object(mut o) => {
            o.remove("visited_members");
            o.remove("computed_distances");
            Value::Object(o)
        }
        other => other,
    }
}

/// `iscc-vdb serve --path milvus://…` serves the remote index (stateless:
/// a second server on the same index sees the first one's writes at once);
/// its log names the server without the password.
#[test]
fn serve_on_a_uri_is_stateless() {
    let Some(base) = server("serve_on_a_uri_is_stateless") else {
        return;
    };
    let remote = Remote::new(&base, "f", "serve");
    let uri = with_password(&remote.uri);
    let records = records();
    let serve = ["--path", uri.as_str(), "serve", "--port", "0"];
    let (a, b) = (Serve::start(&serve), Serve::start(&serve));
    for s in [&a, &b] {
        let line = &s.first_line;
        assert!(
            line.contains("milvus://") && !line.contains("s3cret"),
            "{line}"
        );
    }
    let mut ca = a.client();
    let mut cb = b.client();
    let added = ca.post("/add", &json!({"entries": records})).unwrap();
    assert_eq!(added.status, 200, "{:?}", added.json());
    let ids = added.json().unwrap();
    let id = ids["data"][5]
        .as_str()
        .unwrap_or_else(|| panic!("no ids in {ids}"))
        .to_string();
    // The other server reads it at once.
    let got = cb.get(&format!("/get/{id}")).unwrap();
    assert_eq!(got.status, 200, "{:?}", got.json());
    let info = cb.get("/info").unwrap().json().unwrap();
    assert_eq!(info["data"]["size"], json!(records.len()), "{info}");
    let code = records[5]["iscc_code"].as_str().unwrap();
    let found = cb
        .post("/search", &json!({"iscc_codes": code, "count": 3}))
        .unwrap()
        .json()
        .unwrap();
    assert!(found.to_string().contains(&id), "{found}");
    for server in [a, b] {
        let (code, log) = server.terminate();
        assert_eq!(code, 0, "{log}");
        assert!(!log.contains("s3cret"), "{log}");
    }
}

/// `export --to milvus://…` copies a local index in batches; killed after
/// some batches, a second run resumes after the last one the target
/// acknowledged and the target ends with every entry, answering as the
/// source does; `import --from` and `export` from the Milvus index copy
/// every entry back, across many pages.
#[test]
fn an_export_killed_midway_resumes() {
    let Some(base) = server("an_export_killed_midway_resumes") else {
        return;
    };
    let remote = Remote::new(&base, "f", "export");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("idx");
    let local = local.to_str().unwrap();
    let records: Vec<Value> = common::corpus().into_iter().take(400).collect();
    ok(cli(local, &["add", "--file", "-"], &jsonl(&records)), "add");
    let mut child = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(["--path", local, "export", "--to", &remote.uri])
        .args(["--batch", "10", "--quiet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed once the target records a batch or two.
    let watcher = loop {
        if let Ok(ix) = IsccIndex::open(
            Some(remote.uri.as_ref()),
            iscc_vdb::engine::IndexOptions::default(),
        ) {
            let seen = ix.get_metadata(iscc_vdb::engine::EXPORT_KEY).unwrap();
            if seen.is_some() {
                break ix;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
    let status = child.wait().unwrap();
    let size = watcher.size().unwrap();
    drop(watcher);
    if status.success() {
        eprintln!("the export finished before the kill ({size} entries); resuming copies none");
    }
    let report = ok(
        cli(local, &["export", "--to", &remote.uri, "--batch", "50"], ""),
        "export again",
    );
    assert_eq!(report["resumed"], json!(true), "{report}");
    assert_eq!(report["total"], json!(records.len()), "{report}");
    assert!(
        report["copied"].as_u64().unwrap() < records.len() as u64,
        "{report}"
    );
    let info = ok(cli(&remote.uri, &["info"], ""), "info");
    assert_eq!(info["size"], json!(records.len()), "{info}");
    let codes: String = records
        .iter()
        .filter(|r| r["iscc_code"].is_string())
        .take(20)
        .map(|r| format!("{}\n", json!({"iscc_code": r["iscc_code"]})))
        .collect();
    let args = ["search", "--file", "-", "--exact", "--count", "10"];
    assert_eq!(
        strip_costs(ok(cli(local, &args, &codes), "search local")),
        strip_costs(ok(cli(&remote.uri, &args, &codes), "search remote"))
    );
    // Back again, in key order across pages of the Milvus index: by
    // `import --from URI` and by `export` from the URI, in small batches.
    let ids: Vec<&str> = records
        .iter()
        .filter_map(|r| r["iscc_id"].as_str())
        .collect();
    assert_eq!(ids.len(), records.len());
    let mut get = vec!["get"];
    get.extend(&ids);
    let want = ok(cli(local, &get, ""), "get local");
    let back = dir.path().join("back");
    let back = back.to_str().unwrap();
    let report = ok(
        cli(
            back,
            &["import", "--from", &remote.uri, "--batch", "50", "--quiet"],
            "",
        ),
        "import from Milvus",
    );
    assert_eq!(report["copied"], json!(records.len()), "{report}");
    assert_eq!(ok(cli(back, &get, ""), "get imported"), want);
    let back2 = dir.path().join("back2");
    let back2 = back2.to_str().unwrap();
    let report = ok(
        cli(
            &remote.uri,
            &["export", "--to", back2, "--batch", "64", "--quiet"],
            "",
        ),
        "export from Milvus",
    );
    assert_eq!(report["copied"], json!(records.len()), "{report}");
    assert_eq!(ok(cli(back2, &get, ""), "get exported"), want);
    assert_eq!(
        strip_costs(ok(cli(back, &args, &codes), "search imported")),
        strip_costs(ok(cli(local, &args, &codes), "search local"))
    );
}
