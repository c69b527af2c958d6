//! The one grammar of what callers send as JSON, shared by every face: a
//! search request (the REST server's `/search` body, the C ABI's
//! `ivdb_search_json` and through it the Go and Node bindings, the CLI's
//! query files) and the open options (`ivdb_open`, the bindings' `open`).
//! A field means the same and is refused with the same message everywhere.
//!
//! A request is a JSON object `{iscc_codes | iscc_code | units, features?,
//! simprints?, count?, exact?, unit_threshold?, simprint_threshold?,
//! detail?}` or `{iscc_id, …parameters}`: `iscc_codes` is one ISCC-CODE or
//! an array of them (a batch), `iscc_code` one code, `units` one query's
//! ISCC-UNITs or an array of such arrays (a batch). `units` wins over codes
//! (as in the spec), but codes given beside units must be valid too.
//! `features` (the ISCC tools' feature sets) or `simprints` (iscc-search's
//! form) are one query's granular features, alone or beside one code or
//! one unit list; `iscc_id` asks for "more like this" (the entry's own
//! units and features, the entry left out) and takes precedence: other
//! query fields beside it are ignored, as in iscc-search. A JSON array
//! of query objects (`{iscc_code}`, `{units}`, `{features}`, `{iscc_id}`,
//! …) is a batch that takes its parameters from the caller; `{queries:
//! [query objects], …parameters}` is a batch with its own parameters.
//! Parameters left out (or `null`) take the caller's defaults; `count`
//! defaults to [`DEFAULT_COUNT`].

use serde_json::{Map, Value};

use serde::Deserialize;

use super::entry::validate_code;
use super::features::features_of;
use super::{EngineError, IndexOptions, IndexParams, Query, SearchParams, MAX_SEARCH_COUNT};

pub use crate::index::DEFAULT_COUNT;

/// The fields of a request object.
pub const SEARCH_FIELDS: &[&str] = &[
    "queries",
    "iscc_codes",
    "iscc_code",
    "units",
    "features",
    "simprints",
    "iscc_id",
    "count",
    "exact",
    "unit_threshold",
    "simprint_threshold",
    "detail",
];

/// The fields of one query object of a batch.
const QUERY_FIELDS: &[&str] = &["iscc_code", "units", "features", "simprints", "iscc_id"];

/// A parsed search request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The queries, in order.
    pub queries: Vec<Query>,
    /// True when the caller sent a list (the answer is then a list too).
    pub batch: bool,
    /// Count, exactness and unit threshold.
    pub params: SearchParams,
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::Invalid(message.into())
}

impl SearchRequest {
    /// Parse request JSON text (an object or an array of query objects).
    /// `defaults` fill the parameters the text leaves out; a count above
    /// `max_count` is refused.
    pub fn from_json(
        text: &str,
        defaults: &SearchParams,
        max_count: usize,
    ) -> Result<SearchRequest, EngineError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| EngineError::Json(e.to_string()))?;
        match value {
            Value::Object(map) => SearchRequest::from_object(&map, defaults, max_count),
            Value::Array(items) => SearchRequest::from_queries(items, defaults),
            _ => Err(invalid(
                "search request: expected a JSON object or an array of query objects",
            )),
        }
    }

    /// Parse a request object (unknown fields are refused).
    pub fn from_object(
        map: &Map<String, Value>,
        defaults: &SearchParams,
        max_count: usize,
    ) -> Result<SearchRequest, EngineError> {
        if let Some(unknown) = map.keys().find(|k| !SEARCH_FIELDS.contains(&k.as_str())) {
            return Err(invalid(format!(
                "request body: unknown field `{unknown}` (expected {})",
                SEARCH_FIELDS.join(", ")
            )));
        }
        let (queries, batch) = match map.get("queries").filter(|v| !v.is_null()) {
            Some(list) => (query_list(list, map)?, true),
            None => queries(map)?,
        };
        let params = SearchParams {
            count: count(map, defaults.count, max_count)?,
            exact: flag(map, "exact", defaults.exact)?,
            unit_threshold: threshold(map, "unit_threshold", defaults.unit_threshold)?,
            simprint_threshold: threshold(map, "simprint_threshold", defaults.simprint_threshold)?,
            detail: flag(map, "detail", defaults.detail)?,
        };
        Ok(SearchRequest {
            queries,
            batch,
            params,
        })
    }

    /// A batch of query objects (`{iscc_code}` or `{units}` each).
    fn from_queries(
        items: Vec<Value>,
        defaults: &SearchParams,
    ) -> Result<SearchRequest, EngineError> {
        Ok(SearchRequest {
            queries: query_objects(&items)?,
            batch: true,
            params: *defaults,
        })
    }
}

impl Query {
    /// The query an entry (or a query object) holds: its `iscc_code`,
    /// `units` and granular features (`features` or `simprints`); other
    /// fields are ignored, so a file of entries serves as a file of
    /// queries.
    pub fn of_entry(value: &Value) -> Result<Query, EngineError> {
        let Value::Object(map) = value else {
            return Err(invalid(
                "expected a JSON object with `iscc_code` or `units`",
            ));
        };
        let iscc_code = match map.get("iscc_code") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("iscc_code: expected an ISCC-CODE string")),
        };
        let units = match map.get("units") {
            None | Some(Value::Null) => None,
            Some(v) => Some(string_list(v, "units")?),
        };
        let features = features_of(map, "query")?;
        if iscc_code.is_none() && units.is_none() && features.is_empty() {
            return Err(invalid(
                "expected `iscc_code`, `units`, `features` or `simprints`",
            ));
        }
        Ok(Query {
            iscc_code,
            units,
            features,
            iscc_id: None,
        })
    }
}

/// The query objects of a batch.
fn query_objects(items: &[Value]) -> Result<Vec<Query>, EngineError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::Object(map) => query_object(map, &format!("queries[{i}]")),
            _ => Err(invalid(format!("queries[{i}]: expected a query object"))),
        })
        .collect()
}

/// `queries` of a request object: a non-empty array of query objects, with
/// no query field beside it.
fn query_list(list: &Value, map: &Map<String, Value>) -> Result<Vec<Query>, EngineError> {
    if let Some(other) = QUERY_FIELDS
        .iter()
        .chain(&["iscc_codes"])
        .find(|f| map.get(**f).is_some_and(|v| !v.is_null()))
    {
        return Err(invalid(format!(
            "queries: a batch of query objects; `{other}` belongs inside them"
        )));
    }
    match list {
        Value::Array(items) if !items.is_empty() => query_objects(items),
        Value::Array(_) => Err(invalid("queries: empty array (give at least one query)")),
        _ => Err(invalid("queries: expected an array of query objects")),
    }
}

/// One query object of a batch: [`QUERY_FIELDS`], nothing else.
fn query_object(map: &Map<String, Value>, context: &str) -> Result<Query, EngineError> {
    if let Some(unknown) = map.keys().find(|k| !QUERY_FIELDS.contains(&k.as_str())) {
        return Err(invalid(format!(
            "{context}: unknown field `{unknown}` (expected {})",
            QUERY_FIELDS.join(", ")
        )));
    }
    // "More like this" takes precedence over the other query fields, which
    // must still be well-formed (bad input is an error, never ignored).
    if let Some(id) = iscc_id(map).map_err(|e| invalid(format!("{context}: {e}")))? {
        if ["iscc_code", "units", "features", "simprints"]
            .iter()
            .any(|f| map.get(*f).is_some_and(|v| !v.is_null()))
        {
            Query::of_entry(&Value::Object(map.clone()))
                .map_err(|e| invalid(format!("{context}: {e}")))?;
        }
        return Ok(Query::like(id));
    }
    Query::of_entry(&Value::Object(map.clone())).map_err(|e| invalid(format!("{context}: {e}")))
}

/// `iscc_id`: an ISCC-ID string, or `None` when absent or null.
fn iscc_id(map: &Map<String, Value>) -> Result<Option<String>, EngineError> {
    match map.get("iscc_id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(format!(
            "iscc_id: expected an ISCC-ID string, got {v}"
        ))),
    }
}

/// A required array of strings (e.g. `iscc_ids` of the server's bodies).
#[cfg(feature = "server")]
pub(crate) fn strings(map: &Map<String, Value>, field: &str) -> Result<Vec<String>, EngineError> {
    let Some(v) = map.get(field) else {
        return Err(invalid(format!("missing field `{field}`")));
    };
    string_list(v, field)
}

/// An array of strings; `field` names it in errors.
pub(crate) fn string_list(v: &Value, field: &str) -> Result<Vec<String>, EngineError> {
    let Value::Array(items) = v else {
        return Err(invalid(format!("{field}: expected an array of strings")));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(invalid(format!("{field}[{i}]: expected a string"))),
        })
        .collect()
}

/// The queries of a request object and whether they form a batch.
fn queries(map: &Map<String, Value>) -> Result<(Vec<Query>, bool), EngineError> {
    let features = features_of(map, "request body")?;
    // "More like this" takes precedence over the other query fields, which
    // must still be well-formed (bad input is an error, never ignored).
    if let Some(id) = iscc_id(map)? {
        if ["iscc_codes", "iscc_code", "units"]
            .iter()
            .any(|f| map.get(*f).is_some_and(|v| !v.is_null()))
        {
            unit_or_code_queries(map)?;
        }
        return Ok((vec![Query::like(id)], false));
    }
    let no_units = ["iscc_codes", "iscc_code", "units"]
        .iter()
        .all(|f| map.get(*f).is_none_or(Value::is_null));
    if no_units && !features.is_empty() {
        return Ok((vec![Query::features(features)], false));
    }
    let (mut queries, batch) = unit_or_code_queries(map)?;
    if !features.is_empty() {
        if batch {
            return Err(invalid(
                "features go with one query; for a batch send an array of query objects",
            ));
        }
        for q in &mut queries {
            q.features = features.clone();
        }
    }
    Ok((queries, batch))
}

/// The queries of `units`, `iscc_codes` or `iscc_code`.
fn unit_or_code_queries(map: &Map<String, Value>) -> Result<(Vec<Query>, bool), EngineError> {
    let by_units = unit_queries(map)?;
    let by_codes = codes(map, "iscc_codes")?;
    let by_code = codes(map, "iscc_code")?;
    let (queries, batch) =
        match (by_units, by_codes, by_code) {
            (Some(q), codes, code) => {
                for (field, list) in [("iscc_codes", codes), ("iscc_code", code)] {
                    for (i, c) in list.map(|l| l.0).unwrap_or_default().iter().enumerate() {
                        validate_code(c, &format!("{field}[{i}]"))?;
                    }
                }
                q
            }
            (None, Some((codes, batch)), code) => {
                if let Some((code, _)) = code {
                    validate_code(&code[0], "iscc_code")?;
                }
                (codes.into_iter().map(Query::code).collect(), batch)
            }
            (None, None, Some((code, _))) => (code.into_iter().map(Query::code).collect(), false),
            (None, None, None) => return Err(invalid(
                "one of `iscc_codes`, `units`, `features`, `simprints` or `iscc_id` is required",
            )),
        };
    if batch && queries.is_empty() {
        return Err(invalid("no queries given"));
    }
    Ok((queries, batch))
}

/// The codes of `iscc_codes` (a string or a non-empty array of strings) or
/// `iscc_code` (a string); `None` when absent or null.
fn codes(
    map: &Map<String, Value>,
    field: &str,
) -> Result<Option<(Vec<String>, bool)>, EngineError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(code)) => Ok(Some((vec![code.clone()], false))),
        Some(v @ Value::Array(items)) if field == "iscc_codes" => {
            if items.is_empty() {
                return Err(invalid(format!(
                    "{field}: empty array (give at least one ISCC-CODE)"
                )));
            }
            Ok(Some((string_list(v, field)?, true)))
        }
        Some(_) if field == "iscc_codes" => Err(invalid(format!(
            "{field}: expected an ISCC-CODE string or an array of them"
        ))),
        Some(_) => Err(invalid(format!("{field}: expected an ISCC-CODE string"))),
    }
}

/// The queries of `units`: one query's units (an array of strings) or a
/// batch (an array of such arrays); `None` when absent or null.
fn unit_queries(map: &Map<String, Value>) -> Result<Option<(Vec<Query>, bool)>, EngineError> {
    let Some(units) = map.get("units").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Value::Array(items) = units else {
        return Err(invalid(
            "units: expected an array of ISCC-UNITs or an array of such arrays",
        ));
    };
    if items.is_empty() {
        return Err(invalid("units: empty array (give at least one ISCC-UNIT)"));
    }
    let arrays = items.iter().filter(|v| v.is_array()).count();
    if arrays > 0 && arrays < items.len() {
        return Err(invalid(
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

/// `count`: an integer from 1 to `max_count` (`112.0` too: JSON Schema's
/// `integer`).
fn count(map: &Map<String, Value>, default: usize, max_count: usize) -> Result<usize, EngineError> {
    let max = max_count.min(MAX_SEARCH_COUNT);
    let Some(v) = map.get("count").filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    let n = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u32::MAX as f64)
            .map(|f| f as u64)
    });
    match n {
        Some(n) if n >= 1 && n <= max as u64 => Ok(n as usize),
        _ => Err(invalid(format!(
            "count: expected an integer from 1 to {max}, got {v}"
        ))),
    }
}

/// A boolean field (`exact`, `detail`).
fn flag(map: &Map<String, Value>, field: &str, default: bool) -> Result<bool, EngineError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(invalid(format!("{field}: expected true or false, got {v}"))),
    }
}

/// A threshold field (`unit_threshold`, `simprint_threshold`): 0 to 1.
fn threshold(
    map: &Map<String, Value>,
    field: &str,
    default: Option<f32>,
) -> Result<Option<f32>, EngineError> {
    let Some(v) = map.get(field).filter(|v| !v.is_null()) else {
        return Ok(default);
    };
    match v.as_f64() {
        Some(t) if (0.0..=1.0).contains(&t) => Ok(Some(t as f32)),
        _ => Err(invalid(format!(
            "{field}: expected a number from 0 to 1, got {v}"
        ))),
    }
}

/// Declares the open options once: the JSON struct and the list of its
/// field names ([`OPEN_OPTION_FIELDS`]) come from the same lines.
macro_rules! open_options {
    ($($field:ident: $ty:ty,)*) => {
        /// The fields of open options (every one optional).
        pub const OPEN_OPTION_FIELDS: &[&str] = &[$(stringify!($field)),*];

        /// Open options as JSON; a field left out takes the library default.
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct OpenOptions {
            $($field: Option<$ty>,)*
        }
    };
}

open_options! {
    realm: u8,
    durable: bool,
    hub_id: u16,
    unit_threshold: f32,
    max_dim: usize,
    connectivity: usize,
    expansion_add: usize,
    expansion_search: usize,
    exact_threshold: crate::index::ExactThreshold,
    shard_size: u64,
    partition: crate::index::Partition,
}

impl IndexOptions {
    /// Options from JSON text: an object with any of
    /// [`OPEN_OPTION_FIELDS`] (`realm` 0/1 and the parameters apply to a new
    /// index only); `None` or a field left out takes the default.
    pub fn from_json(text: Option<&str>, read_only: bool) -> Result<IndexOptions, EngineError> {
        let o: OpenOptions = match text {
            None => OpenOptions::default(),
            Some(text) => {
                serde_json::from_str(text).map_err(|e| EngineError::Json(e.to_string()))?
            }
        };
        let d = IndexOptions::default();
        let p = IndexParams::default();
        Ok(IndexOptions {
            params: IndexParams {
                max_dim: o.max_dim.unwrap_or(p.max_dim),
                connectivity: o.connectivity.unwrap_or(p.connectivity),
                expansion_add: o.expansion_add.unwrap_or(p.expansion_add),
                expansion_search: o.expansion_search.unwrap_or(p.expansion_search),
                exact_threshold: o.exact_threshold.unwrap_or(p.exact_threshold),
                shard_size: o.shard_size.unwrap_or(p.shard_size),
                partition: o.partition.unwrap_or(p.partition),
            },
            realm: o.realm,
            durable: o.durable.unwrap_or(d.durable),
            read_only,
            hub_id: o.hub_id.unwrap_or(d.hub_id),
            unit_threshold: o.unit_threshold.unwrap_or(d.unit_threshold),
        })
    }
}

#[cfg(test)]
mod tests;
