//! Parsed ISCCs: components (header + body), units, and the ISCC-CODE
//! decompose/compose rules.
//!
//! A *component* is one header with its body. Components with MainType
//! META, SEMANTIC, CONTENT, DATA, INSTANCE, ID or FLAKE are *units*; a
//! component with MainType ISCC is a composite *ISCC-CODE* whose body
//! concatenates 64-bit unit prefixes (META, SEMANTIC, CONTENT as flagged by
//! the Length field, then DATA and INSTANCE; or, for ISCC-WIDE, 128-bit DATA
//! and INSTANCE). Several units may be written back to back as one string (the
//! "sequence" form); it decomposes into those units.

use std::fmt;
use std::str::FromStr;

use super::error::{CodecError, Reason};
use super::header::{Header, MainType, ST_ISCC_NONE, ST_ISCC_SUM, ST_ISCC_WIDE};
use super::text;
use super::unit_type::UnitType;

/// Bit lengths the similarity index stores.
pub const INDEX_BITS: [usize; 4] = [64, 128, 192, 256];

/// What a parsed string is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One ISCC-UNIT (META, SEMANTIC, CONTENT, DATA, INSTANCE).
    Unit,
    /// A composite ISCC-CODE (MainType ISCC).
    Code,
    /// An ISCC-ID (v0 or v1).
    Id,
    /// An ISCC-FLAKE.
    Flake,
    /// Two or more units written back to back.
    Sequence,
}

impl Kind {
    /// Lower-case name (`unit`, `code`, `id`, `flake`, `sequence`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Unit => "unit",
            Kind::Code => "code",
            Kind::Id => "id",
            Kind::Flake => "flake",
            Kind::Sequence => "sequence",
        }
    }

    fn of(main_type: MainType) -> Kind {
        match main_type {
            MainType::Iscc => Kind::Code,
            MainType::Id => Kind::Id,
            MainType::Flake => Kind::Flake,
            _ => Kind::Unit,
        }
    }
}

/// One validated ISCC component: a header and exactly the body it declares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Component {
    header: Header,
    body: Vec<u8>,
}

impl Component {
    /// The decoded header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The body (exactly `bit_length / 8` bytes).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Body length in bits.
    pub fn bit_length(&self) -> usize {
        self.body.len() * 8
    }

    /// MainType-SubType-Version.
    pub fn unit_type(&self) -> UnitType {
        // The header was validated on construction.
        UnitType::new(
            self.header.main_type,
            self.header.sub_type,
            self.header.version,
        )
        .unwrap_or(UnitType::META)
    }

    /// What this component is.
    pub fn kind(&self) -> Kind {
        Kind::of(self.header.main_type)
    }

    /// The raw bytes: header followed by body.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Every constructed header encodes (its fields passed validation).
        let mut out = self.header.encode().unwrap_or_default();
        out.extend_from_slice(&self.body);
        out
    }

    /// iscc-core's `iscc_type_id`: `CONTENT-TEXT-V0-64` for units and IDs,
    /// `ISCC-TEXT-V0-MCDI` (letters of the units held) for ISCC-CODEs.
    pub fn type_id(&self) -> String {
        let ut = self.unit_type();
        if self.header.main_type != MainType::Iscc {
            return format!("{ut}-{}", self.bit_length());
        }
        let letters: String = if self.header.sub_type == ST_ISCC_WIDE {
            "DI".into()
        } else {
            code_main_types(self.header.length)
                .iter()
                .map(|mt| &mt.name()[..1])
                .chain(["D", "I"])
                .collect()
        };
        format!("{ut}-{letters}")
    }

    /// The units of this component: itself for a unit, ID or FLAKE; the
    /// units held by an ISCC-CODE.
    pub fn decompose(&self) -> Vec<Unit> {
        let h = self.header;
        if h.main_type != MainType::Iscc {
            return vec![Unit {
                unit_type: self.unit_type(),
                body: self.body.clone(),
            }];
        }
        let mut units = Vec::with_capacity(5);
        if h.sub_type == ST_ISCC_WIDE {
            units.push(Unit::known(UnitType::DATA, &self.body[..16]));
            units.push(Unit::known(UnitType::INSTANCE, &self.body[16..32]));
            return units;
        }
        let n = self.body.len();
        for (i, mt) in code_main_types(h.length).into_iter().enumerate() {
            // Validation guarantees a content SubType whenever SEMANTIC or
            // CONTENT is flagged.
            let st = if mt == MainType::Meta { 0 } else { h.sub_type };
            let ut = UnitType::new(mt, st, 0).unwrap_or(UnitType::META);
            units.push(Unit::known(ut, &self.body[i * 8..i * 8 + 8]));
        }
        units.push(Unit::known(UnitType::DATA, &self.body[n - 16..n - 8]));
        units.push(Unit::known(UnitType::INSTANCE, &self.body[n - 8..]));
        units
    }

    /// Decode one component from the start of `data`; returns it and the
    /// number of bytes used.
    fn decode(data: &[u8]) -> Result<(Component, usize), Reason> {
        let (header, header_len) = Header::decode(data)?;
        let nbytes = header.bit_length()? / 8;
        let rest = &data[header_len..];
        if rest.len() < nbytes {
            return Err(Reason::BodyTruncated {
                expected: nbytes,
                actual: rest.len(),
            });
        }
        let body = rest[..nbytes].to_vec();
        if header.main_type == MainType::Id && header.version == 0 && body.len() > 8 {
            v0_counter(&body[8..]).ok_or(Reason::IdCounter)?;
        }
        Ok((Component { header, body }, header_len + nbytes))
    }
}

impl fmt::Display for Component {
    /// The canonical form `ISCC:` + base32.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&text::encode(&self.to_bytes()))
    }
}

/// The uniqueness counter that may follow a legacy ISCC-ID v0 body: one
/// unsigned LEB128 varint filling the extra bytes exactly.
pub(crate) fn v0_counter(bytes: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i >= 10 {
            return None;
        }
        value |= u64::from(b & 0x7F).checked_shl(7 * i as u32)?;
        if b & 0x80 == 0 {
            return (i + 1 == bytes.len()).then_some(value);
        }
    }
    None
}

/// The optional MainTypes flagged in an ISCC-CODE Length, in body order.
fn code_main_types(length: u32) -> Vec<MainType> {
    let mut out = Vec::with_capacity(3);
    if length & 4 != 0 {
        out.push(MainType::Meta);
    }
    if length & 2 != 0 {
        out.push(MainType::Semantic);
    }
    if length & 1 != 0 {
        out.push(MainType::Content);
    }
    out
}

/// A parsed ISCC string: one component, or a sequence of units.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Iscc {
    components: Vec<Component>,
}

impl Iscc {
    /// Parse the text form (see [`crate::codec::text`] for what is accepted).
    pub fn parse(input: &str) -> Result<Iscc, CodecError> {
        let bytes = text::decode(input)?;
        Iscc::from_bytes(&bytes).map_err(|reason| CodecError::iscc(input, reason))
    }

    /// Parse raw header + body bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Iscc, Reason> {
        if bytes.is_empty() {
            return Err(Reason::Empty);
        }
        let mut components = Vec::with_capacity(1);
        let mut pos = 0;
        while pos < bytes.len() {
            let rest = &bytes[pos..];
            let (component, used) = match Component::decode(rest) {
                Ok(ok) => ok,
                // After a complete component, say so: the likely fault is
                // garbage or truncation at the end, not a bad second unit.
                Err(why) if pos > 0 => {
                    return Err(Reason::TrailingBytes {
                        count: rest.len(),
                        why: Box::new(why),
                    })
                }
                Err(e) => return Err(e),
            };
            components.push(component);
            pos += used;
        }
        if components.len() > 1 {
            for c in &components {
                let what = match c.kind() {
                    Kind::Code => "composite ISCC-CODE",
                    Kind::Id => "ISCC-ID",
                    Kind::Flake => "ISCC-FLAKE",
                    _ => continue,
                };
                return Err(Reason::NotInSequence(what));
            }
        }
        Ok(Iscc { components })
    }

    /// What the string is.
    pub fn kind(&self) -> Kind {
        match self.components.as_slice() {
            [one] => one.kind(),
            _ => Kind::Sequence,
        }
    }

    /// The components (one, or several for a sequence).
    pub fn components(&self) -> &[Component] {
        &self.components
    }

    /// The first (for all but sequences: the only) component.
    pub fn first(&self) -> &Component {
        // Construction guarantees at least one component.
        &self.components[0]
    }

    /// All units: an ISCC-CODE decomposed, a sequence split, a unit itself.
    pub fn units(&self) -> Vec<Unit> {
        self.components.iter().flat_map(|c| c.decompose()).collect()
    }

    /// iscc-core's `iscc_normalize`: the canonical string of a single
    /// component; for a sequence, the ISCC-CODE composed from its units, or
    /// `None` when they cannot be composed.
    pub fn canonical(&self) -> Option<String> {
        match self.components.as_slice() {
            [one] => Some(one.to_string()),
            _ => compose(&self.units(), false).ok().map(|c| c.to_string()),
        }
    }
}

impl FromStr for Iscc {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Iscc, CodecError> {
        Iscc::parse(s)
    }
}

/// Parse a string and return its units (see [`Iscc::units`]).
pub fn decompose(input: &str) -> Result<Vec<Unit>, CodecError> {
    Ok(Iscc::parse(input)?.units())
}

/// One ISCC unit: a unit type and its body (any MainType but ISCC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Unit {
    unit_type: UnitType,
    body: Vec<u8>,
}

impl Unit {
    /// A unit from a type and body.
    ///
    /// The body must be encodable for the type: a positive multiple of 32
    /// bits for META..INSTANCE and FLAKE, 64 bits for an ISCC-ID v1, 64 bits
    /// plus a varint counter for a legacy ISCC-ID v0. ISCC (composite) is not
    /// a unit type: use [`compose`].
    pub fn new(unit_type: UnitType, body: &[u8]) -> Result<Unit, CodecError> {
        let mt = unit_type.main_type();
        let bad = |why: &str| {
            CodecError::OutOfRange(format!(
                "{unit_type} cannot have a {}-bit body: {why}",
                body.len() * 8
            ))
        };
        match mt {
            MainType::Iscc => {
                return Err(CodecError::OutOfRange(format!(
                    "{unit_type} is a composite type, not a unit type"
                )))
            }
            MainType::Id if unit_type.version() == 1 && body.len() != 8 => {
                return Err(bad("an ISCC-ID v1 is 64 bits"))
            }
            MainType::Id if body.len() < 8 => return Err(bad("an ISCC-ID is at least 64 bits")),
            MainType::Id if body.len() > 8 && v0_counter(&body[8..]).is_none() => {
                return Err(bad("bytes after 64 bits must be one varint counter"))
            }
            MainType::Id => {}
            _ if body.is_empty() || !body.len().is_multiple_of(4) => {
                return Err(bad("a unit body is a positive multiple of 32 bits"))
            }
            _ if body.len() / 4 - 1 > super::header::MAX_VARNIBBLE as usize => {
                return Err(bad("too long for the Length field"))
            }
            _ => {}
        }
        Ok(Unit {
            unit_type,
            body: body.to_vec(),
        })
    }

    /// Construct without checks, for bodies sliced from validated codes.
    fn known(unit_type: UnitType, body: &[u8]) -> Unit {
        Unit {
            unit_type,
            body: body.to_vec(),
        }
    }

    /// Parse a string holding exactly one unit (not a code or sequence).
    pub fn parse(input: &str) -> Result<Unit, CodecError> {
        let iscc = Iscc::parse(input)?;
        match iscc.components() {
            [one] if one.kind() != Kind::Code => Ok(one.decompose().remove(0)),
            [_] => Err(CodecError::iscc(
                input,
                Reason::NotAUnit("a composite ISCC-CODE"),
            )),
            _ => Err(CodecError::iscc(
                input,
                Reason::NotAUnit("a sequence of units"),
            )),
        }
    }

    /// The unit type.
    pub fn unit_type(&self) -> UnitType {
        self.unit_type
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Body length in bits.
    pub fn bit_length(&self) -> usize {
        self.body.len() * 8
    }

    /// The header of this unit's canonical encoding.
    pub fn header(&self) -> Header {
        let length = match self.unit_type.main_type() {
            MainType::Id => (self.body.len() - 8) as u32,
            _ => (self.body.len() / 4 - 1) as u32,
        };
        Header {
            main_type: self.unit_type.main_type(),
            sub_type: self.unit_type.sub_type(),
            version: self.unit_type.version(),
            length,
        }
    }

    /// The component this unit encodes to.
    pub fn to_component(&self) -> Component {
        Component {
            header: self.header(),
            body: self.body.clone(),
        }
    }

    /// Check that the similarity index can store this unit: 64, 128, 192 or
    /// 256 bits. Returns the body.
    pub fn index_body(&self) -> Result<&[u8], CodecError> {
        if INDEX_BITS.contains(&self.bit_length()) {
            Ok(&self.body)
        } else {
            Err(CodecError::UnsupportedLength {
                unit: self.to_string(),
                bits: self.bit_length(),
            })
        }
    }

    /// The first `bits` bits as a unit of the same type.
    pub fn truncate(&self, bits: usize) -> Result<Unit, CodecError> {
        if bits > self.bit_length() || !bits.is_multiple_of(8) {
            return Err(CodecError::OutOfRange(format!(
                "cannot truncate a {}-bit unit to {bits} bits",
                self.bit_length()
            )));
        }
        Unit::new(self.unit_type, &self.body[..bits / 8])
    }

    /// True when both units have the same type and the shorter body is a
    /// prefix of the longer (units of one item at different lengths).
    pub fn prefix_matches(&self, other: &Unit) -> bool {
        let n = self.body.len().min(other.body.len());
        self.unit_type == other.unit_type && self.body[..n] == other.body[..n]
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_component().fmt(f)
    }
}

impl FromStr for Unit {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Unit, CodecError> {
        Unit::parse(s)
    }
}

/// Compose an ISCC-CODE from units, as iscc-core's `gen_iscc_code_v0`.
///
/// Needs DATA and INSTANCE and at most one unit of each of META, SEMANTIC
/// and CONTENT, all V0 and at least 64 bits; SEMANTIC and CONTENT must share
/// their SubType. Each unit contributes its first 64 bits. With `wide` and
/// exactly DATA and INSTANCE of at least 128 bits each, the result is an
/// ISCC-WIDE holding 128 bits of each. Order of the input does not matter.
pub fn compose(units: &[Unit], wide: bool) -> Result<Component, CodecError> {
    let fail = |m: String| Err(CodecError::Compose(m));
    let sorted = composable(units)?;
    let n = sorted.len();
    if n < 2
        || sorted[n - 2].unit_type != UnitType::DATA
        || sorted[n - 1].unit_type != UnitType::INSTANCE
    {
        return fail("DATA and INSTANCE units are mandatory".into());
    }
    let is_wide = wide && n == 2 && sorted.iter().all(|u| u.bit_length() >= 128);
    let sub_type = if is_wide {
        ST_ISCC_WIDE
    } else {
        code_sub_type(&sorted)?
    };
    let mut length = 0u32;
    for u in &sorted[..n - 2] {
        length |= match u.unit_type.main_type() {
            MainType::Meta => 4,
            MainType::Semantic => 2,
            _ => 1,
        };
    }
    let take = if is_wide { 16 } else { 8 };
    let body: Vec<u8> = sorted
        .iter()
        .flat_map(|u| u.body[..take].iter().copied())
        .collect();
    Ok(Component {
        header: Header {
            main_type: MainType::Iscc,
            sub_type,
            version: 0,
            length,
        },
        body,
    })
}

/// The units of a code, sorted by MainType: one per MainType at most, each
/// of a MainType a code holds and of at least 64 bits.
fn composable(units: &[Unit]) -> Result<Vec<&Unit>, CodecError> {
    let fail = |m: String| Err(CodecError::Compose(m));
    let mut sorted: Vec<&Unit> = units.iter().collect();
    sorted.sort_by_key(|u| u.unit_type.main_type());
    for pair in sorted.windows(2) {
        if pair[0].unit_type.main_type() == pair[1].unit_type.main_type() {
            return fail(format!(
                "two {} units ({} and {})",
                pair[0].unit_type.main_type().name(),
                pair[0],
                pair[1]
            ));
        }
    }
    for u in &sorted {
        let mt = u.unit_type.main_type();
        if !matches!(
            mt,
            MainType::Meta
                | MainType::Semantic
                | MainType::Content
                | MainType::Data
                | MainType::Instance
        ) {
            return fail(format!(
                "{} units cannot be part of an ISCC-CODE",
                mt.name()
            ));
        }
        if u.bit_length() < 64 {
            return fail(format!(
                "{u} has {} bits; at least 64 are needed",
                u.bit_length()
            ));
        }
    }
    Ok(sorted)
}

/// The SubType of a (not wide) code of these sorted units: that of its
/// SEMANTIC and CONTENT units (which must agree), else SUM for DATA and
/// INSTANCE alone, else NONE.
fn code_sub_type(sorted: &[&Unit]) -> Result<u8, CodecError> {
    let content_subtypes: Vec<u8> = sorted
        .iter()
        .filter(|u| {
            matches!(
                u.unit_type.main_type(),
                MainType::Semantic | MainType::Content
            )
        })
        .map(|u| u.unit_type.sub_type())
        .collect();
    Ok(if let Some(&first) = content_subtypes.first() {
        if content_subtypes.iter().any(|&s| s != first) {
            return Err(CodecError::Compose(
                "SEMANTIC and CONTENT units have different SubTypes".into(),
            ));
        }
        first
    } else if sorted.len() == 2 {
        ST_ISCC_SUM
    } else {
        ST_ISCC_NONE
    })
}
