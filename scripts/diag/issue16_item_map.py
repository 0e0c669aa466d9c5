#!/usr/bin/python3
"""Issue 16: how much of the item latent's idiosyncratic part the logged clicks reveal.
For every item, the MAP estimate of its latent under the true response model (item bias,
customers' attribute latents known; fatigue ignored), prior mean = the regression of item
latents on item attributes, prior variance = that regression's residual variance, from its
app_home impressions before the holdout; then pages of the dumped customers ranked with it.

Usage: /usr/bin/python3 scripts/diag/issue16_item_map.py BANK DUMP.csv"""
import csv
import importlib.util
import os
import sys
from collections import defaultdict

import numpy as np

spec = importlib.util.spec_from_file_location("d", os.path.join(os.path.dirname(__file__), "issue16_logits.py"))
d = importlib.util.module_from_spec(spec)
spec.loader.exec_module(d)

bank, dump = sys.argv[1], sys.argv[2]
rm, items, bias, v, u, kind, cat, t = d.load_bank(bank)
at = t["holdout_start_ms"]
idx = {it["item_id"]: k for k, it in enumerate(items)}
m = len(items)
imp_c, imp_i, clicked = [], [], set()
with open(f"{bank}/events.csv") as f:
    r = csv.reader(f)
    next(r)
    for ts, cid, iid, typ, ch, req in r:
        if int(ts) >= at or ch != "app_home":
            continue
        if typ == "impression":
            imp_c.append(int(cid[1:]) - 1)
            imp_i.append(idx[iid])
        elif typ == "click":
            clicked.add((req, iid))
# labels: a click in the same request on the same item
imp_c = np.array(imp_c)
imp_i = np.array(imp_i)
y = np.zeros(len(imp_c))
k = 0
with open(f"{bank}/events.csv") as f:
    r = csv.reader(f)
    next(r)
    for ts, cid, iid, typ, ch, req in r:
        if int(ts) >= at or ch != "app_home" or typ != "impression":
            continue
        y[k] = (req, iid) in clicked
        k += 1
print(f"impressions {len(y)}, clicked {y.mean():.4f}")
vhat = d.attribute_regression(items, cat, v)
s2 = ((v - vhat) ** 2).mean(0)  # prior variance per dim
alpha = rm["alpha"]
base_item = rm["click_intercept"] + np.where(kind == 0, rm["product_click_offset"], 0.0) + bias
order = np.argsort(imp_i, kind="stable")
starts = np.searchsorted(imp_i[order], np.arange(m + 1))
vmap = vhat.copy()
for i in range(m):
    rows = order[starts[i]:starts[i + 1]]
    if len(rows) == 0:
        continue
    U = alpha * u[imp_c[rows]]  # [n, d]
    off = base_item[i] + U @ vhat[i]
    yy = y[rows]
    delta = np.zeros(v.shape[1])
    for _ in range(40):
        z = off + U @ delta
        p = 1 / (1 + np.exp(-z))
        g = U.T @ (yy - p) - delta / s2
        H = (U * (p * (1 - p))[:, None]).T @ U + np.diag(1 / s2)
        step = np.linalg.solve(H, g)
        nrm = np.linalg.norm(step)
        if nrm > 1.0:
            step *= 1.0 / nrm
        delta += step
        if np.abs(step).max() < 1e-6:
            break
    vmap[i] = vhat[i] + delta
def r2(a):
    return 1 - ((v - a) ** 2).sum() / ((v - v.mean(0)) ** 2).sum()
print(f"item latent R2: attributes {r2(vhat):.3f}, MAP from clicks {r2(vmap):.3f}")
rows = np.genfromtxt(dump, delimiter=",", names=True)
c = rows["c"].astype(int)
i = rows["item"].astype(int)
lb = d.logit(rows["believed"])
truth = rows["truth"]
inter = alpha * np.einsum("nd,nd->n", u[c], v[i])
fat = base_item[i] + inter - lb
starts_c = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
ends_c = np.r_[starts_c[1:], len(c)]
res = {}
for name, sc in (("attribute oracle", lb),
                 ("item latents from attributes", base_item[i] + alpha * np.einsum("nd,nd->n", u[c], vhat[i]) - fat),
                 ("item latents MAP from logged clicks", base_item[i] + alpha * np.einsum("nd,nd->n", u[c], vmap[i]) - fat)):
    tot = 0
    for a, b in zip(starts_c, ends_c):
        tot += truth[a:b][d.page(sc[a:b], kind[i[a:b]], cat[i[a:b]])].sum()
    res[name] = tot
for name, tot in res.items():
    print(f"  {name}: {tot/len(starts_c):.4f} ({tot/res['attribute oracle']:.1%})")
