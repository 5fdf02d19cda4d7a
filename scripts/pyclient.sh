#!/usr/bin/env bash
# Runs the official Kubernetes Python client (`kubernetes` on PyPI) against a real kubesim: the
# tests under kubesim/clients/python, with pytest.
#
# The client and pytest come from PyPI, pinned (kubesim/clients/python/requirements.txt), into a
# virtualenv under ~/.cache that survives fresh clones (scripts/venv.sh); it is installed only when missing or when
# the pins or the Python interpreter change. This script builds nothing: it runs the kubesim
# binary that the test command built.
#
#   scripts/pyclient.sh                    every test
#   scripts/pyclient.sh -k watch           pytest's arguments are passed on
#   KUBESIM=PATH                           the kubesim binary (default: $CARGO_TARGET_DIR/debug/kubesim)
#   CHAOS_PYCLIENT_VENV=DIR                keep the virtualenvs in DIR
#   CHAOS_PYCLIENT_TIMEOUT=10m             longest the tests may run
set -euo pipefail
cd "$(dirname "$0")/.."

tests=kubesim/clients/python
requirements=$tests/requirements.txt
target=${CARGO_TARGET_DIR:-target}
kubesim=${KUBESIM:-$target/debug/kubesim}
# kubesim keeps this many events for resumed watches: few, so that the "too old" test can push
# its starting version out of the history with a few hundred writes.
history=256

if [ ! -x "$kubesim" ]; then
  echo "pyclient: no kubesim binary at $kubesim: run 'cargo build -p kubesim' first, or set KUBESIM" >&2
  exit 1
fi

# ---- The virtualenv (scripts/venv.sh). ---------------------------------------------------------

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
venv=$(pinned_venv pyclient "$requirements" "${CHAOS_PYCLIENT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos-pyclient}")

# ---- kubesim on a free port, stopped however this script ends. ---------------------------------

# A directory of this run's own (runs from two worktrees may share a target directory); its log
# is kept as $target/pyclient/kubesim.log when the run ends.
mkdir -p "$target/pyclient"
run=$(mktemp -d "$target/pyclient/run.XXXXXX")
log=$target/pyclient/kubesim.log
"$kubesim" --listen 127.0.0.1:0 --speed 50 --history "$history" >"$run/kubesim.out" 2>"$run/kubesim.log" &
kubesim_pid=$!
# shellcheck disable=SC2317 # run by the traps
stop_kubesim() {
  kill -TERM "$kubesim_pid" 2>/dev/null || true
  wait "$kubesim_pid" 2>/dev/null || true
  mv "$run/kubesim.log" "$log"
  rm -rf "$run"
}
trap stop_kubesim EXIT
trap 'exit 143' TERM INT

# It prints `kubesim serving on http://ADDR` once it listens; give it 30 s.
url=""
for _ in $(seq 300); do
  url=$(sed -n 's/^kubesim serving on //p' "$run/kubesim.out")
  [ -n "$url" ] && break
  if ! kill -0 "$kubesim_pid" 2>/dev/null; then
    echo "pyclient: kubesim exited before serving; its log ($log):" >&2
    tail -n 40 "$run/kubesim.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "pyclient: kubesim did not serve within 30 s; its log: $log" >&2
  exit 1
fi
echo "pyclient: kubesim $("$kubesim" --version | awk '{print $2}') at $url (log: $log)"

# ---- The tests. --------------------------------------------------------------------------------

# No bytecode or cache files in the source tree.
export PYTHONDONTWRITEBYTECODE=1 KUBESIM_URL=$url
rc=0
timeout --kill-after=30s "${CHAOS_PYCLIENT_TIMEOUT:-10m}" \
  "$venv/bin/python" -m pytest -c "$tests/pytest.ini" --rootdir "$tests" -p no:cacheprovider "$tests" "$@" || rc=$?
if [ "$rc" != 0 ]; then
  echo "pyclient: pytest exited with $rc; kubesim's log: $log" >&2
fi
exit "$rc"
