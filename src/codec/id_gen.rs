//! Generation of ISCC-ID v1 keys for entries added without one.
//!
//! An ID is (µs timestamp << 12) | hub id. Two IDs from one process never
//! share a timestamp: each takes `max(clock, previous + 1 µs)`, so IDs stay
//! unique and strictly increasing when the clock stalls (many IDs within one
//! µs) or steps back (NTP corrections), and catch up with the clock once it
//! passes them again. The state is process-wide, so every generator of the
//! process (whatever its hub) draws from one increasing sequence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::CodecError;
use super::iscc_id::{IsccId, Realm, MAX_HUB_ID, MAX_TIMESTAMP_US};

/// The last timestamp handed out by any system-clock generator of this process.
static PROCESS_LAST_US: AtomicU64 = AtomicU64::new(0);

type ClockFn = dyn Fn() -> u64 + Send + Sync;

enum State {
    Process,
    Own(Arc<AtomicU64>),
}

/// Makes unique, strictly increasing ISCC-ID v1 keys.
pub struct IdGenerator {
    hub_id: u16,
    realm: Realm,
    clock: Option<Box<ClockFn>>,
    state: State,
}

impl std::fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdGenerator")
            .field("hub_id", &self.hub_id)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

fn check_hub(hub_id: u16) -> Result<(), CodecError> {
    if hub_id > MAX_HUB_ID {
        return Err(CodecError::OutOfRange(format!(
            "hub id {hub_id} does not fit the 12 bits of an ISCC-ID (0-4095)"
        )));
    }
    Ok(())
}

/// Microseconds since the Unix epoch from the system clock (0 before 1970).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl IdGenerator {
    /// A generator on the system clock, sharing the process-wide sequence.
    pub fn new(hub_id: u16, realm: Realm) -> Result<IdGenerator, CodecError> {
        check_hub(hub_id)?;
        Ok(IdGenerator {
            hub_id,
            realm,
            clock: None,
            state: State::Process,
        })
    }

    /// A generator on a given clock (µs since the epoch) with a sequence of
    /// its own: for tests and for replaying a known time source.
    pub fn with_clock(
        hub_id: u16,
        realm: Realm,
        clock: impl Fn() -> u64 + Send + Sync + 'static,
    ) -> Result<IdGenerator, CodecError> {
        check_hub(hub_id)?;
        Ok(IdGenerator {
            hub_id,
            realm,
            clock: Some(Box::new(clock)),
            state: State::Own(Arc::new(AtomicU64::new(0))),
        })
    }

    /// The hub id stamped into every ID.
    pub fn hub_id(&self) -> u16 {
        self.hub_id
    }

    /// The realm of every ID.
    pub fn realm(&self) -> Realm {
        self.realm
    }

    fn last(&self) -> &AtomicU64 {
        match &self.state {
            State::Process => &PROCESS_LAST_US,
            State::Own(a) => a,
        }
    }

    /// Ensure every later ID is greater than `key` (e.g. the largest key
    /// already in an index, in case the clock is behind it after a restart).
    pub fn advance_past(&self, key: u64) {
        self.last().fetch_max(key >> 12, Ordering::AcqRel);
    }

    /// The next ID: greater than every ID this generator's sequence made.
    pub fn next_id(&self) -> Result<IsccId, CodecError> {
        let now = self.clock.as_ref().map_or_else(now_us, |c| c());
        let last = self.last();
        let mut previous = last.load(Ordering::Acquire);
        loop {
            let ts = now.max(previous.saturating_add(1));
            if ts > MAX_TIMESTAMP_US {
                return Err(CodecError::OutOfRange(format!(
                    "no ISCC-ID timestamp left after {previous} µs (52-bit limit)"
                )));
            }
            match last.compare_exchange_weak(previous, ts, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return IsccId::from_parts(ts, self.hub_id, self.realm),
                Err(actual) => previous = actual,
            }
        }
    }
}
