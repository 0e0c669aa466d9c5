#!/usr/bin/python3
"""Issue 16 diagnosis: the ranker's click logit against the attribute oracle's on every
eligible item of the first customers (a dump of scripts/diag/issue16_dump.patch's
QM_DIAG16 hook), and pages re-ranked with parts of the ranker's error removed.

Usage: /usr/bin/python3 scripts/diag/issue16_logits.py BANK DUMP.csv
Needs numpy only (Debian's python3-numpy)."""
import csv
import json
import sys
from collections import defaultdict

import numpy as np

SLOTS = [0, 1, 1, 0, 1, 1, 0, 1, 1, 1]  # the default app_home layout (0 product, 1 content)
MAX_PER_CAT = 3


def logit(p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def load_bank(bank):
    t = json.load(open(f"{bank}/truth/truth.json"))
    rm = t["response_model"]
    items = list(csv.DictReader(open(f"{bank}/items.csv", encoding="utf-8")))
    m = len(items)
    d = t["dim"]
    bias = np.fromfile(f"{bank}/truth/item_bias.f32", dtype=np.float32)
    v = np.fromfile(f"{bank}/truth/item_latent.f32", dtype=np.float32).reshape(m, d)
    u = np.fromfile(f"{bank}/truth/customer_latent_observable.f32", dtype=np.float32).reshape(-1, d)
    kind = np.array([0 if it["kind"] == "product" else 1 for it in items])
    cats = {}
    cat = np.array([cats.setdefault(it["category"], len(cats) + 1) for it in items])
    return rm, items, bias, v, u, kind, cat, t


def exposures(bank, at, customers, item_index):
    """Earlier app_home impressions + marketing pushes of each (customer, item) before `at`."""
    cnt = defaultdict(int)
    with open(f"{bank}/events.csv") as f:
        r = csv.reader(f)
        next(r)
        for ts, cid, iid, typ, ch, req in r:
            if int(ts) >= at:
                continue
            if typ not in ("impression", "push_sent"):
                continue
            c = int(cid[1:]) - 1
            if c in customers:
                cnt[(c, item_index[iid])] += 1
    return cnt


def attribute_regression(items, cat, v):
    """The item latents' least-squares regression on the item attributes (category, risk, tags):
    what a model that learned no item beyond its attributes could know."""
    cols = [(cat == k).astype(float) for k in np.unique(cat)]
    risks = [it["risk_level"] for it in items]
    cols += [np.array([r == x for r in risks], float) for x in sorted(set(risks))]
    alltags = sorted({g for it in items for g in it["tags"].split(";") if g})
    cols += [np.array([g in it["tags"].split(";") for it in items], float) for g in alltags]
    X = np.column_stack(cols + [np.ones(len(items))])
    return X @ np.linalg.lstsq(X, v, rcond=None)[0]


def page(score, kind, cat):
    order = np.argsort(-score, kind="stable")
    used = np.zeros(len(score), bool)
    per = defaultdict(int)
    out = []
    for want in SLOTS:
        pick = -1
        for p in range(3):
            for k in order:
                if used[k] or (p == 0 and kind[k] != want) or (p < 2 and per[cat[k]] >= MAX_PER_CAT):
                    continue
                pick = k
                break
            if pick >= 0:
                break
        if pick < 0:
            break
        used[pick] = True
        per[cat[pick]] += 1
        out.append(pick)
    return out


def main():
    bank, dump = sys.argv[1], sys.argv[2]
    rm, items, bias, v, u, kind, cat, t = load_bank(bank)
    at = t["holdout_start_ms"]
    rows = np.genfromtxt(dump, delimiter=",", names=True)
    c = rows["c"].astype(int)
    i = rows["item"].astype(int)
    lr = logit(rows["p_rank"])
    lb = logit(rows["believed"])
    truth = rows["truth"]
    item_part = rm["click_intercept"] + np.where(kind[i] == 0, rm["product_click_offset"], 0.0) + bias[i]
    inter = rm["alpha"] * np.einsum("nd,nd->n", u[c], v[i])
    fat = item_part + inter - lb
    idx = {it["item_id"]: k for k, it in enumerate(items)}
    cnt = exposures(bank, at, set(np.unique(c).tolist()), idx)
    nexp = np.array([cnt.get((a, b), 0) for a, b in zip(c, i)])
    print(f"rows {len(c)}, customers {len(np.unique(c))}; fatigue >= 0.01 on {np.mean(fat > 0.01):.3f} of rows; "
          f"item exposed before on {np.mean(nexp > 0):.3f}")

    def within(x):  # minus the customer's mean
        s = np.bincount(c, weights=x)
        n = np.bincount(c)
        return x - (s / np.maximum(n, 1))[c]

    wr, wb = within(lr), within(lb)
    slope = np.dot(wr, wb) / np.dot(wb, wb)
    print(f"within-customer: corr(ranker, attribute oracle) {np.corrcoef(wr, wb)[0,1]:.3f}, slope {slope:.3f}, "
          f"sd oracle {wb.std():.3f}, sd ranker {wr.std():.3f}")
    # Regression of the ranker's logit on the oracle's parts (within customer).
    parts = {"item (intercept+offset+bias)": item_part, "affinity 4*u.v": inter, "-fatigue": -fat}
    X = np.stack([within(x) for x in parts.values()], 1)
    coef, *_ = np.linalg.lstsq(X, wr, rcond=None)
    for (k, x), b in zip(parts.items(), coef):
        print(f"  coef {k}: {b:.3f} (within sd {within(x).std():.3f}); corr with ranker {np.corrcoef(within(x), wr)[0,1]:.3f}")
    for kd, name in ((0, "products"), (1, "contents")):
        s = kind[i] == kd
        print(f"  {name}: corr {np.corrcoef(wr[s], wb[s])[0,1]:.3f}; mean(ranker - oracle) {np.mean(lr[s] - lb[s]):+.3f}")
    for k in range(4):
        s = (np.minimum(nexp, 3) == k)
        if s.sum():
            print(f"  exposures {k}{'+' if k == 3 else ''}: rows {s.sum()}, mean(ranker - oracle) {np.mean(lr[s] - lb[s]):+.3f}, "
                  f"mean fatigue {fat[s].mean():.3f}")
    # Error decomposition: e = lr - lb = customer mean + item mean + rest.
    e = within(lr - lb)
    m = len(items)
    ie = np.bincount(i, weights=e, minlength=m) / np.maximum(np.bincount(i, minlength=m), 1)
    e_item = ie[i]
    e_rest = e - e_item
    print(f"error (within customer) sd {e.std():.3f}: item part sd {e_item.std():.3f}, customer x item sd {e_rest.std():.3f}")
    # Regress the residual on the fatigue and on the interaction.
    for name, x in (("fatigue", fat), ("affinity", inter), ("item part", item_part)):
        w = within(x)
        print(f"  residual e vs {name}: slope {np.dot(e, w)/np.dot(w, w):+.3f}")

    # Pages: share of the attribute oracle's true clicks.
    starts = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    ends = np.r_[starts[1:], len(c)]
    scores = {
        "attribute oracle (lb)": lb,
        "ranker (lr)": lr,
        "lb + item error": lb + e_item,
        "lb + customer x item error": lb + e_rest,
        "ranker with the oracle's fatigue (lr + fat_hat - fat)": None,
        "ranker, item error removed": lr - e_item,
        "ranker, unexposed error only (exposed rows take lb)": np.where(nexp > 0, lb + (lr - lb) - e, lr),
        "ranker + slope-matched affinity gap": lr + (1 - coef[1]) * inter,
        "ranker + slope-matched fatigue gap": lr - (1 - coef[2]) * fat,
    }
    scores.pop("ranker with the oracle's fatigue (lr + fat_hat - fat)")
    # The item latent replaced by its regression on the item attributes.
    vhat = attribute_regression(items, cat, v)
    print(f"item latent R2 on attributes {1 - ((v - vhat) ** 2).sum() / ((v - v.mean(0)) ** 2).sum():.3f}")
    inter_hat = rm["alpha"] * np.einsum("nd,nd->n", u[c], vhat[i])
    X2 = np.stack([within(x) for x in (item_part, inter_hat, inter - inter_hat, -fat)], 1)
    coef2, *_ = np.linalg.lstsq(X2, wr, rcond=None)
    print("ranker logit on item part, affinity of the item attributes' latent, affinity of the item's own latent, "
          f"-fatigue: coefficients {np.round(coef2, 3)}; within sd {np.round(X2.std(0), 3)}")
    scores["oracle with item latents from item attributes"] = item_part + inter_hat - fat
    scores["the same without fatigue"] = item_part + inter_hat
    scores["oracle without fatigue"] = item_part + inter
    scores["oracle without item bias"] = inter - fat
    served = rows["served_pos"] >= 0
    ref = 0
    res = {}
    for name, sc in scores.items():
        tot = 0
        for a, b in zip(starts, ends):
            pg = page(sc[a:b], kind[i[a:b]], cat[i[a:b]])
            tot += truth[a:b][pg].sum()
        res[name] = tot
    served_tot = truth[served].sum()
    ref = res["attribute oracle (lb)"]
    print(f"pages ({len(starts)} customers), true clicks per page and share of the attribute oracle:")
    print(f"  served (engine page) {served_tot/len(starts):.4f} ({served_tot/ref:.1%})")
    for name, tot in res.items():
        print(f"  {name}: {tot/len(starts):.4f} ({tot/ref:.1%})")


if __name__ == "__main__":
    main()
