//! Deferred graphs built in the background, so that no write waits for a
//! build: when an add makes the cost model want a graph (see `paths.rs`),
//! the writer copies the rows and hands them to a thread of their own,
//! which builds a private HNSW graph from them while writes and searches
//! (exact scans, as while deferred) go on. A later writer's turn — the next
//! write, a save, or a search that finds the writer idle — adopts the
//! finished graph: rows added, replaced or removed since the copy are
//! brought into it, then it is published with the state in one swap.
//! `wait_graph` (and an explicit approximate search, or a threshold change
//! that wants a graph) waits for a build in progress instead.
//!
//! The thread holds no part of the index: only the copied rows, the graph
//! parameters and a cancel flag, set when the index is dropped or reset.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::state::{GraphCell, Writer};
use super::{IndexError, UnitIndex};
use crate::index::graph::Graph;
use crate::index::hnsw::Hnsw;
use crate::metric::Row;
use crate::sync::lock;

/// The rows a build started from, and the graph it made of them.
type Built = (Vec<(u64, Row)>, Hnsw);

/// A graph build in progress (see the module docs).
pub(super) struct Build {
    handle: JoinHandle<Result<Built, IndexError>>,
    /// Raised when nobody will adopt the build: it stops at its next
    /// chunk of rows.
    cancel: Arc<AtomicBool>,
}

/// Rows inserted between checks of the cancel flag.
const CANCEL_EVERY: usize = 1024;

/// Run `add` over `rows` on up to `threads` threads (scoped), each taking
/// a contiguous part; the first error is returned (a panicked thread is
/// one). Shared by a build and by adds to a live graph.
pub(super) fn on_threads(
    rows: &[(u64, Row)],
    threads: usize,
    add: impl Fn(&[(u64, Row)]) -> Result<(), IndexError> + Sync,
) -> Result<(), IndexError> {
    if rows.is_empty() {
        return Ok(());
    }
    let chunk = rows.len().div_ceil(threads.max(1)).max(64);
    let add = &add;
    std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .map(|part| scope.spawn(move || add(part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(IndexError::Native(
                        "a graph insertion thread panicked".into(),
                    ))
                })
            })
            .fold(Ok(()), Result::and)
    })
}

/// Build a graph of `rows` on up to `Hnsw::THREAD_SLOTS` threads (the
/// graph is private: no slot is shared with a search).
fn build(
    rows: Vec<(u64, Row)>,
    params: crate::index::hnsw::GraphParams,
    cancel: &AtomicBool,
) -> Result<Built, IndexError> {
    let mut hnsw = Hnsw::new(params).map_err(IndexError::Native)?;
    hnsw.ensure_capacity(rows.len())
        .map_err(IndexError::Native)?;
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, Hnsw::THREAD_SLOTS);
    on_threads(&rows, threads, |part| {
        for block in part.chunks(CANCEL_EVERY) {
            if cancel.load(Ordering::Relaxed) {
                return Err(IndexError::Native("graph build cancelled".into()));
            }
            for (key, row) in block {
                hnsw.add(*key, &row.0).map_err(IndexError::Native)?;
            }
        }
        Ok(())
    })?;
    Ok((rows, hnsw))
}

impl UnitIndex {
    /// Start building the deferred graph in the background from the
    /// current rows, unless a build is in progress.
    pub(super) fn start_build(&self, writer: &Writer<'_>) -> Result<(), IndexError> {
        let mut pending = lock(&self.build);
        let state = writer.state();
        if pending.is_some() || !state.deferred {
            return Ok(());
        }
        let rows = state.flat.all_rows();
        let params = state.options.graph();
        drop(state);
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&cancel);
        let handle = std::thread::Builder::new()
            .name("ivdb-graph-build".into())
            .spawn(move || build(rows, params, &flag))
            .map_err(|e| IndexError::Native(format!("cannot start a graph build: {e}")))?;
        *pending = Some(Build { handle, cancel });
        Ok(())
    }

    /// Build the deferred graph now: start a build (unless one is in
    /// progress) and wait for it, searches scanning meanwhile.
    pub(super) fn build_graph(&self, writer: &mut Writer<'_>) -> Result<(), IndexError> {
        self.start_build(writer)?;
        self.adopt_build(writer, true)
    }

    /// Whether a build is in progress or waits to be adopted.
    pub(super) fn build_pending(&self) -> bool {
        lock(&self.build).is_some()
    }

    /// Whether a build has finished and waits to be adopted.
    pub(super) fn build_finished(&self) -> bool {
        lock(&self.build)
            .as_ref()
            .is_some_and(|b| b.handle.is_finished())
    }

    /// Forget a build in progress (its thread stops soon).
    pub(super) fn cancel_build(&self) {
        if let Some(b) = lock(&self.build).take() {
            b.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// In the writer's turn: adopt a finished build (with `wait`, wait for
    /// one in progress). Rows changed since the build copied them are
    /// brought into the graph, then the state publishes it. A failed build
    /// leaves the graph deferred (the next add that wants one starts
    /// another) and returns its error.
    pub(super) fn adopt_build(
        &self,
        writer: &mut Writer<'_>,
        wait: bool,
    ) -> Result<(), IndexError> {
        let build = {
            let mut pending = lock(&self.build);
            match pending.as_ref() {
                Some(b) if wait || b.handle.is_finished() => pending.take(),
                _ => None,
            }
        };
        let Some(build) = build else {
            return Ok(());
        };
        let (basis, hnsw) = build
            .handle
            .join()
            .unwrap_or_else(|_| Err(IndexError::Native("the graph build panicked".into())))?;
        let state = writer.state();
        if !state.deferred {
            return Ok(());
        }
        let before: HashMap<u64, Row> = basis.into_iter().collect();
        let mut fresh = Vec::new();
        let mut gone = Vec::new();
        for (key, row) in state.flat.all_rows() {
            match before.get(&key) {
                Some(old) if *old == row => {}
                Some(_) => {
                    gone.push(key);
                    fresh.push((key, row));
                }
                None => fresh.push((key, row)),
            }
        }
        gone.extend(before.keys().filter(|k| !state.flat.contains(**k)));
        let graph = Arc::new(GraphCell::new(Graph::Ready(hnsw)));
        for key in gone {
            graph
                .with(&state.flat, |g| g.remove(key))?
                .map_err(IndexError::Native)?;
        }
        self.graph_insert(&graph, &state.flat, &fresh)?;
        drop(state);
        writer.edit(0, |state| {
            state.graph = graph;
            state.deferred = false;
        });
        Ok(())
    }

    /// Wait for a graph build in progress, if any, and publish its graph
    /// (see the module docs). Searches and writes need not call this; it
    /// serves callers that want the graph now (tests, benchmarks).
    pub fn wait_graph(&self) -> Result<(), IndexError> {
        let mut writer = Writer::new(self);
        self.adopt_build(&mut writer, true)
    }

    /// Adopt a finished build if the writer's turn is free now (a search
    /// calls this: it never waits for a writer).
    /// A finished partition likewise (see `retrain.rs`).
    /// A partition that came due while nothing was written is started.
    pub(super) fn adopt_if_idle(&self) {
        let partition_due = || self.retrain_due(&self.snapshot()) && !self.partition_pending();
        if !(self.build_finished() || self.partition_finished() || partition_due()) {
            return;
        }
        if let Some(mut writer) = Writer::try_new(self) {
            // A failed build is reported to the next writer instead.
            let _ = self.adopt_build(&mut writer, false);
            let _ = self.retrain_turn(&mut writer);
        }
    }
}
