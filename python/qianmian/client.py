"""The Python client of a qianmian server (SPEC §5: ZeroMQ + msgpack).

One :class:`Client` owns one DEALER socket, reused for every call. Each request travels as the
frames ``[tag, "", body]``; the server echoes the frames before the empty delimiter, so a reply
is matched to its request by tag. A call without a reply within ``timeout_ms`` raises
:class:`~qianmian.errors.Timeout` and rebuilds the socket, so a late reply dies with the old one.
Retries mirror the C++ client (``client/include/qianmian/client/client.h``): see
:func:`retryable`.

Not thread-safe: use one Client per thread.
"""

import itertools
import random
import struct
import time

import msgpack
import zmq

from .errors import ProtocolError, Timeout, error_from_reply

# The ops the server implements (server/src/ops.cc), in its order.
OPS = ("recommend", "feedback", "score", "items.upsert", "items.retire", "customers.upsert", "history", "report",
       "reload", "stats", "health", "campaigns.create", "campaigns.update", "campaigns.transition", "campaigns.get",
       "campaigns.list", "campaigns.audit", "campaigns.dryrun", "pressure", "events.ingest", "profile", "segments.save", "segments.get",
       "segments.list")

# Ops whose `unavailable` reply may not be sent again: a served page reserves caps under a new
# request id each time; a reload changes what is served.
_NOT_IDEMPOTENT = frozenset(("recommend", "reload"))


def retryable(op, code):
    """Whether a reply with error ``code`` to ``op`` may be sent again unchanged, as the C++
    client's ``RetryableReply``: ``overloaded`` always (the server ran nothing), ``unavailable``
    only for idempotent ops (not ``recommend`` nor ``reload``; ``feedback`` is idempotent: the
    store keeps an event once). Nothing else; a timeout is not a reply and is never retried."""
    if code == "overloaded":
        return True
    return code == "unavailable" and op not in _NOT_IDEMPOTENT


def backoff_ms(attempt, base_ms, max_ms, rng=random):
    """The wait before retry number ``attempt`` (0-based): uniform in
    [0, min(max_ms, base_ms * 2**attempt)] ms ("full jitter")."""
    cap = min(float(max_ms), float(base_ms) * (2.0**attempt))
    return rng.uniform(0.0, max(cap, 0.0))


def _default(obj):
    """msgpack fallback: numpy scalars and arrays as Python numbers and lists."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"cannot send a value of type {type(obj).__name__} (use str, int, float, bool, list or dict)")


def _without_none(fields):
    """The fields whose value is not None (optional arguments left out)."""
    return {k: v for k, v in fields.items() if v is not None}


class Client:
    """A connection to one qianmian server.

    ``endpoint``: the server's address (``tcp://host:port`` or ``ipc://path``), or several
    replicas' addresses separated by commas: requests then go round robin to the replicas whose
    connection is up (ZMQ_IMMEDIATE), ZMTP heartbeats drop a replica that stops answering, and a
    send with no replica connected raises Timeout after ``timeout_ms`` (as the C++ client). ``timeout_ms``:
    how long a call waits for its reply (default 5000). ``retries``: how many more times a
    retryable reply (:func:`retryable`) is sent again, after a jittered exponential backoff of
    ``backoff_ms`` doubling up to ``max_backoff_ms`` (default 0: never). ZeroMQ connects lazily,
    so an absent server shows as a :class:`~qianmian.errors.Timeout` on the first call.
    """

    def __init__(self, endpoint="tcp://127.0.0.1:5555", timeout_ms=5000, retries=0, backoff_ms=5,
                 max_backoff_ms=500, context=None, rng=None):
        if not isinstance(endpoint, str) or any("://" not in e for e in endpoint.split(",")):
            raise ValueError(f"endpoint must look like tcp://host:port or ipc://path (several separated by "
                             f"commas), not {endpoint!r}")
        if timeout_ms <= 0:
            raise ValueError("timeout_ms must be > 0")
        if retries < 0 or backoff_ms < 0 or max_backoff_ms < 0:
            raise ValueError("retries, backoff_ms and max_backoff_ms must be >= 0")
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self.retries = int(retries)
        self.backoff_ms = backoff_ms
        self.max_backoff_ms = max_backoff_ms
        self.retried = 0  # requests sent again under `retries`
        self.reconnects = 0  # sockets rebuilt after a timeout
        self._rng = rng or random.Random()
        self._context = context or zmq.Context.instance()
        self._tags = itertools.count(1)
        self._socket = None
        self._open()

    # -- connection ---------------------------------------------------------------------------

    def _open(self):
        """Opens (or reopens) the DEALER socket."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        sock = self._context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 50)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
        endpoints = self.endpoint.split(",")
        if len(endpoints) > 1:  # replicas: only to live connections, a dead one dropped
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.SNDTIMEO, int(self.timeout_ms))
            sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
        for e in endpoints:
            try:
                sock.connect(e)
            except zmq.ZMQError as err:
                sock.close(linger=0)
                raise ValueError(f"cannot connect to {e!r}: {err}") from None
        self._socket = sock

    def close(self):
        """Closes the socket; the client cannot be used afterwards."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw exchange -------------------------------------------------------------------------

    def call_raw(self, frame, timeout_ms=None):
        """Sends ``frame`` (bytes) as one request frame and returns the reply frame's bytes.
        Never retried. Raises Timeout when no reply came in time (the socket is then rebuilt)."""
        if self._socket is None:
            raise ValueError("the client is closed")
        tag = struct.pack("<Q", next(self._tags))
        try:
            self._socket.send_multipart([tag, b"", bytes(frame)])
        except zmq.Again:  # replicas: none connected within timeout_ms
            raise Timeout(f"no replica of {self.endpoint} connected within {self.timeout_ms} ms") from None
        wait_ms = self.timeout_ms if timeout_ms is None else timeout_ms
        until = time.monotonic() + wait_ms / 1000.0
        while True:
            left_ms = max(0, int((until - time.monotonic()) * 1000))
            if left_ms == 0 or not self._socket.poll(left_ms, zmq.POLLIN):
                self._open()
                self.reconnects += 1
                raise Timeout(f"no reply from {self.endpoint} within {wait_ms} ms")
            parts = self._socket.recv_multipart()
            if len(parts) == 3 and parts[0] == tag and parts[1] == b"":
                return parts[2]

    def _exchange(self, request, timeout_ms):
        """One request map out, one decoded reply map back (no retry, no raising on ok=false)."""
        frame = msgpack.packb(request, use_bin_type=True, default=_default)
        body = self.call_raw(frame, timeout_ms)
        try:
            reply = msgpack.unpackb(body, raw=False)
        except Exception as e:  # msgpack raises several unrelated types
            raise ProtocolError(f"cannot decode the reply: {e}") from None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise ProtocolError("the reply is not a msgpack map with a boolean 'ok'")
        return reply

    # -- calls ----------------------------------------------------------------------------------

    def call(self, op, fields=None, timeout_ms=None, check=True):
        """Sends ``op`` with ``fields`` (a dict; may hold ``id`` and ``deadline_ms``) and returns
        the reply as a dict. With ``check`` (default) a failed reply raises its ServerError
        subclass (after the retries it allows); without, the failed reply is returned."""
        if not isinstance(op, str) or not op:
            raise ValueError("op must be a non-empty string")
        if fields is not None and not isinstance(fields, dict):
            raise TypeError("fields must be a dict")
        request = dict(fields or {})
        if request.get("op", op) != op:
            raise ValueError(f"the fields name another op ({request['op']!r}) than {op!r}")
        request["op"] = op
        attempt = 0
        while True:
            reply = self._exchange(request, timeout_ms)
            if reply["ok"]:
                return reply
            code = reply.get("error", {}).get("code") if isinstance(reply.get("error"), dict) else None
            if attempt >= self.retries or not retryable(op, code):
                if check:
                    raise error_from_reply(reply)
                return reply
            time.sleep(backoff_ms(attempt, self.backoff_ms, self.max_backoff_ms, self._rng) / 1000.0)
            attempt += 1
            self.retried += 1

    def recommend(self, customer_id, channel="app_home", count=10, now_ms=None, exclude=None, context=None,
                  debug=False, **extra):
        """A page for one customer: ``{request_id, model_version, items: [{item_id, kind, score,
        reasons}], took_us}`` (and ``debug`` when asked). ``extra``: ``id``, ``deadline_ms``."""
        fields = _without_none(dict(customer_id=customer_id, channel=channel, count=count, now_ms=now_ms,
                                    exclude=exclude, context=context, **extra))
        if debug:
            fields["debug"] = True
        return self.call("recommend", fields)

    def feedback(self, events, **extra):
        """Records events ``[{ts_ms, customer_id, item_id, type, channel, request_id?}]``; returns
        ``{accepted, rejected: [{index, code, message}]}`` (a malformed event is rejected alone)."""
        return self.call("feedback", dict(events=list(events), **extra))

    def score(self, customer_id, channel, item_ids, now_ms=None, **extra):
        """``{scores: [{item_id, p_click, p_convert, eligible, blocked_by}]}`` for given items."""
        return self.call("score", _without_none(dict(customer_id=customer_id, channel=channel,
                                                     item_ids=list(item_ids), now_ms=now_ms, **extra)))

    def upsert_items(self, items, **extra):
        """Adds or replaces items (maps as rows of items.csv); ``{count}``."""
        return self.call("items.upsert", dict(items=list(items), **extra))

    def retire_items(self, item_ids, **extra):
        """Retires items by id; ``{count}``."""
        return self.call("items.retire", dict(item_ids=list(item_ids), **extra))

    def upsert_customers(self, customers, **extra):
        """Adds or replaces customers (maps as rows of customers.csv); ``{count}``."""
        return self.call("customers.upsert", dict(customers=list(customers), **extra))

    def history(self, customer_id, since_ms=None, limit=None, now_ms=None, **extra):
        """A customer's ``events``, ``decisions`` (newest first) and ``caps``."""
        return self.call("history", _without_none(dict(customer_id=customer_id, since_ms=since_ms, limit=limit,
                                                       now_ms=now_ms, **extra)))

    def report(self, experiment, from_ms=None, to_ms=None, **extra):
        """The effect report of an experiment layer (``arms``, ``sample_ratio``, ...)."""
        return self.call("report", _without_none(dict(experiment=experiment, from_ms=from_ms, to_ms=to_ms, **extra)))

    def reload(self, version=None, **extra):
        """Serves ``version`` (default: the one CURRENT names); ``{model_version}``."""
        return self.call("reload", _without_none(dict(version=version, **extra)))

    def stats(self, **extra):
        """Counters, latency percentiles per op, versions, queue and store status."""
        return self.call("stats", dict(extra))

    def health(self, **extra):
        """``{status: "ok" | "draining", model_version}``."""
        return self.call("health", dict(extra))

    # Campaigns (SPEC §8): every change names its operator; ``revision`` (optional) is the
    # revision the change is based on (``Conflict`` when the campaign changed since).
    def create_campaign(self, definition, operator, **extra):
        """A new campaign in draft: ``{campaign}``; ``Conflict`` when the id is taken."""
        return self.call("campaigns.create", dict(definition=definition, operator=operator, **extra))

    def update_campaign(self, definition, operator, revision=None, **extra):
        """Replaces the definition (back to draft, approval dropped): ``{campaign}``."""
        return self.call("campaigns.update",
                         _without_none(dict(definition=definition, operator=operator, revision=revision, **extra)))

    def transition_campaign(self, campaign_id, to, operator, reason=None, revision=None, **extra):
        """Moves the campaign to state ``to``: ``{campaign}``; ``Forbidden`` when an author approves."""
        return self.call("campaigns.transition", _without_none(dict(campaign_id=campaign_id, to=to, operator=operator,
                                                                    reason=reason, revision=revision, **extra)))

    def get_campaign(self, campaign_id, **extra):
        """``{campaign}``."""
        return self.call("campaigns.get", dict(campaign_id=campaign_id, **extra))

    def list_campaigns(self, state=None, **extra):
        """``{campaigns: [...]}``, by id."""
        return self.call("campaigns.list", _without_none(dict(state=state, **extra)))

    def campaign_audit(self, campaign_id, **extra):
        """The append-only audit log, oldest first: ``{entries: [...]}``."""
        return self.call("campaigns.audit", dict(campaign_id=campaign_id, **extra))

    def dryrun_campaign(self, campaign_id, occurrence=None, now_ms=None, **extra):
        """The approver's preview: ``{summary}`` of a dry run (nothing reserved or recorded)."""
        return self.call("campaigns.dryrun", _without_none(dict(campaign_id=campaign_id, occurrence=occurrence,
                                                                now_ms=now_ms, **extra)))

    def pressure(self, channel, now_ms=None, **extra):
        """Contact pressure across the customer base: ``{pressure}`` (customers by pushes on the
        channel in the last 7 and 30 days)."""
        return self.call("pressure", _without_none(dict(channel=channel, now_ms=now_ms, **extra)))

    def save_segment(self, operator, name, audience, description=None, revision=None, **extra):
        """Creates or replaces a saved segment: ``{segment}`` (name, audience, description,
        updated_by, updated_at, revision)."""
        return self.call("segments.save", _without_none(dict(operator=operator, name=name, audience=audience,
                                                             description=description, revision=revision, **extra)))

    def get_segment(self, name, **extra):
        """``{segment}``."""
        return self.call("segments.get", dict(name=name, **extra))

    def list_segments(self, **extra):
        """``{segments: [...]}``, by name."""
        return self.call("segments.list", dict(**extra))

    def profile(self, customer_id, **extra):
        """The customer's portrait in the served version: ``{customer_id, version, portrait}``
        (``portrait``: churn_risk, lifecycle, value_trend, days_inactive, interests; None when the
        version has none)."""
        return self.call("profile", dict(customer_id=customer_id, **extra))

    def ingest_events(self, events, now_ms=None, **extra):
        """Business events for the triggered campaigns: ``{decisions: [...]}``. Each event is a
        dict ``{event_id, customer_id, type, ts_ms, attrs}``; sending one again replays its
        decisions (nothing counted twice)."""
        return self.call("events.ingest", _without_none(dict(events=list(events), now_ms=now_ms, **extra)))
