//! The committed C header equals a fresh cbindgen generation, and compiles
//! as C and C++ with warnings as errors.

use std::path::Path;
use std::process::Command;

const FRESH: &str = include_str!(concat!(env!("OUT_DIR"), "/iscc_vdb.h"));

fn committed() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/iscc_vdb.h");
    std::fs::read_to_string(&path).expect("include/iscc_vdb.h exists")
}

#[test]
fn committed_header_is_current() {
    assert!(
        committed() == FRESH,
        "include/iscc_vdb.h differs from the header cbindgen generates now; \
         regenerate it with `IVDB_UPDATE_HEADER=1 cargo build` and commit it"
    );
}

#[test]
fn header_declares_version_macros_from_cargo_toml() {
    let h = committed();
    assert!(h.contains(&format!(
        "#define IVDB_VERSION \"{}\"",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(h.contains(&format!(
        "#define IVDB_VERSION_MAJOR {}",
        env!("CARGO_PKG_VERSION_MAJOR")
    )));
    assert!(h.contains(&format!(
        "#define IVDB_ABI_VERSION {}",
        iscc_vdb::ffi::IVDB_ABI_VERSION
    )));
    assert!(h.contains("#ifndef ISCC_VDB_H"));
    assert!(h.contains("extern \"C\""));
}

#[test]
fn header_compiles_as_c_and_cpp() {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    for (compiler, lang, std) in [("cc", "c", "-std=c99"), ("c++", "c++", "-std=c++11")] {
        let out = Command::new(compiler)
            .args(["-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-pedantic", std, "-x", lang])
            .arg("-I")
            .arg(&include)
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(b"#include \"iscc_vdb.h\"\nint main(void) { return ivdb_abi_version() == IVDB_ABI_VERSION ? 0 : 1; }\n")?;
                child.wait_with_output()
            })
            .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
        assert!(
            out.status.success(),
            "{compiler} rejects iscc_vdb.h:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn version_functions_match_the_crate() {
    let v = unsafe_free_version();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        iscc_vdb::ffi::ivdb_abi_version(),
        iscc_vdb::ffi::IVDB_ABI_VERSION
    );
}

fn unsafe_free_version() -> String {
    let ptr = iscc_vdb::ffi::ivdb_version();
    // SAFETY: ivdb_version returns a pointer to a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(ptr) }
        .to_str()
        .expect("UTF-8")
        .to_string()
}
