//! Chunk matches (granular features) as columns, beside the unit matches of
//! `ivdb_columns`: `ivdb_columns.chunks` points to one `ivdb_chunk_columns`
//! holding every query's chunk matches, and, when the request asked for
//! `detail`, their matched segments. The library owns every array; they are
//! released with the `ivdb_columns` that points to them.

use std::collections::BTreeSet;
use std::ffi::{c_char, CString};

use super::boundary::Failure;
use super::columns::{push_id, IVDB_ISCC_ID_LEN};
use crate::engine::IsccMatches;

/// The chunk matches of a search as columns (see `ivdb_columns.chunks`).
#[repr(C)]
pub struct ivdb_chunk_columns {
    /// `queries + 1` row offsets: query `q`'s chunk matches are rows
    /// `offsets[q]` to `offsets[q + 1]` (best first).
    pub offsets: *const usize,
    /// Rows (chunk matches of all queries).
    pub rows: usize,
    /// `rows * IVDB_ISCC_ID_LEN` bytes: the ISCC-ID of each row.
    pub iscc_ids: *const c_char,
    /// IDF-weighted share of the query's simprints each row matched (0..1).
    pub scores: *const f32,
    /// Simprint types with a match in any row.
    pub simprint_types: usize,
    /// Their names (e.g. "CONTENT-TEXT-V0"), NUL-terminated.
    pub simprint_type_names: *const *const c_char,
    /// `rows * simprint_types`, row-major: the row's score for the type;
    /// NaN where the row matched no simprint of that type.
    pub type_scores: *const f32,
    /// `rows * simprint_types`: query simprints of the type the row matched.
    pub type_matches: *const u32,
    /// `rows * simprint_types`: query simprints of the type (0 where the
    /// row has no match of the type).
    pub type_queried: *const u32,
    /// Matched segments in all (0 unless the request asked for `detail`).
    pub segments: usize,
    /// `rows + 1` offsets: row `r`'s segments are `segment_offsets[r]` to
    /// `segment_offsets[r + 1]` of the segment columns.
    pub segment_offsets: *const usize,
    /// Per segment: its simprint type (an index into `simprint_type_names`).
    pub segment_types: *const u32,
    /// Per segment: the position of the query simprint in its feature set.
    pub segment_query_chunks: *const u32,
    /// Per segment: the position of the entry's chunk in its feature set.
    pub segment_chunks: *const u64,
    /// Per segment: similarity of query simprint and chunk (0..1).
    pub segment_scores: *const f32,
    /// Per segment: entries matching the query simprint.
    pub segment_freqs: *const u64,
    /// Per segment: byte offset of the entry's segment; -1 where the entry
    /// gave no offsets.
    pub segment_starts: *const i64,
    /// Per segment: byte size of the entry's segment; -1 where the entry gave
    /// no sizes.
    pub segment_sizes: *const i64,
}

/// The arrays behind an `ivdb_chunk_columns` (Vec buffers do not move when
/// this does; the view is made from them last).
pub(super) struct OwnedChunks {
    pub(super) view: ivdb_chunk_columns,
    offsets: Vec<usize>,
    iscc_ids: Vec<u8>,
    scores: Vec<f32>,
    names: Vec<CString>,
    name_ptrs: Vec<*const c_char>,
    type_scores: Vec<f32>,
    type_matches: Vec<u32>,
    type_queried: Vec<u32>,
    segment_offsets: Vec<usize>,
    segment_types: Vec<u32>,
    segment_query_chunks: Vec<u32>,
    segment_chunks: Vec<u64>,
    segment_scores: Vec<f32>,
    segment_freqs: Vec<u64>,
    segment_starts: Vec<i64>,
    segment_sizes: Vec<i64>,
}

fn signed(v: Option<u64>) -> i64 {
    v.and_then(|v| i64::try_from(v).ok()).unwrap_or(-1)
}

/// The chunk columns of some queries' results.
pub(super) fn chunk_columns(results: &[IsccMatches]) -> Result<Box<OwnedChunks>, Failure> {
    let types: Vec<&str> = results
        .iter()
        .flat_map(|r| r.chunk_matches.iter())
        .flat_map(|m| m.types.keys().map(String::as_str))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows: usize = results.iter().map(|r| r.chunk_matches.len()).sum();
    let width = types.len();
    let mut o = Box::new(OwnedChunks {
        view: empty_view(),
        offsets: vec![0],
        iscc_ids: Vec::with_capacity(rows * IVDB_ISCC_ID_LEN),
        scores: Vec::with_capacity(rows),
        // Simprint type names hold no NUL (letters, digits and dashes).
        names: types
            .iter()
            .map(|t| CString::new(*t).unwrap_or_default())
            .collect(),
        name_ptrs: Vec::new(),
        type_scores: vec![f32::NAN; rows * width],
        type_matches: vec![0; rows * width],
        type_queried: vec![0; rows * width],
        segment_offsets: vec![0],
        segment_types: Vec::new(),
        segment_query_chunks: Vec::new(),
        segment_chunks: Vec::new(),
        segment_scores: Vec::new(),
        segment_freqs: Vec::new(),
        segment_starts: Vec::new(),
        segment_sizes: Vec::new(),
    });
    o.name_ptrs = o.names.iter().map(|n| n.as_ptr()).collect();
    let mut row = 0;
    for r in results {
        for m in &r.chunk_matches {
            push_id(&mut o.iscc_ids, &m.iscc_id)?;
            o.scores.push(m.score);
            for (name, t) in &m.types {
                let Ok(col) = types.binary_search(&name.as_str()) else {
                    continue;
                };
                o.type_scores[row * width + col] = t.score;
                o.type_matches[row * width + col] = u32::try_from(t.matches).unwrap_or(u32::MAX);
                o.type_queried[row * width + col] = u32::try_from(t.queried).unwrap_or(u32::MAX);
                for c in t.chunks.iter().flatten() {
                    o.segment_types.push(col as u32);
                    o.segment_query_chunks
                        .push(u32::try_from(c.query_chunk).unwrap_or(u32::MAX));
                    o.segment_chunks.push(c.chunk);
                    o.segment_scores.push(c.score);
                    o.segment_freqs.push(c.freq);
                    o.segment_starts.push(signed(c.offset));
                    o.segment_sizes.push(signed(c.size));
                }
            }
            o.segment_offsets.push(o.segment_types.len());
            row += 1;
        }
        o.offsets.push(row);
    }
    o.view = ivdb_chunk_columns {
        offsets: o.offsets.as_ptr(),
        rows,
        iscc_ids: o.iscc_ids.as_ptr().cast(),
        scores: o.scores.as_ptr(),
        simprint_types: width,
        simprint_type_names: o.name_ptrs.as_ptr(),
        type_scores: o.type_scores.as_ptr(),
        type_matches: o.type_matches.as_ptr(),
        type_queried: o.type_queried.as_ptr(),
        segments: o.segment_types.len(),
        segment_offsets: o.segment_offsets.as_ptr(),
        segment_types: o.segment_types.as_ptr(),
        segment_query_chunks: o.segment_query_chunks.as_ptr(),
        segment_chunks: o.segment_chunks.as_ptr(),
        segment_scores: o.segment_scores.as_ptr(),
        segment_freqs: o.segment_freqs.as_ptr(),
        segment_starts: o.segment_starts.as_ptr(),
        segment_sizes: o.segment_sizes.as_ptr(),
    };
    Ok(o)
}

fn empty_view() -> ivdb_chunk_columns {
    ivdb_chunk_columns {
        offsets: std::ptr::null(),
        rows: 0,
        iscc_ids: std::ptr::null(),
        scores: std::ptr::null(),
        simprint_types: 0,
        simprint_type_names: std::ptr::null(),
        type_scores: std::ptr::null(),
        type_matches: std::ptr::null(),
        type_queried: std::ptr::null(),
        segments: 0,
        segment_offsets: std::ptr::null(),
        segment_types: std::ptr::null(),
        segment_query_chunks: std::ptr::null(),
        segment_chunks: std::ptr::null(),
        segment_scores: std::ptr::null(),
        segment_freqs: std::ptr::null(),
        segment_starts: std::ptr::null(),
        segment_sizes: std::ptr::null(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ChunkMatch, MatchedChunk, TypeChunkScore};
    use std::collections::BTreeMap;

    fn chunk(query_chunk: usize, chunk: u64, offset: Option<u64>) -> MatchedChunk {
        MatchedChunk {
            query: String::new(),
            matched: String::new(),
            score: 0.9,
            freq: 3,
            offset,
            size: offset.map(|o| o + 1),
            query_chunk,
            chunk,
        }
    }

    #[test]
    fn chunk_rows_types_and_segments_line_up() {
        let a = "ISCC:MAIGGGMBT3LBUEH7";
        let b = "ISCC:MAIGMEOTQVYHBMAA";
        let typed = |t: &str, chunks: Option<Vec<MatchedChunk>>| {
            let score = TypeChunkScore {
                score: 0.5,
                matches: chunks.as_ref().map_or(1, Vec::len),
                queried: 4,
                chunks,
            };
            BTreeMap::from([(t.to_string(), score)])
        };
        let mut both = typed("SEMANTIC-TEXT-V0", Some(vec![chunk(0, 2, None)]));
        both.extend(typed(
            "CONTENT-TEXT-V0",
            Some(vec![chunk(1, 0, Some(10)), chunk(3, 5, Some(90))]),
        ));
        let results = vec![
            IsccMatches {
                chunk_matches: vec![
                    ChunkMatch {
                        iscc_id: a.into(),
                        score: 0.75,
                        types: both,
                    },
                    ChunkMatch {
                        iscc_id: b.into(),
                        score: 0.25,
                        types: typed("CONTENT-TEXT-V0", None),
                    },
                ],
                ..IsccMatches::default()
            },
            IsccMatches::default(),
        ];
        let o = chunk_columns(&results).unwrap();
        let c = &o.view;
        assert_eq!((c.rows, c.simprint_types, c.segments), (2, 2, 3));
        // SAFETY: the arrays hold the lengths the struct states.
        unsafe {
            assert_eq!(std::slice::from_raw_parts(c.offsets, 3), &[0, 2, 2]);
            let ids = std::slice::from_raw_parts(c.iscc_ids.cast::<u8>(), 2 * IVDB_ISCC_ID_LEN);
            assert_eq!(&ids[IVDB_ISCC_ID_LEN..], b.as_bytes());
            assert_eq!(std::slice::from_raw_parts(c.scores, 2), &[0.75, 0.25]);
            let name = std::ffi::CStr::from_ptr(*c.simprint_type_names);
            assert_eq!(name.to_str().unwrap(), "CONTENT-TEXT-V0");
            let scores = std::slice::from_raw_parts(c.type_scores, 4);
            assert_eq!(&scores[..3], &[0.5, 0.5, 0.5]);
            assert!(scores[3].is_nan(), "b has no SEMANTIC match");
            assert_eq!(std::slice::from_raw_parts(c.type_matches, 4), &[2, 1, 1, 0]);
            assert_eq!(std::slice::from_raw_parts(c.segment_offsets, 3), &[0, 3, 3]);
            assert_eq!(std::slice::from_raw_parts(c.segment_types, 3), &[0, 0, 1]);
            assert_eq!(
                std::slice::from_raw_parts(c.segment_query_chunks, 3),
                &[1, 3, 0]
            );
            assert_eq!(std::slice::from_raw_parts(c.segment_chunks, 3), &[0, 5, 2]);
            assert_eq!(
                std::slice::from_raw_parts(c.segment_starts, 3),
                &[10, 90, -1]
            );
            assert_eq!(
                std::slice::from_raw_parts(c.segment_sizes, 3),
                &[11, 91, -1]
            );
            assert_eq!(std::slice::from_raw_parts(c.segment_freqs, 3), &[3, 3, 3]);
        }
    }
}
