"""A learner's CUDA cell runs first in a child process: a crash or a hang there is a failed check, not a dead kernel.

`%%needle_cuda EXERCISE_ID ...` compiles the cell, then runs the checks of its exercises in a child Python
(`python -m needle.course.cuda_trial CELL_FILE ID ...`) that installs the cell's kernels into its own CUDA device and
runs each check. The child reports, line by line into a file, which exercise it is checking; when it dies (a
segfault, an illegal address on a GPU that leaves the CUDA context unusable) or runs past its time (a loop that never
ends), the notebook learns which exercise it was. Only exercises whose trial ran to the end are installed into the
notebook's kernel; the others keep needle's kernels, and their check reports the crash or the hang.

On `cuda_sim()` the checked mode already turns a wrong index into an error, so the trial mostly guards against
loops that never end; on a GPU it also guards the notebook's CUDA context. The child processes are those of
`%%needle_cpp` (`child_trial.py`): NEEDLE_TRIAL_TIMEOUT (seconds, default 60) bounds a trial; NEEDLE_CUDA_TRIAL=0
turns trials off (the checks then run only in the notebook's process).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from . import child_trial

ENABLED_ENV = "NEEDLE_CUDA_TRIAL"

_SIGNALS = {
    "SIGSEGV": "a segmentation fault: a read or write outside the memory the process owns",
    "SIGBUS": "a bus error: an access to memory that does not exist or is misaligned",
    "SIGABRT": "abort(): the runtime gave up (an uncaught error in the kernel's process)",
    "SIGFPE": "an arithmetic fault (an integer division by zero?)",
    "SIGKILL": "it was killed (out of memory?)",
}


def enabled() -> bool:
    return os.environ.get(ENABLED_ENV, "1") not in ("0", "")


@dataclass
class Trial:
    """How one exercise's check ended in the child process."""

    status: str  # finished | crashed | hung
    message: str = ""

    @property
    def safe(self) -> bool:
        return self.status == "finished"


def run(cell: str, exercise_ids: list[str], seconds: float | None = None) -> dict[str, Trial]:
    """Try the checks of `exercise_ids` on the cell's kernels in child processes (`child_trial.py`); {id: Trial}."""
    seconds = child_trial.trial_timeout() if seconds is None else seconds

    def cell_file(tmp: Path) -> list[str]:
        path = tmp / "cell.cu"
        path.write_text(cell)
        return [str(path)]

    def died(rnd: child_trial.Round) -> Trial:
        if rnd.hung:
            return Trial("hung", f"your kernels did not finish within {seconds:g} s (a loop whose index never reaches "
                                 "its bound? a grid-stride loop that does not advance?). They ran in a child process, "
                                 "which was stopped; they were not installed into this notebook")
        return Trial("crashed", f"your kernels crashed the child process that ran their check "
                                f"({child_trial.signal_text(rnd.returncode, _SIGNALS)}). They were not installed into "
                                "this notebook, whose kernel lives on")

    return child_trial.run(
        exercise_ids,
        lambda pending: child_trial.run_child("needle.course.cuda_trial", cell_file, pending, seconds,
                                              "needle_cuda_trial_"),
        finished=lambda record: Trial("finished"),
        unreported=lambda rnd: Trial("crashed", "the child process stopped before checking it:\n"
                                     + rnd.output.strip()[-2000:]),
        died=died)


def _child(argv: list[str]) -> int:
    cell_file, progress_path, *ids = argv
    progress = child_trial.Progress(progress_path)

    from . import cuda_exercises, install, registry

    cuda_exercises.install_cell(ids, Path(cell_file).read_text(), trial=False)
    for exercise_id in ids:
        progress.emit({"event": "start", "id": exercise_id})
        build = install.installed(exercise_id)
        if build is not None:
            try:
                registry.get(exercise_id).check(build)
            except Exception:  # a failure is the notebook's check to report; only crashes and hangs matter here
                pass
        progress.emit({"event": "result", "id": exercise_id})
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
