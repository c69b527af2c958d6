//! The `iscc-vdb` binary: `explain` output and exit codes.
#![cfg(feature = "cli")]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iscc-vdb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run iscc-vdb");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn explain_prints_every_vector_like_iscc_core() {
    let data = common::json("codec-vectors.json");
    let cases = data["iscc"].as_array().unwrap();
    let inputs: Vec<&str> = cases.iter().map(|c| c["input"].as_str().unwrap()).collect();
    let out = run(&["explain", "--lines"], Some(&inputs.join("\n")));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), cases.len());
    for (got, case) in lines.iter().zip(cases) {
        for key in [
            "kind",
            "canonical",
            "unit_type",
            "bit_length",
            "units",
            "header_hex",
        ] {
            assert_eq!(got[key], case[key], "{key} of {}", case["input"]);
        }
    }
}

#[test]
fn explain_shows_iscc_id_fields() {
    let out = run(&["explain", "ISCC:MAIP777777777777"], None);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = &v[0]["iscc_id"];
    assert_eq!(id["realm"], 0);
    assert_eq!(id["hub_id"], 4095);
    assert_eq!(id["timestamp_us"], 4_503_599_627_370_495u64);
    assert_eq!(id["iso_time"], "2112-09-17T23:53:47.370495Z");
    assert_eq!(id["u64"], u64::MAX);
}

#[test]
fn explain_reports_bad_input_and_fails() {
    let out = run(
        &["explain", "ISCC:EAAYW3CSFZQI75D2", "ISCX:EAAYW3CSFZQI75D2"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["unit_type"], "CONTENT-TEXT-V0");
    assert!(v[1]["error"].as_str().unwrap().contains("unknown scheme"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ISCX"));
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(run(&["no-such-command"], None).status.code(), Some(2));
    assert!(run(&["--version"], None).status.success());
}
