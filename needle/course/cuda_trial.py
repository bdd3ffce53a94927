"""A learner's CUDA cell runs first in a child process: a crash or a hang there is a failed check, not a dead kernel.

`%%needle_cuda EXERCISE_ID ...` compiles the cell, then runs the checks of its exercises in a child Python
(`python -m needle.course.cuda_trial CELL_FILE ID ...`) that installs the cell's kernels into its own CUDA device and
runs each check. The child reports, line by line into a file, which exercise it is checking; when it dies (a
segfault, an illegal address on a GPU that leaves the CUDA context unusable) or runs past its time (a loop that never
ends), the notebook learns which exercise it was. Only exercises whose trial ran to the end are installed into the
notebook's kernel; the others keep needle's kernels, and their check reports the crash or the hang.

On `cuda_sim()` the checked mode already turns a wrong index into an error, so the trial mostly guards against
loops that never end; on a GPU it also guards the notebook's CUDA context. NEEDLE_TRIAL_TIMEOUT (seconds, default 60)
bounds a trial; NEEDLE_CUDA_TRIAL=0 turns trials off (the checks then run only in the notebook's process).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_ENV = "NEEDLE_TRIAL_TIMEOUT"
ENABLED_ENV = "NEEDLE_CUDA_TRIAL"
DEFAULT_TIMEOUT = 60.0

_SIGNALS = {
    "SIGSEGV": "a segmentation fault: a read or write outside the memory the process owns",
    "SIGBUS": "a bus error: an access to memory that does not exist or is misaligned",
    "SIGABRT": "abort(): the runtime gave up (an uncaught error in the kernel's process)",
    "SIGFPE": "an arithmetic fault (an integer division by zero?)",
    "SIGKILL": "it was killed (out of memory?)",
}


def enabled() -> bool:
    return os.environ.get(ENABLED_ENV, "1") not in ("0", "")


def timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


@dataclass
class Trial:
    """How one exercise's check ended in the child process."""

    status: str  # finished | crashed | hung
    message: str = ""

    @property
    def safe(self) -> bool:
        return self.status == "finished"


def _signal_text(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{name}, {_SIGNALS.get(name, 'killed by a signal')}"
    return f"exit status {returncode}"


def _records(path: Path) -> list[dict]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by the crash
            pass
    return out


def run(cell: str, exercise_ids: list[str], seconds: float | None = None) -> dict[str, Trial]:
    """Try the checks of `exercise_ids` on the cell's kernels in child processes; {id: Trial}.

    When a child dies, the exercise it was checking gets the crash, and the exercises after it are tried again in a
    fresh child."""
    seconds = timeout() if seconds is None else seconds
    trials: dict[str, Trial] = {}
    pending = list(exercise_ids)
    while pending:
        with tempfile.TemporaryDirectory(prefix="needle_cuda_trial_") as tmp:
            cell_file, progress = Path(tmp) / "cell.cu", Path(tmp) / "progress.jsonl"
            cell_file.write_text(cell)
            progress.touch()
            command = [sys.executable, "-m", "needle.course.cuda_trial", str(cell_file), str(progress), *pending]
            try:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=seconds,
                                      stdin=subprocess.DEVNULL)
                returncode, hung, output = proc.returncode, False, (proc.stdout + proc.stderr).strip()
            except subprocess.TimeoutExpired:
                returncode, hung, output = None, True, ""
            records = _records(progress)
        current = None
        for record in records:
            if record["event"] == "start":
                current = record["id"]
            elif record["event"] == "done":
                trials[record["id"]] = Trial("finished")
                current = None
        if not hung and returncode == 0 and current is None:
            for i in pending:
                trials.setdefault(i, Trial("crashed", "the child process stopped before checking it:\n" + output[-2000:]))
            break
        if hung:
            trial = Trial("hung", f"your kernels did not finish within {seconds:g} s (a loop whose index never reaches "
                                  "its bound? a grid-stride loop that does not advance?). They ran in a child process, "
                                  "which was stopped; they were not installed into this notebook")
        else:
            trial = Trial("crashed", f"your kernels crashed the child process that ran their check "
                                     f"({_signal_text(returncode)}). They were not installed into this notebook, "
                                     "whose kernel lives on")
        for i in ([current] if current is not None else list(pending)):
            trials[i] = trial
        pending = [i for i in pending if i not in trials]
    return {i: trials[i] for i in exercise_ids}


def _child(argv: list[str]) -> int:
    cell_file, progress_path, *ids = argv
    progress = open(progress_path, "a", encoding="utf-8")

    def emit(record: dict) -> None:
        progress.write(json.dumps(record) + "\n")
        progress.flush()

    from . import cuda_exercises, install, registry

    cuda_exercises.install_cell(ids, Path(cell_file).read_text(), trial=False)
    for exercise_id in ids:
        emit({"event": "start", "id": exercise_id})
        build = install.installed(exercise_id)
        if build is not None:
            try:
                registry.get(exercise_id).check(build)
            except Exception:  # a failure is the notebook's check to report; only crashes and hangs matter here
                pass
        emit({"event": "done", "id": exercise_id})
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
