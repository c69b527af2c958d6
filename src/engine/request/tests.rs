//! The request grammar's tests.

use super::*;

const CODE: &str = "ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA";

fn parse(text: &str) -> Result<SearchRequest, EngineError> {
    let defaults = SearchParams {
        count: 7,
        exact: true,
        unit_threshold: None,
        ..SearchParams::default()
    };
    SearchRequest::from_json(text, &defaults, 50)
}

#[test]
fn object_parameters_win_over_the_callers_defaults() {
    let r = parse(&format!(r#"{{"iscc_code": "{CODE}"}}"#)).unwrap();
    assert_eq!((r.queries, r.batch), (vec![Query::code(CODE)], false));
    assert_eq!((r.params.count, r.params.exact), (7, true));
    let r = parse(&format!(
        r#"{{"iscc_codes": ["{CODE}"], "count": 3, "exact": false, "unit_threshold": 0.5}}"#
    ))
    .unwrap();
    assert!(r.batch);
    assert_eq!(
        (r.params.count, r.params.exact, r.params.unit_threshold),
        (3, false, Some(0.5))
    );
}

#[test]
fn an_array_of_query_objects_is_a_batch_with_the_callers_parameters() {
    let r = parse(&format!(
        r#"[{{"iscc_code": "{CODE}"}}, {{"units": ["U1", "U2"]}}]"#
    ))
    .unwrap();
    assert!(r.batch);
    assert_eq!(
        r.queries,
        vec![Query::code(CODE), Query::units(["U1", "U2"])]
    );
    assert_eq!(r.params.count, 7);
    assert!(parse("[]").unwrap().queries.is_empty());
}

#[test]
fn mistakes_name_the_field_and_keep_their_kind() {
    use crate::kind::ErrorKind;
    for (text, kind, needle) in [
        ("{", ErrorKind::InvalidJson, "invalid JSON"),
        ("7", ErrorKind::InvalidArgument, "JSON object"),
        (
            r#"{"iscc_code": "A", "size": 1}"#,
            ErrorKind::InvalidArgument,
            "`size`",
        ),
        (
            r#"{"iscc_code": "A", "count": 51}"#,
            ErrorKind::InvalidArgument,
            "count",
        ),
        (
            r#"[{"iscc_code": "A", "count": 5}]"#,
            ErrorKind::InvalidArgument,
            "queries[0]",
        ),
        (
            r#"[{"units": "U"}]"#,
            ErrorKind::InvalidArgument,
            "queries[0]: units",
        ),
        (r#"[3]"#, ErrorKind::InvalidArgument, "queries[0]"),
        (
            r#"{"units": ["U"], "iscc_code": "bad"}"#,
            ErrorKind::InvalidIscc,
            "iscc_code",
        ),
    ] {
        let e = parse(text).unwrap_err();
        assert_eq!(e.kind(), kind, "{text}: {e}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

#[test]
fn an_entry_is_a_query_whatever_else_it_holds() {
    let entry = serde_json::json!({"iscc_id": "X", "iscc_code": CODE, "title": "t"});
    assert_eq!(Query::of_entry(&entry).unwrap(), Query::code(CODE));
    assert!(Query::of_entry(&serde_json::json!({"units": [1]})).is_err());
}

#[test]
fn open_options_take_defaults_and_refuse_unknown_fields() {
    let d = IndexOptions::default();
    assert_eq!(IndexOptions::from_json(None, false).unwrap(), d);
    let o = IndexOptions::from_json(Some(r#"{"realm": 1, "max_dim": 128}"#), true).unwrap();
    assert_eq!(
        (o.realm, o.params.max_dim, o.read_only),
        (Some(1), 128, true)
    );
    assert_eq!(o.durable, d.durable);
    let e = IndexOptions::from_json(Some(r#"{"relam": 1}"#), false).unwrap_err();
    assert!(e.to_string().contains("relam"), "{e}");
}

const SIMPRINT: &str = "AAECAwQFBgc";

#[test]
fn features_are_one_query_alone_or_beside_one_code() {
    let features =
        format!(r#"[{{"maintype": "content", "subtype": "text", "simprints": ["{SIMPRINT}"]}}]"#);
    let alone = parse(&format!(
        r#"{{"features": {features}, "simprint_threshold": 0.9, "detail": true}}"#
    ))
    .unwrap();
    assert!(!alone.batch);
    assert_eq!(alone.queries.len(), 1);
    let q = &alone.queries[0];
    assert_eq!((q.iscc_code.as_deref(), q.units.as_deref()), (None, None));
    assert_eq!(q.features[0].kind.to_string(), "CONTENT-TEXT-V0");
    assert_eq!(q.features[0].simprints, vec![vec![0, 1, 2, 3, 4, 5, 6, 7]]);
    assert_eq!(alone.params.simprint_threshold, Some(0.9));
    assert!(alone.params.detail);
    // iscc-search's form, beside a code.
    let beside = parse(&format!(
        r#"{{"iscc_code": "{CODE}", "simprints": {{"CONTENT_TEXT_V0": [{{"simprint": "{SIMPRINT}"}}]}}}}"#
    ))
    .unwrap();
    assert_eq!(beside.queries[0].iscc_code.as_deref(), Some(CODE));
    assert_eq!(beside.queries[0].features, q.features);
    // In a batch of query objects.
    let batch = parse(&format!(
        r#"[{{"features": {features}}}, {{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7"}}, {{"iscc_code": "{CODE}"}}]"#
    ))
    .unwrap();
    assert_eq!(batch.queries[0].features, q.features);
    assert_eq!(batch.queries[1], Query::like("ISCC:MAIGGGMBT3LBUEH7"));
    assert_eq!(batch.queries[2], Query::code(CODE));
    // "More like this".
    let like = parse(r#"{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7", "count": 3}"#).unwrap();
    assert_eq!(like.queries, vec![Query::like("ISCC:MAIGGGMBT3LBUEH7")]);
    assert_eq!(like.params.count, 3);
    // It takes precedence over other query fields (as in iscc-search).
    let over = parse(&format!(
        r#"{{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7", "iscc_code": "{CODE}", "features": {features}}}"#
    ))
    .unwrap();
    assert_eq!(over.queries, like.queries);
    let over = parse(r#"[{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7", "units": []}]"#).unwrap();
    assert_eq!(over.queries, like.queries);
}

#[test]
fn feature_mistakes_name_the_field() {
    let features =
        format!(r#"[{{"maintype": "content", "subtype": "text", "simprints": ["{SIMPRINT}"]}}]"#);
    for (text, needle) in [
        (
            format!(r#"{{"iscc_codes": ["{CODE}", "{CODE}"], "features": {features}}}"#),
            "features go with one query",
        ),
        (r#"{"iscc_id": 5}"#.to_string(), "iscc_id: expected"),
        // iscc_id wins, but what beside it must still be well-formed.
        (
            r#"{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7", "units": -416}"#.to_string(),
            "units: expected",
        ),
        (
            r#"[{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7", "units": 5}]"#.to_string(),
            "queries[0]",
        ),
        (
            r#"{"features": [{"maintype": "content", "subtype": "text", "simprints": ["AA"]}]}"#
                .to_string(),
            "request body: features[0]",
        ),
        (
            format!(r#"{{"features": {features}, "simprint_threshold": 2}}"#),
            "simprint_threshold: expected a number from 0 to 1",
        ),
        (
            format!(r#"{{"features": {features}, "detail": "yes"}}"#),
            "detail: expected true or false",
        ),
        (
            r#"{"count": 3}"#.to_string(),
            "`features`, `simprints` or `iscc_id`",
        ),
        (r#"[{"title": "x"}]"#.to_string(), "unknown field `title`"),
    ] {
        let e = parse(&text).unwrap_err();
        assert_eq!(e.kind(), crate::kind::ErrorKind::InvalidArgument, "{text}");
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}

#[test]
fn a_queries_object_is_a_batch_with_its_own_parameters() {
    let r = parse(&format!(
        r#"{{"queries": [{{"iscc_code": "{CODE}"}}, {{"iscc_id": "ISCC:MAIGGGMBT3LBUEH7"}}],
            "detail": true, "simprint_threshold": 0.5, "count": 3}}"#
    ))
    .unwrap();
    assert!(r.batch);
    assert_eq!(
        r.queries,
        vec![Query::code(CODE), Query::like("ISCC:MAIGGGMBT3LBUEH7")]
    );
    assert_eq!(
        (r.params.count, r.params.detail, r.params.simprint_threshold),
        (3, true, Some(0.5))
    );
    for (text, needle) in [
        (r#"{"queries": []}"#.to_string(), "queries: empty array"),
        (
            r#"{"queries": 5}"#.to_string(),
            "queries: expected an array",
        ),
        (
            format!(r#"{{"queries": [{{"iscc_code": "{CODE}"}}], "iscc_code": "{CODE}"}}"#),
            "`iscc_code` belongs inside them",
        ),
        (
            r#"{"queries": [7]}"#.to_string(),
            "queries[0]: expected a query object",
        ),
    ] {
        let e = parse(&text).unwrap_err();
        assert!(e.to_string().contains(needle), "{text}: {e}");
    }
}
