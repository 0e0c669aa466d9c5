#!/usr/bin/env bash
# Issue 22: the C++ client library as a bank's back end uses it. `cmake --install` of the client
# component into a scratch prefix; the installed headers include only the standard library and
# each other (no ZeroMQ, msgpack or JSON library); examples/cpp-client is configured against the
# prefix alone (find_package(qianmian), qianmian::client), built, and run against a real server:
# health and a recommend page.
# Usage: client_install_test.sh QIANMIAN_BINARY BUILD_DIR SOURCE_DIR
set -u
QM=${1:?usage: client_install_test.sh QIANMIAN BUILD_DIR SOURCE_DIR}
BUILD=${2:?build dir}
SRC=${3:?source dir}
source "$(dirname "$0")/lib.sh"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  [ -z "${QM_KEEP:-}" ] && rm -rf "$W"
}
trap cleanup EXIT
P="$W/prefix"

if cmake --install "$BUILD" --prefix "$P" --component client >"$W/install.log" 2>&1; then
  ok "cmake --install --component client"
else
  bad "install: $(tail -3 "$W/install.log")"
  exit 1
fi
for f in include/qianmian/client/client.h include/qianmian/core/status.h include/qianmian/core/version.h \
  lib/cmake/qianmian/qianmianConfig.cmake lib/cmake/qianmian/qianmianConfigVersion.cmake \
  lib/cmake/qianmian/qianmianTargets.cmake; do
  [ -f "$P/$f" ] || bad "not installed: $f"
done
ls "$P"/lib/libqianmian-client.so.* >/dev/null 2>&1 && ok "the shared library is installed" ||
  bad "no libqianmian-client.so.* in $P/lib: $(ls -R "$P" | head -20)"
# Every #include of an installed header is a standard header or another installed header.
leaks=$(grep -rhE '^[[:space:]]*#[[:space:]]*include' "$P/include" | grep -vE '#include <[a-z_]+>|#include "qianmian/(client|core)/')
[ -z "$leaks" ] && ok "installed headers include only the standard library and each other" ||
  bad "installed headers include: $leaks"
for h in $(grep -rhoE '"qianmian/[a-z]+/[a-z_]+\.h"' "$P/include" | tr -d '"' | sort -u); do
  [ -f "$P/include/$h" ] || bad "an installed header includes $h, which is not installed"
done
ls "$P"/lib/*.a >/dev/null 2>&1 && bad "static qianmian modules were installed: $(ls "$P"/lib/*.a)"

# The example project sees only the prefix.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if cmake -S "$SRC/examples/cpp-client" -B "$W/example" -DCMAKE_PREFIX_PATH="$P" "${launcher[@]}" \
  >"$W/configure.log" 2>&1 && cmake --build "$W/example" >"$W/build.log" 2>&1; then
  ok "examples/cpp-client configures with find_package(qianmian) and builds against the prefix"
else
  bad "example: $(tail -5 "$W/configure.log" "$W/build.log")"
  exit 1
fi
EX="$W/example/qianmian-client-example"
needed=$(readelf -d "$EX" | grep NEEDED)
if echo "$needed" | grep -q 'libqianmian-client.so' && ! echo "$needed" | grep -qE 'libzmq|msgpack'; then
  ok "the example links libqianmian-client alone (ZeroMQ stays inside it)"
else
  bad "the example's NEEDED: $needed"
fi
# A consumer that asks for a version the prefix does not have is refused by find_package.
mkdir -p "$W/too_new"
sed 's/find_package(qianmian 0.1 REQUIRED)/find_package(qianmian 99.0 REQUIRED)/' \
  "$SRC/examples/cpp-client/CMakeLists.txt" >"$W/too_new/CMakeLists.txt"
cp "$SRC/examples/cpp-client/main.cc" "$W/too_new/"
if cmake -S "$W/too_new" -B "$W/too_new/b" -DCMAKE_PREFIX_PATH="$P" >"$W/too_new.log" 2>&1; then
  bad "find_package(qianmian 99.0) succeeded"
else
  grep -q "qianmian" "$W/too_new.log" && ok "find_package(qianmian 99.0) is refused" || bad "$(tail -3 "$W/too_new.log")"
fi

# Against a real server.
quick_bank 300 20 60 10 7
C=$(sed -n 2p "$W/bank/customers.csv" | cut -d, -f1)
ADDR="ipc://$W/s.sock"
$QM serve --data "$W/bank" --artifacts "$W/art" --bind "$ADDR" >"$W/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "$QM" "$ADDR" "$SERVER_PID" || true  # the checks below say what failed
out=$(LD_LIBRARY_PATH= "$EX" "$ADDR" "$C" 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q '"status":"ok"' && echo "$out" | grep -q "^recommend " &&
  [ "$(echo "$out" | grep -c '^  ')" -ge 1 ]; then
  ok "the example gets health and a page from a real server"
else
  bad "example against the server (exit $rc): $out $(tail -3 "$W/serve.log")"
fi
out=$("$EX" "ipc://$W/nobody.sock" 2>&1)
[ $? -ne 0 ] && echo "$out" | grep -q "health: deadline_exceeded" && ok "no server: the example's call times out" ||
  bad "no server: $out"
finish client_install
