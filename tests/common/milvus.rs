//! The Milvus server the Milvus tests run against, and fresh index names
//! on it (see `milvus_backend.rs`).
#![cfg(feature = "milvus")]

use std::time::{SystemTime, UNIX_EPOCH};

use iscc_vdb::engine::IsccIndex;

/// The server's base URI (`IVDB_MILVUS_URI`), or `None`: the test then
/// says it did not run and returns.
pub fn server(test: &str) -> Option<String> {
    match std::env::var("IVDB_MILVUS_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri.trim_end_matches('/').to_string()),
        _ => {
            eprintln!("{test}: not run (set IVDB_MILVUS_URI=milvus://HOST:PORT)");
            None
        }
    }
}

/// A fresh index name on the server, dropped when the guard goes.
pub struct Remote {
    pub uri: String,
}

impl Remote {
    /// `{base}/{prefix}_{test}_{pid}_{nanos}`, dropped first if present.
    pub fn new(base: &str, prefix: &str, test: &str) -> Remote {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let uri = format!("{base}/{prefix}_{test}_{}_{nanos}", std::process::id());
        IsccIndex::drop_remote(&uri).unwrap();
        Remote { uri }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Err(e) = IsccIndex::drop_remote(&self.uri) {
            eprintln!("could not drop {}: {e}", self.uri);
        }
    }
}
