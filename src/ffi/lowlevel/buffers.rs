//! Packed buffers of the low-level index ABI: keys and vectors in, hits and
//! rows out.
//!
//! Keys cross the boundary as bytes, `key_bytes` per key: 8 for a 64-bit
//! index (a `uint64_t` in the machine's byte order, so a `uint64_t[]` or a
//! numpy `uint64` array passes as is), 16 for a 128-bit index (the key's
//! bytes, e.g. a UUID, as numpy `V16`). Vectors are concatenated bytes with
//! one length per vector. Results the library allocates ([`ivdb_hits`],
//! [`ivdb_rows`]) are released whole by their free function.

use crate::ffi::boundary::{out_slice_arg, Failure};
use crate::ffi::status::IVDB_INVALID_ARGUMENT;
use crate::index::{SearchCounters, ShardKey};

/// A key type as the C ABI passes it.
pub(crate) trait CKey: ShardKey {
    /// Bytes per key in buffers.
    const BYTES: usize;
    /// The key in `b` (exactly `BYTES` long).
    fn read(b: &[u8]) -> Self;
    /// Append the key's bytes.
    fn write(self, out: &mut Vec<u8>);
}

impl CKey for u64 {
    const BYTES: usize = 8;
    fn read(b: &[u8]) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        u64::from_ne_bytes(w)
    }
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_ne_bytes());
    }
}

impl CKey for [u8; 16] {
    const BYTES: usize = 16;
    fn read(b: &[u8]) -> [u8; 16] {
        let mut k = [0u8; 16];
        k.copy_from_slice(b);
        k
    }
    fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self);
    }
}

/// `n` items of `size` bytes at `ptr` (NULL only when `n` is 0).
fn bytes<'a>(ptr: *const u8, n: usize, size: usize, name: &str) -> Result<&'a [u8], Failure> {
    let total = n.checked_mul(size).ok_or_else(|| {
        Failure::new(IVDB_INVALID_ARGUMENT, format!("{name}: {n} items overflow"))
    })?;
    if total == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(Failure::null(name));
    }
    // SAFETY: non-NULL, and by every function's contract `ptr` points to
    // `n` readable items of `size` bytes that stay valid for the call.
    Ok(unsafe { std::slice::from_raw_parts(ptr, total) })
}

/// The `n` keys at `keys`.
pub(crate) fn keys_arg<K: CKey>(keys: *const u8, n: usize) -> Result<Vec<K>, Failure> {
    Ok(bytes(keys, n, K::BYTES, "keys")?
        .chunks_exact(K::BYTES)
        .map(K::read)
        .collect())
}

/// The `n` vectors packed at `data`, `lengths[i]` bytes each (none empty).
pub(crate) fn vectors_arg<'a>(
    data: *const u8,
    lengths: *const usize,
    n: usize,
    name: &str,
) -> Result<Vec<&'a [u8]>, Failure> {
    packed_arg(data, lengths, n, name, false)
}

/// Add the `n` vectors packed at `vectors` under keys `add` generates and
/// write those keys to `out_keys` (room for `n`): the body of both
/// `ivdb_*_add_generated`.
pub(crate) fn add_generated<E>(
    vectors: *const u8,
    lengths: *const usize,
    n: usize,
    out_keys: *mut u64,
    add: impl FnOnce(&[&[u8]]) -> Result<Vec<u64>, E>,
) -> Result<(), Failure>
where
    Failure: From<E>,
{
    let vectors = vectors_arg(vectors, lengths, n, "vectors")?;
    let out = out_slice_arg(out_keys, n, "out_keys")?;
    out.copy_from_slice(&add(&vectors)?);
    Ok(())
}

/// The `n` byte strings packed at `data`, `lengths[i]` bytes each (empty
/// ones too: bloom filter keys).
pub(crate) fn byte_strings_arg<'a>(
    data: *const u8,
    lengths: *const usize,
    n: usize,
    name: &str,
) -> Result<Vec<&'a [u8]>, Failure> {
    packed_arg(data, lengths, n, name, true)
}

fn packed_arg<'a>(
    data: *const u8,
    lengths: *const usize,
    n: usize,
    name: &str,
    empty_ok: bool,
) -> Result<Vec<&'a [u8]>, Failure> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if lengths.is_null() {
        return Err(Failure::null("lengths"));
    }
    // SAFETY: non-NULL, and by the contract `n` readable lengths.
    let lengths = unsafe { std::slice::from_raw_parts(lengths, n) };
    let mut total = 0usize;
    for (i, &len) in lengths.iter().enumerate() {
        if len == 0 && !empty_ok {
            return Err(Failure::new(
                IVDB_INVALID_ARGUMENT,
                format!("{name}[{i}] is empty (lengths[{i}] = 0)"),
            ));
        }
        total = total
            .checked_add(len)
            .ok_or_else(|| Failure::new(IVDB_INVALID_ARGUMENT, "lengths overflow".to_string()))?;
    }
    let all = bytes(data, total, 1, name)?;
    let mut out = Vec::with_capacity(n);
    let mut at = 0;
    for &len in lengths {
        out.push(&all[at..at + len]);
        at += len;
    }
    Ok(out)
}

/// Copy `counts` into the caller's `out_counts` (room for `counts.len()`;
/// may be NULL only when there are none).
pub(crate) fn write_counts(out_counts: *mut usize, counts: &[usize]) -> Result<(), Failure> {
    if counts.is_empty() {
        return Ok(());
    }
    if out_counts.is_null() {
        return Err(Failure::null("out_counts"));
    }
    // SAFETY: non-NULL, and by every function's contract room for one count
    // per key.
    let slots = unsafe { std::slice::from_raw_parts_mut(out_counts, counts.len()) };
    slots.copy_from_slice(counts);
    Ok(())
}

/// Search results of one or more queries, best first per query. Query `q`'s
/// hits are items `offsets[q] .. offsets[q] + counts[q]` of `keys`
/// (`key_bytes` each) and `distances`. Free with `ivdb_hits_free`.
#[repr(C)]
pub struct ivdb_hits {
    /// Number of queries (`counts`, `offsets`).
    pub queries: usize,
    /// Hits per query.
    pub counts: *mut usize,
    /// Index of each query's first hit.
    pub offsets: *mut usize,
    /// Hits over all queries.
    pub total: usize,
    /// Bytes per key: 8 or 16.
    pub key_bytes: usize,
    /// `total * key_bytes` bytes of keys.
    pub keys: *mut u8,
    /// `total` distances: NPHD (0.0-1.0) or Hamming bits, by vector kind.
    pub distances: *mut f32,
    /// Per query: members (rows, graph nodes) the search looked at, as
    /// usearch's `visited_members`.
    pub visited: *mut u64,
    /// Per query: distances the search computed, as usearch's
    /// `computed_distances`.
    pub computed: *mut u64,
}

/// Bytes the library made (a serialized index). Free with
/// `ivdb_buffer_free`.
#[repr(C)]
pub struct ivdb_buffer {
    /// `len` bytes.
    pub bytes: *mut u8,
    /// Number of bytes.
    pub len: usize,
}

/// A buffer for C from bytes.
pub(crate) fn buffer(v: Vec<u8>) -> *mut ivdb_buffer {
    let len = v.len();
    Box::into_raw(Box::new(ivdb_buffer {
        bytes: leak(v),
        len,
    }))
}

/// Free a buffer. NULL is a no-op.
///
/// # Safety
/// `buffer` is NULL or came from this library and is freed once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_buffer_free(buffer: *mut ivdb_buffer) {
    if buffer.is_null() {
        return;
    }
    // SAFETY: the caller hands back a live buffer made by `buffer`.
    let b = unsafe { Box::from_raw(buffer) };
    // SAFETY: the bytes were made by `leak` with this length.
    unsafe { unleak(b.bytes, b.len) };
}

/// The `len` bytes at `ptr` (NULL only when `len` is 0).
pub(crate) fn bytes_arg<'a>(ptr: *const u8, len: usize, name: &str) -> Result<&'a [u8], Failure> {
    bytes(ptr, len, 1, name)
}

/// Rows: keys with vectors (or with none: length 0). Row `i`'s vector is
/// `lengths[i]` bytes at `bytes + offsets[i]`. Free with `ivdb_rows_free`.
#[repr(C)]
pub struct ivdb_rows {
    /// Number of rows.
    pub len: usize,
    /// Bytes per key: 8 or 16.
    pub key_bytes: usize,
    /// `len * key_bytes` bytes of keys.
    pub keys: *mut u8,
    /// Vector length per row in bytes (0: no vector, e.g. a missing key).
    pub lengths: *mut usize,
    /// Where each row's vector starts in `bytes`.
    pub offsets: *mut usize,
    /// The vectors, concatenated.
    pub bytes: *mut u8,
    /// Length of `bytes`.
    pub bytes_len: usize,
}

fn leak<T>(v: Vec<T>) -> *mut T {
    if v.is_empty() {
        return std::ptr::null_mut();
    }
    Box::into_raw(v.into_boxed_slice()).cast::<T>()
}

/// # Safety
/// `ptr` is NULL or came from `leak` of exactly `len` items; released once.
unsafe fn unleak<T>(ptr: *mut T, len: usize) {
    if !ptr.is_null() {
        // SAFETY: made by `leak` from a boxed slice of `len` items.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}

fn offsets(counts: &[usize]) -> Vec<usize> {
    let mut at = 0;
    counts
        .iter()
        .map(|c| {
            let o = at;
            at += c;
            o
        })
        .collect()
}

/// Hits for C from per-query (key, distance) lists.
pub(crate) fn hits<K: CKey>(
    found: Vec<Vec<(K, f32)>>,
    counters: &[SearchCounters],
) -> *mut ivdb_hits {
    let counts: Vec<usize> = found.iter().map(Vec::len).collect();
    // One pair of counters per query (missing ones count 0).
    let per_query = |f: fn(&SearchCounters) -> u64| -> Vec<u64> {
        (0..counts.len())
            .map(|q| counters.get(q).map_or(0, f))
            .collect()
    };
    let visited = per_query(SearchCounters::visited);
    let computed = per_query(SearchCounters::computed);
    let total = counts.iter().sum();
    let mut keys = Vec::with_capacity(total * K::BYTES);
    let mut distances = Vec::with_capacity(total);
    for (k, d) in found.into_iter().flatten() {
        k.write(&mut keys);
        distances.push(d);
    }
    Box::into_raw(Box::new(ivdb_hits {
        queries: counts.len(),
        offsets: leak(offsets(&counts)),
        counts: leak(counts),
        total,
        key_bytes: K::BYTES,
        keys: leak(keys),
        distances: leak(distances),
        visited: leak(visited),
        computed: leak(computed),
    }))
}

/// Rows for C from (key, vector) pairs (`None`: no vector).
pub(crate) fn rows<K: CKey>(items: Vec<(K, Option<Vec<u8>>)>) -> *mut ivdb_rows {
    let len = items.len();
    let mut keys = Vec::with_capacity(len * K::BYTES);
    let mut lengths = Vec::with_capacity(len);
    let mut data = Vec::new();
    for (k, v) in items {
        k.write(&mut keys);
        let v = v.unwrap_or_default();
        lengths.push(v.len());
        data.extend_from_slice(&v);
    }
    let bytes_len = data.len();
    Box::into_raw(Box::new(ivdb_rows {
        len,
        key_bytes: K::BYTES,
        keys: leak(keys),
        offsets: leak(offsets(&lengths)),
        lengths: leak(lengths),
        bytes: leak(data),
        bytes_len,
    }))
}

/// Free search results. NULL is a no-op.
///
/// # Safety
/// `hits` is NULL or came from this library and is freed once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_hits_free(hits: *mut ivdb_hits) {
    if hits.is_null() {
        return;
    }
    // SAFETY: the caller hands back a live result made by `hits`.
    let h = unsafe { Box::from_raw(hits) };
    // SAFETY: every array was made by `leak` with these lengths.
    unsafe {
        unleak(h.counts, h.queries);
        unleak(h.offsets, h.queries);
        unleak(h.keys, h.total * h.key_bytes);
        unleak(h.distances, h.total);
        unleak(h.visited, h.queries);
        unleak(h.computed, h.queries);
    }
}

/// Free rows. NULL is a no-op.
///
/// # Safety
/// `rows` is NULL or came from this library and is freed once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_rows_free(rows: *mut ivdb_rows) {
    if rows.is_null() {
        return;
    }
    // SAFETY: the caller hands back a live result made by `rows`.
    let r = unsafe { Box::from_raw(rows) };
    // SAFETY: every array was made by `leak` with these lengths.
    unsafe {
        unleak(r.keys, r.len * r.key_bytes);
        unleak(r.lengths, r.len);
        unleak(r.offsets, r.len);
        unleak(r.bytes, r.bytes_len);
    }
}
