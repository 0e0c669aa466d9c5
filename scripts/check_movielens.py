#!/usr/bin/python3
"""MovieLens-100k measured as an outsider would: split, train, `recommend`, score; beside EASE.

Splits each user's ratings by time, 80/20 (the last 20% of each user's ratings, ties in time
kept in file order, at least one held out), writes the training part as a data folder, trains
qianmian on it with configs/movielens.toml, asks `qianmian recommend` for 20 items per user
(served as of the end of the training data: [data] clock = "data_end"), and scores the pages
against each user's held-out films that the user had not rated before. On the same split it
computes EASE (lambda = 300) and popularity, and prints Recall@20 and NDCG@20 of all three.

Usage: /usr/bin/python3 scripts/check_movielens.py QIANMIAN ML_FOLDER WORKDIR [--holdout 0.2]
  ML_FOLDER: the output of `qianmian import movielens ../shared/data/ml-100k --out ML_FOLDER`.
Needs Debian's python3-numpy.
"""
import argparse, csv, math, os, shutil, subprocess, sys, time
import numpy as np

p = argparse.ArgumentParser()
p.add_argument("qianmian")
p.add_argument("ml")
p.add_argument("work")
p.add_argument("--holdout", type=float, default=0.2)
p.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "movielens.toml"))
p.add_argument("--k", type=int, default=20)
a = p.parse_args()
K = a.k
os.makedirs(a.work, exist_ok=True)
train_dir = os.path.join(a.work, "train")
shutil.rmtree(train_dir, ignore_errors=True)
os.makedirs(train_dir)
for f in ("customers.csv", "items.csv"):
    shutil.copy(os.path.join(a.ml, f), train_dir)

rows = list(csv.DictReader(open(os.path.join(a.ml, "events.csv"))))
fields = list(rows[0].keys())
by_user = {}
for i, r in enumerate(rows):
    by_user.setdefault(r["customer_id"], []).append((int(r["ts"]), i))
train_rows, held = [], {}
for u, evs in by_user.items():
    evs.sort()
    n_hold = max(1, int(round(a.holdout * len(evs))))
    for j, (_, i) in enumerate(evs):
        if j < len(evs) - n_hold:
            train_rows.append(rows[i])
        else:
            held.setdefault(u, set()).add(rows[i]["item_id"])
train_rows.sort(key=lambda r: int(r["ts"]))
with open(os.path.join(train_dir, "events.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    w.writeheader()
    w.writerows(train_rows)
seen = {}
for r in train_rows:
    seen.setdefault(r["customer_id"], set()).add(r["item_id"])
targets = {u: t - seen.get(u, set()) for u, t in held.items()}
targets = {u: t for u, t in targets.items() if t}
users = sorted(targets)

def score(pages):
    rec = ndcg = 0.0
    for u in users:
        t = targets[u]
        page = pages.get(u, [])[:K]
        hits = [j for j, i in enumerate(page) if i in t]
        rec += len(hits) / len(t)
        ndcg += sum(1 / math.log2(j + 2) for j in hits) / sum(1 / math.log2(j + 2) for j in range(min(len(t), K)))
    return rec / len(users), ndcg / len(users)

env = dict(os.environ, QM_PROGRESS="0")
art = os.path.join(a.work, "art")
shutil.rmtree(art, ignore_errors=True)
t0 = time.time()
subprocess.run([a.qianmian, "train", "--data", train_dir, "--artifacts", art, "--config", a.config], check=True,
               env=env, stdout=open(os.path.join(a.work, "train.txt"), "w"), stderr=subprocess.STDOUT)
t_train = time.time() - t0
open(os.path.join(a.work, "users.txt"), "w").write("".join(u + "\n" for u in users))
out = os.path.join(a.work, "rec.csv")
subprocess.run([a.qianmian, "recommend", "--data", train_dir, "--artifacts", art, "--config", a.config,
                "--customers", os.path.join(a.work, "users.txt"), "--channel", "app_home", "--count", str(K),
                "--out", out], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
served = {}
for r in csv.DictReader(open(out)):
    served.setdefault(r["customer_id"], []).append((int(r["rank"]), r["item_id"]))
served = {u: [i for _, i in sorted(v)] for u, v in served.items()}

# EASE (Steck 2019) and popularity on the same training part.
items = sorted({r["item_id"] for r in rows})
ix = {i: k for k, i in enumerate(items)}
all_users = sorted(by_user)
ux = {u: k for k, u in enumerate(all_users)}
X = np.zeros((len(all_users), len(items)), dtype=np.float64)
for r in train_rows:
    X[ux[r["customer_id"]], ix[r["item_id"]]] = 1.0
G = X.T @ X
G[np.diag_indices_from(G)] += 300.0
P = np.linalg.inv(G)
B = -P / np.diag(P)
B[np.diag_indices_from(B)] = 0.0
S = X @ B
pop = X.sum(axis=0)
ease, popular = {}, {}
for u in users:
    s = S[ux[u]].copy()
    s[X[ux[u]] > 0] = -np.inf
    ease[u] = [items[j] for j in np.argsort(-s, kind="stable")[:K]]
    q = pop.copy()
    q[X[ux[u]] > 0] = -np.inf
    popular[u] = [items[j] for j in np.argsort(-q, kind="stable")[:K]]

print(f"MovieLens per-user time split {1 - a.holdout:.0%}/{a.holdout:.0%}: {len(train_rows)} training ratings, "
      f"{len(users)} users with held-out targets; train {t_train:.0f} s")
print(f"{'system':<28} {'Recall@%d' % K:>10} {'NDCG@%d' % K:>10}")
for name, pages in (("qianmian recommend (served)", served), ("EASE lambda=300", ease), ("popularity", popular)):
    r, n = score(pages)
    print(f"{name:<28} {r:>10.4f} {n:>10.4f}")
