"""Course mechanics: install a learner's code into needle (`@course.exercise`), check it (`course.check`), `course.reset()`.

    from needle import course

    @course.exercise("welcome.sigmoid")
    def sigmoid(x): ...

    course.check("welcome.sigmoid")

`course` sits on the top floor: it imports the library, and nothing in the library imports it.
"""
from __future__ import annotations

from typing import Any, Callable, TypeVar

from . import install as _install
from . import registry
from .errors import CheckFailed, LearnerError, NotImplementedYet
from .install import installed_ids, reset
from .runner import check, hint

T = TypeVar("T")

__all__ = ["exercise", "check", "hint", "reset", "installed_ids", "exercises", "CheckFailed", "LearnerError",
           "NotImplementedYet"]


def exercise(exercise_id: str) -> Callable[[T], T]:
    """Decorator: install the decorated function, method or class as the learner's answer to `exercise_id`.

    While the code still holds the workbook's stub (`raise NotImplementedError("not implemented yet: ...")`),
    nothing is installed: needle's reference stays in place, and the decorated name is bound to it, so every
    later cell runs.
    """
    ex = registry.get(exercise_id)

    def install(obj: T) -> T:
        stubs = _install.stub_parts(obj)
        if stubs:
            _install.mark_stub(exercise_id)
            print(f"{exercise_id}: still a stub ({', '.join(stubs)}), so needle's reference stays installed "
                  "(replace the raise NotImplementedError line with your code)")
            reference = _install.reference(ex.target)
            return reference if isinstance(reference, type) == isinstance(obj, type) else obj
        _install.install(ex, obj)
        return obj

    return install


def exercises(chapter: str | None = None) -> list[str]:
    """Ids of the registered exercises (of one chapter, e.g. "autodiff", if given)."""
    return [e.id for e in registry.all_exercises() if chapter is None or e.chapter == chapter]


def _show_outcome(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> None:
    """Show a check's outcome as its message alone: the traceback through the check machinery is noise."""
    shell._showtraceback(etype, value, [f"\x1b[0;31m{etype.__name__}\x1b[0m: {value}"])


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext needle.course`: the `%%needle_cpp` and `%%needle_cuda` cell magics and short check reports
    (importing does it too)."""
    from needle.backend_ndarray.cuda_sim_build import CudaCompileError

    from . import cuda_magic
    from .cpp_magic import CompileError, register_magic

    register_magic(ipython)
    cuda_magic.register_magic(ipython)
    ipython.set_custom_exc((CheckFailed, NotImplementedYet, CompileError, CudaCompileError), _show_outcome)


def _register_in_running_ipython() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    ipython = get_ipython()
    if ipython is not None:
        load_ipython_extension(ipython)


_register_in_running_ipython()
