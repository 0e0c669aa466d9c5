#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds qianmian into build/ (Release, ccache).
# Usage: scripts/build.sh [make targets...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}
jobs=$(nproc 2>/dev/null || echo 2)
[ "$jobs" -gt 2 ] && jobs=2
mkdir -p build
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build/cmake.log 2>&1 || { cat build/cmake.log; exit 1; }
make -C build -j"$jobs" --no-print-directory "$@"
