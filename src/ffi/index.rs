//! The index handle and its functions.
//!
//! `ivdb_index` is opaque: created by `ivdb_open`/`ivdb_open_read_only`,
//! released by `ivdb_close`. One handle may be used from many threads at
//! once (searches run in parallel, writes are serialised inside).

use std::ffi::c_char;

use serde::Deserialize;

use super::boundary::{c_string, guard, ivdb_error, opt_str_arg, out_arg, str_arg, Failure};
use super::matches::{boxed, free_boxed, ivdb_matches};
use super::status::*;
use crate::engine::{IndexOptions, IndexParams, IsccIndex, IsccMatches, Query, SearchParams};

/// An open ISCC index (opaque).
pub struct ivdb_index {
    inner: IsccIndex,
}

fn index<'a>(ptr: *const ivdb_index) -> Result<&'a IsccIndex, Failure> {
    if ptr.is_null() {
        return Err(Failure::null("index"));
    }
    // SAFETY: non-NULL, and by the API contract a handle from `ivdb_open`
    // that has not been closed; the handle is Sync.
    Ok(unsafe { &(*ptr).inner })
}

/// Options of `ivdb_open` as JSON; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct OpenOptions {
    realm: Option<u8>,
    durable: Option<bool>,
    hub_id: Option<u16>,
    unit_threshold: Option<f32>,
    max_dim: Option<usize>,
    connectivity: Option<usize>,
    expansion_add: Option<usize>,
    expansion_search: Option<usize>,
    exact_threshold: Option<usize>,
    shard_size: Option<u64>,
}

fn parse_options(json: Option<&str>, read_only: bool) -> Result<IndexOptions, Failure> {
    let o: OpenOptions = match json {
        None => OpenOptions::default(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| Failure::new(IVDB_INVALID_JSON, format!("options_json: {e}")))?,
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
        },
        realm: o.realm,
        durable: o.durable.unwrap_or(d.durable),
        read_only,
        hub_id: o.hub_id.unwrap_or(d.hub_id),
        unit_threshold: o.unit_threshold.unwrap_or(d.unit_threshold),
    })
}

fn open(
    path: *const c_char,
    options_json: *const c_char,
    read_only: bool,
    out: *mut *mut ivdb_index,
) -> Result<(), Failure> {
    out_arg(out, "out")?;
    let path = opt_str_arg(path, "path")?;
    if read_only && path.is_none() {
        return Err(Failure::null("path"));
    }
    let options = parse_options(opt_str_arg(options_json, "options_json")?, read_only)?;
    let inner = IsccIndex::open(path.map(std::path::Path::new), options)?;
    let handle = Box::into_raw(Box::new(ivdb_index { inner }));
    // SAFETY: `out` was checked non-NULL; the caller provides storage.
    unsafe { *out = handle };
    Ok(())
}

/// Open (or create) the index at `path`, or an in-memory index when `path`
/// is NULL (a temporary directory, removed on close).
///
/// `options_json` may be NULL or a JSON object with any of: `realm` (0/1,
/// fixed for a new index), `durable` (fsync each commit, default true),
/// `hub_id`, `unit_threshold` (0.75), and for a new index `max_dim`,
/// `connectivity`, `expansion_add`, `expansion_search`, `exact_threshold`,
/// `shard_size`. On success `*out` receives a handle the caller releases
/// with `ivdb_close`. A second writer of the same directory gets
/// `IVDB_LOCKED`.
///
/// # Safety
/// `path` and `options_json` are NULL or NUL-terminated strings; `out` is
/// writable; `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_open(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || open(path, options_json, false, out))
}

/// Open the index at `path` read-only (no lock; another process may write
/// meanwhile; unit indexes are memory-mapped as last saved). Writes return
/// `IVDB_READ_ONLY`. Release with `ivdb_close`.
///
/// # Safety
/// As `ivdb_open`; `path` must not be NULL.
#[no_mangle]
pub unsafe extern "C" fn ivdb_open_read_only(
    path: *const c_char,
    out: *mut *mut ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || open(path, std::ptr::null(), true, out))
}

/// Save (when writable) and release the index. NULL is a no-op. The handle
/// is freed even when saving fails (the status and `err` then say why).
///
/// # Safety
/// `index` is NULL or a handle from `ivdb_open` not yet closed, used by no
/// other thread during or after this call.
#[no_mangle]
pub unsafe extern "C" fn ivdb_close(
    index: *mut ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        if index.is_null() {
            return Ok(());
        }
        // SAFETY: the caller hands over ownership of a live handle.
        let handle = unsafe { Box::from_raw(index) };
        handle.inner.close()?;
        Ok(())
    })
}

fn write_string(out: *mut *mut c_char, s: String) {
    // SAFETY: every caller checked `out` non-NULL first.
    unsafe { *out = c_string(s) };
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure::new(IVDB_INTERNAL, e.to_string()))
}

/// Add entries: `json` is one entry object or an array of them (`iscc_id`?,
/// `iscc_code`?, `units`?, any other fields). `*out_ids_json` receives a
/// JSON array with one ISCC-ID per entry; free it with `ivdb_free_string`.
///
/// # Safety
/// `index` is a live handle; `json` a NUL-terminated string; `out_ids_json`
/// writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_add_json(
    index: *const ivdb_index,
    json: *const c_char,
    out_ids_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        let json = str_arg(json, "json")?;
        out_arg(out_ids_json, "out_ids_json")?;
        let ids = idx.add_json(json)?;
        write_string(out_ids_json, to_json(&ids)?);
        Ok(())
    })
}

/// The stored entry of one ISCC-ID as JSON (`IVDB_NOT_FOUND` when absent);
/// free `*out_json` with `ivdb_free_string`.
///
/// # Safety
/// As `ivdb_add_json`.
#[no_mangle]
pub unsafe extern "C" fn ivdb_get_json(
    index: *const ivdb_index,
    iscc_id: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        let id = str_arg(iscc_id, "iscc_id")?;
        out_arg(out_json, "out_json")?;
        let entry = idx.get_one(id)?;
        write_string(out_json, to_json(&entry)?);
        Ok(())
    })
}

/// Search with a JSON query: `{"iscc_code": …}` or `{"units": […]}`, or an
/// array of such for a batch. `*out_json` receives the matches (an object
/// with `matches` and `instance_matches`, or an array of them); free it with
/// `ivdb_free_string`.
///
/// # Safety
/// As `ivdb_add_json`.
#[no_mangle]
pub unsafe extern "C" fn ivdb_search_json(
    index: *const ivdb_index,
    query_json: *const c_char,
    count: usize,
    exact: bool,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        let text = str_arg(query_json, "query_json")?;
        out_arg(out_json, "out_json")?;
        let params = SearchParams {
            count,
            exact,
            ..SearchParams::default()
        };
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Failure::new(IVDB_INVALID_JSON, format!("query_json: {e}")))?;
        let parse = |v: serde_json::Value| -> Result<Query, Failure> {
            serde_json::from_value(v)
                .map_err(|e| Failure::new(IVDB_INVALID_JSON, format!("query_json: {e}")))
        };
        let out = if let serde_json::Value::Array(items) = value {
            let queries: Vec<Query> = items.into_iter().map(parse).collect::<Result<_, _>>()?;
            to_json(&idx.search_batch(&queries, &params)?.queries)?
        } else {
            to_json::<IsccMatches>(&idx.search(&parse(value)?, &params)?)?
        };
        write_string(out_json, out);
        Ok(())
    })
}

/// Remove entries by ISCC-ID (`iscc_ids` holds `len` strings); unknown IDs
/// remove nothing. `*out_removed` (may be NULL) receives the number of
/// index mappings removed.
///
/// # Safety
/// `index` is a live handle; `iscc_ids` points to `len` NUL-terminated
/// strings (or is NULL when `len` is 0); `out_removed` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_remove(
    index: *const ivdb_index,
    iscc_ids: *const *const c_char,
    len: usize,
    out_removed: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        let ids = strings(iscc_ids, len, "iscc_ids")?;
        let removed = idx.remove(&ids)?;
        if !out_removed.is_null() {
            // SAFETY: checked non-NULL; writable by the contract.
            unsafe { *out_removed = removed };
        }
        Ok(())
    })
}

/// Persist the unit indexes (entries are durable on every add already).
///
/// # Safety
/// `index` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_save(
    index: *const ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || Ok(super::index::index(index)?.save()?))
}

/// Recreate every derived index from the stored entries, then save.
///
/// # Safety
/// `index` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_rebuild(
    index: *const ivdb_index,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || Ok(super::index::index(index)?.rebuild()?))
}

/// Figures of the index as JSON (`size`, `unit_types`, per unit type
/// counts, realm, …); free `*out_json` with `ivdb_free_string`.
///
/// # Safety
/// `index` is a live handle; `out_json` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_info_json(
    index: *const ivdb_index,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        out_arg(out_json, "out_json")?;
        let info = idx.info()?;
        write_string(out_json, to_json(&info)?);
        Ok(())
    })
}

/// Read `len` C strings (NULL allowed when `len` is 0).
fn strings<'a>(ptr: *const *const c_char, len: usize, name: &str) -> Result<Vec<&'a str>, Failure> {
    if ptr.is_null() && len > 0 {
        return Err(Failure::null(name));
    }
    (0..len)
        .map(|i| {
            // SAFETY: `ptr` holds `len` pointers by the API contract.
            let p = unsafe { *ptr.add(i) };
            str_arg(p, &format!("{name}[{i}]"))
        })
        .collect()
}

fn query_of(
    iscc_code: *const c_char,
    units: *const *const c_char,
    units_len: usize,
) -> Result<Query, Failure> {
    let units = strings(units, units_len, "units")?;
    Ok(Query {
        iscc_code: opt_str_arg(iscc_code, "iscc_code")?.map(str::to_string),
        units: (!units.is_empty()).then(|| units.iter().map(|u| u.to_string()).collect()),
    })
}

/// Search one query: an ISCC-CODE (`iscc_code`, may be NULL when units are
/// given) or `units_len` ISCC-UNIT strings (units win when both are given);
/// up to `count` matches; `exact` for exhaustive search. `*out` receives the
/// matches; release them with `ivdb_free_matches`.
///
/// # Safety
/// `index` is a live handle; strings are NUL-terminated; `units` holds
/// `units_len` pointers (or is NULL when 0); `out` writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_search(
    index: *const ivdb_index,
    iscc_code: *const c_char,
    units: *const *const c_char,
    units_len: usize,
    count: usize,
    exact: bool,
    out: *mut *mut ivdb_matches,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        out_arg(out, "out")?;
        let query = query_of(iscc_code, units, units_len)?;
        let params = SearchParams {
            count,
            exact,
            ..SearchParams::default()
        };
        let found = idx.search(&query, &params)?;
        let (ptr, _) = boxed(std::slice::from_ref(&found));
        // SAFETY: checked non-NULL above.
        unsafe { *out = ptr };
        Ok(())
    })
}

/// Search `len` ISCC-CODEs at once (in parallel). `*out` receives an array
/// of `len` `ivdb_matches`, one per code in order; release it with
/// `ivdb_free_matches_batch(*out, len)`.
///
/// # Safety
/// `index` is a live handle; `iscc_codes` holds `len` NUL-terminated
/// strings; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_search_batch(
    index: *const ivdb_index,
    iscc_codes: *const *const c_char,
    len: usize,
    count: usize,
    exact: bool,
    out: *mut *mut ivdb_matches,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = super::index::index(index)?;
        out_arg(out, "out")?;
        let queries: Vec<Query> = strings(iscc_codes, len, "iscc_codes")?
            .into_iter()
            .map(Query::code)
            .collect();
        let params = SearchParams {
            count,
            exact,
            ..SearchParams::default()
        };
        let found = idx.search_batch(&queries, &params)?;
        let (ptr, _) = boxed(&found.queries);
        // SAFETY: checked non-NULL above.
        unsafe { *out = ptr };
        Ok(())
    })
}

/// Release matches from `ivdb_search`. NULL is a no-op. Never pass an
/// element of an `ivdb_search_batch` array here: release that array whole
/// with `ivdb_free_matches_batch`. Releasing twice is undefined behaviour,
/// as with `free`.
///
/// # Safety
/// `matches` is NULL or from `ivdb_search`, released once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_free_matches(matches: *mut ivdb_matches) {
    if !matches.is_null() {
        // SAFETY: one struct made by `boxed`.
        unsafe { free_boxed(matches, 1) };
    }
}

/// Release the array from `ivdb_search_batch` (`len` as passed there),
/// every element with it. NULL is a no-op.
///
/// # Safety
/// `matches` is NULL or from `ivdb_search_batch` with this `len`, released
/// once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_free_matches_batch(matches: *mut ivdb_matches, len: usize) {
    if !matches.is_null() {
        // SAFETY: an array of `len` structs made by `boxed`.
        unsafe { free_boxed(matches, len) };
    }
}
