# Sourced by the Milvus scripts: `healthy URL` is 0 when URL answers 200
# within 2 s (Milvus's /healthz).
healthy() {
    python3 - "$1" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}
