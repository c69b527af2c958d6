//! Search results as columns (`ivdb_search_columns`): flat arrays a binding
//! can read without parsing text or walking per-match structs, so a search
//! from Python, Node or another language costs little more than the engine's
//! own work. One result holds one query or a batch: query `q`'s matches are
//! rows `offsets[q]` to `offsets[q + 1]` of every per-match column.
//!
//! The library owns every array; the caller hands the top-level pointer
//! back to `ivdb_free_columns`, which releases everything below it.

use std::ffi::{c_char, CString};

use super::boundary::{guard, ivdb_error, out_arg, str_arg, Failure};
use super::chunk_columns::{chunk_columns, ivdb_chunk_columns, OwnedChunks};
use super::index::{index, ivdb_index, run_request};
use super::status::{ivdb_status, IVDB_INTERNAL};
use crate::engine::IsccMatches;

/// Bytes of one ISCC-ID in `iscc_ids` and `instance_ids` (`"ISCC:"` and 16
/// base32 characters; no terminator between them).
pub const IVDB_ISCC_ID_LEN: usize = 21;

/// Search results as columns; see the module docs of `ivdb_search_columns`.
#[repr(C)]
pub struct ivdb_columns {
    /// True when the request was a batch (a list of codes or of unit lists),
    /// so the caller answers with a list even for one query.
    pub batch: bool,
    /// Queries in this result.
    pub queries: usize,
    /// `queries + 1` row offsets: query `q` has rows `offsets[q]` to
    /// `offsets[q + 1]` (best first).
    pub offsets: *const usize,
    /// Rows (matches of all queries).
    pub rows: usize,
    /// `rows * IVDB_ISCC_ID_LEN` bytes: the ISCC-ID of each row.
    pub iscc_ids: *const c_char,
    /// Aggregated score of each row (0..1).
    pub scores: *const f32,
    /// `1 - score` of each row.
    pub distances: *const f32,
    /// True where the row's INSTANCE unit matched.
    pub instance: *const bool,
    /// Unit types with a score in any row.
    pub unit_types: usize,
    /// Their names (e.g. "CONTENT-TEXT-V0"), NUL-terminated.
    pub unit_type_names: *const *const c_char,
    /// `rows * unit_types` NPHDs, row-major; NaN where the row has no match
    /// of that unit type.
    pub unit_distances: *const f32,
    /// `rows * unit_types`: true where that unit score counts towards the
    /// row's score (>= unit_threshold).
    pub unit_kept: *const bool,
    /// `queries + 1` offsets into `instance_ids` (in ISCC-IDs).
    pub instance_offsets: *const usize,
    /// ISCC-IDs whose INSTANCE unit matched, per query, ascending;
    /// `IVDB_ISCC_ID_LEN` bytes each.
    pub instance_ids: *const c_char,
    /// Per query: members its similarity search looked at (rows scanned
    /// plus graph nodes taken into HNSW candidate sets).
    pub visited_members: *const u64,
    /// Per query: distances its similarity search computed.
    pub computed_distances: *const u64,
    /// The queries' chunk matches (granular features; no rows for queries
    /// without features), never NULL in a result.
    pub chunks: *const ivdb_chunk_columns,
}

/// The arrays behind an `ivdb_columns` (which comes first, so a pointer to
/// this is a pointer to it). Vec buffers do not move when this does.
#[repr(C)]
struct Owned {
    view: ivdb_columns,
    offsets: Vec<usize>,
    iscc_ids: Vec<u8>,
    scores: Vec<f32>,
    distances: Vec<f32>,
    instance: Vec<bool>,
    names: Vec<CString>,
    name_ptrs: Vec<*const c_char>,
    unit_distances: Vec<f32>,
    unit_kept: Vec<bool>,
    instance_offsets: Vec<usize>,
    instance_ids: Vec<u8>,
    visited_members: Vec<u64>,
    computed_distances: Vec<u64>,
    chunks: Option<Box<OwnedChunks>>,
}

/// One ISCC-ID into a fixed-width column.
pub(super) fn push_id(column: &mut Vec<u8>, id: &str) -> Result<(), Failure> {
    if id.len() != IVDB_ISCC_ID_LEN {
        return Err(Failure::new(
            IVDB_INTERNAL,
            format!("ISCC-ID {id} is not {IVDB_ISCC_ID_LEN} bytes"),
        ));
    }
    column.extend_from_slice(id.as_bytes());
    Ok(())
}

/// The columns of some queries' results.
fn columns(results: &[IsccMatches], batch: bool) -> Result<*mut ivdb_columns, Failure> {
    let mut types: Vec<&str> = results
        .iter()
        .flat_map(|r| {
            r.matches
                .iter()
                .flat_map(|m| m.units.keys().map(String::as_str))
        })
        .collect();
    types.sort_unstable();
    types.dedup();
    let rows: usize = results.iter().map(|r| r.matches.len()).sum();
    let mut o = Owned {
        view: empty_view(),
        offsets: Vec::with_capacity(results.len() + 1),
        iscc_ids: Vec::with_capacity(rows * IVDB_ISCC_ID_LEN),
        scores: Vec::with_capacity(rows),
        distances: Vec::with_capacity(rows),
        instance: Vec::with_capacity(rows),
        names: Vec::with_capacity(types.len()),
        name_ptrs: Vec::with_capacity(types.len()),
        unit_distances: vec![f32::NAN; rows * types.len()],
        unit_kept: vec![false; rows * types.len()],
        instance_offsets: Vec::with_capacity(results.len() + 1),
        instance_ids: Vec::new(),
        visited_members: results.iter().map(|r| r.visited_members).collect(),
        computed_distances: results.iter().map(|r| r.computed_distances).collect(),
        chunks: Some(chunk_columns(results)?),
    };
    for t in &types {
        // Unit type names hold no NUL.
        o.names.push(CString::new(*t).unwrap_or_default());
    }
    o.name_ptrs = o.names.iter().map(|n| n.as_ptr()).collect();
    o.offsets.push(0);
    o.instance_offsets.push(0);
    let mut row = 0;
    for r in results {
        for m in &r.matches {
            push_id(&mut o.iscc_ids, &m.iscc_id)?;
            o.scores.push(m.score);
            o.distances.push(m.distance);
            o.instance.push(m.instance);
            for (t, u) in &m.units {
                if let Ok(col) = types.binary_search(&t.as_str()) {
                    o.unit_distances[row * types.len() + col] = u.distance;
                    o.unit_kept[row * types.len() + col] = u.kept;
                }
            }
            row += 1;
        }
        o.offsets.push(row);
        for id in &r.instance_matches {
            push_id(&mut o.instance_ids, id)?;
        }
        o.instance_offsets
            .push(o.instance_ids.len() / IVDB_ISCC_ID_LEN);
    }
    o.view = ivdb_columns {
        batch,
        queries: results.len(),
        offsets: o.offsets.as_ptr(),
        rows,
        iscc_ids: o.iscc_ids.as_ptr().cast(),
        scores: o.scores.as_ptr(),
        distances: o.distances.as_ptr(),
        instance: o.instance.as_ptr(),
        unit_types: types.len(),
        unit_type_names: o.name_ptrs.as_ptr(),
        unit_distances: o.unit_distances.as_ptr(),
        unit_kept: o.unit_kept.as_ptr(),
        instance_offsets: o.instance_offsets.as_ptr(),
        instance_ids: o.instance_ids.as_ptr().cast(),
        visited_members: o.visited_members.as_ptr(),
        computed_distances: o.computed_distances.as_ptr(),
        chunks: o
            .chunks
            .as_ref()
            .map_or(std::ptr::null(), |c| &c.view as *const ivdb_chunk_columns),
    };
    Ok(Box::into_raw(Box::new(o)).cast::<ivdb_columns>())
}

fn empty_view() -> ivdb_columns {
    ivdb_columns {
        batch: false,
        queries: 0,
        offsets: std::ptr::null(),
        rows: 0,
        iscc_ids: std::ptr::null(),
        scores: std::ptr::null(),
        distances: std::ptr::null(),
        instance: std::ptr::null(),
        unit_types: 0,
        unit_type_names: std::ptr::null(),
        unit_distances: std::ptr::null(),
        unit_kept: std::ptr::null(),
        instance_offsets: std::ptr::null(),
        instance_ids: std::ptr::null(),
        visited_members: std::ptr::null(),
        computed_distances: std::ptr::null(),
        chunks: std::ptr::null(),
    }
}

/// Search with a JSON request in the engine's one request grammar (as
/// `ivdb_search_json`; `count` 0 means the default) and receive the results
/// as columns: `*out` holds one query's results or a batch's (see
/// `ivdb_columns`). Release it with `ivdb_free_columns`.
///
/// # Safety
/// `index` is a live handle; `request_json` a NUL-terminated string; `out`
/// writable; `err` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn ivdb_search_columns(
    index: *const ivdb_index,
    request_json: *const c_char,
    count: usize,
    exact: bool,
    out: *mut *mut ivdb_columns,
    err: *mut *mut ivdb_error,
) -> ivdb_status {
    guard(err, || {
        let idx = self::index(index)?;
        let text = str_arg(request_json, "request_json")?;
        let out = out_arg(out, "out")?;
        let (results, batch) = run_request(idx, text, "request_json", count, exact)?;
        out.write(columns(&results, batch)?);
        Ok(())
    })
}

/// Release columns from `ivdb_search_columns` (every array with them). NULL
/// is a no-op; releasing twice is undefined behaviour, as with `free`.
///
/// # Safety
/// `columns` is NULL or from `ivdb_search_columns`, released once.
#[no_mangle]
pub unsafe extern "C" fn ivdb_free_columns(columns: *mut ivdb_columns) {
    if !columns.is_null() {
        // SAFETY: made by `columns()` as a boxed `Owned`, whose first field
        // (repr(C)) is this struct, so the pointer is the box's.
        drop(unsafe { Box::from_raw(columns.cast::<Owned>()) });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{IsccMatch, UnitScore};
    use std::collections::BTreeMap;

    fn hit(id: &str, distance: f32, units: &[(&str, f32)]) -> IsccMatch {
        IsccMatch {
            iscc_id: id.to_string(),
            key: 0,
            score: 1.0 - distance,
            distance,
            units: units
                .iter()
                .map(|(t, d)| {
                    let u = UnitScore {
                        score: 1.0 - d,
                        distance: *d,
                        kept: *d < 0.25,
                    };
                    (t.to_string(), u)
                })
                .collect::<BTreeMap<_, _>>(),
            instance: false,
        }
    }

    #[test]
    fn columns_hold_every_row_of_every_query_in_order() {
        let a = "ISCC:MAIGGGMBT3LBUEH7";
        let b = "ISCC:MAIGMEOTQVYHBMAA";
        let results = vec![
            IsccMatches {
                matches: vec![
                    hit(a, 0.0, &[("META-NONE-V0", 0.0)]),
                    hit(b, 0.3, &[("DATA-NONE-V0", 0.3)]),
                ],
                instance_matches: vec![a.to_string()],
                visited_members: 40,
                computed_distances: 52,
                chunk_matches: Vec::new(),
            },
            IsccMatches::default(),
        ];
        let ptr = columns(&results, true).unwrap();
        // SAFETY: just made; read, then freed once.
        let c = unsafe { &*ptr };
        assert_eq!((c.batch, c.queries, c.rows, c.unit_types), (true, 2, 2, 2));
        // SAFETY: the arrays hold the lengths the struct states.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(c.offsets, 3), &[0, 2, 2]);
            assert_eq!(std::slice::from_raw_parts(c.visited_members, 2), &[40, 0]);
            assert_eq!(
                std::slice::from_raw_parts(c.computed_distances, 2),
                &[52, 0]
            );
            let ids = std::slice::from_raw_parts(c.iscc_ids.cast::<u8>(), 2 * IVDB_ISCC_ID_LEN);
            assert_eq!(ids, format!("{a}{b}").as_bytes());
            assert_eq!(std::slice::from_raw_parts(c.distances, 2), &[0.0, 0.3]);
            let d = std::slice::from_raw_parts(c.unit_distances, 4);
            // Columns: DATA-NONE-V0, META-NONE-V0 (sorted).
            assert!(d[0].is_nan() && d[1] == 0.0 && d[2] == 0.3 && d[3].is_nan());
            assert_eq!(
                std::slice::from_raw_parts(c.instance_offsets, 3),
                &[0, 1, 1]
            );
            let inst = std::slice::from_raw_parts(c.instance_ids.cast::<u8>(), IVDB_ISCC_ID_LEN);
            assert_eq!(inst, a.as_bytes());
            ivdb_free_columns(ptr);
        }
    }
}
