"""A learner's compiled code runs first in a child process: a crash or a hang there is a failed check, not a dead kernel.

`%%needle_cpp` compiles a cell, then runs the checks of its exercises in a child Python (`python -m
needle.course.sandbox`) that loads the compiled module, installs each exercise alone (needle's reference for
everything else) and runs its check. The child reports, line by line into a file, which exercise and which case
it is running; so when it dies of a signal (a segfault, `abort()`) or runs past its time, the notebook learns which
exercise, which input and which signal. Only code whose trial finished (passed, failed or raised an exception) is
loaded into the notebook's kernel; a crashed or hung build never is, and needle's reference stays in place.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import CheckFailed, LearnerError

TIMEOUT_ENV = "NEEDLE_TRIAL_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
_progress = None  # the child's report file (None in the notebook's own process)

_SIGNALS = {
    "SIGSEGV": "a segmentation fault: a read or write outside the memory the process owns "
               "(an index past the end of a buffer, or a wrong stride or offset?)",
    "SIGBUS": "a bus error: an access to memory that does not exist or is misaligned",
    "SIGABRT": "abort(): an assertion failed, or the C++ runtime gave up (an uncaught exception, a double free, ...)",
    "SIGFPE": "an arithmetic fault (an integer division by zero?)",
    "SIGILL": "an illegal instruction",
    "SIGKILL": "it was killed (out of memory?)",
}


def trial_timeout() -> float:
    """Seconds a trial may run (NEEDLE_TRIAL_TIMEOUT, default 60)."""
    try:
        return float(os.environ.get(TIMEOUT_ENV, DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


@dataclass
class Outcome:
    """How one exercise's check ended in the child process."""

    status: str  # passed | failed | raised | not implemented | partial | unbound | crashed | hung
    cases: int = 0
    message: str = ""

    @property
    def safe(self) -> bool:
        """The code ran to the end of its check without killing the process (it may still be wrong)."""
        return self.status not in ("crashed", "hung")

    @property
    def loadable(self) -> bool:
        """Worth installing into the notebook: it ran, and it is not a stub."""
        return self.status in ("passed", "failed", "raised")

    def report(self) -> int:
        """The check's outcome in the notebook: the number of passed cases, or the failure raised again."""
        __tracebackhide__ = True
        if self.status == "passed":
            return self.cases
        if self.status == "not implemented":
            raise NotImplementedError(self.message)
        if self.status in ("raised", "partial"):
            raise LearnerError(self.message)
        raise CheckFailed(self.message)


@dataclass
class Build:
    """One exercise's share of a compiled cell, as installed: the learner's functions and the outcome of its trial.

    `loaded` is False for a stub or a build that crashed or hung: then `course.install` records it for the check but
    leaves needle's reference in place (`needle_keeps_reference`)."""

    exercise_id: str
    kernels: dict[str, Callable] = field(default_factory=dict)
    outcome: Outcome | None = None  # None inside the child, where the check runs for real
    loaded: bool = True

    @property
    def needle_keeps_reference(self) -> bool:
        return not self.loaded

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A single-function exercise calls the learner's function; a build that was not loaded reports why."""
        __tracebackhide__ = True
        if self.loaded and len(self.kernels) == 1:
            return next(iter(self.kernels.values()))(*args, **kwargs)
        if self.outcome is not None:
            self.outcome.report()
        raise NotImplementedError(f"{self.exercise_id}: not installed")


def reported(check: Callable[[Any], int]) -> Callable[[Any], int]:
    """A check that, in the notebook, reports its child-process trial instead of running the learner's code again."""

    def run(impl: Any) -> int:
        __tracebackhide__ = True
        if isinstance(impl, Build) and impl.outcome is not None:
            return impl.outcome.report()
        return check(impl)

    run.__name__, run.__doc__, run.__wrapped__ = check.__name__, check.__doc__, check
    return run


_cases_started = 0  # cases the current exercise's check has started (in the child)
_case_text = ""


def note_case(text: str) -> None:
    """Record the input a check is about to run (in the child), so a crash or hang names it. No-op elsewhere."""
    global _cases_started, _case_text
    _cases_started += 1
    _case_text = text
    if _progress is not None:
        _emit({"event": "case", "text": text})


def _emit(record: dict) -> None:
    _progress.write(json.dumps(record) + "\n")
    _progress.flush()


# ---- the notebook's side ----


def _signal_text(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"{name}, {_SIGNALS.get(name, 'killed by a signal')}"
    return f"exit status {returncode}"


def _read_progress(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by the crash
            pass
    return records


def trial(library: Path, module_name: str, ids: list[str], timeout: float | None = None) -> tuple[dict[str, Outcome], str]:
    """Run the checks of `ids` on the compiled module in child processes; returns each outcome and the children's output.

    When a child dies, the exercise it was checking gets the crash as its outcome, and the exercises after it are
    tried again in a fresh child (each has its own chance)."""
    timeout = trial_timeout() if timeout is None else timeout
    outcomes: dict[str, Outcome] = {}
    output = []
    pending = list(ids)
    while pending:
        with tempfile.TemporaryDirectory(prefix="needle_trial_") as tmp:
            progress = Path(tmp) / "progress.jsonl"
            progress.touch()
            command = [sys.executable, "-m", "needle.course.sandbox", str(library), module_name, str(progress), *pending]
            try:
                proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
                returncode, hung = proc.returncode, False
                output.append(proc.stdout + proc.stderr)
            except subprocess.TimeoutExpired as exc:
                returncode, hung = None, True
                output.append(_text(exc.stdout) + _text(exc.stderr))
            records = _read_progress(progress)
        current, case = None, ""
        for record in records:
            if record["event"] == "start":
                current, case = record["id"], ""
            elif record["event"] == "case":
                case = record["text"]
            elif record["event"] == "result":
                outcomes[record["id"]] = Outcome(record["status"], record.get("cases", 0), record.get("message", ""))
                current = None
        if not hung and returncode == 0 and current is None:
            pending = [i for i in pending if i not in outcomes]
            if pending:  # the child stopped without reporting them: say so rather than loop
                for i in pending:
                    outcomes[i] = Outcome("crashed", message="the child process stopped before checking it")
            break
        where = f" while running: {case}" if case else (" while loading the compiled module" if current is None else "")
        if hung:
            outcome = Outcome("hung", message=f"your code did not finish within {timeout:g} s (an infinite loop? a loop "
                                              f"whose index never reaches its bound?){where}. It ran in a child process, "
                                              "which was stopped; it was not loaded into this notebook")
        else:
            outcome = Outcome("crashed", message=f"your code crashed the child process that ran its check "
                                                 f"({_signal_text(returncode)}){where}. It was not loaded into this "
                                                 "notebook, whose kernel lives on")
        victims = [current] if current is not None else list(pending)
        for i in victims:
            outcomes[i] = outcome
        pending = [i for i in pending if i not in outcomes]
    text = "".join(output).strip()
    return {i: outcomes[i] for i in ids}, text


def _text(data: Any) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


# ---- the child's side ----


def _bind(ex: Any, module: Any) -> Any:
    """What the exercise installs from the compiled module: its kernel bundle, or the one function its target names."""
    from . import device_kernels

    bundle = device_kernels.bundle_of(ex.target)
    if bundle is not None:
        tab, names = bundle
        kernels = {k: getattr(module, k) for k in names if hasattr(module, k)}
        if not kernels:
            raise LookupError(f"the cell's PYBIND11_MODULE block binds none of {', '.join(names)}")
        return Build(ex.id, kernels)
    attr = ex.target.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    if not hasattr(module, attr):
        raise LookupError(f"the cell's PYBIND11_MODULE block does not define {attr!r}")
    return getattr(module, attr)


def _child(argv: list[str]) -> int:
    global _progress, _cases_started
    library, module_name, progress_path, *ids = argv
    _progress = open(progress_path, "a", encoding="utf-8")
    from . import install, registry
    from .cpp_magic import load_library
    from .runner import _learner_traceback

    _emit({"event": "load"})
    module = load_library(Path(library), module_name)
    for exercise_id in ids:
        _emit({"event": "start", "id": exercise_id})
        ex = registry.get(exercise_id)
        try:
            obj = _bind(ex, module)
        except LookupError as exc:
            _emit({"event": "result", "id": exercise_id, "status": "unbound", "message": str(exc)})
            continue
        _cases_started = 0
        try:
            install.install(ex, obj)
            result = {"status": "passed", "cases": int(ex.check(obj))}
        except LearnerError as exc:
            result = {"status": "raised", "message": str(exc)}
        except CheckFailed as exc:
            result = {"status": "failed", "message": str(exc)}
        except NotImplementedError as exc:
            if _cases_started <= 1:  # at its first case: the exercise is still the stub
                result = {"status": "not implemented", "message": str(exc)}
            else:  # after cases that ran: a part of it is still the stub
                result = {"status": "partial", "message": f"a part of your code still throws NotImplemented (while "
                          f"running: {_case_text}); nothing of this exercise is installed until every part runs"}
        except Exception as exc:  # the learner's code raised: show where
            result = {"status": "raised", "message": f"your code raised {type(exc).__name__}:\n{_learner_traceback(exc)}"}
        finally:
            install.reset()
        _emit({"event": "result", "id": exercise_id, **result})
    return 0


if __name__ == "__main__":  # run as needle.course.sandbox, the module the checks import, not as a __main__ copy
    from needle.course.sandbox import _child as child

    sys.exit(child(sys.argv[1:]))
