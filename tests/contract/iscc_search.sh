#!/usr/bin/env bash
# iscc-search compatibility, against a real `iscc-vdb serve --root`:
#  1. iscc-search 0.3.3's own server tests (test_server_*.py from its PyPI
#     sdist), unchanged, through bindings/python/compat/run_iscc_search_tests.sh;
#  2. schemathesis driven by iscc-search's own OpenAPI document (from the
#     installed iscc-search package), checking that no answer is a server
#     error and every answer fits the document's response schemas.
#
# Needs target/debug/iscc-vdb (built by `cargo test`) and python3 with venv;
# iscc-search and its test tools go into target/iscc-search-venv, its
# sdist into target/iscc-search-src, schemathesis into target/contract-venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN="$ROOT/target/debug/iscc-vdb"
CORPUS="${IVDB_TESTDATA:-$ROOT/../shared/testdata}/corpus.jsonl"
VERSION=0.3.3
VENV="$ROOT/target/iscc-search-venv"
SRC="$ROOT/target/iscc-search-src"
ST_VENV="$ROOT/target/contract-venv"
ST_VERSION=4.32.5
EXAMPLES="${IVDB_CONTRACT_EXAMPLES:-60}"
SEED="${IVDB_CONTRACT_SEED:-20261125}"

[ -x "$BIN" ] || { echo "iscc-search compat: $BIN is missing (run cargo test first)" >&2; exit 1; }
if ! "$VENV/bin/python" -c "import iscc_search, httpx, pytest" 2>/dev/null \
    || [ "$("$VENV/bin/pip" show iscc-search 2>/dev/null | sed -n 's/^Version: //p')" != "$VERSION" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "iscc-search==$VERSION" httpx pytest
fi
if [ ! -f "$SRC/iscc_search-$VERSION/tests/test_server_search.py" ]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    "$VENV/bin/pip" download --quiet --disable-pip-version-check --no-deps --no-binary :all: \
        -d "$SRC" "iscc-search==$VERSION"
    tar -xzf "$SRC/iscc_search-$VERSION.tar.gz" -C "$SRC"
fi

echo "== iscc-search $VERSION's server tests against iscc-vdb serve --root"
PYTHON="$VENV/bin/python" ISCC_VDB_BIN="$BIN" \
    bash bindings/python/compat/run_iscc_search_tests.sh "$SRC/iscc_search-$VERSION/tests"

# shellcheck source=tests/contract/common.sh
. "$ROOT/tests/contract/common.sh"
ensure_schemathesis "$ST_VENV" "$ST_VERSION"
DOC=$("$VENV/bin/python" -c "import iscc_search, os; print(os.path.join(os.path.dirname(iscc_search.__file__), 'openapi', 'openapi.yaml'))")
TMP=$(mktemp -d)
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
# An index named as the document's examples ("default"), holding the corpus.
"$BIN" --path "$TMP/root/default" add --file "$CORPUS" --no-progress >/dev/null
start_server "$TMP/serve.log" "$BIN" serve --root "$TMP/root"
addr=$SERVER_ADDR
echo "== schemathesis $ST_VERSION: iscc-search's OpenAPI document against $addr"
# (From the scratch directory: schemathesis keeps a cache where it runs.)
(cd "$TMP" && "$ST_VENV/bin/st" run "$DOC" --url "$addr" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "$EXAMPLES" --seed "$SEED" --no-color --workers 1) \
    || { echo "iscc-search compat: schemathesis found failures" >&2; exit 1; }
echo "iscc-search compat: its server tests pass; 0 server errors, 0 schema mismatches"
