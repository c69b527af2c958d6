//! Search results as C structs (`ivdb_search`, `ivdb_search_batch`), freed
//! with `ivdb_free_matches` / `ivdb_free_matches_batch`.
//!
//! Every array and string in these structs is owned by the library: the
//! caller reads them and hands the top-level pointer back to the matching
//! free function, which releases everything below it.

use std::ffi::c_char;

use super::boundary::c_string;
use crate::engine::IsccMatches;

/// The best match of one unit type for a matching entry.
#[repr(C)]
pub struct ivdb_unit_score {
    /// Unit type, e.g. "CONTENT-TEXT-V0".
    pub unit_type: *mut c_char,
    /// `1 - distance`.
    pub score: f32,
    /// NPHD between the query unit and the stored unit.
    pub distance: f32,
    /// True when the score counts towards the total (>= unit_threshold).
    pub kept: bool,
}

/// One matching entry.
#[repr(C)]
pub struct ivdb_match {
    /// The entry's ISCC-ID ("ISCC:MAI...").
    pub iscc_id: *mut c_char,
    /// The ISCC-ID as a 64-bit integer.
    pub key: u64,
    /// Aggregated score (0..1).
    pub score: f32,
    /// `1 - score`.
    pub distance: f32,
    /// True when an INSTANCE unit matched exactly or by prefix.
    pub instance: bool,
    /// Per unit type scores (`units_len` items).
    pub units: *mut ivdb_unit_score,
    /// Number of `units`.
    pub units_len: usize,
}

/// The result of one query: matches best first, plus the ISCC-IDs of every
/// INSTANCE match.
#[repr(C)]
pub struct ivdb_matches {
    /// Matches (`len` items), best first.
    pub matches: *mut ivdb_match,
    /// Number of `matches`.
    pub len: usize,
    /// ISCC-IDs whose INSTANCE unit matched (`instance_len` strings).
    pub instance_matches: *mut *mut c_char,
    /// Number of `instance_matches`.
    pub instance_len: usize,
}

fn leak<T>(v: Vec<T>) -> (*mut T, usize) {
    let len = v.len();
    let ptr = Box::into_raw(v.into_boxed_slice()).cast::<T>();
    (ptr, len)
}

/// Take back a slice made by `leak`.
///
/// # Safety
/// `ptr`/`len` come from `leak` and are released once.
unsafe fn unleak<T>(ptr: *mut T, len: usize) -> Vec<T> {
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: made by `leak` from a boxed slice of exactly `len` items.
    unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) }.into_vec()
}

pub(crate) fn to_c(m: &IsccMatches) -> ivdb_matches {
    let items: Vec<ivdb_match> = m
        .matches
        .iter()
        .map(|x| {
            let units: Vec<ivdb_unit_score> = x
                .units
                .iter()
                .map(|(t, s)| ivdb_unit_score {
                    unit_type: c_string(t.clone()),
                    score: s.score,
                    distance: s.distance,
                    kept: s.kept,
                })
                .collect();
            let (units, units_len) = leak(units);
            ivdb_match {
                iscc_id: c_string(x.iscc_id.clone()),
                key: x.key,
                score: x.score,
                distance: x.distance,
                instance: x.instance,
                units,
                units_len,
            }
        })
        .collect();
    let (matches, len) = leak(items);
    let ids: Vec<*mut c_char> = m.instance_matches.iter().cloned().map(c_string).collect();
    let (instance_matches, instance_len) = leak(ids);
    ivdb_matches {
        matches,
        len,
        instance_matches,
        instance_len,
    }
}

/// Release the contents of one `ivdb_matches` (not the struct itself),
/// taken by value: the caller's copy is gone with the array it was in.
/// Like `free`, a second release is undefined behaviour; nothing here can
/// detect it.
///
/// # Safety
/// `m` was made by `to_c` and is released once.
pub(crate) unsafe fn release(m: ivdb_matches) {
    // SAFETY: arrays and strings were made by `leak`/`c_string` in `to_c`.
    unsafe {
        for x in unleak(m.matches, m.len) {
            for u in unleak(x.units, x.units_len) {
                super::ivdb_free_string(u.unit_type);
            }
            super::ivdb_free_string(x.iscc_id);
        }
        for s in unleak(m.instance_matches, m.instance_len) {
            super::ivdb_free_string(s);
        }
    }
}

/// Box results for C: one `ivdb_matches` per query.
pub(crate) fn boxed(results: &[IsccMatches]) -> (*mut ivdb_matches, usize) {
    leak(results.iter().map(to_c).collect())
}

/// Free results made by `boxed`.
///
/// # Safety
/// `ptr`/`len` come from `boxed` and are released once.
pub(crate) unsafe fn free_boxed(ptr: *mut ivdb_matches, len: usize) {
    // SAFETY: by the contract above.
    for m in unsafe { unleak(ptr, len) } {
        // SAFETY: each item was made by `to_c`.
        unsafe { release(m) };
    }
}
