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
# shellcheck source=tests/contract/common.sh
. "$ROOT/tests/contract/common.sh"
ensure_schemathesis "$VENV" "$ST_VERSION"

TMP=$(mktemp -d)
SERVER_PID=""
cleanup() {
    stop_server
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
    start_server "$TMP/$name.log" "$BIN" --path "$dir" serve "$@"
    local addr=$SERVER_ADDR
    local auth=()
    if [ -n "${API_KEY:-}" ]; then auth=(-H "X-API-Key: $API_KEY"); fi
    echo "== contract ($name): schemathesis $ST_VERSION against $addr/openapi.json"
    (cd "$ROOT/tests/contract" && IVDB_CORPUS="$CORPUS" SCHEMATHESIS_HOOKS=hooks \
        "$VENV/bin/st" run "$addr/openapi.json" "${auth[@]}" \
        --max-examples "$EXAMPLES" --seed "$SEED" --no-color --workers 1) \
        || { echo "contract ($name): schemathesis found failures" >&2; exit 1; }
    stop_server
}

API_KEY="" run_against open
API_KEY="contract-key-42" ISCC_VDB_API_KEY="contract-key-42" run_against keyed
echo "contract: 0 server errors, 0 contract mismatches"
