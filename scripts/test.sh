#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: formatting, lints, all
# Rust tests (unit, integration incl. the C header check, the C programs
# under AddressSanitizer, the CLI, property tests against iscc-lib, doc
# tests, the Milvus backend's against a standalone server started here from
# PyPI's `milvus` wheel, the web page in headless Chromium), the REST
# contract fuzz (schemathesis from PyPI in a virtual environment under
# target/), iscc-search 0.3.3's own server tests and its OpenAPI document
# against `serve --root`, then the Go, Node and Python bindings' tests
# (and quick-starts) against the library cargo built.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --for-tests
if [ ! -d ../shared/testdata ] && [ -z "${IVDB_TESTDATA:-}" ]; then
    echo "test: ../shared/testdata is missing (set IVDB_TESTDATA to its path)" >&2
    exit 1
fi

# Each long step runs under a deadline: a hang fails the suite at once,
# naming the step, instead of running into CI's limit. (Normal durations on
# 2 cores: cargo test ~10 min with its builds, each binding's step < 2 min.)
bounded() {
    local secs=$1
    shift
    local rc=0
    timeout --kill-after=30 "$secs" "$@" || rc=$?
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        echo "test: '$*' did not finish within $secs s; stopped" >&2
    fi
    return "$rc"
}

# The suite builds once: incremental caches would only fill the disk (~3 GB).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets --all-features -- -D warnings
# The library without any feature (the leanest embedding: no CLI, server or
# Milvus backend) must be warning-free too.
cargo clippy --locked --lib --no-default-features -- -D warnings
echo "== Milvus standalone (the Milvus backend's tests run against it)"
bounded 600 bash scripts/milvus-standalone.sh start
trap 'bash scripts/milvus-standalone.sh stop' EXIT
export IVDB_MILVUS_URI=milvus://127.0.0.1:19530
echo "== cargo test"
# The web page's test drives Debian's chromium (scripts/setup.sh installs
# it); here it must run, not report that it could not.
IVDB_REQUIRE_BROWSER=1 bounded 2700 cargo test --locked --all-features
echo "== REST contract fuzz (schemathesis against the server's /openapi.json)"
bounded 900 bash tests/contract/run.sh
echo "== iscc-search compatibility (its server tests, its OpenAPI document)"
bounded 900 bash tests/contract/iscc_search.sh
echo "== go test (bindings/go)"
cargo build --locked --lib --quiet
# Go's build cache does not hash headers outside a package, so a binding
# compiled against an older include/iscc_vdb.h would be reused; the header's
# digest in CGO_CFLAGS (which the cache key includes) rebuilds it.
CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DIVDB_HEADER_SHA256=$(sha256sum include/iscc_vdb.h | cut -c1-16)"
export CGO_CFLAGS
if [ -n "$(cd bindings/go && gofmt -l .)" ]; then
    echo "test: gofmt would change: $(cd bindings/go && gofmt -l .)" >&2
    exit 1
fi
(cd bindings/go && go vet ./... && bounded 900 go test -count=1 ./...)
(cd examples/go && go run . >/dev/null)
echo "== node --test (bindings/node)"
(cd bindings/node && npm ci --no-audit --no-fund --loglevel=error && bounded 900 node --test)
node examples/node/quickstart.js >/dev/null
echo "== pytest (bindings/python)"
# A virtual environment under target/; the package installs as a user's
# would (pip install ./bindings/python), reusing the library built above.
venv=target/python-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
ISCC_VDB_LIB="$PWD/target/debug/libiscc_vdb.so" \
    "$venv/bin/pip" install --quiet --disable-pip-version-check "./bindings/python[test]"
(cd bindings/python && "../../$venv/bin/ruff" format --check . && "../../$venv/bin/ruff" check . \
    && "../../$venv/bin/mypy" && bounded 900 "../../$venv/bin/python" -m pytest -q)
"$venv/bin/python" examples/python/quickstart.py >/dev/null
