#!/usr/bin/python3
"""How cost grows with customers and items (issue 21): one world at a time.

    scripts/bench_scale.py --bin build/tools/qianmian --serving-bench build/serving/qm_serving_bench \
        --data WORLD --artifacts ART --now 2026-11-01T10:00:00+08:00 --out results.jsonl \
        [--train] [--steps train,page,server,push]

For the generated bank WORLD (customers.csv, items.csv, events.csv) and the artifact root ART:
- train: `qianmian train` with one fit on every event (`[training] evaluate = false`, as
  `simulate` trains), under /usr/bin/time: wall seconds and peak RSS (only with --train, or when
  ART has no CURRENT);
- page: `qm_serving_bench` (app_home in process, one thread, reserving): mean, p99 and the mean
  of each engine stage, the engine's own share, the engine's RSS after opening;
- server: `serve` with 2 workers and an empty store, a 5 s warm-up, then `bench` closed loop with
  4 connections for 20 s on the same 2 cores: ok pages/s, ok p99, server RSS after the load;
- push: `push --audience all --now NOW` from an empty store: choose + reserve seconds, wall
  seconds, peak RSS, sends.
Appends one JSON object per world to --out. Not in CI (minutes to an hour a world); the figures go
to docs/BENCHMARKS.md and scripts/plot_scale.py draws them.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def timed(cmd, env=None, log=None):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS MB, output)."""
    full = ["/usr/bin/time", "-v"] + cmd
    t0 = time.time()
    p = subprocess.run(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - t0
    if log:
        with open(log, "w") as f:
            f.write(p.stdout)
    if p.returncode != 0:
        sys.exit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stdout)
    return wall, (int(m.group(1)) / 1024 if m else None), p.stdout


def count_rows(path):
    with open(path, "rb") as f:
        return sum(1 for _ in f) - 1


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--serving-bench", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--artifacts", required=True)
    ap.add_argument("--now", required=True, help="push time, e.g. 2026-11-01T10:00:00+08:00")
    ap.add_argument("--out", required=True)
    ap.add_argument("--label", default=None)
    ap.add_argument("--train", action="store_true", help="train even when ART has a CURRENT version")
    ap.add_argument("--steps", default="train,page,server,push")
    ap.add_argument("--port", type=int, default=5598)
    ap.add_argument("--seconds", type=int, default=20)
    a = ap.parse_args()
    steps = set(a.steps.split(","))
    data = os.path.abspath(a.data)
    art = os.path.abspath(a.artifacts)
    row = {
        "label": a.label or os.path.basename(data.rstrip("/")),
        "customers": count_rows(os.path.join(data, "customers.csv")),
        "items": count_rows(os.path.join(data, "items.csv")),
        "events": count_rows(os.path.join(data, "events.csv")),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with open(os.path.join(data, "items.csv")) as f:
        header = f.readline().strip().split(",")
        kind = header.index("kind") if "kind" in header else None
        if kind is not None:
            row["contents"] = sum(1 for line in f if line.split(",")[kind] == "content")
    env = dict(os.environ, QM_PROGRESS="0")
    work = tempfile.mkdtemp(prefix="qm-scale.")
    try:
        wdata = os.path.join(work, "data")
        os.makedirs(wdata)
        for name in ("customers.csv", "items.csv", "events.csv"):
            os.symlink(os.path.join(data, name), os.path.join(wdata, name))

        if "train" in steps and (a.train or not os.path.exists(os.path.join(art, "CURRENT"))):
            tenv = dict(env, QIANMIAN_TRAINING_EVALUATE="false")
            wall, peak, out = timed([a.bin, "train", "--data", wdata, "--artifacts", art], env=tenv,
                                    log=os.path.join(art + ".train.log"))
            row["train_s"], row["train_peak_mb"] = round(wall, 1), round(peak)
            print(f"{row['label']}: train {wall:.0f} s, peak {peak:.0f} MB", flush=True)
        current = os.path.join(art, "CURRENT")
        if os.path.exists(current):  # the served version's own training figures
            version = open(current).read().strip()
            m = json.load(open(os.path.join(art, version, "MANIFEST.json")))["metrics"]
            row["version"] = version
            row["fit"] = {k[len("stats."):]: round(v, 3) for k, v in m.items()
                          if k.endswith(".seconds") or k in ("stats.ranker.rows", "stats.data.train_positives",
                                                             "stats.index.content.recall@100")}

        if "page" in steps:
            jf = os.path.join(work, "page.json")
            penv = dict(env, QM_BENCH_DATA=wdata, QM_BENCH_ARTIFACTS=art, QM_BENCH_STORE=os.path.join(work, "bstore"),
                        OMP_NUM_THREADS="1")
            subprocess.run([a.serving_bench, "--benchmark_filter=Reserve", "--benchmark_format=json",
                            f"--benchmark_out={jf}"], env=penv, stdout=subprocess.DEVNULL, check=True)
            b = json.load(open(jf))["benchmarks"][0]
            row["page"] = {k: round(v, 3) for k, v in b.items() if k.endswith("_us") or k.endswith("_share")
                           or k in ("rss_mb", "open_s")}
            print(f"{row['label']}: page mean {b['mean_us']:.0f} us, p99 {b['p99_us']:.0f} us, "
                  f"engine share {b['engine_share']:.2f}, RSS {b['rss_mb']:.0f} MB", flush=True)

        if "server" in steps:
            shutil.rmtree(os.path.join(wdata, "store"), ignore_errors=True)
            ids = os.path.join(work, "ids.txt")
            with open(os.path.join(data, "customers.csv")) as f, open(ids, "w") as o:
                f.readline()
                for i, line in enumerate(f):  # about 5,000 customers, evenly spaced over the whole base
                    if i % max(1, row["customers"] // 5000) == 0:
                        o.write(line.split(",", 1)[0] + "\n")
            addr = f"tcp://127.0.0.1:{a.port}"
            t0 = time.time()
            srv = subprocess.Popen([a.bin, "serve", "--data", wdata, "--artifacts", art, "--bind", addr],
                                   env=env, stdout=open(os.path.join(work, "serve.log"), "w"), stderr=subprocess.STDOUT)
            for _ in range(900):
                h = subprocess.run([a.bin, "client", "--connect", addr, "health"], capture_output=True, text=True)
                if '"ok":true' in h.stdout.replace(" ", ""):
                    break
                if srv.poll() is not None:
                    sys.exit("serve exited:\n" + open(os.path.join(work, "serve.log")).read()[-2000:])
                time.sleep(1)
            row["server_open_s"] = round(time.time() - t0, 1)
            row["server_rss_open_mb"] = round(rss_mb(srv.pid))
            bench = [a.bin, "bench", "--connect", addr, "--customers", ids, "--concurrency", "4"]
            subprocess.run(bench + ["--duration", "5"], capture_output=True)
            out = subprocess.run(bench + ["--duration", str(a.seconds)], capture_output=True, text=True).stdout
            row["server_rss_mb"] = round(rss_mb(srv.pid))
            srv.send_signal(signal.SIGTERM)
            srv.wait()
            m = re.search(r"ok (\d+) \(([\d.]+) req/s\)", out)
            lat = re.search(r"latency \(ok\).*", out)
            p99 = re.search(r"p99[ =]+([\d.]+) ?ms", lat.group(0)) if lat else None
            row["server_pages_per_s"] = float(m.group(2)) if m else None
            row["server_p99_ms"] = float(p99.group(1)) if p99 else None
            row["server_latency"] = lat.group(0) if lat else out[-500:]
            print(f"{row['label']}: server {row['server_pages_per_s']} pages/s, {row['server_latency']}, "
                  f"RSS {row['server_rss_mb']} MB (open {row['server_open_s']} s)", flush=True)

        if "push" in steps:
            shutil.rmtree(os.path.join(wdata, "store"), ignore_errors=True)
            summary = os.path.join(work, "push.txt")
            wall, peak, out = timed([a.bin, "push", "--data", wdata, "--artifacts", art, "--run-id", "scale",
                                     "--audience", "all", "--now", a.now, "--out", os.path.join(work, "sends.csv"),
                                     "--summary", summary], env=env)
            text = open(summary).read()
            m = re.search(r"choose \+ reserve[^\n]*?([\d.]+) s", text)
            row["push_wall_s"], row["push_peak_mb"] = round(wall, 1), round(peak)
            row["push_choose_reserve_s"] = float(m.group(1)) if m else None
            row["push_sends"] = count_rows(os.path.join(work, "sends.csv"))
            print(f"{row['label']}: push {wall:.0f} s wall, choose + reserve {row['push_choose_reserve_s']} s, "
                  f"{row['push_sends']} sends, peak {peak:.0f} MB", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
