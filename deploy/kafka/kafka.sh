#!/usr/bin/env bash
# kafka.sh runs a local Apache Kafka cluster (KRaft, combined broker+controller
# nodes) from the version pinned in pom.xml beside this script, for Veltrix's
# tests, chaos suite and benchmarks, and for trying Veltrix on a laptop with a
# JDK 17+ and Maven. Everything a cluster has lives under DIR.
#
#   kafka.sh start DIR PORT [NODES]   start NODES nodes (default 1) on
#                                     127.0.0.1:PORT .. PORT+NODES-1; their
#                                     controllers listen on the next NODES ports.
#                                     Last line of output: ready 127.0.0.1:PORT
#   kafka.sh stop DIR                 SIGTERM every node, SIGKILL after 20 s
#   kafka.sh kill DIR NODE            kill -9 one node (NODE is 1..NODES)
#   kafka.sh restart DIR NODE         start a stopped or killed node on its data
#   kafka.sh create-topic DIR NAME PARTITIONS [key=value ...]
#                                     create a topic (idempotent); replication
#                                     is min(3, NODES)
#
# The first start resolves the broker's jars with Maven into the local Maven
# repository (~/.m2); later starts run Maven offline. Settings shared by every
# node are in broker.properties, those fitted to the node count in
# replication.properties; the heap is bounded (KAFKA_HEAP_OPTS,
# default -Xms256m -Xmx640m) so that three nodes, Veltrix and a test fit on a
# small machine. Broker logs: DIR/nodeN/logs/server.log.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
READY_TIMEOUT=${KAFKA_READY_TIMEOUT:-120}
HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx640m}

die() { echo "kafka.sh: $*" >&2; exit 1; }

usage() {
  sed -n '7,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

need_java() {
  command -v java >/dev/null 2>&1 || die "java not found: Apache Kafka needs a JDK 17 or newer (Debian: apt-get install -y openjdk-17-jdk-headless maven)"
  command -v mvn >/dev/null 2>&1 || die "mvn not found: kafka.sh resolves Kafka's jars with Maven (Debian: apt-get install -y maven)"
}

# classpath writes the broker's classpath to DIR/classpath (offline when the
# local Maven repository already has the jars) and compiles ClusterTool.
classpath() {
  local dir=$1
  if [ ! -s "$dir/classpath" ]; then
    local args=(-B -q -f "$HERE/pom.xml" dependency:build-classpath "-Dmdep.outputFile=$dir/classpath")
    if ! mvn -o "${args[@]}" >"$dir/mvn.log" 2>&1; then
      echo "resolving Apache Kafka $(kafka_version) with Maven (first use; later starts are offline)" >&2
      mvn "${args[@]}" >"$dir/mvn.log" 2>&1 || { tail -20 "$dir/mvn.log" >&2; die "maven could not resolve the broker's jars (log: $dir/mvn.log)"; }
    fi
  fi
  if [ ! -f "$dir/tool/ClusterTool.class" ] || [ "$HERE/ClusterTool.java" -nt "$dir/tool/ClusterTool.class" ]; then
    mkdir -p "$dir/tool"
    javac -nowarn -d "$dir/tool" -cp "$(cat "$dir/classpath")" "$HERE/ClusterTool.java" || die "compile ClusterTool.java"
  fi
}

# cluster_id is a random KRaft cluster id (16 bytes, URL-safe base64); one
# starting with '-' would be read as an option by the storage tool.
cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [ "${id#-}" = "$id" ] && { echo "$id"; return; }
  done
}

kafka_version() { sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$HERE/pom.xml"; }

tool() {
  local dir=$1; shift
  java -Xmx128m -cp "$dir/tool:$(cat "$dir/classpath")" ClusterTool "$@"
}

load_cluster() {
  local dir=$1
  [ -f "$dir/cluster.env" ] || die "no cluster in $dir (run: kafka.sh start $dir PORT [NODES])"
  # shellcheck disable=SC1091
  . "$dir/cluster.env"
}

replication() { local n=$1; if [ "$n" -ge 3 ]; then echo 3; else echo "$n"; fi; }
min_isr() { local n=$1; if [ "$n" -ge 3 ]; then echo 2; else echo 1; fi; }

# write_node_config writes DIR/nodeN/server.properties: broker.properties plus
# this node's identity and listeners, plus what depends on the node count.
write_node_config() {
  local dir=$1 node=$2 port=$3 nodes=$4
  local voters="" i
  for ((i = 1; i <= nodes; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$((port + nodes + i - 1))"
  done
  local rf isr
  rf=$(replication "$nodes")
  isr=$(min_isr "$nodes")
  mkdir -p "$dir/node$node/data" "$dir/node$node/logs"
  {
    cat "$HERE/broker.properties"
    cat <<EOF

# Node $node of $nodes (written by kafka.sh)
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$((port + node - 1)),CONTROLLER://127.0.0.1:$((port + nodes + node - 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$((port + node - 1))
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/node$node/data

EOF
    sed -e "s/\${RF}/$rf/g" -e "s/\${MIN_ISR}/$isr/g" "$HERE/replication.properties"
  } >"$dir/node$node/server.properties"
}

# launch starts one node in the background. The node ignores SIGINT and
# SIGHUP (a Ctrl-C or a closed terminal of whoever started it does not stop
# it; kafka.sh stop does); exec keeps its pid the one recorded.
launch() {
  local dir=$1 node=$2
  local nd="$dir/node$node"
  (
    trap '' INT HUP
    # shellcheck disable=SC2086
    exec java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
      -Dkafka.logs.dir="$nd/logs" -Dlog4j2.configurationFile="$HERE/log4j2.properties" \
      -cp "$(cat "$dir/classpath")" kafka.Kafka "$nd/server.properties"
  ) </dev/null >"$nd/logs/stdout.log" 2>&1 &
  echo $! >"$nd/pid"
}

alive() { local pidfile=$1; [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

fail_with_logs() {
  local dir=$1 msg=$2 n
  echo "kafka.sh: $msg" >&2
  for n in "$dir"/node*/; do
    echo "--- ${n}logs/server.log (tail)" >&2
    tail -n 25 "${n}logs/server.log" >&2 2>/dev/null || echo "(none)" >&2
    echo "--- ${n}logs/stdout.log (tail)" >&2
    tail -n 25 "${n}logs/stdout.log" >&2 2>/dev/null || echo "(none)" >&2
  done
  exit 1
}

# wait_ready waits until every node's port accepts connections and a
# transactional producer can commit, for at most READY_TIMEOUT seconds in all.
wait_ready() {
  local dir=$1 started=$2 node
  local deadline=$((started + READY_TIMEOUT))
  for ((node = 1; node <= NODES; node++)); do
    until (exec 3<>"/dev/tcp/127.0.0.1/$((PORT + node - 1))") 2>/dev/null; do
      alive "$dir/node$node/pid" || fail_with_logs "$dir" "node $node exited during start"
      [ "$(date +%s)" -lt "$deadline" ] || fail_with_logs "$dir" "node $node not listening after ${READY_TIMEOUT}s"
      sleep 0.2
    done
  done
  local left=$((deadline - $(date +%s)))
  [ "$left" -gt 0 ] || left=1
  tool "$dir" probe "$(bootstrap)" "$NODES" "$left" || fail_with_logs "$dir" "cluster not ready after ${READY_TIMEOUT}s"
}

bootstrap() {
  local node out=""
  for ((node = 1; node <= NODES; node++)); do out+="${out:+,}127.0.0.1:$((PORT + node - 1))"; done
  echo "$out"
}

cmd_start() {
  [ $# -ge 2 ] && [ $# -le 3 ] || usage
  local dir=$1 port=$2 nodes=${3:-1}
  [[ $port =~ ^[0-9]+$ ]] && [ "$port" -gt 0 ] && [ "$((port + 2 * nodes - 1))" -le 65535 ] || die "bad PORT $port"
  [[ $nodes =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] || die "bad NODES $nodes"
  need_java
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local started
  started=$(date +%s)
  if [ -f "$dir/cluster.env" ]; then
    load_cluster "$dir"
    [ "$PORT" = "$port" ] && [ "$NODES" = "$nodes" ] || die "$dir holds a cluster of $NODES node(s) on port $PORT"
  else
    printf 'PORT=%s\nNODES=%s\nCLUSTER_ID=%s\n' "$port" "$nodes" "$(cluster_id)" >"$dir/cluster.env"
    load_cluster "$dir"
  fi
  classpath "$dir"
  local node
  for ((node = 1; node <= NODES; node++)); do
    if alive "$dir/node$node/pid"; then continue; fi
    write_node_config "$dir" "$node" "$PORT" "$NODES"
    if [ ! -f "$dir/node$node/data/meta.properties" ]; then
      java -Xmx256m -Dlog4j2.configurationFile="$HERE/log4j2.properties" -Dkafka.logs.dir="$dir/node$node/logs" \
        -cp "$(cat "$dir/classpath")" kafka.tools.StorageTool format \
        -t "$CLUSTER_ID" -c "$dir/node$node/server.properties" >"$dir/node$node/logs/format.log" 2>&1 ||
        { cat "$dir/node$node/logs/format.log" >&2; die "format storage of node $node"; }
    fi
    launch "$dir" "$node"
  done
  wait_ready "$dir" "$started"
  echo "Apache Kafka $(kafka_version): $NODES node(s), data and logs in $dir"
  echo "ready 127.0.0.1:$PORT"
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  local dir=$1 pidfile pids=()
  for pidfile in "$dir"/node*/pid; do
    [ -f "$pidfile" ] || continue
    if alive "$pidfile"; then
      pids+=("$(cat "$pidfile")")
      kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    fi
  done
  local deadline=$(($(date +%s) + 20)) pid
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "kafka.sh: pid $pid still running 20 s after SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$dir"/node*/pid
  echo "stopped ${#pids[@]} node(s)"
}

node_arg() {
  local node=$1
  [[ $node =~ ^[0-9]+$ ]] && [ "$node" -ge 1 ] && [ "$node" -le "$NODES" ] || die "NODE must be 1..$NODES, got $node"
}

cmd_kill() {
  [ $# -eq 2 ] || usage
  local dir=$1 node=$2
  load_cluster "$dir"
  node_arg "$node"
  local pidfile="$dir/node$node/pid"
  alive "$pidfile" || die "node $node is not running"
  local pid
  pid=$(cat "$pidfile")
  kill -KILL "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$pidfile"
  echo "killed node $node (pid $pid)"
}

cmd_restart() {
  [ $# -eq 2 ] || usage
  local dir=$1 node=$2
  need_java
  dir=$(cd "$dir" && pwd)
  load_cluster "$dir"
  node_arg "$node"
  alive "$dir/node$node/pid" && die "node $node is running"
  local started
  started=$(date +%s)
  launch "$dir" "$node"
  wait_ready "$dir" "$started"
  echo "ready 127.0.0.1:$((PORT + node - 1))"
}

cmd_create_topic() {
  [ $# -ge 3 ] || usage
  local dir=$1 name=$2 partitions=$3
  shift 3
  need_java
  load_cluster "$dir"
  classpath "$dir"
  tool "$dir" create-topic "$(bootstrap)" "$name" "$partitions" "$(replication "$NODES")" "$@"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  kill) cmd_kill "$@" ;;
  restart) cmd_restart "$@" ;;
  create-topic) cmd_create_topic "$@" ;;
  *) usage ;;
esac
