#!/usr/bin/python3
"""Draws scripts/bench_scale.py's results (issue 21): cost against customers and against contents.

    scripts/plot_scale.py results.jsonl docs/img/scale.png

Left column: the worlds with 100,000 contents, by customers; right column: the worlds with 100,000
customers, by contents. Rows: the in-process page (mean and its stages), the server's ok pages/s,
a push run's and a train's seconds per customer (or per item).
"""
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    by_customers = sorted((r for r in rows if r.get("contents") == 100000), key=lambda r: r["customers"])
    by_items = sorted((r for r in rows if r["customers"] == 100000), key=lambda r: r.get("contents", 0))
    fig, ax = plt.subplots(3, 2, figsize=(11, 10))
    for col, (rs, key, name) in enumerate(((by_customers, "customers", "customers (100k contents)"),
                                           (by_items, "contents", "contents (100k customers)"))):
        x = [r[key] for r in rs]
        a = ax[0][col]
        for stage in ("mean", "model", "ann", "recall", "filter", "rerank", "reserve", "record"):
            ys = [r.get("page", {}).get(f"{stage}_us") for r in rs]
            if any(y is not None for y in ys):
                a.plot(x, ys, marker="o", label=stage)
        a.set_title(f"in-process page, by {name}")
        a.set_ylabel("microseconds per page")
        a.legend(fontsize=8)
        a = ax[1][col]
        a.plot(x, [r.get("server_pages_per_s") for r in rs], marker="o", label="ok pages/s (closed loop, 4 conns)")
        a2 = a.twinx()
        a2.plot(x, [r.get("server_rss_mb") for r in rs], marker="s", color="tab:red", label="server RSS (MB)")
        a.set_title(f"server, by {name}")
        a.set_ylabel("pages/s")
        a2.set_ylabel("RSS MB", color="tab:red")
        a.set_ylim(bottom=0)
        a2.set_ylim(bottom=0)
        a = ax[2][col]
        a.plot(x, [r.get("push_choose_reserve_s") for r in rs], marker="o", label="push: choose + reserve (s)")
        a.plot(x, [r.get("train_s") for r in rs], marker="s", label="train, one fit (s)")
        a.set_title(f"batch work, by {name}")
        a.set_ylabel("seconds (log)")
        a.set_yscale("log")
        a.legend(fontsize=8)
        for a in ax[:, col]:
            a.set_xscale("log")
            a.set_xlabel(name)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=90)


if __name__ == "__main__":
    main()
