#!/usr/bin/env bash
# Installs what building and testing need, and only what is missing:
#   etcd + etcdctl   (Debian etcd-server, etcd-client)  — tests start real etcd servers
#   protoc           (Debian protobuf-compiler)         — etcd-client compiles etcd's protobufs
#   kubectl          (Debian kubectl or kubernetes-client) — kubesim's compatibility tests
#   wasm32-wasip2    (rustup target)                    — the plugins are WASM components
set -euo pipefail

packages=()
command -v etcd >/dev/null 2>&1 || packages+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || packages+=(etcd-client)
command -v protoc >/dev/null 2>&1 || packages+=(protobuf-compiler)
if ! command -v kubectl >/dev/null 2>&1; then
  if apt-cache show kubectl >/dev/null 2>&1; then packages+=(kubectl); else packages+=(kubernetes-client); fi
fi

if ((${#packages[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "bootstrap: installing ${packages[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
  echo "bootstrap: adding the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2
fi
