//! A JSON description of a parsed ISCC, field for field comparable with
//! iscc-core (`iscc_explain`, `iscc_type_id`, `iscc_decompose`,
//! `iscc_normalize`). Used by `iscc-vdb explain` and the bindings.

use serde_json::{json, Map, Value};

use super::component::{v0_counter, Component, Iscc, Kind, Unit};
use super::header::MainType;
use super::iscc_id::{iso_time_us, IsccId, Realm};

fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

fn unit_json(u: &Unit) -> Value {
    json!({
        "unit": u.to_string(),
        "unit_type": u.unit_type().name(),
        "bit_length": u.bit_length(),
        "body_hex": hex(u.body()),
    })
}

/// iscc-core's `iscc_explain` string of one component.
pub fn explain_string(c: &Component) -> String {
    let h = c.header();
    if h.main_type == MainType::Id {
        let body = c.body();
        if h.version == 1 {
            let mut be = [0u8; 8];
            be.copy_from_slice(&body[..8]);
            let v = u64::from_be_bytes(be);
            return format!("{}-{}-HUB_{}", c.type_id(), iso_time_us(v >> 12), v & 0xFFF);
        }
        let mut out = format!("{}-{}", c.type_id(), hex(&body[..8]));
        if let Some(counter) = v0_counter(&body[8..]).filter(|_| body.len() > 8) {
            out.push_str(&format!("-{counter}"));
        }
        return out;
    }
    format!("{}-{}", c.type_id(), hex(c.body()))
}

/// Describe a component's header, type and body.
fn component_fields(c: &Component, out: &mut Map<String, Value>) {
    let h = c.header();
    let ut = c.unit_type();
    out.insert("maintype".into(), json!(h.main_type.code()));
    out.insert("maintype_name".into(), json!(h.main_type.name()));
    out.insert("subtype".into(), json!(h.sub_type));
    out.insert("subtype_name".into(), json!(ut.sub_type_name()));
    out.insert("version".into(), json!(h.version));
    out.insert("length_field".into(), json!(h.length));
    out.insert("bit_length".into(), json!(c.bit_length()));
    out.insert("unit_type".into(), json!(ut.name()));
    out.insert("unit_type_code".into(), json!(ut.code()));
    // Header::encode cannot fail for a decoded header.
    out.insert(
        "header_hex".into(),
        json!(hex(&h.encode().unwrap_or_default())),
    );
    out.insert("body_hex".into(), json!(hex(c.body())));
}

/// ISCC-ID details: v1 realm/time/hub/key, v0 key and counter.
fn id_fields(c: &Component) -> Value {
    let h = c.header();
    let body = c.body();
    let mut be = [0u8; 8];
    be.copy_from_slice(&body[..8]);
    let value = u64::from_be_bytes(be);
    if h.version == 1 {
        let realm = if h.sub_type == 0 {
            Realm::R0
        } else {
            Realm::R1
        };
        let id = IsccId::from_u64(value, realm);
        json!({
            "version": 1,
            "realm": realm.id(),
            "timestamp_us": id.timestamp_us(),
            "iso_time": id.iso_time(),
            "hub_id": id.hub_id(),
            "u64": value,
        })
    } else {
        let counter = (body.len() > 8).then(|| v0_counter(&body[8..])).flatten();
        json!({
            "version": 0,
            "u64": value,
            "counter": counter,
            "usable_as_key": false,
        })
    }
}

/// The JSON description of a parsed ISCC.
///
/// Fields: `input`, `kind`, `canonical`, the header fields of the (first)
/// component (`maintype`, `maintype_name`, `subtype`, `subtype_name`,
/// `version`, `length_field`, `bit_length`, `unit_type`, `unit_type_code`,
/// `header_hex`, `body_hex`), `units`, and except for sequences `type_id`
/// and `explain`; for an ISCC-ID an `iscc_id` object.
pub fn explain(input: &str, iscc: &Iscc) -> Value {
    let mut out = Map::new();
    out.insert("input".into(), json!(input));
    out.insert("kind".into(), json!(iscc.kind().as_str()));
    out.insert("canonical".into(), json!(iscc.canonical()));
    let first = iscc.first();
    component_fields(first, &mut out);
    let units: Vec<Value> = iscc.units().iter().map(unit_json).collect();
    out.insert("units".into(), Value::Array(units));
    if iscc.kind() != Kind::Sequence {
        out.insert("type_id".into(), json!(first.type_id()));
        out.insert("explain".into(), json!(explain_string(first)));
    }
    if iscc.kind() == Kind::Id {
        out.insert("iscc_id".into(), id_fields(first));
    }
    Value::Object(out)
}
