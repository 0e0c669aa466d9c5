#!/usr/bin/python3
"""Event-to-decision latency of triggered campaigns (issue 18: p99 < 500 ms at 500 events/s).

scripts/bench_triggers.sh starts the server; this drives it. Two paths, each an open loop at
--rate events a second for --duration seconds, one event a customer (so the contact caps do not
decide for the ranker):

  wire:   one `events.ingest` request per event over a ZeroMQ DEALER socket, sent on schedule
          whatever the replies; latency = the reply's arrival (the decision durable, in the
          outbox) minus the event's scheduled send time.
  stream: XADD of each event to the server's Redis stream on schedule; latency = the time the
          decision's entry reached the Redis outbox stream (its entry id) minus the event's XADD
          time (its entry id): both Redis's clock. Only sends have outbox entries.

Needs python3-zmq and python3-msgpack (Debian). Prints the latency percentiles of each path.
"""
import argparse
import json
import socket
import time

import msgpack
import zmq


def percentiles(xs):
    xs = sorted(xs)
    if not xs:
        return "none"
    at = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
    return (f"n {len(xs)}  p50 {at(0.5):.1f} ms  p90 {at(0.9):.1f} ms  p99 {at(0.99):.1f} ms  "
            f"max {xs[-1]:.1f} ms")


def event(i, customer, kind, ts_ms):
    return dict(event_id=f"{kind}-{i}", customer_id=customer, type="salary_credited", ts_ms=ts_ms,
                attrs=dict(amount=8000 + i % 1000))


def wire(args, customers):
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.connect(args.connect)
    n = int(args.rate * args.duration)
    sent_at, lat, outcomes, errors = {}, [], {}, {}
    start = time.monotonic() + 0.2
    i = 0
    poller = zmq.Poller()
    poller.register(s, zmq.POLLIN)
    while len(lat) + sum(errors.values()) < n:
        now = time.monotonic()
        while i < n and start + i / args.rate <= now:
            due = start + i / args.rate
            req = dict(op="events.ingest", id=str(i),
                       events=[event(i, customers[i % len(customers)], "w", int(time.time() * 1000))])
            s.send_multipart([b"", msgpack.packb(req)])
            sent_at[str(i)] = due
            i += 1
        wait = max(0, (start + i / args.rate - time.monotonic()) * 1000) if i < n else 1000
        if not poller.poll(min(wait, 1000)):
            if i >= n and time.monotonic() > start + args.duration + 30:
                break
            continue
        while True:
            try:
                frames = s.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            t = time.monotonic()
            rep = msgpack.unpackb(frames[-1], raw=False)
            if rep.get("ok"):
                lat.append((t - sent_at[rep["id"]]) * 1000)
                for d in rep["decisions"]:
                    key = d["outcome"] + (":" + d["skipped_by"] if d.get("skipped_by") else "")
                    outcomes[key] = outcomes.get(key, 0) + 1
            else:
                code = rep["error"]["code"]
                errors[code] = errors.get(code, 0) + 1
    elapsed = time.monotonic() - start
    print(f"wire: {n} events in {elapsed:.1f} s ({n / elapsed:.0f}/s offered {args.rate}/s); errors {errors}")
    print(f"wire: decisions {dict(sorted(outcomes.items(), key=lambda kv: -kv[1]))}")
    print(f"wire: event-to-decision {percentiles(lat)}")


class Resp:
    """A minimal RESP client (pipelined commands over one socket)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def _line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.s.recv(1 << 16)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t in (b"+", b":"):
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self.buf += self.s.recv(1 << 16)
            v, self.buf = self.buf[:n], self.buf[n + 2:]
            return v.decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError(f"RESP: {line!r}")

    def call(self, *args):
        self.send(*args)
        return self.read()


def stream(args, customers):
    r = Resp(args.redis_port)
    n = int(args.rate * args.duration)
    start = time.monotonic() + 0.2
    ids = {}
    for i in range(n):
        delay = start + i / args.rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        c = customers[(i + args.offset) % len(customers)]
        r.send("XADD", args.stream, "*", "event_id", f"s-{i}", "customer_id", c, "type", "salary_credited",
               "amount", 8000 + i % 1000)
        ids[f"s-{i}"] = r.read()
    # Wait until the group has read everything and nothing is pending.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pending = r.call("XPENDING", args.stream, "qianmian")
        groups = r.call("XINFO", "GROUPS", args.stream)
        info = dict(zip(groups[0][::2], groups[0][1::2]))
        if int(pending[0]) == 0 and info.get("last-delivered-id") == ids[f"s-{n - 1}"]:
            break
        time.sleep(0.2)
    out = r.call("XRANGE", args.outbox, "-", "+")
    lat = []
    for entry_id, fields in out:
        f = dict(zip(fields[::2], fields[1::2]))
        d = json.loads(f["decision"])
        if d["event_id"] in ids:
            lat.append(int(entry_id.split("-")[0]) - int(ids[d["event_id"]].split("-")[0]))
    print(f"stream: {n} events XADDed at {args.rate}/s; {len(lat)} sends reached the outbox stream")
    print(f"stream: event-to-decision (sends) {percentiles(lat)}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--connect", required=True)
    p.add_argument("--customers", required=True, help="a file of customer ids, one a line")
    p.add_argument("--rate", type=float, default=500)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--path", choices=("wire", "stream", "both"), default="both")
    p.add_argument("--redis-port", type=int, default=0)
    p.add_argument("--stream", default="qmbench:events")
    p.add_argument("--outbox", default="qmbench:outbox")
    args = p.parse_args()
    customers = [line.strip() for line in open(args.customers) if line.strip()]
    args.offset = int(args.rate * args.duration)  # the stream's customers follow the wire's
    if args.path in ("wire", "both"):
        wire(args, customers)
    if args.path in ("stream", "both"):
        stream(args, customers)


if __name__ == "__main__":
    main()
