"""The wire protocol's JSON Schemas (docs/protocol/) against a real server: every request the
test sends is valid by its op's request schema and every reply, success or error, is valid by
its op's reply schema; and for requests that differ in one field, the schema and the server
agree on which ones are malformed."""

import time
import unittest

import minischema
from live import ENV, SCHEMAS, bank_rows, client, current_version, needs_server, qianmian


def campaign_requests():
    """The campaigns.* ops (SPEC §8) through a lifecycle, with their errors: conflict, forbidden,
    not_found, bad_request."""
    item = next(r["item_id"] for r in bank_rows("items.csv") if r["kind"] == "content" and r.get("service") != "1"
                and r.get("channels", "") in ("", "wechat_push"))
    cid = f"schema-{int(time.time() * 1000)}"
    definition = dict(id=cid, name="schema", channel="wechat_push", audience="all", content=dict(items=[item]),
                      objective=dict(w_click=1, w_convert=0.5), budget=dict(total=10, per_day=5), holdout=0.1,
                      schedule=dict(kind="once", at="2030-01-01T09:30"), priority=1)
    return [
        ("campaigns.create", dict(operator="alice", definition=definition), True),
        ("campaigns.create", dict(operator="bob", definition=definition), True),  # conflict: the id is taken
        ("campaigns.update", dict(operator="alice", definition=dict(definition, priority=2), revision=1), True),
        ("campaigns.transition", dict(operator="alice", campaign_id=cid, to="submitted"), True),
        ("campaigns.transition", dict(operator="alice", campaign_id=cid, to="approved"), True),  # forbidden
        ("campaigns.transition", dict(operator="bob", campaign_id=cid, to="approved", revision=3), True),
        ("campaigns.transition", dict(operator="bob", campaign_id=cid, to="scheduled", revision=3), True),  # conflict
        ("campaigns.get", dict(campaign_id=cid), True), ("campaigns.get", dict(campaign_id="no-such"), True),
        ("campaigns.list", {}, True), ("campaigns.list", dict(state="approved"), True),
        ("campaigns.audit", dict(campaign_id=cid), True),
        ("campaigns.dryrun", dict(campaign_id=cid), True), ("campaigns.dryrun", dict(campaign_id="no-such"), True),
        ("pressure", dict(channel="wechat_push"), True), ("pressure", dict(channel=""), False),
        ("events.ingest", dict(events=[dict(event_id=f"{cid}-e1", customer_id="C0000001", type="login",
                                            ts_ms=int(time.time() * 1000), attrs=dict(channel="app"))]), True),
        ("events.ingest", dict(events=[dict(event_id="bad", customer_id="C1", type="pay_day", ts_ms=1)]), False),
        ("profile", dict(customer_id="C0000001"), True), ("profile", dict(customer_id="no-such"), True),
        ("segments.save", dict(operator="alice", name=f"{cid}-seg", audience="tier = affluent", description="d"),
         True),
        ("segments.save", dict(operator="alice", name=f"{cid}-seg", audience="tier = affluent", revision=9), True),
        ("segments.get", dict(name=f"{cid}-seg"), True), ("segments.get", dict(name="no-such"), True),
        ("segments.list", {}, True),
    ]


def requests_of_every_op(customer, item, layer):
    """(op, fields, valid) covering every op, successes and failures; valid: whether the request
    follows its schema (a feedback event of an unknown type does not, yet the server answers ok
    and rejects that event alone)."""
    ts = int(time.time() * 1000)
    event = dict(ts_ms=ts, customer_id=customer, item_id=item, type="impression", channel="app_home",
                 request_id=f"schema-{ts}")
    return [
        ("health", {}, True), ("stats", {}, True),
        ("recommend", dict(customer_id=customer, channel="app_home", count=3, id="s1"), True),
        ("recommend", dict(customer_id=customer, channel="wechat_push", count=2, debug=True, id=7), True),
        ("recommend", dict(customer_id=customer, channel="app_home", count=2, context={"screen": "home", "n": 1},
                           exclude=[item], now_ms=ts), True),
        ("recommend", dict(customer_id=customer, channel="app_home", count=0), False),
        ("score", dict(customer_id=customer, channel="app_home", item_ids=[item, "nope"]), True),
        ("feedback", dict(events=[event, dict(event, type="wave")]), False),
        ("history", dict(customer_id=customer, limit=20), True),
        ("history", dict(customer_id=customer, since_ms=ts - 86400000), True),
        ("items.upsert", dict(items=[dict(item_id="schema-item", kind="content", title="t", tags=["a", "b"],
                                          value=1.5, service=0)]), True),
        ("items.retire", dict(item_ids=["schema-item"]), True),
        ("customers.upsert", dict(customers=[dict(customer_id="schema-cust", tier="mass", age=33)]), True),
        ("report", dict(experiment=layer), True),
        ("report", dict(experiment=layer, from_ms=0, to_ms=ts), True),
        ("report", dict(experiment="no-such-layer"), True),
        ("reload", {}, True), ("reload", dict(version=current_version()), True),
        ("reload", dict(version="v-missing"), True),
    ] + campaign_requests()


def one_field_variants(customer):
    """(op, fields) pairs of which some break the request schema in one field."""
    base = dict(customer_id=customer, channel="app_home", count=2)
    rec = [dict(base), dict(base, count=0), dict(base, count=101), dict(base, count="2"), dict(base, customer_id=""),
           dict(base, debug="yes"), dict(base, exclude="x"), dict(base, exclude=[1]), dict(base, context={"a": [1]}),
           dict(base, now_ms=0), dict(base, deadline_ms=0), dict(base, deadline_ms=60001), dict(base, deadline_ms=50),
           dict(base, id=1.5), dict(base, id="x" * 257), {k: v for k, v in base.items() if k != "count"}]
    out = [("recommend", f) for f in rec]
    out += [("history", dict(customer_id=customer, limit=n)) for n in (0, 1, 10000, 10001)]
    out += [("history", dict(customer_id=customer, since_ms=-1)), ("history", {})]
    out += [("score", dict(customer_id=customer, channel="app_home")),
            ("score", dict(customer_id=customer, channel="app_home", item_ids=["a", 2]))]
    out += [("reload", dict(version="a/b")), ("reload", dict(version=3)), ("report", {}),
            ("items.retire", dict(item_ids="x")), ("items.upsert", dict(items=[dict(item_id="v1")])),
            ("items.upsert", dict(items=[dict(kind="content")])), ("items.upsert", dict(items=[{"item_id": "v2",
                                                                                                "kind": "content",
                                                                                                "tags": [[1]]}])),
            ("customers.upsert", dict(customers=[dict(tier="mass")])), ("feedback", dict(events="x"))]
    out += [("campaigns.get", {}), ("campaigns.get", dict(campaign_id="no-such")),
            ("campaigns.create", dict(operator="x", definition=dict(id="v1", holdout=1.5))),
            ("campaigns.create", dict(operator="x", definition=dict(id="v 2"))),
            ("campaigns.create", dict(definition=dict(id="v3"))),
            ("campaigns.update", dict(operator="x", definition=dict(id="v4"), revision=0)),
            ("campaigns.transition", dict(operator="x", campaign_id="v5", to="nope")),
            ("campaigns.transition", dict(operator="x", campaign_id="v6", to="approved")),
            ("campaigns.list", dict(state="nope")),
            ("segments.save", dict(operator="x", name="v7")), ("segments.save", dict(name="v8", audience="all")),
            ("segments.get", {})]
    return out


@needs_server
class SchemaAgainstRealRepliesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.registry = minischema.Registry(SCHEMAS)
        cls.c = client()
        cls.customer = bank_rows("customers.csv")[0]["customer_id"]
        cls.item = bank_rows("items.csv")[0]["item_id"]

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_every_op_request_and_reply_follow_the_schemas(self):
        seen = set()
        for op, fields, valid in requests_of_every_op(self.customer, self.item, ENV["QM_LAYER"]):
            with self.subTest(op=op, fields=fields):
                request = dict(fields, op=op)
                self.assertEqual(self.registry.errors(request, f"{op}.request.schema.json") == [], valid)
                reply = self.c.call(op, fields, check=False)
                self.assertEqual(self.registry.errors(reply, f"{op}.reply.schema.json"), [], reply)
                seen.add((op, reply["ok"]))
        self.assertEqual({op for op, _ in seen}, set(qianmian.OPS))
        self.assertTrue({("recommend", False), ("report", False), ("reload", False)} <= seen)
        self.assertTrue({("campaigns.create", False), ("campaigns.transition", False), ("campaigns.get", False)} <= seen)

    def test_an_unknown_op_is_an_error_reply(self):
        reply = self.c.call("frobnicate", check=False)
        self.assertEqual(self.registry.errors(reply, "common.schema.json") or
                         self.registry.errors(reply, "health.reply.schema.json"), [])
        self.assertEqual(reply["error"]["code"], "unknown_op")

    def test_the_schema_and_the_server_agree_on_malformed_requests(self):
        invalid = 0
        for op, fields in one_field_variants(self.customer):
            with self.subTest(op=op, fields=fields):
                errors = self.registry.errors(dict(fields, op=op), f"{op}.request.schema.json")
                reply = self.c.call(op, fields, check=False)
                refused = not reply["ok"] and reply["error"]["code"] == "bad_request"
                self.assertEqual(bool(errors), refused, f"schema: {errors}; server: {reply}")
                invalid += bool(errors)
        self.assertGreaterEqual(invalid, 20)

    def test_a_changed_reply_fails_its_schema(self):
        reply = self.c.recommend(self.customer, count=2)
        self.assertEqual(self.registry.errors(reply, "recommend.reply.schema.json"), [])
        for broken in (dict(reply, took_us=-1), dict(reply, surprise=1), {k: v for k, v in reply.items()
                                                                          if k != "items"},
                       dict(reply, items=[dict(reply["items"][0], kind="video")])):
            self.assertNotEqual(self.registry.errors(broken, "recommend.reply.schema.json"), [])


if __name__ == "__main__":
    unittest.main()
