"""The Python client against a real `qianmian serve` (tests/blackbox/python_test.sh): every op,
the typed errors the server answers, timeouts and connection reuse."""

import time
import unittest

from live import ENV, bank_rows, client, current_version, needs_server, qianmian


@needs_server
class EveryOpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = client()
        cls.customers = [r["customer_id"] for r in bank_rows("customers.csv")]
        cls.items = bank_rows("items.csv")

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def test_health_names_the_current_version(self):
        reply = self.c.health()
        self.assertEqual(reply["status"], "ok")
        self.assertEqual(reply["model_version"], current_version())

    def test_recommend_returns_count_items_and_echoes_the_id(self):
        reply = self.c.recommend(self.customers[1], channel="app_home", count=4, id="py-1")
        self.assertEqual(reply["id"], "py-1")
        self.assertEqual(len(reply["items"]), 4)
        known = {r["item_id"]: r["kind"] for r in self.items}
        for item in reply["items"]:
            self.assertEqual(item["kind"], known[item["item_id"]])
            self.assertIsInstance(item["score"], float)
        self.assertEqual(len({i["item_id"] for i in reply["items"]}), 4)
        self.assertTrue(reply["request_id"])

    def test_recommend_honours_exclude_and_debug(self):
        first = self.c.recommend(self.customers[2], count=3, debug=True)
        self.assertIn("counts", first["debug"])
        excluded = [i["item_id"] for i in first["items"]]
        second = self.c.recommend(self.customers[2], count=3, exclude=excluded)
        self.assertFalse(set(excluded) & {i["item_id"] for i in second["items"]})
        self.assertNotIn("debug", second)

    def test_an_unknown_customer_gets_a_page(self):
        reply = self.c.recommend("py-never-seen", count=3)
        self.assertEqual(len(reply["items"]), 3)

    def test_bad_requests_raise_bad_request_naming_the_field(self):
        cases = [(dict(count=500), "'count'"), (dict(channel="fax"), "'channel'"), (dict(now_ms="soon"), "'now_ms'"),
                 (dict(deadline_ms=0), "'deadline_ms'")]
        for fields, needle in cases:
            with self.subTest(fields=fields):
                with self.assertRaises(qianmian.BadRequest) as cm:
                    self.c.recommend(self.customers[0], **{"count": 2, **fields})
                self.assertIn(needle, cm.exception.message)
                self.assertIsInstance(cm.exception, ValueError)

    def test_an_unknown_op_raises_unknown_op(self):
        with self.assertRaises(qianmian.UnknownOp):
            self.c.call("frobnicate")

    def test_score_reports_each_item(self):
        ids = [r["item_id"] for r in self.items[:5]] + ["py-no-such-item"]
        reply = self.c.score(self.customers[3], "app_home", ids)
        self.assertEqual([s["item_id"] for s in reply["scores"]], ids)
        for s in reply["scores"]:
            self.assertGreaterEqual(s["p_click"], 0)
            self.assertLessEqual(s["p_click"], 1)
        self.assertEqual(reply["scores"][-1]["blocked_by"], ["not_found"])

    def test_feedback_accepts_good_events_and_rejects_bad_ones_alone(self):
        ts = int(time.time() * 1000)
        item = self.items[0]["item_id"]
        events = [dict(ts_ms=ts, customer_id=self.customers[4], item_id=item, type="click", channel="app_home",
                       request_id=f"py-fb-{ts}"),
                  dict(ts_ms=ts, customer_id=self.customers[4], item_id=item, type="wave", channel="app_home")]
        reply = self.c.feedback(events)
        self.assertEqual(reply["accepted"], 1)
        self.assertEqual([(r["index"], r["code"]) for r in reply["rejected"]], [(1, "bad_request")])
        history = self.c.history(self.customers[4], limit=50)
        self.assertIn(f"py-fb-{ts}", [e["request_id"] for e in history["events"]])

    def test_history_lists_the_served_page_as_decisions(self):
        page = self.c.recommend(self.customers[5], count=3)
        history = self.c.history(self.customers[5], limit=100)
        served = sorted((d["position"], d["item_id"]) for d in history["decisions"]
                        if d["request_id"] == page["request_id"])
        self.assertEqual([item for _, item in served], [i["item_id"] for i in page["items"]])
        self.assertTrue(history["caps"])

    def test_items_upsert_then_retire(self):
        item = dict(item_id="py-item-1", kind="content", title="Saving for school", category="education",
                    tags=["parent", "saving"], value=2.5)
        self.assertEqual(self.c.upsert_items([item])["count"], 1)
        scored = self.c.score(self.customers[6], "app_home", ["py-item-1"])["scores"][0]
        self.assertNotIn("not_found", scored["blocked_by"])
        self.assertEqual(self.c.retire_items(["py-item-1"])["count"], 1)
        scored = self.c.score(self.customers[6], "app_home", ["py-item-1"])["scores"][0]
        self.assertEqual(scored["blocked_by"], ["not_found"])
        with self.assertRaises(qianmian.BadRequest):
            self.c.upsert_items([dict(item_id="py-item-2")])  # no kind

    def test_customers_upsert_makes_a_known_customer(self):
        customer = dict(customer_id="py-cust-1", tier="affluent", risk_level="C3", risk_assessed="2026-11-01",
                        region="Jinan", tags=["payroll"])
        self.assertEqual(self.c.upsert_customers([customer])["count"], 1)
        reply = self.c.recommend("py-cust-1", count=2, debug=True)
        self.assertTrue(reply["debug"]["known_customer"])
        with self.assertRaises(qianmian.BadRequest):
            self.c.upsert_customers([dict(tier="mass")])

    def test_report_names_the_layers_arms(self):
        reply = self.c.report(ENV["QM_LAYER"])
        self.assertEqual([a["arm"] for a in reply["arms"]], ["control", "treat"])
        with self.assertRaises(qianmian.BadRequest):
            self.c.report("py-no-such-layer")

    def test_reload_of_the_current_version_and_of_missing_ones(self):
        self.assertEqual(self.c.reload()["model_version"], current_version())
        self.assertEqual(self.c.reload(current_version())["model_version"], current_version())
        with self.assertRaises(qianmian.NotFound):
            self.c.reload("v-py-nope")
        with self.assertRaises(qianmian.BadRequest):
            self.c.reload("../etc")

    def test_stats_counts_this_clients_calls(self):
        before = self.c.stats()["ops"]["health"]["count"]
        for _ in range(3):
            self.c.health()
        after = self.c.stats()
        self.assertEqual(after["ops"]["health"]["count"] - before, 3)
        self.assertEqual(after["versions"]["current"], current_version())


@needs_server
class ConnectionTest(unittest.TestCase):
    def test_one_socket_carries_many_calls(self):
        with client() as c:
            sock = c._socket
            for n in range(50):
                self.assertEqual(c.health(id=n)["id"], n)
            self.assertIs(c._socket, sock)
            self.assertEqual(c.reconnects, 0)

    def test_a_server_that_is_not_there_is_a_timeout(self):
        with qianmian.Client("tcp://127.0.0.1:9", timeout_ms=200) as c:
            started = time.monotonic()
            with self.assertRaises(qianmian.Timeout):
                c.health()
            self.assertLess(time.monotonic() - started, 2)


if __name__ == "__main__":
    unittest.main()
