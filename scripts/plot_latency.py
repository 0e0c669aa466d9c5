#!/usr/bin/python3
"""Latency distribution of `qianmian bench` runs, from their --csv files (docs/BENCHMARKS.md).

    python3 scripts/plot_latency.py --out docs/img/latency.png "closed loop, 2 connections=lat.csv" ...

Each argument is LABEL=CSV (columns connection,send_us,latency_us,outcome); only ok replies are
plotted. Draws the latency CDF with the p50/p99 of each run, on a log time axis. Tooling only.
"""
import csv
import sys

from plot_args import parse, plt


def main():
    a, runs = parse("plot_latency", __doc__, "runs", "LABEL=CSV",
                    [("--title", "recommend latency (qianmian bench against qianmian serve)")])
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for label, path in runs:
        with open(path, newline="") as f:
            ms = sorted(int(r["latency_us"]) / 1000.0 for r in csv.DictReader(f) if r["outcome"] == "ok")
        if not ms:
            sys.exit(f"plot_latency: no ok replies in {path}")
        n = len(ms)
        p50, p99 = ms[int(0.50 * (n - 1))], ms[int(0.99 * (n - 1))]
        ax.plot(ms, [(i + 1) / n for i in range(n)], label=f"{label}: p50 {p50:.1f} ms, p99 {p99:.1f} ms ({n} requests)")
    ax.axvline(10, color="#c0392b", linestyle="--", linewidth=1)
    ax.text(10.3, 0.05, "10 ms", color="#c0392b", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("share of requests")
    ax.set_title(a.title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"plot_latency: wrote {a.out}")


if __name__ == "__main__":
    main()
