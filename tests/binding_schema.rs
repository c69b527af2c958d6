//! The bindings' typed views of the open options (Go's `Options`, Node's
//! `OpenOptions`) name exactly the fields of the engine's one options
//! grammar, so a field added or renamed in the engine cannot be forgotten
//! in a binding.

use std::collections::BTreeSet;

use iscc_vdb::engine::OPEN_OPTION_FIELDS;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The text of `{ … }` that follows `opening` in `text`.
fn block<'a>(text: &'a str, opening: &str) -> &'a str {
    let start = text
        .find(opening)
        .unwrap_or_else(|| panic!("`{opening}` not found"))
        + opening.len();
    let end = text[start..].find('}').expect("block closed") + start;
    &text[start..end]
}

fn engine_fields() -> BTreeSet<String> {
    OPEN_OPTION_FIELDS.iter().map(|f| f.to_string()).collect()
}

#[test]
fn go_options_carry_the_engine_fields() {
    let go = std::fs::read_to_string(root().join("bindings/go/isccvdb.go")).unwrap();
    let fields: BTreeSet<String> = block(&go, "type Options struct {")
        .lines()
        .filter_map(|l| l.split("json:\"").nth(1))
        .map(|tag| tag.split([',', '"']).next().unwrap().to_string())
        .collect();
    assert_eq!(fields, engine_fields());
}

#[test]
fn node_open_options_carry_the_engine_fields() {
    let ts = std::fs::read_to_string(root().join("bindings/node/index.d.ts")).unwrap();
    let fields: BTreeSet<String> = block(&ts, "export interface OpenOptions {")
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("/*") && !l.starts_with('*') && !l.starts_with("//"))
        .filter_map(|l| l.split_once('?').map(|(name, _)| name.trim().to_string()))
        .filter(|name| name != "readOnly")
        .collect();
    assert_eq!(fields, engine_fields());
}
