#!/usr/bin/python3
"""Issue 16: how much of the attribute oracle a model that learns from the logged clicks can reach.
issue16_item_map.py's 87.1% ceiling estimates only the items' own latents and is given each
customer's attribute latent (truth/customer_latent_observable.f32). This script asks what that
ceiling owes to the known customer side:
  1. the item MAP with a per-dimension or isotropic prior, the item bias known or estimated;
  2. the same with noise added to the customer latents, or with them cut to their top k
     principal directions (a customer side known only in part);
  3. a customer side learned from the same clicks: latent = phi(c) W, phi the customers.csv
     attributes one-hot (numbers also as z, z^2 - 1 and deciles), W by L-BFGS (L2 precision
     L2), then the items' MAP given it, alternated for four rounds;
  4. after round 0, each customer's latent refitted by MAP from their own clicks.
Pages of the dumped customers (issue16_dump.patch) valued by the truth, as a share of the
attribute oracle's.
Usage: /usr/bin/python3 scripts/diag/issue16_customer_side.py BANK DUMP.csv [L2]  (about 15 min)"""
import csv
import importlib.util
import os
import sys

import numpy as np
from scipy.optimize import minimize
spec = importlib.util.spec_from_file_location("d", os.path.join(os.path.dirname(__file__), "issue16_logits.py"))
d = importlib.util.module_from_spec(spec); spec.loader.exec_module(d)
bank, dump = sys.argv[1], sys.argv[2]
rm, items, bias, v, u, kind, cat, t = d.load_bank(bank)
at = t["holdout_start_ms"]
idx = {it["item_id"]: k for k, it in enumerate(items)}
m = len(items)
imp_c, imp_i, reqs, clicked = [], [], [], set()
with open(f"{bank}/events.csv") as f:
    r = csv.reader(f); next(r)
    for ts, cid, iid, typ, ch, req in r:
        if int(ts) >= at or ch != "app_home": continue
        if typ == "impression":
            imp_c.append(int(cid[1:]) - 1); imp_i.append(idx[iid]); reqs.append((req, iid))
        elif typ == "click": clicked.add((req, iid))
imp_c = np.array(imp_c); imp_i = np.array(imp_i)
y = np.array([x in clicked for x in reqs], float)
vhat = d.attribute_regression(items, cat, v)
s2 = ((v - vhat) ** 2).mean(0)
alpha = rm["alpha"]
base_item = rm["click_intercept"] + np.where(kind == 0, rm["product_click_offset"], 0.0) + bias
base_nobias = rm["click_intercept"] + np.where(kind == 0, rm["product_click_offset"], 0.0) + bias.mean()
order = np.argsort(imp_i, kind="stable")
starts = np.searchsorted(imp_i[order], np.arange(m + 1))

def fit(uu, prior_var, base, free_bias=False, prior_mean=vhat):
    vm = prior_mean.copy(); bm = base.copy()
    D = v.shape[1]
    for i in range(m):
        rows = order[starts[i]:starts[i + 1]]
        if len(rows) == 0: continue
        U = alpha * uu[imp_c[rows]]
        if free_bias: U = np.column_stack([U, np.ones(len(rows))])
        pv = np.r_[prior_var, 4.0] if free_bias else prior_var
        off = base[i] + (alpha * uu[imp_c[rows]]) @ prior_mean[i]
        yy = y[rows]; delta = np.zeros(U.shape[1])
        for _ in range(40):
            z = off + U @ delta; p = 1 / (1 + np.exp(-z))
            g = U.T @ (yy - p) - delta / pv
            H = (U * (p * (1 - p))[:, None]).T @ U + np.diag(1 / pv)
            step = np.linalg.solve(H, g); nrm = np.linalg.norm(step)
            if nrm > 1.0: step /= nrm
            delta += step
            if np.abs(step).max() < 1e-6: break
        vm[i] = prior_mean[i] + delta[:D]
        if free_bias: bm[i] = base[i] + delta[D]
    return vm, bm

rows = np.genfromtxt(dump, delimiter=",", names=True)
c = rows["c"].astype(int); i = rows["item"].astype(int)
lb = d.logit(rows["believed"]); truth = rows["truth"]
fat = base_item[i] + alpha * np.einsum("nd,nd->n", u[c], v[i]) - lb
starts_c = np.flatnonzero(np.r_[True, c[1:] != c[:-1]]); ends_c = np.r_[starts_c[1:], len(c)]
def pageval(sc):
    tot = 0
    for a, b in zip(starts_c, ends_c):
        tot += truth[a:b][d.page(sc[a:b], kind[i[a:b]], cat[i[a:b]])].sum()
    return tot
ref = pageval(lb)
def report(name, uu, vm, bm=None):
    bm = base_item if bm is None else bm
    sc = bm[i] + alpha * np.einsum("nd,nd->n", uu[c], vm[i]) - fat
    print(f"{name}: {pageval(sc)/ref:.1%}", flush=True)
vm, bm = fit(u, s2, base_item); report("MAP per-dim prior, true bias", u, vm, bm)
vm, bm = fit(u, np.full_like(s2, s2.mean()), base_item); report("MAP isotropic prior, true bias", u, vm, bm)
vm, bm = fit(u, s2, base_nobias, free_bias=True); report("MAP per-dim prior, bias estimated", u, vm, bm)
# customer latent with noise (a learned customer side that is not exact)
rng = np.random.default_rng(0)
for nz in (0.1, 0.3):
    un = u + nz * u.std(0) * rng.standard_normal(u.shape)
    vm, bm = fit(un, s2, base_item); report(f"customer latent + {nz} sd noise, MAP", un, vm, bm)
# customer latent only known up to its top-k principal directions
U0 = u - u.mean(0); _, S, Vt = np.linalg.svd(U0[:5000], full_matrices=False)
print("customer latent singular values", np.round(S / S[0], 2))
for k in (8, 12, 16):
    uk = u.mean(0) + U0 @ Vt[:k].T @ Vt[:k]
    vm, bm = fit(uk, s2, base_item); report(f"customer latent rank {k}, MAP", uk, vm, bm)

# 3. A customer side learned from the clicks.
cust = list(csv.DictReader(open(f"{bank}/customers.csv")))
n = len(cust)
feats = []
def onehot(vals):
    keys = sorted(set(vals)); ix = {k: j for j, k in enumerate(keys)}
    M = np.zeros((len(vals), len(keys))); M[np.arange(len(vals)), [ix[x] for x in vals]] = 1; return M
for col in ("tier", "risk_level", "risk_assessed", "region", "life_stage", "occupation", "gender"):
    feats.append(onehot([c[col] for c in cust]))
tags = sorted({g for c in cust for g in c["tags"].split(";") if g})
feats.append(np.array([[g in c["tags"].split(";") for g in tags] for c in cust], float))
for col, lg in (("age", False), ("income", True), ("aum", True)):
    x = np.array([float(c[col] or 0) for c in cust]); x = np.log10(x + 500) if lg else x
    z = (x - x.mean()) / x.std(); feats.append(np.column_stack([z, z * z - 1]))
    q = np.quantile(x, np.linspace(0, 1, 11)[1:-1]); feats.append(onehot(list(np.searchsorted(q, x))))
Phi = np.column_stack(feats + [np.ones(n)]); F = Phi.shape[1]; D = v.shape[1]
print("customer features", F)
# how well can phi express u_obs linearly?
Wls = np.linalg.lstsq(Phi, u, rcond=None)[0]
print("R2 of u_obs on phi:", 1 - ((u - Phi @ Wls) ** 2).sum() / ((u - u.mean(0)) ** 2).sum())
report("u = phi W_ls, v true", Phi @ Wls, v)
def fitW(vm, W0, l2):
    V = alpha * vm[imp_i]
    bi = base_item[imp_i]
    def f(w):
        W = w.reshape(F, D); Uc = Phi @ W
        z = bi + np.einsum("nd,nd->n", Uc[imp_c], V); p = 1 / (1 + np.exp(-z))
        ll = (y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12)).sum() - 0.5 * l2 * (W ** 2).sum()
        Gr = (y - p)[:, None] * V
        Gc = np.zeros((n, D)); np.add.at(Gc, imp_c, Gr)
        G = Phi.T @ Gc - l2 * W
        return -ll, -G.ravel()
    r = minimize(f, W0.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 200})
    return r.x.reshape(F, D)
oc = np.argsort(imp_c, kind="stable")
sc_ = np.searchsorted(imp_c[oc], np.arange(n + 1))


def cust_map(uu, vm, pv):
    """Each customer's latent: MAP from their own app_home responses, prior N(uu, diag(pv))."""
    out = uu.copy()
    for cc in range(n):
        rows_ = oc[sc_[cc]:sc_[cc + 1]]
        if len(rows_) == 0:
            continue
        V = alpha * vm[imp_i[rows_]]
        off = base_item[imp_i[rows_]] + V @ uu[cc]
        yy = y[rows_]
        delta = np.zeros(D)
        for _ in range(20):
            p = 1 / (1 + np.exp(-(off + V @ delta)))
            g = V.T @ (yy - p) - delta / pv
            H = (V * (p * (1 - p))[:, None]).T @ V + np.diag(1 / pv)
            step = np.linalg.solve(H, g)
            nrm = np.linalg.norm(step)
            if nrm > 1.0:
                step /= nrm
            delta += step
            if np.abs(step).max() < 1e-6:
                break
        out[cc] = uu[cc] + delta
    return out


l2 = float(sys.argv[3]) if len(sys.argv) > 3 else 1.0
vm = vhat.copy(); W = np.zeros((F, D)) + 0.01 * np.random.default_rng(0).standard_normal((F, D))
for it in range(4):
    W = fitW(vm, W, l2); uu = Phi @ W
    # align scale: MAP on items with this customer side (prior around vhat)
    vm, _ = fit(uu, s2, base_item)
    print("round", it, "corr(uu, u) per dim mean:", np.mean([np.corrcoef(uu[:, k], u[:, k])[0, 1] for k in range(D)]).round(3))
    report(f"alternating round {it}", uu, vm)
    if it == 0:  # 4. each customer's latent refitted from their own clicks (prior mean phi W)
        full = np.fromfile(f"{bank}/truth/customer_latent.f32", dtype=np.float32).reshape(-1, D)
        report("round 0 + each customer's own MAP from their clicks", cust_map(uu, vm, ((full - uu) ** 2).mean(0)), vm)
        report("reference: true attribute latents and items + own MAP", cust_map(u, v, ((full - u) ** 2).mean(0)), v)
