//! Granular features (SIMPRINTs) of an entry: what callers send, checked
//! and brought into one typed form.
//!
//! Two input forms are accepted:
//!
//! * `features`: a list of feature sets as ISCC generators emit them in
//!   `.iscc.json` — `{"maintype": "semantic", "subtype": "text",
//!   "version": 0, "simprints": ["<base64url>", …], "offsets": [0, …],
//!   "sizes": [1024, …]}`; `offsets` and `sizes` are optional, `contents`
//!   and any other member are ignored (never indexed).
//! * `simprints`: iscc-search's form — `{"SEMANTIC_TEXT_V0": [{"simprint":
//!   "<base64url>", "offset": 0, "size": 1024}, …]}`.
//!
//! A simprint type is written `SEMANTIC-TEXT-V0`; `SEMANTIC_TEXT_V0` and
//! lower case are read as the same type. A simprint is headerless
//! base64url (padding tolerated) of 64 to 256 bits in whole 64-bit words;
//! every simprint of one type in one entry has one length. Errors name the
//! entry, the type and the position.

use std::fmt;

use data_encoding::{BASE64URL, BASE64URL_NOPAD};
use serde_json::{Map, Value};

use super::entry::type_name;
use super::error::EngineError;

/// A simprint type: main type, subtype and version (`SEMANTIC-TEXT-V0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SimprintType {
    /// Upper-case main type (`SEMANTIC`, `CONTENT`, …).
    pub maintype: String,
    /// Upper-case subtype (`TEXT`, `IMAGE`, …).
    pub subtype: String,
    /// Version.
    pub version: u32,
}

impl fmt::Display for SimprintType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-V{}", self.maintype, self.subtype, self.version)
    }
}

impl SimprintType {
    /// Parse `SEMANTIC-TEXT-V0` or `SEMANTIC_TEXT_V0` (any case).
    pub fn parse(name: &str) -> Result<SimprintType, String> {
        let parts: Vec<&str> = name.split(['-', '_']).collect();
        let bad = || {
            format!("simprint type {name:?} is not of the form MAINTYPE-SUBTYPE-V<version> (e.g. SEMANTIC-TEXT-V0)")
        };
        let [main, sub, version] = parts[..] else {
            return Err(bad());
        };
        let version = version
            .strip_prefix(['V', 'v'])
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(bad)?;
        SimprintType::new(main, sub, version).map_err(|_| bad())
    }

    /// A type from its parts (names of ASCII letters and digits).
    pub fn new(maintype: &str, subtype: &str, version: u32) -> Result<SimprintType, String> {
        let name = |s: &str, what: &str| {
            if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
                Ok(s.to_ascii_uppercase())
            } else {
                Err(format!("{what} {s:?} is not a name of letters and digits"))
            }
        };
        Ok(SimprintType {
            maintype: name(maintype, "maintype")?,
            subtype: name(subtype, "subtype")?,
            version,
        })
    }
}

/// The simprints of one type of one entry, with their segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSet {
    /// The simprint type.
    pub kind: SimprintType,
    /// Bits per simprint (64, 128, 192 or 256).
    pub bits: u16,
    /// The simprints' bytes, in the order given (chunk number = position).
    pub simprints: Vec<Vec<u8>>,
    /// Byte offset of each chunk, when given.
    pub offsets: Option<Vec<u64>>,
    /// Byte size of each chunk, when given.
    pub sizes: Option<Vec<u64>>,
}

impl FeatureSet {
    /// The canonical JSON form (the ISCC tools' feature set, simprints
    /// without padding).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("maintype".into(), self.kind.maintype.to_lowercase().into());
        out.insert("subtype".into(), self.kind.subtype.to_lowercase().into());
        out.insert("version".into(), self.kind.version.into());
        let prints = self.simprints.iter().map(|s| BASE64URL_NOPAD.encode(s));
        out.insert("simprints".into(), prints.map(Value::String).collect());
        if let Some(offsets) = &self.offsets {
            out.insert("offsets".into(), offsets.clone().into());
        }
        if let Some(sizes) = &self.sizes {
            out.insert("sizes".into(), sizes.clone().into());
        }
        Value::Object(out)
    }
}

/// The largest whole number every JSON reader holds exactly (2^53 − 1).
const JSON_SAFE: u64 = (1 << 53) - 1;

/// A whole number from 0 to 2^53 − 1 as JSON gives it: `1220` or `1220.0`
/// (JSON Schema's `integer` admits both; larger values lose digits in
/// JavaScript and in doubles, so they are refused).
fn whole(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= JSON_SAFE as f64)
                .map(|f| f as u64)
        })
        .filter(|n| *n <= JSON_SAFE)
}

/// The feature sets of an entry (its `features` and `simprints` members),
/// one per simprint type, in the order first given. `context` names the
/// entry in errors. An entry without either member has none.
pub(crate) fn features_of(
    entry: &Map<String, Value>,
    context: &str,
) -> Result<Vec<FeatureSet>, EngineError> {
    let invalid = |msg: String| EngineError::Invalid(format!("{context}: {msg}"));
    let mut sets: Vec<FeatureSet> = Vec::new();
    let push = |set: FeatureSet, sets: &mut Vec<FeatureSet>| -> Result<(), EngineError> {
        if sets.iter().any(|s| s.kind == set.kind) {
            return Err(invalid(format!(
                "simprints of type {} are given twice",
                set.kind
            )));
        }
        // A set without simprints carries nothing to index or match (and
        // no bit length): kept in the stored entry, ignored here.
        if !set.simprints.is_empty() {
            sets.push(set);
        }
        Ok(())
    };
    match entry.get("features") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for (i, item) in list.iter().enumerate() {
                let set = tools_set(item).map_err(|m| invalid(format!("features[{i}]: {m}")))?;
                push(set, &mut sets)?;
            }
        }
        Some(other) => {
            return Err(invalid(format!(
                "features must be a list of feature sets, not {}",
                type_name(other)
            )))
        }
    }
    match entry.get("simprints") {
        None | Some(Value::Null) => {}
        Some(Value::Object(by_type)) => {
            for (name, items) in by_type {
                let set = search_set(name, items)
                    .map_err(|m| invalid(format!("simprints.{name}: {m}")))?;
                push(set, &mut sets)?;
            }
        }
        Some(other) => {
            return Err(invalid(format!(
                "simprints must be an object of simprint type to list, not {}",
                type_name(other)
            )))
        }
    }
    Ok(sets)
}

/// One feature set of the ISCC tools' form.
fn tools_set(item: &Value) -> Result<FeatureSet, String> {
    let Value::Object(obj) = item else {
        return Err(format!(
            "a feature set must be an object, not {}",
            type_name(item)
        ));
    };
    let text = |key: &str| match obj.get(key) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(v) => Err(format!("{key} must be a string, not {}", type_name(v))),
        None => Err(format!("{key} is missing")),
    };
    let version = match obj.get("version") {
        None => 0,
        Some(v) => whole(v)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| format!("version must be a whole number ≥ 0, not {v}"))?,
    };
    let kind = SimprintType::new(text("maintype")?, text("subtype")?, version)?;
    let prints = match obj.get("simprints") {
        Some(Value::Array(list)) => list,
        Some(v) => return Err(format!("simprints must be a list, not {}", type_name(v))),
        None => return Err("simprints is missing".into()),
    };
    let simprints = prints
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            Value::String(s) => decode(s).map_err(|m| format!("simprints[{i}]: {m}")),
            v => Err(format!(
                "simprints[{i}] must be a string, not {}",
                type_name(v)
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let numbers = |key: &str| -> Result<Option<Vec<u64>>, String> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(list)) => {
                if list.len() != simprints.len() {
                    return Err(format!(
                        "{key} has {} values for {} simprints",
                        list.len(),
                        simprints.len()
                    ));
                }
                list.iter()
                    .enumerate()
                    .map(|(i, v)| {
                        whole(v).ok_or_else(|| {
                            format!("{key}[{i}] must be a whole number ≥ 0, not {v}")
                        })
                    })
                    .collect::<Result<_, _>>()
                    .map(Some)
            }
            Some(v) => Err(format!("{key} must be a list, not {}", type_name(v))),
        }
    };
    let offsets = numbers("offsets")?;
    let sizes = numbers("sizes")?;
    finish(kind, simprints, offsets, sizes)
}

/// One type of iscc-search's form: a list of `{simprint, offset, size}`.
fn search_set(name: &str, items: &Value) -> Result<FeatureSet, String> {
    let kind = SimprintType::parse(name)?;
    let Value::Array(list) = items else {
        return Err(format!("must be a list, not {}", type_name(items)));
    };
    let mut simprints = Vec::with_capacity(list.len());
    let (mut offsets, mut sizes) = (Vec::new(), Vec::new());
    for (i, item) in list.iter().enumerate() {
        // iscc-search's queries give bare simprints, its assets objects.
        if let Value::String(s) = item {
            simprints.push(decode(s).map_err(|m| format!("[{i}]: {m}"))?);
            continue;
        }
        let Value::Object(obj) = item else {
            return Err(format!(
                "[{i}] must be a simprint or an object {{simprint, offset, size}}, not {}",
                type_name(item)
            ));
        };
        match obj.get("simprint") {
            Some(Value::String(s)) => simprints.push(decode(s).map_err(|m| format!("[{i}]: {m}"))?),
            Some(v) => {
                return Err(format!(
                    "[{i}].simprint must be a string, not {}",
                    type_name(v)
                ))
            }
            None => return Err(format!("[{i}].simprint is missing")),
        }
        for (key, out) in [("offset", &mut offsets), ("size", &mut sizes)] {
            if let Some(v) = obj.get(key) {
                let n = whole(v)
                    .ok_or_else(|| format!("[{i}].{key} must be a whole number ≥ 0, not {v}"))?;
                out.push(n);
            }
        }
    }
    // Segments are kept only when every chunk has them.
    let all = |v: Vec<u64>| (v.len() == simprints.len() && !v.is_empty()).then_some(v);
    let (offsets, sizes) = (all(offsets), all(sizes));
    finish(kind, simprints, offsets, sizes)
}

/// Check one bit length for the type.
fn finish(
    kind: SimprintType,
    simprints: Vec<Vec<u8>>,
    offsets: Option<Vec<u64>>,
    sizes: Option<Vec<u64>>,
) -> Result<FeatureSet, String> {
    let bits = simprints.first().map_or(0, |s| 8 * s.len()) as u16;
    if let Some((i, s)) = simprints
        .iter()
        .enumerate()
        .find(|(_, s)| 8 * s.len() != usize::from(bits))
    {
        return Err(format!(
            "simprint {i} of type {kind} has {} bits, but simprint 0 has {bits}: one type has one length",
            8 * s.len()
        ));
    }
    Ok(FeatureSet {
        kind,
        bits,
        simprints,
        offsets,
        sizes,
    })
}

/// Decode one headerless base64url simprint of 64–256 bits.
pub(super) fn decode(text: &str) -> Result<Vec<u8>, String> {
    let engine = if text.ends_with('=') {
        &BASE64URL
    } else {
        &BASE64URL_NOPAD
    };
    let bytes = engine
        .decode(text.as_bytes())
        .map_err(|e| format!("{text:?} is not base64url: {e}"))?;
    match bytes.len() {
        8 | 16 | 24 | 32 => Ok(bytes),
        n => Err(format!(
            "{text:?} has {} bits: a simprint has 64, 128, 192 or 256 bits (never truncated)",
            8 * n
        )),
    }
}

#[cfg(test)]
mod tests;
