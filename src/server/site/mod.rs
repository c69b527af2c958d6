//! The web page and the public documents (no API key needed; the page
//! asks for one and calls the API with it):
//!
//! ```text
//! GET /                       the page to a browser (Accept: text/html), else a JSON summary
//! GET /static/{app.js,style.css}
//! GET /docs                   every operation of both APIs, as HTML
//! GET /playground             301 → / (iscc-search's retired page)
//! GET /status                 version and mode (iscc-search's status)
//! GET /openapi/openapi.{json,yaml}  the iscc-search API as this server serves it
//! ```
//!
//! The files are embedded in the binary: the page works offline. Its
//! Content-Security-Policy allows scripts, styles and connections to this
//! origin only, so the API key the page keeps never leaves for another.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::envelope::{ApiError, ServerCode};
use super::AppState;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// What the page may load and where it may connect: this origin only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
    frame-ancestors 'none'";

/// The routes (outside the API key).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(root))
        .route("/static/{file}", get(asset))
        .route("/docs", get(docs))
        .route("/playground", get(playground))
        .route("/status", get(status))
        .route("/openapi/{file}", get(compat_document))
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn page(html: String) -> Response {
    let mut response = with_type(html, "text/html; charset=utf-8");
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// `GET /`: the page for browsers, a JSON summary for API clients.
async fn root(headers: HeaderMap) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let mut response = if html {
        page(INDEX_HTML.to_string())
    } else {
        with_type(
            json!({
                "title": "iscc-vdb",
                "description": "A nearest-neighbour search engine for ISCC codes",
                "version": crate::VERSION,
                "docs": "/docs",
                "openapi": "/openapi.json",
                "iscc_search_openapi": "/openapi/openapi.json",
                "mode": "normal",
            })
            .to_string(),
            "application/json",
        )
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// `GET /static/{file}`.
async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => with_type(APP_JS, "text/javascript; charset=utf-8"),
        "style.css" => with_type(STYLE_CSS, "text/css; charset=utf-8"),
        _ => ApiError::server(ServerCode::NoEndpoint, format!("no file /static/{file}"))
            .into_response(),
    }
}

/// `GET /playground` → 301 `/`.
async fn playground() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, "/")]).into_response()
}

/// `GET /status`.
async fn status() -> Response {
    with_type(
        json!({"version": crate::VERSION, "mode": "normal", "network": null}).to_string(),
        "application/json",
    )
}

/// `GET /openapi/openapi.json` or `.yaml` (the JSON text, which is YAML).
async fn compat_document(State(state): State<Arc<AppState>>, Path(file): Path<String>) -> Response {
    let doc = super::compat::document(state.api_key.is_some());
    match file.as_str() {
        "openapi.json" => with_type(doc, "application/json"),
        "openapi.yaml" => with_type(doc, "application/yaml"),
        _ => ApiError::server(ServerCode::NoEndpoint, format!("no file /openapi/{file}"))
            .into_response(),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The operations of an OpenAPI document as table rows.
fn operations(doc: &Value) -> String {
    let mut rows = String::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in ["get", "post", "delete"] {
            if let Some(op) = item.get(method) {
                let summary = op["summary"].as_str().unwrap_or("");
                rows.push_str(&format!(
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                    method.to_uppercase(),
                    escape(path),
                    escape(summary)
                ));
            }
        }
    }
    rows
}

/// `GET /docs`: both APIs' operations, with links to their documents.
async fn docs(State(state): State<Arc<AppState>>) -> Response {
    let key = state.api_key.is_some();
    let own: Value = serde_json::from_str(&super::openapi::document(key, None, &state.limits))
        .unwrap_or(Value::Null);
    let compat: Value = serde_json::from_str(&super::compat::document(key)).unwrap_or(Value::Null);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>iscc-vdb API</title><link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><header><h1>iscc-vdb API</h1><p class=\"tagline\">version {version} · \
         <a href=\"/\">search page</a></p></header>\
         <h2>iscc-search's API</h2><p>Named indexes, as iscc-search 0.3.3 serves them \
         (<a href=\"/openapi/openapi.json\">OpenAPI document</a>).</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>{compat}</tbody></table>\
         <h2>iscc-vdb's own API</h2><p>The index of <code>serve --path</code> \
         (<a href=\"/openapi.json\">OpenAPI document</a>).</p>\
         <table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>{own}</tbody></table>\
         </body></html>",
        version = escape(crate::VERSION),
        compat = operations(&compat),
        own = operations(&own),
    );
    page(html)
}
