#!/usr/bin/env bash
# The test command: installs what is missing, builds every test binary of the workspace once,
# then runs the suites in parallel lanes against real etcd servers (and, for kubesim, the real
# kubectl and the official Python client), builds the book, and prints each suite's time and a
# summary. Exits non-zero if anything failed. docs/development.md explains the lanes and the
# time budget.
#
#   scripts/test.sh                              everything
#   CHAOS_TEST_ONLY="kubesim docs" scripts/test.sh   only these suites (after the full build)
#   CHAOS_TEST_LANES=1 scripts/test.sh           one lane: the suites one after another
#   CHAOS_TEST_TIMEOUT=20m                       longest a test binary may run
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
started=$SECONDS

# The suites. A suite is a list of test binaries, run one after another in its lane: a package
# (all of its test binaries), package:target, or @unit (the unit tests of every lib and bin, which
# by the house rules do no I/O and wait on no clock); a binary goes to the first suite that names
# it, and one that no suite names runs in `others`, so nothing is ever skipped. Each lane runs its
# suites in this order. A suite with no binaries (`-`) runs only its commands (`suite_commands`).
#
# `heavy` suites wait on real time: lease TTLs, timeouts, kubesim's sped-up clock, whole stacks
# of processes. On a loaded machine such a test can miss its moment (kubesim's same-seed story
# diverged once beside a running stack), so at most one heavy suite runs per two lanes (on 2
# cores: one at a time), whatever the lanes; light suites (pure tests, the book) run beside them.
# Figures of each suite: docs/development.md.
#
#   suite          lane  weight  binaries
suites=$(
  cat <<'EOF'
unit             2     light   @unit
e2e              1     heavy   chaos-e2e
docs             1     light   -
chaosctl         1     heavy   chaosctl
doctests         2     light   -
apiserver        2     light   chaos-apiserver
availability     2     light   chaos-availability
def              2     heavy   chaos-def chaos-daemon chaos-harness chaos-megatest-logic chaos-bench
controller       2     heavy   chaos-controller
scheduler        2     heavy   chaos-scheduler
kubesim          2     heavy   kubesim
pyclient         2     heavy   -
sdk              1     heavy   -
ui               1     heavy   -
worker           2     heavy   chaos-worker
others           2     heavy   -
EOF
)

max_lane=$(awk '{ if ($2 > m) m = $2 } END { print m }' <<<"$suites")
lanes=${CHAOS_TEST_LANES:-$(nproc)}
lanes=$((lanes < max_lane ? lanes : max_lane))
heavy_slots=$((lanes / 2 > 1 ? lanes / 2 : 1))

logs=target/test-logs
rm -rf "$logs"
mkdir -p "$logs/suites"
: >"$logs/results"

scripts/bootstrap.sh

# ---- 1. Build every test binary once (and every binary the end-to-end tests start). ----------

# The build takes ~5.6 GB under target/ (~8 GB with incremental compilation, which CI turns
# off); say what there is, so that a build that runs out of room is recognised at once.
echo "build: cargo test --workspace --locked --no-run (log: $logs/build.log;" \
  "$(df -h --output=avail "$root" 2>/dev/null | tail -n 1 | tr -d ' ') free on disk)"
build_start=$SECONDS
if ! cargo test --workspace --locked --no-run --message-format=json-render-diagnostics \
  >"$logs/build.json" 2>"$logs/build.log"; then
  # A failed link prints its whole command line (tens of kilobytes) before the linker's own
  # words; leave the command lines out so that the reason (a missing symbol, a full disk, a
  # killed linker) is what shows.
  grep -v '^ *= note: *"cc"' "$logs/build.log" | tail -n 60 || true
  echo "disk and memory at the failure:"
  df -h "$root/target" /tmp 2>/dev/null || true
  free -m 2>/dev/null || true
  echo "suite build: FAILED in $((SECONDS - build_start))s"
  exit 1
fi
build_took=$((SECONDS - build_start))
echo "suite build: passed in ${build_took}s"

# Which binary belongs to which suite: one line per binary, `suite<TAB>package<TAB>dir<TAB>exe`.
python3 - "$logs/build.json" "$suites" >"$logs/binaries.tsv" <<'PY'
import json, os, sys
artifacts, table = sys.argv[1], sys.argv[2]
claims = []  # (selector, suite): a package name or package:target
for line in table.splitlines():
    suite, _lane, _weight, *selectors = line.split()
    claims += [(s, suite) for s in selectors if s != "-"]
for line in open(artifacts):
    if not line.startswith("{"):
        continue
    msg = json.loads(line)
    if msg.get("reason") != "compiler-artifact" or not msg.get("profile", {}).get("test") or not msg.get("executable"):
        continue
    url, _, fragment = msg["package_id"].partition("#")  # path+file:///…/dir#name@0.1.0, or …/name#0.1.0
    package = fragment.split("@")[0] if "@" in fragment else url.rstrip("/").rsplit("/", 1)[-1]
    target = msg["target"]["name"]
    unit = msg["target"]["kind"] != ["test"]  # a lib's or a bin's own tests
    names = {package, f"{package}:{target}"} | ({"@unit"} if unit else set())
    suite = next((s for sel, s in claims if sel in names), "others")
    print(suite, package, os.path.dirname(msg["manifest_path"]), msg["executable"], sep="\t")
PY

# ---- 2. Run the suites. ------------------------------------------------------------------------

export CARGO=${CARGO:-$(command -v cargo)}

# Runs one test binary as `cargo test` would: from its package's directory, with its manifest
# dir. One still running after the time limit is stopped, and fails its suite.
run_binary() {
  local package=$1 dir=$2 exe=$3
  echo "     Running $package: ${exe#"$root"/}"
  (cd "$dir" && CARGO_MANIFEST_DIR=$dir CARGO_PKG_NAME=$package \
    timeout --kill-after=30s "${CHAOS_TEST_TIMEOUT:-20m}" "$exe")
}

# Everything one suite runs; every part runs even after one failed.
suite_commands() {
  local suite=$1 failed=0 package dir exe
  case $suite in
    docs) scripts/docs.sh || failed=1 ;;
    doctests) cargo test --workspace --locked --doc || failed=1 ;;
    pyclient) scripts/pyclient.sh || failed=1 ;;
    sdk) scripts/sdk.sh || failed=1 ;;
    ui) scripts/ui.sh || failed=1 ;;
  esac
  while IFS=$'\t' read -r _ package dir exe; do
    run_binary "$package" "$dir" "$exe" || failed=1
  done < <(awk -F'\t' -v s="$suite" '$1 == s' "$logs/binaries.tsv")
  return $failed
}

# Waits for a free heavy slot; its lock is held on file descriptor $heavy_fd until closed.
take_heavy_slot() {
  while :; do
    for slot in $(seq 1 "$heavy_slots"); do
      exec {heavy_fd}>"$logs/heavy-$slot.lock"
      flock -n "$heavy_fd" && return 0
      exec {heavy_fd}>&-
    done
    sleep 1
  done
}

# Runs one suite into its log, then prints its result in one piece (lanes print in turn).
run_suite() {
  local suite=$1 weight=$2 binaries=$3 log="$logs/suites/$1.log" status=passed start took cpu
  # A suite of binaries with none built has nothing to run; one of commands (`-`) always runs.
  if [ "$binaries" != "-" ] && ! grep -q "^$suite"$'\t' "$logs/binaries.tsv"; then return 0; fi
  if [ "$weight" = heavy ]; then take_heavy_slot; fi
  start=$SECONDS
  # A subshell of its own, so that `times` counts this suite's processes alone; not in a
  # pipeline, where a forked `times` would see no children.
  (
    # The tests' processes must not inherit the heavy slot's lock: one left behind would hold it.
    if [ "$weight" = heavy ]; then exec {heavy_fd}>&-; fi
    rc=0
    suite_commands "$suite" >"$log" 2>&1 || rc=1
    times >"$log.cpu"
    exit $rc
  ) || status=FAILED
  took=$((SECONDS - start))
  if [ "$weight" = heavy ]; then exec {heavy_fd}>&-; fi
  cpu=$(awk 'NR == 2 { printf "%.0f", s($1) + s($2) } function s(t) { split(t, a, /[ms]/); return a[1] * 60 + a[2] }' \
    "$log.cpu")
  echo "$suite $status $took $cpu" >>"$logs/results"
  {
    flock 9
    if [ "$status" = passed ]; then
      grep -E "^ +(Running|Doc-tests) |^test result:|^docs: |^pyclient: |^sdk: |^ui: |$pytest_result" "$log" || true
    else
      echo "---- suite $suite failed; the last lines of $log:"
      tail -n 150 "$log"
    fi
    echo "suite $suite: $status in ${took}s (CPU ${cpu}s)"
  } 9>"$logs/print.lock"
}

# pytest's closing line (the Python client suite), in ERE.
pytest_result='^=+ ([0-9]+ [a-z]+(, )?)+ in [0-9.]+s'

selected() { [ -z "${CHAOS_TEST_ONLY:-}" ] || [[ " $CHAOS_TEST_ONLY " == *" $1 "* ]]; }

run_lane() {
  local lane=$1 suite suite_lane weight binaries
  while read -r suite suite_lane weight binaries; do
    if [ $(((suite_lane - 1) % lanes + 1)) = "$lane" ] && selected "$suite"; then
      run_suite "$suite" "$weight" "$binaries"
    fi
  done <<<"$suites"
}

echo "suites: $lanes lane(s), $heavy_slots heavy slot(s) (logs: $logs/suites/)"
pids=()
for lane in $(seq 1 "$lanes"); do
  run_lane "$lane" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

# ---- 3. Summary. -------------------------------------------------------------------------------

echo
echo "summary:"
printf '  %-12s %-7s %5ss\n' build passed "$build_took"
failed=0
while read -r suite status took cpu; do
  printf '  %-12s %-7s %5ss   CPU %5ss\n' "$suite" "$status" "$took" "$cpu"
  [ "$status" = passed ] || failed=1
done <"$logs/results"
# Every test binary's closing line and pytest's, added up. pytest's reads, e.g.,
# `==== 1 failed, 16 passed, 2 errors in 4.51s ====`: a count before each outcome.
cat "$logs"/suites/*.log | awk -v pytest="$pytest_result" '
  /^test result:/ { p += $4; f += $6 }
  $0 ~ pytest { for (i = 2; i < NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^(failed|errors?)/) f += $i } }
  END { printf "tests: %d passed, %d failed\n", p, f }'
echo "total: $((SECONDS - started))s, of which the build ${build_took}s"
exit $failed
