"""The MPI communicator needle trains over: start-up, rank and size, and collectives that give up after a deadline.

MPI comes from mpi4py (the `mpi` extra brings an MPI library from PyPI wheels). After `init()`, an exception
that escapes on any rank prints which rank failed and aborts the whole job, and a collective that does not
complete within `timeout` seconds (a peer died or hangs) raises `DistributedError`, so a job stops with a
clear message instead of hanging.
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Optional

import numpy as np

__all__ = ["DistributedError", "init", "is_initialized", "rank", "world_size", "allreduce_", "broadcast_",
           "barrier", "timeout"]

DEFAULT_TIMEOUT = float(os.environ.get("NEEDLE_DIST_TIMEOUT", "300"))


class DistributedError(RuntimeError):
    """A collective failed or timed out: another rank died, hangs, or called it with a different size."""


class _State:
    comm = None
    timeout = DEFAULT_TIMEOUT


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError("needle.distributed needs mpi4py and an MPI library: pip install 'needle[mpi]' "
                          f"(mpi4py with MPICH from PyPI wheels); importing mpi4py failed: {err}") from err
    return MPI


def _abort_on_exception(exc_type, exc, tb) -> None:
    """sys.excepthook while distributed: report which rank failed, then end every rank of the job."""
    comm = _State.comm
    summary = (f"needle.distributed: rank {comm.Get_rank()} of {comm.Get_size()} failed with {exc_type.__name__}: "
               f"{exc}; aborting all ranks\n")
    # one write, then a moment for the launcher to forward it: Abort kills the job's processes at once, and
    # output still on its way through mpirun's stdio proxy was lost (CI saw only the traceback's first line)
    sys.stderr.write(summary + "".join(traceback.format_exception(exc_type, exc, tb)) + summary)
    sys.stderr.flush()
    time.sleep(0.5)
    comm.Abort(1)


def init(timeout: Optional[float] = None) -> None:
    """Join the MPI job (MPI.COMM_WORLD); collectives wait at most `timeout` seconds (default
    NEEDLE_DIST_TIMEOUT or 300). Idempotent; with more than one rank, an uncaught exception aborts the job."""
    if timeout is not None:
        if timeout <= 0:
            raise ValueError(f"needle.distributed.init: timeout must be positive seconds, got {timeout!r}")
        _State.timeout = float(timeout)
    if _State.comm is None:
        _State.comm = _mpi().COMM_WORLD
        if _State.comm.Get_size() > 1:
            sys.excepthook = _abort_on_exception


def is_initialized() -> bool:
    """Whether init() has run in this process."""
    return _State.comm is not None


def _comm():
    if _State.comm is None:
        init()
    return _State.comm


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1."""
    return _comm().Get_rank()


def world_size() -> int:
    """The number of processes in the job (1 when run without mpirun)."""
    return _comm().Get_size()


def timeout() -> float:
    """Seconds a collective may wait before raising DistributedError."""
    return _State.timeout


def _wait(request, what: str) -> None:
    """Poll a nonblocking request until done or the deadline: never block for ever on a dead peer."""
    deadline = time.monotonic() + _State.timeout
    pause = 0.0
    while not request.Test():
        if time.monotonic() > deadline:
            raise DistributedError(
                f"needle.distributed: rank {rank()} of {world_size()}: {what} did not complete within "
                f"{_State.timeout:g} s; another rank has died, hangs or is at a different step")
        time.sleep(pause)
        pause = min(2 * pause + 1e-5, 1e-3)


def _check_buffer(buf: np.ndarray, op: str) -> None:
    if not isinstance(buf, np.ndarray) or not buf.flags.c_contiguous:
        raise TypeError(f"needle.distributed.{op}: expected a contiguous numpy array, got {type(buf).__name__}")


def allreduce_(buf: np.ndarray, what: str = "allreduce") -> np.ndarray:
    """Sum `buf` over all ranks in place (MPI Iallreduce, waited on with the deadline); returns buf."""
    _check_buffer(buf, "allreduce_")
    comm = _comm()
    if comm.Get_size() > 1:
        _wait(comm.Iallreduce(_mpi().IN_PLACE, buf, op=_mpi().SUM), what)
    return buf


def broadcast_(buf: np.ndarray, root: int = 0, what: str = "broadcast") -> np.ndarray:
    """Overwrite `buf` on every rank with root's (MPI Ibcast, waited on with the deadline); returns buf."""
    _check_buffer(buf, "broadcast_")
    comm = _comm()
    if not 0 <= root < comm.Get_size():
        raise ValueError(f"needle.distributed.broadcast_: root {root} is not a rank of {comm.Get_size()}")
    if comm.Get_size() > 1:
        _wait(comm.Ibcast(buf, root=root), what)
    return buf


def barrier() -> None:
    """Wait until every rank arrives (with the deadline)."""
    comm = _comm()
    if comm.Get_size() > 1:
        _wait(comm.Ibarrier(), "barrier")
