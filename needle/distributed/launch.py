"""Launching an MPI job from Python (tests, notebooks): the `mpirun` of this environment, run with a time limit."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Optional, Sequence

from .comm import DistributedError

__all__ = ["mpirun", "run"]


def mpirun() -> str:
    """The MPI launcher beside this Python (the `mpi` extra's MPICH wheel puts it there), else one on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpirun")
    found = here if os.path.exists(here) else shutil.which("mpirun")
    if found is None:
        raise FileNotFoundError("needle.distributed: no mpirun beside this Python or on PATH; "
                                "pip install 'needle[mpi]' brings MPICH's")
    return found


def _env(extra: Optional[dict]) -> dict:
    env = dict(os.environ)
    # Open MPI refuses root (CI, containers) without these; MPICH ignores them
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    env.update(extra or {})
    return env


def run(n: int, args: Sequence[str], timeout: float = 300, env: Optional[dict] = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run `mpirun -n n <this python> *args`, capturing its output; a job past `timeout` seconds is killed.
    With `check`, a failed or timed-out job raises DistributedError carrying the job's output."""
    if n < 1:
        raise ValueError(f"needle.distributed.run: n must be at least 1, got {n!r}")
    cmd = [mpirun(), "-n", str(n), sys.executable, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(env))
    except subprocess.TimeoutExpired as err:
        raise DistributedError(f"needle.distributed.run: {' '.join(cmd)} did not finish within {timeout:g} s\n"
                               f"{err.stdout or ''}{err.stderr or ''}") from None
    if check and done.returncode != 0:
        raise DistributedError(f"needle.distributed.run: {' '.join(cmd)} exited with {done.returncode}\n"
                               f"{done.stdout}{done.stderr}")
    return done
