#!/usr/bin/python3
"""Pretty-printing for scripts/demo.sh (tooling only): turns the server's JSON replies, as
printed by `qianmian client`, into tables a person can read.

    demo_view.py page ITEMS_CSV REPLY.json          # a home page, with titles and reasons
    demo_view.py changed ITEMS_CSV BEFORE.json AFTER.json
    demo_view.py risk ITEMS_CSV REPLY.json...       # the product risk levels shown on pages
    demo_view.py scores ITEMS_CSV REPLY.json        # a `score` reply: p_click, blocked_by
    demo_view.py history REPLY.json                 # a `history` reply: events and caps
    demo_view.py customer CUSTOMERS_CSV ID          # one customer's profile line
    demo_view.py pick CUSTOMERS_CSV KIND NOW_MS     # a customer id: young_payroll | affluent_c2_retiree
"""
import csv
import json
import sys


def items(path):
    with open(path, newline="", encoding="utf-8") as f:
        return {r["item_id"]: r for r in csv.DictReader(f)}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def width(s):
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)


def pad(s, n):
    return s + " " * max(0, n - width(s))


def clip(s, n):
    out = ""
    for ch in s:
        if width(out + ch) > n:
            return out + "…"
        out += ch
    return out


def table(rows, header):
    cols = [max(width(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  ".join(pad(str(v), cols[i]) for i, v in enumerate(r)).rstrip()
    print(line(header))
    print("  ".join("-" * c for c in cols))
    for r in rows:
        print(line(r))


def page(cat, reply):
    rows = []
    for k, it in enumerate(reply.get("items", []), 1):
        meta = cat.get(it["item_id"], {})
        reasons = [r for r in it.get("reasons", []) if not r.startswith("rank:p_convert")]
        rows.append([k, it["item_id"], it["kind"], meta.get("category", ""), meta.get("risk_level", "") or "-",
                     clip(meta.get("title", ""), 22), f'{it["score"]:.2f}', ", ".join(reasons)])
    if not rows:
        print("(no items)")
        return
    table(rows, ["#", "item", "kind", "category", "risk", "title", "score", "reasons"])
    d = reply.get("debug") or {}
    if d.get("fallbacks"):
        print("fallbacks:", ", ".join(d["fallbacks"]))
    print(f'model {reply.get("model_version")}, request {reply.get("request_id")}, {reply.get("took_us")} us')


def main():
    a = sys.argv[1:]
    if not a:
        sys.exit(__doc__)
    cmd = a[0]
    if cmd == "page":
        page(items(a[1]), load(a[2]))
    elif cmd == "changed":
        cat = items(a[1])
        before = [i["item_id"] for i in load(a[2])["items"]]
        after = [i["item_id"] for i in load(a[3])["items"]]
        new = [i for i in after if i not in before]
        gone = [i for i in before if i not in after]
        names = [i + " (" + clip(cat.get(i, {}).get("title", ""), 14) + ")" for i in new]
        print("new on the page:", ", ".join(names) or "none")
        print(f"no longer shown: {', '.join(gone) or 'none'}")
    elif cmd == "risk":
        cat = items(a[1])
        levels = {}
        for path in a[2:]:
            for it in load(path).get("items", []):
                lv = cat.get(it["item_id"], {}).get("risk_level", "")
                if lv:
                    levels[lv] = levels.get(lv, 0) + 1
        high = sum(v for k, v in levels.items() if k >= "R3")
        shown = ", ".join(f"{k} x{v}" for k, v in sorted(levels.items())) or "none"
        print(f"   risk levels of the products on these {len(a) - 2} pages: {shown}; above R2: {high}")
        if high:
            sys.exit("demo_view: a product above R2 was shown")
    elif cmd == "scores":
        cat = items(a[1])
        rows = []
        for s in load(a[2]).get("scores", []):
            meta = cat.get(s["item_id"], {})
            rows.append([s["item_id"], meta.get("risk_level", "") or "-", clip(meta.get("title", ""), 22),
                         f'{s["p_click"]:.3f}', "yes" if s["eligible"] else "no", ", ".join(s.get("blocked_by", []))])
        table(rows, ["item", "risk", "title", "p_click", "eligible", "blocked_by"])
    elif cmd == "history":
        r = load(a[1])
        rows = [[e["ts_ms"], e["item_id"], e["type"], e["channel"], e.get("request_id", "")] for e in r.get("events", [])[:8]]
        if rows:
            table(rows, ["ts_ms", "item", "type", "channel", "request_id"])
        by_rule = {}
        for c in r.get("caps", []):
            if not c["used"]:
                continue
            b = by_rule.setdefault(c["rule"], {"scopes": 0, "used": 0, "limit": c["limit"], "window": c["window_ms"]})
            b["scopes"] += 1
            b["used"] = max(b["used"], c["used"])
        caps = [[rule, b["used"], b["limit"], f'{b["window"] / 3600000:.0f} h',
                 f'{b["scopes"]} items' if rule.startswith("home_item") else ""] for rule, b in by_rule.items()]
        if caps:
            print()
            table(caps, ["cap", "used (most)", "limit", "window", "scopes"])
    elif cmd == "customer":
        with open(a[1], newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if r["customer_id"] == a[2]:
                    keep = ["tier", "risk_level", "risk_assessed", "region", "age", "life_stage", "tags", "holdings"]
                    print(a[2] + ": " + ", ".join(f"{k}={r.get(k, '')}" for k in keep if r.get(k, "") != ""))
                    return
        print(a[2] + ": not in customers.csv (never seen by the bank's data)")
    elif cmd == "pick":
        import datetime
        now = datetime.datetime.fromtimestamp(int(a[3]) / 1000, datetime.timezone.utc).date()
        with open(a[1], newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                tags = r.get("tags", "").split(";")
                age = int(r["age"]) if r.get("age", "").isdigit() else 0
                fresh = False
                if r.get("risk_assessed"):
                    d = datetime.date.fromisoformat(r["risk_assessed"][:10])
                    fresh = (now - d).days < 300
                if a[2] == "young_payroll" and r["tier"] == "mass" and age < 30 and "payroll" in tags and not r.get("opt_out"):
                    print(r["customer_id"])
                    return
                if (a[2] == "affluent_c2_retiree" and r["tier"] == "affluent" and r.get("risk_level") == "C2" and fresh
                        and (r.get("life_stage") == "retired" or age >= 60) and not r.get("opt_out")):
                    print(r["customer_id"])
                    return
        sys.exit(f"demo_view: no {a[2]} customer in {a[1]}")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
