"""A job the distributed tests run under `mpirun -n 2`: `python tests/distributed/mpi_job.py MODE OUT_PREFIX`.

Each rank writes what it saw to OUT_PREFIX.<rank>.npz (or fails on purpose, for the fault tests); the test
process compares the ranks' files with numpy."""
import os
import sys
import time

import numpy as np

import needle as ndl
from needle import distributed as dist
from needle import nn


def collectives(out: str) -> None:
    """allreduce_ and broadcast_ of rank-specific arrays; DDP's parameter broadcast and gradient average."""
    r = dist.rank()
    np.random.seed(100 + r)  # the ranks start from different parameters and see different data
    summed = dist.allreduce_(np.arange(5, dtype=np.float64) * (r + 1))
    cast = dist.broadcast_(np.full(3, float(r + 7), dtype=np.float32), root=1)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    ddp = dist.DistributedDataParallel(model, bucket_bytes=64)  # small buckets: several per step
    start = [p.numpy() for p in model.parameters()]
    x = ndl.Tensor(np.random.randn(4, 6).astype(np.float32), requires_grad=False)
    ddp(x).sum().backward()
    local = [p.grad.numpy() for p in model.parameters()]
    ddp.sync_gradients()
    synced = [p.grad.numpy() for p in model.parameters()]
    metrics = np.array(ddp.reduce_sums(r + 1.0, 10.0 * r))
    np.savez(f"{out}.{r}.npz", summed=summed, cast=cast, metrics=metrics, collectives=ddp.collectives,
             **{f"start{i}": a for i, a in enumerate(start)}, **{f"local{i}": a for i, a in enumerate(local)},
             **{f"synced{i}": a for i, a in enumerate(synced)})


def raises(out: str) -> None:
    """Rank 1 raises mid-training; rank 0 waits in an allreduce."""
    if dist.rank() == 1:
        raise ValueError("planted failure on rank 1")
    dist.allreduce_(np.ones(3))


def dies(out: str) -> None:
    """Rank 1's process ends abruptly (as a crash or kill would); rank 0 waits in an allreduce."""
    if dist.rank() == 1:
        os._exit(3)
    dist.allreduce_(np.ones(3))


def hangs(out: str) -> None:
    """Rank 1 never reaches the allreduce; rank 0's deadline (2 s) must end the job."""
    dist.init(timeout=2)
    if dist.rank() == 1:
        time.sleep(600)
    dist.allreduce_(np.ones(3))


if __name__ == "__main__":
    mode, prefix = sys.argv[1], sys.argv[2]
    dist.init()
    {"collectives": collectives, "raises": raises, "dies": dies, "hangs": hangs}[mode](prefix)
