"""The first run of a learner's compiled cell in child processes: one mechanism for `%%needle_cpp` and `%%needle_cuda`.

A child Python (`python -m <module> ARGS... PROGRESS_FILE ID...`) checks the exercises one after the other and
writes, line by line into PROGRESS_FILE, which exercise (`start`) and which input (`case`) it is running and how each
check ended (`result`). When the child dies of a signal or runs past its time, the exercise it was checking gets the
crash or the hang, and the exercises after it are tried again in a fresh child (each has its own chance).
`sandbox.py` (C++) and `cuda_trial.py` (CUDA) say what the child does and how an outcome reads.
NEEDLE_TRIAL_TIMEOUT (seconds, default 60) bounds the time a child may go without reporting progress: a check case
that runs longer is a hang.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar

TIMEOUT_ENV = "NEEDLE_TRIAL_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
STARTUP = 120.0  # seconds a child may take to start (import numpy and needle, load the cell) before its first record

T = TypeVar("T")


def trial_timeout() -> float:
    """Seconds a trial may run without progress (NEEDLE_TRIAL_TIMEOUT, default 60)."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def signal_text(returncode: int, explanations: Mapping[str, str]) -> str:
    """"SIGSEGV, <its explanation>" for a child killed by a signal, else "exit status N"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{name}, {explanations.get(name, 'killed by a signal')}"
    return f"exit status {returncode}"


# ---- the child's side ----


class Progress:
    """The child's report file: one JSON record a line, flushed at once (so a crash loses nothing written)."""

    def __init__(self, path: str | Path):
        self._file = open(path, "a", encoding="utf-8")

    def emit(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()


# ---- the notebook's side ----


@dataclass
class Round:
    """One child's run: the checks it finished, the one it was in when it stopped, and how it stopped."""

    results: dict[str, dict] = field(default_factory=dict)  # id -> the child's `result` record
    current: str | None = None  # the exercise started and not finished
    case: str = ""  # the last case that exercise started
    returncode: int | None = None
    hung: bool = False
    output: str = ""

    @property
    def clean(self) -> bool:
        """The child exited normally between two exercises."""
        return not self.hung and self.returncode == 0 and self.current is None


def _read_progress(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by the crash
            pass
    return records


def _communicate_while_progressing(proc: subprocess.Popen, progress: Path, timeout: float) -> tuple[bool, str, str]:
    """Wait for the child, stopping it once it writes no progress record for `timeout` seconds: (hung, stdout,
    stderr). Before its first record the child also gets STARTUP seconds to import (a loaded machine is slow)."""
    deadline, size = time.monotonic() + STARTUP + timeout, 0
    while True:
        try:
            out, err = proc.communicate(timeout=0.2)  # retried on a time-out without losing output
            return False, out, err
        except subprocess.TimeoutExpired:
            pass
        now_size = progress.stat().st_size
        if now_size != size:  # a new record: an exercise or one of its cases began, so the clock starts again
            deadline, size = time.monotonic() + timeout, now_size
        if time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            return True, out, err


def run_child(module: str, args: Callable[[Path], list[str]], ids: list[str], timeout: float, prefix: str) -> Round:
    """Run `python -m module *args(tmp) PROGRESS *ids` (tmp: a fresh folder, e.g. for the cell's file) and read
    its progress."""
    rnd = Round()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        progress = Path(tmp) / "progress.jsonl"
        progress.touch()
        command = [sys.executable, "-m", module, *args(Path(tmp)), str(progress), *ids]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL)
        rnd.hung, out, err = _communicate_while_progressing(proc, progress, timeout)
        rnd.returncode, rnd.output = proc.returncode, out + err
        records = _read_progress(progress)
    for record in records:
        if record["event"] == "start":
            rnd.current, rnd.case = record["id"], ""
        elif record["event"] == "case":
            rnd.case = record["text"]
        elif record["event"] == "result":
            rnd.results[record["id"]] = record
            rnd.current = None
    return rnd


def run(ids: list[str], child: Callable[[list[str]], Round], finished: Callable[[dict], T],
        unreported: Callable[[Round], T], died: Callable[[Round], T]) -> dict[str, T]:
    """{id: outcome} for the exercises `ids`, each tried in a child (`child(pending)` runs one).

    `finished(record)` reads a result the child reported; `unreported(round)` is the outcome of an exercise a child
    that exited normally never reached; `died(round)` that of the exercise a child was in when it crashed or hung
    (or of every pending exercise, when it died before starting one)."""
    outcomes: dict[str, T] = {}
    pending = list(ids)
    while pending:
        rnd = child(pending)
        for exercise_id, record in rnd.results.items():
            outcomes[exercise_id] = finished(record)
        if rnd.clean:
            for i in pending:
                if i not in outcomes:  # the child stopped without reporting them: say so rather than loop
                    outcomes[i] = unreported(rnd)
            break
        outcome = died(rnd)
        for i in ([rnd.current] if rnd.current is not None else list(pending)):
            outcomes[i] = outcome
        pending = [i for i in pending if i not in outcomes]
    return {i: outcomes[i] for i in ids}
