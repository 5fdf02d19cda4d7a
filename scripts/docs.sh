#!/usr/bin/env bash
# Builds the book (docs/, mkdocs.yml) with `mkdocs build --strict`: a broken internal link, a
# missing anchor or a page left out of the nav fails the build.
#
# MkDocs comes from PyPI, pinned (scripts/docs-requirements.txt), into a virtualenv under
# ~/.cache that survives fresh clones (scripts/venv.sh); it is installed only when missing or when
# the pins or the interpreter change.
# The build itself reads only this repository: it needs no network.
#
#   scripts/docs.sh                  build into target/docs-site (open target/docs-site/index.html)
#   scripts/docs.sh serve            live preview on http://127.0.0.1:8000
#   CHAOS_DOCS_VENV=DIR              keep the virtualenvs in DIR
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
venv=$(pinned_venv docs scripts/docs-requirements.txt "${CHAOS_DOCS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos-docs}")

# A virtualenv's scripts carry its path; one moved into place is run through its python.
mkdocs=("$venv/bin/python" -m mkdocs)

if [ "${1:-}" = serve ]; then
  exec "${mkdocs[@]}" serve --strict
fi
site=${CHAOS_DOCS_SITE:-target/docs-site}
"${mkdocs[@]}" build --strict --clean --site-dir "$site"
echo "docs: built $(find "$site" -name '*.html' | wc -l) pages into $site"
