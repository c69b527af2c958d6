//! A standalone scalable bloom filter over the C ABI (`ivdb_bloom_*`):
//! iscc-usearch's `ScalableBloomFilter` on [`ScalableBloom`] (the filter
//! every sharded index keeps). Keys are 8 bytes (a `uint64_t` in native
//! byte order), 16 bytes, or bytes of any length with their lengths, given
//! per call; one filter may hold all kinds. A handle may be used from many
//! threads at once (it locks inside).

use std::ffi::c_char;
use std::path::Path;

use super::buffers::{byte_strings_arg, keys_arg};
use super::options::bloom_options;
use crate::ffi::boundary::{c_string, guard, ivdb_error, opt_str_arg, out_arg, str_arg, Failure};
use crate::ffi::status::*;
use crate::index::bloom::{BloomError, ScalableBloom};
use crate::sync::RwLock;

impl From<BloomError> for Failure {
    fn from(e: BloomError) -> Failure {
        Failure::new(status_of(e.kind()), e.to_string())
    }
}

/// One bloom filter (opaque): made by `ivdb_bloom_new` or
/// `ivdb_bloom_load`, released by `ivdb_bloom_free`.
pub struct ivdb_bloom {
    inner: RwLock<ScalableBloom>,
}

fn handle<'a>(ptr: *const ivdb_bloom) -> Result<&'a RwLock<ScalableBloom>, Failure> {
    if ptr.is_null() {
        return Err(Failure::null("bloom"));
    }
    // SAFETY: non-NULL, and by the API contract a handle not yet freed; the
    // lock makes it Sync.
    Ok(unsafe { &(*ptr).inner })
}

fn boxed(inner: ScalableBloom) -> *mut ivdb_bloom {
    Box::into_raw(Box::new(ivdb_bloom {
        inner: RwLock::new(inner),
    }))
}

/// The hashes of `n` keys at `keys`: each `key_bytes` long (8: a
/// `uint64_t` in machine byte order; 16: a 128-bit key), or with
/// `key_bytes` 0 each `lengths[i]` bytes long (keys of any length,
/// concatenated).
fn hashes(
    keys: *const u8,
    key_bytes: usize,
    lengths: *const usize,
    n: usize,
) -> Result<Vec<u64>, Failure> {
    if key_bytes == 0 {
        return Ok(byte_strings_arg(keys, lengths, n, "keys")?
            .into_iter()
            .map(ScalableBloom::hash_bytes)
            .collect());
    }
    match key_bytes {
        8 => Ok(keys_arg::<u64>(keys, n)?
            .into_iter()
            .map(ScalableBloom::hash64)
            .collect()),
        16 => Ok(keys_arg::<[u8; 16]>(keys, n)?
            .iter()
            .map(ScalableBloom::hash128)
            .collect()),
        _ => Err(Failure::new(
            IVDB_INVALID_ARGUMENT,
            format!("key_bytes {key_bytes} (expected 8, 16, or 0 with lengths)"),
        )),
    }
}

/// A new, empty filter. `options_json` may be NULL or a JSON object with
/// `initial_capacity` (keys of the first link, default 100000),
/// `error_rate` (the compound false positive rate, default 0.01) and
/// `growth` (each further link this many times the last, default 2);
/// unknown names are errors. Release with `ivdb_bloom_free`.
///
/// # Safety
/// `options_json` is NULL or a NUL-terminated string; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_new(
    options_json: *const c_char,
    out: *mut *mut ivdb_bloom,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let o = bloom_options(opt_str_arg(options_json, "options_json")?)?;
        let bloom = ScalableBloom::with_growth(o.initial_capacity, o.error_rate, o.growth)
            .map_err(|why| Failure::new(IVDB_INVALID_ARGUMENT, format!("options_json: {why}")))?;
        out.write(boxed(bloom));
        Ok(())
    })
}

/// Read a filter saved by `ivdb_bloom_save` (or a sharded index's
/// `bloom` file). A file that is not one is `IVDB_CORRUPT`, naming what is
/// wrong.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_load(
    path: *const c_char,
    out: *mut *mut ivdb_bloom,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let path = str_arg(path, "path")?;
        out.write(boxed(ScalableBloom::load(Path::new(path))?));
        Ok(())
    })
}

/// Write the filter to `path`, replaced atomically and durably.
///
/// # Safety
/// `bloom` is a live handle; `path` a NUL-terminated string; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_save(
    bloom: *const ivdb_bloom,
    path: *const c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let b = handle(bloom)?;
        let path = str_arg(path, "path")?;
        b.read().save(Path::new(path))?;
        Ok(())
    })
}

/// Release a filter (nothing is saved). NULL is a no-op.
///
/// # Safety
/// `bloom` is NULL or a live handle, used by no other thread during or
/// after this call.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_free(bloom: *mut ivdb_bloom) {
    if !bloom.is_null() {
        // SAFETY: the caller hands back ownership of a live handle.
        drop(unsafe { Box::from_raw(bloom) });
    }
}

/// Add `n` keys: `key_bytes` (8 or 16) bytes each, or with `key_bytes` 0
/// `lengths[i]` bytes each (any length; a 16-byte key is the same key
/// either way).
///
/// # Safety
/// `bloom` is a live handle; `keys` holds the keys' bytes (NULL only when
/// there are none); `lengths` NULL or `n` lengths (needed when `key_bytes`
/// is 0); `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_add(
    bloom: *const ivdb_bloom,
    keys: *const u8,
    key_bytes: usize,
    lengths: *const usize,
    n: usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let b = handle(bloom)?;
        let hashes = hashes(keys, key_bytes, lengths, n)?;
        let mut f = b.write();
        for h in hashes {
            f.insert_hash(h);
        }
        Ok(())
    })
}

/// For each of `n` keys (given as to `ivdb_bloom_add`), whether it may
/// have been added (`false`: certainly not), into `out_found[i]`.
///
/// # Safety
/// As `ivdb_bloom_add`; `out_found` has room for `n` bools (NULL only when
/// `n` is 0).
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_contains(
    bloom: *const ivdb_bloom,
    keys: *const u8,
    key_bytes: usize,
    lengths: *const usize,
    n: usize,
    out_found: *mut bool,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let b = handle(bloom)?;
        let hashes = hashes(keys, key_bytes, lengths, n)?;
        if n == 0 {
            return Ok(());
        }
        if out_found.is_null() {
            return Err(Failure::null("out_found"));
        }
        let f = b.read();
        // SAFETY: non-NULL, and by the contract room for `n` bools.
        let found = unsafe { std::slice::from_raw_parts_mut(out_found, n) };
        for (slot, h) in found.iter_mut().zip(hashes) {
            *slot = f.contains_hash(h);
        }
        Ok(())
    })
}

/// Forget every key (one empty link of the first link's capacity).
///
/// # Safety
/// `bloom` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_clear(
    bloom: *const ivdb_bloom,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        handle(bloom)?.write().clear();
        Ok(())
    })
}

/// The filter's figures as a JSON object: `count` (keys added, distinct as
/// far as the filter can tell), `filters` (links), `capacity` (keys before
/// the next link), `initial_capacity`, `error_rate`, `growth`,
/// `size_bytes`. Free with `ivdb_free_string`.
///
/// # Safety
/// `bloom` is a live handle; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_bloom_stats_json(
    bloom: *const ivdb_bloom,
    out: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let f = handle(bloom)?.read();
        let json = serde_json::json!({
            "count": f.count(),
            "filters": f.filters(),
            "capacity": f.capacity(),
            "initial_capacity": f.initial_capacity(),
            "error_rate": f.error_rate(),
            "growth": f.growth(),
            "size_bytes": f.size_bytes(),
        });
        out.write(c_string(json.to_string()));
        Ok(())
    })
}
