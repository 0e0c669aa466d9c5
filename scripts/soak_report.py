#!/usr/bin/env python3
"""Report of scripts/soak.sh: per-minute pages/s and p99 (pages and feedback), server RSS, compactions
and errors, with the issue-20 verdicts. Standard library only.

Usage: soak_report.py OUT_DIR (holding latency.csv, rss.csv, stats.json, capacity.txt; and, from
soak.sh since 2026-12-06, cpu.csv and bench_start for the per-second view of the shed pages)
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


def corr(xs, ys):
    n = len(xs)
    if n < 3:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def shed_seconds(out, shed_by_second):
    """Each second of the soak: its shed pages beside the host's steal time, the machine's busy
    share, the server's CPU and its threads' run delay (cpu.csv, one sample a second)."""
    try:
        start = float(open(f"{out}/bench_start").read())
        rows = list(csv.DictReader(open(f"{out}/cpu.csv")))
    except (OSError, ValueError):
        return
    hz = 100.0  # USER_HZ on Linux
    secs = []
    for a, b in zip(rows, rows[1:]):
        try:
            t0, t1 = float(a["epoch_s"]), float(b["epoch_s"])
            total = int(b["total_ticks"]) - int(a["total_ticks"])
            d = {
                "second": int(t1 - start),
                "steal": (int(b["steal_ticks"]) - int(a["steal_ticks"])) / total if total > 0 else 0.0,
                "busy": (int(b["busy_ticks"]) - int(a["busy_ticks"])) / total if total > 0 else 0.0,
                "server_cores": (int(b["server_ticks"]) - int(a["server_ticks"])) / hz / (t1 - t0),
                "run_delay_ms": max(0.0, float(b["server_run_delay_ns"]) - float(a["server_run_delay_ns"])) / 1e6 / (t1 - t0),
            }
            if b.get("serving_run_delay_ns") and a.get("serving_run_delay_ns"):
                d["serving_delay_ms"] = (max(0.0, float(b["serving_run_delay_ns"]) - float(a["serving_run_delay_ns"])) /
                                         1e6 / (t1 - t0))
        except (ValueError, KeyError, ZeroDivisionError):
            continue
        if d["second"] >= 0:
            secs.append(d)
    if not secs:
        return
    for d in secs:
        d["shed"] = shed_by_second.get(d["second"], 0)
    with_shed = [d for d in secs if d["shed"] > 0]
    without = [d for d in secs if d["shed"] == 0]

    def mean(ds, k):
        return sum(d[k] for d in ds) / len(ds) if ds else float("nan")

    print(f"seconds with shed pages: {len(with_shed)} of {len(secs)} ({sum(d['shed'] for d in secs)} pages)")
    keys = ["steal", "busy", "server_cores", "run_delay_ms"] + (["serving_delay_ms"] if "serving_delay_ms" in secs[0] else [])
    print("(run delay: time the server's threads were runnable but waiting for a core, ms per second; "
          "serving: all but RocksDB's background threads and qm-compact, in the idle class)")
    print(f"{'':24s} " + " ".join(f"{k:>16s}" for k in keys))
    for name, ds in (("seconds with shedding", with_shed), ("seconds without", without)):
        print(f"{name:24s} " + " ".join(f"{mean(ds, k):16.3f}" for k in keys))
    sh = [d["shed"] for d in secs]
    print("correlation of a second's shed pages with: " +
          ", ".join(f"{k} {corr(sh, [d[k] for d in secs if k in d]):+.2f}" for k in keys))


def main(out):
    minutes = {}
    errors = {}
    shed_by_second = {}
    with open(f"{out}/latency.csv") as f:
        for row in csv.DictReader(f):
            m = int(row["send_us"]) // 60_000_000
            kind = "feedback" if row["connection"] == "-1" else "page"
            bucket = minutes.setdefault(m, {"page": [], "feedback": []})
            bucket[kind].append(int(row["latency_us"]))
            if row["outcome"] != "ok":
                errors[(kind, row["outcome"])] = errors.get((kind, row["outcome"]), 0) + 1
                if kind == "page":
                    s = int(row["send_us"]) // 1_000_000
                    shed_by_second[s] = shed_by_second.get(s, 0) + 1
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
    settled_at = [(t, kb) for t, kb in rss if t >= soak_start + 120]
    settled = [kb for _, kb in settled_at]
    if settled:
        lo, hi, first, last = min(settled), max(settled), settled[0], settled[-1]
        drift = (last - first) / first * 100
        print(f"rss after 2 min: first {first / 1024:.0f} MB, last {last / 1024:.0f} MB ({drift:+.1f}%), "
              f"range {lo / 1024:.0f}-{hi / 1024:.0f} MB ({(hi - lo) / first * 100:.1f}% of the first)")
        # Single samples ride the store's sawtooth (two 64 MB memtables fill and flush, a compaction
        # holds its buffers for seconds): the verdict compares the medians of the first and the
        # last 5 minutes after the warm-up (at least 30 samples each), and states the trend.
        n = max(1, min(30, len(settled) // 3))
        head, tail = sorted(settled[:n]), sorted(settled[-n:])
        mem_a, mem_b = head[len(head) // 2], tail[len(tail) // 2]
        mem_drift = (mem_b - mem_a) / mem_a * 100
        ts = [t / 600 for t, _ in settled_at]
        mt, mk = sum(ts) / len(ts), sum(settled) / len(settled)
        var = sum((t - mt) ** 2 for t in ts)
        slope = sum((t - mt) * (k - mk) for t, k in zip(ts, settled)) / var if var else 0.0
        print(f"rss median of the first {n * 10 // 60} min after 2 min {mem_a / 1024:.0f} MB, of the last {n * 10 // 60} min "
              f"{mem_b / 1024:.0f} MB ({mem_drift:+.1f}%); trend {slope / 1024:+.1f} MB per 10 min")
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
    ok_mem = settled and abs(mem_drift) <= 5
    print("verdict: memory flat (+-5%):", "yes" if ok_mem else "NO")
    print("verdict: compaction ran:", "yes" if (store.get("compactions") or 0) > 0 and not store.get("compaction_failures") else "NO")
    print("verdict: zero errors:", "yes" if not errors and not server_errors else "NO")
    shed_seconds(out, shed_by_second)


if __name__ == "__main__":
    main(sys.argv[1])
