#!/usr/bin/python3
"""UCI Bank Marketing measured as an outsider would: hold out customers, train, `serve`, `score`.

Holds out a seeded 25% of the customers (their contacts and outcomes leave events.csv; the bank
still knows their attributes in customers.csv), trains qianmian on the rest with
configs/bank-marketing.toml, starts `qianmian serve` on a loopback port and asks `score` for each
held-out customer's term deposit at the time of their contact. Reports the conversion AUC of
p_convert beside scikit-learn's HistGradientBoostingClassifier (default settings; categorical
columns ordinal-encoded) fitted on the same training customers' attributes.

Usage: /usr/bin/python3 scripts/check_bank_marketing.py QIANMIAN BANK_FOLDER WORKDIR [--seeds 1 2 3]
  BANK_FOLDER: the output of `qianmian import bank-marketing .../bank-additional-full.csv --out BANK_FOLDER`.
Needs Debian's python3-sklearn, python3-zmq and python3-msgpack.
"""
import argparse, csv, os, random, shutil, socket, subprocess, sys, time
import msgpack, numpy as np, zmq
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

p = argparse.ArgumentParser()
p.add_argument("qianmian")
p.add_argument("bank")
p.add_argument("work")
p.add_argument("--seeds", type=int, nargs="+", default=[1])
p.add_argument("--holdout", type=float, default=0.25)
p.add_argument("--config", default=os.path.join(os.path.dirname(__file__), "..", "configs", "bank-marketing.toml"))
a = p.parse_args()

customers = list(csv.DictReader(open(os.path.join(a.bank, "customers.csv"))))
events = list(csv.DictReader(open(os.path.join(a.bank, "events.csv"))))
contact = {}  # customer -> (ts of the contact, item, converted)
for e in events:
    c = contact.setdefault(e["customer_id"], [None, None, 0])
    if e["type"] == "impression":
        c[0], c[1] = int(e["ts"]), e["item_id"]
    elif e["type"] == "convert":
        c[2] = 1
cols = [k for k in customers[0] if k not in ("customer_id", "tier")]
numeric = set()
for k in cols:
    try:
        [float(r[k]) for r in customers[:200]]
        numeric.add(k)
    except ValueError:
        pass
codes = {k: {} for k in cols if k not in numeric}
def features(r):
    return [float(r[k]) if k in numeric else codes[k].setdefault(r[k], len(codes[k])) for k in cols]
Xall = np.array([features(r) for r in customers])
yall = np.array([contact[r["customer_id"]][2] for r in customers])

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port

env = dict(os.environ, QM_PROGRESS="0")
print(f"{'seed':>4} {'held-out customers':>18} {'qianmian score AUC':>19} {'HistGBDT AUC':>13}")
for seed in a.seeds:
    work = os.path.join(a.work, f"seed{seed}")
    shutil.rmtree(work, ignore_errors=True)
    data = os.path.join(work, "train")
    os.makedirs(data)
    rng = random.Random(seed)
    ids = [r["customer_id"] for r in customers]
    held = set(rng.sample(ids, int(round(a.holdout * len(ids)))))
    for f in ("customers.csv", "items.csv", "schema.toml"):
        if os.path.exists(os.path.join(a.bank, f)):
            shutil.copy(os.path.join(a.bank, f), data)
    with open(os.path.join(data, "events.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(events[0].keys()))
        w.writeheader()
        w.writerows(e for e in events if e["customer_id"] not in held)
    art = os.path.join(work, "art")
    subprocess.run([a.qianmian, "train", "--data", data, "--artifacts", art, "--config", a.config], check=True,
                   env=env, stdout=open(os.path.join(work, "train.txt"), "w"), stderr=subprocess.STDOUT)
    port = free_port()
    server = subprocess.Popen([a.qianmian, "serve", "--data", data, "--artifacts", art, "--config", a.config,
                               "--bind", f"tcp://127.0.0.1:{port}"], env=env,
                              stdout=open(os.path.join(work, "serve.txt"), "w"), stderr=subprocess.STDOUT)
    try:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.connect(f"tcp://127.0.0.1:{port}")
        deadline = time.time() + 120
        while True:  # until the server answers health
            sock.send(msgpack.packb({"op": "health"}))
            if sock.poll(1000):
                sock.recv(); break
            if time.time() > deadline or server.poll() is not None:
                sys.exit("serve did not start: " + open(os.path.join(work, "serve.txt")).read()[-500:])
        order = sorted(held)
        p_convert, sent = {}, 0
        while len(p_convert) < len(order):  # pipelined, at most 64 in flight (the queue holds 256)
            while sent < len(order) and sent - len(p_convert) < 64:
                cid = order[sent]
                ts, item, _ = contact[cid]
                sock.send(msgpack.packb({"op": "score", "id": cid, "customer_id": cid, "channel": "app_home",
                                         "item_ids": [item], "now_ms": ts}))
                sent += 1
            rep = msgpack.unpackb(sock.recv(), raw=False)
            if "id" not in rep:
                continue  # a late answer to one of the health probes
            if not rep.get("ok"):
                sys.exit(f"score failed: {rep}")
            p_convert[rep["id"]] = rep["scores"][0]["p_convert"]
    finally:
        server.terminate(); server.wait()
    y = [contact[c][2] for c in order]
    auc = roc_auc_score(y, [p_convert[c] for c in order])
    train_mask = np.array([r["customer_id"] not in held for r in customers])
    gb = HistGradientBoostingClassifier(random_state=seed).fit(Xall[train_mask], yall[train_mask])
    gb_auc = roc_auc_score(yall[~train_mask], gb.predict_proba(Xall[~train_mask])[:, 1])
    print(f"{seed:>4} {len(order):>18} {auc:>19.4f} {gb_auc:>13.4f}", flush=True)
