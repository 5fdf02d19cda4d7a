#!/usr/bin/env bash
# Regenerates what the SDKs are made from: the OpenAPI document this build serves
# (sdk/openapi.json, from `chaos-apiserver --print-openapi`) and the Python client generated from
# it by openapi-generator (sdk/python/chaos_client). Run it after changing the API; the tests
# fail while either is stale (scripts/sdk.sh --check, and the apiserver's own unit test).
#
#   scripts/sdk-generate.sh           regenerate both
#   scripts/sdk-generate.sh --check   regenerate into a temporary directory and fail when the
#                                     committed files differ
#   CHAOS_APISERVER=PATH              the apiserver binary (default: $CARGO_TARGET_DIR/debug/chaos-apiserver)
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
apiserver=${CHAOS_APISERVER:-$target/debug/chaos-apiserver}
check=false
[ "${1:-}" = "--check" ] && check=true

# shellcheck source=scripts/venv.sh
. scripts/venv.sh
venv=$(pinned_venv sdk sdk/requirements.txt "${CHAOS_SDK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/chaos-sdk}")
if ! command -v java >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "sdk: installing a Java runtime for openapi-generator" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq default-jre-headless >/dev/null
fi
if [ ! -x "$apiserver" ]; then
  cargo build -q -p chaos-apiserver
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$apiserver" --print-openapi >"$work/openapi.json"
# The generator's own files (README, docs, tests, setup files) are left out: the package's
# metadata, docs and tests are hand-written in sdk/python.
# The generator's jar, from its PyPI package (its console script would carry the path the
# virtualenv was built at).
jar=$("$venv/bin/python" -c 'import importlib.resources as r; print(r.files("openapi_generator_cli") / "openapi-generator.jar")')
java -jar "$jar" generate --input-spec "$work/openapi.json" --generator-name python \
  --output "$work/python" --package-name chaos_client \
  --additional-properties=packageVersion=0.1.0,projectName=chaos-client \
  --global-property=apiTests=false,modelTests=false,apiDocs=false,modelDocs=false \
  >"$work/generator.log" 2>&1 || { cat "$work/generator.log" >&2; exit 1; }

if $check; then
  stale=0
  if ! diff -q "$work/openapi.json" sdk/openapi.json >/dev/null; then
    echo "sdk: sdk/openapi.json is stale: run scripts/sdk-generate.sh" >&2
    stale=1
  fi
  if ! diff -r "$work/python/chaos_client" sdk/python/chaos_client >"$work/diff" 2>&1; then
    echo "sdk: sdk/python/chaos_client is stale: run scripts/sdk-generate.sh" >&2
    head -n 40 "$work/diff" >&2
    stale=1
  fi
  exit $stale
fi
cp "$work/openapi.json" sdk/openapi.json
rm -rf sdk/python/chaos_client
cp -r "$work/python/chaos_client" sdk/python/chaos_client
echo "sdk: regenerated sdk/openapi.json and sdk/python/chaos_client"
