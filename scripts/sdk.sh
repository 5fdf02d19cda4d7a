#!/usr/bin/env bash
# The SDK suite: against one fresh stack started by `chaosctl up` (its own etcd, so a fresh key
# prefix; an admin token), in this order:
#   1. the committed document and generated Python and Go clients are not stale
#      (scripts/sdk-generate.sh --check);
#   2. the Python SDK's tests (pytest, sdk/python/tests);
#   3. the Go SDK's tests (go test, sdk/go; Debian's Go, installed where missing);
#   4. the API fuzz check: schemathesis, driven by the served document, with a fixed seed and a
#      fixed number of examples per operation (sdk/schemathesis.toml says what it leaves out and why).
# The fuzzer runs last: what it creates is junk the SDK tests need not see. Every part runs even
# after one failed; the exit status says whether all passed. This script builds nothing: it runs
# the binaries the test command built.
#
#   scripts/sdk.sh                  everything
#   CHAOS_SDK_PARTS="python go"     only these parts (check python go fuzz)
#   CHAOS_SDK_EXAMPLES=40           the fuzzer's examples per operation
#   CHAOS_SDK_VENV=DIR              keep the virtualenvs in DIR
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=${CARGO_TARGET_DIR:-target}
chaosctl=$target/debug/chaosctl
parts=${CHAOS_SDK_PARTS:-check python go fuzz}
if [ ! -x "$chaosctl" ]; then
  echo "sdk: no chaosctl binary at $chaosctl: run 'cargo build --workspace' first" >&2
  exit 1
fi

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
venv=$(pinned_venv sdk sdk/requirements.txt "${CHAOS_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos-sdk}")
if [[ " $parts " == *" go "* ]] && ! command -v go >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "sdk: installing Debian's Go toolchain (golang-go)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go >/dev/null
fi

# ---- The stack, stopped however this script ends. ----------------------------------------------

# shellcheck source=scripts/stack.sh
. scripts/stack.sh
start_stack sdk "$chaosctl" --workers 2
server=$CHAOS_SERVER
token=$CHAOS_TOKEN
run=$stack_run

# ---- The parts. --------------------------------------------------------------------------------

failed=()
part() {
  local name=$1 start=$SECONDS
  shift
  if [[ " $parts " != *" $name "* ]]; then return; fi
  if timeout --kill-after=30s 10m "$@"; then
    echo "sdk: $name passed in $((SECONDS - start))s"
  else
    echo "sdk: $name FAILED in $((SECONDS - start))s"
    failed+=("$name")
  fi
}

export PYTHONDONTWRITEBYTECODE=1
part check scripts/sdk-generate.sh --check
part python "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir sdk/python sdk/python/tests -q
part go env -C sdk/go GOPROXY=off GOFLAGS=-mod=mod go test -count=1 ./...
# schemathesis's own entry point, run by the virtualenv's python (its console script would carry
# the path the virtualenv was built at).
part fuzz env -C sdk "$venv/bin/python" -c 'import sys; from schemathesis.cli import schemathesis; sys.argv[0] = "st"; sys.exit(schemathesis())' \
  --config-file "$root/sdk/schemathesis.toml" run "$server/openapi.json" \
  -H "Authorization: Bearer $token" --tls-verify "$CHAOS_CA" \
  --seed 1 --max-examples "${CHAOS_SDK_EXAMPLES:-40}" --checks all --generation-database none \
  --report junit --report-dir "$run/fuzz"

if ((${#failed[@]})); then
  echo "sdk: FAILED: ${failed[*]} (stack logs: $target/sdk/last)" >&2
  exit 1
fi
