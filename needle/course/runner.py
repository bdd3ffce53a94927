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


def run(exercise_id: str) -> int:
    """Run the checks of `exercise_id`; return the number of cases that passed, or raise a check outcome."""
    __tracebackhide__ = True
    ex = registry.get(exercise_id)
    impl = install.installed(exercise_id)
    if impl is None:
        raise NotImplementedYet(f"{exercise_id}: not implemented yet (run the exercise cell that installs it first)")
    try:
        return ex.check(impl)
    except CheckFailed as failure:
        raise CheckFailed(f"{exercise_id}: {failure}") from None
    except NotImplementedError as exc:
        elsewhere = _stub_elsewhere(exc, _learner_code(impl, ex.target.rsplit(".", 1)[-1].rsplit(":", 1)[-1]))
        if elsewhere:
            raise NotImplementedYet(f"{exercise_id}: not implemented yet: it uses {elsewhere}, "
                                    "which still raises NotImplementedError (do that exercise first)") from None
        raise NotImplementedYet(f"{exercise_id}: not implemented yet. Hint: {ex.hint}") from None
    except Exception as exc:  # the learner's code crashed: show where, as a failed check
        raise LearnerError(f"{exercise_id}: your code raised {type(exc).__name__}:\n{_learner_traceback(exc)}") from None


def check(exercise_id: str) -> None:
    """Check the learner's installed `exercise_id`: print a ✓ line, or raise CheckFailed / NotImplementedYet."""
    __tracebackhide__ = True
    passed = run(exercise_id)
    print(f"✓ {exercise_id}: {passed} cases passed")
