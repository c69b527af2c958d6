//! The C ABI from C: `tests/c/ffi_smoke.c` is compiled with
//! `-Wall -Wextra -Werror` as C and as C++, linked against the shared and
//! the static library, and run (under AddressSanitizer for the shared build:
//! no leak, no invalid access); `tests/c/ffi_lowlevel.c` (the low-level
//! index ABI) as C against the shared library under ASan.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::child::output_within;

/// Longest a C program of these tests may run (they take seconds; a hang
/// fails the test with the program's stacks instead of stalling the suite).
const PROGRAM_LIMIT: Duration = Duration::from_secs(300);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build the cdylib and staticlib (`cargo test` builds only the rlib), once
/// per test binary: the tests run in parallel and would otherwise queue
/// three builds on cargo's lock.
fn build_libraries() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(build_libraries_now).clone()
}

fn build_libraries_now() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo
        .args(["build", "--lib", "--quiet"])
        .current_dir(root())
        // A jobserver of whatever runs the suite is not this build's.
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO_MAKEFLAGS");
    let o = output_within(&mut cargo, Duration::from_secs(1800));
    assert!(
        o.status.success(),
        "cargo build --lib failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("debug");
    assert!(
        dir.join("libiscc_vdb.so").exists(),
        "no libiscc_vdb.so in {}",
        dir.display()
    );
    dir
}

fn compile(compiler: &str, lang: &str, out: &Path, link: &[&str], extra: &[&str]) {
    compile_source(compiler, lang, "tests/c/ffi_smoke.c", out, link, extra);
}

/// A C file of `tests/c/` built with cc.
fn compile_file(source: &str, out: &Path, link: &[&str], extra: &[&str]) {
    compile_source("cc", "c", source, out, link, extra);
}

fn compile_source(
    compiler: &str,
    lang: &str,
    source: &str,
    out: &Path,
    link: &[&str],
    extra: &[&str],
) {
    let mut cmd = Command::new(compiler);
    cmd.args(["-Wall", "-Wextra", "-Werror", "-g", "-x", lang])
        .arg(root().join(source))
        .args(["-x", "none"])
        .arg("-I")
        .arg(root().join("include"))
        .args(extra)
        .arg("-o")
        .arg(out)
        .args(link);
    let o = output_within(&mut cmd, PROGRAM_LIMIT);
    assert!(
        o.status.success(),
        "{compiler} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn run(exe: &Path, env: &[(&str, &str)]) {
    let corpus = common::testdata("corpus.jsonl");
    let stdout = run_args(exe, &[&corpus.to_string_lossy()], env);
    assert!(stdout.contains("all checks passed"));
}

/// Run a program with arguments; it must exit 0. Returns its stdout.
fn run_args(exe: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let o = output_within(
        Command::new(exe).args(args).envs(env.iter().copied()),
        PROGRAM_LIMIT,
    );
    assert!(
        o.status.success(),
        "{} failed:\nstdout:\n{}\nstderr:\n{}",
        exe.display(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn c_program_against_shared_and_static_library() {
    let lib = build_libraries();
    let tmp = tempfile::tempdir().unwrap();
    let libdir = lib.to_string_lossy().into_owned();
    let rpath = format!("-Wl,-rpath,{libdir}");
    let dynamic = ["-L", &libdir, "-liscc_vdb", &rpath, "-lpthread"];
    // C and C++ against the shared library, under AddressSanitizer.
    for (compiler, lang, name) in [("cc", "c", "smoke_c"), ("c++", "c++", "smoke_cpp")] {
        let exe = tmp.path().join(name);
        compile(
            compiler,
            lang,
            &exe,
            &dynamic,
            &["-fsanitize=address", "-fno-omit-frame-pointer"],
        );
        run(&exe, &[("ASAN_OPTIONS", "detect_leaks=1")]);
    }
    // The JSON entry points under mutation, briefly (a long run is a
    // manual step: `ffi_json_fuzz SECONDS [SEED]`).
    let exe = tmp.path().join("json_fuzz");
    compile_file(
        "tests/c/ffi_json_fuzz.c",
        &exe,
        &dynamic,
        &["-fsanitize=address", "-fno-omit-frame-pointer"],
    );
    let out = run_args(&exe, &["2", "7"], &[("ASAN_OPTIONS", "detect_leaks=1")]);
    assert!(out.starts_with("fuzz: "), "{out}");
    // The low-level index ABI (sharded and unit), under AddressSanitizer.
    let exe = tmp.path().join("lowlevel");
    compile_file(
        "tests/c/ffi_lowlevel.c",
        &exe,
        &dynamic,
        &["-fsanitize=address", "-fno-omit-frame-pointer"],
    );
    let dir = tmp.path().join("lowlevel-indexes");
    let out = run_args(
        &exe,
        &[&dir.to_string_lossy()],
        &[("ASAN_OPTIONS", "detect_leaks=1")],
    );
    assert!(out.contains("all checks passed"), "{out}");
    // C against the static library.
    let exe = tmp.path().join("smoke_static");
    let archive = lib.join("libiscc_vdb.a").to_string_lossy().into_owned();
    compile(
        "cc",
        "c",
        &exe,
        &[&archive, "-lstdc++", "-lpthread", "-ldl", "-lm"],
        &[],
    );
    run(&exe, &[]);
}

#[test]
fn shared_library_exports_only_ivdb_symbols_and_has_a_soname() {
    let lib = build_libraries().join("libiscc_vdb.so");
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&lib)
        .output()
        .expect("run nm");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    assert!(names.contains(&"ivdb_open") && names.contains(&"ivdb_search"));
    let foreign: Vec<&&str> = names.iter().filter(|n| !n.starts_with("ivdb_")).collect();
    assert!(foreign.is_empty(), "exported non-ivdb symbols: {foreign:?}");
    let out = Command::new("readelf")
        .arg("-d")
        .arg(&lib)
        .output()
        .expect("run readelf");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Library soname: [libiscc_vdb.so]"));
}

#[test]
fn c_example_builds_with_make_and_runs() {
    let lib = build_libraries();
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("search_jsonl");
    let out = output_within(
        Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(root().join("examples/c"))
            .arg(format!("LIBDIR={}", lib.display()))
            .arg(format!("ROOT={}", root().display()))
            .arg("search_jsonl")
            .env("MAKEFLAGS", ""),
        PROGRAM_LIMIT,
    );
    assert!(
        out.status.success(),
        "make failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(root().join("examples/c/search_jsonl"), &exe).unwrap();
    let corpus = common::testdata("corpus.jsonl");
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&corpus)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let code = first["iscc_code"].as_str().unwrap();
    let o = output_within(
        Command::new(&exe)
            .arg(tmp.path().join("index"))
            .arg(&corpus)
            .arg(code)
            .arg("3"),
        PROGRAM_LIMIT,
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("added 2000 entries (0 rejected)"),
        "{stdout}"
    );
    assert!(
        stdout.contains(first["iscc_id"].as_str().unwrap()),
        "{stdout}"
    );
    // The index was saved by ivdb_close: a second run reopens it (re-adding
    // identical entries changes nothing) and finds the same.
    let o = output_within(
        Command::new(&exe)
            .arg(tmp.path().join("index"))
            .arg(&corpus)
            .arg("ISCC:NOT-AN-ISCC"),
        PROGRAM_LIMIT,
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("IVDB_INVALID_ISCC"));
}
