//! The ISCC-ID generator: unique, strictly increasing, whatever the clock does.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use iscc_vdb::codec::{IdGenerator, IsccId, Realm, MAX_TIMESTAMP_US};

/// A clock that replays a script of µs values (repeating the last).
fn scripted(times: Vec<u64>) -> impl Fn() -> u64 + Send + Sync + 'static {
    let i = AtomicUsize::new(0);
    move || {
        let n = i.fetch_add(1, Ordering::SeqCst);
        times[n.min(times.len() - 1)]
    }
}

#[test]
fn stalled_clock_still_gives_increasing_ids() {
    let g = IdGenerator::with_clock(7, Realm::R1, scripted(vec![1_000_000])).unwrap();
    let ids: Vec<IsccId> = (0..1000).map(|_| g.next_id().unwrap()).collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(id.timestamp_us(), 1_000_000 + i as u64);
        assert_eq!(id.hub_id(), 7);
        assert_eq!(id.realm(), Realm::R1);
    }
    assert!(ids.windows(2).all(|w| w[0].value() < w[1].value()));
}

#[test]
fn clock_stepping_back_never_repeats_and_catches_up() {
    let clock = scripted(vec![5_000, 6_000, 2_000, 2_001, 6_000, 9_000]);
    let g = IdGenerator::with_clock(0, Realm::R0, clock).unwrap();
    let ts: Vec<u64> = (0..6)
        .map(|_| g.next_id().unwrap().timestamp_us())
        .collect();
    assert_eq!(ts, vec![5_000, 6_000, 6_001, 6_002, 6_003, 9_000]);
}

#[test]
fn advance_past_existing_keys() {
    let g = IdGenerator::with_clock(1, Realm::R0, scripted(vec![100])).unwrap();
    let existing = IsccId::from_parts(10_000, 4095, Realm::R0).unwrap();
    g.advance_past(existing.value());
    let next = g.next_id().unwrap();
    assert!(next.value() > existing.value());
    assert_eq!(next.timestamp_us(), 10_001);
}

#[test]
fn exhausted_timestamp_space_is_an_error_not_a_panic() {
    let g = IdGenerator::with_clock(0, Realm::R0, scripted(vec![MAX_TIMESTAMP_US])).unwrap();
    assert_eq!(g.next_id().unwrap().timestamp_us(), MAX_TIMESTAMP_US);
    let err = g.next_id().unwrap_err();
    assert!(err.to_string().contains("52-bit"), "{err}");
    let far = IdGenerator::with_clock(0, Realm::R0, scripted(vec![u64::MAX])).unwrap();
    assert!(far.next_id().is_err());
}

#[test]
fn bad_hub_is_rejected() {
    assert!(IdGenerator::new(4096, Realm::R0).is_err());
    assert!(IdGenerator::new(4095, Realm::R0).is_ok());
}

#[test]
fn system_clock_ids_are_unique_across_threads_and_increasing_per_thread() {
    let generators: Vec<Arc<IdGenerator>> = (0..4u16)
        .map(|hub| Arc::new(IdGenerator::new(hub, Realm::R0).unwrap()))
        .collect();
    let handles: Vec<_> = generators
        .into_iter()
        .map(|g| {
            std::thread::spawn(move || {
                (0..20_000)
                    .map(|_| g.next_id().unwrap().value())
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all = HashSet::new();
    let mut timestamps = HashSet::new();
    for h in handles {
        let ids = h.join().unwrap();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        for id in ids {
            assert!(all.insert(id));
            // One process-wide sequence: no two IDs share a timestamp.
            assert!(timestamps.insert(id >> 12));
        }
    }
    assert_eq!(all.len(), 80_000);
    // IDs are close to the wall clock (within a minute of drift).
    let now = iscc_vdb::codec::now_us();
    let newest = timestamps.iter().max().unwrap();
    assert!(newest.abs_diff(now) < 60_000_000, "{newest} vs {now}");
}
