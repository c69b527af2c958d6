//! Options of the low-level index ABI: the JSON of `ivdb_sharded_open` and
//! `ivdb_unit_new`, and the per-call [`ivdb_search_options`].

use serde_json::Value;

use crate::ffi::boundary::Failure;
use crate::ffi::status::{IVDB_INVALID_ARGUMENT, IVDB_INVALID_JSON};
use crate::index::{SearchOptions, ShardedOptions, UnitIndexOptions, DEFAULT_COUNT};

/// How `ivdb_sharded_open` opens, from the keys of its JSON that are not
/// index parameters.
#[derive(Debug, Default)]
pub(crate) struct OpenMode {
    /// `"keys": "u128"` (default `"u64"`); `None`: as the index on disk has.
    pub(crate) wide_keys: Option<bool>,
    /// `"read_only": true`.
    pub(crate) read_only: bool,
}

/// `json` (NULL: nothing) over `T::default()`: every name of the object
/// must be a field of `T`, or taken by `extra` (which returns false for a
/// name it does not know); errors name the option.
fn merged<T: serde::Serialize + serde::de::DeserializeOwned + Default>(
    json: Option<&str>,
    mut extra: impl FnMut(&str, &Value) -> Result<bool, Failure>,
    extra_names: &str,
) -> Result<T, Failure> {
    let Some(json) = json else {
        return Ok(T::default());
    };
    let given: Value = serde_json::from_str(json)
        .map_err(|e| Failure::new(IVDB_INVALID_JSON, format!("options_json: {e}")))?;
    let Value::Object(given) = given else {
        return Err(bad("expected a JSON object".into()));
    };
    let Ok(Value::Object(mut all)) = serde_json::to_value(T::default()) else {
        return Err(bad("defaults are not an object (a bug)".into()));
    };
    let defaults = all.clone();
    let names: Vec<String> = all.keys().cloned().collect();
    for (k, v) in given {
        if extra(&k, &v)? {
            continue;
        }
        if !all.contains_key(&k) {
            return Err(bad(format!(
                "unknown option {k:?} (expected {extra_names}{})",
                names.join(", ")
            )));
        }
        // Each value alone over the defaults, so an error names its option
        // (serde's own message names only the value).
        let mut alone = defaults.clone();
        alone.insert(k.clone(), v.clone());
        if let Err(e) = serde_json::from_value::<T>(Value::Object(alone)) {
            let e = e.to_string();
            return Err(bad(if e.contains(k.as_str()) {
                e
            } else {
                format!("option {k:?}: {e}")
            }));
        }
        all.insert(k, v);
    }
    serde_json::from_value(Value::Object(all)).map_err(|e| bad(e.to_string()))
}

fn bad(why: String) -> Failure {
    Failure::new(IVDB_INVALID_ARGUMENT, format!("options_json: {why}"))
}

/// Parse the options JSON of `ivdb_sharded_open` (NULL: defaults): index
/// parameters over [`ShardedOptions::default`] plus `keys` and `read_only`.
pub(crate) fn open_options(json: Option<&str>) -> Result<(ShardedOptions, OpenMode), Failure> {
    let mut mode = OpenMode::default();
    let options = merged(
        json,
        |k, v| match k {
            "keys" => {
                mode.wide_keys = Some(match v.as_str() {
                    Some("u64") => false,
                    Some("u128") => true,
                    _ => return Err(bad(format!("keys {v} (expected \"u64\" or \"u128\")"))),
                });
                Ok(true)
            }
            "read_only" => {
                mode.read_only = v
                    .as_bool()
                    .ok_or_else(|| bad(format!("read_only {v} (expected true or false)")))?;
                Ok(true)
            }
            _ => Ok(false),
        },
        "keys, read_only, ",
    )?;
    Ok((options, mode))
}

/// Parse the options JSON of `ivdb_unit_new` (NULL: defaults) over
/// [`UnitIndexOptions::default`].
pub(crate) fn unit_options(json: Option<&str>) -> Result<UnitIndexOptions, Failure> {
    merged(json, |_, _| Ok(false), "")
}

/// Per-call search options; a NULL pointer means all defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ivdb_search_options {
    /// Hits per query (0: 10).
    pub count: usize,
    /// -1: the index chooses (by measured cost); 0: the approximate path
    /// (probe the nearest lists of a partitioned index, else walk the
    /// graph); 1: exact scan.
    pub exact: i32,
    /// Graph expansion for this call (0: the index's `expansion_search`).
    pub expansion: usize,
    /// Only hits at most this far (negative or NaN: no limit). A bounded
    /// search with `exact` -1 scans, so that every row within the bound
    /// comes back (up to `count`); `exact` 0 accepts missing some.
    pub max_distance: f32,
    /// Lists a partitioned index probes for this call (0: the index's
    /// calibrated default; more than it has: every list, the exact scan's
    /// answer). Ignored by unpartitioned indexes and by `exact` 1.
    pub nprobe: usize,
}

/// The library's search options from the caller's (NULL: defaults).
pub(crate) fn search_options(ptr: *const ivdb_search_options) -> Result<SearchOptions, Failure> {
    if ptr.is_null() {
        return Ok(SearchOptions::default());
    }
    // SAFETY: non-NULL, and by the contract a readable struct.
    let o = unsafe { *ptr };
    let max = crate::engine::MAX_SEARCH_COUNT;
    if o.count > max {
        return Err(Failure::new(
            IVDB_INVALID_ARGUMENT,
            format!("options.count {} (at most {max})", o.count),
        ));
    }
    let exact = match o.exact {
        -1 => None,
        0 => Some(false),
        1 => Some(true),
        n => {
            return Err(Failure::new(
                IVDB_INVALID_ARGUMENT,
                format!("options.exact {n} (expected -1, 0 or 1)"),
            ))
        }
    };
    Ok(SearchOptions {
        count: if o.count == 0 { DEFAULT_COUNT } else { o.count },
        exact,
        expansion_search: (o.expansion > 0).then_some(o.expansion),
        max_distance: (o.max_distance >= 0.0).then_some(o.max_distance),
        recall_within: None,
        threads: None,
        nprobe: (o.nprobe > 0).then_some(o.nprobe),
    })
}

/// The parameters of a standalone bloom filter (`ivdb_bloom_new`).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub(crate) struct BloomOptions {
    /// Keys the first link holds.
    pub(crate) initial_capacity: u64,
    /// Compound false positive rate (0 < rate < 1).
    pub(crate) error_rate: f64,
    /// Each further link this many times the last.
    pub(crate) growth: u32,
}

impl Default for BloomOptions {
    fn default() -> BloomOptions {
        BloomOptions {
            initial_capacity: 100_000,
            error_rate: 0.01,
            growth: 2,
        }
    }
}

/// Parse the options JSON of `ivdb_bloom_new` (NULL: defaults).
pub(crate) fn bloom_options(json: Option<&str>) -> Result<BloomOptions, Failure> {
    merged(json, |_, _| Ok(false), "")
}
