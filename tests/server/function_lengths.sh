#!/usr/bin/env bash
# Lists the longest C++ function definitions under the given folders (lambdas count toward the
# function that holds them) and fails when one is longer than --max lines (issue 15: "no function
# in server/src longer than about 120 lines"). Uses universal-ctags; exits 77 (skip) without it.
# Usage: function_lengths.sh [--max N] [--top K] DIR...   |   function_lengths.sh --self-test
set -euo pipefail
max=120
top=5
command -v ctags >/dev/null && ctags --version 2>/dev/null | grep -q Universal ||
  { echo "universal-ctags not installed (apt-get install -y universal-ctags): skipped" >&2; exit 77; }
if [ "${1:-}" = "--self-test" ]; then
  # The check itself: a function of max + 1 lines fails, one of max lines passes.
  dir=$(mktemp -d)
  trap 'rm -rf "$dir"' EXIT
  body() { printf 'int F() {\n'; for _ in $(seq 1 $(($1 - 2))); do printf '  ;\n'; done; printf '}\n'; }
  mkdir "$dir/long" "$dir/ok"
  body 121 >"$dir/long/a.cc"
  body 120 >"$dir/ok/a.cc"
  if bash "$0" --max 120 "$dir/long" >/dev/null 2>&1; then echo "self-test: a 121-line function passed" >&2; exit 1; fi
  bash "$0" --max 120 "$dir/ok" >/dev/null || { echo "self-test: a 120-line function failed" >&2; exit 1; }
  echo "self-test: ok"
  exit 0
fi
while [ $# -gt 0 ]; do
  case "$1" in
    --max) max=$2; shift 2 ;;
    --top) top=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--max N] [--top K] DIR..." >&2; exit 2; }
lengths=$(find "$@" -type f \( -name '*.cc' -o -name '*.h' \) -print0 | sort -z |
  xargs -0 ctags -x --languages=C++ --kinds-C++=f --_xformat='%{line} %{end} %{input} %{scope}::%{name}' |
  awk '$2 != "" { printf "%d %s:%d %s\n", $2 - $1 + 1, $3, $1, $4 }' | sed 's/ ::/ /' | sort -rn)
printf '%s\n' "$lengths" | awk -v t="$top" 'NR <= t'
over=$(printf '%s\n' "$lengths" | awk -v m="$max" '$1 > m' | wc -l)
if [ "$over" -gt 0 ]; then
  echo "$over function(s) longer than $max lines" >&2
  exit 1
fi
