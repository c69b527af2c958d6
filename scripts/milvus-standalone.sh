#!/usr/bin/env bash
# A Milvus standalone server on loopback for the Milvus backend's tests and
# benchmarks, from the package registry only: the PyPI wheel `milvus==2.3.5`
# carries the server binary (with its embedded etcd and local storage).
#
#   scripts/milvus-standalone.sh start [DATA_DIR]   install if needed, start, wait for health
#   scripts/milvus-standalone.sh stop  [DATA_DIR]   stop the server started on DATA_DIR
#   scripts/milvus-standalone.sh status              0 when the server answers its health check
#
# DATA_DIR defaults to target/milvus-data (wiped on start: a test server
# starts empty). The server listens on 127.0.0.1:19530 (gRPC) and answers
# health on :9091. A start can fail (measured: 1 in 3 on 2 cores, the
# embedded etcd losing a race); start retries up to 3 times, each waiting up
# to 90 s for health, and prints the server log's tail when all fail.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${IVDB_MILVUS_VENV:-target/milvus-venv}
cmd=${1:-}
data=${2:-target/milvus-data}
health=http://127.0.0.1:9091/healthz

# shellcheck source=scripts/milvus-health.sh
. scripts/milvus-health.sh

# The server's processes: the wheel's launcher and the Milvus binary it
# runs from DATA_DIR (both are stopped).
stop_server() {
    local dir
    dir=$(cd "$data" 2>/dev/null && pwd) || return 0
    if [ -f "$dir/server.pid" ]; then
        kill "$(cat "$dir/server.pid")" 2>/dev/null || true
        rm -f "$dir/server.pid"
    fi
    pkill -f "$dir/bin/milvus" 2>/dev/null || true
    for _ in $(seq 1 30); do
        pgrep -f "$dir/bin/milvus" >/dev/null 2>&1 || return 0
        sleep 1
    done
    pkill -9 -f "$dir/bin/milvus" 2>/dev/null || true
}

case "$cmd" in
start)
    if healthy "$health"; then
        echo "milvus-standalone: a server already answers on $health" >&2
        exit 0
    fi
    if [ ! -x "$venv/bin/milvus-server" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "milvus==2.3.5"
    fi
    for attempt in 1 2 3; do
        stop_server
        rm -rf "$data"
        mkdir -p "$data"
        dir=$(cd "$data" && pwd)
        nohup "$venv/bin/milvus-server" --data "$dir" >"$dir/server.log" 2>&1 &
        echo $! >"$dir/server.pid"
        for _ in $(seq 1 90); do
            if healthy "$health"; then
                echo "milvus-standalone: healthy on 127.0.0.1:19530 (attempt $attempt, data $dir)" >&2
                exit 0
            fi
            if ! kill -0 "$(cat "$dir/server.pid")" 2>/dev/null; then
                break
            fi
            sleep 1
        done
        echo "milvus-standalone: attempt $attempt did not become healthy" >&2
    done
    tail -n 30 "$data/server.log" >&2 || true
    stop_server
    echo "milvus-standalone: the server did not start (3 attempts); log: $data/server.log" >&2
    exit 1
    ;;
stop)
    stop_server
    ;;
status)
    healthy "$health"
    ;;
*)
    echo "usage: $0 start|stop|status [DATA_DIR]" >&2
    exit 2
    ;;
esac
