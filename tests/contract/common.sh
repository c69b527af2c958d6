# Shared by the contract runs (sourced, not run): schemathesis in a virtual
# environment, and a server started in the background on a free port.

# ensure_schemathesis VENV VERSION: schemathesis VERSION in VENV (made anew
# when missing or another version).
ensure_schemathesis() {
    local venv=$1 version=$2
    if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$version"; then
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
    fi
}

# start_server LOG ARGS...: run `ARGS... --port 0` in the background with
# stderr to LOG; sets SERVER_PID and SERVER_ADDR (http://HOST:PORT), or
# exits naming the log when the server does not report an address.
start_server() {
    local log=$1
    shift
    "$@" --port 0 2>"$log" &
    SERVER_PID=$!
    SERVER_ADDR=""
    for _ in $(seq 1 100); do
        SERVER_ADDR=$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)
        [ -n "$SERVER_ADDR" ] && return 0
        sleep 0.1
    done
    cat "$log" >&2
    echo "contract: the server did not start" >&2
    exit 1
}

# stop_server: SIGTERM the server started last and wait for it.
stop_server() {
    if [ -n "${SERVER_PID:-}" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
