//! iscc-search's bodies, both ways: its assets and queries are checked
//! against its schema (422 where its FastAPI server answers 422) and become
//! the engine's entries and queries; the engine's answers become its
//! `IsccAddResult`, `IsccEntry`, `IsccIndex` and `IsccSearchResult`.
//!
//! Names of unit and simprint types are written its way
//! (`CONTENT_TEXT_V0` for the engine's `CONTENT-TEXT-V0`).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::engine::{json_type_name, ChunkMatch, IndexInfo, IsccMatch, IsccMatches};
use crate::server::envelope::{ApiError, ServerCode};

/// A 422 naming the field.
pub(super) fn unprocessable(message: impl Into<String>) -> ApiError {
    ApiError::server(ServerCode::Unprocessable, message)
}

/// `ISCC:` then `min..=max` characters of the base32 alphabet.
fn base32_after_prefix(s: &str, min: usize, max: usize) -> bool {
    s.strip_prefix("ISCC:").is_some_and(|body| {
        (min..=max).contains(&body.len())
            && body
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    })
}

/// An ISCC-ID as its schema writes it (`^ISCC:[A-Z2-7]{16}$`).
pub(super) fn is_iscc_id(s: &str) -> bool {
    base32_after_prefix(s, 16, 16)
}

/// An ISCC-CODE as its schema writes it (`^ISCC:[A-Z2-7]{16,}$`).
fn is_iscc_code(s: &str) -> bool {
    base32_after_prefix(s, 16, usize::MAX)
}

/// Base64 of either alphabet (`^[A-Za-z0-9+/_=-]+$`).
fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/_=-".contains(&b))
}

/// The string at `field`, if present; 422 when it is not a string or does
/// not match `valid`.
fn string_field<'a>(
    obj: &'a Map<String, Value>,
    field: &str,
    at: &str,
    valid: fn(&str) -> bool,
    form: &str,
) -> Result<Option<&'a str>, ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if valid(s) => Ok(Some(s)),
        Some(Value::String(s)) => Err(unprocessable(format!("{at}.{field}: {s:?} is not {form}"))),
        Some(v) => Err(unprocessable(format!(
            "{at}.{field}: expected a string, not {}",
            json_type_name(v)
        ))),
    }
}

/// A list of strings at `field` with at least `min` items, if present.
fn strings_field(
    obj: &Map<String, Value>,
    field: &str,
    at: &str,
    min: usize,
) -> Result<(), ApiError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.len() < min => Err(unprocessable(format!(
            "{at}.{field}: at least {min} items, got {}",
            items.len()
        ))),
        Some(Value::Array(items)) => match items.iter().position(|v| !v.is_string()) {
            Some(i) => Err(unprocessable(format!(
                "{at}.{field}[{i}]: expected a string, not {}",
                json_type_name(&items[i])
            ))),
            None => Ok(()),
        },
        Some(v) => Err(unprocessable(format!(
            "{at}.{field}: expected an array, not {}",
            json_type_name(v)
        ))),
    }
}

/// A 32-bit unsigned integer (offsets and sizes of simprints).
fn is_u32(v: &Value) -> bool {
    v.as_u64().is_some_and(|n| n <= u64::from(u32::MAX))
}

/// `simprints`: an object of non-empty arrays; `asset` items are objects
/// `{simprint, offset, size}`, query items bare simprints.
fn simprints_field(obj: &Map<String, Value>, at: &str, asset: bool) -> Result<(), ApiError> {
    let groups = match obj.get("simprints") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(groups)) => groups,
        Some(v) => {
            return Err(unprocessable(format!(
                "{at}.simprints: expected an object, not {}",
                json_type_name(v)
            )))
        }
    };
    for (name, items) in groups {
        let at = format!("{at}.simprints.{name}");
        let Value::Array(items) = items else {
            return Err(unprocessable(format!(
                "{at}: expected an array, not {}",
                json_type_name(items)
            )));
        };
        if items.is_empty() {
            return Err(unprocessable(format!("{at}: at least 1 item, got 0")));
        }
        for (i, item) in items.iter().enumerate() {
            let ok = match (asset, item) {
                (false, Value::String(s)) => is_base64(s),
                (true, Value::Object(o)) => {
                    o.get("simprint")
                        .and_then(Value::as_str)
                        .is_some_and(|s| s.len() >= 11 && is_base64(s))
                        && o.get("offset").is_some_and(is_u32)
                        && o.get("size").is_some_and(is_u32)
                }
                _ => false,
            };
            if !ok {
                let form = if asset {
                    "an object {simprint (base64, 11+ characters), offset, size (0 to 2^32-1)}"
                } else {
                    "a base64 simprint"
                };
                return Err(unprocessable(format!("{at}[{i}]: expected {form}")));
            }
        }
    }
    Ok(())
}

/// An asset of an add request, checked against `IsccEntry`, as the
/// engine's entry (the same object: the engine reads iscc-search's fields).
/// `iscc_id` is required to add (400, as iscc-search's backends say).
pub(super) fn entry_of_asset(i: usize, asset: &Value) -> Result<&Map<String, Value>, ApiError> {
    let at = format!("asset {i}");
    let Value::Object(obj) = asset else {
        return Err(unprocessable(format!(
            "{at}: expected an object, not {}",
            json_type_name(asset)
        )));
    };
    let id = string_field(
        obj,
        "iscc_id",
        &at,
        is_iscc_id,
        "an ISCC-ID (ISCC:…, 16 characters)",
    )?;
    string_field(obj, "iscc_code", &at, is_iscc_code, "an ISCC-CODE (ISCC:…)")?;
    strings_field(obj, "units", &at, 2)?;
    simprints_field(obj, &at, true)?;
    match obj.get("metadata") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(v) => {
            return Err(unprocessable(format!(
                "{at}.metadata: expected an object, not {}",
                json_type_name(v)
            )))
        }
    }
    if id.is_none() {
        return Err(ApiError::invalid(format!(
            "{at}: iscc_id is required to add an asset"
        )));
    }
    Ok(obj)
}

/// The query fields iscc-search knows, checked against `IsccQuery`.
pub(super) const QUERY_FIELDS: [&str; 4] = ["iscc_id", "iscc_code", "units", "simprints"];

/// A search body checked against `IsccQuery`: the query echoed in the
/// answer (its known fields only, as iscc-search's model keeps them).
pub(super) fn query_of_body(body: &Value) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(obj) = body else {
        return Err(unprocessable(format!(
            "request body: expected an object, not {}",
            json_type_name(body)
        )));
    };
    let at = "query";
    string_field(
        obj,
        "iscc_id",
        at,
        is_iscc_id,
        "an ISCC-ID (ISCC:…, 16 characters)",
    )?;
    string_field(obj, "iscc_code", at, is_iscc_code, "an ISCC-CODE (ISCC:…)")?;
    strings_field(obj, "units", at, 1)?;
    simprints_field(obj, at, false)?;
    let query: Map<String, Value> = QUERY_FIELDS
        .iter()
        .filter_map(|f| match obj.get(*f) {
            None | Some(Value::Null) => None,
            Some(v) => Some((f.to_string(), v.clone())),
        })
        .collect();
    if query.is_empty() {
        return Err(ApiError::invalid(
            "query: give iscc_id, iscc_code, units or simprints",
        ));
    }
    Ok(query)
}

/// The engine's type name the iscc-search way.
pub(super) fn type_name(ours: &str) -> String {
    ours.replace('-', "_")
}

/// A stored entry as `IsccEntry`: as stored, with `units` left out when
/// fewer than the schema's 2 (a single-unit entry added through the
/// engine's own API).
pub(super) fn asset_of_entry(mut entry: Value) -> Value {
    if let Some(obj) = entry.as_object_mut() {
        if obj
            .get("units")
            .and_then(Value::as_array)
            .is_some_and(|u| u.len() < 2)
        {
            obj.remove("units");
        }
    }
    entry
}

/// Megabytes, as iscc-search counts them (whole, rounded down).
fn megabytes(bytes: u64) -> u64 {
    bytes / (1 << 20)
}

/// `IsccIndex` of an index: `name`, `assets`, `size` (MB on disk) and
/// `sizes` in MB as iscc-search splits them (`lmdb`: the store on disk;
/// per unit type: what its index holds in memory), plus what the engine
/// tells beyond (allowed by the schema): bytes on disk, unit types with
/// rows and bytes, simprint types, realm, read-only.
pub(super) fn index_summary(name: &str, info: &IndexInfo, disk_bytes: u64) -> Value {
    let mut sizes = BTreeMap::new();
    sizes.insert("lmdb".to_string(), megabytes(info.store_bytes));
    let units: Map<String, Value> = info
        .units
        .iter()
        .map(|(t, u)| {
            sizes.insert(type_name(t), megabytes(u.memory_bytes));
            let figures = json!({"rows": u.len, "entries": u.entries, "shards": u.shards, "bytes": u.memory_bytes});
            (type_name(t), figures)
        })
        .collect();
    let simprints: Map<String, Value> = info
        .simprints
        .iter()
        .map(|(t, s)| (type_name(t), json!(s)))
        .collect();
    json!({
        "name": name,
        "assets": info.size,
        "size": megabytes(disk_bytes),
        "sizes": sizes,
        "bytes": disk_bytes,
        "unit_types": units,
        "simprint_types": simprints,
        "realm": info.realm,
        "read_only": info.read_only,
    })
}

/// `IsccGlobalMatch` of a match: `types` holds every unit type's score
/// (and `INSTANCE_NONE_V0: 1.0` for an INSTANCE match), `metadata` the
/// stored entry's when it is an object; `distances` (NPHD per unit type)
/// is this engine's addition.
fn global_match(m: &IsccMatch, entry: Option<&Value>) -> Value {
    let mut types = Map::new();
    let mut distances = Map::new();
    for (t, s) in &m.units {
        types.insert(type_name(t), json!(s.score));
        distances.insert(type_name(t), json!(s.distance));
    }
    if m.instance {
        types.insert("INSTANCE_NONE_V0".into(), json!(1.0));
    }
    let mut out = json!({"iscc_id": m.iscc_id, "score": m.score, "types": types});
    if !distances.is_empty() {
        out["distances"] = Value::Object(distances);
    }
    if let Some(meta) = entry
        .and_then(|e| e.get("metadata"))
        .filter(|v| v.is_object())
    {
        out["metadata"] = meta.clone();
    }
    out
}

/// `IsccChunkMatch` of a chunk match. Matched chunks without a segment
/// (the entry gave no offsets and sizes) are left out of `chunks`: the
/// schema requires both; `matches` still counts them.
fn chunk_match(m: &ChunkMatch, entry: Option<&Value>) -> Value {
    let types: Map<String, Value> = m
        .types
        .iter()
        .map(|(t, s)| {
            let mut v = json!({"score": s.score, "matches": s.matches, "queried": s.queried});
            if let Some(chunks) = &s.chunks {
                let chunks: Vec<Value> = chunks
                    .iter()
                    .filter_map(|c| {
                        Some(json!({
                            "query": c.query, "match": c.matched, "score": c.score,
                            "freq": c.freq, "offset": c.offset?, "size": c.size?,
                        }))
                    })
                    .collect();
                v["chunks"] = Value::from(chunks);
            }
            (type_name(t), v)
        })
        .collect();
    let mut out = json!({"iscc_id": m.iscc_id, "score": m.score, "types": types});
    if let Some(meta) = entry
        .and_then(|e| e.get("metadata"))
        .filter(|v| v.is_object())
    {
        out["metadata"] = meta.clone();
    }
    out
}

/// `IsccSearchResult`: the query, `global_matches`, and `chunk_matches`
/// when the query had simprints. `entries` maps ISCC-IDs to stored
/// entries (for `metadata`).
pub(super) fn search_result(
    query: Map<String, Value>,
    found: &IsccMatches,
    entries: &BTreeMap<String, Value>,
) -> Value {
    let global: Vec<Value> = found
        .matches
        .iter()
        .filter(|m| !m.units.is_empty() || m.instance)
        .map(|m| global_match(m, entries.get(&m.iscc_id)))
        .collect();
    let mut out = json!({"query": query, "global_matches": global});
    if query_has_simprints(&out["query"]) || !found.chunk_matches.is_empty() {
        out["chunk_matches"] = found
            .chunk_matches
            .iter()
            .map(|m| chunk_match(m, entries.get(&m.iscc_id)))
            .collect();
    }
    out
}

fn query_has_simprints(query: &Value) -> bool {
    query.get("simprints").is_some_and(|s| s.is_object())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_the_schemas() {
        assert!(is_iscc_id("ISCC:MAIGIIFJRDGEQQAA"));
        assert!(!is_iscc_id("ISCC:MAIGIIFJRDGEQQA"));
        assert!(!is_iscc_id("iscc:MAIGIIFJRDGEQQAA"));
        assert!(!is_iscc_id("MAIGIIFJRDGEQQAA"));
        assert!(is_iscc_code(
            "ISCC:KECYCMZIOY36XXGZ7S6QJQ2AEEXPOVEHZYPK6GMSFLU3WF54UPZMTPY"
        ));
        assert!(!is_iscc_code("ISCC:KECT"));
        assert!(!is_iscc_code("ISCC:KECYCMZIOY36XXG1"));
        assert!(is_base64("AXvu3tp2kF8mN9qL4rT1sZ"));
        assert!(!is_base64("AX vu"));
    }

    #[test]
    fn assets_are_checked_as_iscc_search_checks_them() {
        let ok = json!({"iscc_id": "ISCC:MAIGIIFJRDGEQQAA", "units": ["ISCC:A", "ISCC:B"],
            "simprints": {"CONTENT_TEXT_V0": [{"simprint": "AXvu3tp2kF8mN9qL4rT1sZ", "offset": 0, "size": 5}]},
            "metadata": {"title": "x"}});
        assert!(entry_of_asset(0, &ok).is_ok());
        let e = entry_of_asset(3, &json!({"units": ["ISCC:A", "ISCC:B"]})).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert!(e.message.contains("iscc_id") && e.message.contains("asset 3"));
        for (bad, needle) in [
            (json!([]), "expected an object"),
            (json!({"iscc_id": "X"}), "iscc_id"),
            (json!({"iscc_id": 5}), "iscc_id"),
            (
                json!({"iscc_id": "ISCC:MAIGIIFJRDGEQQAA", "units": ["ISCC:A"]}),
                "at least 2",
            ),
            (
                json!({"iscc_id": "ISCC:MAIGIIFJRDGEQQAA", "iscc_code": "ISCC:KECT"}),
                "iscc_code",
            ),
            (
                json!({"iscc_id": "ISCC:MAIGIIFJRDGEQQAA", "metadata": [1]}),
                "metadata",
            ),
            (
                json!({"iscc_id": "ISCC:MAIGIIFJRDGEQQAA", "simprints": {"A_B_V0": []}}),
                "at least 1",
            ),
            (
                json!({"iscc_id": "ISCC:MAIGIIFJRDGEQQAA", "simprints": {"A_B_V0": [{"simprint": "AXvu3tp2kF8mN9qL4rT1sZ"}]}}),
                "offset",
            ),
        ] {
            let e = entry_of_asset(0, &bad).unwrap_err();
            assert_eq!(e.status.as_u16(), 422, "{bad}");
            assert!(e.message.contains(needle), "{bad}: {}", e.message);
        }
    }

    #[test]
    fn queries_keep_known_fields() {
        let q = query_of_body(&json!({"iscc_code": "ISCC:KECYCMZIOY36XXGZ7S6QJQ2AEEXPOVEHZYPK6GMSFLU3WF54UPZMTPY", "other": 1})).unwrap();
        assert_eq!(q.keys().collect::<Vec<_>>(), ["iscc_code"]);
        assert_eq!(query_of_body(&json!({})).unwrap_err().status.as_u16(), 400);
        assert_eq!(
            query_of_body(&json!({"units": []}))
                .unwrap_err()
                .status
                .as_u16(),
            422
        );
        assert_eq!(
            query_of_body(&json!({"simprints": {"A_B_V0": [{"x": 1}]}}))
                .unwrap_err()
                .status
                .as_u16(),
            422
        );
        assert_eq!(query_of_body(&json!("x")).unwrap_err().status.as_u16(), 422);
    }

    #[test]
    fn entries_with_one_unit_drop_units() {
        let one = asset_of_entry(json!({"iscc_id": "I", "units": ["U"]}));
        assert!(one.get("units").is_none());
        let two = asset_of_entry(json!({"iscc_id": "I", "units": ["U", "V"]}));
        assert_eq!(two["units"], json!(["U", "V"]));
    }
}
