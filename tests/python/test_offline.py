"""Tests of the Python client that need no qianmian server: retries, backoff, timeouts and
socket rebuilds against a scripted fake ROUTER server; the error mapping; the schema
validator's own checks. Run: /usr/bin/python3 -m unittest discover -s tests/python -p 'test_offline.py'
"""

import os
import random
import sys
import threading
import time
import unittest

import msgpack
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
sys.path.insert(0, HERE)

import minischema  # noqa: E402
import qianmian  # noqa: E402
from qianmian import errors  # noqa: E402

SCHEMAS = os.path.join(HERE, "..", "..", "docs", "protocol")


class FakeServer:
    """A ROUTER socket in a thread that answers each request with the next scripted reply:
    a dict (sent as msgpack, with the request's id echoed), or "drop" (no answer). Records
    every request it received and the time it came."""

    def __init__(self, script):
        self.script = list(script)
        self.received = []
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            if not self.router.poll(20):
                continue
            parts = self.router.recv_multipart()
            envelope, body = parts[:-1], parts[-1]
            request = msgpack.unpackb(body, raw=False)
            self.received.append((time.monotonic(), request))
            action = self.script.pop(0) if self.script else {"ok": True}
            if action == "drop":
                continue
            if action == "late":  # answered only after the next request came
                self.late = envelope + [msgpack.packb({"ok": True, "late": True})]
                continue
            if getattr(self, "late", None):
                self.router.send_multipart(self.late)
                self.late = None
            self.router.send_multipart(envelope + [msgpack.packb(action)])

    def close(self):
        self.stop.set()
        self.thread.join()
        self.router.close()
        self.context.term()


class ReplicaTest(unittest.TestCase):
    """Several replicas behind one endpoint string (issue 21)."""

    def test_requests_spread_over_live_replicas_and_skip_a_closed_one(self):
        a, b = FakeServer([]), FakeServer([])
        self.addCleanup(b.close)
        client = qianmian.Client(f"{a.endpoint},{b.endpoint}", timeout_ms=2000)
        self.addCleanup(client.close)
        time.sleep(0.2)  # both connections up
        for i in range(20):
            self.assertTrue(client.call("health")["ok"])
        self.assertGreater(len(a.received), 3)
        self.assertGreater(len(b.received), 3)
        a.close()  # a replica goes away: its connection drops, the rest go to b
        time.sleep(0.3)
        before = len(b.received)
        for i in range(10):
            self.assertTrue(client.call("health")["ok"])
        self.assertEqual(len(b.received) - before, 10)

    def test_no_replica_connected_is_a_timeout_and_bad_lists_are_refused(self):
        client = qianmian.Client("tcp://127.0.0.1:1,tcp://127.0.0.1:2", timeout_ms=200)
        self.addCleanup(client.close)
        with self.assertRaises(errors.Timeout):
            client.call("health")
        with self.assertRaises(ValueError):
            qianmian.Client("tcp://127.0.0.1:1,", timeout_ms=200)


def failure(code):
    """A failed reply with error `code`."""
    return {"ok": False, "error": {"code": code, "message": f"scripted {code}"}}


class RetryTest(unittest.TestCase):
    def serve(self, script):
        server = FakeServer(script)
        self.addCleanup(server.close)
        return server

    def test_overloaded_is_retried_until_ok_with_backoff(self):
        server = self.serve([failure("overloaded"), failure("overloaded"), {"ok": True, "n": 3}])
        client = qianmian.Client(server.endpoint, timeout_ms=2000, retries=3, backoff_ms=20, max_backoff_ms=40,
                                 rng=random.Random(1))
        self.addCleanup(client.close)
        reply = client.recommend("c1", count=2)
        self.assertEqual(reply["n"], 3)
        self.assertEqual(client.retried, 2)
        self.assertEqual(len(server.received), 3)
        # Each retry is the same request again.
        self.assertEqual(server.received[0][1], server.received[2][1])

    def test_retries_stop_after_the_limit_and_raise_the_last_error(self):
        server = self.serve([failure("overloaded")] * 5)
        client = qianmian.Client(server.endpoint, timeout_ms=2000, retries=2, backoff_ms=1)
        self.addCleanup(client.close)
        with self.assertRaises(qianmian.Overloaded) as cm:
            client.health()
        self.assertEqual(cm.exception.message, "scripted overloaded")
        self.assertEqual(len(server.received), 3)

    def test_unavailable_is_retried_for_idempotent_ops_only(self):
        server = self.serve([failure("unavailable"), {"ok": True, "accepted": 1, "rejected": []},
                             failure("unavailable"), failure("unavailable")])
        client = qianmian.Client(server.endpoint, timeout_ms=2000, retries=3, backoff_ms=1)
        self.addCleanup(client.close)
        self.assertEqual(client.feedback([{"ts_ms": 1}])["accepted"], 1)
        with self.assertRaises(qianmian.Unavailable):
            client.recommend("c1")  # a page reserves caps: never sent twice
        self.assertEqual(len(server.received), 3)
        with self.assertRaises(qianmian.Unavailable):
            client.reload()
        self.assertEqual(len(server.received), 4)

    def test_bad_request_is_never_retried(self):
        server = self.serve([failure("bad_request")])
        client = qianmian.Client(server.endpoint, timeout_ms=2000, retries=5, backoff_ms=1)
        self.addCleanup(client.close)
        with self.assertRaises(qianmian.BadRequest):
            client.stats()
        self.assertEqual(len(server.received), 1)
        self.assertEqual(client.retried, 0)

    def test_without_retries_an_overloaded_reply_raises_at_once(self):
        server = self.serve([failure("overloaded")])
        client = qianmian.Client(server.endpoint, timeout_ms=2000)
        self.addCleanup(client.close)
        with self.assertRaises(qianmian.Overloaded):
            client.health()
        self.assertEqual(len(server.received), 1)

    def test_check_false_returns_the_failed_reply(self):
        server = self.serve([failure("internal")])
        client = qianmian.Client(server.endpoint, timeout_ms=2000)
        self.addCleanup(client.close)
        reply = client.call("stats", check=False)
        self.assertFalse(reply["ok"])
        self.assertEqual(reply["error"]["code"], "internal")

    def test_backoff_is_full_jitter_capped_exponential(self):
        rng = random.Random(7)
        for attempt, cap in [(0, 5), (1, 10), (3, 40), (10, 500)]:
            draws = [qianmian.backoff_ms(attempt, 5, 500, rng) for _ in range(2000)]
            self.assertGreaterEqual(min(draws), 0)
            self.assertLessEqual(max(draws), cap)
            self.assertGreater(max(draws), 0.9 * cap)  # the whole range is used
            self.assertAlmostEqual(sum(draws) / len(draws), cap / 2, delta=0.06 * cap)


class TimeoutTest(unittest.TestCase):
    def test_a_timeout_raises_and_rebuilds_the_socket_so_a_late_reply_is_not_taken(self):
        server = FakeServer(["late", {"ok": True, "second": True}])
        self.addCleanup(server.close)
        client = qianmian.Client(server.endpoint, timeout_ms=300, retries=3)
        self.addCleanup(client.close)
        started = time.monotonic()
        with self.assertRaises(qianmian.Timeout):
            client.health()
        self.assertGreaterEqual(time.monotonic() - started, 0.29)
        self.assertEqual(client.reconnects, 1)
        self.assertEqual(len(server.received), 1)  # a timeout is never retried
        reply = client.health()
        self.assertTrue(reply.get("second"), reply)  # not the late first reply
        self.assertNotIn("late", reply)

    def test_a_timeout_is_a_python_timeout_error(self):
        server = FakeServer(["drop"])
        self.addCleanup(server.close)
        client = qianmian.Client(server.endpoint, timeout_ms=100)
        self.addCleanup(client.close)
        with self.assertRaises(TimeoutError):
            client.stats()

    def test_one_socket_serves_many_calls(self):
        server = FakeServer([{"ok": True}] * 20)
        self.addCleanup(server.close)
        client = qianmian.Client(server.endpoint, timeout_ms=2000)
        self.addCleanup(client.close)
        sock = client._socket
        for _ in range(20):
            client.health()
        self.assertIs(client._socket, sock)
        self.assertEqual(client.reconnects, 0)


class ArgumentTest(unittest.TestCase):
    def test_bad_arguments_fail_before_sending(self):
        with self.assertRaises(ValueError):
            qianmian.Client("localhost:5555")
        with self.assertRaises(ValueError):
            qianmian.Client("tcp://127.0.0.1:1", timeout_ms=0)
        with self.assertRaises(ValueError):
            qianmian.Client("tcp://127.0.0.1:1", retries=-1)
        with self.assertRaises(ValueError):
            qianmian.Client("nosuch://x")
        client = qianmian.Client("tcp://127.0.0.1:1", timeout_ms=100)
        self.addCleanup(client.close)
        with self.assertRaises(ValueError):
            client.call("")
        with self.assertRaises(TypeError):
            client.call("stats", ["not", "a", "dict"])
        with self.assertRaises(ValueError):
            client.call("stats", {"op": "health"})
        with self.assertRaises(TypeError):
            client.call("stats", {"x": object()})

    def test_every_error_code_maps_to_its_class(self):
        for code, cls in errors.ERRORS_BY_CODE.items():
            e = errors.error_from_reply({"ok": False, "error": {"code": code, "message": "m"}})
            self.assertIs(type(e), cls)
            self.assertEqual((e.code, e.message), (code, "m"))
        e = errors.error_from_reply({"ok": False, "error": {"code": "new_code", "message": "m"}})
        self.assertIs(type(e), errors.ServerError)
        self.assertEqual(e.code, "new_code")

    def test_retryable_mirrors_the_cpp_client(self):
        for op in qianmian.OPS:
            self.assertTrue(qianmian.retryable(op, "overloaded"))
            self.assertEqual(qianmian.retryable(op, "unavailable"), op not in ("recommend", "reload"))
            for code in ("bad_request", "deadline_exceeded", "internal", "not_found", None):
                self.assertFalse(qianmian.retryable(op, code))


class ValidatorTest(unittest.TestCase):
    def setUp(self):
        self.registry = minischema.Registry(SCHEMAS)

    def test_every_op_has_a_request_and_a_reply_schema(self):
        for op in qianmian.OPS:
            self.assertIn(f"{op}.request.schema.json", self.registry.schemas)
            self.assertIn(f"{op}.reply.schema.json", self.registry.schemas)

    def test_the_validator_catches_each_kind_of_violation(self):
        ok = {"ok": True, "scores": [{"item_id": "a", "p_click": 0.5, "p_convert": 0, "eligible": True,
                                      "blocked_by": []}]}
        self.assertEqual(self.registry.errors(ok, "score.reply.schema.json"), [])
        bad = [
            {"ok": True},  # missing field
            {**ok, "extra": 1},  # unexpected field
            {"ok": True, "scores": [{**ok["scores"][0], "p_click": 1.5}]},  # out of range
            {"ok": True, "scores": [{**ok["scores"][0], "eligible": 1}]},  # wrong type
            {"ok": True, "scores": "x"},  # not an array
            {"ok": False, "error": {"code": "oops", "message": "m"}},  # not an error code
            {"ok": 1, "scores": []},  # 1 is not the const true
        ]
        for instance in bad:
            self.assertNotEqual(self.registry.errors(instance, "score.reply.schema.json"), [], instance)
        self.assertNotEqual(self.registry.errors({"op": "reload", "version": "../x"}, "reload.request.schema.json"),
                            [])

    def test_a_schema_with_an_unsupported_keyword_is_refused(self):
        import json
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "x.schema.json"), "w") as f:
                json.dump({"type": "object", "patternProperties": {}}, f)
            with self.assertRaisesRegex(ValueError, "patternProperties"):
                minischema.Registry(d)
            with open(os.path.join(d, "x.schema.json"), "w") as f:
                json.dump({"$ref": "nope.schema.json#/$defs/a"}, f)
            with self.assertRaisesRegex(ValueError, "nope"):
                minischema.Registry(d)


if __name__ == "__main__":
    unittest.main()
