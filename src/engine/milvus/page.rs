//! Entries in key order on the Milvus backend (what `export` and `import`
//! read): Milvus returns the rows of a query in no promised order, so a
//! page is found by counting.
//!
//! Keys are the ISCC-IDs' u64 values stored as INT64 (the same 64 bits):
//! u64 order is INT64 order over `[0, i64::MAX]` followed by `[i64::MIN,
//! -1]`. Within such a range, the `want` smallest keys at or above `lo` are
//! those at or below the smallest bound `t` with `count(lo..=t) ≥ want`; a
//! query of up to `want` keys from the range gives a bound (its largest
//! key) at once, and when Milvus returned other than the smallest ones and
//! the range below that bound holds more than a query window, the bound is
//! bisected by counting.

use serde_json::Value;

use super::super::EngineError;
use super::MilvusIndex;

/// Most keys one query may return (Milvus's `limit` + `offset` window).
const WINDOW: usize = 16_384;

/// The INT64 ranges, in u64 order, of the keys at or above `from`.
fn ranges(from: u64) -> Vec<(i64, i64)> {
    // The same 64 bits: keys ≥ 2^63 are negative as INT64.
    let lo = from as i64;
    if lo >= 0 {
        vec![(lo, i64::MAX), (i64::MIN, -1)]
    } else {
        vec![(lo, -1)]
    }
}

/// The filter of keys in `lo..=hi`; an open end is left out (Milvus's
/// parser reads `-9223372036854775808` as the negation of a number too
/// large for INT64).
fn between(lo: i64, hi: i64) -> String {
    match (lo == i64::MIN, hi == i64::MAX) {
        (true, true) => "id >= 0 || id < 0".to_string(),
        (true, false) => format!("id <= {hi}"),
        (false, true) => format!("id >= {lo}"),
        (false, false) => format!("id >= {lo} && id <= {hi}"),
    }
}

impl MilvusIndex {
    /// Up to `limit` entries with keys at or above `from`, in key order
    /// (the local engine's `entries_page`).
    pub(crate) fn entries_page(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(u64, Value)>, EngineError> {
        self.check_open()?;
        let entries = self.entries_name();
        if limit == 0 || !self.conn.exists(&entries)? {
            return Ok(Vec::new());
        }
        let mut keys: Vec<u64> = Vec::with_capacity(limit);
        for (mut lo, hi) in ranges(from) {
            while keys.len() < limit {
                let n = (limit - keys.len()).min(WINDOW);
                let got = self.first_keys(&entries, lo, hi, n)?;
                let (short, last) = (got.len() < n, got.last().copied());
                keys.extend(got.into_iter().map(|k| k as u64));
                match last {
                    Some(l) if !short && l < hi => lo = l + 1,
                    _ => break,
                }
            }
        }
        let stored = self.stored(&keys)?;
        keys.into_iter()
            .filter_map(|k| stored.get(&k).map(|json| (k, json)))
            .map(|(k, json)| {
                serde_json::from_str(json)
                    .map(|v| (k, v))
                    .map_err(|e| EngineError::Json(format!("stored entry of key {k}: {e}")))
            })
            .collect()
    }

    /// The `want` (at most [`WINDOW`]) smallest keys in `lo..=hi` of the
    /// collection `entries`, ascending (fewer when the range holds fewer).
    fn first_keys(
        &self,
        entries: &str,
        lo: i64,
        hi: i64,
        want: usize,
    ) -> Result<Vec<i64>, EngineError> {
        let mut sample = self.conn.query_keys(entries, &between(lo, hi), want)?;
        sample.sort_unstable();
        let Some(&top) = sample.last() else {
            return Ok(sample);
        };
        if sample.len() < want {
            // The range holds fewer than asked for: all of them.
            return Ok(sample);
        }
        // count(lo..=top) ≥ want. Shrink `top` while the range below holds
        // more than a window, keeping count(lo..=top) ≥ want.
        let (mut top, mut below) = (top, lo);
        let mut count = self.conn.count_where(entries, &between(lo, top))?;
        // 64 halvings reach a single key; more means the rows changed
        // while being counted.
        let mut rounds = 0;
        while count > WINDOW as u64 {
            rounds += 1;
            if rounds > 64 {
                return Err(EngineError::Remote {
                    server: self.conn.server.clone(),
                    message: format!(
                        "{entries}: the keys from {lo} changed while a page was counted; try again"
                    ),
                    kind: super::super::ErrorKind::Io,
                });
            }
            let mid = below + ((top as i128 - below as i128) / 2) as i64;
            let c = self.conn.count_where(entries, &between(lo, mid))?;
            if c >= want as u64 {
                (top, count) = (mid, c);
            } else {
                below = mid + 1;
            }
        }
        if count as usize == sample.len() {
            // Milvus returned the smallest keys: the usual case.
            return Ok(sample);
        }
        let mut all = self
            .conn
            .query_keys(entries, &between(lo, top), count as usize)?;
        all.sort_unstable();
        all.truncate(want);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::{between, ranges};

    #[test]
    fn key_ranges_follow_u64_order() {
        assert_eq!(ranges(0), vec![(0, i64::MAX), (i64::MIN, -1)]);
        assert_eq!(ranges(5), vec![(5, i64::MAX), (i64::MIN, -1)]);
        assert_eq!(ranges(1 << 63), vec![(i64::MIN, -1)]);
        assert_eq!(ranges(u64::MAX), vec![(-1, -1)]);
        assert_eq!(between(i64::MIN, -1), "id <= -1");
        assert_eq!(between(7, i64::MAX), "id >= 7");
        assert_eq!(between(-5, -1), "id >= -5 && id <= -1");
    }
}
