#!/usr/bin/env bash
# Run iscc-usearch's own tests (a checkout's tests/ directory, given as the
# first argument; the files are not part of this repository) against
# iscc_vdb's classes: the `iscc_usearch` adapter beside this script comes
# first on the import path, so only the import changes. Further arguments
# go to pytest (e.g. tests/test_sharded_nphd.py -k search). Needs iscc_vdb
# and pytest in the Python used (PYTHON, default python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tests="${1:?usage: run_iscc_usearch_tests.sh ISCC_USEARCH_TESTS_DIR [pytest args...]}"
shift
cd "$tests"
PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m pytest -p no:cacheprovider -q -rA "$@"
