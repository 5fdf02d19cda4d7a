#!/usr/bin/env bash
# Builds the book (docs/, mkdocs.yml) with `mkdocs build --strict`: a broken internal link, a
# missing anchor or a page left out of the nav fails the build.
#
# MkDocs comes from PyPI, pinned (scripts/docs-requirements.txt), into a virtualenv under
# ~/.cache that survives fresh clones; it is installed only when missing or when the pins change.
# The build itself reads only this repository: it needs no network.
#
#   scripts/docs.sh                  build into target/docs-site (open target/docs-site/index.html)
#   scripts/docs.sh serve            live preview on http://127.0.0.1:8000
#   CHAOS_DOCS_VENV=DIR              use (or create) the virtualenv in DIR
set -euo pipefail
cd "$(dirname "$0")/.."

requirements=scripts/docs-requirements.txt
pins=$(sha256sum "$requirements" | cut -c1-12)
venv=${CHAOS_DOCS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos-docs/venv-$pins}

if [ ! -x "$venv/bin/mkdocs" ]; then
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "docs: installing python3-venv" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "docs: installing MkDocs ($(grep -m1 '^mkdocs==' "$requirements")) into $venv" >&2
  rm -rf "$venv.partial"
  python3 -m venv "$venv.partial"
  "$venv.partial/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$requirements"
  rm -rf "$venv"
  mv "$venv.partial" "$venv"
fi

# A virtualenv's scripts carry its path; one moved into place is run through its python.
mkdocs=("$venv/bin/python" -m mkdocs)

if [ "${1:-}" = serve ]; then
  exec "${mkdocs[@]}" serve --strict
fi
site=${CHAOS_DOCS_SITE:-target/docs-site}
"${mkdocs[@]}" build --strict --clean --site-dir "$site"
echo "docs: built $(find "$site" -name '*.html' | wc -l) pages into $site"
