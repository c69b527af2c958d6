//! The index handle and its functions.
//!
//! `ivdb_index` is opaque: created by `ivdb_open`/`ivdb_open_read_only`,
//! released by `ivdb_close`. One handle may be used from many threads at
//! once (searches run in parallel, writes are serialised inside).

use std::ffi::c_char;

use super::boundary::{
    c_string, guard, ivdb_error, opt_out_arg, opt_str_arg, out_arg, str_arg, Failure,
};
use super::matches::{boxed, free_boxed, ivdb_matches};
use super::status::*;
use crate::engine::{
    IndexOptions, IsccIndex, IsccMatches, Query, SearchParams, SearchRequest, DEFAULT_COUNT,
    MAX_SEARCH_COUNT,
};

/// An open ISCC index (opaque).
pub struct ivdb_index {
    pub(super) inner: IsccIndex,
}

pub(super) fn index<'a>(ptr: *const ivdb_index) -> Result<&'a IsccIndex, Failure> {
    if ptr.is_null() {
        return Err(Failure::null("index"));
    }
    // SAFETY: non-NULL, and by the API contract a handle from `ivdb_open`
    // that has not been closed; the handle is Sync.
    Ok(unsafe { &(*ptr).inner })
}

fn open(
    path: *const c_char,
    options_json: *const c_char,
    read_only: bool,
    out: *mut *mut ivdb_index,
) -> Result<(), Failure> {
    let out = out_arg(out, "out")?;
    let path = opt_str_arg(path, "path")?;
    if read_only && path.is_none() {
        return Err(Failure::null("path"));
    }
    let options = IndexOptions::from_json(opt_str_arg(options_json, "options_json")?, read_only)
        .map_err(|e| Failure::from(e).context("options_json"))?;
    let inner = IsccIndex::open(path.map(std::path::Path::new), options)?;
    out.write(Box::into_raw(Box::new(ivdb_index { inner })));
    Ok(())
}

/// Open (or create) the index at `path`, or an in-memory index when `path`
/// is NULL (a temporary directory, removed on close).
///
/// `options_json` may be NULL or a JSON object with any of: `realm` (0/1,
/// fixed for a new index), `durable` (fsync each commit, default true),
/// `hub_id`, `unit_threshold` (0.75), and for a new index `max_dim`,
/// `connectivity`, `expansion_add`, `expansion_search`, `exact_threshold`
/// (`"auto"`, the default: by measured cost; or a row count), `shard_size`,
/// `partition` (`"auto"`, the default: unit indexes partition their rows
/// into lists when measured to pay; `"always"`; `"off"`). On success
/// `*out` receives a handle the caller releases with `ivdb_close`. A second writer of the same directory gets
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

/// Delete the Milvus index a `milvus://HOST:PORT/NAME` URI names: every
/// collection it has. `*out_dropped` (when not NULL) receives how many were
/// dropped (0 when it had none). A local index is a directory: remove it
/// with the file system (a path that is not a `milvus://` URI gives
/// `IVDB_INVALID_ARGUMENT`). Another handle open on the index sees
/// `IVDB_IO` errors from then on.
///
/// # Safety
/// `uri` is a NUL-terminated string; `out_dropped` is NULL or writable;
/// `err` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_drop_remote(
    uri: *const c_char,
    out_dropped: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = opt_out_arg(out_dropped);
        let n = IsccIndex::drop_remote(str_arg(uri, "uri")?)?;
        if let Some(out) = out {
            out.write(n);
        }
        Ok(())
    })
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

/// The shape every JSON entry point shares: a live handle, one string
/// argument (`input`, named in errors), and a JSON answer written to the
/// out-pointer named `out_name` (freed by the caller with
/// `ivdb_free_string`). `answer` turns the string into the JSON text.
fn json_call(
    index: *const ivdb_index,
    input: (*const c_char, &str),
    out: (*mut *mut c_char, &str),
    answer: impl FnOnce(&IsccIndex, &str) -> Result<String, Failure>,
) -> Result<(), Failure> {
    let idx = super::index::index(index)?;
    let text = str_arg(input.0, input.1)?;
    let out = out_arg(out.0, out.1)?;
    let json = answer(idx, text)?;
    out.write(c_string(json));
    Ok(())
}

/// A value as JSON text for C (serialising our own types cannot fail; if
/// it did, that is the library's fault).
pub(super) fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Failure> {
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
        json_call(
            index,
            (json, "json"),
            (out_ids_json, "out_ids_json"),
            |idx, json| to_json(&idx.add_json(json)?),
        )
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
        json_call(
            index,
            (iscc_id, "iscc_id"),
            (out_json, "out_json"),
            |idx, id| to_json(&idx.get_one(id)?),
        )
    })
}

/// Run a search request (the engine's grammar; `count`/`exact` where the
/// text leaves them out): the results of each query, and whether the
/// request was a batch. `argument` names the text in errors.
pub(super) fn run_request(
    idx: &IsccIndex,
    text: &str,
    argument: &str,
    count: usize,
    exact: bool,
) -> Result<(Vec<IsccMatches>, bool), Failure> {
    let request = SearchRequest::from_json(text, &params(count, exact), MAX_SEARCH_COUNT)
        .map_err(|e| Failure::from(e).context(argument))?;
    let results = if request.batch {
        idx.search_batch(&request.queries, &request.params)?.queries
    } else {
        vec![idx.search(&request.queries[0], &request.params)?]
    };
    Ok((results, request.batch))
}

/// Search parameters of the C arguments: `count` 0 means the library's
/// default ([`crate::engine::DEFAULT_COUNT`]).
fn params(count: usize, exact: bool) -> SearchParams {
    SearchParams {
        count: if count == 0 { DEFAULT_COUNT } else { count },
        exact,
        ..SearchParams::default()
    }
}

/// Search with a JSON request, in the engine's one request grammar (the
/// REST `/search` body): an object `{"iscc_code": …}`, `{"iscc_codes":
/// […]}` or `{"units": […]}` (an array of unit arrays is a batch), with
/// optional `count`, `exact` and `unit_threshold`; or an array of query
/// objects (`{"iscc_code"}` or `{"units"}`) for a batch. `count` (0: the
/// default, 10) and `exact` apply where the JSON does not set them.
/// `*out_json` receives the matches (an object with `matches` and
/// `instance_matches`, or an array of them for a batch); free it with
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
        json_call(
            index,
            (query_json, "query_json"),
            (out_json, "out_json"),
            |idx, text| {
                let (results, batch) = run_request(idx, text, "query_json", count, exact)?;
                match &results[..] {
                    [one] if !batch => to_json::<IsccMatches>(one),
                    _ => to_json(&results),
                }
            },
        )
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
        if let Some(out) = opt_out_arg(out_removed) {
            out.write(removed);
        }
        Ok(())
    })
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
        let out = out_arg(out_json, "out_json")?;
        out.write(c_string(to_json(&idx.info()?)?));
        Ok(())
    })
}

/// Read `len` C strings (NULL allowed when `len` is 0).
pub(super) fn strings<'a>(
    ptr: *const *const c_char,
    len: usize,
    name: &str,
) -> Result<Vec<&'a str>, Failure> {
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
        ..Query::default()
    })
}

/// Search one query: an ISCC-CODE (`iscc_code`, may be NULL when units are
/// given) or `units_len` ISCC-UNIT strings (units win when both are given);
/// up to `count` matches (0: the default, 10); `exact` for exhaustive search. `*out` receives the
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
        let out = out_arg(out, "out")?;
        let query = query_of(iscc_code, units, units_len)?;
        let found = idx.search(&query, &params(count, exact))?;
        let (ptr, _) = boxed(std::slice::from_ref(&found));
        out.write(ptr);
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
        let out = out_arg(out, "out")?;
        let queries: Vec<Query> = strings(iscc_codes, len, "iscc_codes")?
            .into_iter()
            .map(Query::code)
            .collect();
        let found = idx.search_batch(&queries, &params(count, exact))?;
        let (ptr, _) = boxed(&found.queries);
        out.write(ptr);
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
