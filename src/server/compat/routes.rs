//! The handlers of iscc-search's API: each resolves the named index, makes
//! the engine call on the blocking pool (under the same permits as the
//! server's own routes) and shapes the answer (`shape.rs`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::shape::{self, unprocessable};
use crate::engine::{IsccIndex, IsccMatches, SearchParams, SearchRequest};
use crate::server::envelope::ApiError;
use crate::server::routes::{parse_permit, search_permit, write_permit};
use crate::server::{request, AppState};

type Shared = State<Arc<AppState>>;
type Params = Result<Query<BTreeMap<String, String>>, QueryRejection>;

/// Run `f` on the blocking pool with the index `name`.
async fn on_index<T, F>(state: &Arc<AppState>, name: String, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&IsccIndex) -> Result<T, ApiError> + Send + 'static,
{
    let state = Arc::clone(state);
    tokio::task::spawn_blocking(move || f(&*state.catalog.get(&name)?))
        .await
        .map_err(|e| ApiError::internal(format!("request failed: {e}")))?
}

/// Run `f` on the blocking pool (catalog calls that open or remove).
async fn on_pool<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("request failed: {e}")))?
}

fn json_status(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::invalid(format!("path: {e}")))
}

/// Bytes on disk (allocated blocks) under `path`.
fn disk_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let children = std::fs::read_dir(path)
        .map(|items| items.flatten().map(|i| disk_bytes(&i.path())).sum::<u64>())
        .unwrap_or(0);
    own + children
}

/// The `IsccIndex` body of an open index.
fn summary(name: &str, index: &IsccIndex) -> Result<Value, ApiError> {
    let info = index.info()?;
    let disk = if index.is_remote() {
        0
    } else {
        disk_bytes(index.path())
    };
    Ok(shape::index_summary(name, &info, disk))
}

/// `GET /indexes`.
pub(super) async fn list(State(state): Shared) -> Result<Response, ApiError> {
    let all = on_pool(move || {
        let names = state.catalog.names()?;
        let mut out: Vec<Value> = Vec::with_capacity(names.len());
        for name in names {
            let index = state.catalog.get(&name)?;
            out.push(summary(&name, &index)?);
        }
        Ok(out)
    })
    .await?;
    Ok(json_status(StatusCode::OK, &Value::from(all)))
}

/// `POST /indexes` `{"name"}` (other fields of `IsccIndex` are the
/// server's to fill and ignored, as iscc-search does).
pub(super) async fn create(
    State(state): Shared,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = request::bytes(body, &state.limits)?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| unprocessable(format!("request body: {e}")))?;
    let name = match value.get("name") {
        Some(Value::String(n)) => n.clone(),
        Some(v) => return Err(unprocessable(format!("name: expected a string, not {v}"))),
        None => return Err(unprocessable("name: required")),
    };
    if let Some(e) = crate::server::catalog::name_error(&name) {
        return Err(unprocessable(e));
    }
    let permit = write_permit(&state).await?;
    let made = on_pool(move || {
        let _permit = permit;
        let index = state.catalog.create(&name)?;
        summary(&name, &index)
    })
    .await?;
    Ok(json_status(StatusCode::CREATED, &made))
}

/// `GET /indexes/{name}`.
pub(super) async fn show(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path(name)?;
    let shown = on_index(&state, name.clone(), move |idx| summary(&name, idx)).await?;
    Ok(json_status(StatusCode::OK, &shown))
}

/// `DELETE /indexes/{name}` → 204.
pub(super) async fn delete(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path(name)?;
    let permit = write_permit(&state).await?;
    on_pool(move || {
        let _permit = permit;
        state.catalog.delete(&name)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /indexes/{name}/assets` `[IsccEntry]` → 201, one
/// `{iscc_id, status}` per asset: `created`, or `updated` when the ISCC-ID
/// was in the index (or earlier in the batch). All or nothing: the engine
/// checks every asset before it writes one.
pub(super) async fn add(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = path(name)?;
    let bytes = request::bytes(body, &state.limits)?;
    let permit = write_permit(&state).await?;
    let parsing = parse_permit(&state, &bytes).await?;
    let limits = state.limits;
    let results = on_index(&state, name, move |idx| {
        let _permit = permit;
        let assets: Value = serde_json::from_slice(&bytes)
            .map_err(|e| unprocessable(format!("request body: {e}")))?;
        drop((bytes, parsing));
        let Value::Array(items) = &assets else {
            return Err(unprocessable("request body: expected an array of assets"));
        };
        request::check_batch("assets", items.len(), &limits)?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut given = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let entry = shape::entry_of_asset(i, item)?;
            given.push(entry["iscc_id"].as_str().unwrap_or_default().to_string());
        }
        let ids: Vec<&str> = given.iter().map(String::as_str).collect();
        let before = idx.get_many(&ids)?;
        let stored = idx.add_values(&assets)?;
        let mut seen = HashSet::new();
        Ok(stored
            .into_iter()
            .zip(before)
            .map(|(id, was)| {
                let status = if was.is_some() || !seen.insert(id.clone()) {
                    "updated"
                } else {
                    "created"
                };
                json!({"iscc_id": id, "status": status})
            })
            .collect())
    })
    .await?;
    Ok(json_status(StatusCode::CREATED, &Value::from(results)))
}

/// `GET /indexes/{name}/assets/{iscc_id}` → the stored entry.
pub(super) async fn get_asset(
    State(state): Shared,
    ids: Result<Path<(String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let (name, id) = path(ids)?;
    if !shape::is_iscc_id(&id) {
        return Err(ApiError::invalid(format!(
            "Invalid ISCC-ID format: {id:?} (expected ISCC: and 16 characters)"
        )));
    }
    let entry = on_index(&state, name.clone(), move |idx| {
        idx.get(&id)?.ok_or_else(|| {
            ApiError::of_kind(
                crate::engine::ErrorKind::NotFound,
                format!("Asset '{id}' not found in index '{name}'"),
            )
        })
    })
    .await?;
    Ok(json_status(StatusCode::OK, &shape::asset_of_entry(entry)))
}

/// The engine request of a checked query with the URL's `limit` (default
/// 100, as iscc-search) and `exact` (this server's addition).
fn engine_request(
    state: &AppState,
    query: &Map<String, Value>,
    params: &BTreeMap<String, String>,
) -> Result<SearchRequest, ApiError> {
    let mut map = query.clone();
    let limit = match params.get("limit") {
        None => 100,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=state.limits.max_count).contains(n))
            .ok_or_else(|| {
                unprocessable(format!(
                    "limit: {s:?} is not a whole number from 1 to {}",
                    state.limits.max_count
                ))
            })?,
    };
    map.insert("count".into(), Value::from(limit));
    if let Some(s) = params.get("exact") {
        let exact = match s.as_str() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(unprocessable(format!("exact: {s:?} is not true or false"))),
        };
        map.insert("exact".into(), Value::from(exact));
    }
    // Matched chunks with their segments, as iscc-search answers them.
    map.insert("detail".into(), Value::from(true));
    Ok(SearchRequest::from_object(
        &map,
        &SearchParams::default(),
        state.limits.max_count,
    )?)
}

/// Search, then read the matches' entries for their `metadata`.
async fn run_search(
    state: Arc<AppState>,
    name: String,
    query: Map<String, Value>,
    params: &BTreeMap<String, String>,
) -> Result<Response, ApiError> {
    let req = engine_request(&state, &query, params)?;
    let permit = search_permit(&state).await?;
    let answer = on_index(&state, name, move |idx| {
        let _permit = permit;
        let found: IsccMatches = idx.search(&req.queries[0], &req.params)?;
        let mut ids: Vec<&str> = found.matches.iter().map(|m| m.iscc_id.as_str()).collect();
        ids.extend(found.chunk_matches.iter().map(|m| m.iscc_id.as_str()));
        ids.sort_unstable();
        ids.dedup();
        let entries: BTreeMap<String, Value> = ids
            .iter()
            .zip(idx.get_many(&ids)?)
            .filter_map(|(id, e)| Some((id.to_string(), e?)))
            .collect();
        Ok(shape::search_result(query, &found, &entries))
    })
    .await?;
    Ok(json_status(StatusCode::OK, &answer))
}

fn params_of(params: Params) -> Result<BTreeMap<String, String>, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| unprocessable(format!("query string: {e}")))
}

/// `POST /indexes/{name}/search` `IsccQuery`.
pub(super) async fn search_post(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
    params: Params,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let name = path(name)?;
    let params = params_of(params)?;
    let bytes = request::bytes(body, &state.limits)?;
    let body: Value =
        serde_json::from_slice(&bytes).map_err(|e| unprocessable(format!("request body: {e}")))?;
    let query = shape::query_of_body(&body)?;
    run_search(state, name, query, &params).await
}

/// `GET /indexes/{name}/search?iscc_code=…`.
pub(super) async fn search_get(
    State(state): Shared,
    name: Result<Path<String>, PathRejection>,
    params: Params,
) -> Result<Response, ApiError> {
    let name = path(name)?;
    let params = params_of(params)?;
    let Some(code) = params.get("iscc_code") else {
        return Err(unprocessable("iscc_code: required query parameter"));
    };
    // iscc-search answers a malformed code here with 400 (its document).
    let query = shape::query_of_body(&json!({ "iscc_code": code }))
        .map_err(|e| ApiError::invalid(format!("Invalid ISCC-CODE format: {}", e.message)))?;
    run_search(state, name, query, &params).await
}
