#!/usr/bin/env bash
# Issue 22, packaging: `cpack -G DEB` in the built tree (nothing is rebuilt) makes the qianmian
# and libqianmian-client-dev packages. The test reads their control data (dependencies on Debian
# runtime libraries, conffiles, maintainer scripts), installs both with `dpkg -i` into a scratch
# root (dpkg --root, the maintainer scripts run with DPKG_ROOT), checks the `qianmian` user and
# /var/lib/qianmian the postinst made, starts the unit's ExecStart command from that root on a
# small generated bank (paths moved into the scratch root by QIANMIAN_* variables) and asks it
# for `health`, and removes the package again. Needs root (chown to the package's user): skipped
# (77) otherwise.
# Usage: deb_test.sh QIANMIAN_BINARY BUILD_DIR VERSION
set -u
QM=${1:?usage: deb_test.sh QIANMIAN BUILD_DIR VERSION}
BUILD=${2:?build dir}
VERSION=${3:?version}
[ "$(id -u)" -eq 0 ] || { echo "not root: skipped"; exit 77; }
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps useradd file; do
  command -v $tool >/dev/null || { echo "$tool is missing: skipped"; exit 77; }
done
source "$(dirname "$0")/lib.sh"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; fi
  [ -z "${QM_KEEP:-}" ] && rm -rf "$W"
}
trap cleanup EXIT

# --- build the packages from the built tree
if (cd "$W" && cpack --config "$BUILD/CPackConfig.cmake" -B "$W/pkg") >"$W/cpack.log" 2>&1; then
  ok "cpack -G DEB"
else
  bad "cpack: $(tail -5 "$W/cpack.log")"
  exit 1
fi
DEB=$(ls "$W"/pkg/qianmian_"$VERSION"_*.deb 2>/dev/null | head -1)
DEV=$(ls "$W"/pkg/libqianmian-client-dev_"$VERSION"_*.deb 2>/dev/null | head -1)
[ -n "$DEB" ] && [ -n "$DEV" ] && ok "qianmian_${VERSION} and libqianmian-client-dev_${VERSION} packages" ||
  { bad "packages: $(ls "$W/pkg")"; exit 1; }

depends=$(dpkg-deb -f "$DEB" Depends)
missing=
# Faiss and RocksDB are linked statically (Debian ships libfaiss.a only; RocksDB's CMake package
# names librocksdb.a): their own dependencies (BLAS, LAPACK, OpenMP, snappy, lz4, zstd) show instead.
for lib in libtorch libzmq5 libhiredis libxgboost libtomlplusplus libblas3 libsnappy passwd; do
  echo "$depends" | grep -q "$lib" || missing="$missing $lib"
done
[ -z "$missing" ] && ok "Depends names Debian's runtime libraries (torch, zmq, hiredis, xgboost, BLAS, snappy, ...)" ||
  bad "Depends lacks$missing: $depends"
echo "$depends" | grep -q -- '-dev' && bad "Depends names a -dev package: $depends"
dpkg-deb -e "$DEB" "$W/control"
[ "$(cat "$W/control/conffiles")" = "$(printf '/etc/qianmian/qianmian.toml\n/etc/default/qianmian')" ] &&
  ok "the default configuration is a conffile" || bad "conffiles: $(cat "$W/control/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$W/control/$s" ] && sh -n "$W/control/$s" || bad "maintainer script $s"
done
dpkg-deb -c "$DEB" >"$W/contents.txt"
for f in ./usr/bin/qianmian ./lib/systemd/system/qianmian-serve.service ./etc/qianmian/qianmian.toml; do
  grep -q " $f\$" "$W/contents.txt" || bad "not in the package: $f"
done
dpkg-deb -c "$DEV" | grep -q 'cmake/qianmian/qianmianConfig.cmake$' && ok "the -dev package holds the CMake package" ||
  bad "-dev contents: $(dpkg-deb -c "$DEV" | head)"

# --- install into a scratch root
R="$W/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/etc"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
printf 'root:*::\n' >"$R/etc/gshadow"
cp /etc/login.defs "$R/etc/" 2>/dev/null
DPKG=(dpkg --root="$R" --force-script-chrootless --force-depends --log=/dev/null)
if "${DPKG[@]}" -i "$DEB" "$DEV" >"$W/dpkg.log" 2>&1; then
  ok "dpkg -i both packages into a scratch root"
else
  bad "dpkg -i: $(tail -5 "$W/dpkg.log")"
  exit 1
fi
[ "$(dpkg --root="$R" -s qianmian 2>/dev/null | sed -n 's/^Status: //p')" = "install ok installed" ] &&
  ok "dpkg records qianmian as installed" || bad "status: $(dpkg --root="$R" -s qianmian 2>&1 | head -3)"
user=$(grep '^qianmian:' "$R/etc/passwd")
uid=$(echo "$user" | cut -d: -f3)
if [ -n "$user" ] && [ "$uid" -lt 1000 ] && echo "$user" | grep -q ':/var/lib/qianmian:/usr/sbin/nologin$'; then
  ok "postinst made the system user qianmian ($user)"
else
  bad "user: '$user'"
fi
for d in var/lib/qianmian var/lib/qianmian/data var/lib/qianmian/artifacts; do
  [ "$(stat -c '%u %a' "$R/$d")" = "$uid 750" ] || bad "$d: $(stat -c '%U(%u) %a' "$R/$d")"
done
[ "$(stat -c '%a' "$R/etc/qianmian/qianmian.toml")" = 640 ] && ok "/var/lib/qianmian is the user's; the config 0640" ||
  bad "config mode $(stat -c '%a' "$R/etc/qianmian/qianmian.toml")"
UNIT="$R/lib/systemd/system/qianmian-serve.service"
for opt in User=qianmian ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes ReadWritePaths=/var/lib/qianmian \
  ProtectHome=yes CapabilityBoundingSet= RestartPreventExitStatus=2; do
  grep -qx "$opt" "$UNIT" || bad "the unit lacks $opt"
done
ok "the unit runs as qianmian with the hardening options"
if command -v systemd-analyze >/dev/null && systemd-analyze --help 2>&1 | grep -q -- '--root'; then
  # Only the unit's own syntax counts (the scratch root has no systemd to resolve the rest).
  systemd-analyze verify --root="$R" /lib/systemd/system/qianmian-serve.service >"$W/verify.log" 2>&1
  if grep -qiE 'unknown (key|lvalue|section)|failed to parse|invalid' "$W/verify.log"; then
    bad "systemd-analyze verify: $(head -3 "$W/verify.log")"
  else
    ok "systemd-analyze verify finds no syntax error in the unit"
  fi
fi

# --- the unit's ExecStart, from the scratch root, on a small bank
quick_bank 300 20 60 10 13
cmd=$(sed -n 's/^ExecStart=//p' "$UNIT")
case "$cmd" in
  "/usr/bin/qianmian serve --config /etc/qianmian/qianmian.toml") ok "ExecStart: $cmd" ;;
  *) bad "unexpected ExecStart: $cmd" ;;
esac
ADDR="ipc://$W/deb.sock"
rooted=${cmd//\/usr\/bin\//$R/usr/bin/}
rooted=${rooted//\/etc\//$R/etc/}
# shellcheck disable=SC2086
QIANMIAN_DATA_DIR="$W/bank" QIANMIAN_ARTIFACTS_ROOT="$W/art" QIANMIAN_SERVER_BIND="$ADDR" $rooted >"$W/serve.log" 2>&1 &
SERVER_PID=$!
QMR="$R/usr/bin/qianmian"
wait_ready "$QMR" "$ADDR" "$SERVER_PID" || true  # the checks below say what failed
out=$("$QMR" client --connect "$ADDR" health 2>&1)
echo "$out" | grep -q '"status":"ok"' && ok "the installed ExecStart command serves: health ok" ||
  bad "health: $out $(tail -3 "$W/serve.log")"
"$QMR" client --connect "$ADDR" stats | grep -q "\"server\":\"$VERSION\"" && ok "stats: server version $VERSION" ||
  bad "stats of the installed server"
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
rc=$?
SERVER_PID=
[ $rc -eq 0 ] && ok "SIGTERM (the unit's KillSignal) stops it with exit 0" || bad "exit $rc on SIGTERM"
"$QMR" --version | grep -qx "qianmian $VERSION" || bad "installed --version: $("$QMR" --version)"

# --- removal keeps the configuration (a conffile) until purge; the data stays
"${DPKG[@]}" -r qianmian >"$W/remove.log" 2>&1 || bad "dpkg -r: $(tail -3 "$W/remove.log")"
[ ! -e "$R/usr/bin/qianmian" ] && [ -f "$R/etc/qianmian/qianmian.toml" ] && ok "dpkg -r removes the binary, keeps the conffile" ||
  bad "after dpkg -r: $(ls "$R/usr/bin" "$R/etc/qianmian" 2>&1)"
"${DPKG[@]}" -P qianmian >"$W/purge.log" 2>&1 || bad "dpkg -P: $(tail -3 "$W/purge.log")"
[ ! -e "$R/etc/qianmian/qianmian.toml" ] && [ -d "$R/var/lib/qianmian" ] && ok "purge removes the configuration, keeps /var/lib/qianmian" ||
  bad "after purge: $(ls -la "$R/etc/qianmian" "$R/var/lib" 2>&1 | head -5)"
finish deb
