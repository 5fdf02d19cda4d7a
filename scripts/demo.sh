#!/usr/bin/env bash
# The main job: `chaosctl demo` — a local stack (etcd, kubesim with a planted storage bug, the
# apiserver, a controller, a scheduler, three workers) runs the demo megatest with a live view,
# stops it, tears everything down, checks nothing is left in the cluster, and prints the report.
# Extra arguments go to `chaosctl demo` (e.g. `--run-for 5m`, `--workers 5`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo build --locked --quiet --workspace --bins
exec target/debug/chaosctl demo "$@"
