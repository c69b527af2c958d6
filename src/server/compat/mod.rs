//! iscc-search's REST API (its 0.3.3 OpenAPI document), beside this
//! server's own, on the same engine calls: a client of iscc-search — or
//! the ISCC hub proxying to one — works unchanged.
//!
//! ```text
//! GET    /indexes                          → [IsccIndex]
//! POST   /indexes          {"name"}        → 201 IsccIndex (409 if it exists)
//! GET    /indexes/{name}                   → IsccIndex
//! DELETE /indexes/{name}                   → 204
//! POST   /indexes/{name}/assets  [IsccEntry] → 201 [{iscc_id, status}]
//! GET    /indexes/{name}/assets/{iscc_id}  → IsccEntry
//! POST   /indexes/{name}/search?limit=&exact=  IsccQuery → IsccSearchResult
//! GET    /indexes/{name}/search?iscc_code=&limit=&exact= → IsccSearchResult
//! ```
//!
//! Errors are its `{"detail": "…"}` bodies with its statuses (400, 401,
//! 404, 409, 422), and this server's own where it has more to say (413
//! over the batch limit, 415 for a body that is not JSON, 423 for an index
//! another process writes). Every error of these paths, also those of the
//! guards and limits in front of them, is turned into that form by
//! [`dialect`]. Scores follow iscc-search's rule over every unit type the
//! engine finds (see `docs/compatibility.md`); additions go only where its
//! schema allows (`distances` per unit type, index figures).

mod routes;
mod shape;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use super::AppState;

/// The document of these routes (`GET /openapi/openapi.json`): this
/// server's version, and the `X-API-Key` requirement only when a key is
/// configured.
pub(crate) fn document(api_key: bool) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(include_str!("openapi.json")) else {
        // A unit test parses the template.
        return include_str!("openapi.json").to_string();
    };
    doc["info"]["version"] = Value::from(crate::VERSION);
    if !api_key {
        super::openapi::without_key(&mut doc);
        if let Some(r) = doc["components"]["responses"].as_object_mut() {
            r.remove("Unauthorized");
        }
        strip_unauthorized(&mut doc["paths"]);
    }
    doc.to_string()
}

/// Drop the 401 answers of a document served without a key.
fn strip_unauthorized(paths: &mut Value) {
    for item in paths
        .as_object_mut()
        .into_iter()
        .flat_map(|m| m.values_mut())
    {
        for op in item
            .as_object_mut()
            .into_iter()
            .flat_map(|m| m.values_mut())
        {
            if let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) {
                responses.remove("401");
            }
        }
    }
}

/// The routes (behind the server's auth and content-type layers).
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/indexes", get(routes::list).post(routes::create))
        .route("/indexes/{name}", get(routes::show).delete(routes::delete))
        .route("/indexes/{name}/assets", axum::routing::post(routes::add))
        .route("/indexes/{name}/assets/{iscc_id}", get(routes::get_asset))
        .route(
            "/indexes/{name}/search",
            get(routes::search_get).post(routes::search_post),
        )
}

/// True for the paths of iscc-search's API.
fn is_compat_path(path: &str) -> bool {
    path == "/indexes" || path.starts_with("/indexes/")
}

/// Outermost layer: on iscc-search's paths, an error envelope becomes its
/// `{"detail": message}` (a missing or wrong key: `"Unauthorized"`, its
/// exact words), status and headers kept.
pub(crate) async fn dialect(request: Request, next: Next) -> Response {
    let compat = is_compat_path(request.uri().path());
    let response = next.run(request).await;
    if !compat || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, axum::body::Body::empty());
    };
    let detail = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if v["error"]["code"] == "UNAUTHORIZED" => "Unauthorized".to_string(),
        Ok(v) => match v["error"]["message"].as_str() {
            Some(m) => m.to_string(),
            None => return Response::from_parts(parts, axum::body::Body::from(bytes)),
        },
        Err(_) => return Response::from_parts(parts, axum::body::Body::from(bytes)),
    };
    let body = json!({ "detail": detail }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_route_and_states_the_key() {
        let keyed: Value = serde_json::from_str(&document(true)).unwrap();
        assert_eq!(keyed["info"]["version"], crate::VERSION);
        let paths = keyed["paths"].as_object().unwrap();
        let mut ops = Vec::new();
        for (path, item) in paths {
            for method in ["get", "post", "delete"] {
                if item.get(method).is_some() {
                    ops.push(format!("{method} {path}"));
                }
            }
        }
        assert_eq!(
            ops,
            [
                "get /indexes",
                "post /indexes",
                "get /indexes/{name}",
                "delete /indexes/{name}",
                "post /indexes/{name}/assets",
                "get /indexes/{name}/assets/{iscc_id}",
                "get /indexes/{name}/search",
                "post /indexes/{name}/search",
            ]
        );
        assert!(keyed["components"]["securitySchemes"]["ApiKeyAuth"].is_object());
        let open: Value = serde_json::from_str(&document(false)).unwrap();
        assert!(open.get("security").is_none());
        assert!(!document(false).contains("\"401\""));
    }
}
