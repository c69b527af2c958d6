//! The low-level vector indexes over the C ABI: iscc-usearch's classes for
//! C, C++, Go, Node and Python, without the store or ISCC parsing (keys and
//! raw unit bodies).
//!
//! * [`sharded`]: `ivdb_sharded_*`, the sharded index (`ShardedIndex<K>`):
//!   64- or 128-bit keys, NPHD or Hamming vectors, on disk;
//! * [`unit`]: `ivdb_unit_*`, one unit index (`UnitIndex`) in memory,
//!   saved, loaded, memory-mapped or copied as a whole;
//! * [`bloom`]: `ivdb_bloom_*`, a standalone scalable bloom filter
//!   (`ScalableBloom`), saved and loaded as one file;
//! * [`buffers`]: packed keys and vectors in, `ivdb_hits` / `ivdb_rows` out;
//! * [`options`]: the JSON options of both and `ivdb_search_options`.
//!
//! Conventions are the engine ABI's: a status per call, detail in
//! `ivdb_error`, outputs written only on success, every body inside the
//! panic guard, NULL-safe frees.

pub(crate) mod bloom;
pub(crate) mod buffers;
pub(crate) mod options;
pub(crate) mod sharded;
pub(crate) mod unit;

pub use bloom::*;
pub use buffers::{
    ivdb_buffer, ivdb_buffer_free, ivdb_hits, ivdb_hits_free, ivdb_rows, ivdb_rows_free,
};
pub use options::ivdb_search_options;
pub use sharded::*;
pub use unit::*;
