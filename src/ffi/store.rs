//! The store handle (`ivdb_store`): the primary store of an index directory
//! on its own — entries by 64-bit key and metadata, without the unit
//! indexes (the engine's `IsccStore`). Writes here are journalled exactly
//! as an index's adds and removals are, so the next `ivdb_open` of the
//! directory brings its unit indexes in line.

use std::ffi::c_char;

use super::boundary::{
    c_string, guard, ivdb_error, opt_out_arg, opt_str_arg, out_arg, str_arg, Failure,
};
use super::index::to_json;
use super::status::{ivdb_status, IVDB_INVALID_ISCC, IVDB_INVALID_JSON};
use crate::engine::{EngineError, IndexOptions, IsccStore};

/// An open store (opaque).
pub struct ivdb_store {
    inner: IsccStore,
}

fn store<'a>(ptr: *const ivdb_store) -> Result<&'a IsccStore, Failure> {
    if ptr.is_null() {
        return Err(Failure::null("store"));
    }
    // SAFETY: non-NULL, and by the API contract a handle from
    // `ivdb_store_open` not yet closed; the store is Sync.
    Ok(unsafe { &(*ptr).inner })
}

fn json_of(text: &str, name: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::new(IVDB_INVALID_JSON, format!("{name}: {e}")))
}

/// Open (or create) the store of the index directory `path` (its LMDB
/// environment is `path/primary.lmdb`). `options_json` may be NULL or a
/// JSON object in `ivdb_open`'s grammar plus `read_only` (bool): `realm`
/// (0/1: the realm keys are read in; a store keeps the realm it has),
/// `durable` (fsync each commit, default true), and for a new directory the
/// index parameters. A writable store holds the directory's writer lock
/// (`IVDB_LOCKED` while an index or another store writes it). Release with
/// `ivdb_store_close`.
///
/// # Safety
/// `path` is a NUL-terminated string; `options_json` NULL or one; `out`
/// writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_open(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut ivdb_store,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let path = str_arg(path, "path")?;
        let text = opt_str_arg(options_json, "options_json")?;
        // `read_only` is this call's own field; the rest is the engine's
        // open-options grammar.
        let (read_only, rest) = match text {
            None => (false, None),
            Some(t) => {
                let mut v = json_of(t, "options_json")?;
                let ro = match v.as_object_mut().and_then(|m| m.remove("read_only")) {
                    None => false,
                    Some(serde_json::Value::Bool(b)) => b,
                    Some(other) => {
                        return Err(Failure::new(
                            IVDB_INVALID_JSON,
                            format!("options_json: read_only must be a boolean, not {other}"),
                        ))
                    }
                };
                (ro, Some(v.to_string()))
            }
        };
        let options = IndexOptions::from_json(rest.as_deref(), read_only)
            .map_err(|e| Failure::from(e).context("options_json"))?;
        let inner = IsccStore::open(std::path::Path::new(path), options)?;
        out.write(Box::into_raw(Box::new(ivdb_store { inner })));
        Ok(())
    })
}

/// Release the store and its lock (every write was committed when it
/// returned). NULL is a no-op.
///
/// # Safety
/// `store` is NULL or a handle from `ivdb_store_open` not yet closed, used
/// by no other thread during or after this call.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_close(
    store: *mut ivdb_store,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        if !store.is_null() {
            // SAFETY: the caller hands over ownership of a live handle.
            let handle = unsafe { Box::from_raw(store) };
            handle.inner.close();
        }
        Ok(())
    })
}

/// Store the entry `entry_json` (an object with `iscc_code` and/or `units`,
/// optionally `iscc_id` naming `key`, any other fields) under `key` in one
/// durable transaction, replacing what was there. `*out_iscc_id` (may be
/// NULL) receives the entry's ISCC-ID; free it with `ivdb_free_string`.
///
/// # Safety
/// `store` is a live handle; `entry_json` a NUL-terminated string;
/// `out_iscc_id` NULL or writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_put_json(
    store: *const ivdb_store,
    key: u64,
    entry_json: *const c_char,
    out_iscc_id: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let s = self::store(store)?;
        let entry = json_of(str_arg(entry_json, "entry_json")?, "entry_json")?;
        let id = s.put(key, &entry)?;
        if let Some(out) = opt_out_arg(out_iscc_id) {
            out.write(c_string(id.to_string()));
        }
        Ok(())
    })
}

/// The stored entry of `key` as JSON (`IVDB_NOT_FOUND` when absent); free
/// `*out_json` with `ivdb_free_string`.
///
/// # Safety
/// `store` is a live handle; `out_json` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_get_json(
    store: *const ivdb_store,
    key: u64,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let s = self::store(store)?;
        let out = out_arg(out_json, "out_json")?;
        let entry = s
            .get(key)?
            .ok_or_else(|| EngineError::NotFound(format!("entry {key} ({})", s.iscc_id(key))))?;
        out.write(c_string(to_json(&entry)?));
        Ok(())
    })
}

/// Delete the entry of `key`; `*out_deleted` (may be NULL) says whether
/// there was one.
///
/// # Safety
/// `store` is a live handle; `out_deleted` NULL or writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_delete(
    store: *const ivdb_store,
    key: u64,
    out_deleted: *mut bool,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let deleted = self::store(store)?.delete(key)?;
        if let Some(out) = opt_out_arg(out_deleted) {
            out.write(deleted);
        }
        Ok(())
    })
}

/// Up to `limit` entries with keys >= `from`, in key (time) order, as a JSON
/// array of `[key, entry]` pairs (empty past the last entry); page on with
/// the last key + 1. Free `*out_json` with `ivdb_free_string`.
///
/// # Safety
/// `store` is a live handle; `out_json` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_entries_json(
    store: *const ivdb_store,
    from: u64,
    limit: usize,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let s = self::store(store)?;
        let out = out_arg(out_json, "out_json")?;
        out.write(c_string(to_json(&s.entries(from, limit)?)?));
        Ok(())
    })
}

/// The user metadata value under `key` as JSON (`IVDB_NOT_FOUND` when
/// there is none); free `*out_json` with `ivdb_free_string`.
///
/// # Safety
/// `store` is a live handle; `key` a NUL-terminated string; `out_json`
/// writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_get_metadata_json(
    store: *const ivdb_store,
    key: *const c_char,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let s = self::store(store)?;
        let key = str_arg(key, "key")?;
        let out = out_arg(out_json, "out_json")?;
        let value = s
            .get_metadata(key)?
            .ok_or_else(|| EngineError::NotFound(format!("metadata key {key:?}")))?;
        out.write(c_string(to_json(&value)?));
        Ok(())
    })
}

/// Set the user metadata value under `key` to the JSON `value_json` (one
/// durable transaction). User keys live apart from the index's own.
///
/// # Safety
/// `store` is a live handle; `key` and `value_json` NUL-terminated strings;
/// `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_put_metadata_json(
    store: *const ivdb_store,
    key: *const c_char,
    value_json: *const c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let s = self::store(store)?;
        let key = str_arg(key, "key")?;
        let value = json_of(str_arg(value_json, "value_json")?, "value_json")?;
        Ok(s.put_metadata(key, &value)?)
    })
}

/// Figures of the store as JSON (`path`, `size`, `realm`, `read_only`,
/// `durable`, `journal_pending`); free `*out_json` with `ivdb_free_string`.
///
/// # Safety
/// `store` is a live handle; `out_json` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_store_info_json(
    store: *const ivdb_store,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let s = self::store(store)?;
        let out = out_arg(out_json, "out_json")?;
        out.write(c_string(to_json(&s.info()?)?));
        Ok(())
    })
}

/// The 64-bit key of an ISCC-ID (what `ivdb_store_*` take and what
/// `ivdb_store_entries_json` pairs with each entry): its 64-bit body. A
/// malformed ISCC-ID gives `IVDB_INVALID_ISCC` naming the problem. For
/// bindings whose JSON numbers cannot hold 64 bits (JavaScript).
///
/// # Safety
/// `iscc_id` is a NUL-terminated string; `out_key` writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_iscc_id_key(
    iscc_id: *const c_char,
    out_key: *mut u64,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let text = str_arg(iscc_id, "iscc_id")?;
        let out = out_arg(out_key, "out_key")?;
        let id = crate::codec::IsccId::parse(text)
            .map_err(|e| Failure::new(IVDB_INVALID_ISCC, format!("iscc_id: {e}")))?;
        out.write(id.value());
        Ok(())
    })
}
