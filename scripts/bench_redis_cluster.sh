#!/bin/bash
# scripts/bench_redis_cluster.sh (issue 21): the policy store's throughput on one redis-server against
# a three-node Redis Cluster (all without AOF, on ports 31001-31004), two alternating rounds of
# qm_policy_bench's Redis benchmarks. Not in CI; figures in docs/BENCHMARKS.md.
W=$(mktemp -d); PIDS=()
for i in 1 2 3 4; do p=$((31000 + i)); mkdir -p $W/n$i
  extra=""; [ $i -le 3 ] && extra="--cluster-enabled yes --cluster-config-file $W/n$i/nodes.conf"
  redis-server --port $p --bind 127.0.0.1 --save '' --appendonly no --dir $W/n$i $extra > $W/n$i/log 2>&1 & PIDS+=($!)
done
sleep 1
redis-cli --cluster create 127.0.0.1:31001 127.0.0.1:31002 127.0.0.1:31003 --cluster-replicas 0 --cluster-yes > $W/create.log 2>&1
for _ in $(seq 1 100); do redis-cli -p 31001 cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
B=${QM_POLICY_BENCH:-$(cd "$(dirname "$0")/.." && pwd)/build/policy/qm_policy_bench}
for round in 1 2; do
  echo "== round $round single"; QM_BENCH_REDIS_PORT=31004 $B --benchmark_filter='/1' 2>&1 | grep "^BM_" | cut -c1-160
  redis-cli -p 31004 flushall >/dev/null
  echo "== round $round cluster"; QM_BENCH_REDIS_PORT=31001 QM_BENCH_REDIS_CLUSTER=1 $B --benchmark_filter='/1' 2>&1 | grep "^BM_" | cut -c1-160
  for p in 31001 31002 31003; do redis-cli -p $p flushall >/dev/null; done
done
for p in "${PIDS[@]}"; do kill $p; done; wait; rm -rf $W
