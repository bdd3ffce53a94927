"""course.check: run an exercise's cases on the learner's installed object and report in one line or a readable error."""
from __future__ import annotations

import traceback

from . import install, registry
from .errors import CheckFailed, LearnerError, NotImplementedYet


def _learner_traceback(exc: BaseException) -> str:
    """The exception's traceback without the frames of the check machinery."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/needle/course/" not in f.filename.replace("\\", "/")]
    text = "".join(traceback.format_list(frames[-8:]))
    return text + "".join(traceback.format_exception_only(type(exc), exc))


def _learner_code(impl: object, attr: str) -> set:
    """The code objects of the learner's function, of the method `attr` of their class, or of every method of a
    class installed whole (a stub in any of them is the exercise's own stub)."""
    if isinstance(impl, type):
        fns = [vars(impl)[attr]] if attr in vars(impl) else list(vars(impl).values())
    else:
        fns = [impl]
    return {code for code in (getattr(getattr(f, "__func__", f), "__code__", None) for f in fns) if code is not None}


def _stub_elsewhere(exc: BaseException, own_code: set) -> str:
    """Where a NotImplementedError came from, when that is another stub rather than the exercise's own code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or tb.tb_frame.f_code in own_code or "/needle/course/" in tb.tb_frame.f_code.co_filename:
        return ""
    frame = tb.tb_frame
    owner = frame.f_locals.get("self")
    return (f"{type(owner).__name__}." if owner is not None else "") + frame.f_code.co_name


OUTCOME_KEY = "needle_check"  # metadata key of the display a check leaves in its cell: what `needle-course check` reads

class HintsShown(dict):
    """exercise id -> the highest hint tier shown so far (0 before the first)."""

    def __missing__(self, exercise_id: str) -> int:
        return 0


_hints_shown = HintsShown()
_last_status: dict[str, str] = {}  # exercise id -> "passed" / "failed" / "not attempted", from this kernel's checks


def _failing_dependencies(ex: registry.Exercise) -> str:
    """A note naming the exercises this one uses on purpose that fail (or skip) their own checks."""
    notes = []
    for other in ex.uses:
        status = _last_status.get(other)
        if status == "failed":
            notes.append(f"\n  note: this uses your {other}, which fails its own check: fix that one first")
        elif status is None and install.installed(other) is not None:
            notes.append(f"\n  note: this uses your {other}; run its check too")
    return "".join(notes)


def _publish(exercise_id: str, status: str, line: str, cases: int | None = None) -> None:
    """Show the check's one-line outcome; in a notebook it carries its outcome in the output's metadata."""
    try:
        from IPython import get_ipython
        from IPython.display import publish_display_data
    except ImportError:
        ipython = None
    else:
        ipython = get_ipython()
    if ipython is None or not hasattr(ipython, "kernel"):
        print(line)
        return
    record = {"exercise": exercise_id, "status": status}
    if cases is not None:
        record["cases"] = cases
    publish_display_data({"text/plain": line}, metadata={OUTCOME_KEY: record})


def _not_attempted(exercise_id: str) -> str:
    if install.is_stub(exercise_id):
        why = "its cell still holds the stub, so needle's reference stays in place"
    else:
        why = "run the exercise cell above first"
    return f"◦ {exercise_id}: not attempted yet ({why}); course.hint(\"{exercise_id}\") helps you start"


def run(exercise_id: str) -> int:
    """Run the checks of `exercise_id`; return the number of cases that passed, or raise a check outcome.

    The learner's object is the only learner code in play: every other exercise is needle's reference while the
    check runs, so a bug elsewhere cannot fail this check.
    """
    __tracebackhide__ = True
    ex = registry.get(exercise_id)
    impl = install.installed(exercise_id)
    if impl is None:
        raise NotImplementedYet(_not_attempted(exercise_id))
    keep = [i for i in install.installed_ids() if install.installed(i) is impl or i in ex.uses]
    _last_status[exercise_id] = "failed"
    try:
        with install.isolated(keep):
            passed = ex.check(impl)
    except CheckFailed as failure:
        raise CheckFailed(f"{exercise_id}: {failure}{_failing_dependencies(ex)}") from None
    except NotImplementedError as exc:
        elsewhere = _stub_elsewhere(exc, _learner_code(impl, install.resolve(ex.target)[1]))
        if elsewhere:
            raise LearnerError(f"{exercise_id}: it uses {elsewhere}, which still raises NotImplementedError (a stub): "
                               f"write that first{_failing_dependencies(ex)}") from None
        raise LearnerError(f"{exercise_id}: your code raised NotImplementedError: {exc}\n"
                           f"a part of it is still unfinished; course.hint(\"{exercise_id}\") if you are stuck") from None
    except Exception as exc:  # the learner's code crashed: show where, as a failed check
        raise LearnerError(f"{exercise_id}: your code raised {type(exc).__name__}:\n{_learner_traceback(exc)}"
                           f"{_failing_dependencies(ex)}") from None
    _last_status[exercise_id] = "passed"
    return passed


def check(exercise_id: str) -> None:
    """Check the learner's installed `exercise_id`: a ✓ line when right; one "not attempted yet" line (no error)
    while the exercise cell still holds its stub; CheckFailed / LearnerError with a readable message when wrong."""
    __tracebackhide__ = True
    try:
        passed = run(exercise_id)
    except NotImplementedYet as not_yet:
        _last_status[exercise_id] = "not attempted"
        _publish(exercise_id, "not attempted", str(not_yet))
        return
    _publish(exercise_id, "passed", f"✓ {exercise_id}: {passed} cases passed", passed)


def hint(exercise_id: str, tier: int | None = None) -> None:
    """Print the next hint for `exercise_id` (each call reveals one more tier), or tier `tier` (1-based)."""
    ex = registry.get(exercise_id)
    tiers = list(ex.hints) or [ex.hint]
    if tier is None:
        tier = _hints_shown[exercise_id] + 1
    tier = max(1, min(int(tier), len(tiers)))
    _hints_shown[exercise_id] = max(_hints_shown[exercise_id], tier)
    more = (f"  (run course.hint(\"{exercise_id}\") again for hint {tier + 1})" if tier < len(tiers)
            else "  (that was the last hint)")
    print(f"hint {tier}/{len(tiers)} for {exercise_id}: {tiers[tier - 1]}\n{more}")
