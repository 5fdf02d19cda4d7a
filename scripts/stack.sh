# shellcheck shell=bash
# Sourced by the scripts that test from outside against one `chaosctl up` stack (scripts/sdk.sh,
# scripts/ui.sh).
#
#   start_stack WHO CHAOSCTL [UP-ARGS...]
#
# starts `CHAOSCTL up UP-ARGS` with its own state directory under $target/WHO, waits until it is
# up, exports CHAOS_SERVER, CHAOS_TOKEN (its admin token) and CHAOS_CA, and stops it (moving its
# logs to $target/WHO/last) however the calling script ends. The stack's request rates are raised:
# its one client is a test that may send many requests on purpose.

start_stack() {
  local who=$1 chaosctl=$2
  shift 2
  stack_target=${CARGO_TARGET_DIR:-target}/$who
  mkdir -p "$stack_target"
  stack_run=$(cd "$(mktemp -d "$stack_target/run.XXXXXX")" && pwd)
  CHAOS_UNAUTHENTICATED_RATE_LIMIT=100000 CHAOS_UNAUTHENTICATED_RATE_BURST=100000 \
    CHAOS_RATE_LIMIT=100000 CHAOS_RATE_BURST=100000 \
    "$chaosctl" up --state-dir "$stack_run/state" "$@" >"$stack_run/up.log" 2>&1 &
  stack_pid=$!
  trap stop_stack EXIT
  trap 'exit 143' TERM INT

  for _ in $(seq 600); do
    grep -q "^stack is up" "$stack_run/up.log" 2>/dev/null && break
    if ! kill -0 "$stack_pid" 2>/dev/null; then
      echo "$who: chaosctl up exited before the stack was up:" >&2
      tail -n 40 "$stack_run/up.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  local config=$stack_run/state/chaosctl.yaml server token
  server=$(sed -n 's/^ *server: "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$config" 2>/dev/null || true)
  token=$(sed -n 's/^ *token: *//p' "$config" 2>/dev/null || true)
  if [ -z "$server" ] || [ -z "$token" ]; then
    echo "$who: the stack did not come up within 60 s (logs: $stack_target/last)" >&2
    exit 1
  fi
  export CHAOS_SERVER=$server CHAOS_TOKEN=$token CHAOS_CA=$stack_run/state/tls/ca.pem
  echo "$who: stack at $server (logs: $stack_target/last when this ends)" >&2
}

# shellcheck disable=SC2317 # run by the trap
stop_stack() {
  kill -INT "$stack_pid" 2>/dev/null || true
  wait "$stack_pid" 2>/dev/null || true
  rm -rf "$stack_target/last" && mv "$stack_run" "$stack_target/last"
}
