#!/usr/bin/env python3
"""Report of scripts/soak.sh: per-minute pages/s and p99 (pages and feedback), server RSS, compactions
and errors, with the issue-20 verdicts. Standard library only.

Usage: soak_report.py OUT_DIR (holding latency.csv, rss.csv, stats.json, capacity.txt; and, from
soak.sh since 2026-12-06, cpu.csv and bench_start for the per-second view of the shed pages; since
2026-12-07 capacity_end.txt, the capacity measured again after the soak)
"""
import collections
import csv
import datetime
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


def rocksdb_jobs(out):
    """RocksDB's flushes and compactions from its LOG (EVENT_LOG_v1 lines): (start_s, end_s, kind,
    detail) in epoch seconds; [] without the log (soak.sh copies it since 2026-12-07)."""
    starts, jobs = {}, []
    try:
        lines = open(f"{out}/rocksdb.LOG", errors="replace").readlines()
    except OSError:
        return jobs
    for line in lines:
        k = line.find("EVENT_LOG_v1 ")
        if k < 0:
            continue
        try:
            e = json.loads(line[k + len("EVENT_LOG_v1 "):])
        except ValueError:
            continue
        ev, t = e.get("event", ""), e.get("time_micros", 0) / 1e6
        if ev in ("flush_started", "compaction_started"):
            starts[e.get("job")] = (t, e)
        elif ev in ("flush_finished", "compaction_finished") and e.get("job") in starts:
            t0, s0 = starts.pop(e.get("job"))
            if ev == "flush_finished":
                detail = f"flush of {s0.get('total_data_size', 0) / 1e6:.0f} MB"
                volume = {"flushed": s0.get("total_data_size", 0)}
            else:
                volume = {"compacted_in": s0.get("input_data_size", 0), "compacted_out": e.get("total_output_size", 0),
                          "compaction_cpu_s": e.get("compaction_time_cpu_micros", 0) / 1e6}
                levels = sorted(int(key[len("files_L"):]) for key in s0 if key.startswith("files_L"))
                detail = (f"compaction L{'+L'.join(map(str, levels))} -> L{e.get('output_level')}, "
                          f"{s0.get('input_data_size', 0) / 1e6:.0f} MB in, "
                          f"{e.get('compaction_time_cpu_micros', 0) / 1e6:.1f} s CPU")
            jobs.append((t0, t, ev.split("_")[0], detail, volume))
    return jobs


def server_compactions(out):
    """The server's own compactions (serve.log: 'event store compacted in N ms (DETAIL)'): (start_s,
    end_s, DETAIL), DETAIL the locks it held or, since 2026-12-07, its steps holding locks."""
    spans = []
    try:
        for line in open(f"{out}/serve.log", errors="replace"):
            if "event store compacted in" not in line:
                continue
            stamp = datetime.datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S.%f")
            end = stamp.replace(tzinfo=datetime.timezone.utc).timestamp()  # the server logs the host's (UTC) time
            ms = int(line.split("compacted in ")[1].split()[0])
            detail = line.split(" ms (", 1)[1].rstrip().rstrip(")") if " ms (" in line else ""
            spans.append((end - ms / 1000.0, end, detail))
    except (OSError, ValueError, IndexError):
        pass
    return spans


def shed_seconds(out, shed_by_second, ok_by_second):
    """Each second of the soak: its shed pages beside the host's steal time, the machine's busy
    share, the server's CPU (all, its workers, RocksDB's threads, qm-compact), the bench's, the
    workers' CPU per page served, and the threads' run delay (cpu.csv, one sample a second). Then
    the episodes of shedding, each with what ran in it."""
    try:
        start = float(open(f"{out}/bench_start").read())
        rows = list(csv.DictReader(open(f"{out}/cpu.csv")))
    except (OSError, ValueError):
        return
    hz = 100.0  # USER_HZ on Linux
    secs = []

    def rate(a, b, key, per):
        if not a.get(key) or not b.get(key):
            raise KeyError(key)
        return (float(b[key]) - float(a[key])) / per

    for a, b in zip(rows, rows[1:]):
        try:
            t0, t1 = float(a["epoch_s"]), float(b["epoch_s"])
            total = int(b["total_ticks"]) - int(a["total_ticks"])
            d = {
                "second": int(t1 - start),
                "epoch": t1,
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
        for key, name in (("workers_ticks", "workers_cores"), ("workers_sys_ticks", "workers_sys"),
                          ("rocksdb_ticks", "rocksdb_cores"), ("compact_ticks", "compact_cores"),
                          ("other_ticks", "other_cores"), ("bench_ticks", "bench_cores")):
            try:
                d[name] = rate(a, b, key, hz * (t1 - t0))
            except (ValueError, KeyError):
                pass
        for key in ("minflt", "majflt"):
            try:
                d[key + "_per_s"] = rate(a, b, key, t1 - t0)
            except (ValueError, KeyError):
                pass
        if "bench_cores" in d:
            # What ran outside the server and the load generator (other processes, the kernel's
            # own threads): a soak wants the machine to itself, and this says when it did not.
            busy_cores = (int(b["busy_ticks"]) - int(a["busy_ticks"])) / hz / (t1 - t0)
            d["outside_cores"] = max(0.0, busy_cores - d["server_cores"] - d["bench_cores"])
        if d["second"] >= 0:
            secs.append(d)
    if not secs:
        return
    for d in secs:
        d["shed"] = shed_by_second.get(d["second"], 0)
        ok = ok_by_second.get(d["second"], 0)
        if "workers_cores" in d and ok > 0:
            d["worker_ms_per_page"] = d["workers_cores"] * 1000.0 / ok
    with_shed = [d for d in secs if d["shed"] > 0]
    without = [d for d in secs if d["shed"] == 0]

    def mean(ds, k):
        vs = [d[k] for d in ds if k in d]
        return sum(vs) / len(vs) if vs else float("nan")

    print(f"seconds with shed pages: {len(with_shed)} of {len(secs)} ({sum(d['shed'] for d in secs)} pages)")
    order = ["steal", "busy", "server_cores", "workers_cores", "workers_sys", "worker_ms_per_page", "rocksdb_cores",
             "compact_cores", "other_cores", "bench_cores", "outside_cores", "minflt_per_s", "majflt_per_s", "run_delay_ms",
             "serving_delay_ms"]
    keys = [k for k in order if any(k in d for d in secs)]
    print("(run delay: time the server's threads were runnable but waiting for a core, ms per second; "
          "serving: all but RocksDB's background threads and qm-compact, in the idle class; "
          "worker_ms_per_page: the workers' CPU per page answered ok)")
    for name, ds in (("seconds with shedding", with_shed), ("seconds without", without)):
        print(f"  {name}: " + ", ".join(f"{k} {mean(ds, k):.3f}" for k in keys))
    sh = [d["shed"] for d in secs]
    print("correlation of a second's shed pages with: " +
          ", ".join(f"{k} {corr([d['shed'] for d in secs if k in d], [d[k] for d in secs if k in d]):+.2f}"
                    for k in keys))
    # Episodes: shed seconds less than 3 s apart; the largest five, with what ran in them.
    episodes = []
    for d in with_shed:
        if episodes and d["second"] - episodes[-1][-1]["second"] < 3:
            episodes[-1].append(d)
        else:
            episodes.append([d])
    jobs, compactions = rocksdb_jobs(out), server_compactions(out)
    big = sorted(episodes, key=lambda e: -sum(d["shed"] for d in e))[:5]
    total = sum(sh)
    print(f"episodes of shedding: {len(episodes)}; the largest {len(big)} hold "
          f"{sum(sum(d['shed'] for d in e) for e in big)} of {total} shed pages")
    by_second = {d["second"]: d for d in secs}
    for e in sorted(big, key=lambda e: e[0]["second"]):
        s0, s1 = e[0]["second"], e[-1]["second"]
        before = [by_second[s] for s in range(s0 - 60, s0 - 5) if s in by_second]
        e0, e1 = e[0]["epoch"] - 1, e[-1]["epoch"]
        print(f"  seconds {s0}-{s1} ({s1 - s0 + 1} s, {sum(d['shed'] for d in e)} shed): " +
              ", ".join(f"{k} {mean(e, k):.3f} (the minute before {mean(before, k):.3f})"
                        for k in ("busy", "workers_cores", "worker_ms_per_page", "workers_sys", "rocksdb_cores",
                                  "compact_cores", "bench_cores", "outside_cores", "minflt_per_s") if k in keys))
        for j0, j1, kind, detail, _ in jobs:
            if j0 < e1 + 30 and j1 > e0 - 30:
                print(f"    rocksdb {detail}: seconds {j0 - start:.0f}-{j1 - start:.0f}")
        for c0, c1, _ in compactions:
            if c0 < e1 + 30 and c1 > e0 - 30:
                print(f"    server compaction: seconds {c0 - start:.0f}-{c1 - start:.0f}")
    if jobs:
        spans = [(j0, j1) for j0, j1, kind, _, _ in jobs if kind == "compaction"]
        inside = sum(d["shed"] for d in secs if any(j0 - 1 <= d["epoch"] <= j1 + 1 for j0, j1 in spans))
        print(f"rocksdb: {sum(1 for j in jobs if j[2] == 'flush')} flushes, "
              f"{sum(1 for j in jobs if j[2] == 'compaction')} compactions; shed pages in seconds of a RocksDB "
              f"compaction: {inside} of {total}")
        # The store's background work in the soak's window (jobs begun after its start), per page
        # sent: what a change to what the store writes changes, whatever the host's noise.
        pages = sum(ok_by_second.values()) + sum(shed_by_second.values())  # every page sent but other errors
        vol = collections.Counter()
        for j0, _, _, _, v in jobs:
            if j0 >= start:
                vol.update(v)
        if pages:
            print(f"rocksdb in the soak: {vol['flushed'] / 1e6:.0f} MB flushed ({vol['flushed'] / pages:.0f} bytes a "
                  f"page), compactions {vol['compacted_in'] / 1e6:.0f} MB in, {vol['compacted_out'] / 1e6:.0f} MB out "
                  f"({vol['compacted_out'] / pages:.0f} bytes a page), {vol['compaction_cpu_s']:.1f} s of CPU")
    # The server's own compactions: shed pages in their seconds against the others (a compaction that
    # holds a lock the workers wait for sheds in its seconds), and what each held.
    if compactions:
        during = [any(c0 - 1 <= d["epoch"] <= c1 + 1 for c0, c1, _ in compactions) for d in secs]
        inside = [d for d, x in zip(secs, during) if x]
        outside = [d for d, x in zip(secs, during) if not x]
        per_s = lambda ds: sum(d["shed"] for d in ds) / max(1, len(ds))  # noqa: E731
        print(f"server compactions: {len(compactions)}, {sum(c1 - c0 for c0, c1, _ in compactions):.0f} s; shed pages "
              f"in their seconds: {sum(d['shed'] for d in inside)} of {total} ({per_s(inside):.1f} a second against "
              f"{per_s(outside):.1f} in the others; steal {mean(inside, 'steal'):.3f} against "
              f"{mean(outside, 'steal'):.3f})")
        for c0, c1, detail in compactions:
            if c1 >= start:
                print(f"  seconds {c0 - start:.0f}-{c1 - start:.0f}: {detail}")
    # The host's steal per minute beside the pages shed: a VM's neighbours take its CPU in bursts,
    # and a minute of steal sheds pages whatever the server does.
    by_minute = collections.defaultdict(list)
    for d in secs:
        by_minute[d["second"] // 60].append(d)
    print("steal (share of the CPU time) / shed pages, by minute: " +
          " ".join(f"{mean(v, 'steal'):.2f}/{sum(d['shed'] for d in v)}" for _, v in sorted(by_minute.items())))
    quiet = [v for v in by_minute.values() if mean(v, "steal") < 0.02]
    print(f"minutes with steal under 2%: {len(quiet)} of {len(by_minute)}, "
          f"{sum(d['shed'] for v in quiet for d in v)} of {total} shed pages in them")


def main(out):
    minutes = {}
    errors = {}
    shed_by_second = {}
    ok_by_second = {}
    with open(f"{out}/latency.csv") as f:
        for row in csv.DictReader(f):
            m = int(row["send_us"]) // 60_000_000
            kind = "feedback" if row["connection"] == "-1" else "page"
            bucket = minutes.setdefault(m, {"page": [], "feedback": []})
            bucket[kind].append(int(row["latency_us"]))
            if kind == "page" and row["outcome"] == "ok":
                s = int(row["send_us"]) // 1_000_000
                ok_by_second[s] = ok_by_second.get(s, 0) + 1
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
    # Capacity at the start and (soak.sh since 2026-12-07) at the end, beside the soak's rate.
    caps = {}
    for name, label in (("capacity.txt", "start"), ("capacity_end.txt", "end")):
        try:
            for line in open(f"{out}/{name}"):
                if line.startswith("requests ") and "ok " in line:
                    caps[label] = float(line.rsplit("(", 1)[1].split()[0])
        except (OSError, ValueError, IndexError):
            pass
    pages = sum(len(minutes[m]["page"]) for m in full)
    if caps and full:
        rate = pages / (60 * len(full))
        print("capacity: " + ", ".join(f"at the {k} {v:.1f} pages/s (the soak's {rate:.1f} pages/s: {100 * rate / v:.0f}%)"
                                        for k, v in caps.items() if v > 0))
    store = stats.get("store", {})
    print(f"compactions {store.get('compactions')}, failures {store.get('compaction_failures')}, store {store.get('status')}")
    server_errors = {op: v["errors"] for op, v in stats.get("ops", {}).items() if v.get("errors")}
    print(f"server errors by op: {server_errors or 'none'}; client-side outcomes other than ok: {errors or 'none'}")
    ok_mem = settled and abs(mem_drift) <= 5
    print("verdict: memory flat (+-5%):", "yes" if ok_mem else "NO")
    print("verdict: compaction ran:", "yes" if (store.get("compactions") or 0) > 0 and not store.get("compaction_failures") else "NO")
    print("verdict: zero errors:", "yes" if not errors and not server_errors else "NO")
    shed_seconds(out, shed_by_second, ok_by_second)


if __name__ == "__main__":
    main(sys.argv[1])
