#!/usr/bin/env python3
"""The churn model's figures as served (issue 18): a version's portraits.csv (what the `profile`
op and the audiences read) against a generated bank's planted truth (truth/churn.csv), beside
the baseline "days since the last activity"; and the held-out figures `train` recorded in the
version's manifest (the observable label: not seen again in the next horizon).

    python3 scripts/check_churn.py BANK ART [VERSION]

Truth population: customers not dormant at the end of the data. Positives: those who leave
within one horizon after it; negatives: those who never leave (customers who left before the end
or leave later are left out). Stdlib only.
"""
import csv
import datetime
import json
import os
import sys


def auc(score, label):
    pairs = sorted(zip(score, label))
    rank_sum, pos, i = 0.0, 0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + j + 1) / 2
        for k in range(i, j):
            if pairs[k][1]:
                rank_sum += mid
                pos += 1
        i = j
    neg = len(pairs) - pos
    return 0.5 if pos == 0 or neg == 0 else (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def precision_at(score, label, share):
    k = max(1, round(share * len(score) + 0.4999))
    top = sorted(zip(score, label), key=lambda p: -p[0])[:k]
    return sum(l for _, l in top) / len(top)


def main():
    bank, art = sys.argv[1], sys.argv[2]
    version = sys.argv[3] if len(sys.argv) > 3 else open(os.path.join(art, "CURRENT")).read().strip()
    metrics = json.load(open(os.path.join(art, version, "MANIFEST.json")))["metrics"]
    horizon_ms = metrics["churn.horizon_days"] * 86400000
    end = 0
    with open(os.path.join(bank, "events.csv"), encoding="utf-8") as f:
        for r in csv.DictReader(f):
            end = max(end, int(r["ts"]))
    portraits = {r["customer_id"]: r for r in csv.DictReader(open(os.path.join(art, version, "portraits.csv"),
                                                                  encoding="utf-8"))}
    score, base, label = [], [], []
    for r in csv.DictReader(open(os.path.join(bank, "truth", "churn.csv"), encoding="utf-8")):
        p = portraits[r["customer_id"]]
        if p["lifecycle"] == "dormant":
            continue
        at = None
        if r["churn_at"]:
            at = datetime.datetime.fromisoformat(r["churn_at"].replace("Z", "+00:00")).timestamp() * 1000
        if r["leaves"] == "1" and not (end < at <= end + horizon_ms):
            continue
        score.append(float(p["churn_risk"]))
        base.append(float(p["days_inactive"] or 1e9))
        label.append(1 if r["leaves"] == "1" else 0)
    print(f"version {version}: horizon {metrics['churn.horizon_days']:.0f} days")
    print(f"held out (train's split, observable label, {metrics['churn.evaluated']:.0f} customers, "
          f"{metrics['churn.positive_rate']:.1%} not seen again): AUC {metrics['churn.auc']:.3f} vs "
          f"{metrics['churn.baseline_auc']:.3f} days-since-last-activity; precision@5% "
          f"{metrics['churn.precision@5%']:.3f} vs {metrics['churn.baseline_precision@5%']:.3f}")
    print(f"planted truth ({len(label)} customers not dormant at the end, {sum(label)} leave within the horizon): "
          f"AUC {auc(score, label):.3f} vs {auc(base, label):.3f} days-since-last-activity; precision@5% "
          f"{precision_at(score, label, 0.05):.3f} vs {precision_at(base, label, 0.05):.3f}")


if __name__ == "__main__":
    main()
