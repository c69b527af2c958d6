//! Generates the C header `iscc_vdb.h` from `src/ffi/` with cbindgen.
//!
//! The header is always written to `$OUT_DIR/iscc_vdb.h`. The committed copy
//! `include/iscc_vdb.h` is written only when it is missing or when
//! `IVDB_UPDATE_HEADER=1` is set, so a build never edits tracked files
//! behind your back; the test `tests/header.rs` fails when the committed
//! header differs from the fresh one.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    // The shared library: a SONAME, and only the `ivdb_*` functions
    // exported (symbols of the statically linked dependencies — cxx's
    // bridge, usearch — stay local).
    if env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libiscc_vdb.so");
        println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-env-changed=IVDB_UPDATE_HEADER");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("cbindgen.toml is readable and valid");
    let version = env::var("CARGO_PKG_VERSION").expect("CARGO_PKG_VERSION");
    let part = |name: &str| env::var(name).expect("version part");
    config.after_includes = Some(format!(
        "\n/** Library version this header was generated for. */\n\
         #define IVDB_VERSION \"{version}\"\n\
         #define IVDB_VERSION_MAJOR {}\n\
         #define IVDB_VERSION_MINOR {}\n\
         #define IVDB_VERSION_PATCH {}\n",
        part("CARGO_PKG_VERSION_MAJOR"),
        part("CARGO_PKG_VERSION_MINOR"),
        part("CARGO_PKG_VERSION_PATCH"),
    ));

    let statuses = status_defines(&crate_dir.join("src/ffi/status.rs"));
    if let Some(after) = config.after_includes.as_mut() {
        after.push_str(&statuses);
    }

    let generated = out_dir.join("iscc_vdb.h");
    // Only the FFI module is the C API: parse it alone, not the crate
    // (cbindgen follows its `mod` declarations into the other files).
    let builder = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"));
    match builder.generate() {
        Ok(bindings) => {
            bindings.write_to_file(&generated);
        }
        Err(e) => panic!("cbindgen failed to generate iscc_vdb.h: {e}"),
    }

    let committed = crate_dir.join("include/iscc_vdb.h");
    let update = env::var("IVDB_UPDATE_HEADER").is_ok_and(|v| v == "1");
    if update || !committed.exists() {
        let fresh = fs::read(&generated).expect("generated header is readable");
        if fs::read(&committed).ok().as_deref() != Some(&fresh[..]) {
            fs::create_dir_all(crate_dir.join("include")).expect("create include/");
            fs::write(&committed, fresh).expect("write include/iscc_vdb.h");
        }
    }
}

/// The `#define`s of the status codes, from the one list in
/// `src/ffi/status.rs` (the `statuses!` invocation: `///` doc lines, then
/// `NAME = number` or `NAME = number <= Kind,`). A macro defines the Rust
/// constants, which cbindgen cannot see, so the header's come from here.
fn status_defines(path: &std::path::Path) -> String {
    let text = fs::read_to_string(path).expect("src/ffi/status.rs is readable");
    let body = text
        .split_once("\nstatuses! {\n")
        .expect("status.rs invokes statuses! { … }")
        .1;
    let body = body
        .split_once("\n}\n")
        .expect("statuses! { … } is closed")
        .0;
    let mut out = String::from("\n");
    let mut doc: Vec<&str> = Vec::new();
    for line in body.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.strip_prefix(' ').unwrap_or(d));
        } else if let Some((name, rest)) = line.split_once(" = ") {
            let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
            assert!(!number.is_empty(), "status {name}: no number in `{line}`");
            out.push_str("/**\n");
            for d in doc.drain(..) {
                out.push_str(&format!(" * {d}\n").replace(" * \n", " *\n"));
            }
            out.push_str(&format!(" */\n#define {name} {number}\n\n"));
        } else if !line.is_empty() {
            panic!("status.rs: unexpected line in statuses!: `{line}`");
        }
    }
    out
}
