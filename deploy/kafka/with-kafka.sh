#!/usr/bin/env bash
# with-kafka.sh COMMAND [ARG...]
#
# Starts a one-node Apache Kafka cluster (kafka.sh) on free ports in a fresh
# directory, runs COMMAND with VELTRIX_TEST_KAFKA=127.0.0.1:PORT, and stops
# the cluster whatever COMMAND did (also on Ctrl-C). Exits with COMMAND's
# status. KAFKA_NODES=3 starts three nodes. make test-kafka uses it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ $# -ge 1 ] || { echo "usage: with-kafka.sh COMMAND [ARG...]" >&2; exit 2; }
nodes=${KAFKA_NODES:-1}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# 2*nodes consecutive free ports: the brokers' and the controllers'.
pick_port() {
  local p i ok
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 12000)) # below Linux's ephemeral range (32768-)
    ok=1
    for ((i = 0; i < 2 * nodes; i++)); do port_free $((p + i)) || { ok=0; break; }; done
    [ "$ok" = 1 ] && { echo "$p"; return; }
  done
  echo "with-kafka.sh: no free ports found" >&2
  exit 1
}

dir=$(mktemp -d "${TMPDIR:-/tmp}/veltrix-kafka.XXXXXX")
port=$(pick_port)
cleanup() {
  "$HERE/kafka.sh" stop "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/kafka.sh" start "$dir" "$port" "$nodes" | tail -n 2
status=0
VELTRIX_TEST_KAFKA=127.0.0.1:$port "$@" || status=$?
if [ "$status" != 0 ]; then
  echo "--- with-kafka.sh: the command failed ($status); tail of the broker log:" >&2
  tail -n 30 "$dir"/node1/logs/server.log >&2 || true
fi
exit "$status"
