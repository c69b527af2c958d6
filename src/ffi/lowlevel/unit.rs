//! One unit index over the C ABI (`ivdb_unit_*`): iscc-usearch's
//! `NphdIndex` on [`UnitIndex`] — vectors of 1 to `max_dim / 8` bytes under
//! 64-bit keys, in memory, saved to and loaded from one file (plus its graph
//! file), memory-mapped read-only (`view`) or copied. A handle may be used
//! from many threads at once (the index locks inside).

use std::ffi::c_char;

use super::buffers::{
    add_generated, buffer, bytes_arg, hits, ivdb_buffer, ivdb_hits, ivdb_rows, keys_arg, rows,
    vectors_arg, write_counts,
};
use super::options::{ivdb_search_options, search_options, unit_options};
use crate::ffi::boundary::{
    c_string, guard, ivdb_error, opt_out_arg, opt_str_arg, out_arg, str_arg, Failure,
};
use crate::ffi::index::to_json;
use crate::ffi::status::*;
use crate::index::{IndexError, SearchCounters, UnitIndex};

impl From<IndexError> for Failure {
    fn from(e: IndexError) -> Failure {
        Failure::new(status_of(e.kind()), e.to_string())
    }
}

/// One unit index (opaque): made by `ivdb_unit_new`, `ivdb_unit_restore`
/// or `ivdb_unit_copy`, released by `ivdb_unit_free`.
pub struct ivdb_unit {
    inner: UnitIndex,
}

fn handle<'a>(ptr: *const ivdb_unit) -> Result<&'a UnitIndex, Failure> {
    if ptr.is_null() {
        return Err(Failure::null("index"));
    }
    // SAFETY: non-NULL, and by the API contract a handle not yet freed; the
    // index is Sync.
    Ok(unsafe { &(*ptr).inner })
}

fn boxed(inner: UnitIndex) -> *mut ivdb_unit {
    Box::into_raw(Box::new(ivdb_unit { inner }))
}

/// A new, empty index in memory. `options_json` may be NULL or a JSON
/// object with `max_dim` (a multiple of 8 up to 256; default 256),
/// `connectivity`, `expansion_add`, `expansion_search`, `exact_threshold`
/// (`"auto"`, the default, or rows), `partition` (`"auto"`, the default:
/// lists by measured cost as the index grows; `"always"`; `"off"`);
/// unknown names are errors. Release with `ivdb_unit_free`.
///
/// # Safety
/// `options_json` is NULL or a NUL-terminated string; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_new(
    options_json: *const c_char,
    out: *mut *mut ivdb_unit,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let options = unit_options(opt_str_arg(options_json, "options_json")?)?;
        out.write(boxed(UnitIndex::new(options)?));
        Ok(())
    })
}

/// Open an index saved at `path` (by `ivdb_unit_save`): read into memory,
/// or with `view` memory-mapped read-only (writes then return
/// `IVDB_READ_ONLY`). Its parameters come from the file.
///
/// # Safety
/// `path` is a NUL-terminated string; `out` writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_restore(
    path: *const c_char,
    view: bool,
    out: *mut *mut ivdb_unit,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let path = str_arg(path, "path")?;
        out.write(boxed(UnitIndex::restore(path, view)?));
        Ok(())
    })
}

/// Release an index without saving it. NULL is a no-op.
///
/// # Safety
/// `index` is NULL or a live handle, used by no other thread during or
/// after this call.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_free(index: *mut ivdb_unit) {
    if !index.is_null() {
        // SAFETY: the caller hands back ownership of a live handle.
        drop(unsafe { Box::from_raw(index) });
    }
}

/// Add `n` bodies under keys not stored yet (a stored key and a repeat in
/// the batch are skipped); `lengths[i]` bytes of `vectors` each
/// (concatenated), every one checked before anything is added (1 to
/// `max_dim / 8` bytes: never truncated; ISCC units are 8, 16, 24 or 32).
/// `*out_added` (may be NULL) is how many were added.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys, `lengths` `n` lengths
/// and `vectors` their sum of bytes; `out_added` and `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_add(
    index: *const ivdb_unit,
    keys: *const u64,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    out_added: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let keys = keys_arg::<u64>(keys.cast(), n)?;
        let vectors = vectors_arg(vectors, lengths, n, "vectors")?;
        let added = i.add_batch(&keys, &vectors)?;
        if let Some(out) = opt_out_arg(out_added) {
            out.write(added);
        }
        Ok(())
    })
}

/// Add `n` bodies under keys the index chooses (iscc-usearch's
/// `add(None, …)`): counting up from the number of stored rows, skipping
/// keys in use, so a generated key never collides with a stored one. The
/// keys are written to `out_keys` (room for `n`), in order. `vectors` and
/// `lengths` as `ivdb_unit_add`; every body is checked before anything is
/// added.
///
/// # Safety
/// `index` is a live handle; `lengths` holds `n` lengths and `vectors`
/// their sum of bytes; `out_keys` has room for `n` keys; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_add_generated(
    index: *const ivdb_unit,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    out_keys: *mut u64,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        add_generated(vectors, lengths, n, out_keys, |v| i.add_generated(v))
    })
}

/// Insert or replace `n` bodies (last write wins, also within the batch).
/// Arguments as `ivdb_unit_add`.
///
/// # Safety
/// As `ivdb_unit_add`.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_upsert(
    index: *const ivdb_unit,
    keys: *const u64,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let keys = keys_arg::<u64>(keys.cast(), n)?;
        let vectors = vectors_arg(vectors, lengths, n, "vectors")?;
        i.upsert_batch(&keys, &vectors)?;
        Ok(())
    })
}

/// Remove `n` keys; `*out_removed` (may be NULL) is how many were stored.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys; `out_removed` and
/// `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_remove(
    index: *const ivdb_unit,
    keys: *const u64,
    n: usize,
    out_removed: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let removed = i.remove_batch(&keys_arg::<u64>(keys.cast(), n)?)?;
        if let Some(out) = opt_out_arg(out_removed) {
            out.write(removed);
        }
        Ok(())
    })
}

/// The bodies of `n` keys, in order (length 0: not stored). Free `*out`
/// with `ivdb_rows_free`.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_get(
    index: *const ivdb_unit,
    keys: *const u64,
    n: usize,
    out: *mut *mut ivdb_rows,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let out = out_arg(out, "out")?;
        let keys = keys_arg::<u64>(keys.cast(), n)?;
        out.write(rows(keys.iter().map(|&k| (k, i.get(k))).collect()));
        Ok(())
    })
}

/// Rows `start .. start + max` of the index (in its storage order; 0:
/// 1,024) with their bodies: walk the index by calling until `len` is 0.
/// Free `*out` with `ivdb_rows_free`.
///
/// # Safety
/// `index` is a live handle; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_rows(
    index: *const ivdb_unit,
    start: usize,
    max: usize,
    out: *mut *mut ivdb_rows,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let out = out_arg(out, "out")?;
        let max = if max == 0 { 1024 } else { max };
        let found = i.rows(start, max);
        out.write(rows(found.into_iter().map(|(k, v)| (k, Some(v))).collect()));
        Ok(())
    })
}

/// How many rows each of `n` keys has (0 or 1), into `out_counts[0..n]`.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys; `out_counts` has room
/// for `n` counts; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_count(
    index: *const ivdb_unit,
    keys: *const u64,
    n: usize,
    out_counts: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let keys = keys_arg::<u64>(keys.cast(), n)?;
        let counts: Vec<usize> = keys.iter().map(|&k| i.count(k)).collect();
        write_counts(out_counts, &counts)?;
        Ok(())
    })
}

/// Rows in the index, into `*out_len`.
///
/// # Safety
/// `index` is a live handle; `out_len` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_len(
    index: *const ivdb_unit,
    out_len: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        out_arg(out_len, "out_len")?.write(i.len());
        Ok(())
    })
}

/// Search `n` queries (packed as in `ivdb_unit_add`; an NPHD query may be
/// shorter or longer than stored codes: the common prefix is compared).
/// `options` may be NULL. Free `*out` with `ivdb_hits_free`.
///
/// # Safety
/// `index` is a live handle; `lengths` holds `n` lengths and `queries`
/// their sum of bytes; `options` NULL or readable; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_search(
    index: *const ivdb_unit,
    queries: *const u8,
    lengths: *const usize,
    n: usize,
    options: *const ivdb_search_options,
    out: *mut *mut ivdb_hits,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let out = out_arg(out, "out")?;
        let queries = vectors_arg(queries, lengths, n, "queries")?;
        let options = search_options(options)?;
        let counters: Vec<SearchCounters> = queries.iter().map(|_| Default::default()).collect();
        let found = if let [one] = queries.as_slice() {
            vec![i.search_counted(one, &options, None, &counters[0])?]
        } else {
            i.search_batch_counted(&queries, &options, None, &counters)?
        };
        out.write(hits::<u64>(
            found
                .into_iter()
                .map(|l| l.into_iter().map(|h| (h.key, h.distance)).collect())
                .collect(),
            &counters,
        ));
        Ok(())
    })
}

/// A whole-index file operation (`IVDB_UNIT_*`).
pub type ivdb_unit_file_op = u32;
/// Write the index to `path` (and `path.hnsw`), each replaced atomically
/// and durably; resets the dirty count.
pub const IVDB_UNIT_SAVE: ivdb_unit_file_op = 0;
/// Replace the index's contents with the file at `path`, read into memory.
pub const IVDB_UNIT_LOAD: ivdb_unit_file_op = 1;
/// Replace the index's contents with the file at `path`, memory-mapped
/// read-only.
pub const IVDB_UNIT_VIEW: ivdb_unit_file_op = 2;

/// Save to, load from or view the file at `path`.
///
/// # Safety
/// `index` is a live handle; `path` a NUL-terminated string; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_file(
    index: *const ivdb_unit,
    op: ivdb_unit_file_op,
    path: *const c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let path = str_arg(path, "path")?;
        match op {
            IVDB_UNIT_SAVE => i.save(path)?,
            IVDB_UNIT_LOAD => i.load(path)?,
            IVDB_UNIT_VIEW => i.view(path)?,
            _ => {
                return Err(Failure::new(
                    IVDB_INVALID_ARGUMENT,
                    format!("op {op} (expected an IVDB_UNIT_* file operation)"),
                ))
            }
        }
        Ok(())
    })
}

/// The whole index as one buffer in memory (iscc-usearch's `save()`
/// without a path): the bytes `IVDB_UNIT_SAVE` writes to `path`, then
/// those of `path.hnsw`. The dirty count is left as it is. Free with
/// `ivdb_buffer_free`.
///
/// # Safety
/// `index` is a live handle; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_to_buffer(
    index: *const ivdb_unit,
    out: *mut *mut ivdb_buffer,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let out = out_arg(out, "out")?;
        out.write(buffer(i.to_bytes()?));
        Ok(())
    })
}

/// An index from `len` bytes made by `ivdb_unit_to_buffer`, read into
/// memory (the bytes are not kept). A damaged or cut buffer is
/// `IVDB_CORRUPT`. Release with `ivdb_unit_free`.
///
/// # Safety
/// `bytes` holds `len` readable bytes; `out` writable; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_from_buffer(
    bytes: *const u8,
    len: usize,
    out: *mut *mut ivdb_unit,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let bytes = bytes_arg(bytes, len, "bytes")?;
        out.write(boxed(UnitIndex::from_bytes(bytes)?));
        Ok(())
    })
}

/// A deep, writable copy in memory (dirty count 0). Release with
/// `ivdb_unit_free`.
///
/// # Safety
/// `index` is a live handle; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_copy(
    index: *const ivdb_unit,
    out: *mut *mut ivdb_unit,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let out = out_arg(out, "out")?;
        out.write(boxed(i.copy()?));
        Ok(())
    })
}

/// Remove every row (the parameters stay).
///
/// # Safety
/// `index` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_reset(
    index: *const ivdb_unit,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        handle(index)?.reset()?;
        Ok(())
    })
}

/// Wait until a partition the index trains by itself (`partition` auto or
/// always) is adopted, making one that came due meanwhile; returns at once
/// when none is due. Searches and writes need not wait: this is for
/// callers that want the partitioned layout before they measure or save.
///
/// # Safety
/// `index` is a live handle; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_wait_partition(
    index: *const ivdb_unit,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        handle(index)?.wait_partition()?;
        Ok(())
    })
}

/// The index's figures as JSON (rows by length, graph rows, parameters,
/// memory, dirty count, `lists` and `nprobe` of a partition, whether one is
/// `partition_pending` (a partition or a new measurement of `nprobe` in
/// progress), and `last_partition`: what the last automatic attempt
/// measured — rows, lists, nprobe, near_nprobe, recall, rows_read,
/// probe_ns, scan_ns, near_probe_ns, kept, previous_probe_ns,
/// previous_near_probe_ns, previous_rows_read, recalibrated, seconds — or
/// null). Free `*out_json` with
/// `ivdb_free_string`.
///
/// # Safety
/// `index` is a live handle; `out_json` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_unit_stats_json(
    index: *const ivdb_unit,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let i = handle(index)?;
        let out = out_arg(out_json, "out_json")?;
        let mut stats = serde_json::to_value(i.stats())
            .map_err(|e| Failure::new(IVDB_INTERNAL, e.to_string()))?;
        if let Some(m) = stats.as_object_mut() {
            m.insert("dirty".into(), i.dirty().into());
            m.insert("read_only".into(), i.is_read_only().into());
        }
        out.write(c_string(to_json(&stats)?));
        Ok(())
    })
}
