"""Runs a learner's allreduce function on real MPI processes (`mpirun -n N`) and compares it with MPI's Allreduce.

The function's source goes into a small script with a harness: every rank draws its own random arrays of several
sizes, computes the true sum with MPI.Allreduce, then calls the learner's function with a communicator that offers
point-to-point messages only. Each rank writes its findings to a JSON file the check reads back. A deadlock or a
crash is reported as a failed trial, not a hung notebook.
"""
from __future__ import annotations

import inspect
import json
import os
import tempfile
import textwrap
from typing import Callable

SIZES = (1, 2, 3, 7, 64, 1001)

_IMPORTS = "import json\nimport numpy as np\nfrom mpi4py import MPI\n"  # before the function: its annotations
_HARNESS = '''
_P2P = {"Send", "Recv", "Sendrecv", "Isend", "Irecv", "send", "recv", "sendrecv", "isend", "irecv",
        "Get_rank", "Get_size", "rank", "size", "Probe", "Iprobe"}


class PointToPointOnly:
    """MPI.COMM_WORLD with its point-to-point methods only: collectives are what the exercise builds."""

    def __init__(self, comm):
        self._comm = comm

    def __getattr__(self, name):
        if name not in _P2P:
            raise AttributeError(f"comm.{name} is not available here: build the allreduce from point-to-point "
                                 "messages (Send / Recv / Sendrecv)")
        return getattr(self._comm, name)


comm = MPI.COMM_WORLD
records = []
for size in SIZES:
    for dtype in ("float64", "float32"):
        x = np.random.default_rng([SEED, comm.Get_rank(), size]).standard_normal(size).astype(dtype)
        expected = np.empty_like(x)
        comm.Allreduce(x, expected)
        before = x.copy()
        record = {"size": size, "dtype": dtype, "rank": comm.Get_rank()}
        try:
            got = np.asarray(FUNCTION(PointToPointOnly(comm), x))
        except Exception as err:
            record["error"] = f"{type(err).__name__}: {err}"
        else:
            record["shape"] = list(got.shape)
            record["max_error"] = float(np.max(np.abs(got - expected))) if got.shape == x.shape else None
            record["input_changed"] = bool(not np.array_equal(before, x))
            record["example"] = [float(v) for v in got.reshape(-1)[:3]], [float(v) for v in expected[:3]]
        records.append(record)
        if "error" in record:
            break
    if records[-1].get("error"):
        break
with open(OUT.format(comm.Get_rank()), "w") as f:
    json.dump(records, f)
'''


def function_source(fn: Callable) -> str:
    """The source of a function defined in a file or a notebook cell, without its decorators."""
    try:
        lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    except (OSError, TypeError) as err:
        raise ValueError(f"the source of {getattr(fn, '__name__', fn)!r} cannot be read ({err}): define it with def "
                         "in a notebook cell or a file") from None
    start = next((i for i, line in enumerate(lines) if line.startswith("def ")), None)
    if start is None:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} is not a function defined with def at the top of a cell or "
                         "file (a lambda or a nested function cannot be sent to other processes)")
    return "\n".join(lines[start:]) + "\n"


def run_allreduce_trial(fn: Callable, n: int, seed: int, timeout: float = 60) -> list[dict]:
    """Run `fn(comm, x)` on n MPI ranks over random arrays of SIZES; returns every rank's records (see _HARNESS).
    Raises DistributedError when the job fails or does not finish within `timeout` seconds."""
    from needle import distributed

    with tempfile.TemporaryDirectory(prefix="needle-mpi-trial-") as folder:
        script = os.path.join(folder, "trial.py")
        out = os.path.join(folder, "rank{}.json")
        header = _IMPORTS + f"SIZES = {SIZES!r}\nSEED = {int(seed)}\nOUT = {out!r}\n"
        with open(script, "w") as f:
            f.write(header + function_source(fn) + f"\nFUNCTION = {fn.__name__}\n" + _HARNESS)
        distributed.run(n, [script], timeout=timeout)
        records = []
        for r in range(n):
            with open(out.format(r)) as f:
                records.extend(json.load(f))
    return records
