//! Request bodies: JSON parsed by hand from the raw bytes, so every mistake
//! (bad JSON, a missing or misspelt field, a wrong type, an oversize batch)
//! comes back as an envelope naming the field, not as a framework default.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::envelope::ApiError;
use super::Limits;
use crate::engine::{Query, SearchParams};

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
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                "request body: not received in time (see --body-timeout)",
            )
        } else if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
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
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BATCH_TOO_LARGE",
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
    let Some(v) = map.get(field) else {
        return Err(ApiError::invalid(format!("missing field `{field}`")));
    };
    string_list(v, field)
}

fn string_list(v: &Value, field: &str) -> Result<Vec<String>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid(format!(
            "{field}: expected an array of strings"
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(ApiError::invalid(format!(
                "{field}[{i}]: expected a string"
            ))),
        })
        .collect()
}

/// A parsed `/search` body.
#[derive(Debug)]
pub(crate) struct SearchRequest {
    pub queries: Vec<Query>,
    /// True when the caller sent a list (the answer is then a list too).
    pub batch: bool,
    pub params: SearchParams,
}

/// Fields of a `/search` body.
pub(crate) const SEARCH_FIELDS: &[&str] = &[
    "iscc_codes",
    "iscc_code",
    "units",
    "count",
    "exact",
    "unit_threshold",
];

/// The codes of `iscc_codes` (a string or a non-empty array of strings) or
/// `iscc_code` (a string); `None` when absent or null.
fn codes(map: &Map<String, Value>, field: &str) -> Result<Option<(Vec<String>, bool)>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(code)) => Ok(Some((vec![code.clone()], false))),
        Some(v @ Value::Array(items)) if field == "iscc_codes" => {
            if items.is_empty() {
                return Err(ApiError::invalid(format!(
                    "{field}: empty array (give at least one ISCC-CODE)"
                )));
            }
            Ok(Some((string_list(v, field)?, true)))
        }
        Some(_) if field == "iscc_codes" => Err(ApiError::invalid(format!(
            "{field}: expected an ISCC-CODE string or an array of them"
        ))),
        Some(_) => Err(ApiError::invalid(format!(
            "{field}: expected an ISCC-CODE string"
        ))),
    }
}

/// The queries of `units`: one query's units (an array of strings) or a
/// batch (an array of such arrays); `None` when absent or null.
fn unit_queries(map: &Map<String, Value>) -> Result<Option<(Vec<Query>, bool)>, ApiError> {
    let Some(units) = map.get("units").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Array(items) = units else {
        return Err(ApiError::invalid(
            "units: expected an array of ISCC-UNITs or an array of such arrays",
        ));
    };
    if items.is_empty() {
        return Err(ApiError::invalid(
            "units: empty array (give at least one ISCC-UNIT)",
        ));
    }
    let arrays = items.iter().filter(|v| v.is_array()).count();
    if arrays > 0 && arrays < items.len() {
        return Err(ApiError::invalid(
            "units: either ISCC-UNIT strings (one query) or arrays of them (a batch), not a mix",
        ));
    }
    if arrays == 0 {
        return Ok(Some((
            vec![Query::units(string_list(units, "units")?)],
            false,
        )));
    }
    let queries = items
        .iter()
        .enumerate()
        .map(|(i, q)| string_list(q, &format!("units[{i}]")).map(Query::units))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some((queries, true)))
}

/// Parse `{iscc_codes | iscc_code | units, count, exact, unit_threshold}`.
/// `units` wins over codes (as in the spec: codes beside units are not
/// searched — but, like every field given, they must be valid); `units` is
/// one query's units (an array of strings) or a batch (an array of such
/// arrays); `iscc_codes` is one code or an array of codes.
pub(crate) fn search(map: &Map<String, Value>, limits: &Limits) -> Result<SearchRequest, ApiError> {
    let by_units = unit_queries(map)?;
    let by_codes = codes(map, "iscc_codes")?;
    let by_code = codes(map, "iscc_code")?;
    let (queries, batch) = match (by_units, by_codes, by_code) {
        (Some(q), codes, code) => {
            for (field, list) in [("iscc_codes", codes), ("iscc_code", code)] {
                for (i, c) in list.map(|l| l.0).unwrap_or_default().iter().enumerate() {
                    crate::engine::validate_code(c, &format!("{field}[{i}]"))?;
                }
            }
            q
        }
        (None, Some((codes, batch)), code) => {
            if let Some((code, _)) = code {
                crate::engine::validate_code(&code[0], "iscc_code")?;
            }
            (codes.into_iter().map(Query::code).collect(), batch)
        }
        (None, None, Some((code, _))) => (code.into_iter().map(Query::code).collect(), false),
        (None, None, None) => {
            return Err(ApiError::invalid(
                "either `iscc_codes` or `units` is required",
            ))
        }
    };
    if batch && queries.is_empty() {
        return Err(ApiError::invalid("no queries given"));
    }
    check_batch("queries", queries.len(), limits)?;
    let count = match map.get("count") {
        None | Some(Value::Null) => 10,
        // An integral number (`112.0` too: JSON Schema's `integer`).
        Some(v) => match v.as_u64().or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
                .map(|f| f as u64)
        }) {
            Some(n) if n >= 1 && n <= limits.max_count as u64 => n as usize,
            _ => {
                return Err(ApiError::invalid(format!(
                    "count: expected an integer from 1 to {}, got {v}",
                    limits.max_count
                )))
            }
        },
    };
    let exact = match map.get("exact") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "exact: expected true or false, got {v}"
            )))
        }
    };
    let unit_threshold = match map.get("unit_threshold") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_f64() {
            Some(t) if (0.0..=1.0).contains(&t) => Some(t as f32),
            _ => {
                return Err(ApiError::invalid(format!(
                    "unit_threshold: expected a number from 0 to 1, got {v}"
                )))
            }
        },
    };
    Ok(SearchRequest {
        queries,
        batch,
        params: SearchParams {
            count,
            exact,
            unit_threshold,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
