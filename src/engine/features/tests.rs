use serde_json::{json, Map, Value};

use super::*;

fn entry(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn b64(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

fn err(v: Value) -> String {
    features_of(&entry(v), "entry 3").unwrap_err().to_string()
}

#[test]
fn the_iscc_tools_form_is_read_with_its_segments() {
    let a = [1u8, 2, 3, 4, 5, 6, 7, 8];
    let b = [9u8; 8];
    let sets = features_of(
        &entry(json!({"features": [{
            "maintype": "semantic", "subtype": "text", "version": 0,
            "simprints": [b64(&a), b64(&b)], "offsets": [0, 1024], "sizes": [1024, 980],
            "contents": ["never indexed", "nor this"]
        }]})),
        "entry 0",
    )
    .unwrap();
    assert_eq!(sets.len(), 1);
    let s = &sets[0];
    assert_eq!(s.kind.to_string(), "SEMANTIC-TEXT-V0");
    assert_eq!(s.bits, 64);
    assert_eq!(s.simprints, vec![a.to_vec(), b.to_vec()]);
    assert_eq!(s.offsets, Some(vec![0, 1024]));
    assert_eq!(s.sizes, Some(vec![1024, 980]));
    // The canonical form reads back to the same set, without `contents`.
    let canonical = s.to_json();
    assert!(canonical.get("contents").is_none());
    let again = features_of(&entry(json!({ "features": [canonical] })), "entry 0").unwrap();
    assert_eq!(again, sets);
}

#[test]
fn the_iscc_search_form_and_spelling_are_read_as_the_same_type() {
    let p = [0xABu8; 16];
    let padded = BASE64URL.encode(&p);
    assert!(padded.ends_with('='));
    let sets = features_of(
        &entry(json!({"simprints": {"semantic_text_v0": [
            {"simprint": b64(&p), "offset": 0, "size": 10},
            {"simprint": padded, "offset": 10, "size": 5}
        ], "CONTENT_IMAGE_V1": [{"simprint": b64(&[1u8; 32])}]}})),
        "entry 0",
    )
    .unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        sets[0].kind,
        SimprintType::parse("SEMANTIC-TEXT-V0").unwrap()
    );
    assert_eq!(sets[0].bits, 128);
    assert_eq!(sets[0].simprints, vec![p.to_vec(), p.to_vec()]);
    assert_eq!(sets[0].offsets, Some(vec![0, 10]));
    assert_eq!(sets[0].sizes, Some(vec![10, 5]));
    // Without segments on every chunk there are none.
    assert_eq!(sets[1].kind.to_string(), "CONTENT-IMAGE-V1");
    assert_eq!((sets[1].bits, &sets[1].offsets), (256, &None));
    // No features at all: none, and nothing to check.
    assert!(features_of(&entry(json!({"iscc_code": "x"})), "e")
        .unwrap()
        .is_empty());
    assert!(
        features_of(&entry(json!({"features": [], "simprints": null})), "e")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn bad_features_are_errors_naming_the_entry_the_type_and_the_position() {
    let short = b64(&[1u8; 8]);
    let long = b64(&[1u8; 16]);
    let tools = |simprints: Value| json!({"features": [{"maintype": "semantic", "subtype": "text", "simprints": simprints}]});
    let e = err(tools(json!([short, long])));
    assert!(
        e.contains("entry 3")
            && e.contains("features[0]")
            && e.contains("simprint 1 of type SEMANTIC-TEXT-V0 has 128 bits")
            && e.contains("simprint 0 has 64"),
        "{e}"
    );
    let e = err(tools(json!(["not base64!"])));
    assert!(
        e.contains("simprints[0]") && e.contains("not base64url"),
        "{e}"
    );
    let e = err(tools(json!([b64(&[1u8; 5])])));
    assert!(
        e.contains("has 40 bits") && e.contains("never truncated"),
        "{e}"
    );
    let e = err(tools(json!([b64(&[1u8; 40])])));
    assert!(e.contains("has 320 bits"), "{e}");
    let e = err(tools(json!([7])));
    assert!(
        e.contains("simprints[0] must be a string, not a number"),
        "{e}"
    );
    let e = err(
        json!({"features": [{"maintype": "semantic", "subtype": "text",
        "simprints": [short], "offsets": [0, 5]}]}),
    );
    assert!(e.contains("offsets has 2 values for 1 simprints"), "{e}");
    let e = err(
        json!({"features": [{"maintype": "semantic", "subtype": "text",
        "simprints": [short], "sizes": [-1]}]}),
    );
    assert!(e.contains("sizes[0] must be a whole number"), "{e}");
    let e = err(json!({"features": [{"subtype": "text", "simprints": []}]}));
    assert!(e.contains("maintype is missing"), "{e}");
    let e =
        err(json!({"features": [{"maintype": "sem antic", "subtype": "text", "simprints": []}]}));
    assert!(e.contains("not a name of letters and digits"), "{e}");
    let e = err(json!({"features": {"maintype": "semantic"}}));
    assert!(
        e.contains("features must be a list of feature sets, not an object"),
        "{e}"
    );
    let e = err(json!({"simprints": {"SEMANTIC_TEXT": []}}));
    assert!(
        e.contains("simprints.SEMANTIC_TEXT") && e.contains("MAINTYPE-SUBTYPE-V"),
        "{e}"
    );
    let e = err(json!({"simprints": {"SEMANTIC_TEXT_V0": [{"offset": 1}]}}));
    assert!(e.contains("[0].simprint is missing"), "{e}");
    // One type given in both forms (or twice in one) is ambiguous.
    let e = err(json!({
        "features": [{"maintype": "semantic", "subtype": "text", "simprints": [short]}],
        "simprints": {"SEMANTIC_TEXT_V0": [{"simprint": short}]}
    }));
    assert!(e.contains("SEMANTIC-TEXT-V0 are given twice"), "{e}");
}

#[test]
fn whole_numbers_written_as_floats_are_read_exactly() {
    // Between 2^51 and 2^53 a parser off by one unit in the last place
    // turns `N.0` into `N.5` (serde_json needs `float_roundtrip`).
    let parsed: Value = serde_json::from_str("4340673671867662.0").unwrap();
    assert_eq!(whole(&parsed), Some(4_340_673_671_867_662));
    let half: Value = serde_json::from_str("4340673671867662.5").unwrap();
    assert_eq!(whole(&half), None);
    // iscc-search's bare simprints (its query form) read as objects do.
    let bare = features_of(
        &entry(json!({"simprints": {"CONTENT_TEXT_V0": [b64(&[1; 8])]}})),
        "q",
    )
    .unwrap();
    assert_eq!(bare[0].simprints, vec![vec![1u8; 8]]);
}
