//! What a unit index holds, published as immutable snapshots.
//!
//! A search clones the current [`State`] (an `Arc`, under a lock held only
//! for the clone) and runs on it holding nothing: its scans may go parallel
//! on rayon's pool without any guard crossing into that work. A writer
//! (one at a time, under [`UnitIndex::writer`]) makes the next state and
//! publishes it in one swap; searches that started before keep the state
//! they cloned.
//!
//! - The flat store is copy-on-write: a write edits it in place while no
//!   search holds the current state (the swap lock held for the edit, which
//!   is short and sequential), otherwise it edits a copy and publishes it.
//!   A copy shares the store's column chunks and key-map parts (see
//!   `flat/words.rs`), so it costs the chunks the edit touches, not the
//!   index's size: an add beside running searches stays cheap.
//! - The graph is shared by consecutive states and changed in place:
//!   usearch serves concurrent `add`, `remove` and `search` calls (one
//!   thread slot each), so only what it cannot serve concurrently —
//!   growing capacity, changing the default expansion — takes
//!   [`GraphCell`]'s lock exclusively, and every holder of that lock runs
//!   one sequential usearch call, never parallel work. Searches with their
//!   own `expansion_search` share the graph through a gate (`gate.rs`). A graph may thus hold a few keys a search's
//!   state does not (added or removed after the state was cloned); graph
//!   hits are checked against the state's flat store.
//! - Building a deferred graph reads a state's rows and runs beside the
//!   searches; the state that has it is published when it is complete.
//!
//! [`UnitIndex::writer`]: super::UnitIndex

use std::sync::{Arc, MutexGuard, RwLock};

use super::gate::Gate;
use super::{IndexError, UnitIndex, UnitIndexOptions};
use crate::index::flat::FlatStore;
use crate::index::graph::Graph;
use crate::index::hnsw::Hnsw;
use crate::sync::{read_lock, write_lock};

/// Rows a write may add to a flat store in place while holding the swap
/// lock (searches wait for that edit to take their snapshot); a larger
/// batch edits a copy beside them (sharing the chunks it does not touch)
/// and is published by the swap.
const IN_PLACE_ROWS: usize = 16_384;

/// One snapshot of a unit index (see the module docs).
#[derive(Clone)]
pub(super) struct State {
    pub(super) graph: Arc<GraphCell>,
    pub(super) flat: Arc<FlatStore>,
    pub(super) options: UnitIndexOptions,
    pub(super) read_only: bool,
    /// No graph yet (see the module docs of `unit`): the graph holds no rows.
    pub(super) deferred: bool,
}

impl State {
    pub(super) fn new(
        graph: Graph,
        flat: FlatStore,
        options: UnitIndexOptions,
        read_only: bool,
        deferred: bool,
    ) -> State {
        State {
            graph: Arc::new(GraphCell::new(graph)),
            flat: Arc::new(flat),
            options,
            read_only,
            deferred,
        }
    }
}

/// The graph of one or more consecutive states (see the module docs).
pub(super) struct GraphCell {
    graph: RwLock<Graph>,
    /// Searches wanting different `expansion_search` values (see `gate.rs`).
    gate: Gate,
}

impl GraphCell {
    pub(super) fn new(graph: Graph) -> GraphCell {
        GraphCell {
            graph: RwLock::new(graph),
            gate: Gate::default(),
        }
    }

    /// Run `f` on the graph (mapped or assembled from `flat`, the flat
    /// store saved with it, on first use), shared with other callers.
    /// `f` must be one sequential usearch call or a few, and no search
    /// (see [`GraphCell::search`]): the lock is held while it runs.
    pub(super) fn with<R>(
        &self,
        flat: &FlatStore,
        f: impl FnOnce(&Hnsw) -> R,
    ) -> Result<R, IndexError> {
        let graph = read_lock(&self.graph);
        Ok(f(graph.get(flat)?))
    }

    /// Run the search `f` on the graph walking with `expansion_search`
    /// `ef`, beside other searches with the same value and adds (see
    /// `gate.rs`). One graph walk long.
    pub(super) fn search<R>(
        &self,
        flat: &FlatStore,
        ef: usize,
        f: impl FnOnce(&Hnsw) -> R,
    ) -> Result<R, IndexError> {
        let graph = read_lock(&self.graph);
        let hnsw = graph.get(flat)?;
        let _pass = self.gate.enter(ef, |ef| {
            // SAFETY: the gate calls this only while no search of this
            // graph runs, and every search goes through the gate.
            unsafe { hnsw.set_walk_expansion(ef) }
        });
        Ok(f(hnsw))
    }

    /// Run `f` on the graph alone (reserving capacity): searches of this
    /// graph wait for it, so `f` must be short and sequential.
    pub(super) fn with_mut<R>(
        &self,
        flat: &FlatStore,
        f: impl FnOnce(&mut Hnsw) -> R,
    ) -> Result<R, IndexError> {
        let mut graph = write_lock(&self.graph);
        let result = f(graph.get_mut(flat)?);
        // `f` may have replaced usearch's value.
        self.gate.forget();
        Ok(result)
    }

    /// `f` of the graph if it is in memory or already mapped.
    pub(super) fn loaded<R>(&self, f: impl FnOnce(Option<&Hnsw>) -> R) -> R {
        f(read_lock(&self.graph).loaded())
    }

    /// Change the default `expansion_search`.
    pub(super) fn set_expansion_search(&self, n: usize) {
        write_lock(&self.graph).set_expansion_search(n);
        self.gate.forget();
    }
}

/// A write in progress: holds the writer lock (writers take turns), so
/// the current state is the one this writer last saw or published.
pub(super) struct Writer<'a> {
    index: &'a UnitIndex,
    _turn: MutexGuard<'a, ()>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(index: &'a UnitIndex) -> Writer<'a> {
        Writer {
            index,
            _turn: crate::sync::lock(&index.writer),
        }
    }

    /// The writer's turn if no writer has it now (never waits).
    pub(super) fn try_new(index: &'a UnitIndex) -> Option<Writer<'a>> {
        let turn = match index.writer.try_lock() {
            Ok(turn) => turn,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return None,
        };
        Some(Writer { index, _turn: turn })
    }

    /// The current state. Drop it before [`Writer::edit`]: a state still
    /// held makes the edit copy the flat store.
    pub(super) fn state(&self) -> Arc<State> {
        self.index.snapshot()
    }

    /// Change the state by `f`: in place when no search holds it and the
    /// change is small (`rows` rows), else on a copy published after.
    /// `f` must be sequential; in place it runs under the swap lock.
    pub(super) fn edit<R>(&mut self, rows: usize, f: impl FnOnce(&mut State) -> R) -> R {
        if rows <= IN_PLACE_ROWS {
            let mut current = write_lock(&self.index.current);
            if let Some(state) = Arc::get_mut(&mut current) {
                return f(state);
            }
        }
        let mut next = State::clone(&self.state());
        let result = f(&mut next);
        self.publish(next);
        result
    }

    /// Publish `next` as the current state.
    pub(super) fn publish(&mut self, next: State) {
        *write_lock(&self.index.current) = Arc::new(next);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{UnitIndex, UnitIndexOptions};
    use std::sync::Arc;

    fn flat_ptr(index: &UnitIndex) -> *const crate::index::flat::FlatStore {
        Arc::as_ptr(&index.snapshot().flat)
    }

    #[test]
    fn an_edit_is_in_place_unless_a_search_holds_the_state() {
        let index = UnitIndex::new(UnitIndexOptions::default()).unwrap();
        index.add_batch(&[1], &[[1u8; 8]]).unwrap();
        let before = flat_ptr(&index);
        index.add_batch(&[2, 3], &[[2u8; 8], [3u8; 8]]).unwrap();
        index.remove(1).unwrap();
        assert_eq!(
            flat_ptr(&index),
            before,
            "no reader: the store is edited in place"
        );
        // A search's snapshot keeps its rows; the write goes to a copy.
        let held = index.snapshot();
        index.add_batch(&[4], &[[4u8; 8]]).unwrap();
        assert_ne!(flat_ptr(&index), before);
        assert_eq!((held.flat.len(), index.len()), (2, 3));
        assert!(!held.flat.contains(4) && index.contains(4));
    }
}
