//! The REST server as a process (`iscc-vdb serve`) over real HTTP on a
//! free loopback port: every endpoint, the error envelopes, the API key,
//! limits, 50 concurrent searches, SIGTERM and restart.
#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use common::serve::Serve;

use std::path::Path;
use std::process::Command;

use iscc_vdb::testing::client::{Client, Response};
use serde_json::{json, Value};

const KEY: &str = "test-key-0123";

/// A running `iscc-vdb serve` on an index, whose client sends the key.
struct Server(Serve);

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        Server::start_with_key_env(dir, extra, None)
    }

    /// Start with `ISCC_VDB_API_KEY` set to `key` (unset when `None`).
    fn start_with_key_env(dir: &Path, extra: &[&str], key: Option<&str>) -> Server {
        let mut args = vec!["--path", dir.to_str().unwrap(), "serve", "--port", "0"];
        args.extend_from_slice(extra);
        let env: Vec<(&str, &str)> = key.map(|k| ("ISCC_VDB_API_KEY", k)).into_iter().collect();
        Server(Serve::start_env(&args, &env))
    }

    fn client(&self) -> Client {
        self.0.client().with_header("X-API-Key", KEY)
    }

    /// SIGTERM, then the exit status and the rest of the log.
    fn terminate(self) -> (i32, String) {
        self.0.terminate()
    }
}

impl std::ops::Deref for Server {
    type Target = Serve;
    fn deref(&self) -> &Serve {
        &self.0
    }
}

/// Status, and the envelope checked for shape; returns `data` or `error`.
fn envelope(r: &Response) -> (u16, Value) {
    let v = r.json().unwrap();
    assert_eq!(r.header("content-type"), Some("application/json"));
    let obj = v.as_object().expect("envelope is an object");
    assert_eq!(obj.len(), 3, "{v}");
    if r.status == 200 {
        assert_eq!(v["status"], "success", "{v}");
        assert!(v["error"].is_null());
        (200, v["data"].clone())
    } else {
        assert_eq!(v["status"], "error", "{v}");
        assert!(v["data"].is_null());
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        (r.status, v["error"].clone())
    }
}

fn ok(r: std::io::Result<Response>) -> Value {
    let r = r.unwrap();
    let (status, data) = envelope(&r);
    assert_eq!(status, 200, "{data}");
    data
}

/// Expect an error status and code.
fn fails(r: std::io::Result<Response>, status: u16, code: &str) -> String {
    let r = r.unwrap();
    let (got, error) = envelope(&r);
    assert_eq!(
        (got, error["code"].as_str().unwrap()),
        (status, code),
        "{error}"
    );
    error["message"].as_str().unwrap().to_string()
}

/// A search body for a corpus record: by its units, else by its code.
fn query(rec: &Value) -> Value {
    if rec["units"].is_array() {
        json!({"units": rec["units"], "count": 10})
    } else {
        json!({"iscc_codes": rec["iscc_code"], "count": 10})
    }
}

#[test]
fn rest_api_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let records = common::corpus();
    let server = Server::start(
        &dir,
        &[
            "--api-key",
            KEY,
            "--max-body",
            "400000",
            "--max-batch",
            "500",
        ],
    );
    let mut c = server.client();

    // --- health, auth, OpenAPI -------------------------------------------
    let mut anon = Client::new(server.addr);
    let h = ok(anon.get("/healthz"));
    assert_eq!(h["status"], "ok");
    fails(anon.get("/info"), 401, "UNAUTHORIZED");
    fails(
        anon.post("/search", &json!({"iscc_codes": "x"})),
        401,
        "UNAUTHORIZED",
    );
    let mut wrong = Client::new(server.addr).with_header("X-API-Key", "test-key-0124");
    assert!(fails(wrong.get("/info"), 401, "UNAUTHORIZED").contains("wrong"));
    let doc = c.get("/openapi.json").unwrap();
    assert_eq!(doc.status, 200);
    let doc = doc.json().unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["paths"]["/search"]["post"].is_object());
    assert_eq!(anon.get("/openapi.json").unwrap().status, 401);

    // --- add: the corpus in batches of 500 -------------------------------
    for chunk in records.chunks(500) {
        let ids = ok(c.post("/add", &json!({ "entries": chunk })));
        let want: Vec<&Value> = chunk.iter().map(|r| &r["iscc_id"]).collect();
        assert_eq!(ids.as_array().unwrap().iter().collect::<Vec<_>>(), want);
    }
    let info = ok(c.get("/info"));
    assert_eq!(info["size"], 2000);
    // a single entry object, ID generated
    let code = records[3]["iscc_code"].as_str().unwrap();
    let new = ok(c.post(
        "/add",
        &json!({"entries": {"iscc_code": code, "title": "t"}}),
    ));
    let new_id = new[0].as_str().unwrap().to_string();

    // --- bad input ---------------------------------------------------------
    let raw = |c: &mut Client, path: &str, body: &[u8]| c.request("POST", path, Some(body), &[]);
    fails(raw(&mut c, "/add", b"{\"entries\": ["), 400, "INVALID_JSON");
    fails(raw(&mut c, "/search", b"not json"), 400, "INVALID_JSON");
    fails(raw(&mut c, "/add", b""), 400, "INVALID_JSON");
    let m = fails(
        c.post(
            "/add",
            &json!({"entries": [{"iscc_code": code}, {"iscc_code": "ISCC:KACBROKEN"}]}),
        ),
        400,
        "INVALID_ISCC",
    );
    assert!(
        m.contains("entries[1]") && m.contains("ISCC:KACBROKEN"),
        "{m}"
    );
    fails(
        c.post("/add", &json!({"entry": {}})),
        400,
        "INVALID_ARGUMENT",
    );
    fails(
        c.post("/add", &json!({"entries": []})),
        400,
        "INVALID_ARGUMENT",
    );
    fails(
        c.post("/add", &json!({"entries": [{"title": "no code"}]})),
        400,
        "INVALID_ARGUMENT",
    );
    fails(
        c.post("/search", &json!({"iscc_codes": "ISCC:XX"})),
        400,
        "INVALID_ISCC",
    );
    fails(
        c.post("/search", &json!({"count": 3})),
        400,
        "INVALID_ARGUMENT",
    );
    fails(
        c.post("/search", &json!({"iscc_codes": code, "count": -1})),
        400,
        "INVALID_ARGUMENT",
    );
    fails(c.get("/get/ISCC:MEIGGGMBT3LBUEH7"), 400, "WRONG_REALM");
    fails(c.get("/get/nonsense"), 400, "INVALID_ISCC");
    // limits: batch and body
    let many: Vec<&str> = std::iter::repeat_n("ISCC:MAIGGGMBUD3TAUAR", 501).collect();
    fails(
        c.post("/get", &json!({"iscc_ids": many})),
        413,
        "BATCH_TOO_LARGE",
    );
    let big = json!({"entries": [{"iscc_code": code, "blob": "x".repeat(500_000)}]});
    fails(c.post("/add", &big), 413, "PAYLOAD_TOO_LARGE");
    // routing
    fails(c.get("/nowhere"), 404, "NOT_FOUND");
    fails(c.delete("/search"), 405, "METHOD_NOT_ALLOWED");
    assert_eq!(
        ok(c.get("/info"))["size"],
        2001,
        "nothing written by bad requests"
    );

    // --- get ----------------------------------------------------------------
    let r = &records[42];
    let id = r["iscc_id"].as_str().unwrap();
    let e = ok(c.get(&format!("/get/{id}")));
    assert_eq!(
        (&e["iscc_code"], &e["group"]),
        (&r["iscc_code"], &r["group"])
    );
    let absent = "ISCC:MAIGGGMBUD3TAUAR";
    assert!(fails(c.get(&format!("/get/{absent}")), 404, "NOT_FOUND").contains(absent));
    let both = ok(c.post("/get", &json!({"iscc_ids": [id, absent, new_id]})));
    assert_eq!(both[0]["iscc_id"], r["iscc_id"]);
    assert!(both[1].is_null());
    assert_eq!(both[2]["title"], "t");

    // --- search -------------------------------------------------------------
    let rc = r["iscc_code"].as_str().unwrap();
    let m = ok(c.post("/search", &json!({"iscc_codes": rc, "count": 5})));
    let found = m["matches"].as_array().unwrap();
    assert!(
        found.len() <= 5
            && found
                .iter()
                .any(|x| x["iscc_id"] == id && x["score"] == 1.0)
    );
    assert!(m["instance_matches"]
        .as_array()
        .unwrap()
        .contains(&r["iscc_id"]));
    let units = &r["units"];
    let mu = ok(c.post(
        "/search",
        &json!({"units": units, "count": 5, "exact": true}),
    ));
    assert_eq!(mu["matches"][0]["score"], 1.0);
    let with_code: Vec<&Value> = records
        .iter()
        .filter(|r| r["iscc_code"].is_string())
        .take(20)
        .collect();
    let codes: Vec<&Value> = with_code.iter().map(|r| &r["iscc_code"]).collect();
    let batch = ok(c.post("/search", &json!({"iscc_codes": codes, "count": 10})));
    let batch = batch.as_array().unwrap();
    assert_eq!(batch.len(), 20);
    for (res, rec) in batch.iter().zip(&with_code) {
        assert!(res["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["iscc_id"] == rec["iscc_id"]));
    }
    let ub = ok(c.post("/search", &json!({"units": [units, records[0]["units"]]})));
    assert_eq!(ub.as_array().unwrap().len(), 2);

    // --- 50 concurrent searches, each on its own connection ---------------
    let addr = server.addr;
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let rec = records[i * 37].clone();
            std::thread::spawn(move || {
                let mut c = Client::new(addr).with_header("X-API-Key", KEY);
                let m = ok(c.post("/search", &query(&rec)));
                m["matches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["iscc_id"] == rec["iscc_id"] && x["score"] == 1.0)
            })
        })
        .collect();
    let hits = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .filter(|&b| b)
        .count();
    assert_eq!(
        hits, 50,
        "every concurrent search succeeded and found its record"
    );

    // --- a CLI beside the server: reads work, a second writer is refused --
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
            .args(["--path", dir.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["add", "--iscc-code", code]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["get", id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // and a read-only server beside the writer answers reads, refuses writes
    let ro = Server::start(&dir, &["--read-only"]);
    let mut rc_client = Client::new(ro.addr);
    assert_eq!(ok(rc_client.get(&format!("/get/{id}")))["iscc_id"], id);
    fails(
        rc_client.post("/add", &json!({"entries": {"iscc_code": code}})),
        409,
        "READ_ONLY",
    );
    fails(rc_client.post("/save", &json!({})), 409, "READ_ONLY");
    let (status, _) = ro.terminate();
    assert_eq!(status, 0);

    // --- remove, rebuild, save ---------------------------------------------
    let rep = ok(c.delete(&format!("/remove/{id}")));
    assert_eq!(rep["removed"], json!([id]));
    fails(c.delete(&format!("/remove/{id}")), 404, "NOT_FOUND");
    fails(c.get(&format!("/get/{id}")), 404, "NOT_FOUND");
    let id2 = records[43]["iscc_id"].as_str().unwrap();
    let rep = ok(c.post("/remove", &json!({"iscc_ids": [id2, absent]})));
    assert_eq!(
        (&rep["removed"], &rep["not_found"]),
        (&json!([id2]), &json!([absent]))
    );
    let m = ok(c.post("/search", &json!({"iscc_codes": rc, "count": 50})));
    assert!(m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["iscc_id"] != id));
    let info = ok(c.post("/rebuild", &json!({})));
    assert_eq!(info["size"], 1999);
    let again = ok(c.post("/search", &json!({"iscc_codes": codes, "count": 10})));
    // The same matches; their cost may fall (the rebuild drops dead rows).
    for field in ["matches", "instance_matches"] {
        assert_eq!(
            again.as_array().unwrap()[5][field],
            batch[5][field],
            "rebuild keeps results"
        );
    }
    let info = ok(c.post("/save", &json!({})));
    assert_eq!(info["journal_pending"], 0);

    // an add after the last save, then SIGTERM: saved on the way out
    let late = ok(c.post(
        "/add",
        &json!({"entries": {"units": r["units"], "note": "late"}}),
    ));
    let late = late[0].as_str().unwrap().to_string();
    let before = ok(c.post("/search", &json!({"iscc_codes": codes, "count": 10})));
    let (status, log) = server.terminate();
    assert_eq!(status, 0, "{log}");
    assert!(log.contains("saved"), "{log}");

    // --- restart: everything is there ------------------------------------------
    let server = Server::start(&dir, &["--api-key", KEY]);
    let mut c = server.client();
    let info = ok(c.get("/info"));
    assert_eq!(info["size"], 2000);
    assert_eq!(info["journal_pending"], 0, "saved at shutdown");
    assert_eq!(ok(c.get(&format!("/get/{late}")))["note"], "late");
    fails(c.get(&format!("/get/{id}")), 404, "NOT_FOUND");
    let after = ok(c.post("/search", &json!({"iscc_codes": codes, "count": 10})));
    assert_eq!(after, before, "same results after restart");
    let (status, _) = server.terminate();
    assert_eq!(status, 0);
}

#[test]
fn serve_refuses_a_locked_index_and_a_busy_port() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let first = Server::start(&dir, &[]);
    // a second writer on the same directory
    let out = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(["--path", dir.to_str().unwrap(), "serve", "--port", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lock"));
    // the port of the first server, on another directory
    let other = tmp.path().join("other");
    let out = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(["--path", other.to_str().unwrap(), "serve"])
        .args(["--port", &first.addr.port().to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("binding"));
    let (status, _) = first.terminate();
    assert_eq!(status, 0);
}

#[test]
fn acknowledged_adds_survive_sigkill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let records = common::corpus();
    let server = Server::start(&dir, &[]);
    let mut c = Client::new(server.addr);
    let mut acked = Vec::new();
    for chunk in records[..600].chunks(100) {
        let ids = ok(c.post("/add", &json!({ "entries": chunk })));
        acked.extend(ids.as_array().unwrap().iter().cloned());
    }
    // No save, no graceful shutdown.
    let mut server = server;
    server.0.kill();
    drop(server);
    // A reading CLI finds the journal of the dead writer, replays it (nobody
    // holds the lock) and sees every acknowledged entry in search.
    // Only the similarity units: an INSTANCE match would come from LMDB and
    // prove nothing about the unit indexes.
    let rec = &records[599];
    let units: Vec<String> = rec["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap().to_string())
        .filter(|u| !u.starts_with("ISCC:I"))
        .collect();
    assert!(units.len() >= 2);
    let out = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(["--path", dir.to_str().unwrap(), "search", "--units"])
        .args(&units)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    let hit = m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["iscc_id"] == rec["iscc_id"])
        .expect("the entry is found by its similarity units");
    assert_eq!(hit["score"], 1.0);
    assert!(!hit["instance"].as_bool().unwrap());
    // And a restarted server has them all.
    let server = Server::start(&dir, &[]);
    let mut c = Client::new(server.addr);
    assert_eq!(ok(c.get("/info"))["size"], 600);
    let got = ok(c.post("/get", &json!({ "iscc_ids": acked })));
    assert!(got.as_array().unwrap().iter().all(|e| !e.is_null()));
    let (status, _) = server.terminate();
    assert_eq!(status, 0);
}

#[test]
fn api_key_from_the_environment_and_access_log() {
    let tmp = tempfile::tempdir().unwrap();
    let server =
        Server::start_with_key_env(&tmp.path().join("idx"), &["--access-log"], Some("env-key"));
    let mut anon = Client::new(server.addr);
    fails(anon.get("/info"), 401, "UNAUTHORIZED");
    assert_eq!(ok(anon.get("/healthz"))["status"], "ok");
    let mut c = Client::new(server.addr).with_header("X-API-Key", "env-key");
    assert_eq!(ok(c.get("/info"))["size"], 0);
    let (status, log) = server.terminate();
    assert_eq!(status, 0);
    assert!(
        log.contains("GET /info 401") && log.contains("GET /info 200"),
        "{log}"
    );
}

#[test]
fn granular_features_over_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Server::start(&tmp.path().join("idx"), &["--api-key", KEY]);
    let mut c = server.client();
    let records = common::corpus();
    let sp = |n: u64| data_encoding::BASE64URL_NOPAD.encode(&(n << 40).to_be_bytes());
    // Entries 0 and 1 share chunk 7; entry 2 holds it one bit off; the
    // ISCC tools' form and iscc-search's form.
    let mut entries: Vec<Value> = records[..3].to_vec();
    entries[0]["features"] = json!([{"maintype": "content", "subtype": "text", "version": 0,
        "simprints": [sp(1), sp(7)], "offsets": [0, 500], "sizes": [500, 400]}]);
    entries[1]["simprints"] =
        json!({"CONTENT_TEXT_V0": [{"simprint": sp(7), "offset": 10, "size": 20}]});
    entries[2]["features"] = json!([{"maintype": "content", "subtype": "text",
        "simprints": [data_encoding::BASE64URL_NOPAD.encode(&((7u64 << 40) | 1).to_be_bytes())]}]);
    ok(c.post("/add", &json!({ "entries": entries })));
    let body = json!({"features": [{"maintype": "content", "subtype": "text", "simprints": [sp(7)]}],
        "detail": true, "count": 5});
    let found = ok(c.post("/search", &body));
    let chunks = found["chunk_matches"].as_array().unwrap();
    let ids: Vec<&str> = chunks
        .iter()
        .map(|m| m["iscc_id"].as_str().unwrap())
        .collect();
    let id = |i: usize| records[i]["iscc_id"].as_str().unwrap();
    // Exact matches first, then the one a bit off.
    assert_eq!(ids.len(), 3);
    assert!(
        ids[..2].contains(&id(0)) && ids[..2].contains(&id(1)),
        "{ids:?}"
    );
    assert_eq!(ids[2], id(2));
    let first = &chunks[0]["types"]["CONTENT-TEXT-V0"];
    assert_eq!(
        (first["matches"].clone(), first["queried"].clone()),
        (json!(1), json!(1))
    );
    let segment = |m: &Value| {
        let c = &m["types"]["CONTENT-TEXT-V0"]["chunks"][0];
        (c["offset"].clone(), c["size"].clone(), c["freq"].clone())
    };
    let of = |i: usize| chunks.iter().find(|m| m["iscc_id"] == id(i)).unwrap();
    assert_eq!(segment(of(0)), (json!(500), json!(400), json!(3)));
    assert_eq!(segment(of(1)), (json!(10), json!(20), json!(3)));
    assert_eq!(found["matches"], json!([]));
    // "More like this": entry 0's units and features, without entry 0.
    let like = ok(c.post("/search", &json!({"iscc_id": id(0)})));
    let liked: Vec<&str> = like["chunk_matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["iscc_id"].as_str().unwrap())
        .collect();
    assert!(!liked.contains(&id(0)) && liked.contains(&id(1)), "{like}");
    // Bad input names the field.
    let m = fails(
        c.post(
            "/search",
            &json!({"features": [{"maintype": "content", "subtype": "text",
            "simprints": ["AAAA"]}]}),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(m.contains("features[0]"), "{m}");
    let m = fails(
        c.post(
            "/search",
            &json!({"simprints": {"CONTENT_TEXT_V0": [{"simprint": sp(1) + &sp(1)}]}}),
        ),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(m.contains("128 bits"), "{m}");
    let info = ok(c.get("/info"));
    let t = &info["simprints"]["CONTENT-TEXT-V0"];
    assert_eq!(
        (t["bits"].clone(), t["chunks"].clone(), t["rows"].clone()),
        (json!(64), json!(4), json!(4))
    );
}
