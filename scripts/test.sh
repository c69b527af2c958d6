#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting, lints, and
# all Rust tests (unit, integration incl. the C header check and the CLI,
# property tests against iscc-lib, doc tests). Later layers add their C, Go
# and Node runners here.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -d ../shared/testdata ] && [ -z "${IVDB_TESTDATA:-}" ]; then
    echo "test: ../shared/testdata is missing (set IVDB_TESTDATA to its path)" >&2
    exit 1
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets --all-features -- -D warnings
echo "== cargo test"
cargo test --locked --all-features
