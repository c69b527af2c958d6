#!/usr/bin/env bash
# A Milvus cluster on loopback, every role a process of its own, from the
# package registries only: etcd from Debian (`etcd-server`), Kafka 3.9 in
# KRaft mode from Maven Central (its jars fetched by `mvn`), the Milvus
# roles from the PyPI wheel `milvus==2.3.5` (the binary that also runs
# standalone). Two query nodes, so collections loaded with `replicas=2`
# keep answering when one of them dies.
#
#   scripts/milvus-cluster.sh start [DIR]      install what is missing, start all, wait for health
#   scripts/milvus-cluster.sh stop  [DIR]      stop every process started on DIR
#   scripts/milvus-cluster.sh status [DIR]     0 when the proxy answers its health check
#   scripts/milvus-cluster.sh kill-querynode N [DIR]   SIGKILL query node N (1 or 2)
#   scripts/milvus-cluster.sh start-querynode N [DIR]  start query node N again
#
# DIR defaults to target/milvus-cluster (wiped on start). Ports, all on
# 127.0.0.1 and apart from the standalone server's (both may run at once):
#   proxy (gRPC, what clients use)  19540   proxy health  :9140/healthz
#   etcd 2479/2480, Kafka 9192 (controller 9193),
#   root coord 53110, data coord 13343, query coord 19541, data node 21134,
#   index node 21131, query nodes 21133 and 21135, role metrics 9141-9148.
# Clients: milvus://127.0.0.1:19540/NAME?replicas=2
# Storage is the local file system under DIR (every role on this machine
# shares it, as MinIO/S3 would be shared on real hosts).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${IVDB_MILVUS_VENV:-target/milvus-venv}
kafka_libs=${IVDB_KAFKA_LIBS:-target/kafka-libs}
cmd=${1:-}
case "$cmd" in
kill-querynode | start-querynode)
    node=${2:?query node number (1 or 2)}
    dir=${3:-target/milvus-cluster}
    ;;
*)
    dir=${2:-target/milvus-cluster}
    ;;
esac
health=http://127.0.0.1:9140/healthz

# shellcheck source=scripts/milvus-health.sh
. scripts/milvus-health.sh

# Wait up to $2 seconds for "$1" (a command) to succeed.
wait_for() {
    local what=$1 secs=$2
    for _ in $(seq 1 "$secs"); do
        if eval "$what"; then
            return 0
        fi
        sleep 1
    done
    return 1
}

port_open() {
    python3 -c "import socket,sys; s=socket.socket(); s.settimeout(1); sys.exit(s.connect_ex(('127.0.0.1', int(sys.argv[1]))))" "$1"
}

install() {
    if ! command -v etcd >/dev/null 2>&1; then
        echo "milvus-cluster: installing etcd-server (Debian)" >&2
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
        # The package starts a system etcd on 2379 where systemd runs: not ours.
    fi
    if ! command -v mvn >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
    fi
    if [ ! -f "$kafka_libs/kafka_2.13-3.9.1.jar" ]; then
        echo "milvus-cluster: fetching Kafka 3.9.1 from Maven Central" >&2
        local pom
        pom=$(mktemp -d)
        cat >"$pom/pom.xml" <<'EOF'
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>iscc-vdb</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>3.9.1</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>1.7.36</version>
    </dependency>
  </dependencies>
</project>
EOF
        mkdir -p "$kafka_libs"
        (cd "$pom" && mvn -q -B dependency:copy-dependencies \
            -DoutputDirectory="$OLDPWD/$kafka_libs" -DincludeScope=runtime)
        rm -rf "$pom"
    fi
    if [ ! -x "$venv/bin/milvus-server" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "milvus==2.3.5"
    fi
}

# The Milvus binary and its libraries, unpacked from the wheel into DIR/bin.
unpack_milvus() {
    "$venv/bin/python" -c "import sys, milvus; milvus._initialize_data_files(sys.argv[1])" "$1"
}

# The wheel's config template with this cluster's values: external etcd,
# Kafka, local storage under DIR; query node port $2 (each query node has
# a config of its own).
render_config() {
    local out=$1 qn_port=$2
    "$venv/bin/python" - "$dir" "$out" "$qn_port" <<'EOF'
import os, re, sys
import milvus
base, out, qn_port = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
template = os.path.join(os.path.dirname(milvus.__file__), "data", "config.yaml.template")
text = open(template, encoding="utf-8").read()
values = {
    "etcd_port": "2479", "etcd_log_level": "warn", "etcd_log_path": "stdout",
    "etcd_data_dir": f"{base}/etcd-embedded-unused",
    "local_storage_dir": f"{base}/storage", "rocksmq_data_dir": f"{base}/rocksmq-unused",
    "root_coord_port": "53110", "proxy_port": "19540", "proxy_internal_port": "19539",
    "query_coord_port": "19541", "query_node_port": qn_port, "index_coord_port": "22940",
    "index_node_port": "21131", "data_coord_port": "13343", "data_node_port": "21134",
    "system_log_path": f"{base}/logs",
}
def fill(m):
    name = m.group(1)
    if name in values:
        return values[name]
    if m.group(3) is not None:
        return m.group(3).strip()
    raise SystemExit(f"milvus-cluster: no value for {name}")
text = re.sub(r"\{\{\s*([a-z_]+)(\([a-z]+\))?\s*(?::\s*([^}]*))?\}\}", fill, text)
# External etcd, Kafka as the message queue (rocksmq is standalone only).
text = text.replace("embed: true # Whether to enable embedded Etcd", "embed: false # Whether to enable embedded Etcd")
text = re.sub(r"(\nmq:\n(?:  #.*\n)*  type: )rocksmq", r"\1kafka", text)
text = text.replace("# kafka:\n#   brokerList:", "kafka:\n  brokerList: 127.0.0.1:9192\n# (was:)")
text = text.replace("localhost:2479", "127.0.0.1:2479")
open(out, "w", encoding="utf-8").write(text)
EOF
}

# Start one Milvus role: run dir DIR/roles/NAME with its configs/milvus.yaml.
start_role() {
    local name=$1 role=$2 metrics=$3 qn_port=${4:-21133}
    local rdir="$dir/roles/$name"
    mkdir -p "$rdir/configs" "$rdir/run"
    render_config "$rdir/configs/milvus.yaml" "$qn_port"
    cp "$venv"/lib/python3*/site-packages/milvus/data/glog.conf "$rdir/configs/" 2>/dev/null || true
    (
        cd "$rdir"
        METRICS_PORT=$metrics MILVUS_RUN_DIR="$rdir/run" MILVUSCONF="$rdir/configs/" \
            LD_LIBRARY_PATH="$dir/bin:${LD_LIBRARY_PATH:-}" \
            nohup "$dir/bin/milvus" run "$role" >"$dir/logs/$name.out" 2>&1 &
        echo $! >"$dir/pids/$name"
    )
}

stop_all() {
    [ -d "$dir/pids" ] || return 0
    local f
    # Milvus roles first, then Kafka, then etcd (the roles need both to stop).
    for f in "$dir"/pids/*; do
        case "$(basename "$f")" in kafka | etcd) continue ;; esac
        kill "$(cat "$f")" 2>/dev/null || true
    done
    sleep 3
    for f in "$dir"/pids/*; do
        case "$(basename "$f")" in kafka | etcd) continue ;; esac
        kill -9 "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
    for f in kafka etcd; do
        if [ -f "$dir/pids/$f" ]; then
            kill "$(cat "$dir/pids/$f")" 2>/dev/null || true
            wait_for "! kill -0 $(cat "$dir/pids/$f") 2>/dev/null" 20 || kill -9 "$(cat "$dir/pids/$f")" 2>/dev/null || true
            rm -f "$dir/pids/$f"
        fi
    done
}

start_all() {
    install
    stop_all
    rm -rf "$dir"
    mkdir -p "$dir/logs" "$dir/pids" "$dir/storage" "$dir/kafka"
    dir=$(cd "$dir" && pwd)
    unpack_milvus "$dir"

    nohup etcd --name ivdb --data-dir "$dir/etcd" \
        --listen-client-urls http://127.0.0.1:2479 --advertise-client-urls http://127.0.0.1:2479 \
        --listen-peer-urls http://127.0.0.1:2480 --initial-advertise-peer-urls http://127.0.0.1:2480 \
        --initial-cluster ivdb=http://127.0.0.1:2480 >"$dir/logs/etcd.out" 2>&1 &
    echo $! >"$dir/pids/etcd"

    cat >"$dir/kafka/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9193
listeners=PLAINTEXT://127.0.0.1:9192,CONTROLLER://127.0.0.1:9193
advertised.listeners=PLAINTEXT://127.0.0.1:9192
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/kafka/data
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=true
message.max.bytes=10485760
EOF
    cat >"$dir/kafka/log4j.properties" <<EOF
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$dir/logs/kafka.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    local cp
    cp="$(cd "$kafka_libs" && pwd)/*"
    java -cp "$cp" -Dlog4j.configuration="file:$dir/kafka/log4j.properties" \
        kafka.tools.StorageTool format -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
        -c "$dir/kafka/server.properties" >"$dir/logs/kafka-format.out" 2>&1
    nohup java -Xmx768m -cp "$cp" -Dlog4j.configuration="file:$dir/kafka/log4j.properties" \
        kafka.Kafka "$dir/kafka/server.properties" >"$dir/logs/kafka.out" 2>&1 &
    echo $! >"$dir/pids/kafka"

    wait_for "port_open 2479" 30 || { echo "milvus-cluster: etcd did not start (see $dir/logs/etcd.out)" >&2; return 1; }
    wait_for "port_open 9192" 60 || { echo "milvus-cluster: Kafka did not start (see $dir/logs/kafka.log)" >&2; return 1; }

    # Coordinators first (the nodes register with them), then the nodes and
    # the proxy.
    start_role rootcoord rootcoord 9141
    start_role datacoord datacoord 9142
    start_role querycoord querycoord 9143
    wait_for "port_open 53110 && port_open 13343 && port_open 19541" 120 ||
        { echo "milvus-cluster: the coordinators did not start (see $dir/logs)" >&2; return 1; }
    start_role datanode datanode 9144
    start_role indexnode indexnode 9145
    start_role querynode1 querynode 9146 21133
    start_role querynode2 querynode 9147 21135
    start_role proxy proxy 9140
    if wait_for "healthy $health" 180; then
        echo "milvus-cluster: healthy; clients use milvus://127.0.0.1:19540/NAME?replicas=2 (dir $dir)" >&2
        return 0
    fi
    echo "milvus-cluster: the proxy did not become healthy; logs in $dir/logs" >&2
    tail -n 20 "$dir/logs/proxy.out" >&2 || true
    return 1
}

case "$cmd" in
start)
    if ! start_all; then
        stop_all
        exit 1
    fi
    ;;
stop)
    stop_all
    ;;
status)
    healthy "$health"
    ;;
kill-querynode)
    kill -9 "$(cat "$dir/pids/querynode$node")"
    ;;
start-querynode)
    dir=$(cd "$dir" && pwd)
    start_role "querynode$node" querynode $((9145 + node)) $((21131 + 2 * node))
    ;;
*)
    echo "usage: $0 start|stop|status [DIR] | kill-querynode N [DIR] | start-querynode N [DIR]" >&2
    exit 2
    ;;
esac
