//! The web page in a real browser: headless Chromium loads the page from
//! `iscc-vdb serve` over the sample corpus, runs searches through the
//! page's own address form (`/?index=…&q=…`), and the test reads the DOM
//! after the scripts ran: the ISCC-IDs, scores and chunk rows shown must be
//! the API's answer, and a bad query must show the server's message. A
//! screenshot is written to `target/web-page.png` (the README's picture).
//!
//! Chromium is Debian's `chromium` (`scripts/setup.sh` installs it;
//! `IVDB_CHROMIUM` names another). Without one the test says so and passes
//! only when `IVDB_REQUIRE_BROWSER` is unset (the test script sets it).
#![cfg(all(feature = "cli", feature = "server"))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::serve::Serve;
use iscc_vdb::engine::{IndexOptions, IsccIndex};
use serde_json::{json, Value};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IVDB_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |d| d.join(name)))
        .find(|p| p.is_file())
}

/// Percent-encode for a URL query value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

struct Browser {
    bin: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    fn run(&self, extra: &[&str], url: &str) -> String {
        let out = Command::new(&self.bin)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--virtual-time-budget=20000",
            ])
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .args(extra)
            .arg(url)
            .output()
            .expect("run chromium");
        assert!(
            out.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The DOM after the page's scripts ran.
    fn dom(&self, url: &str) -> String {
        self.run(&["--dump-dom"], url)
    }
}

/// The text between `from` and the next `to` after it.
fn between<'a>(s: &'a str, from: &str, to: &str) -> Option<&'a str> {
    let start = s.find(from)? + from.len();
    let end = s[start..].find(to)? + start;
    Some(&s[start..end])
}

/// The cards of a list (`<ol id=…>`): ISCC-ID, shown score, the card's HTML.
fn cards(dom: &str, list: &str) -> Vec<(String, String, String)> {
    let Some(ol) = between(dom, &format!("<ol id=\"{list}\">"), "</ol>") else {
        return Vec::new();
    };
    ol.split("<li class=\"card")
        .skip(1)
        .map(|card| {
            let id = between(card, "data-iscc-id=\"", "\"").unwrap().to_string();
            let score = between(card, "<span class=\"value\">", "</span>")
                .unwrap()
                .to_string();
            (id, score, card.to_string())
        })
        .collect()
}

fn api_search(server: &Serve, body: &Value) -> Value {
    let r = server
        .client()
        .post("/indexes/default/search?limit=5&exact=false", body)
        .unwrap();
    r.json().unwrap()
}

/// The matches the API gives, as the page must show them.
fn expected(answer: &Value, list: &str) -> Vec<(String, String)> {
    answer[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["iscc_id"].as_str().unwrap().to_string(),
                format!("{:.3}", m["score"].as_f64().unwrap()),
            )
        })
        .collect()
}

fn index_with_chunks(dir: &Path) -> Vec<Value> {
    let records = common::corpus();
    let index = IsccIndex::open(Some(dir), IndexOptions::default()).unwrap();
    index.add_values(&Value::from(records.clone())).unwrap();
    let sp = |n: u64| data_encoding::BASE64URL_NOPAD.encode(&(n << 40).to_be_bytes());
    // Three entries with text chunks: two share chunk 7, the third's is
    // far from it.
    let extra = json!([
        {"units": records[0]["units"], "simprints": {"CONTENT_TEXT_V0": [
            {"simprint": sp(1), "offset": 0, "size": 500},
            {"simprint": sp(7), "offset": 500, "size": 400}]}},
        {"units": records[1]["units"], "simprints": {"CONTENT_TEXT_V0": [
            {"simprint": sp(7), "offset": 10, "size": 20}]}},
        {"units": records[2]["units"], "simprints": {"CONTENT_TEXT_V0": [
            {"simprint": data_encoding::BASE64URL_NOPAD.encode(&u64::MAX.to_be_bytes()), "offset": 0, "size": 99}]}},
    ]);
    index.add_values(&extra).unwrap();
    index.close().unwrap();
    records
}

#[test]
fn the_page_searches_and_shows_the_apis_answers() {
    let Some(bin) = chromium() else {
        assert!(
            std::env::var_os("IVDB_REQUIRE_BROWSER").is_none(),
            "IVDB_REQUIRE_BROWSER is set but no chromium was found"
        );
        eprintln!("web_page: not run (no chromium; install Debian's `chromium`)");
        return;
    };
    let browser = Browser {
        bin,
        profile: tempfile::tempdir().unwrap(),
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("idx");
    let records = index_with_chunks(&dir);
    let server = Serve::start(&["--path", dir.to_str().unwrap(), "serve", "--port", "0"]);
    let page = |q: &str| format!("{}/?index=default&count=5&q={}", server.url(), encode(q));
    let shown = |dom: &str, list: &str| -> Vec<(String, String)> {
        cards(dom, list)
            .into_iter()
            .map(|(i, s, _)| (i, s))
            .collect()
    };

    // By an ISCC-CODE.
    let code = records
        .iter()
        .find_map(|r| r["iscc_code"].as_str())
        .unwrap();
    let dom = browser.dom(&page(code));
    let want = expected(
        &api_search(&server, &json!({"iscc_code": code})),
        "global_matches",
    );
    assert!(!want.is_empty());
    assert_eq!(shown(&dom, "results"), want, "{dom}");
    assert!(
        dom.contains("id=\"fig-assets\">2003<"),
        "index figures: {dom}"
    );

    // By an ISCC-ID: more like this, the entry itself left out.
    let id = records[5]["iscc_id"].as_str().unwrap();
    let dom = browser.dom(&page(id));
    let want = expected(
        &api_search(&server, &json!({"iscc_id": id})),
        "global_matches",
    );
    let got = shown(&dom, "results");
    assert_eq!(got, want, "{dom}");
    assert!(got.iter().all(|(i, _)| i != id));

    // A pasted .iscc.json with the ISCC tools' features: chunk rows.
    let sp7 = data_encoding::BASE64URL_NOPAD.encode(&(7u64 << 40).to_be_bytes());
    let pasted = json!({"features": [{"maintype": "content", "subtype": "text",
        "version": 0, "simprints": [sp7]}]});
    let dom = browser.dom(&page(&pasted.to_string()));
    let answer = api_search(&server, &json!({"simprints": {"CONTENT_TEXT_V0": [sp7]}}));
    let want = expected(&answer, "chunk_matches");
    assert_eq!(want.len(), 2, "{answer}");
    let got = cards(&dom, "chunks");
    assert_eq!(
        got.iter()
            .map(|(i, s, _)| (i.clone(), s.clone()))
            .collect::<Vec<_>>(),
        want,
        "{dom}"
    );
    let mut segments: Vec<String> = got
        .iter()
        .map(|(_, _, html)| {
            let offset = between(html, "<td class=\"num offset\">", "<").unwrap();
            let size = between(html, "<td class=\"num size\">", "<").unwrap();
            format!("{offset}+{size}")
        })
        .collect();
    segments.sort();
    assert_eq!(segments, ["10+20", "500+400"]);

    // An entry opened: stored JSON, its code decomposed, its units.
    let rec = records
        .iter()
        .find(|r| r["iscc_code"].is_string() && r["units"].is_array())
        .unwrap();
    let id = rec["iscc_id"].as_str().unwrap();
    let dom = browser.dom(&format!("{}/?index=default&entry={id}", server.url()));
    assert_eq!(
        between(&dom, "<h2 id=\"entry-title\">", "<"),
        Some(id),
        "{dom}"
    );
    let stored = unescape(between(&dom, "<pre id=\"entry-json\">", "</pre>").unwrap());
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["iscc_code"], rec["iscc_code"]);
    let explained = between(&dom, "<pre id=\"entry-explain\">", "</pre>").unwrap();
    assert!(explained.contains("\"kind\": \"code\""), "{explained}");
    let units = between(&dom, "<table id=\"entry-units\">", "</table>").unwrap();
    for u in rec["units"].as_array().unwrap() {
        assert!(units.contains(u.as_str().unwrap()), "{units}");
    }
    assert!(units.contains("-V0<"), "unit types shown: {units}");

    // A bad query shows the server's own message.
    let bad = "ISCC:KECTSPT3QOO7HTQ4";
    let dom = browser.dom(&page(bad));
    let message = api_search(&server, &json!({"iscc_code": bad}))["detail"]
        .as_str()
        .unwrap()
        .to_string();
    let error = between(&dom, "<div id=\"error\" role=\"alert\">", "</div>")
        .unwrap_or_else(|| panic!("no visible error: {dom}"));
    assert!(unescape(error).contains(&message), "{error} vs {message}");

    // The picture for the README.
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../web-page.png");
    let _ = std::fs::remove_file(&out);
    browser.run(
        &[
            "--window-size=1200,900",
            &format!("--screenshot={}", out.display()),
        ],
        &page(code),
    );
    let png = std::fs::read(&out).expect("a screenshot");
    assert_eq!(&png[..4], b"\x89PNG");
}
