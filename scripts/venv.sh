# shellcheck shell=bash
# Sourced by the scripts that run Python tools from PyPI (scripts/docs.sh, scripts/pyclient.sh):
# one pinned virtualenv per set of pins and interpreter, under ~/.cache so that it survives fresh
# clones, installed only when missing.
#
#   pinned_venv WHO REQUIREMENTS DIR   prints the virtualenv's directory, installing it first if
#                                      needed; WHO prefixes the messages, DIR is where it lives
#                                      (the caller's override, or ~/.cache/chaos-WHO)

pinned_venv() {
  local who=$1 requirements=$2 home=$3 pins venv lock
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "$who: installing python3-venv" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  # A virtualenv is tied to its python: a new interpreter gets a new one.
  pins=$( (cat "$requirements" && python3 --version) | sha256sum | cut -c1-12)
  venv=$home/venv-$pins
  mkdir -p "$home"
  # Two runs at once (two worktrees, two lanes) must not build the same virtualenv side by side.
  exec {lock}>"$venv.lock"
  flock "$lock"
  if [ ! -x "$venv/bin/python" ]; then
    echo "$who: installing $requirements into $venv" >&2
    rm -rf "$venv.partial"
    python3 -m venv "$venv.partial"
    if ! "$venv.partial/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements" >&2; then
      echo "$who: FAILED to install $requirements from PyPI (see pip's error above)" >&2
      exec {lock}>&-
      return 1
    fi
    rm -rf "$venv"
    mv "$venv.partial" "$venv"
  fi
  exec {lock}>&-
  echo "$venv"
}
