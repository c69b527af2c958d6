//! The endpoints. Every engine call runs on tokio's blocking pool, so
//! searches (CPU-bound exact scans and graph walks) run in parallel and
//! never stall the async workers that accept connections.

use std::io::Write;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::envelope::{success, ApiError, ServerCode};
use super::request;
use super::AppState;
use crate::engine::ErrorKind;
use crate::engine::IsccIndex;
use crate::engine::SEARCH_FIELDS;

type Shared = State<Arc<AppState>>;

/// Run an engine call on the blocking pool.
async fn blocking<T, F>(state: &Arc<AppState>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&IsccIndex) -> Result<T, ApiError> + Send + 'static,
{
    let Some(index) = state.index.clone() else {
        return Err(ApiError::server(
            ServerCode::NoEndpoint,
            "this server serves named indexes (--root): use /indexes/{name}/…",
        ));
    };
    tokio::task::spawn_blocking(move || f(&index))
        .await
        .map_err(|e| ApiError::internal(format!("request failed: {e}")))?
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|e| ApiError::invalid(format!("path: {e}")))
}

/// `X-API-Key` check (constant time in the key's length).
pub(crate) async fn auth(State(state): Shared, request: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let given = request
            .headers()
            .get("x-api-key")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !same_key(given, key.as_bytes()) {
            let message = if given.is_empty() {
                "missing X-API-Key header"
            } else {
                "wrong API key"
            };
            return ApiError::server(ServerCode::Unauthorized, message).into_response();
        }
    }
    next.run(request).await
}

/// A request with a body must say it is JSON (`Content-Type:
/// application/json`): 415 otherwise. Browsers send a cross-site form or
/// `text/plain` POST without asking first; a JSON one needs a preflight.
pub(crate) async fn require_json(request: Request, next: Next) -> Response {
    let has_body = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(
            request
                .headers()
                .contains_key(axum::http::header::TRANSFER_ENCODING),
            |n| n > 0,
        );
    let json = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if has_body && !json {
        return ApiError::server(
            ServerCode::UnsupportedMediaType,
            "request body: Content-Type must be application/json",
        )
        .into_response();
    }
    next.run(request).await
}

/// A `--read-only` server follows the writer beside it: before each
/// request the index catches up with the writer's commits and saves
/// (cheap when nothing changed).
pub(crate) async fn follow_writer(State(state): Shared, request: Request, next: Next) -> Response {
    if let (true, Some(index)) = (state.read_only, state.index.clone()) {
        match tokio::task::spawn_blocking(move || index.refresh()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return ApiError::from(e).into_response(),
            Err(e) => return ApiError::internal(format!("refresh failed: {e}")).into_response(),
        }
    }
    next.run(request).await
}

/// `--hide-paths`: the index directory becomes `<index>` in every answer
/// that can name it (errors, `/info`, `/save`, `/rebuild`); search and get
/// answers hold no paths and pass untouched.
pub(crate) async fn hide_paths(
    State(root): State<Arc<String>>,
    request: Request,
    next: Next,
) -> Response {
    let names_paths = matches!(request.uri().path(), "/info" | "/save" | "/rebuild");
    let response = next.run(request).await;
    if !(names_paths || response.status().is_client_error() || response.status().is_server_error())
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 16 << 20).await else {
        return ApiError::internal("answer too large to rewrite").into_response();
    };
    // The path as it appears inside JSON strings.
    let quoted = serde_json::to_string(root.as_str()).unwrap_or_default();
    let needle = quoted.trim_matches('"');
    let text = String::from_utf8_lossy(&bytes).replace(needle, "<index>");
    let mut response = Response::from_parts(parts, axum::body::Body::from(text));
    response
        .headers_mut()
        .remove(axum::http::header::CONTENT_LENGTH);
    response
}

/// One stderr line per request: method, path, status, milliseconds.
pub(crate) async fn access_log(request: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let _ = writeln!(
        std::io::stderr().lock(),
        "{method} {path} {} {:.2} ms",
        response.status().as_u16(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    response
}

fn same_key(given: &[u8], key: &[u8]) -> bool {
    if given.len() != key.len() {
        return false;
    }
    given.iter().zip(key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Bodies larger than this wait for the one large-body parse slot.
const LARGE_BODY: usize = 256 << 10;

/// The large-body parse permit, for a body that needs one; held by the
/// blocking task while it parses.
pub(crate) async fn parse_permit(
    state: &Arc<AppState>,
    body: &[u8],
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
    if body.len() <= LARGE_BODY {
        return Ok(None);
    }
    Arc::clone(&state.parse_slot)
        .acquire_owned()
        .await
        .map(Some)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A write permit, held by the blocking task that parses and writes.
pub(crate) async fn write_permit(
    state: &Arc<AppState>,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    Arc::clone(&state.write_slots)
        .acquire_owned()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// A search permit when searches are limited (held by the blocking task).
pub(crate) async fn search_permit(
    state: &Arc<AppState>,
) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, ApiError> {
    match &state.search_slots {
        Some(slots) => Arc::clone(slots)
            .acquire_owned()
            .await
            .map(Some)
            .map_err(|e| ApiError::internal(e.to_string())),
        None => Ok(None),
    }
}

/// `POST /add` `{"entries": {…} | [{…}, …]}` → the ISCC-IDs, in order.
/// The body is parsed on the blocking pool under a write permit.
pub(crate) async fn add(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = request::bytes(body, &state.limits)?;
    let permit = write_permit(&state).await?;
    let parsing = parse_permit(&state, &bytes).await?;
    let limits = state.limits;
    blocking(&state, move |idx| {
        let _permit = permit;
        let mut map = request::parse(&bytes, &["entries"])?;
        drop((bytes, parsing));
        let entries = map
            .remove("entries")
            .ok_or_else(|| ApiError::invalid("missing field `entries`"))?;
        let n = match &entries {
            Value::Array(items) if items.is_empty() => {
                return Err(ApiError::invalid("entries: empty array"))
            }
            Value::Array(items) => items.len(),
            Value::Object(_) => 1,
            _ => {
                return Err(ApiError::invalid(
                    "entries: expected an entry object or an array of them",
                ))
            }
        };
        request::check_batch("entries", n, &limits)?;
        Ok(success(&idx.add_values(&entries)?))
    })
    .await
}

/// `GET /get/{id}` → the entry (404 when absent).
pub(crate) async fn get_one(
    State(state): Shared,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    blocking(&state, move |idx| Ok(success(&idx.get_one(&id)?))).await
}

/// Run `f` on the blocking pool with the ISCC-IDs of a
/// `{"iscc_ids": […]}` body (parsed there, checked against the batch limit
/// first; under a write permit when `write`).
async fn on_id_list<F>(
    state: &Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
    write: bool,
    f: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(&IsccIndex, &[&str]) -> Result<Response, ApiError> + Send + 'static,
{
    let bytes = request::bytes(body, &state.limits)?;
    let permit = if write {
        Some(write_permit(state).await?)
    } else {
        None
    };
    let parsing = parse_permit(state, &bytes).await?;
    let limits = state.limits;
    blocking(state, move |idx| {
        let _permit = permit;
        let map = request::parse(&bytes, &["iscc_ids"])?;
        let ids = request::strings(&map, "iscc_ids")?;
        drop((map, bytes, parsing));
        request::check_batch("iscc_ids", ids.len(), &limits)?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        f(idx, &ids)
    })
    .await
}

/// `POST /get` `{"iscc_ids": […]}` → entries in order, `null` where absent.
pub(crate) async fn get_many(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    on_id_list(&state, body, false, |idx, ids| {
        Ok(success(&idx.get_many(ids)?))
    })
    .await
}

/// `POST /search` → matches (or a list of them for a batch).
pub(crate) async fn search(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = request::bytes(body, &state.limits)?;
    let limits = state.limits;
    let permit = search_permit(&state).await?;
    // The answer is serialised on the blocking pool too. The permit moves
    // into the blocking task: a client that disconnects drops this future,
    // but the search it started keeps its slot until it ends.
    let parsing = parse_permit(&state, &bytes).await?;
    blocking(&state, move |idx| {
        let _permit = permit;
        let map = request::parse(&bytes, SEARCH_FIELDS)?;
        let req = request::search(&map, &limits)?;
        drop((map, bytes, parsing));
        Ok(if req.batch {
            success(&idx.search_batch(&req.queries, &req.params)?.queries)
        } else {
            success(&idx.search(&req.queries[0], &req.params)?)
        })
    })
    .await
}

/// `DELETE /remove/{id}` → the removal report (404 when absent).
pub(crate) async fn remove_one(
    State(state): Shared,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let permit = write_permit(&state).await?;
    let report = blocking(&state, move |idx| {
        let _permit = permit;
        Ok(idx.remove_report(&[id.as_str()])?)
    })
    .await?;
    if let Some(missing) = report.not_found.first() {
        return Err(ApiError::of_kind(
            ErrorKind::NotFound,
            format!("not found: {missing}"),
        ));
    }
    Ok(success(&report))
}

/// `POST /remove` `{"iscc_ids": […]}` → which were removed, which absent.
pub(crate) async fn remove_many(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    on_id_list(&state, body, true, |idx, ids| {
        Ok(success(&idx.remove_report(ids)?))
    })
    .await
}

/// `POST /rebuild` → index info after the rebuild.
pub(crate) async fn rebuild(State(state): Shared) -> Result<Response, ApiError> {
    let permit = write_permit(&state).await?;
    blocking(&state, move |idx| {
        let _permit = permit;
        idx.rebuild()?;
        Ok(success(&idx.info()?))
    })
    .await
}

/// `POST /save` → index info after the save.
pub(crate) async fn save(State(state): Shared) -> Result<Response, ApiError> {
    let permit = write_permit(&state).await?;
    blocking(&state, move |idx| {
        let _permit = permit;
        idx.save()?;
        Ok(success(&idx.info()?))
    })
    .await
}

/// `GET /info` → size, unit types, per-type figures, parameters.
pub(crate) async fn info(State(state): Shared) -> Result<Response, ApiError> {
    blocking(&state, |idx| Ok(success(&idx.info()?))).await
}

/// `GET /explain/{iscc}` → what an ISCC holds (the codec's description:
/// kind, header fields, units, body), or 400 `INVALID_ISCC`.
pub(crate) async fn explain(id: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    let input = path_id(id)?;
    let iscc = crate::codec::Iscc::parse(&input)
        .map_err(|e| ApiError::of_kind(ErrorKind::InvalidIscc, format!("{input:?}: {e}")))?;
    Ok(success(&crate::codec::explain(&input, &iscc)))
}

/// `GET /healthz` (no API key needed) → liveness.
pub(crate) async fn healthz(State(state): Shared) -> Response {
    success(&json!({
        "status": "ok",
        "version": crate::VERSION,
        "read_only": state.read_only,
    }))
}

/// `GET /readyz` (no API key needed) → 200 `{"status": "ready"}` when the
/// indexes can be listed (and the one index read), else 503 with the
/// reason (iscc-search's readiness probe).
pub(crate) async fn readyz(State(state): Shared) -> Response {
    let checked = tokio::task::spawn_blocking(move || -> Result<(), String> {
        state.catalog.names().map_err(|e| e.message)?;
        if let Some(index) = &state.index {
            index.info().map_err(|e| e.to_string())?;
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let (status, body) = match checked {
        Ok(()) => (StatusCode::OK, json!({"status": "ready"})),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": reason}),
        ),
    };
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// `GET /openapi.json` → the OpenAPI document of this server.
pub(crate) async fn openapi(State(state): Shared) -> Response {
    // The realm of ISCC-IDs is fixed by the first add: ask each time.
    let realm = state
        .index
        .as_ref()
        .and_then(|index| index.info().ok())
        .and_then(|i| i.realm);
    let doc = super::openapi::document(state.api_key.is_some(), realm, &state.limits);
    let mut response = (StatusCode::OK, doc).into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Any other path.
pub(crate) async fn not_found(request: Request) -> ApiError {
    ApiError::server(
        ServerCode::NoEndpoint,
        format!("no endpoint {} {}", request.method(), request.uri().path()),
    )
}

/// A known path with the wrong method.
pub(crate) async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::server(
        ServerCode::MethodNotAllowed,
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn keys_compare_exactly() {
        assert!(same_key(b"secret", b"secret"));
        assert!(!same_key(b"secreT", b"secret"));
        assert!(!same_key(b"secret1", b"secret"));
        assert!(!same_key(b"", b"secret"));
    }
}
