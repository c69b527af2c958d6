//! A scalable bloom filter for fast rejection of absent keys.
//!
//! A chain of *blocked* bloom filters: each filter is an array of 512-bit
//! blocks, and all `k` probes of a key fall into one block, so a lookup
//! costs one cache line per filter. Keys go into the newest filter; when it
//! holds its capacity, a new filter with `growth`× the capacity and a
//! `tightening`× smaller error rate is chained, so the compound false
//! positive rate stays under the target however many keys arrive, and an
//! empty filter stays small. There are no false negatives: a key that was
//! added is always reported present (keys are never removed; callers
//! rebuild after compaction).
//!
//! File format (`*.isbf`), little-endian: magic `IVDBBLOM`, format version
//! (u32), filter count (u32), target error rate (f64), growth (u32),
//! tightening (f64); then per filter: capacity (u64), count (u64), probes
//! (u32), reserved (u32), blocks (u64), and `blocks · 8` u64 words; then a
//! 64-bit checksum of everything before it. A file with another magic,
//! version, size or checksum is rejected, and the owner rebuilds it from
//! its keys.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// splitmix64's finaliser.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

const MAGIC: &[u8; 8] = b"IVDBBLOM";
/// Bloom file format version.
pub const BLOOM_FORMAT_VERSION: u32 = 1;
const WORDS_PER_BLOCK: usize = 8; // 512 bits, one cache line
const MIN_CAPACITY: u64 = 1024;
/// Probes take 9-bit slices of 128 hash bits.
const MAX_PROBES: u32 = 14;

/// Errors reading or writing a bloom filter file.
#[derive(Debug, thiserror::Error)]
pub enum BloomError {
    /// The file could not be read or written.
    #[error("{}", crate::kind::io_message(path, source))]
    Io { path: PathBuf, source: io::Error },
    /// The file is not a valid bloom filter of this format.
    #[error("{path} is not a valid bloom filter file: {why}")]
    Corrupt { path: PathBuf, why: String },
}

impl BloomError {
    /// The stable category.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        match self {
            BloomError::Io { path, source } => crate::kind::io_kind_at(source, path),
            BloomError::Corrupt { .. } => crate::kind::ErrorKind::Corrupt,
        }
    }
}

/// One blocked bloom filter of the chain.
#[derive(Debug, Clone, PartialEq)]
struct Filter {
    capacity: u64,
    count: u64,
    probes: u32,
    words: Vec<u64>,
}

impl Filter {
    fn new(capacity: u64, error_rate: f64) -> Filter {
        let ln2 = std::f64::consts::LN_2;
        let bits = (-(capacity as f64) * error_rate.ln() / (ln2 * ln2)).ceil();
        // Blocking costs accuracy (keys crowd some blocks); 30 % more bits
        // make up for it at the rates used here.
        let blocks = ((bits * 1.3) / 512.0).ceil().max(1.0) as usize;
        let probes = ((-error_rate.log2()).ceil() as u32).clamp(1, MAX_PROBES);
        Filter {
            capacity,
            count: 0,
            probes,
            words: vec![0; blocks * WORDS_PER_BLOCK],
        }
    }

    fn blocks(&self) -> usize {
        self.words.len() / WORDS_PER_BLOCK
    }

    /// The block, and 128 further hash bits whose 9-bit slices are the
    /// probes' bit positions inside the block.
    #[inline]
    fn positions(&self, hash: u64) -> (usize, u128) {
        let block = ((hash as u128 * self.blocks() as u128) >> 64) as usize;
        let h2 = mix64(hash ^ 0x9E37_79B9_7F4A_7C15);
        let h3 = mix64(h2 ^ 0xD1B5_4A32_D192_ED03);
        (block, (u128::from(h2) << 64) | u128::from(h3))
    }

    #[inline]
    fn insert(&mut self, hash: u64) -> bool {
        let (block, bits) = self.positions(hash);
        let base = block * WORDS_PER_BLOCK;
        let mut new = false;
        for i in 0..self.probes {
            let bit = ((bits >> (9 * i)) & 511) as usize;
            let word = &mut self.words[base + bit / 64];
            let mask = 1u64 << (bit % 64);
            new |= *word & mask == 0;
            *word |= mask;
        }
        new
    }

    #[inline]
    fn contains(&self, hash: u64) -> bool {
        let (block, bits) = self.positions(hash);
        let base = block * WORDS_PER_BLOCK;
        (0..self.probes).all(|i| {
            let bit = ((bits >> (9 * i)) & 511) as usize;
            self.words[base + bit / 64] & (1u64 << (bit % 64)) != 0
        })
    }
}

/// A scalable bloom filter over 64-bit keys (128-bit keys via
/// [`ScalableBloom::hash128`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalableBloom {
    error_rate: f64,
    growth: u32,
    tightening: f64,
    filters: Vec<Filter>,
}

impl ScalableBloom {
    /// An empty filter expecting about `expected` keys, with a compound
    /// false positive rate under `error_rate` (0 < rate < 1).
    pub fn new(expected: u64, error_rate: f64) -> ScalableBloom {
        let error_rate = if error_rate > 0.0 && error_rate < 1.0 {
            error_rate
        } else {
            0.01
        };
        let tightening = 0.5;
        ScalableBloom {
            error_rate,
            growth: 2,
            tightening,
            filters: vec![Filter::new(
                expected.max(MIN_CAPACITY),
                error_rate * (1.0 - tightening),
            )],
        }
    }

    /// An empty filter whose first link holds `initial_capacity` keys (no
    /// lower bound, unlike [`ScalableBloom::new`]) and each further link
    /// `growth` times the last, with a compound false positive rate under
    /// `error_rate`: iscc-usearch's `ScalableBloomFilter(initial_capacity,
    /// fpr, growth_factor)` for whole growth factors.
    pub fn with_growth(
        initial_capacity: u64,
        error_rate: f64,
        growth: u32,
    ) -> Result<ScalableBloom, String> {
        if initial_capacity == 0 {
            return Err("initial_capacity 0: must be at least 1".into());
        }
        if !(error_rate > 0.0 && error_rate < 1.0) {
            return Err(format!("error rate {error_rate}: expected 0 < rate < 1"));
        }
        if growth == 0 {
            return Err("growth 0: must be at least 1".into());
        }
        let tightening = 0.5;
        Ok(ScalableBloom {
            error_rate,
            growth,
            tightening,
            filters: vec![Filter::new(
                initial_capacity,
                error_rate * (1.0 - tightening),
            )],
        })
    }

    /// Forget every key: one empty link of the first link's capacity.
    pub fn clear(&mut self) {
        let first = self.filters.first().map_or(MIN_CAPACITY, |f| f.capacity);
        self.filters = vec![Filter::new(
            first,
            self.error_rate * (1.0 - self.tightening),
        )];
    }

    /// Keys the chain holds before it adds a link (the sum of its links'
    /// capacities).
    pub fn capacity(&self) -> u64 {
        self.filters.iter().map(|f| f.capacity).sum()
    }

    /// Capacity of the first link.
    pub fn initial_capacity(&self) -> u64 {
        self.filters.first().map_or(0, |f| f.capacity)
    }

    /// The compound false positive rate asked for.
    pub fn error_rate(&self) -> f64 {
        self.error_rate
    }

    /// How much larger each link is than the one before.
    pub fn growth(&self) -> u32 {
        self.growth
    }

    /// The hash of a 64-bit key.
    #[inline]
    pub fn hash64(key: u64) -> u64 {
        mix64(key ^ 0x5851_F42D_4C95_7F2D)
    }

    /// The hash of a 128-bit key.
    #[inline]
    pub fn hash128(key: &[u8; 16]) -> u64 {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&key[..8]);
        lo.copy_from_slice(&key[8..]);
        mix64(Self::hash64(u64::from_le_bytes(hi)) ^ u64::from_le_bytes(lo))
    }

    /// The hash of a key given as bytes: a 16-byte key as a 128-bit key
    /// ([`ScalableBloom::hash128`], so a sharded index's keys and their
    /// bytes agree), any other length (0 included) by xxh3 of the bytes.
    pub fn hash_bytes(key: &[u8]) -> u64 {
        match <&[u8; 16]>::try_from(key) {
            Ok(wide) => Self::hash128(wide),
            Err(_) => mix64(xxhash_rust::xxh3::xxh3_64(key) ^ 0x2545_F491_4F6C_DD1D),
        }
    }

    /// Add a key by its hash.
    pub fn insert_hash(&mut self, hash: u64) {
        if self.contains_hash(hash) {
            return;
        }
        let needs_new = self.filters.last().is_none_or(|f| f.count >= f.capacity);
        if needs_new {
            let n = self.filters.len() as i32;
            let capacity = self.filters.last().map_or(MIN_CAPACITY, |f| {
                f.capacity.saturating_mul(u64::from(self.growth))
            });
            let rate = self.error_rate * (1.0 - self.tightening) * self.tightening.powi(n);
            self.filters.push(Filter::new(capacity, rate.max(1e-12)));
        }
        if let Some(f) = self.filters.last_mut() {
            if f.insert(hash) {
                f.count += 1;
            }
        }
    }

    /// Add a 64-bit key.
    pub fn insert(&mut self, key: u64) {
        self.insert_hash(Self::hash64(key));
    }

    /// True when the key may be present; false means certainly absent.
    #[inline]
    pub fn contains_hash(&self, hash: u64) -> bool {
        self.filters.iter().any(|f| f.contains(hash))
    }

    /// True when the 64-bit key may be present.
    #[inline]
    pub fn contains(&self, key: u64) -> bool {
        self.contains_hash(Self::hash64(key))
    }

    /// Keys added (distinct as far as the filter can tell).
    pub fn count(&self) -> u64 {
        self.filters.iter().map(|f| f.count).sum()
    }

    /// Filters in the chain.
    pub fn filters(&self) -> usize {
        self.filters.len()
    }

    /// Bytes of the bit arrays.
    pub fn size_bytes(&self) -> usize {
        self.filters.iter().map(|f| f.words.len() * 8).sum()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.size_bytes());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&BLOOM_FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.filters.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.error_rate.to_le_bytes());
        out.extend_from_slice(&self.growth.to_le_bytes());
        out.extend_from_slice(&self.tightening.to_le_bytes());
        for f in &self.filters {
            out.extend_from_slice(&f.capacity.to_le_bytes());
            out.extend_from_slice(&f.count.to_le_bytes());
            out.extend_from_slice(&f.probes.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(f.blocks() as u64).to_le_bytes());
            for w in &f.words {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        let sum = checksum(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Result<ScalableBloom, String> {
        if bytes.len() < 8 + 8 || &bytes[..8] != MAGIC {
            return Err("missing IVDBBLOM magic".into());
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body).to_le_bytes() != sum {
            return Err("checksum mismatch".into());
        }
        let mut r = Reader {
            bytes: body,
            pos: 8,
        };
        let version = r.u32()?;
        if version != BLOOM_FORMAT_VERSION {
            return Err(format!(
                "format version {version}, expected {BLOOM_FORMAT_VERSION}"
            ));
        }
        let n = r.u32()? as usize;
        let error_rate = f64::from_bits(r.u64()?);
        let growth = r.u32()?;
        let tightening = f64::from_bits(r.u64()?);
        if !(error_rate > 0.0
            && error_rate < 1.0
            && tightening > 0.0
            && tightening < 1.0
            && growth >= 1)
        {
            return Err("parameters out of range".into());
        }
        let mut filters = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let capacity = r.u64()?;
            let count = r.u64()?;
            let probes = r.u32()?;
            r.u32()?;
            let blocks = r.u64()? as usize;
            if !(1..=MAX_PROBES).contains(&probes) || blocks == 0 {
                return Err("filter parameters out of range".into());
            }
            let words_len = blocks
                .checked_mul(WORDS_PER_BLOCK)
                .filter(|w| w.saturating_mul(8) <= r.remaining())
                .ok_or("filter larger than the file")?;
            let words = (0..words_len)
                .map(|_| r.u64())
                .collect::<Result<Vec<u64>, String>>()?;
            filters.push(Filter {
                capacity,
                count,
                probes,
                words,
            });
        }
        if r.remaining() != 0 || filters.is_empty() {
            return Err("unexpected length".into());
        }
        Ok(ScalableBloom {
            error_rate,
            growth,
            tightening,
            filters,
        })
    }

    /// Replace the file at `path` durably, like every index file (see
    /// `index::durable`: a crash or an injected fault leaves the old file
    /// or the new one).
    pub fn save(&self, path: &Path) -> Result<(), BloomError> {
        super::durable::write(path, &self.encode()).map_err(|source| BloomError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Read a saved filter.
    pub fn load(path: &Path) -> Result<ScalableBloom, BloomError> {
        let bytes = fs::read(path).map_err(|source| BloomError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ScalableBloom::decode(&bytes).map_err(|why| BloomError::Corrupt {
            path: path.to_path_buf(),
            why,
        })
    }

    /// Load `path`, or — when it is missing or corrupt — rebuild from
    /// `keys` (hashes) and save the result. Returns the filter and whether
    /// it was rebuilt.
    pub fn load_or_rebuild(
        path: &Path,
        error_rate: f64,
        keys: impl FnOnce() -> Vec<u64>,
    ) -> Result<(ScalableBloom, bool), BloomError> {
        match ScalableBloom::load(path) {
            Ok(bloom) => Ok((bloom, false)),
            Err(BloomError::Corrupt { .. }) => Self::rebuild(path, error_rate, keys()),
            Err(BloomError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Self::rebuild(path, error_rate, keys())
            }
            Err(e) => Err(e),
        }
    }

    fn rebuild(
        path: &Path,
        error_rate: f64,
        hashes: Vec<u64>,
    ) -> Result<(ScalableBloom, bool), BloomError> {
        let mut bloom = ScalableBloom::new(hashes.len() as u64, error_rate);
        for h in hashes {
            bloom.insert_hash(h);
        }
        bloom.save(path)?;
        Ok((bloom, true))
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let slice = self
            .bytes
            .get(self.pos..self.pos + N)
            .ok_or("truncated file")?;
        self.pos += N;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, String> {
        self.take::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, String> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }
}

/// A 64-bit checksum (corruption detection, not authentication).
pub(crate) fn checksum(bytes: &[u8]) -> u64 {
    let mut acc = 0xC2B2_AE3D_27D4_EB4F_u64 ^ bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        acc = mix64(acc ^ u64::from_le_bytes(w)).rotate_left(23);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_first_link_grows_and_clear_starts_over() {
        let mut b = ScalableBloom::with_growth(10, 0.01, 3).unwrap();
        assert_eq!(
            (b.initial_capacity(), b.capacity(), b.growth()),
            (10, 10, 3)
        );
        for k in 0..100u64 {
            b.insert(k);
        }
        // Links of 10, 30, 90: every key found, no link past what it needs.
        assert_eq!((b.filters(), b.capacity()), (3, 130));
        assert!((0..100).all(|k| b.contains(k)));
        b.clear();
        assert_eq!((b.filters(), b.capacity(), b.count()), (1, 10, 0));
        assert!(!b.contains(5));
        assert!(ScalableBloom::with_growth(0, 0.01, 2).is_err());
        assert!(ScalableBloom::with_growth(10, 1.0, 2).is_err());
        assert!(ScalableBloom::with_growth(10, 0.01, 0).is_err());
    }

    #[test]
    fn no_false_negatives_and_bounded_false_positives_while_scaling() {
        let mut bloom = ScalableBloom::new(1000, 0.01);
        for key in 0..200_000u64 {
            bloom.insert(key * 7919);
        }
        assert!(bloom.filters() > 1, "the chain grew");
        for key in 0..200_000u64 {
            assert!(bloom.contains(key * 7919), "false negative for {key}");
        }
        let fp = (0..200_000u64)
            .filter(|k| bloom.contains(k * 7919 + 1))
            .count();
        let rate = fp as f64 / 200_000.0;
        assert!(rate < 0.01, "false positive rate {rate}");
        assert!(bloom.count() >= 199_000);
    }

    #[test]
    fn empty_filter_is_small_and_128_bit_keys_work() {
        let mut bloom = ScalableBloom::new(0, 0.01);
        assert!(bloom.size_bytes() < 4096, "{}", bloom.size_bytes());
        let key = *b"0123456789abcdef";
        assert!(!bloom.contains_hash(ScalableBloom::hash128(&key)));
        bloom.insert_hash(ScalableBloom::hash128(&key));
        assert!(bloom.contains_hash(ScalableBloom::hash128(&key)));
    }

    #[test]
    fn file_roundtrip_and_corruption_is_detected_and_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bloom.isbf");
        let mut bloom = ScalableBloom::new(10, 0.001);
        for k in 0..5000 {
            bloom.insert(k);
        }
        bloom.save(&path).unwrap();
        assert_eq!(ScalableBloom::load(&path).unwrap(), bloom);
        let good = fs::read(&path).unwrap();
        for damage in [
            good[..good.len() / 2].to_vec(),
            {
                let mut b = good.clone();
                b[100] ^= 1;
                b
            },
            {
                let mut b = good.clone();
                b[8] = 9; // version
                b
            },
            b"IVDBBLOM".to_vec(),
            Vec::new(),
        ] {
            fs::write(&path, &damage).unwrap();
            assert!(matches!(
                ScalableBloom::load(&path),
                Err(BloomError::Corrupt { .. })
            ));
            let (rebuilt, was_rebuilt) = ScalableBloom::load_or_rebuild(&path, 0.001, || {
                (0..5000).map(ScalableBloom::hash64).collect()
            })
            .unwrap();
            assert!(was_rebuilt);
            assert!((0..5000).all(|k| rebuilt.contains(k)));
            assert_eq!(ScalableBloom::load(&path).unwrap(), rebuilt);
        }
        fs::remove_file(&path).unwrap();
        let (_, was_rebuilt) = ScalableBloom::load_or_rebuild(&path, 0.01, Vec::new).unwrap();
        assert!(was_rebuilt && path.exists());
    }
}
