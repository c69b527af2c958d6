//! Copying an index's entries into another index (`iscc-vdb export` and
//! `import`): between directories and Milvus indexes either way, in key
//! order and in batches, resumable.
//!
//! The target records after every batch it acknowledged how far the copy
//! from this source got (user metadata [`EXPORT_KEY`]: the source's path
//! and the next key), so a copy cut short — a kill, a lost connection —
//! resumes after the last batch written. Writing a batch twice changes
//! nothing (adds replace entries by ISCC-ID; the Milvus backend skips rows
//! whose JSON is unchanged). Entries removed from the source after they
//! were copied stay in the target: a copy adds, it does not mirror.

use serde_json::{json, Value};

use super::{EngineError, IsccIndex};

/// The target's metadata key recording a copy's progress.
pub const EXPORT_KEY: &str = "iscc-vdb.export";

/// Most entries per batch.
pub const MAX_EXPORT_BATCH: usize = 10_000;

/// What [`IsccIndex::export_to`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ExportReport {
    /// Entries copied by this call.
    pub copied: u64,
    /// Entries of the source.
    pub total: u64,
    /// The call resumed an earlier copy from this source (entries below
    /// its next key were not copied again).
    pub resumed: bool,
}

impl IsccIndex {
    /// Copy every entry of this index into `target`, `batch`
    /// at a time in key order, calling `progress(copied, total)` after each
    /// batch; with `restart`, from the first entry even when the target
    /// records an earlier copy from this source (see the module docs).
    pub fn export_to(
        &self,
        target: &IsccIndex,
        batch: usize,
        restart: bool,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportReport, EngineError> {
        if batch == 0 || batch > MAX_EXPORT_BATCH {
            return Err(EngineError::Invalid(format!(
                "batch {batch}: expected 1 to {MAX_EXPORT_BATCH} entries"
            )));
        }
        if self.path() == target.path() {
            return Err(EngineError::Invalid(format!(
                "{}: an index cannot be copied into itself",
                target.path().display()
            )));
        }
        let source = self.path().display().to_string();
        let total = self.size()?;
        let recorded = match target.get_metadata(EXPORT_KEY)? {
            Some(v) if !restart && v["source"] == source.as_str() => v["next"].as_u64(),
            _ => None,
        };
        let mut next = recorded.unwrap_or(0);
        let mut copied = 0u64;
        loop {
            let page = self.entries_page(next, batch)?;
            let Some(&(last, _)) = page.last() else {
                break;
            };
            let entries: Vec<&Value> = page.iter().map(|(_, e)| e).collect();
            target.add(&entries)?;
            next = last.saturating_add(1);
            copied += page.len() as u64;
            target.put_metadata(EXPORT_KEY, &json!({"source": source, "next": next}))?;
            progress(copied, total);
            if last == u64::MAX {
                break;
            }
        }
        Ok(ExportReport {
            copied,
            total,
            resumed: recorded.is_some(),
        })
    }
}
