#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (unit, black-box,
# project checks) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
cd build
ctest --output-on-failure -j2 --timeout 900
