//! Test and benchmark support (feature `testing`, off by default): not part
//! of the library a user embeds.
//!
//! * [`fault`]: injected write failures for crash tests.
//! * [`dataset`]: the bit-exact benchmark dataset of `bench-dataset.md`.
//! * [`client`]: a small blocking HTTP/1.1 client for the server's tests and
//!   the load benchmark.
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
