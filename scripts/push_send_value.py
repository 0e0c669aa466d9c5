#!/usr/bin/python3
"""The planted value of push send lists on a generated bank (tooling, not the product).

For each send list (`qianmian push --out FILE`: customer_id,item_id,scheduled_at,reasons) prints
the sends, the mean planted chance that the push is opened if sent with no fatigue,
sigmoid(open_intercept + item_bias[i] + alpha * dot(customer_latent[c], item_latent[i]))
(truth/truth.json's response_model), and, given two or more lists, how many of each list's
(customer, item) pairs the first list also holds. Used to check that a faster content search
for push runs sends what the exact one sends, or items worth as much.

  /usr/bin/python3 scripts/push_send_value.py BANK sends_exact.csv sends_new.csv ...
"""
import csv
import json
import os
import sys

import numpy as np


def ids(path):
    with open(path, newline="", encoding="utf-8") as f:
        return [row[0] for row in csv.reader(f)][1:]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    bank, lists = sys.argv[1], sys.argv[2:]
    truth = os.path.join(bank, "truth")
    t = json.load(open(os.path.join(truth, "truth.json")))
    rm, dim = t["response_model"], t["dim"]
    customers = {c: i for i, c in enumerate(ids(os.path.join(bank, "customers.csv")))}
    items = {c: i for i, c in enumerate(ids(os.path.join(bank, "items.csv")))}
    cu = np.fromfile(os.path.join(truth, "customer_latent.f32"), dtype="<f4").reshape(len(customers), dim)
    it = np.fromfile(os.path.join(truth, "item_latent.f32"), dtype="<f4").reshape(len(items), dim)
    bias = np.fromfile(os.path.join(truth, "item_bias.f32"), dtype="<f4")
    first = None
    for path in lists:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(customers[r["customer_id"]], items[r["item_id"]]) for r in csv.DictReader(f)]
        c = np.array([r[0] for r in rows], dtype=np.int64)
        i = np.array([r[1] for r in rows], dtype=np.int64)
        a = np.einsum("nd,nd->n", cu[c], it[i])
        p = 1 / (1 + np.exp(-(rm["open_intercept"] + bias[i] + rm["alpha"] * a)))
        pairs = set(zip(c.tolist(), i.tolist()))
        line = f"{path}: {len(rows)} sends, mean planted p_open {p.mean():.6f} (sum {p.sum():.1f})"
        if first is None:
            first = pairs
        else:
            line += f", {len(pairs & first)} of them in the first list ({len(pairs & first) / max(len(pairs), 1):.2%})"
        print(line)


if __name__ == "__main__":
    main()
