"""Data-parallel training: every rank holds the whole model, computes gradients on its own shard of a batch,
and the gradients are averaged with a few bucketed allreduces, so all ranks take the same optimizer step."""
from __future__ import annotations

from typing import Callable, Iterator, List, Sequence

import numpy as np

from ..autograd import Tensor
from ..nn.nn_basic import Module
from . import comm

__all__ = ["DistributedDataParallel", "broadcast_parameters", "buckets"]

DEFAULT_BUCKET_BYTES = 25 * 2**20  # PyTorch DDP's default bucket size


def buckets(arrays: Sequence[np.ndarray], bucket_bytes: int) -> Iterator[List[int]]:
    """Indices of `arrays` grouped in order into buckets of at most `bucket_bytes` (one dtype per bucket;
    an array larger than a bucket gets one of its own)."""
    group: List[int] = []
    size = 0
    for i, a in enumerate(arrays):
        if group and (size + a.nbytes > bucket_bytes or arrays[group[0]].dtype != a.dtype):
            yield group
            group, size = [], 0
        group.append(i)
        size += a.nbytes
    if group:
        yield group


def _through_buckets(arrays: List[np.ndarray], bucket_bytes: int, collective: Callable[[np.ndarray, str], None],
                     what: str) -> List[np.ndarray]:
    """Apply `collective` to `arrays` packed into flat buckets; returns the arrays unpacked from them."""
    out: List[np.ndarray] = [None] * len(arrays)  # type: ignore[list-item]
    for b, group in enumerate(buckets(arrays, bucket_bytes)):
        flat = np.concatenate([arrays[i].reshape(-1) for i in group])
        collective(flat, f"{what} (bucket {b}, {flat.nbytes} bytes)")
        offset = 0
        for i in group:
            n = arrays[i].size
            out[i] = flat[offset : offset + n].reshape(arrays[i].shape)
            offset += n
    return out


def broadcast_parameters(params: Sequence[Tensor], root: int = 0, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
    """Give every rank root's parameter values (so all replicas start equal)."""
    values = _through_buckets([p.numpy() for p in params], bucket_bytes,
                              lambda buf, what: comm.broadcast_(buf, root, what), "broadcast of parameters")
    for p, v in zip(params, values):
        p.data = Tensor(v, device=p.device, dtype=p.dtype, requires_grad=False)


class DistributedDataParallel(Module):
    """Wraps a model for data-parallel training over MPI: construction broadcasts rank 0's parameters;
    after each `loss.backward()`, call `sync_gradients()` to replace every parameter's gradient by its average
    over the ranks (a parameter with no gradient on a rank counts as zero there).

    With per-rank batch b on N ranks and a loss that averages over the batch, the averaged gradient is the
    gradient of one process with batch N*b. Layers whose forward depends on the whole batch (BatchNorm's
    statistics) see only the rank's shard.
    """

    def __init__(self, module: Module, bucket_bytes: int = DEFAULT_BUCKET_BYTES):
        super().__init__()
        if bucket_bytes <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_bytes must be positive, got {bucket_bytes!r}")
        comm.init()
        self.module = module
        self.bucket_bytes = bucket_bytes
        self.collectives = 0  # allreduces issued so far: a few per step, not one per tensor
        broadcast_parameters(module.parameters(), 0, bucket_bytes)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def _allreduce(self, buf: np.ndarray, what: str) -> None:
        comm.allreduce_(buf, what)
        self.collectives += 1

    def sync_gradients(self) -> None:
        """Average the gradients of all parameters over the ranks, in buckets of `bucket_bytes`."""
        params = self.module.parameters()
        grads = [p.grad.numpy() if p.grad is not None else np.zeros(p.shape, dtype=p.dtype) for p in params]
        n = comm.world_size()
        averaged = _through_buckets(grads, self.bucket_bytes, self._allreduce, "allreduce of gradients")
        for p, g in zip(params, averaged):
            p.grad = Tensor(g / n if n > 1 else g, device=p.device, dtype=p.dtype, requires_grad=False)

    def reduce_sums(self, *values: float) -> tuple:
        """Each value summed over the ranks (e.g. an epoch's correct count, loss sum and sample count)."""
        return tuple(float(v) for v in comm.allreduce_(np.array(values, dtype=np.float64), "allreduce of metrics"))
