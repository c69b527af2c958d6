//! The ISCC header: four varnibbles (MainType, SubType, Version, Length).
//!
//! A varnibble is a prefix-coded integer of one to four nibbles:
//!
//! | bits                    | values     |
//! |-------------------------|------------|
//! | `0xxx`                  | 0–7        |
//! | `10xx xxxx`             | 8–71       |
//! | `110x xxxx xxxx`        | 72–583     |
//! | `1110 xxxx xxxx xxxx`   | 584–4679   |
//!
//! The four values are packed most significant nibble first; an odd nibble
//! count is padded with a zero nibble so the header fills whole bytes. Each
//! value range starts where the previous one ends, so every value has exactly
//! one encoding and a header decodes to exactly one byte string.

use super::error::Reason;

/// The ISCC MainType (first header field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MainType {
    Meta = 0,
    Semantic = 1,
    Content = 2,
    Data = 3,
    Instance = 4,
    /// A composite ISCC-CODE.
    Iscc = 5,
    /// An ISCC-ID.
    Id = 6,
    Flake = 7,
}

impl MainType {
    /// Every MainType, in code order.
    pub const ALL: [MainType; 8] = [
        MainType::Meta,
        MainType::Semantic,
        MainType::Content,
        MainType::Data,
        MainType::Instance,
        MainType::Iscc,
        MainType::Id,
        MainType::Flake,
    ];

    /// The MainType with this code, if defined.
    pub fn from_code(code: u32) -> Option<MainType> {
        MainType::ALL.get(usize::try_from(code).ok()?).copied()
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The upper-case name used by iscc-core (`META`, `CONTENT`, `ISCC`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MainType::Meta => "META",
            MainType::Semantic => "SEMANTIC",
            MainType::Content => "CONTENT",
            MainType::Data => "DATA",
            MainType::Instance => "INSTANCE",
            MainType::Iscc => "ISCC",
            MainType::Id => "ID",
            MainType::Flake => "FLAKE",
        }
    }

    /// Parse an upper- or lower-case name.
    pub fn from_name(name: &str) -> Option<MainType> {
        MainType::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// SubType names by context: the same number means different things under
/// different MainTypes (and, for ISCC-IDs, different Versions).
const ST_NONE: &[&str] = &["NONE"];
const ST_CONTENT: &[&str] = &["TEXT", "IMAGE", "AUDIO", "VIDEO", "MIXED"];
const ST_ISCC: &[&str] = &[
    "TEXT", "IMAGE", "AUDIO", "VIDEO", "MIXED", "SUM", "NONE", "WIDE",
];
const ST_ID_V0: &[&str] = &["PRIVATE", "BITCOIN", "ETHEREUM", "POLYGON"];
const ST_ID_V1: &[&str] = &["REALM_0", "REALM_1"];

/// ISCC-CODE SubTypes with a fixed meaning.
pub(crate) const ST_ISCC_SUM: u8 = 5;
pub(crate) const ST_ISCC_NONE: u8 = 6;
pub(crate) const ST_ISCC_WIDE: u8 = 7;

/// The SubType names valid for a MainType and Version, or `None` when the
/// Version is not defined for the MainType.
pub(crate) fn subtype_names(main_type: MainType, version: u8) -> Option<&'static [&'static str]> {
    match (main_type, version) {
        (MainType::Meta | MainType::Data | MainType::Instance | MainType::Flake, 0) => {
            Some(ST_NONE)
        }
        (MainType::Semantic | MainType::Content, 0) => Some(ST_CONTENT),
        (MainType::Iscc, 0) => Some(ST_ISCC),
        (MainType::Id, 0) => Some(ST_ID_V0),
        (MainType::Id, 1) => Some(ST_ID_V1),
        _ => None,
    }
}

/// The name of a SubType in its context, if defined.
pub fn subtype_name(main_type: MainType, sub_type: u8, version: u8) -> Option<&'static str> {
    subtype_names(main_type, version)?
        .get(usize::from(sub_type))
        .copied()
}

/// A decoded and validated ISCC header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// MainType.
    pub main_type: MainType,
    /// SubType (meaning depends on MainType and Version).
    pub sub_type: u8,
    /// Version.
    pub version: u8,
    /// The raw Length field (not the bit length: see [`Header::bit_length`]).
    pub length: u32,
}

/// Largest value a varnibble can hold.
pub const MAX_VARNIBBLE: u32 = 4679;

impl Header {
    /// Decode and validate a header at the start of `data`.
    ///
    /// Returns the header and the number of header bytes. MainType, SubType
    /// and Version must be defined; the Length field must be valid for the
    /// type (see [`Header::bit_length`]).
    pub fn decode(data: &[u8]) -> Result<(Header, usize), Reason> {
        let mut reader = NibbleReader { data, pos: 0 };
        let mt = reader.varnibble()?;
        let st = reader.varnibble()?;
        let vs = reader.varnibble()?;
        let ln = reader.varnibble()?;
        if reader.pos % 2 == 1 {
            let pad = reader.nibble()?;
            if pad != 0 {
                return Err(Reason::HeaderPadding(pad));
            }
        }
        let main_type = MainType::from_code(mt).ok_or(Reason::MainType(mt))?;
        let version = u8::try_from(vs).map_err(|_| Reason::Version {
            maintype: main_type.name(),
            version: vs,
        })?;
        let names = subtype_names(main_type, version).ok_or(Reason::Version {
            maintype: main_type.name(),
            version: vs,
        })?;
        let sub_type = u8::try_from(st)
            .ok()
            .filter(|s| usize::from(*s) < names.len())
            .ok_or(Reason::SubType {
                maintype: main_type.name(),
                subtype: st,
            })?;
        let header = Header {
            main_type,
            sub_type,
            version,
            length: ln,
        };
        header.bit_length()?;
        Ok((header, reader.pos / 2))
    }

    /// Encode the header (validity is the caller's business; see
    /// [`Header::decode`]). Fields above [`MAX_VARNIBBLE`] are an error.
    pub fn encode(&self) -> Result<Vec<u8>, Reason> {
        let mut nibbles = Vec::with_capacity(16);
        for value in [
            u32::from(self.main_type.code()),
            u32::from(self.sub_type),
            u32::from(self.version),
            self.length,
        ] {
            push_varnibble(&mut nibbles, value)?;
        }
        if nibbles.len() % 2 == 1 {
            nibbles.push(0);
        }
        Ok(nibbles.chunks(2).map(|p| (p[0] << 4) | p[1]).collect())
    }

    /// The body length in bits that this header declares.
    ///
    /// * META, SEMANTIC, CONTENT, DATA, INSTANCE, FLAKE: `(length + 1) · 32`.
    /// * ISCC-CODE: 128 (DATA + INSTANCE) + 64 per optional unit flagged in the
    ///   three Length bits (bit 0 CONTENT, bit 1 SEMANTIC, bit 2 META); WIDE is
    ///   always 256. The flags must match the SubType: SUM and WIDE carry no
    ///   optional unit, NONE carries exactly META, and a content SubType needs a
    ///   SEMANTIC or CONTENT unit — the only combinations the reference composer
    ///   emits, so every accepted code round-trips through decompose/compose.
    /// * ISCC-ID v1: 64 (Length must be 0). ISCC-ID v0: `64 + 8 · length` (a
    ///   uniqueness counter may follow the 64-bit body).
    pub fn bit_length(&self) -> Result<usize, Reason> {
        let bad = |why| Reason::Length {
            unit_type: self.type_name(),
            length: self.length,
            why,
        };
        let ln = self.length as usize;
        match self.main_type {
            MainType::Iscc => {
                if self.length > 7 {
                    return Err(bad("an ISCC-CODE Length holds three unit flags (0-7)"));
                }
                let has_meta = self.length & 4 != 0;
                let has_sem_or_content = self.length & 3 != 0;
                match self.sub_type {
                    ST_ISCC_WIDE if self.length != 0 => {
                        Err(bad("ISCC-WIDE holds only DATA and INSTANCE"))
                    }
                    ST_ISCC_WIDE => Ok(256),
                    ST_ISCC_SUM if self.length != 0 => {
                        Err(bad("ISCC-SUM holds only DATA and INSTANCE"))
                    }
                    ST_ISCC_NONE if !has_meta || has_sem_or_content => {
                        Err(bad("ISCC-NONE holds META, DATA and INSTANCE"))
                    }
                    s if s < ST_ISCC_SUM && !has_sem_or_content => {
                        Err(bad("a content SubType needs a SEMANTIC or CONTENT unit"))
                    }
                    _ => Ok(128 + 64 * self.length.count_ones() as usize),
                }
            }
            MainType::Id if self.version == 1 => {
                if self.length == 0 {
                    Ok(64)
                } else {
                    Err(bad("an ISCC-ID v1 body is always 64 bits (Length 0)"))
                }
            }
            MainType::Id => Ok(64 + 8 * ln),
            _ => Ok((ln + 1) * 32),
        }
    }

    /// `MAINTYPE-SUBTYPE-VERSION`, e.g. `CONTENT-TEXT-V0`.
    pub(crate) fn type_name(&self) -> String {
        format!(
            "{}-{}-V{}",
            self.main_type.name(),
            subtype_name(self.main_type, self.sub_type, self.version).unwrap_or("?"),
            self.version
        )
    }
}

/// Append one varnibble.
fn push_varnibble(out: &mut Vec<u8>, value: u32) -> Result<(), Reason> {
    // (prefix bits, payload bits, first value of the range, nibble count)
    let (prefix, payload_bits, base, nibbles) = match value {
        0..=7 => (0b0, 3, 0, 1),
        8..=71 => (0b10, 6, 8, 2),
        72..=583 => (0b110, 9, 72, 3),
        584..=MAX_VARNIBBLE => (0b1110, 12, 584, 4),
        _ => return Err(Reason::Varnibble),
    };
    let bits: u32 = (prefix << payload_bits) | (value - base);
    for i in (0..nibbles).rev() {
        out.push(((bits >> (4 * i)) & 0xF) as u8);
    }
    Ok(())
}

/// Reads nibbles, most significant first.
struct NibbleReader<'a> {
    data: &'a [u8],
    /// Position in nibbles.
    pos: usize,
}

impl NibbleReader<'_> {
    fn nibble(&mut self) -> Result<u8, Reason> {
        let byte = *self.data.get(self.pos / 2).ok_or(Reason::HeaderTruncated)?;
        let n = if self.pos.is_multiple_of(2) {
            byte >> 4
        } else {
            byte & 0xF
        };
        self.pos += 1;
        Ok(n)
    }

    fn varnibble(&mut self) -> Result<u32, Reason> {
        let first = u32::from(self.nibble()?);
        let (extra, payload, base) = if first & 0b1000 == 0 {
            return Ok(first);
        } else if first & 0b0100 == 0 {
            (1, first & 0b0011, 8)
        } else if first & 0b0010 == 0 {
            (2, first & 0b0001, 72)
        } else if first & 0b0001 == 0 {
            (3, 0, 584)
        } else {
            return Err(Reason::Varnibble);
        };
        let mut value = payload;
        for _ in 0..extra {
            value = (value << 4) | u32::from(self.nibble()?);
        }
        Ok(value + base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varnibble_roundtrip_over_whole_range() {
        for value in 0..=MAX_VARNIBBLE {
            let header = Header {
                main_type: MainType::Meta,
                sub_type: 0,
                version: 0,
                length: value,
            };
            let bytes = header.encode().unwrap();
            let mut reader = NibbleReader {
                data: &bytes,
                pos: 0,
            };
            for expected in [0, 0, 0, value] {
                assert_eq!(reader.varnibble().unwrap(), expected);
            }
        }
        let too_big = Header {
            main_type: MainType::Meta,
            sub_type: 0,
            version: 0,
            length: MAX_VARNIBBLE + 1,
        };
        assert_eq!(too_big.encode(), Err(Reason::Varnibble));
    }

    #[test]
    fn nibble_counts_match_ranges() {
        for (value, nibbles) in [(0, 1), (7, 1), (8, 2), (71, 2), (72, 3), (583, 3), (584, 4)] {
            let mut out = Vec::new();
            push_varnibble(&mut out, value).unwrap();
            assert_eq!(out.len(), nibbles, "value {value}");
        }
    }

    #[test]
    fn rejects_prefix_1111_and_bad_padding() {
        assert_eq!(Header::decode(&[0xF0, 0x00]), Err(Reason::Varnibble));
        // 320-bit META: length 9 = 2 nibbles -> 5 nibbles + padding.
        let ok = Header::decode(&[0x00, 0x08, 0x10]).unwrap();
        assert_eq!(ok.0.length, 9);
        assert_eq!(ok.1, 3);
        assert_eq!(
            Header::decode(&[0x00, 0x08, 0x13]),
            Err(Reason::HeaderPadding(3))
        );
        assert_eq!(Header::decode(&[0x00]), Err(Reason::HeaderTruncated));
    }
}
