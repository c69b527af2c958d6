//! Graph files without their vectors: one copy of each code on disk.
//!
//! usearch serializes a graph as `[rows: u32][cols: u32][rows × cols
//! vector bytes][64-byte head][index header: size, connectivity,
//! connectivity_base, max_level, entry_slot, each u64][levels: i16 per
//! node][node tapes]`, where node `i`'s tape is its key (u64), its level
//! (i16) and its neighbour lists (a u32 count and `connectivity_base` u32
//! slots at level 0, `connectivity` at each level above). Its vector matrix
//! repeats every row the flat store saved beside it (33 bytes a code, about
//! a sixth of an HNSW index on disk).
//!
//! A compact graph file replaces the matrix with a u32 per slot naming the
//! flat-store row holding the slot's vector (its place in storage order, see
//! `FlatStore::order`), and keeps inline only the vectors the flat store
//! does not hold as they are: removed nodes (usearch frees their keys but
//! keeps them to route walks) and any slot whose row differs. Loading
//! assembles usearch's form again from the flat store saved with it, so
//! usearch reads exactly the bytes it wrote (the tests check this byte for
//! byte).
//!
//! Layout, little-endian: magic `IVDBGRC1`, cols (u32), reserved (u32, 0),
//! slots (u64), inline rows (u64), one u32 per slot ([`INLINE`] | index
//! into the inline rows, or the flat-store place), the inline rows (cols
//! bytes each), zeros to a multiple of 8, then usearch's bytes from its
//! head on.

use crate::index::flat::FlatStore;
use crate::metric::ROW_BYTES;

/// Magic of a compact graph file.
pub(crate) const MAGIC: &[u8; 8] = b"IVDBGRC1";
/// A slot reference with this bit set indexes the inline rows.
const INLINE: u32 = 1 << 31;
/// Bytes before the slot references.
const PREFIX: usize = 32;
/// usearch's dense head, then its graph header (five u64).
const DENSE_HEAD: usize = 64;
const GRAPH_HEADER: usize = 40;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The key of every slot, read from usearch's bytes after the matrix
/// (`tail`: head, graph header, levels, tapes), which must hold exactly
/// `rows` nodes laid out as the module docs say.
fn slot_keys(tail: &[u8], rows: usize) -> Result<Vec<u64>, String> {
    let field = |i: usize| {
        u64_at(tail, DENSE_HEAD + 8 * i)
            .and_then(|v| usize::try_from(v).ok())
            .ok_or_else(|| "the graph header is cut".to_string())
    };
    let (size, connectivity, connectivity_base, max_level) =
        (field(0)?, field(1)?, field(2)?, field(3)?);
    if size != rows {
        return Err(format!("{size} nodes but {rows} vectors"));
    }
    let levels_at = DENSE_HEAD + GRAPH_HEADER;
    let mut tape = levels_at + 2 * rows;
    let base = 8 + 2 + 4 + 4 * connectivity_base;
    let upper = 4 + 4 * connectivity;
    let mut keys = Vec::with_capacity(rows);
    for slot in 0..rows {
        let at = levels_at + 2 * slot;
        let level = tail
            .get(at..at + 2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .ok_or("the node levels are cut")?;
        let level = usize::try_from(level)
            .ok()
            .filter(|&l| l <= max_level)
            .ok_or_else(|| format!("node {slot} has level {level}"))?;
        keys.push(u64_at(tail, tape).ok_or_else(|| format!("node {slot}'s tape is cut"))?);
        tape += base + upper * level;
    }
    if tape != tail.len() {
        return Err(format!(
            "the node tapes end at byte {tape} of {} (not the layout this build knows)",
            tail.len()
        ));
    }
    Ok(keys)
}

/// A compact graph: its prefix (magic to padding) and usearch's tail,
/// which the caller writes one after the other.
pub(crate) struct Compact<'a> {
    pub(crate) prefix: Vec<u8>,
    pub(crate) tail: &'a [u8],
}

/// Compact usearch's serialization `full` of a graph over `flat`. An
/// error says why it cannot be (a layout this build does not know, or a
/// graph too large to reference in 31 bits); the caller then keeps `full`.
pub(crate) fn compact<'a>(full: &'a [u8], flat: &FlatStore) -> Result<Compact<'a>, String> {
    let rows = u32_at(full, 0).ok_or("no matrix dimensions")? as usize;
    let cols = u32_at(full, 4).ok_or("no matrix dimensions")? as usize;
    if cols != ROW_BYTES {
        return Err(format!("vectors of {cols} bytes, not {ROW_BYTES}"));
    }
    if rows >= INLINE as usize || flat.len() >= INLINE as usize {
        return Err(format!("{rows} slots: too many to reference"));
    }
    let end = 8 + rows * cols;
    let matrix = full.get(8..end).ok_or("the matrix is cut")?;
    let tail = &full[end..];
    let keys = slot_keys(tail, rows)?;

    let order = flat.order();
    let mut refs = Vec::with_capacity(rows);
    let mut inline: Vec<&[u8]> = Vec::new();
    for (slot, key) in keys.iter().enumerate() {
        let vector = &matrix[slot * cols..(slot + 1) * cols];
        let place = order.position(*key).filter(|&p| {
            order
                .entry_at(p)
                .is_some_and(|(_, row)| row.0[..] == *vector)
        });
        match place {
            Some(p) => refs.push(p as u32),
            None => {
                refs.push(INLINE | inline.len() as u32);
                inline.push(vector);
            }
        }
    }
    let mut prefix = Vec::with_capacity(PREFIX + 4 * rows + cols * inline.len() + 8);
    prefix.extend_from_slice(MAGIC);
    prefix.extend_from_slice(&(cols as u32).to_le_bytes());
    prefix.extend_from_slice(&0u32.to_le_bytes());
    prefix.extend_from_slice(&(rows as u64).to_le_bytes());
    prefix.extend_from_slice(&(inline.len() as u64).to_le_bytes());
    for r in &refs {
        prefix.extend_from_slice(&r.to_le_bytes());
    }
    for v in &inline {
        prefix.extend_from_slice(v);
    }
    prefix.resize(prefix.len().next_multiple_of(8), 0);
    Ok(Compact { prefix, tail })
}

/// Where a compact file's tail (usearch's bytes from its head on) starts,
/// read from its first [`PREFIX_HEAD`] bytes (or more).
pub(crate) fn tail_offset(head: &[u8]) -> Result<usize, String> {
    if head.get(..8) != Some(&MAGIC[..]) {
        return Err("missing IVDBGRC1 magic".into());
    }
    let cols = u32_at(head, 8).ok_or("a cut header")? as usize;
    let rows = u64_at(head, 16).ok_or("a cut header")?;
    let inline = u64_at(head, 24).ok_or("a cut header")?;
    if cols != ROW_BYTES || rows >= u64::from(INLINE) || inline > rows {
        return Err(format!(
            "a header of {rows} slots, {inline} inline rows of {cols} bytes"
        ));
    }
    Ok((PREFIX + 4 * rows as usize + cols * inline as usize).next_multiple_of(8))
}

/// Bytes [`tail_offset`] reads.
pub(crate) const PREFIX_HEAD: usize = PREFIX;

/// usearch's serialization again from a compact file's `prefix` (its bytes
/// before the tail, checked by [`tail_offset`]) and its tail of `tail_len`
/// bytes, which `fill_tail` writes into the slice it is given (from a file
/// or a buffer; it may check them there, e.g. their checksum), with the
/// flat store saved with it. An error says what is wrong with the file.
pub(crate) fn expand_with(
    prefix: &[u8],
    tail_len: usize,
    fill_tail: impl FnOnce(&mut [u8]) -> Result<(), String>,
    flat: &FlatStore,
) -> Result<Vec<u8>, String> {
    let tail_at = tail_offset(prefix)?;
    let order = flat.order();
    if prefix.len() != tail_at {
        return Err(format!("a prefix of {} bytes, not {tail_at}", prefix.len()));
    }
    let cols = ROW_BYTES;
    let rows = u64_at(prefix, 16).ok_or("a cut header")? as usize;
    let inline = u64_at(prefix, 24).ok_or("a cut header")? as usize;
    let refs_end = PREFIX + 4 * rows;
    let refs = &prefix[PREFIX..refs_end];
    let inline_rows = &prefix[refs_end..refs_end + cols * inline];

    let matrix_end = 8 + rows * cols;
    let mut full = vec![0u8; matrix_end + tail_len];
    full[..4].copy_from_slice(&(rows as u32).to_le_bytes());
    full[4..8].copy_from_slice(&(cols as u32).to_le_bytes());
    let (head, tail) = full.split_at_mut(matrix_end);
    fill_tail(tail)?;
    // The keys in usearch's tapes must be the flat rows' keys: a graph
    // paired with another flat store is refused, never walked over the
    // wrong vectors.
    let keys = slot_keys(tail, rows)?;
    let matrix = head[8..].chunks_exact_mut(cols);
    for (((slot, r), key), out) in refs.chunks_exact(4).enumerate().zip(keys).zip(matrix) {
        let r = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        if r & INLINE != 0 {
            let i = (r & !INLINE) as usize;
            let row = inline_rows
                .get(i * cols..(i + 1) * cols)
                .ok_or_else(|| format!("slot {slot} names inline row {i} of {inline}"))?;
            out.copy_from_slice(row);
        } else {
            let (stored, row) = order.entry_at(r as usize).ok_or_else(|| {
                format!(
                    "slot {slot} names row {r}, but the flat store has {}",
                    flat.len()
                )
            })?;
            if stored != key {
                return Err(format!(
                    "slot {slot} is key {key}, but flat row {r} is key {stored}"
                ));
            }
            out.copy_from_slice(&row.0);
        }
    }
    Ok(full)
}

/// usearch's serialization again from a compact graph file's `bytes` (in
/// memory) and the flat store saved with it.
pub(crate) fn expand(bytes: &[u8], flat: &FlatStore) -> Result<Vec<u8>, String> {
    let tail_at = tail_offset(bytes)?;
    if bytes.len() < tail_at {
        return Err(format!("{} bytes: cut before the graph", bytes.len()));
    }
    let (prefix, tail) = bytes.split_at(tail_at);
    expand_with(
        prefix,
        tail.len(),
        |out| {
            out.copy_from_slice(tail);
            Ok(())
        },
        flat,
    )
}
