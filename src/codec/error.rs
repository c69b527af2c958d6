//! Errors of the codec layer.
//!
//! Every rejection names the input and the precise problem, so a caller that
//! passes on the message (C ABI, REST, CLI) tells the user what to fix.

use thiserror::Error;

/// Longest slice of the offending input quoted in an error message.
const MAX_QUOTED: usize = 120;

/// Quote the input for an error message, cut (on a char boundary) when long.
pub(crate) fn quote(input: &str) -> String {
    if input.len() <= MAX_QUOTED {
        return input.to_string();
    }
    let mut end = MAX_QUOTED;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

/// Why an ISCC string or byte sequence was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Reason {
    #[error("the input is empty")]
    Empty,
    #[error("unknown scheme {0:?}: an ISCC is written `ISCC:` + base32, or base32 alone")]
    Scheme(String),
    #[error("the `ISCC:` prefix appears twice")]
    DoublePrefix,
    #[error("character {ch:?} at position {pos} (counting from 1) is not base32 (A-Z, 2-7; dashes may separate groups)")]
    Character { ch: char, pos: usize },
    #[error("a dash at position {0} (counting from 1) does not separate two base32 groups")]
    Dash(usize),
    #[error("{0} base32 characters cannot encode whole bytes (RFC 4648 without padding)")]
    Base32Length(usize),
    #[error("the last base32 character carries non-zero padding bits (not a canonical encoding)")]
    Base32TrailingBits,
    #[error("multibase: {0}")]
    Multibase(String),
    #[error("the header is truncated")]
    HeaderTruncated,
    #[error("header varnibble starting 1111 is not a valid value")]
    Varnibble,
    #[error("the header padding nibble is {0:#x}, expected 0")]
    HeaderPadding(u8),
    #[error("unknown MainType {0}")]
    MainType(u32),
    #[error("SubType {subtype} is not defined for MainType {maintype}")]
    SubType {
        maintype: &'static str,
        subtype: u32,
    },
    #[error("Version {version} is not defined for MainType {maintype}")]
    Version {
        maintype: &'static str,
        version: u32,
    },
    #[error("Length field {length} is not valid for {unit_type}: {why}")]
    Length {
        unit_type: String,
        length: u32,
        why: &'static str,
    },
    #[error("the header declares {expected} body bytes but {actual} follow")]
    BodyTruncated { expected: usize, actual: usize },
    #[error(
        "{count} bytes follow the last complete ISCC component and are not another unit ({why})"
    )]
    TrailingBytes { count: usize, why: Box<Reason> },
    #[error("a {0} cannot be part of a concatenated sequence of units")]
    NotInSequence(&'static str),
    #[error("expected one unit but got {0}")]
    NotAUnit(&'static str),
    #[error("ISCC-ID v0 counter bytes are not a single unsigned varint")]
    IdCounter,
}

/// Errors of the ISCC codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The string is not a valid ISCC.
    #[error("invalid ISCC {input:?}: {reason}")]
    InvalidIscc { input: String, reason: Reason },
    /// The string is a valid ISCC but not a usable ISCC-ID v1.
    #[error("invalid ISCC-ID {input:?}: {why}")]
    InvalidIsccId { input: String, why: String },
    /// A unit whose body length the similarity index does not take.
    #[error("unit {unit} has {bits} bits; an indexed unit must have 64, 128, 192 or 256 bits")]
    UnsupportedLength { unit: String, bits: usize },
    /// Units that cannot be composed into an ISCC-CODE.
    #[error("cannot compose an ISCC-CODE: {0}")]
    Compose(String),
    /// A value outside its field (timestamp, hub id, realm, body size...).
    #[error("{0}")]
    OutOfRange(String),
    /// A unit type name that is not known.
    #[error("unknown unit type {0:?} (expected e.g. CONTENT-TEXT-V0 or content-text-v0)")]
    UnitTypeName(String),
}

impl CodecError {
    pub(crate) fn iscc(input: &str, reason: Reason) -> Self {
        CodecError::InvalidIscc {
            input: quote(input),
            reason,
        }
    }

    pub(crate) fn id(input: &str, why: impl Into<String>) -> Self {
        CodecError::InvalidIsccId {
            input: quote(input),
            why: why.into(),
        }
    }
}
