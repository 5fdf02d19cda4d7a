#!/usr/bin/env bash
# Regenerates what the SDKs are made from: the OpenAPI document this build serves
# (sdk/openapi.json, from `chaos-apiserver --print-openapi`) and the clients openapi-generator
# generates from it: Python (sdk/python/chaos_client) and Go (sdk/go/chaosapi). Run it after
# changing the API; the tests fail while any of them is stale (scripts/sdk.sh --check, and the
# apiserver's own unit test).
#
#   scripts/sdk-generate.sh           regenerate all three
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
# gofmt formats the Go client, and the Go toolchain checks it builds with the standard library.
if ! command -v go >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "sdk: installing Debian's Go toolchain (golang-go)" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq golang-go >/dev/null
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

# The Go client: the package chaosapi, in sdk/go's module; only its .go files are kept (the
# generator's README, docs, api/openapi.yaml, git_push.sh and CI files are not part of the package).
java -jar "$jar" generate --input-spec "$work/openapi.json" --generator-name go \
  --output "$work/go" --package-name chaosapi \
  --additional-properties=packageVersion=0.1.0,withGoMod=false,enumClassPrefix=true,isGoSubmodule=true \
  --global-property=apiTests=false,modelTests=false,apiDocs=false,modelDocs=false \
  >"$work/generator.log" 2>&1 || { cat "$work/generator.log" >&2; exit 1; }
mkdir "$work/chaosapi"
cp "$work/go"/*.go "$work/chaosapi/"
# The SDK takes nothing but the standard library (there is no module proxy to fetch from). The
# generator's one other import is gopkg.in/validator.v2, in model_port_ref.go: PortRef is a oneOf
# (a port by number or by name), and its UnmarshalJSON runs validator.Validate on each branch it
# decoded. That checks the `validate` tags of structs; a number and a string have none, so the
# import goes and the call becomes nil (no error: a branch that decoded is taken). A new use of
# the validator elsewhere fails the build check below, to be looked at rather than edited away.
sed -i -e '/"gopkg.in\/validator.v2"/d' -e 's/validator\.Validate([^)]*)/nil/' "$work/chaosapi/model_port_ref.go"
# The generator's Go is not gofmt'ed; gofmt is deterministic (for one Go release), so this keeps
# the committed package the same from run to run.
gofmt -w "$work/chaosapi"
# Fails when an import outside the standard library is left (module lookups are off).
printf 'module chaosapi\n\ngo 1.19\n' >"$work/chaosapi/go.mod"
(cd "$work/chaosapi" && GOPROXY=off GOFLAGS=-mod=mod GOWORK=off go build ./) ||
  { echo "sdk: the generated Go client does not build with the standard library alone" >&2; exit 1; }
rm "$work/chaosapi/go.mod"

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
  if ! diff -r "$work/chaosapi" sdk/go/chaosapi >"$work/diff" 2>&1; then
    echo "sdk: sdk/go/chaosapi is stale: run scripts/sdk-generate.sh" >&2
    head -n 40 "$work/diff" >&2
    stale=1
  fi
  exit $stale
fi
cp "$work/openapi.json" sdk/openapi.json
rm -rf sdk/python/chaos_client sdk/go/chaosapi
cp -r "$work/python/chaos_client" sdk/python/chaos_client
cp -r "$work/chaosapi" sdk/go/chaosapi
echo "sdk: regenerated sdk/openapi.json, sdk/python/chaos_client and sdk/go/chaosapi"
