"""Ring allreduce from MPI point-to-point messages: the algorithm behind data-parallel gradient averaging.

With n ranks, the array is cut into n chunks. A reduce-scatter of n - 1 steps, each rank sending one chunk to its
right neighbour while receiving another from its left and adding it in, leaves every rank with one chunk summed
over all ranks; an all-gather of n - 1 more steps passes the finished chunks around the ring. Each rank sends
2 (n - 1) / n of the array in all, whatever n is: the reason rings scale. needle's own training calls MPI's
Allreduce (`comm.allreduce_`), which picks such an algorithm itself; this one is for the chapter's exercise.
"""
from __future__ import annotations

import numpy as np

__all__ = ["ring_allreduce"]


def ring_allreduce(comm, x: np.ndarray) -> np.ndarray:
    """The elementwise sum of `x` over the ranks of the MPI communicator `comm`, computed with Sendrecv only;
    returns a new array (x is unchanged)."""
    n, r = comm.Get_size(), comm.Get_rank()
    out = np.array(x, copy=True)
    if n == 1:
        return out
    chunks = np.array_split(out.reshape(-1), n)  # views into out: writing a chunk writes out
    right, left = (r + 1) % n, (r - 1) % n
    for step in range(n - 1):  # reduce-scatter: afterwards chunk (r + 1) % n is complete here
        send, recv = chunks[(r - step) % n], chunks[(r - step - 1) % n]
        incoming = np.empty_like(recv)
        comm.Sendrecv(np.ascontiguousarray(send), dest=right, recvbuf=incoming, source=left)
        recv += incoming
    for step in range(n - 1):  # all-gather: pass the complete chunks around
        send, recv = chunks[(r - step + 1) % n], chunks[(r - step) % n]
        incoming = np.empty_like(recv)
        comm.Sendrecv(np.ascontiguousarray(send), dest=right, recvbuf=incoming, source=left)
        recv[...] = incoming
    return out
