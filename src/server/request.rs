//! Request bodies: JSON parsed by hand from the raw bytes, so every mistake
//! (bad JSON, a missing or misspelt field, a wrong type, an oversize batch)
//! comes back as an envelope naming the field, not as a framework default.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::envelope::{ApiError, ServerCode};
use super::Limits;
use crate::engine::{SearchParams, SearchRequest};

/// True when the body was not received within the body deadline.
fn timed_out(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The JSON object of a request body; `fields` are the keys allowed.
#[cfg(test)]
pub(crate) fn object(
    body: Result<Bytes, BytesRejection>,
    limits: &Limits,
    fields: &[&str],
) -> Result<Map<String, Value>, ApiError> {
    parse(&bytes(body, limits)?, fields)
}

/// The body's bytes, or the envelope of why there are none (too large,
/// too slow, broken).
pub(crate) fn bytes(
    body: Result<Bytes, BytesRejection>,
    limits: &Limits,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if timed_out(&rejection) {
            ApiError::server(
                ServerCode::RequestTimeout,
                "request body: not received in time (see --body-timeout)",
            )
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::server(
                ServerCode::PayloadTooLarge,
                format!("request body larger than {} bytes", limits.max_body_bytes),
            )
        } else {
            ApiError::invalid(format!("request body: {rejection}"))
        }
    })
}

/// Parse a body as a JSON object with only `fields` as keys (CPU and
/// memory heavy for large bodies: run it on the blocking pool).
pub(crate) fn parse(bytes: &[u8], fields: &[&str]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::json(
            "request body: empty (expected a JSON object)",
        ));
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| ApiError::json(format!("request body: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::json(
            "request body: expected a JSON object".to_string(),
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::invalid(format!(
            "request body: unknown field `{unknown}` (expected {})",
            fields.join(", ")
        )));
    }
    Ok(map)
}

/// 413 `BATCH_TOO_LARGE` when `n` exceeds the batch limit.
pub(crate) fn check_batch(what: &str, n: usize, limits: &Limits) -> Result<(), ApiError> {
    if n > limits.max_batch {
        return Err(ApiError::server(
            ServerCode::BatchTooLarge,
            format!(
                "{what}: {n} items, at most {} per request",
                limits.max_batch
            ),
        ));
    }
    Ok(())
}

/// A required array of strings (`iscc_ids`).
pub(crate) fn strings(map: &Map<String, Value>, field: &str) -> Result<Vec<String>, ApiError> {
    Ok(crate::engine::request::strings(map, field)?)
}

/// Parse a `/search` body with the engine's request grammar
/// ([`crate::engine::request`]), then apply this server's batch limit.
pub(crate) fn search(map: &Map<String, Value>, limits: &Limits) -> Result<SearchRequest, ApiError> {
    let request = SearchRequest::from_object(map, &SearchParams::default(), limits.max_count)?;
    check_batch("queries", request.queries.len(), limits)?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Query;
    use serde_json::json;

    fn limits() -> Limits {
        Limits {
            max_body_bytes: 1024,
            max_batch: 3,
            max_count: 100,
            search_concurrency: 0,
            write_concurrency: 1,
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn search_forms() {
        let l = limits();
        let r = search(&map(json!({"iscc_codes": "ISCC:X"})), &l).unwrap();
        assert!(!r.batch);
        assert_eq!(r.queries, vec![Query::code("ISCC:X")]);
        assert_eq!(r.params.count, 10);
        let r = search(
            &map(json!({"iscc_codes": ["A", "B"], "count": 5, "exact": true})),
            &l,
        )
        .unwrap();
        assert!(r.batch && r.params.exact && r.params.count == 5);
        assert_eq!(r.queries.len(), 2);
        // units win over codes; a list of lists is a batch
        let code = "ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA";
        let r = search(&map(json!({"iscc_codes": code, "units": ["U1", "U2"]})), &l).unwrap();
        assert_eq!(r.queries, vec![Query::units(["U1", "U2"])]);
        let r = search(&map(json!({"units": [["U1"], ["U2"]]})), &l).unwrap();
        assert!(r.batch && r.queries.len() == 2);
    }

    #[test]
    fn search_rejects_bad_fields() {
        let l = limits();
        for (body, needle) in [
            (json!({}), "required"),
            (json!({"iscc_codes": 5}), "iscc_codes"),
            (json!({"iscc_codes": []}), "empty array"),
            (json!({"units": []}), "empty array"),
            (json!({"units": ["U"], "iscc_codes": 5}), "iscc_codes"),
            (json!({"units": ["U"], "iscc_code": ["A"]}), "iscc_code"),
            (json!({"units": "U"}), "units"),
            (json!({"units": [["A"], "B"]}), "not a mix"),
            (json!({"units": [["A"], [3]]}), "units[1][0]"),
            (json!({"iscc_codes": "A", "count": 0}), "count"),
            (json!({"iscc_codes": "A", "count": 101}), "count"),
            (json!({"iscc_codes": "A", "count": "3"}), "count"),
            (json!({"iscc_codes": "A", "count": 2.5}), "count"),
            (json!({"iscc_codes": "A", "exact": 1}), "exact"),
            (
                json!({"iscc_codes": "A", "unit_threshold": 2}),
                "unit_threshold",
            ),
        ] {
            let e = search(&map(body.clone()), &l).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
            assert!(e.message.contains(needle), "{body}: {}", e.message);
        }
        let e = search(&map(json!({"iscc_codes": ["A", "B", "C", "D"]})), &l).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (413, "BATCH_TOO_LARGE"));
    }

    #[test]
    fn bodies_must_be_known_objects() {
        let l = limits();
        let ok = |s: &'static str| object(Ok(Bytes::from(s)), &l, &["a"]);
        assert!(ok(r#"{"a": 1}"#).is_ok());
        assert_eq!(ok("{").unwrap_err().code, "INVALID_JSON");
        assert_eq!(ok("").unwrap_err().code, "INVALID_JSON");
        assert_eq!(ok("[1]").unwrap_err().code, "INVALID_JSON");
        let e = ok(r#"{"b": 1}"#).unwrap_err();
        assert!(e.code == "INVALID_ARGUMENT" && e.message.contains("`b`"));
    }
}
