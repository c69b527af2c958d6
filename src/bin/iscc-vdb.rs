//! The `iscc-vdb` command-line tool; see [`iscc_vdb::cli`].

fn main() -> std::process::ExitCode {
    iscc_vdb::cli::main()
}
