//! NPHD, the normalized prefix Hamming distance, and its kernels.
//!
//! `NPHD(a, b) = popcount(a[..m] XOR b[..m]) / (8·m)` with `m = min(len a,
//! len b)` bytes; bodies are 1 to 32 bytes. A shorter code therefore compares
//! on the common prefix, so a 64-bit unit and the 256-bit unit it starts are
//! at distance 0. ISCC unit bodies are 8, 16, 24 or 32 bytes (the codec
//! refuses others before they reach an index); the low-level indexes also
//! take any whole number of bytes, as iscc-usearch does.
//!
//! Three forms:
//! * [`nphd`]: the scalar reference over unpadded bodies (the definition);
//! * [`Row`] + [`nphd_rows`]: the 33-byte row stored in usearch (`b1x8`, 264
//!   bits: one length byte, then the body zero-padded to 32 bytes); the
//!   length byte is never compared, only used to find `m`;
//! * [`scan`]: SIMD kernels for the exact scan over word-major columns,
//!   chosen at run time (AVX-512 VPOPCNTDQ, AVX2, POPCNT, portable).

pub mod scan;

use std::fmt;

/// Bytes of a stored row: length byte + 32 body bytes.
pub const ROW_BYTES: usize = 33;
/// Longest body in bytes (256 bits).
pub const MAX_BODY_BYTES: usize = 32;
/// Longest body in bits: the most a code, a query or `max_dim` may have.
pub const MAX_BITS: usize = MAX_BODY_BYTES * 8;
/// Dimensions (bits) of the usearch `b1x8` vector holding a row.
pub const ROW_BITS: usize = ROW_BYTES * 8;

/// Errors for bodies the metric cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Empty body: it has no prefix to compare.
    #[error("empty code: a code needs at least one byte (ISCC units have 64 to 256 bits)")]
    Empty,
    /// Longer than 256 bits.
    #[error("a code of {0} bits: longer than 256 bits (never truncated)")]
    Length(usize),
}

/// Check a body length: 1 to 32 bytes.
pub fn check_body(body: &[u8]) -> Result<(), BodyError> {
    match body.len() {
        0 => Err(BodyError::Empty),
        1..=MAX_BODY_BYTES => Ok(()),
        n => Err(BodyError::Length(n * 8)),
    }
}

/// True for a body of whole 64-bit words (every ISCC unit): the word
/// kernels compare those; other lengths take the byte-exact paths.
#[inline]
pub fn whole_words(bytes: usize) -> bool {
    bytes.is_multiple_of(8)
}

/// The scalar reference: NPHD of two unpadded bodies.
///
/// Returns `None` when either body is empty (no common prefix).
pub fn nphd(a: &[u8], b: &[u8]) -> Option<f32> {
    let m = a.len().min(b.len());
    if m == 0 {
        return None;
    }
    let diff: u32 = a[..m]
        .iter()
        .zip(&b[..m])
        .map(|(x, y)| (x ^ y).count_ones())
        .sum();
    Some(diff as f32 / (8 * m) as f32)
}

/// A stored row: `[len, body..., 0-padding]`, 33 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Row(pub [u8; ROW_BYTES]);

impl Row {
    /// Pad a validated body into a row.
    pub fn new(body: &[u8]) -> Result<Row, BodyError> {
        check_body(body)?;
        let mut row = [0u8; ROW_BYTES];
        row[0] = body.len() as u8;
        row[1..1 + body.len()].copy_from_slice(body);
        Ok(Row(row))
    }

    /// Body length in bytes.
    pub fn len(&self) -> usize {
        usize::from(self.0[0]).min(MAX_BODY_BYTES)
    }

    /// True for a row without body (never constructed by [`Row::new`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The unpadded body.
    pub fn body(&self) -> &[u8] {
        &self.0[1..1 + self.len()]
    }

    /// The body as four little-endian words (zero-padded).
    pub fn words(&self) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (i, word) in w.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.0[1 + 8 * i..9 + 8 * i]);
            *word = u64::from_le_bytes(b);
        }
        w
    }
}

impl fmt::Debug for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Row({} bytes: ", self.len())?;
        for b in self.body() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// NPHD of two rows (fast path used by the usearch metric). Rows with a
/// zero length byte are at distance 1 from everything.
#[inline(always)]
pub fn nphd_rows(a: &[u8; ROW_BYTES], b: &[u8; ROW_BYTES]) -> f32 {
    let bytes = usize::from(a[0].min(b[0])).min(MAX_BODY_BYTES);
    if !whole_words(bytes) {
        return nphd_rows_bytes(a, b, bytes);
    }
    let m = bytes / 8;
    if m == 0 {
        return 1.0;
    }
    let mut diff = 0u32;
    for w in 0..4 {
        let bits = (row_word(a, w) ^ row_word(b, w)).count_ones();
        // Branch-free prefix mask: words past the common prefix count 0.
        diff += if w < m { bits } else { 0 };
    }
    diff as f32 / (64 * m) as f32
}

/// Word `w` of a row's body.
#[inline(always)]
fn row_word(r: &[u8; ROW_BYTES], w: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&r[1 + 8 * w..9 + 8 * w]);
    u64::from_le_bytes(x)
}

/// [`nphd_rows`] over a common prefix that ends inside a word
/// (byte-granular vectors): the bytes of the last word past it are masked
/// off. Kept out of line so the ISCC-unit path stays as small as before.
#[cold]
#[inline(never)]
fn nphd_rows_bytes(a: &[u8; ROW_BYTES], b: &[u8; ROW_BYTES], bytes: usize) -> f32 {
    let diff: u32 = (0..4)
        .map(|w| ((row_word(a, w) ^ row_word(b, w)) & prefix_mask(bytes, w)).count_ones())
        .sum();
    diff as f32 / (8 * bytes) as f32
}

/// The bits of word `w` (little-endian bytes `8w..8w+8`) inside a prefix of
/// `bytes` bytes.
#[inline(always)]
pub(crate) fn prefix_mask(bytes: usize, w: usize) -> u64 {
    match bytes.saturating_sub(8 * w) {
        0 => 0,
        n if n >= 8 => u64::MAX,
        n => (1u64 << (8 * n)) - 1,
    }
}

thread_local! {
    /// Calls of the usearch metric on this thread (see [`metric_calls`]).
    static METRIC_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times this thread has computed an NPHD for usearch. A graph
/// search runs wholly on its calling thread, so the difference across one
/// search is the distances that search computed (usearch's own
/// `computed_distances`, which its Rust binding does not return).
pub(crate) fn metric_calls() -> u64 {
    METRIC_CALLS.with(std::cell::Cell::get)
}

#[inline(always)]
fn count_metric_call() {
    METRIC_CALLS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// usearch's stateful metric signature: (row a, row b, state) -> distance.
pub(crate) type UsearchMetric = unsafe extern "C" fn(usize, usize, usize) -> f32;

/// The NPHD metric for usearch, portable build.
///
/// # Safety
/// `a` and `b` must point to readable 33-byte rows.
unsafe extern "C" fn usearch_nphd_portable(a: usize, b: usize, _state: usize) -> f32 {
    // SAFETY: the caller (usearch) passes pointers to stored or query vectors
    // of the index's 264-bit dimension, i.e. 33 readable bytes each.
    let (a, b) = unsafe {
        (
            &*(a as *const [u8; ROW_BYTES]),
            &*(b as *const [u8; ROW_BYTES]),
        )
    };
    count_metric_call();
    nphd_rows(a, b)
}

/// The NPHD metric for usearch, compiled with the POPCNT instruction.
///
/// # Safety
/// `a` and `b` must point to readable 33-byte rows; the CPU must have POPCNT.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe extern "C" fn usearch_nphd_popcnt(a: usize, b: usize, _state: usize) -> f32 {
    // SAFETY: as in `usearch_nphd_portable`.
    let (a, b) = unsafe {
        (
            &*(a as *const [u8; ROW_BYTES]),
            &*(b as *const [u8; ROW_BYTES]),
        )
    };
    count_metric_call();
    nphd_rows(a, b)
}

/// The fastest NPHD metric function for usearch that this CPU runs.
pub(crate) fn usearch_metric() -> UsearchMetric {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        return usearch_nphd_popcnt;
    }
    usearch_nphd_portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        let a = [0u8; 8];
        assert_eq!(nphd(&a, &a), Some(0.0));
        assert_eq!(nphd(&a, &[0xFF; 8]), Some(1.0));
        // 0x0F vs 0x00 in one byte of 16: 4 bits of 128.
        let mut b = [0u8; 16];
        b[3] = 0x0F;
        assert_eq!(nphd(&[0u8; 16], &b), Some(4.0 / 128.0));
        // Prefix: the 64-bit code starting a 256-bit code.
        let long: Vec<u8> = (0..32usize).map(|i| (i * 37) as u8).collect();
        assert_eq!(nphd(&long[..8], &long), Some(0.0));
        assert_eq!(nphd(&[], &long), None);
    }

    #[test]
    fn rows_match_reference_and_ignore_length_byte_value() {
        let long: Vec<u8> = (0..32).map(|i| (i * 91 + 7) as u8).collect();
        let short: Vec<u8> = (0..8).map(|i| (i * 13 + 1) as u8).collect();
        let ra = Row::new(&long).unwrap();
        let rb = Row::new(&short).unwrap();
        assert_eq!(nphd_rows(&ra.0, &rb.0), nphd(&long, &short).unwrap());
        assert_eq!(nphd_rows(&ra.0, &ra.0), 0.0);
        // Rows of different lengths but equal prefix: the length byte differs
        // (32 vs 8) yet the distance is 0.
        let prefix = Row::new(&long[..8]).unwrap();
        assert_eq!(nphd_rows(&ra.0, &prefix.0), 0.0);
        assert_eq!(ra.body(), &long[..]);
    }

    #[test]
    fn usearch_metric_equals_reference_on_mixed_lengths() {
        let mut seed = 17u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            (seed >> 33) as u8
        };
        let metrics: Vec<UsearchMetric> = vec![usearch_metric(), usearch_nphd_portable];
        for i in 0..4000 {
            // Whole words first, then any byte length (1–32).
            let len = |r: u8| {
                if i < 2000 {
                    8 * (1 + usize::from(r) % 4)
                } else {
                    1 + usize::from(r) % 32
                }
            };
            let la = len(next());
            let lb = len(next());
            let a: Vec<u8> = (0..la).map(|_| next()).collect();
            let b: Vec<u8> = (0..lb).map(|_| next()).collect();
            let (ra, rb) = (Row::new(&a).unwrap(), Row::new(&b).unwrap());
            for metric in &metrics {
                // SAFETY: both pointers are to 33-byte rows.
                let d = unsafe { metric(ra.0.as_ptr() as usize, rb.0.as_ptr() as usize, 0) };
                assert_eq!(d, nphd(&a, &b).unwrap());
            }
        }
    }

    #[test]
    fn bad_bodies_are_errors() {
        assert_eq!(Row::new(&[]), Err(BodyError::Empty));
        assert_eq!(Row::new(&[0; 33]), Err(BodyError::Length(264)));
        assert_eq!(Row::new(&[0; 40]), Err(BodyError::Length(320)));
        // Any whole number of bytes up to 32 is a body (never padded into
        // the distance: see `byte_prefixes_compare_only_their_bytes`).
        for n in 1..=32 {
            assert_eq!(Row::new(&vec![7; n]).unwrap().len(), n);
        }
    }

    #[test]
    fn byte_prefixes_compare_only_their_bytes() {
        // [1, 2] against [1, 2, 255, ...]: the common prefix is 2 bytes.
        let a = Row::new(&[1, 2]).unwrap();
        let b = Row::new(&[1, 2, 255, 255, 255, 255]).unwrap();
        assert_eq!(nphd_rows(&a.0, &b.0), 0.0);
        // One bit of 16 differs.
        let c = Row::new(&[1, 3]).unwrap();
        assert_eq!(nphd_rows(&a.0, &c.0), 1.0 / 16.0);
        // 10 bytes vs 12: bytes 8 and 9 count, 10 and 11 do not.
        let mut x = vec![0u8; 12];
        x[9] = 0x01;
        x[11] = 0xFF;
        let y = Row::new(&x[..10]).unwrap();
        assert_eq!(nphd_rows(&Row::new(&x).unwrap().0, &y.0), 0.0);
        assert_eq!(
            nphd_rows(&Row::new(&[0u8; 12]).unwrap().0, &y.0),
            1.0 / 80.0
        );
        assert_eq!(prefix_mask(10, 0), u64::MAX);
        assert_eq!(prefix_mask(10, 1), 0xFFFF);
        assert_eq!(prefix_mask(10, 2), 0);
    }
}
