#!/usr/bin/env bash
# Fuzzes the server's request decoder with libFuzzer for SECONDS (default 60): builds
# qm_request_fuzzer with clang (AddressSanitizer, UndefinedBehaviorSanitizer) in build-fuzz/,
# seeds a corpus with a few valid requests, and fails on any crash, leak or sanitizer report.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
scripts/setup.sh
if ! command -v clang++ >/dev/null; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends clang >/dev/null
fi
cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DQM_FUZZ=ON >/dev/null
cmake --build build-fuzz -j2 --target qm_request_fuzzer
corpus=build-fuzz/fuzz-corpus
mkdir -p "$corpus"
# {"op":"health"}, {"op":"recommend","customer_id":"C1","channel":"app_home","count":5},
# {"op":"feedback","events":[{"type":"click","ts_ms":1}]}
printf '\x81\xa2op\xa6health' >"$corpus/health"
printf '\x84\xa2op\xa9recommend\xabcustomer_id\xa2C1\xa7channel\xa8app_home\xa5count\x05' >"$corpus/recommend"
printf '\x82\xa2op\xa8feedback\xa6events\x91\x82\xa4type\xa5click\xa5ts_ms\x01' >"$corpus/feedback"
build-fuzz/server/qm_request_fuzzer -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -print_final_stats=1 "$corpus"
