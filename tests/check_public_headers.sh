#!/usr/bin/env bash
# Fails when a public header (<module>/include/**) includes Faiss, libtorch, ZeroMQ, msgpack, XGBoost,
# RocksDB or hiredis. Usage: check_public_headers.sh ROOT
set -u
root=${1:?usage: check_public_headers.sh ROOT}
pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](torch/|ATen/|c10/|faiss/|zmq\.h|zmq\.hpp|zmq_addon\.hpp|msgpack|rocksdb/|hiredis/|hiredis\.h|xgboost/)'
hits=$(grep -rEn "$pattern" --include='*.h' --include='*.hpp' "$root"/*/include 2>/dev/null)
if [ -n "$hits" ]; then
  echo "public headers include heavy third-party headers (keep them in .cc files):"
  echo "$hits"
  exit 1
fi
count=$(find "$root"/*/include -name '*.h' 2>/dev/null | wc -l)
echo "checked $count public headers: none includes Faiss, libtorch, XGBoost, ZeroMQ, msgpack, RocksDB or hiredis"
