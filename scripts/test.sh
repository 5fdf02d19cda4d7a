#!/usr/bin/env bash
# The test command: installs what is missing, then runs every test of the workspace against
# real etcd servers (and, for kubesim, the real kubectl).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
cargo test --workspace --locked
