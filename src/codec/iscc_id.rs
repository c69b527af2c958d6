//! ISCC-ID v1: the 64-bit key of every index entry.
//!
//! Header `0110 000r 0001 0000` (MainType ID, SubType = realm 0 or 1,
//! Version 1, Length 0), body = big-endian u64 = (µs since the Unix epoch
//! << 12) | hub id (12 bits). The u64 orders IDs by time, then hub.
//! Legacy ISCC-ID v0 (blockchain-declared, optionally 72+ bits with a
//! counter) parse as ISCCs but are rejected as keys.

use std::fmt;
use std::str::FromStr;

use super::component::{Iscc, Kind};
use super::error::CodecError;
use super::header::{Header, MainType};
use super::text;

/// Largest timestamp (µs) that fits the 52 timestamp bits.
pub const MAX_TIMESTAMP_US: u64 = (1 << 52) - 1;
/// Largest hub id (12 bits).
pub const MAX_HUB_ID: u16 = (1 << 12) - 1;

/// The realm of an ISCC-ID v1 (its SubType): 0 or 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Realm {
    /// Realm 0 (`ISCC:MAI…`).
    R0 = 0,
    /// Realm 1 (`ISCC:MEI…`).
    R1 = 1,
}

impl Realm {
    /// The realm with this number (0 or 1).
    pub fn new(realm: u8) -> Result<Realm, CodecError> {
        match realm {
            0 => Ok(Realm::R0),
            1 => Ok(Realm::R1),
            _ => Err(CodecError::OutOfRange(format!(
                "realm {realm} is not defined: an ISCC-ID realm is 0 or 1"
            ))),
        }
    }

    /// The realm number.
    pub fn id(self) -> u8 {
        self as u8
    }
}

/// An ISCC-ID v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IsccId {
    realm: Realm,
    value: u64,
}

impl IsccId {
    /// The ID with this 64-bit key in this realm.
    pub fn from_u64(value: u64, realm: Realm) -> IsccId {
        IsccId { realm, value }
    }

    /// The ID for a timestamp (µs since the Unix epoch, < 2^52) and hub id
    /// (< 4096).
    pub fn from_parts(timestamp_us: u64, hub_id: u16, realm: Realm) -> Result<IsccId, CodecError> {
        if timestamp_us > MAX_TIMESTAMP_US {
            return Err(CodecError::OutOfRange(format!(
                "timestamp {timestamp_us} µs does not fit the 52 bits of an ISCC-ID"
            )));
        }
        if hub_id > MAX_HUB_ID {
            return Err(CodecError::OutOfRange(format!(
                "hub id {hub_id} does not fit the 12 bits of an ISCC-ID (0-4095)"
            )));
        }
        Ok(IsccId::from_u64(
            (timestamp_us << 12) | u64::from(hub_id),
            realm,
        ))
    }

    /// Parse an ISCC-ID v1 string (`ISCC:MAI…`/`ISCC:MEI…`, same lenient
    /// spelling as any ISCC). Legacy v0 IDs and anything that is not an
    /// ISCC-ID are rejected with an error saying what was found.
    pub fn parse(input: &str) -> Result<IsccId, CodecError> {
        let iscc = Iscc::parse(input)?;
        if iscc.kind() != Kind::Id {
            return Err(CodecError::id(
                input,
                format!(
                    "this is an ISCC {} ({}), not an ISCC-ID",
                    iscc.kind().as_str(),
                    iscc.first().unit_type()
                ),
            ));
        }
        let c = iscc.first();
        let h = c.header();
        if h.version != 1 {
            return Err(CodecError::id(
                input,
                format!(
                    "legacy ISCC-ID v{} ({}) cannot be used as a key; use an ISCC-ID v1",
                    h.version,
                    c.unit_type()
                ),
            ));
        }
        // Header validation ensures a v1 body of exactly 8 bytes.
        let mut be = [0u8; 8];
        be.copy_from_slice(c.body());
        Ok(IsccId {
            realm: Realm::new(h.sub_type)?,
            value: u64::from_be_bytes(be),
        })
    }

    /// The 64-bit key.
    pub fn value(self) -> u64 {
        self.value
    }

    /// The realm.
    pub fn realm(self) -> Realm {
        self.realm
    }

    /// Microseconds since the Unix epoch.
    pub fn timestamp_us(self) -> u64 {
        self.value >> 12
    }

    /// The hub id (12 bits).
    pub fn hub_id(self) -> u16 {
        (self.value & 0xFFF) as u16
    }

    /// The timestamp as ISO 8601 UTC with microseconds, e.g.
    /// `2025-03-01T00:00:00.000000Z`.
    pub fn iso_time(self) -> String {
        iso_time_us(self.timestamp_us())
    }

    /// The header of the canonical encoding.
    pub fn header(self) -> Header {
        Header {
            main_type: MainType::Id,
            sub_type: self.realm.id(),
            version: 1,
            length: 0,
        }
    }
}

impl fmt::Display for IsccId {
    /// Canonical form, e.g. `ISCC:MAIGGGMBUD3TAUAR`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x60 | self.realm.id();
        bytes[1] = 0x10;
        bytes[2..].copy_from_slice(&self.value.to_be_bytes());
        f.write_str(&text::encode(&bytes))
    }
}

impl FromStr for IsccId {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<IsccId, CodecError> {
        IsccId::parse(s)
    }
}

/// Format µs since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC,
/// proleptic Gregorian).
pub fn iso_time_us(us: u64) -> String {
    let secs = us / 1_000_000;
    let micros = us % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_time_edges() {
        assert_eq!(iso_time_us(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(iso_time_us(MAX_TIMESTAMP_US), "2112-09-17T23:53:47.370495Z");
        // 2000-02-29 (leap day of a century leap year) and 2100-03-01.
        assert_eq!(
            iso_time_us(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
        assert_eq!(
            iso_time_us(4_107_542_400_000_001),
            "2100-03-01T00:00:00.000001Z"
        );
    }

    #[test]
    fn parts_roundtrip() {
        let id = IsccId::from_parts(1_740_787_200_000_000, 1, Realm::R1).unwrap();
        assert_eq!(id.to_string(), "ISCC:MEIGF46JVL4AAAAB");
        assert_eq!(IsccId::parse(&id.to_string()).unwrap(), id);
        assert!(IsccId::from_parts(MAX_TIMESTAMP_US + 1, 0, Realm::R0).is_err());
        assert!(IsccId::from_parts(0, 4096, Realm::R0).is_err());
        assert!(Realm::new(2).is_err());
    }
}
