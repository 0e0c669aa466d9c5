#!/usr/bin/python3
"""Time of libtorch's c10d Gloo all-reduce between N processes on this machine (loopback TCP),
the figure docs/SCALE.md's data-parallel training estimate stands on.

    /usr/bin/python3 scripts/gloo_allreduce.py [N=2]

Prints, per tensor size, the median and p90 of 200 all-reduces (after 20 warm-up ones). Uses
Debian's python3-torch (1.13), whose torch.distributed is the same c10d/Gloo as libtorch's C++
ProcessGroupGloo. Not run in CI."""
import os
import socket
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

SIZES = [("ranker dense gradients", 90_000), ("two-tower dense gradients", 300_000), ("4 MB", 1_000_000)]


def run(rank, world, port, out):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for name, n in SIZES:
        t = torch.ones(n)
        for _ in range(20):
            dist.all_reduce(t)
        times = []
        for _ in range(200):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        if rank == 0:
            times.sort()
            out.put((name, n, statistics.median(times), times[int(0.9 * len(times))]))
    dist.destroy_process_group()


def main():
    world = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=run, args=(r, world, port, out)) for r in range(world)]
    for p in procs:
        p.start()
    results = [out.get() for _ in SIZES]
    for p in procs:
        p.join()
    print(f"Gloo all-reduce, {world} processes, loopback (torch {torch.__version__}):")
    for name, n, med, p90 in results:
        print(f"  {name:28s} {n:>9,d} floats ({n * 4 / 1e6:.2f} MB): median {med * 1e3:.3f} ms, p90 {p90 * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
