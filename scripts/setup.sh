#!/usr/bin/env bash
# Installs every Debian package qianmian needs. Quick (a dpkg query) when all are present.
set -euo pipefail
PKGS=(
  build-essential cmake ccache pkg-config git file
  libopenblas-dev libeigen3-dev
  libfaiss-dev libtorch-dev libxgboost-dev libboost-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev
  librocksdb-dev redis-server libhiredis-dev
  libtomlplusplus-dev libcli11-dev libspdlog-dev nlohmann-json3-dev
  libxxhash-dev libssl-dev
  libhowardhinnant-date-dev tzdata
  libcpp-httplib-dev python3-prometheus-client libsodium-dev
  chromium chromium-driver python3-selenium
  libgtest-dev libbenchmark-dev
  libstb-dev
  python3 python3-matplotlib python3-numpy python3-zmq python3-msgpack python3-torch
  libfaketime
  clang-format
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
