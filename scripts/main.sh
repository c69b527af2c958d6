#!/usr/bin/env bash
# Builds iscc-vdb (release) and runs the main job. For now: `iscc-vdb explain`
# on a sample ISCC-CODE and ISCC-ID. Extra arguments replace the samples.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked --release --bin iscc-vdb
if [ $# -eq 0 ]; then
    set -- ISCC:KACTIEESNL5A75D7RNWFELTAR72HUWPJ2X7CILQW4GAZR3AEPJ7WMVA ISCC:MAIGGGMBUD3TAUAR
fi
./target/release/iscc-vdb explain "$@"
