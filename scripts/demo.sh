#!/usr/bin/env bash
# The main job, until `chaosctl demo` lands: a local control plane — etcd, apiserver, two
# controllers and a scheduler — runs the demo megatest scenario. With no worker yet, the
# instances wait (and say why); the controller still drives volumes through their lives, and a
# stop tears everything down. Everything is shut down at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo build --locked --quiet -p chaos-apiserver -p chaos-controller -p chaos-scheduler -p chaosctl

state=$(mktemp -d -t chaos-demo-XXXXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
etcd_port=$(free_port); peer_port=$(free_port); api_port=$(free_port)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$state"; }
trap cleanup EXIT

etcd --data-dir "$state/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "default=http://127.0.0.1:$peer_port" \
  --log-level error >"$state/etcd.log" 2>&1 &
pids+=($!)
export CHAOS_ETCD="http://127.0.0.1:$etcd_port" CHAOS_SERVER="http://127.0.0.1:$api_port" RUST_LOG=warn
target/debug/chaos-apiserver --listen "127.0.0.1:$api_port" >"$state/apiserver.log" 2>&1 &
pids+=($!)
target/debug/chaos-controller --name controller-a >"$state/controller-a.log" 2>&1 &
pids+=($!)
target/debug/chaos-controller --name controller-b >"$state/controller-b.log" 2>&1 &
pids+=($!)
target/debug/chaos-scheduler --name scheduler-a >"$state/scheduler.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf "$CHAOS_SERVER/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

ctl=target/debug/chaosctl
run() { echo "\$ chaosctl $*"; "$ctl" "$@"; echo; }
# The demo scenario, faster: steps every 1-2 s, volumes living 4-8 s.
sed -e 's/stepPeriod: {min: 10s, max: 20s}/stepPeriod: {min: 1s, max: 2s}/' \
    -e 's/lifetime: {min: 1m, max: 3m}/lifetime: {min: 4s, max: 8s}/' examples/demo.yaml > "$state/demo.yaml"
run apply -f "$state/demo.yaml"
sleep 6
run get scenarios
run describe scenario demo
echo "\$ chaosctl get instances --scenario demo   (first lines)"
"$ctl" get instances --scenario demo | head -6; echo
run stop demo
for _ in $(seq 100); do "$ctl" get scenario demo -o json | grep -q '"phase": "Stopped"' && break; sleep 0.2; done
run get scenarios
run describe scenario demo
run delete scenario demo
echo "demo done: the control plane expanded the scenario, drove its volumes and tore everything down."
echo "(workers, plugins and kubesim join this demo with the worker daemon: see the issues)"
