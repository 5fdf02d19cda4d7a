#!/usr/bin/env bash
# The main job, until `chaosctl demo` lands: a local etcd and apiserver, the megatest scenario
# applied, shown and stopped through chaosctl, then everything shut down.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo build --locked --quiet -p chaos-apiserver -p chaosctl

state=$(mktemp -d -t chaos-demo-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
cleanup() { kill "${api_pid:-}" "${etcd_pid:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT

etcd --data-dir "$state/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "default=http://127.0.0.1:$peer_port" \
  --log-level error >"$state/etcd.log" 2>&1 &
etcd_pid=$!
target/debug/chaos-apiserver --etcd "http://127.0.0.1:$etcd_port" --listen "127.0.0.1:$api_port" >"$state/apiserver.log" 2>&1 &
api_pid=$!
export CHAOS_SERVER="http://127.0.0.1:$api_port"
for _ in $(seq 100); do curl -sf "$CHAOS_SERVER/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

run() { echo "\$ $*"; "$@"; echo; }
run target/debug/chaosctl apply -f examples/megatest.yaml
run target/debug/chaosctl get scenarios
run target/debug/chaosctl describe scenario megatest
echo "\$ etcdctl get --prefix /chaos/scenarios/ --print-value-only"
ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$etcd_port" get --prefix /chaos/scenarios/ --print-value-only | head -c 600; echo; echo
run target/debug/chaosctl stop megatest
run target/debug/chaosctl delete scenario megatest
echo "demo done: the scenario was applied, stored in etcd, served back, stopped and deleted."
