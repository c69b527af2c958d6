//! # iscc-vdb
//!
//! A nearest-neighbour search engine for ISCC codes (ISO 24138), with a C ABI.
//!
//! Layers (each knows only those listed before it):
//! * [`codec`]: ISCC parsing, validation, unit types, decompose/compose,
//!   ISCC-ID v1 keys and their generation.
//! * [`metric`]: NPHD, its scalar reference and SIMD exact-scan kernels.
//! * [`index`]: the unit index (usearch HNSW + flat store under NPHD).
//! * `store`: the LMDB primary store (the source of truth; inside the
//!   engine, not a public API).
//! * [`engine`]: the ISCC index composing store and unit indexes.
//! * [`kind`]: the stable error categories every layer and face shares.
//! * [`ffi`]: the `extern "C"` surface (`ivdb_*`).
//! * `cli` (feature `cli`): the `iscc-vdb` command-line tool.
//! * `server` (feature `server`): the REST server (`iscc-vdb serve`).
//! * `testing` (feature `testing`, not default): test and bench support.

#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod codec;
mod combine;
pub mod engine;
mod fault;
pub mod ffi;
pub mod index;
pub mod kind;
mod lockfile;
pub mod metric;
#[cfg(feature = "server")]
pub mod server;
mod store;
mod sync;
#[cfg(feature = "testing")]
pub mod testing;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
