"""A learner's compiled code runs first in a child process: a crash or a hang there is a failed check, not a dead kernel.

`%%needle_cpp` compiles a cell, then runs the checks of its exercises in a child Python (`python -m
needle.course.sandbox`) that loads the compiled module, installs each exercise alone (needle's reference for
everything else) and runs its check. The child reports, line by line into a file, which exercise and which case
it is running; so when it dies of a signal (a segfault, `abort()`) or runs past its time, the notebook learns which
exercise, which input and which signal. Only code whose trial finished (passed, failed or raised an exception) is
loaded into the notebook's kernel; a crashed or hung build never is, and needle's reference stays in place.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from . import child_trial
from .child_trial import trial_timeout
from .errors import CheckFailed, LearnerError

_progress: child_trial.Progress | None = None  # the child's report file (None in the notebook's own process)

_SIGNALS = {
    "SIGSEGV": "a segmentation fault: a read or write outside the memory the process owns "
               "(an index past the end of a buffer, or a wrong stride or offset?)",
    "SIGBUS": "a bus error: an access to memory that does not exist or is misaligned",
    "SIGABRT": "abort(): an assertion failed, or the C++ runtime gave up (an uncaught exception, a double free, ...)",
    "SIGFPE": "an arithmetic fault (an integer division by zero?)",
    "SIGILL": "an illegal instruction",
    "SIGKILL": "it was killed (out of memory?)",
}


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
        _progress.emit({"event": "case", "text": text})


# ---- the notebook's side ----


def trial(library: Path, module_name: str, ids: list[str], timeout: float | None = None) -> tuple[dict[str, Outcome], str]:
    """Run the checks of `ids` on the compiled module in child processes (`child_trial.py`); returns each outcome and
    the children's output."""
    timeout = trial_timeout() if timeout is None else timeout
    output: list[str] = []

    def child(pending: list[str]) -> child_trial.Round:
        rnd = child_trial.run_child("needle.course.sandbox", lambda tmp: [str(library), module_name], pending, timeout,
                                    "needle_trial_")
        output.append(rnd.output)
        return rnd

    def died(rnd: child_trial.Round) -> Outcome:
        where = (f" while running: {rnd.case}" if rnd.case
                 else (" while loading the compiled module" if rnd.current is None else ""))
        if rnd.hung:
            return Outcome("hung", message=f"your code did not finish within {timeout:g} s (an infinite loop? a loop "
                                           f"whose index never reaches its bound?){where}. It ran in a child process, "
                                           "which was stopped; it was not loaded into this notebook")
        return Outcome("crashed", message=f"your code crashed the child process that ran its check "
                                          f"({child_trial.signal_text(rnd.returncode, _SIGNALS)}){where}. It was not "
                                          "loaded into this notebook, whose kernel lives on")

    outcomes = child_trial.run(
        ids, child,
        finished=lambda r: Outcome(r["status"], r.get("cases", 0), r.get("message", "")),
        unreported=lambda rnd: Outcome("crashed", message="the child process stopped before checking it"),
        died=died)
    return outcomes, "".join(output).strip()


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
    _progress = child_trial.Progress(progress_path)
    from . import install, registry
    from .cpp_magic import load_library
    from .runner import _learner_traceback

    _progress.emit({"event": "load"})
    module = load_library(Path(library), module_name)
    for exercise_id in ids:
        _progress.emit({"event": "start", "id": exercise_id})
        ex = registry.get(exercise_id)
        try:
            obj = _bind(ex, module)
        except LookupError as exc:
            _progress.emit({"event": "result", "id": exercise_id, "status": "unbound", "message": str(exc)})
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
        _progress.emit({"event": "result", "id": exercise_id, **result})
    return 0


if __name__ == "__main__":  # run as needle.course.sandbox, the module the checks import, not as a __main__ copy
    from needle.course.sandbox import _child as child

    sys.exit(child(sys.argv[1:]))
