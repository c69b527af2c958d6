//! The sharded vector index over the C ABI (`ivdb_sharded_*`):
//! iscc-usearch's `ShardedNphdIndex` / `ShardedIndex` (and their 128-bit key
//! variants), on [`ShardedIndex`].
//!
//! One opaque handle, `ivdb_sharded`, for both key widths: keys cross as
//! bytes, [`ivdb_sharded_key_bytes`] per key (see [`super::buffers`]). The
//! vector kind (NPHD over ISCC bodies of 64-256 bits, or fixed-length
//! Hamming) is an option of the index, stored in its manifest. A handle may
//! be used from many threads at once (the index locks inside).

use std::ffi::c_char;
use std::path::Path;

use super::buffers::{
    add_generated, hits, ivdb_hits, ivdb_rows, keys_arg, rows, vectors_arg, write_counts, CKey,
};
use super::options::{ivdb_search_options, open_options, search_options};
use crate::ffi::boundary::{
    c_string, guard, ivdb_error, opt_out_arg, opt_str_arg, out_arg, str_arg, Failure,
};
use crate::ffi::index::to_json;
use crate::ffi::status::*;
use crate::index::{SearchCounters, ShardedError, ShardedIndex, ShardedIter};

impl From<ShardedError> for Failure {
    fn from(e: ShardedError) -> Failure {
        Failure::new(status_of(e.kind()), e.to_string())
    }
}

enum Keys {
    U64(ShardedIndex<u64>),
    U128(ShardedIndex<[u8; 16]>),
}

/// An open sharded vector index (opaque): made by `ivdb_sharded_open`,
/// released by `ivdb_sharded_close`.
pub struct ivdb_sharded {
    inner: Keys,
}

/// Run `$body` with `$i` bound to the handle's index, whatever its keys.
macro_rules! with_index {
    ($handle:expr, $i:ident => $body:expr) => {
        match &$handle.inner {
            Keys::U64($i) => $body,
            Keys::U128($i) => $body,
        }
    };
}

fn handle<'a>(ptr: *const ivdb_sharded) -> Result<&'a ivdb_sharded, Failure> {
    if ptr.is_null() {
        return Err(Failure::null("index"));
    }
    // SAFETY: non-NULL, and by the API contract a handle from
    // `ivdb_sharded_open` not yet closed; the handle is Sync.
    Ok(unsafe { &*ptr })
}

fn open(path: &str, json: Option<&str>) -> Result<ivdb_sharded, Failure> {
    let (opts, mode) = open_options(json)?;
    let dir = Path::new(path);
    let one = |wide: bool| -> Result<Keys, ShardedError> {
        Ok(match (wide, mode.read_only) {
            (false, false) => Keys::U64(ShardedIndex::open_or_create(dir, opts)?),
            (false, true) => Keys::U64(ShardedIndex::open_read_only(dir)?),
            (true, false) => Keys::U128(ShardedIndex::open_or_create(dir, opts)?),
            (true, true) => Keys::U128(ShardedIndex::open_read_only(dir)?),
        })
    };
    let inner = match mode.wide_keys {
        Some(wide) => one(wide)?,
        // Not said: as the index on disk has (a new one: 64-bit).
        None => match one(false) {
            Err(ShardedError::KeyKind { .. }) => one(true)?,
            other => other?,
        },
    };
    Ok(ivdb_sharded { inner })
}

/// Open the sharded index in directory `path`, or create it there.
///
/// `options_json` may be NULL or a JSON object with `keys` (`"u64"`, the
/// default for a new index, or `"u128"`; an existing index keeps its own
/// and a different one is `IVDB_INVALID_ARGUMENT`), `read_only` (every
/// shard memory-mapped, no lock; writes return `IVDB_READ_ONLY`) and, for a
/// new index, its parameters: `vectors` (`{"kind": "nphd", "max_dim": 256}`
/// or `{"kind": "hamming", "bits": 64}`), `connectivity`, `expansion_add`,
/// `expansion_search`, `exact_threshold` (`"auto"` or rows), `shard_size`
/// (bytes), `bloom_error_rate`, `background_rotation`,
/// `max_pending_rotations`, `merge_factor`, `max_merged_size`,
/// `max_pending_merges`, `partition` (`"auto"`, `"always"` or `"off"`, per
/// shard). Unknown names are errors. A second writer of the
/// directory gets `IVDB_LOCKED`. Release with `ivdb_sharded_close`.
///
/// # Safety
/// `path` is a NUL-terminated string; `options_json` NULL or one; `out`
/// writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_open(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut ivdb_sharded,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let out = out_arg(out, "out")?;
        let path = str_arg(path, "path")?;
        let json = opt_str_arg(options_json, "options_json")?;
        let h = open(path, json)?;
        out.write(Box::into_raw(Box::new(h)));
        Ok(())
    })
}

/// Finish background work, save (when writable and changed) and release the
/// index. NULL is a no-op. The handle is freed even when saving fails.
///
/// # Safety
/// `index` is NULL or a live handle, used by no other thread during or
/// after this call.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_close(
    index: *mut ivdb_sharded,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        if index.is_null() {
            return Ok(());
        }
        // SAFETY: the caller hands over ownership of a live handle.
        let h = unsafe { Box::from_raw(index) };
        with_index!(h, i => i.close())?;
        Ok(())
    })
}

/// Bytes per key of the index: 8 (64-bit keys) or 16; 0 for NULL.
///
/// # Safety
/// `index` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_key_bytes(index: *const ivdb_sharded) -> usize {
    match handle(index) {
        Ok(h) => match h.inner {
            Keys::U64(_) => u64::BYTES,
            Keys::U128(_) => <[u8; 16]>::BYTES,
        },
        Err(_) => 0,
    }
}

fn write<K: CKey>(
    i: &ShardedIndex<K>,
    keys: *const u8,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    upsert: bool,
) -> Result<usize, Failure> {
    let keys = keys_arg::<K>(keys, n)?;
    let vectors = vectors_arg(vectors, lengths, n, "vectors")?;
    Ok(if upsert {
        i.upsert(&keys, &vectors)?
    } else {
        i.add(&keys, &vectors)?
    })
}

/// Add `n` vectors under keys not live anywhere in the index: a live key
/// (and a repeat in the batch) is skipped, first write wins, across every
/// shard (the reference's `add` checks only its active shard, its
/// `add_once` all: both are this). Vector `i` is `lengths[i]` bytes of
/// `vectors` (concatenated); every vector is checked before anything is
/// written (an NPHD vector must have 1 to `max_dim / 8` bytes; a Hamming
/// vector exactly `bits`: never truncated). On success
/// `*out_added` (may be NULL) is how many were added.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys of
/// `ivdb_sharded_key_bytes` bytes; `lengths` `n` lengths; `vectors` their
/// sum of bytes; `out_added` and `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_add(
    index: *const ivdb_sharded,
    keys: *const u8,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    out_added: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let added = with_index!(h, i => write(i, keys, vectors, lengths, n, false))?;
        if let Some(out) = opt_out_arg(out_added) {
            out.write(added);
        }
        Ok(())
    })
}

/// Add `n` vectors under keys the index chooses (iscc-usearch's
/// `add(None, …)`; 64-bit keys only): counting up from the number of live
/// keys, skipping every key live in any shard, so a generated key never
/// collides with a stored one. The keys are written to `out_keys` (room
/// for `n`), in order. `vectors` and `lengths` as `ivdb_sharded_add`;
/// every vector is checked before anything is written.
///
/// # Safety
/// `index` is a live handle; `lengths` holds `n` lengths and `vectors`
/// their sum of bytes; `out_keys` has room for `n` keys; `err` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_add_generated(
    index: *const ivdb_sharded,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    out_keys: *mut u64,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let Keys::U64(i) = &h.inner else {
            return Err(Failure::new(
                IVDB_INVALID_ARGUMENT,
                "key generation needs 64-bit keys: this index has 128-bit keys",
            ));
        };
        add_generated(vectors, lengths, n, out_keys, |v| i.add_generated(v))
    })
}

/// Insert or replace: each vector becomes its key's only live copy (last
/// write wins, also within the batch); an identical vector is left alone.
/// Arguments as `ivdb_sharded_add`; `*out_written` (may be NULL) is how
/// many keys were written.
///
/// # Safety
/// As `ivdb_sharded_add`.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_upsert(
    index: *const ivdb_sharded,
    keys: *const u8,
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    out_written: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let written = with_index!(h, i => write(i, keys, vectors, lengths, n, true))?;
        if let Some(out) = opt_out_arg(out_written) {
            out.write(written);
        }
        Ok(())
    })
}

/// Remove `n` keys; `*out_removed` (may be NULL) is how many were live.
/// Removed keys stay removed (no resurrection by a later `compact`).
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys; `out_removed` and
/// `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_remove(
    index: *const ivdb_sharded,
    keys: *const u8,
    n: usize,
    out_removed: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let removed = with_index!(h, i => i.remove(&keys_arg(keys, n)?))?;
        if let Some(out) = opt_out_arg(out_removed) {
            out.write(removed);
        }
        Ok(())
    })
}

fn get<K: CKey>(i: &ShardedIndex<K>, keys: *const u8, n: usize) -> Result<*mut ivdb_rows, Failure> {
    let keys = keys_arg::<K>(keys, n)?;
    let found = i.get_many(&keys)?;
    Ok(rows(keys.into_iter().zip(found).collect()))
}

/// The vectors of `n` keys, in order: row `i` is key `i` with its vector,
/// or with length 0 when the key is not live. Free `*out` with
/// `ivdb_rows_free`.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_get(
    index: *const ivdb_sharded,
    keys: *const u8,
    n: usize,
    out: *mut *mut ivdb_rows,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let out = out_arg(out, "out")?;
        let r = with_index!(h, i => get(i, keys, n))?;
        out.write(r);
        Ok(())
    })
}

fn count<K: CKey>(i: &ShardedIndex<K>, keys: *const u8, n: usize) -> Result<Vec<usize>, Failure> {
    keys_arg::<K>(keys, n)?
        .into_iter()
        .map(|k| i.count(k).map_err(Failure::from))
        .collect()
}

/// How many live vectors each of `n` keys has (0 or 1: a key is live at
/// most once), written to `out_counts[0..n]` (caller storage); "contains"
/// is a count above 0.
///
/// # Safety
/// `index` is a live handle; `keys` holds `n` keys; `out_counts` has room
/// for `n` counts; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_count(
    index: *const ivdb_sharded,
    keys: *const u8,
    n: usize,
    out_counts: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let counts = with_index!(h, i => count(i, keys, n))?;
        write_counts(out_counts, &counts)?;
        Ok(())
    })
}

/// Live vectors in the index (exact: removed and replaced keys are not
/// counted), written to `*out_len`.
///
/// # Safety
/// `index` is a live handle; `out_len` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_len(
    index: *const ivdb_sharded,
    out_len: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let out = out_arg(out_len, "out_len")?;
        out.write(with_index!(h, i => i.len()));
        Ok(())
    })
}

fn search<K: CKey>(
    i: &ShardedIndex<K>,
    queries: *const u8,
    lengths: *const usize,
    n: usize,
    options: *const ivdb_search_options,
) -> Result<*mut ivdb_hits, Failure> {
    let queries = vectors_arg(queries, lengths, n, "queries")?;
    let options = search_options(options)?;
    let counters: Vec<SearchCounters> = queries.iter().map(|_| Default::default()).collect();
    let found = if let [one] = queries.as_slice() {
        vec![i.search_counted(one, &options, &counters[0])?]
    } else {
        i.search_batch_counted(&queries, &options, &counters)?
    };
    Ok(hits(
        found
            .into_iter()
            .map(|l| l.into_iter().map(|m| (m.key, m.distance)).collect())
            .collect(),
        &counters,
    ))
}

/// Search `n` queries (packed as the vectors of `ivdb_sharded_add`; an
/// NPHD query may be shorter or longer than the stored codes: they are
/// compared over the common prefix). `options` may be NULL (defaults). On
/// success `*out` holds the hits of every query; free it with
/// `ivdb_hits_free`.
///
/// # Safety
/// `index` is a live handle; `lengths` holds `n` lengths and `queries`
/// their sum of bytes; `options` NULL or readable; `out` writable; `err`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_search(
    index: *const ivdb_sharded,
    queries: *const u8,
    lengths: *const usize,
    n: usize,
    options: *const ivdb_search_options,
    out: *mut *mut ivdb_hits,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let out = out_arg(out, "out")?;
        let found = with_index!(h, i => search(i, queries, lengths, n, options))?;
        out.write(found);
        Ok(())
    })
}

/// A maintenance step of the index (`IVDB_SHARDED_*`).
pub type ivdb_sharded_task = u32;
/// Write everything durably (rotated shards, the active shard, the bloom
/// filter, tombstones) and commit it with one manifest swap.
pub const IVDB_SHARDED_SAVE: ivdb_sharded_task = 0;
/// Rewrite shards without removed and replaced rows, rebuild the bloom
/// filter, save; the count is the rows dropped.
pub const IVDB_SHARDED_COMPACT: ivdb_sharded_task = 1;
/// Rebuild the bloom filter from the live keys and save it; the count is
/// the keys.
pub const IVDB_SHARDED_REBUILD_BLOOM: ivdb_sharded_task = 2;
/// Wait for background rotations and merges; report a failed one.
pub const IVDB_SHARDED_DRAIN: ivdb_sharded_task = 3;
/// Remove every key, durably at once (one manifest commit, then the old
/// shard files are deleted); the count is the keys removed.
pub const IVDB_SHARDED_RESET: ivdb_sharded_task = 4;

/// Run a maintenance task; `*out_count` (may be NULL) receives its count
/// (see `ivdb_sharded_task`; 0 where it has none).
///
/// # Safety
/// `index` is a live handle; `out_count` and `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_maintain(
    index: *const ivdb_sharded,
    task: ivdb_sharded_task,
    out_count: *mut usize,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        if task > IVDB_SHARDED_RESET {
            return Err(Failure::new(
                IVDB_INVALID_ARGUMENT,
                format!("task {task} (expected an IVDB_SHARDED_* task)"),
            ));
        }
        let n = with_index!(h, i => match task {
            IVDB_SHARDED_SAVE => i.save().map(|()| 0),
            IVDB_SHARDED_COMPACT => i.compact(),
            IVDB_SHARDED_REBUILD_BLOOM => i.rebuild_bloom(),
            IVDB_SHARDED_RESET => i.reset(),
            _ => i.drain_rotations().and_then(|()| i.drain_merges()).map(|()| 0),
        })?;
        if let Some(out) = opt_out_arg(out_count) {
            out.write(n);
        }
        Ok(())
    })
}

/// The index's figures as JSON (vectors, shards, sizes, dirty count,
/// tombstones, bloom filter, parameters). Free `*out_json` with
/// `ivdb_free_string`.
///
/// # Safety
/// `index` is a live handle; `out_json` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_stats_json(
    index: *const ivdb_sharded,
    out_json: *mut *mut c_char,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let out = out_arg(out_json, "out_json")?;
        let json = with_index!(h, i => to_json(&i.stats()))?;
        out.write(c_string(json));
        Ok(())
    })
}

enum Iter {
    U64(ShardedIter<u64>),
    U128(ShardedIter<[u8; 16]>),
}

/// A lazy walk over every live (key, vector) of an index (opaque), as it was
/// when made (rows removed meanwhile are skipped). It does not borrow the
/// index: it may outlive the handle. Free with `ivdb_sharded_iter_free`.
pub struct ivdb_sharded_iter {
    inner: Iter,
}

/// Start a walk over the index's live rows.
///
/// # Safety
/// `index` is a live handle; `out` writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_iter_new(
    index: *const ivdb_sharded,
    out: *mut *mut ivdb_sharded_iter,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let h = handle(index)?;
        let out = out_arg(out, "out")?;
        let inner = match &h.inner {
            Keys::U64(i) => Iter::U64(i.iter()?),
            Keys::U128(i) => Iter::U128(i.iter()?),
        };
        out.write(Box::into_raw(Box::new(ivdb_sharded_iter { inner })));
        Ok(())
    })
}

fn take<K: CKey>(it: &mut ShardedIter<K>, max: usize) -> *mut ivdb_rows {
    rows(it.by_ref().take(max).map(|(k, v)| (k, Some(v))).collect())
}

/// The next rows of the walk, at most `max` (0: 1,024); none at the end
/// (`len` 0). Free `*out` with `ivdb_rows_free`.
///
/// # Safety
/// `iter` is a live walk used by no other thread meanwhile; `out` writable;
/// `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_iter_next(
    iter: *mut ivdb_sharded_iter,
    max: usize,
    out: *mut *mut ivdb_rows,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        if iter.is_null() {
            return Err(Failure::null("iter"));
        }
        let out = out_arg(out, "out")?;
        // SAFETY: non-NULL, live and not shared by the contract.
        let it = unsafe { &mut *iter };
        let max = if max == 0 { 1024 } else { max };
        out.write(match &mut it.inner {
            Iter::U64(i) => take(i, max),
            Iter::U128(i) => take(i, max),
        });
        Ok(())
    })
}

/// Free a walk. NULL is a no-op.
///
/// # Safety
/// `iter` is NULL or a walk from `ivdb_sharded_iter_new`, freed once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_sharded_iter_free(iter: *mut ivdb_sharded_iter) {
    if !iter.is_null() {
        // SAFETY: the caller hands back ownership of a live walk.
        drop(unsafe { Box::from_raw(iter) });
    }
}
