#!/usr/bin/env bash
# Run iscc-search's own server tests (test_server_{indexes,assets,search,auth}.py
# of a checkout's tests/ directory, given as the first argument; the files are
# not part of this repository) unchanged against `iscc-vdb serve --root`:
# they are linked into a scratch directory beside the adapter conftest of
# iscc_search_server/, which loads iscc-search's own conftest as the plugin
# `iscc_search_conftest` for its sample fixtures and replaces the test client.
# Further arguments go to pytest. Needs iscc-search, httpx and pytest in the
# Python used (PYTHON, default python3) and the server binary (ISCC_VDB_BIN,
# default target/debug/iscc-vdb).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tests="$(cd "${1:?usage: run_iscc_search_tests.sh ISCC_SEARCH_TESTS_DIR [pytest args...]}" && pwd)"
shift
export ISCC_VDB_BIN="${ISCC_VDB_BIN:-$here/../../../target/debug/iscc-vdb}"
[ -x "$ISCC_VDB_BIN" ] || { echo "run_iscc_search_tests: $ISCC_VDB_BIN is missing (cargo build first)" >&2; exit 1; }
ISCC_VDB_BIN="$(cd "$(dirname "$ISCC_VDB_BIN")" && pwd)/$(basename "$ISCC_VDB_BIN")"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cp "$here/iscc_search_server/conftest.py" "$scratch/conftest.py"
ln -s "$tests/conftest.py" "$scratch/iscc_search_conftest.py"
files=()
for name in test_server_indexes.py test_server_assets.py test_server_search.py test_server_auth.py; do
    ln -s "$tests/$name" "$scratch/$name"
    files+=("$name")
done
cd "$scratch"
if [ "$#" -eq 0 ]; then set -- "${files[@]}"; fi
PYTHONPATH="$scratch${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m pytest \
    -p no:cacheprovider -q -rA "$@"
