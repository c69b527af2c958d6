//! iscc-search's REST API on `iscc-vdb serve --root` (and `--path`) as a
//! process over real HTTP: answers equal to the engine's own, named
//! indexes opened lazily under a cap, restarts, read-only roots, the
//! browser guards, and SIGKILL while indexes are created and deleted.
#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::serve::Serve;
use iscc_vdb::engine::{IndexOptions, IsccIndex, Query, SearchParams};
use iscc_vdb::testing::client::Response;
use serde_json::{json, Value};

fn root_server(dir: &Path, extra: &[&str]) -> Serve {
    let mut args = vec!["serve", "--root", dir.to_str().unwrap(), "--port", "0"];
    args.extend_from_slice(extra);
    Serve::start(&args)
}

/// Status and JSON body.
fn answer(r: std::io::Result<Response>) -> (u16, Value) {
    let r = r.unwrap();
    let body = if r.body.is_empty() {
        Value::Null
    } else {
        r.json().unwrap()
    };
    (r.status, body)
}

/// The `detail` of an error answer with `status`.
fn detail(r: std::io::Result<Response>, status: u16) -> String {
    let (got, body) = answer(r);
    assert_eq!(got, status, "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    body["detail"].as_str().unwrap().to_string()
}

/// Corpus records as iscc-search assets (its fields only).
fn assets(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut a = json!({"iscc_id": r["iscc_id"], "metadata": {"n": i}});
            if r["iscc_code"].is_string() {
                a["iscc_code"] = r["iscc_code"].clone();
            }
            if r["units"].as_array().is_some_and(|u| u.len() >= 2) {
                a["units"] = r["units"].clone();
            }
            a
        })
        .filter(|a| a.get("iscc_code").is_some() || a.get("units").is_some())
        .collect()
}

#[test]
fn answers_equal_the_engines_and_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let records = common::corpus();
    let assets = assets(&records);
    let server = root_server(&root, &[]);
    let mut c = server.client();
    assert_eq!(answer(c.get("/indexes")), (200, json!([])));
    let (status, made) = answer(c.post("/indexes", &json!({"name": "corpus"})));
    assert_eq!((status, &made["assets"]), (201, &json!(0)), "{made}");
    for batch in assets.chunks(500) {
        let (status, added) = answer(c.post("/indexes/corpus/assets", &json!(batch)));
        assert_eq!(status, 201, "{added}");
        assert!(added
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "created"));
    }
    // The same entries in an engine of its own: every answer must agree.
    let local = IsccIndex::open(Some(&tmp.path().join("local")), IndexOptions::default()).unwrap();
    local.add_values(&json!(assets)).unwrap();
    let params = SearchParams {
        count: 10,
        detail: true,
        ..SearchParams::default()
    };
    for a in assets.iter().step_by(37) {
        let query = json!({"iscc_code": a["iscc_code"], "units": a["units"]});
        let query: serde_json::Map<String, Value> = query
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let (status, got) = answer(c.post("/indexes/corpus/search?limit=10", &json!(query)));
        assert_eq!(status, 200, "{got}");
        let q = match query.get("units") {
            Some(u) => Query::units(u.as_array().unwrap().iter().map(|s| s.as_str().unwrap())),
            None => Query::code(query["iscc_code"].as_str().unwrap()),
        };
        let want = local.search(&q, &params).unwrap();
        let got_ids: Vec<(&str, f64)> = got["global_matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["iscc_id"].as_str().unwrap(), m["score"].as_f64().unwrap()))
            .collect();
        let want_ids: Vec<(&str, f64)> = want
            .matches
            .iter()
            .map(|m| (m.iscc_id.as_str(), f64::from(m.score)))
            .collect();
        assert_eq!(got_ids, want_ids, "query {query:?}");
        for (m, w) in got["global_matches"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&want.matches)
        {
            for (t, s) in &w.units {
                let name = t.replace('-', "_");
                assert_eq!(m["types"][&name].as_f64(), Some(f64::from(s.score)), "{m}");
            }
            assert_eq!(
                m["types"].get("INSTANCE_NONE_V0").is_some(),
                w.instance,
                "{m}"
            );
            let stored = assets
                .iter()
                .find(|a| a["iscc_id"] == m["iscc_id"])
                .unwrap();
            assert_eq!(m["metadata"], stored["metadata"], "{m}");
        }
    }
    // An identical re-add says `updated`; a GET returns the asset as stored.
    let (_, again) = answer(c.post("/indexes/corpus/assets", &json!([assets[3]])));
    assert_eq!(again[0]["status"], "updated");
    let id = assets[3]["iscc_id"].as_str().unwrap();
    let (status, got) = answer(c.get(&format!("/indexes/corpus/assets/{id}")));
    assert_eq!((status, &got["metadata"]), (200, &assets[3]["metadata"]));
    let (code, _) = server.terminate();
    assert_eq!(code, 0);
    // After a restart the index is found again, whole.
    let server = root_server(&root, &[]);
    let mut c = server.client();
    let (_, listed) = answer(c.get("/indexes"));
    assert_eq!(listed[0]["name"], "corpus");
    assert_eq!(listed[0]["assets"].as_u64(), Some(assets.len() as u64));
    assert!(
        listed[0]["unit_types"]["DATA_NONE_V0"]["rows"]
            .as_u64()
            .unwrap()
            > 0
    );
}

#[test]
fn a_capped_set_of_open_indexes_serves_many() {
    let tmp = tempfile::tempdir().unwrap();
    let server = root_server(&tmp.path().join("root"), &["--max-open", "2"]);
    let mut c = server.client();
    let records = common::corpus();
    let names = ["a", "b", "c", "d", "e"];
    for (i, name) in names.iter().enumerate() {
        assert_eq!(answer(c.post("/indexes", &json!({"name": name}))).0, 201);
        let batch = assets(&records[i * 20..(i + 1) * 20]);
        assert_eq!(
            answer(c.post(&format!("/indexes/{name}/assets"), &json!(batch))).0,
            201
        );
    }
    // Round and round: each index is reopened after being pushed out.
    for _ in 0..3 {
        for (i, name) in names.iter().enumerate() {
            let (status, shown) = answer(c.get(&format!("/indexes/{name}")));
            assert_eq!(status, 200);
            let want = assets(&records[i * 20..(i + 1) * 20]).len();
            assert_eq!(shown["assets"].as_u64(), Some(want as u64), "{name}");
            let id = records[i * 20]["iscc_id"].as_str().unwrap();
            let (status, found) = answer(c.post(
                &format!("/indexes/{name}/search?limit=3"),
                &json!({"iscc_id": id}),
            ));
            assert_eq!(status, 200, "{found}");
        }
    }
    assert_eq!(answer(c.delete("/indexes/c")).0, 204);
    let (_, listed) = answer(c.get("/indexes"));
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["a", "b", "d", "e"]);
    let m = detail(c.get("/indexes/c/assets/ISCC:MAIGGGMBT3LBUEH7"), 404);
    assert!(m.contains("'c' not found"), "{m}");
}

#[test]
fn bad_input_gets_its_status_and_detail() {
    let tmp = tempfile::tempdir().unwrap();
    let server = root_server(&tmp.path().join("root"), &[]);
    let mut c = server.client();
    assert_eq!(answer(c.post("/indexes", &json!({"name": "x"}))).0, 201);
    for (body, needle) in [
        (json!({"name": "Bad"}), "lower-case"),
        (json!({"name": 5}), "name"),
        (json!({}), "name"),
    ] {
        let m = detail(c.post("/indexes", &body), 422);
        assert!(m.contains(needle), "{body}: {m}");
    }
    let m = detail(c.get("/indexes/Bad"), 400);
    assert!(m.contains("index name"), "{m}");
    let m = detail(c.post("/indexes/x/assets", &json!({"iscc_id": "x"})), 422);
    assert!(m.contains("array"), "{m}");
    let m = detail(
        c.post(
            "/indexes/x/assets",
            &json!([{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7",
            "iscc_code": "ISCC:AAAAAAAAAAAAAAAAAAAA"}]),
        ),
        400,
    );
    assert!(m.contains("asset 0") || m.contains("ISCC"), "{m}");
    assert_eq!(
        answer(c.get("/indexes/x")).1["assets"],
        0,
        "nothing half-written"
    );
    let m = detail(c.get("/indexes/x/search"), 422);
    assert!(m.contains("iscc_code"), "{m}");
    let m = detail(c.get("/indexes/x/search?iscc_code=nope"), 400);
    assert!(m.contains("ISCC-CODE"), "{m}");
    let m = detail(
        c.post(
            "/indexes/x/search?limit=0",
            &json!({"iscc_code": "ISCC:KECTSPT3QOO7HTQ4UDAB7TR7B46A6W2OFEUSTWPXWB5K3BSNOTBSCHY"}),
        ),
        422,
    );
    assert!(m.contains("limit"), "{m}");
    let m = detail(
        c.post(
            "/indexes/x/search",
            &json!({"iscc_id": "ISCC:MAIGGGMBT3LBUEH7"}),
        ),
        404,
    );
    assert!(m.contains("ISCC:MAIGGGMBT3LBUEH7"), "{m}");
    let m = detail(c.get("/indexes/x/assets/nope"), 400);
    assert!(m.contains("ISCC-ID"), "{m}");
}

/// A raw HTTP/1.1 request (the test client always sends JSON).
fn raw(addr: std::net::SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn a_cross_site_form_post_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = root_server(&tmp.path().join("root"), &[]);
    let mut c = server.client();
    assert_eq!(answer(c.post("/indexes", &json!({"name": "x"}))).0, 201);
    let body = r#"[{"iscc_id":"ISCC:MAIGGGMBT3LBUEH7","iscc_code":"ISCC:KECTSPT3QOO7HTQ4UDAB7TR7B46A6W2OFEUSTWPXWB5K3BSNOTBSCHY"}]"#;
    let host = server.addr;
    // What a page on another site can send without asking first: a form
    // (or text/plain) POST, with its Origin…
    let form = format!(
        "POST /indexes/x/assets HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw(host, &form);
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("\"detail\""), "{text}");
    // …and without one (an old browser): refused as not JSON.
    let plain = format!(
        "POST /indexes/x/assets HTTP/1.1\r\nHost: {host}\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, text) = raw(host, &plain);
    assert_eq!(status, 415, "{text}");
    // DNS rebinding: a foreign Host name is refused too.
    let rebound = format!(
        "POST /indexes/x/assets HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw(host, &rebound).0, 403);
    assert_eq!(answer(c.get("/indexes/x")).1["assets"], 0);
    // The same body as JSON from the page's own origin is written.
    let (status, _) = answer(c.request(
        "POST",
        "/indexes/x/assets",
        Some(body.as_bytes()),
        &[("Origin", &format!("http://{host}"))],
    ));
    assert_eq!(status, 201);
    assert_eq!(answer(c.get("/indexes/x")).1["assets"], 1);
}

#[test]
fn keys_read_only_roots_and_single_index_servers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    {
        let server = root_server(&root, &["--api-key", "k3y"]);
        let mut c = server.client();
        assert_eq!(detail(c.get("/indexes"), 401), "Unauthorized");
        let mut keyed = server.client().with_header("X-API-Key", "k3y");
        assert_eq!(answer(keyed.post("/indexes", &json!({"name": "x"}))).0, 201);
        // Public: the page, probes and documents.
        for path in [
            "/healthz",
            "/readyz",
            "/status",
            "/docs",
            "/openapi/openapi.json",
        ] {
            assert_eq!(c.get(path).unwrap().status, 200, "{path}");
        }
        let page = c
            .request("GET", "/", None, &[("Accept", "text/html")])
            .unwrap();
        assert_eq!(page.status, 200);
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        let r = c.get("/playground").unwrap();
        assert_eq!((r.status, r.header("location")), (301, Some("/")));
        server.terminate();
    }
    let server = root_server(&root, &["--read-only"]);
    let mut c = server.client();
    assert_eq!(answer(c.get("/indexes/x")).0, 200);
    let m = detail(c.post("/indexes", &json!({"name": "y"})), 409);
    assert!(m.contains("read-only"), "{m}");
    assert!(detail(c.delete("/indexes/x"), 409).contains("read-only"));
    drop(server);
    // serve --path: its index is "default", and the set is fixed.
    let dir = tmp.path().join("one");
    let server = Serve::start(&["--path", dir.to_str().unwrap(), "serve", "--port", "0"]);
    let mut c = server.client();
    let (_, listed) = answer(c.get("/indexes"));
    assert_eq!(listed[0]["name"], "default");
    assert!(detail(c.post("/indexes", &json!({"name": "y"})), 409).contains("--root"));
    assert!(detail(c.delete("/indexes/default"), 409).contains("one index"));
}

#[test]
fn sigkill_while_creating_and_deleting_leaves_whole_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let records = common::corpus();
    let batch = assets(&records[..30]);
    for round in 0..6u64 {
        let server = root_server(&root, &[]);
        let addr = server.addr;
        let batch = batch.clone();
        let worker = std::thread::spawn(move || {
            let mut c = iscc_vdb::testing::client::Client::new(addr);
            for i in 0..1000 {
                let name = format!("r{round}i{i}");
                if c.post("/indexes", &json!({"name": name})).is_err() {
                    return;
                }
                let _ = c.post(&format!("/indexes/{name}/assets"), &json!(batch));
                if i % 2 == 1 && c.delete(&format!("/indexes/r{round}i{}", i - 1)).is_err() {
                    return;
                }
            }
        });
        std::thread::sleep(Duration::from_millis(150 + 97 * round));
        drop(server); // SIGKILL
        worker.join().unwrap();
    }
    // Every name listed opens whole; nothing half-made is left.
    let server = root_server(&root, &[]);
    let mut c = server.client();
    let (_, listed) = answer(c.get("/indexes"));
    let listed = listed.as_array().unwrap();
    assert!(!listed.is_empty());
    for ix in listed {
        let n = ix["assets"].as_u64().unwrap();
        assert!(n == 0 || n == batch.len() as u64, "{ix}");
    }
    let leftovers: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
