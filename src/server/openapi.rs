//! The OpenAPI document this server serves at `GET /openapi.json`: the
//! embedded template, made to state exactly what this server accepts —
//! its version, its limits (batch size, `count`), the realm of its
//! ISCC-IDs once fixed, and the `X-API-Key` requirement only when a key is
//! configured.

use serde_json::Value;

use super::Limits;

/// The template (tested: every route is in it).
const TEMPLATE: &str = include_str!("openapi.json");

/// ISCC-ID v1 of realm 0 or 1 (`MAI…`/`MEI…`: header `0110 000r 0001 0000`
/// then a 64-bit body, 16 base32 characters in all).
const ID_PATTERN: [&str; 2] = [
    "^([Ii][Ss][Cc][Cc]:)?[Mm][Aa][Ii][A-Pa-p][A-Za-z2-7]{12}$",
    "^([Ii][Ss][Cc][Cc]:)?[Mm][Ee][Ii][A-Pa-p][A-Za-z2-7]{12}$",
];

/// The document for a server with these settings.
pub(crate) fn document(api_key: bool, realm: Option<u8>, limits: &Limits) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(TEMPLATE) else {
        // A unit test parses the template; serve it verbatim rather than
        // fail in an untested build.
        return TEMPLATE.to_string();
    };
    doc["info"]["version"] = Value::from(crate::VERSION);
    if !api_key {
        without_key(&mut doc);
    }
    if let Some(pattern) = realm.and_then(|r| ID_PATTERN.get(usize::from(r))) {
        doc["components"]["schemas"]["IsccId"]["pattern"] = Value::from(*pattern);
    }
    set_limits(&mut doc, limits);
    doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"] =
        Value::from(error_codes());
    doc.to_string()
}

/// Drop the API key from a document of a server started without one: the
/// top-level requirement and the security schemes.
pub(crate) fn without_key(doc: &mut Value) {
    if let Some(obj) = doc.as_object_mut() {
        obj.remove("security");
    }
    if let Some(c) = doc["components"].as_object_mut() {
        c.remove("securitySchemes");
    }
}

/// Every error code a response may carry: the engine's kinds, then the
/// server's own (one spelling each; see `envelope.rs`).
pub(crate) fn error_codes() -> Vec<&'static str> {
    let mut codes: Vec<&str> = crate::engine::ErrorKind::ALL
        .iter()
        .map(|k| k.name())
        .collect();
    for code in super::envelope::ServerCode::ALL {
        if !codes.contains(&code.name()) {
            codes.push(code.name());
        }
    }
    codes
}

/// The template writes the default limits (10,000); put this server's.
fn set_limits(v: &mut Value, limits: &Limits) {
    match v {
        Value::Object(map) => {
            if map.get("maxItems").and_then(Value::as_u64) == Some(10_000) {
                map.insert("maxItems".into(), Value::from(limits.max_batch));
            }
            if let Some(count) = map.get_mut("properties").and_then(|p| p.get_mut("count")) {
                count["maximum"] = Value::from(limits.max_count);
            }
            for child in map.values_mut() {
                set_limits(child, limits);
            }
        }
        Value::Array(items) => {
            for child in items {
                set_limits(child, limits);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(api_key: bool, realm: Option<u8>) -> Value {
        let limits = Limits {
            max_batch: 77,
            max_count: 55,
            ..Limits::default()
        };
        serde_json::from_str(&document(api_key, realm, &limits)).unwrap()
    }

    #[test]
    fn the_template_lists_exactly_the_engine_and_server_error_codes() {
        // The served document's list is generated; the template's, which
        // readers of the source see, must say the same.
        let template: Value = serde_json::from_str(TEMPLATE).unwrap();
        let listed = &template["components"]["schemas"]["Error"]["properties"]["code"]["enum"];
        assert_eq!(listed, &Value::from(error_codes()));
        assert_eq!(
            doc(false, None)["components"]["schemas"]["Error"]["properties"]["code"]["enum"],
            Value::from(error_codes())
        );
    }

    #[test]
    fn the_document_names_every_route() {
        let doc = doc(true, None);
        assert_eq!(doc["info"]["version"], crate::VERSION);
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/add", "post"),
            ("/get/{id}", "get"),
            ("/get", "post"),
            ("/search", "post"),
            ("/remove/{id}", "delete"),
            ("/remove", "post"),
            ("/rebuild", "post"),
            ("/info", "get"),
            ("/explain/{iscc}", "get"),
            ("/save", "post"),
            ("/healthz", "get"),
            ("/readyz", "get"),
            ("/openapi.json", "get"),
        ] {
            assert!(
                paths.get(path).and_then(|p| p.get(method)).is_some(),
                "{method} {path} missing"
            );
        }
        assert_eq!(paths.len(), 13, "paths: {:?}", paths.keys());
    }

    #[test]
    fn the_document_states_this_servers_rules() {
        let keyed = doc(true, Some(1));
        assert!(keyed["security"].is_array());
        assert!(keyed["components"]["securitySchemes"]["ApiKey"].is_object());
        let pattern = keyed["components"]["schemas"]["IsccId"]["pattern"]
            .as_str()
            .unwrap();
        assert!(pattern.contains("[Mm][Ee][Ii]"), "{pattern}");
        let open = doc(false, None);
        assert!(open.get("security").is_none());
        assert!(open["components"].get("securitySchemes").is_none());
        let text = open.to_string();
        assert!(!text.contains("10000"), "every default limit replaced");
        let search = &open["paths"]["/search"]["post"]["requestBody"]["content"]
            ["application/json"]["schema"];
        assert_eq!(search["properties"]["count"]["maximum"], 55);
        // codes, units, features, simprints, "more like this" or a batch
        // of query objects.
        assert_eq!(search["anyOf"].as_array().unwrap().len(), 7);
        let add = &open["paths"]["/add"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["properties"]["entries"]["oneOf"][1];
        assert_eq!(add["maxItems"], 77);
    }
}
