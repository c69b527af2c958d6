//! Entries: validation and normalisation of what callers add, and of
//! search queries.
//!
//! An entry is a JSON object with `iscc_id` (optional), `iscc_code` and/or
//! `units`, plus any other fields, which are stored and returned as given.
//! `units`, when present and not empty, are what is indexed (the code is
//! then only stored); otherwise the code is decomposed. The stored form
//! holds canonical strings: `{"iscc_id", "iscc_code"?, "units", …}`.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::codec::{Iscc, IsccId, Kind, Unit, UnitType};

use super::error::EngineError;

/// A validated entry, before its ISCC-ID is known.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// The ISCC-ID given with the entry.
    pub(crate) id: Option<IsccId>,
    /// Canonical `iscc_code`, if given.
    pub(crate) code: Option<String>,
    /// The units to index (distinct unit types).
    pub(crate) units: Vec<Unit>,
    /// Every other field, in the order given.
    pub(crate) extra: Map<String, Value>,
    /// The granular features (stored in `extra` as given; their simprints
    /// indexed in the store).
    pub(crate) features: Vec<super::features::FeatureSet>,
}

impl Prepared {
    /// The stored JSON of the entry under an ISCC-ID:
    /// `{"iscc_id", "iscc_code"?, "units", …every other field in order}`,
    /// serialised straight from the fields (copying them into a map first
    /// cost a batch with features a copy of every simprint).
    pub(crate) fn stored_json(&self, id: IsccId) -> Vec<u8> {
        struct Stored<'a>(&'a Prepared, IsccId);
        impl Serialize for Stored<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let p = self.0;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("iscc_id", &self.1.to_string())?;
                if let Some(code) = &p.code {
                    m.serialize_entry("iscc_code", code)?;
                }
                let units: Vec<String> = p.units.iter().map(Unit::to_string).collect();
                m.serialize_entry("units", &units)?;
                for (k, v) in &p.extra {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
        // Strings and JSON values always serialise.
        serde_json::to_vec(&Stored(self, id)).unwrap_or_default()
    }
}

fn iscc_err(context: String) -> impl FnOnce(crate::codec::CodecError) -> EngineError {
    move |source| EngineError::Iscc { context, source }
}

/// Check that a unit can be indexed (similarity or INSTANCE, 64–256 bits).
pub(crate) fn check_unit(unit: &Unit, context: &str) -> Result<(), EngineError> {
    let t = unit.unit_type();
    if !(t.is_similarity() || t.is_instance()) {
        return Err(EngineError::Invalid(format!(
            "{context}: unit type {t} cannot be indexed (only META, SEMANTIC, CONTENT, DATA and INSTANCE units of version 0)"
        )));
    }
    unit.index_body().map_err(iscc_err(context.to_string()))?;
    Ok(())
}

/// Units from an `iscc_code` string (an ISCC-CODE, a unit or a sequence of
/// units; not an ISCC-ID).
pub(crate) fn units_of_code(code: &str, context: &str) -> Result<(Iscc, Vec<Unit>), EngineError> {
    let iscc = Iscc::parse(code).map_err(iscc_err(context.to_string()))?;
    if matches!(iscc.kind(), Kind::Id | Kind::Flake) {
        return Err(EngineError::Invalid(format!(
            "{context}: {code:?} is an ISCC-{}, not an ISCC-CODE",
            if iscc.kind() == Kind::Id {
                "ID"
            } else {
                "FLAKE"
            }
        )));
    }
    let units = iscc.units();
    Ok((iscc, units))
}

fn string_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    context: &str,
) -> Result<Option<&'a str>, EngineError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(EngineError::Invalid(format!(
            "{context}.{key} must be a string, not {}",
            type_name(other)
        ))),
    }
}

/// "a string", "an object", … for messages about a JSON value.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Validate and normalise a batch of entries, each named `entries[i]` in
/// errors (every backend's add).
pub(crate) fn prepare_all(entries: &[&Value]) -> Result<Vec<Prepared>, EngineError> {
    entries
        .iter()
        .enumerate()
        .map(|(i, v)| prepare(v, &format!("entries[{i}]")))
        .collect()
}

/// Validate and normalise one entry; `context` names it in errors
/// (e.g. `entries[3]`).
pub(crate) fn prepare(value: &Value, context: &str) -> Result<Prepared, EngineError> {
    let Value::Object(obj) = value else {
        return Err(EngineError::Invalid(format!(
            "{context} must be a JSON object, not {}",
            type_name(value)
        )));
    };
    let id = string_field(obj, "iscc_id", context)?
        .map(|s| IsccId::parse(s).map_err(iscc_err(format!("{context}.iscc_id"))))
        .transpose()?;
    let code_str = string_field(obj, "iscc_code", context)?;
    let code = code_str
        .map(|c| units_of_code(c, &format!("{context}.iscc_code")))
        .transpose()?;
    let unit_strs = unit_strings(obj, context)?;
    // Granular features: stored as given, their simprints indexed.
    let features = super::features::features_of(obj, context)?;
    let units: Vec<Unit> = match (&unit_strs, &code) {
        (Some(list), _) if !list.is_empty() => list
            .iter()
            .enumerate()
            .map(|(i, s)| Unit::parse(s).map_err(iscc_err(format!("{context}.units[{i}]"))))
            .collect::<Result<_, _>>()?,
        (_, Some((_, units))) => units.clone(),
        (Some(_), None) => {
            return Err(EngineError::Invalid(format!(
                "{context} has an empty units list and no iscc_code: nothing to index"
            )))
        }
        (None, None) => {
            return Err(EngineError::Invalid(format!(
                "{context} has neither iscc_code nor units"
            )))
        }
    };
    let by_units = unit_strs.as_ref().is_some_and(|l| !l.is_empty());
    check_entry_units(&units, by_units, context)?;
    let canonical_code = code.as_ref().map(|(iscc, _)| {
        iscc.canonical()
            .or_else(|| code_str.map(str::to_string))
            .unwrap_or_default()
    });
    let extra = obj
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "iscc_id" | "iscc_code" | "units"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Prepared {
        id,
        code: canonical_code,
        units,
        extra,
        features,
    })
}

/// The `units` field of an entry: absent, or an array of strings.
fn unit_strings<'a>(
    obj: &'a serde_json::Map<String, Value>,
    context: &str,
) -> Result<Option<Vec<&'a str>>, EngineError> {
    match obj.get("units") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.as_str()),
                other => Err(EngineError::Invalid(format!(
                    "{context}.units[{i}] must be a string, not {}",
                    type_name(other)
                ))),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(other) => Err(EngineError::Invalid(format!(
            "{context}.units must be an array of ISCC-UNIT strings, not {}",
            type_name(other)
        ))),
    }
}

/// Every unit of an entry is indexable, and no unit type occurs twice;
/// errors name the unit (`by_units`) or the code it came from.
fn check_entry_units(units: &[Unit], by_units: bool, context: &str) -> Result<(), EngineError> {
    let mut seen: Vec<UnitType> = Vec::with_capacity(units.len());
    for (i, u) in units.iter().enumerate() {
        let where_ = if by_units {
            format!("{context}.units[{i}]")
        } else {
            format!("{context}.iscc_code")
        };
        check_unit(u, &where_)?;
        if seen.contains(&u.unit_type()) {
            return Err(EngineError::Invalid(format!(
                "{where_}: a second {} unit in one entry (one unit per unit type)",
                u.unit_type()
            )));
        }
        seen.push(u.unit_type());
    }
    Ok(())
}

/// The units of a search query: a code string or unit strings.
pub(crate) fn query_units(
    code: Option<&str>,
    units: Option<&[String]>,
    context: &str,
) -> Result<Vec<Unit>, EngineError> {
    if let Some(n) = units
        .map(<[String]>::len)
        .filter(|n| *n > super::MAX_QUERY_UNITS)
    {
        return Err(EngineError::Invalid(format!(
            "{context}.units: {n} units, at most {} per query",
            super::MAX_QUERY_UNITS
        )));
    }
    if units.is_some_and(<[String]>::is_empty) {
        return Err(EngineError::Invalid(format!(
            "{context}.units is empty (give at least one ISCC-UNIT, or leave it out)"
        )));
    }
    let list: Vec<Unit> = match (units, code) {
        (Some(list), code) => {
            // Units win; a code given beside them must still be valid.
            if let Some(c) = code {
                units_of_code(c, &format!("{context}.iscc_code"))?;
            }
            list.iter()
                .enumerate()
                .map(|(i, s)| Unit::parse(s).map_err(iscc_err(format!("{context}.units[{i}]"))))
                .collect::<Result<_, _>>()?
        }
        (_, Some(code)) => units_of_code(code, &format!("{context}.iscc_code"))?.1,
        _ => {
            return Err(EngineError::Invalid(format!(
                "{context}: a query needs an iscc_code or a non-empty units list"
            )))
        }
    };
    for (i, u) in list.iter().enumerate() {
        check_unit(u, &format!("{context}.units[{i}]"))?;
    }
    Ok(list)
}

/// Check that `code` is an ISCC-CODE (or unit) a query may carry; for a
/// face that accepts codes beside units (which win) and must not let a
/// malformed one pass unnoticed.
pub fn validate_code(code: &str, context: &str) -> Result<(), EngineError> {
    let (_, units) = units_of_code(code, context)?;
    for (i, u) in units.iter().enumerate() {
        check_unit(u, &format!("{context} (unit {i})"))?;
    }
    Ok(())
}
