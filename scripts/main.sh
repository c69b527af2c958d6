#!/usr/bin/env bash
# The main job: build iscc-vdb (release), index the sample corpus into
# ./iscc-vdb-index (once), search it, then serve the index (the web page and
# the REST APIs) on 127.0.0.1:8000 until Ctrl-C / SIGTERM (which saves it).
# Arguments go to `iscc-vdb serve` (e.g. --port 9000 --api-key secret);
# MAIN_NO_SERVE=1 stops after the sample search.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked --release --bin iscc-vdb
bin=./target/release/iscc-vdb
export ISCC_VDB_PATH="${ISCC_VDB_PATH:-$PWD/iscc-vdb-index}"
corpus=../shared/testdata/corpus.jsonl
if [ ! -d "$ISCC_VDB_PATH/primary.lmdb" ]; then
    if [ -f "$corpus" ]; then
        echo "== indexing $corpus into $ISCC_VDB_PATH"
        "$bin" add --file "$corpus" --no-progress >/dev/null
    else
        echo "== $corpus not found: serving an empty index at $ISCC_VDB_PATH"
    fi
fi
if [ -d "$ISCC_VDB_PATH/primary.lmdb" ]; then
    echo "== iscc-vdb info"
    "$bin" info --format table
    sample=ISCC:KMCZDEXL5LFONF3PJVJ5XQYZSFQBCPHMRPC54LGM5QNZVBAP6BIM7XY
    echo "== iscc-vdb search --iscc-code $sample --count 5"
    "$bin" search --iscc-code "$sample" --count 5 --format table
fi
if [ -n "${MAIN_NO_SERVE:-}" ]; then
    exit 0
fi
echo "== iscc-vdb serve (Ctrl-C saves and stops); then open http://ADDRESS/ in a browser, or: curl -s http://ADDRESS/info"
exec "$bin" serve "$@"
