//! The codec against iscc-core 1.5.0: every case of
//! `../shared/testdata/codec-vectors.json`, the `gen_iscc_code_v0` vectors
//! of iscc-core's conformance file, and every ISCC in `corpus.jsonl`.

mod common;

use common::{hex, json, testdata};
use iscc_vdb::codec::{compose, explain, CodecError, Iscc, IsccId, Kind, Realm, Unit, UnitType};
use serde_json::Value;

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, got {v}"))
}

fn u(v: &Value) -> u64 {
    v.as_u64()
        .unwrap_or_else(|| panic!("expected an integer, got {v}"))
}

#[test]
fn every_iscc_case_matches_iscc_core() {
    let data = json("codec-vectors.json");
    let cases = data["iscc"].as_array().unwrap();
    assert_eq!(cases.len(), 184);
    for case in cases {
        let input = s(&case["input"]);
        let iscc = Iscc::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(iscc.kind().as_str(), s(&case["kind"]), "{input}");
        assert_eq!(
            iscc.canonical().as_deref(),
            case["canonical"].as_str(),
            "canonical of {input}"
        );
        let first = iscc.first();
        let h = first.header();
        assert_eq!(
            u64::from(h.main_type.code()),
            u(&case["maintype"]),
            "{input}"
        );
        assert_eq!(h.main_type.name(), s(&case["maintype_name"]), "{input}");
        assert_eq!(u64::from(h.sub_type), u(&case["subtype"]), "{input}");
        assert_eq!(first.unit_type().sub_type_name(), s(&case["subtype_name"]));
        assert_eq!(u64::from(h.version), u(&case["version"]), "{input}");
        assert_eq!(u64::from(h.length), u(&case["length_field"]), "{input}");
        assert_eq!(first.bit_length() as u64, u(&case["bit_length"]), "{input}");
        assert_eq!(first.unit_type().name(), s(&case["unit_type"]), "{input}");
        assert_eq!(
            u64::from(first.unit_type().code()),
            u(&case["unit_type_code"])
        );
        assert_eq!(hex(&h.encode().unwrap()), s(&case["header_hex"]), "{input}");
        assert_eq!(hex(first.body()), s(&case["body_hex"]), "{input}");
        if iscc.kind() != Kind::Sequence {
            assert_eq!(first.type_id(), s(&case["type_id"]), "{input}");
            assert_eq!(
                iscc_vdb::codec::explain_string(first),
                s(&case["explain"]),
                "{input}"
            );
        }
        // The unit type name parses back.
        assert_eq!(
            s(&case["unit_type"]).parse::<UnitType>().unwrap(),
            first.unit_type()
        );

        let units = iscc.units();
        let expected = case["units"].as_array().unwrap();
        assert_eq!(units.len(), expected.len(), "units of {input}");
        for (got, want) in units.iter().zip(expected) {
            assert_eq!(got.to_string(), s(&want["unit"]), "{input}");
            assert_eq!(got.unit_type().name(), s(&want["unit_type"]));
            assert_eq!(got.bit_length() as u64, u(&want["bit_length"]));
            assert_eq!(hex(got.body()), s(&want["body_hex"]));
            // Each unit string parses back to the same unit.
            assert_eq!(&Unit::parse(s(&want["unit"])).unwrap(), got);
        }

        // The explain JSON carries the same fields as iscc-core's vector.
        let ex = explain(input, &iscc);
        for key in [
            "kind",
            "canonical",
            "maintype",
            "maintype_name",
            "subtype",
            "subtype_name",
            "version",
            "length_field",
            "bit_length",
            "unit_type",
            "unit_type_code",
            "header_hex",
            "body_hex",
            "units",
            "type_id",
            "explain",
        ] {
            assert_eq!(ex.get(key), case.get(key), "explain field {key} of {input}");
        }

        // Canonical strings are a fixed point.
        if let Some(canonical) = iscc.canonical() {
            let again = Iscc::parse(&canonical).unwrap();
            assert_eq!(again.canonical().as_deref(), Some(canonical.as_str()));
        }
    }
}

#[test]
fn every_iscc_id_case_matches_iscc_core() {
    let data = json("codec-vectors.json");
    let cases = data["iscc_id"].as_array().unwrap();
    assert_eq!(cases.len(), 57);
    let mut v1 = 0;
    for case in cases {
        let input = s(&case["iscc_id"]);
        let iscc = Iscc::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(iscc.kind(), Kind::Id);
        let c = iscc.first();
        assert_eq!(c.unit_type().name(), s(&case["unit_type"]));
        assert_eq!(c.bit_length() as u64, u(&case["bit_length"]));
        assert_eq!(hex(&c.header().encode().unwrap()), s(&case["header_hex"]));
        assert_eq!(hex(c.body()), s(&case["body_hex"]));
        assert_eq!(iscc_vdb::codec::explain_string(c), s(&case["explain"]));
        let ex = explain(input, &iscc);
        assert_eq!(ex["iscc_id"]["u64"], case["u64"], "{input}");
        assert_eq!(u64::from(c.header().version), u(&case["version"]));
        if u(&case["version"]) == 1 {
            v1 += 1;
            let id = IsccId::parse(input).unwrap();
            assert_eq!(id.value(), u(&case["u64"]));
            assert_eq!(u64::from(id.realm().id()), u(&case["realm"]));
            assert_eq!(id.timestamp_us(), u(&case["timestamp_us"]));
            assert_eq!(u64::from(id.hub_id()), u(&case["hub_id"]));
            assert_eq!(id.iso_time(), s(&case["iso_time"]));
            assert_eq!(id.to_string(), input);
            for key in ["realm", "timestamp_us", "hub_id", "iso_time"] {
                assert_eq!(ex["iscc_id"][key], case[key], "{key} of {input}");
            }
            // Both constructors give the same ID.
            let realm = Realm::new(id.realm().id()).unwrap();
            assert_eq!(IsccId::from_u64(id.value(), realm), id);
            let parts = IsccId::from_parts(id.timestamp_us(), id.hub_id(), realm).unwrap();
            assert_eq!(parts, id);
        } else {
            // Legacy v0 IDs parse as ISCCs but are refused as keys.
            assert_eq!(ex["iscc_id"]["counter"], case["counter"], "{input}");
            match IsccId::parse(input) {
                Err(CodecError::InvalidIsccId { why, .. }) => {
                    assert!(why.contains("legacy ISCC-ID v0"), "{why}")
                }
                other => panic!("v0 {input} accepted as key: {other:?}"),
            }
        }
    }
    assert_eq!(v1, 48);
}

#[test]
fn every_invalid_case_is_rejected_with_a_reason() {
    let data = json("codec-vectors.json");
    let cases = data["invalid"].as_array().unwrap();
    assert_eq!(cases.len(), 10);
    for case in cases {
        let input = s(&case["input"]);
        let err = Iscc::parse(input).expect_err(input);
        let message = err.to_string();
        assert!(message.contains("invalid ISCC"), "{input}: {message}");
        assert!(IsccId::parse(input).is_err(), "{input}");
        assert!(Unit::parse(input).is_err(), "{input}");
    }
}

#[test]
fn invalid_cases_name_the_problem() {
    let expect = [
        (
            "ISCC:LAAAAAAAAAAAAAAAAA",
            "SubType 8 is not defined for MainType ISCC",
        ),
        ("ISCC:EAAYW3CSFZQI7", "padding bits"),
        ("ISCX:EAAYW3CSFZQI75D2", "unknown scheme \"ISCX\""),
        ("ISCC:EAAYW3CSFZQI75D1", "character '1' at position 21"),
        (
            "ISCC:AAIQAAAAAAAAAAAA",
            "Version 1 is not defined for MainType META",
        ),
        (
            "ISCC:MAIQAAAAAAAAAAAAAA",
            "ISCC-ID v1 body is always 64 bits",
        ),
        (
            "ISCC:EAAYW3CSFZQI75D2AAAA",
            "2 bytes follow the last complete",
        ),
        ("ISCC:", "empty"),
        ("ISCC:ISCC:EAAYW3CSFZQI75D2", "prefix appears twice"),
        (
            "ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3A",
            "declares 32 body bytes but 27 follow",
        ),
    ];
    for (input, needle) in expect {
        let message = Iscc::parse(input).expect_err(input).to_string();
        assert!(message.contains(needle), "{input}: {message}");
    }
}

#[test]
fn iscc_core_gen_iscc_code_vectors_decompose_and_recompose() {
    let data = json("iscc-core-data.json");
    let cases = data["gen_iscc_code_v0"].as_object().unwrap();
    assert!(!cases.is_empty());
    for (name, case) in cases {
        let inputs: Vec<Unit> = case["inputs"][0]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| Unit::parse(s(v)).unwrap_or_else(|e| panic!("{name}: {e}")))
            .collect();
        let wide = case["inputs"]
            .get(1)
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let expected = s(&case["outputs"]["iscc"]);
        // Compose like the reference.
        let composed = compose(&inputs, wide).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(composed.to_string(), expected, "{name}");
        // Decompose: every unit is a prefix of an input unit of its type.
        let code = Iscc::parse(expected).unwrap();
        assert_eq!(code.kind(), Kind::Code, "{name}");
        let units = code.units();
        assert_eq!(units.len(), inputs.len(), "{name}");
        for unit in &units {
            assert!(
                inputs.iter().any(|i| unit.prefix_matches(i)),
                "{name}: {unit} is not a prefix of an input"
            );
        }
        // Re-compose from the decomposed units.
        assert_eq!(
            compose(&units, wide).unwrap().to_string(),
            expected,
            "{name}"
        );
    }
}

#[test]
fn corpus_records_parse_and_codes_decompose_into_unit_prefixes() {
    let text = std::fs::read_to_string(testdata("corpus.jsonl")).unwrap();
    let (mut records, mut codes, mut units_seen, mut both) = (0, 0, 0, 0);
    let mut last_id: Option<(u64, String)> = None;
    for line in text.lines() {
        let rec: Value = serde_json::from_str(line).unwrap();
        records += 1;
        let id = IsccId::parse(s(&rec["iscc_id"])).unwrap();
        assert_eq!(id.realm(), Realm::R0);
        assert_eq!(id.to_string(), s(&rec["iscc_id"]));
        if let Some((prev_ts, prev)) = &last_id {
            assert!(id.timestamp_us() >= *prev_ts, "{prev} then {id}");
        }
        last_id = Some((id.timestamp_us(), id.to_string()));

        let units: Option<Vec<Unit>> = rec["units"].as_array().map(|list| {
            list.iter()
                .map(|v| {
                    units_seen += 1;
                    let unit = Unit::parse(s(v)).unwrap_or_else(|e| panic!("{v}: {e}"));
                    assert_eq!(unit.bit_length() as u64, u(&rec["bits"]), "{v}");
                    unit.index_body().unwrap();
                    unit
                })
                .collect()
        });
        let decomposed = rec["iscc_code"].as_str().map(|code| {
            codes += 1;
            let parsed = Iscc::parse(code).unwrap_or_else(|e| panic!("{code}: {e}"));
            assert_eq!(parsed.kind(), Kind::Code);
            assert_eq!(parsed.canonical().as_deref(), Some(code));
            parsed.units()
        });
        if let (Some(units), Some(decomposed)) = (&units, &decomposed) {
            both += 1;
            assert_eq!(units.len(), decomposed.len(), "{line}");
            for d in decomposed {
                let full = units
                    .iter()
                    .find(|u| u.unit_type() == d.unit_type())
                    .unwrap_or_else(|| panic!("{d} has no unit of its type in {line}"));
                assert!(d.prefix_matches(full) && d.bit_length() <= full.bit_length());
            }
            // The record's units compose to its code (WIDE when the code is).
            let wide = s(&rec["iscc_code"]).starts_with("ISCC:K4");
            assert_eq!(
                compose(units, wide).unwrap().to_string(),
                s(&rec["iscc_code"]),
                "{line}"
            );
        }
    }
    assert_eq!(records, 2000);
    assert_eq!(both, 1467);
    assert_eq!(codes, 1467 + 186);
    assert!(units_seen > 3000 - codes, "{units_seen}");
}
