//! Test and benchmark support (feature `testing`, off by default): not part
//! of the library a user embeds.
//!
//! * [`fault`]: injected write failures for crash tests.
//! * [`dataset`]: the bit-exact benchmark dataset of `bench-dataset.md`.
//! * [`client`]: a small blocking HTTP/1.1 client for the server's tests and
//!   the load benchmark.
//! * [`write_jsonl`]: values as JSON Lines (test inputs, bench exports).
//!
//! The crate's own tests enable the feature through a dev-dependency on
//! itself, so `cargo test` needs no flag.

pub mod client;
pub mod dataset;

/// The LMDB primary store, for tests that damage or inspect an index's
/// truth directly (it is the engine's internal, not a public API).
pub mod store {
    pub use crate::store::{MetaKey, Store, StoreError, StoreOptions, StoreRead, StoreTxn};
}

/// Injected write failures: the next durable write of a matching path stops
/// half-way, as a crash would leave it.
pub mod fault {
    pub use crate::fault::{fail_next_write, fail_next_write_with};
}

/// Write `values` as JSON Lines (one compact JSON value a line) to `path`.
pub fn write_jsonl<T: serde::Serialize>(path: &std::path::Path, values: &[T]) {
    use std::io::Write;
    let file = std::fs::File::create(path).expect("create JSON Lines file");
    let mut out = std::io::BufWriter::new(file);
    for v in values {
        serde_json::to_writer(&mut out, v).expect("write JSON Lines");
        out.write_all(b"\n").expect("write JSON Lines");
    }
    out.flush().expect("write JSON Lines");
}
