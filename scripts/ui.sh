#!/usr/bin/env bash
# The dashboard's browser tests: against one fresh stack started by `chaosctl up` (its own etcd,
# an admin token), pytest drives Debian's headless Chromium through Debian's chromedriver
# (installed where missing) over the dashboard (tests/browser). Screenshots of each page go to
# target/ui/screenshots. This script builds nothing: it runs the binaries the test command built.
#
#   scripts/ui.sh                   the browser tests
#   scripts/ui.sh --budget          instead, the page budgets (scripts/ui-budget.py): load times
#                                   and bytes shipped, as JSON, against a release build
#   CHAOS_UI_VENV=DIR               keep the virtualenv in DIR
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
profile=debug
mode=test
if [ "${1:-}" = "--budget" ]; then
  mode=budget
  profile=release
fi
chaosctl=$target/$profile/chaosctl
if [ ! -x "$chaosctl" ]; then
  release=""
  [ "$profile" = release ] && release=" --release"
  echo "ui: no chaosctl binary at $chaosctl: build it first (cargo build --workspace$release)" >&2
  exit 1
fi

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
venv=$(pinned_venv ui tests/browser/requirements.txt "${CHAOS_UI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos-ui}")
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "ui: installing Debian's chromium and chromium-driver" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# shellcheck source=scripts/stack.sh
. scripts/stack.sh
if [ "$mode" = budget ]; then
  # 10,000 instances on two workers: 5,000 each, within Linux's default vm.max_map_count.
  start_stack ui "$chaosctl" --workers 2 --slots 5100
else
  start_stack ui "$chaosctl" --workers 2
fi

export PYTHONDONTWRITEBYTECODE=1
export CHAOS_UI_SCREENSHOTS=$target/ui/screenshots
mkdir -p "$CHAOS_UI_SCREENSHOTS"
if [ "$mode" = budget ]; then
  "$venv/bin/python" scripts/ui-budget.py
else
  start=$SECONDS
  timeout --kill-after=30s 15m "$venv/bin/python" -m pytest -p no:cacheprovider --rootdir tests/browser tests/browser -q
  echo "ui: browser tests passed in $((SECONDS - start))s (screenshots: $CHAOS_UI_SCREENSHOTS)"
fi
