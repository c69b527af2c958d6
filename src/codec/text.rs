//! The text form of an ISCC: `ISCC:` + RFC 4648 base32 (upper case, no
//! padding) of header + body.
//!
//! Accepted on input: the `ISCC:` prefix in any case or no prefix, base32 in
//! any case, and single dashes between base32 groups (`ISCC:KACT-IEES-...`).
//! Also accepted: the multibase forms iscc-core reads (`f` base16, `b` base32,
//! `v` base32hex, `z` base58btc, `u` base64url, each wrapping the multicodec
//! prefix `0xCC 0x01`), written without `ISCC:`. No valid ISCC header starts
//! with the base32 symbols `B F U V Z`, so a lower-case ISCC and a multibase
//! string can never be confused. Everything else (whitespace, other schemes,
//! padding, non-canonical trailing bits) is rejected.

use data_encoding::{
    DecodeKind, Encoding, BASE32HEX_NOPAD, BASE32_NOPAD, BASE64URL_NOPAD, HEXLOWER_PERMISSIVE,
};

use super::error::{CodecError, Reason};

/// The URI-like scheme of the canonical form.
pub const SCHEME: &str = "ISCC";

/// The multicodec prefix of an ISCC in multibase form (varint 0xCC).
const MULTICODEC: [u8; 2] = [0xCC, 0x01];

/// Longest base58 input decoded; the conversion is quadratic in its length.
const MAX_BASE58: usize = 2048;

/// Canonical text form of raw header + body bytes: `ISCC:` + base32.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(5 + bytes.len() * 8 / 5 + 1);
    out.push_str("ISCC:");
    out.push_str(&BASE32_NOPAD.encode(bytes));
    out
}

/// Decode the text form into raw header + body bytes (not yet validated).
pub fn decode(input: &str) -> Result<Vec<u8>, CodecError> {
    let err = |reason| CodecError::iscc(input, reason);
    if input.is_empty() {
        return Err(err(Reason::Empty));
    }
    let (body, offset) = match input.split_once(':') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case(SCHEME) => {
            if rest
                .get(..5)
                .is_some_and(|p| p.eq_ignore_ascii_case("ISCC:"))
            {
                return Err(err(Reason::DoublePrefix));
            }
            (rest, scheme.len() + 1)
        }
        Some((scheme, _)) => return Err(err(Reason::Scheme(super::error::quote(scheme)))),
        None => {
            if let Some(result) = decode_multibase(input) {
                // A string that is neither plain base32 nor valid multibase
                // is reported with the multibase problem: base32 is ruled out
                // by its first symbol.
                return result.map_err(err);
            }
            (input, 0)
        }
    };
    decode_base32(body, offset).map_err(err)
}

/// Decode base32 with optional dashes. `offset` is added to error positions
/// so they point into the caller's whole string.
fn decode_base32(body: &str, offset: usize) -> Result<Vec<u8>, Reason> {
    if body.is_empty() {
        return Err(Reason::Empty);
    }
    let mut clean = String::with_capacity(body.len());
    let mut previous_dash = true; // a leading dash separates nothing
    for (i, ch) in body.char_indices() {
        match ch {
            'A'..='Z' | '2'..='7' => clean.push(ch),
            'a'..='z' => clean.push(ch.to_ascii_uppercase()),
            '-' if !previous_dash => {}
            '-' => return Err(Reason::Dash(offset + i + 1)),
            _ => {
                return Err(Reason::Character {
                    ch,
                    pos: offset + i + 1,
                })
            }
        }
        previous_dash = ch == '-';
    }
    if previous_dash {
        return Err(Reason::Dash(offset + body.len()));
    }
    BASE32_NOPAD
        .decode(clean.as_bytes())
        .map_err(|e| match e.kind {
            DecodeKind::Trailing => Reason::Base32TrailingBits,
            _ => Reason::Base32Length(clean.len()),
        })
}

/// Try the multibase forms. `None` when the first symbol is not a multibase
/// code iscc-core reads.
fn decode_multibase(input: &str) -> Option<Result<Vec<u8>, Reason>> {
    let mut chars = input.chars();
    let code = chars.next()?;
    let rest = chars.as_str();
    let decoded = match code {
        'f' => decode_with(&HEXLOWER_PERMISSIVE, rest, "base16"),
        'b' => decode_with(&BASE32_NOPAD, &rest.to_ascii_uppercase(), "base32"),
        'v' => decode_with(&BASE32HEX_NOPAD, &rest.to_ascii_uppercase(), "base32hex"),
        'u' => decode_with(&BASE64URL_NOPAD, rest, "base64url"),
        'z' => decode_base58(rest),
        _ => return None,
    };
    Some(
        decoded.and_then(|bytes| match bytes.strip_prefix(&MULTICODEC) {
            Some(iscc) if !iscc.is_empty() => Ok(iscc.to_vec()),
            _ => Err(Reason::Multibase(
                "the decoded bytes do not start with the ISCC multicodec 0xcc01".into(),
            )),
        }),
    )
}

fn decode_with(encoding: &Encoding, text: &str, name: &str) -> Result<Vec<u8>, Reason> {
    encoding
        .decode(text.as_bytes())
        .map_err(|e| Reason::Multibase(format!("invalid {name}: {e}")))
}

/// Base58btc (Bitcoin alphabet), leading `1`s are zero bytes.
fn decode_base58(text: &str) -> Result<Vec<u8>, Reason> {
    const ALPHABET: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    if text.len() > MAX_BASE58 {
        return Err(Reason::Multibase(format!(
            "base58btc input longer than {MAX_BASE58} symbols"
        )));
    }
    // Little-endian base-256 digits of the number.
    let mut digits: Vec<u8> = Vec::with_capacity(text.len());
    for (i, ch) in text.bytes().enumerate() {
        let value = ALPHABET.iter().position(|&a| a == ch).ok_or_else(|| {
            Reason::Multibase(format!("invalid base58btc symbol at position {}", i + 1))
        })?;
        let mut carry = value as u32;
        for d in digits.iter_mut() {
            carry += u32::from(*d) * 58;
            *d = (carry & 0xFF) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            digits.push((carry & 0xFF) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|&b| b == b'1').count();
    let mut out = vec![0u8; zeros];
    out.extend(digits.iter().rev());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base58_known_values() {
        assert_eq!(decode_base58("").unwrap(), Vec::<u8>::new());
        assert_eq!(decode_base58("11").unwrap(), vec![0, 0]);
        assert_eq!(decode_base58("5Q").unwrap(), vec![0xFF]);
        assert_eq!(decode_base58("LUw").unwrap(), vec![0x01, 0x00, 0x00]);
        assert!(decode_base58("0OIl").is_err());
    }

    #[test]
    fn dashes_and_case() {
        assert_eq!(decode("ISCC:AAAA-AAAA").unwrap(), vec![0; 5]);
        assert_eq!(decode("iscc:aaaaaaaa").unwrap(), vec![0; 5]);
        for (bad, reason) in [
            ("ISCC:-AAAAAAAA", Reason::Dash(6)),
            ("ISCC:AAAA--AAAA", Reason::Dash(11)),
            ("ISCC:AAAAAAAA-", Reason::Dash(14)),
            ("ISCC: AAAAAAAA", Reason::Character { ch: ' ', pos: 6 }),
            ("ISCC:A", Reason::Base32Length(1)),
            ("ISCC:AB", Reason::Base32TrailingBits),
        ] {
            match decode(bad) {
                Err(CodecError::InvalidIscc { reason: r, .. }) => assert_eq!(r, reason, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn encode_is_inverse_of_decode() {
        let bytes = [0x50, 0x01, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
        assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
    }
}
