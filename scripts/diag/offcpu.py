#!/usr/bin/python3
"""What a process's threads wait for: off-CPU time summed by stack, from a sched_switch trace.

    perf record -e sched:sched_switch -g -p PID -o offcpu.data -- sleep 60
    perf script -i offcpu.data > offcpu.txt
    scripts/diag/offcpu.py offcpu.txt [--threads REGEX] [--top N] [--depth D] [--min-ms MS]

Each sched_switch event carries the stack of the thread switched out. A thread's off-CPU span
runs from its switch-out to the next event that switches it in; the span is charged to the
stack it left with. Spans are summed by stack (its first two kernel frames past the scheduler's
own, then user-space frames, D in all), for the threads whose name matches REGEX (default: the
server's workers), and printed by total time: count, total, longest. Preemptions (prev_state R: the thread was still runnable) are
reported apart, as run delay, not as waiting.
"""
import argparse
import collections
import re
import sys

HEAD = re.compile(r"^\s*(\S.*?)\s+(\d+)\s+(?:\[\d+\]\s+)?([\d.]+):\s+(?:\d+\s+)?sched:sched_switch:\s+(.*)$")
FIELDS = re.compile(r"(\w+)=(\S+)")
SCHED = ("__schedule", "schedule", "preempt_schedule", "schedule_timeout", "schedule_hrtimeout",
         "io_schedule", "futex_wait_queue", "do_nanosleep")


def frames_of(lines, depth, kernel_depth=2):
    """The stack's function names, innermost first: its first kernel_depth kernel frames past
    the scheduler's own (what kind of wait: futex, a page-cache read, a socket poll), then its
    first user-space frames, up to depth in all (the syscall plumbing in between is left out)."""
    kernel, user = [], []
    for line in lines:
        parts = line.split()
        if len(parts) < 2:
            continue
        sym = parts[1].split("+")[0]
        if line.rstrip().endswith("([kernel.kallsyms])"):
            leading_sched = not kernel and sym.startswith(SCHED)
            if not user and len(kernel) < kernel_depth and not leading_sched:
                kernel.append(sym)
            continue
        user.append(sym)
        if len(kernel) + len(user) >= depth:
            break
    return kernel + user


def events(path):
    """(time_s, prev_tid, prev_comm, prev_state, next_tid, stack lines) per sched_switch."""
    with open(path, errors="replace") as f:
        head, stack = None, []
        for line in f:
            m = HEAD.match(line)
            if m:
                if head:
                    yield head + (stack,)
                f_ = dict(FIELDS.findall(m.group(4)))
                head = (float(m.group(3)), int(f_.get("prev_pid", -1)), f_.get("prev_comm", "?"),
                        f_.get("prev_state", "?"), int(f_.get("next_pid", -1)))
                stack = []
            elif head and line.strip():
                stack.append(line)
        if head:
            yield head + (stack,)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace", help="perf script output of a sched:sched_switch -g recording")
    ap.add_argument("--threads", default=r"^qm-(worker|writer)", help="thread names to charge (regex)")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--depth", type=int, default=8, help="frames of a stack to group by")
    ap.add_argument("--min-ms", type=float, default=0.0, help="only spans at least this long")
    a = ap.parse_args()
    want = re.compile(a.threads)
    out_at = {}  # tid -> (time, state, frames) of its last switch-out
    wait = collections.defaultdict(lambda: [0, 0.0, 0.0])  # frames -> count, total s, longest s
    delay = collections.defaultdict(lambda: [0, 0.0, 0.0])
    first = last = None
    for t, prev, comm, state, nxt, stack in events(a.trace):
        first = t if first is None else first
        last = t
        if want.search(comm):
            out_at[prev] = (t, state, tuple(frames_of(stack, a.depth)))
        if nxt in out_at:
            t0, st, frames = out_at.pop(nxt)
            span = t - t0
            if span * 1e3 < a.min_ms:
                continue
            table = delay if st.startswith("R") else wait
            e = table[frames]
            e[0] += 1
            e[1] += span
            e[2] = max(e[2], span)
    if first is None:
        sys.exit("no sched_switch events in " + a.trace)
    print(f"trace: {last - first:.1f} s; threads matching {a.threads!r}")
    for title, table in (("waiting (blocked), by stack", wait), ("run delay (preempted while runnable)", delay)):
        total = sum(e[1] for e in table.values())
        print(f"\n{title}: {total * 1e3:.1f} ms in all, {sum(e[0] for e in table.values())} spans")
        for frames, (n, s, longest) in sorted(table.items(), key=lambda kv: -kv[1][1])[:a.top]:
            print(f"  {s * 1e3:10.1f} ms {n:8d} x  longest {longest * 1e3:7.2f} ms  " + " <- ".join(frames))


if __name__ == "__main__":
    main()
