#!/usr/bin/env bash
# REST contract fuzz: schemathesis, driven by the server's own
# /openapi.json, against a real `iscc-vdb serve` holding the shared corpus —
# once without an API key, once with one. Passes only with 0 server errors
# and 0 contract mismatches (every check schemathesis has: status codes,
# response schemas, valid data accepted, invalid data rejected, auth).
#
# Needs target/debug/iscc-vdb (built by `cargo test`) and python3 with venv;
# schemathesis is installed into target/contract-venv from PyPI.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BIN="$ROOT/target/debug/iscc-vdb"
CORPUS="${IVDB_TESTDATA:-$ROOT/../shared/testdata}/corpus.jsonl"
VENV="$ROOT/target/contract-venv"
ST_VERSION=4.32.5
EXAMPLES="${IVDB_CONTRACT_EXAMPLES:-60}"
SEED="${IVDB_CONTRACT_SEED:-20261125}"

[ -x "$BIN" ] || { echo "contract: $BIN is missing (run cargo test first)" >&2; exit 1; }
[ -f "$CORPUS" ] || { echo "contract: $CORPUS is missing" >&2; exit 1; }
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$ST_VERSION"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# run_against NAME [serve options...]: a fresh index of the corpus, served
# on a free port, fuzzed through its own document.
run_against() {
    local name=$1
    shift
    local dir="$TMP/$name"
    "$BIN" --path "$dir" add --file "$CORPUS" --no-progress >/dev/null
    "$BIN" --path "$dir" serve --port 0 "$@" 2>"$TMP/$name.log" &
    SERVER_PID=$!
    local addr=""
    for _ in $(seq 1 100); do
        addr=$(grep -o 'http://[0-9.:]*' "$TMP/$name.log" | head -1 || true)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || { cat "$TMP/$name.log" >&2; echo "contract: the server did not start" >&2; exit 1; }
    local auth=()
    if [ -n "${API_KEY:-}" ]; then auth=(-H "X-API-Key: $API_KEY"); fi
    echo "== contract ($name): schemathesis $ST_VERSION against $addr/openapi.json"
    (cd "$ROOT/tests/contract" && IVDB_CORPUS="$CORPUS" SCHEMATHESIS_HOOKS=hooks \
        "$VENV/bin/st" run "$addr/openapi.json" "${auth[@]}" \
        --max-examples "$EXAMPLES" --seed "$SEED" --no-color --workers 1) \
        || { echo "contract ($name): schemathesis found failures" >&2; exit 1; }
    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

API_KEY="" run_against open
API_KEY="contract-key-42" ISCC_VDB_API_KEY="contract-key-42" run_against keyed
echo "contract: 0 server errors, 0 contract mismatches"
