#!/usr/bin/env python3
"""Report of scripts/soak.sh: per-minute pages/s and p99 (pages and feedback), server RSS, compactions
and errors, with the issue-20 verdicts. Standard library only.

Usage: soak_report.py OUT_DIR (holding latency.csv, rss.csv, stats.json, capacity.txt)
"""
import csv
import json
import math
import sys


def p99(values):
    if not values:
        return 0.0
    s = sorted(values)
    return s[max(0, math.ceil(0.99 * len(s)) - 1)] / 1000.0


def main(out):
    minutes = {}
    errors = {}
    with open(f"{out}/latency.csv") as f:
        for row in csv.DictReader(f):
            m = int(row["send_us"]) // 60_000_000
            kind = "feedback" if row["connection"] == "-1" else "page"
            bucket = minutes.setdefault(m, {"page": [], "feedback": []})
            bucket[kind].append(int(row["latency_us"]))
            if row["outcome"] != "ok":
                errors[(kind, row["outcome"])] = errors.get((kind, row["outcome"]), 0) + 1
    rss = []
    with open(f"{out}/rss.csv") as f:
        for row in csv.DictReader(f):
            if row["rss_kb"]:
                rss.append((int(row["t_s"]), int(row["rss_kb"])))
    stats = json.load(open(f"{out}/stats.json"))
    print("minute  pages/s  page p99 ms  feedback/s  feedback p99 ms")
    full = sorted(m for m in minutes if m < max(minutes))  # the last minute is partial
    for m in full:
        b = minutes[m]
        print(f"{m:6d} {len(b['page']) / 60:8.1f} {p99(b['page']):12.2f} {len(b['feedback']) / 60:11.1f} "
              f"{p99(b['feedback']):16.2f}")
    # Memory: the soak's RSS samples after its first 2 minutes (the capacity runs come before it).
    soak_start = rss[-1][0] - 60 * (len(full) + 1) if rss else 0
    settled = [kb for t, kb in rss if t >= soak_start + 120]
    if settled:
        lo, hi, first, last = min(settled), max(settled), settled[0], settled[-1]
        drift = (last - first) / first * 100
        print(f"rss after 2 min: first {first / 1024:.0f} MB, last {last / 1024:.0f} MB ({drift:+.1f}%), "
              f"range {lo / 1024:.0f}-{hi / 1024:.0f} MB ({(hi - lo) / first * 100:.1f}% of the first)")
    p99s = [p99(minutes[m]["page"]) for m in full[1:]]
    if p99s:
        half = len(p99s) // 2
        a = sorted(p99s[:half])[len(p99s[:half]) // 2] if half else p99s[0]
        b = sorted(p99s[half:])[len(p99s[half:]) // 2]
        print(f"page p99 per minute: min {min(p99s):.2f} ms, max {max(p99s):.2f} ms; median first half {a:.2f} ms, "
              f"second half {b:.2f} ms")
    store = stats.get("store", {})
    print(f"compactions {store.get('compactions')}, failures {store.get('compaction_failures')}, store {store.get('status')}")
    server_errors = {op: v["errors"] for op, v in stats.get("ops", {}).items() if v.get("errors")}
    print(f"server errors by op: {server_errors or 'none'}; client-side outcomes other than ok: {errors or 'none'}")
    ok_mem = settled and abs(last - first) / first <= 0.05
    print("verdict: memory flat (+-5%):", "yes" if ok_mem else "NO")
    print("verdict: compaction ran:", "yes" if (store.get("compactions") or 0) > 0 and not store.get("compaction_failures") else "NO")
    print("verdict: zero errors:", "yes" if not errors and not server_errors else "NO")


if __name__ == "__main__":
    main(sys.argv[1])
