"""The exercise registry: one entry per exercise, declared next to its check function in checks/chNN_*.py."""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Any, Callable, Sequence

CheckFn = Callable[[Any], int]


@dataclass(frozen=True)
class Exercise:
    """An exercise: where the learner's code is installed (`module:attr` or `module:Class.attr`) and how it is checked."""

    id: str
    target: str
    hint: str  # the goal, in words: the stub's message (never the answer's code)
    check: CheckFn
    language: str = "python"  # "python", "c++" (a %%needle_cpp cell) or "cuda" (a %%needle_cuda cell)
    hints: tuple[str, ...] = ()  # tiers revealed one by one by course.hint(id): the idea, the formula, the code's shape
    uses: tuple[str, ...] = ()  # exercises whose learner code this one calls on purpose (e.g. a helper they wrote)

    @property
    def chapter(self) -> str:
        return self.id.partition(".")[0]


_EXERCISES: dict[str, Exercise] = {}
_loaded = False


def exercise_check(exercise_id: str, *, target: str, hint: str, language: str = "python",
                   hints: Sequence[str] = (), uses: Sequence[str] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register `exercise_id` with the decorated check function, which receives the learner's object.

    `hint` names the goal (it is the workbook stub's message, so it must not spell the answer); `hints` are the
    tiers `course.hint(exercise_id)` reveals one per call: the idea, then the formula, then the shape of the code.
    `uses` names exercises whose learner code this one calls on purpose (a failure then points at them).
    """

    def register(fn: CheckFn) -> CheckFn:
        if exercise_id in _EXERCISES and _EXERCISES[exercise_id].check is not fn:
            raise ValueError(f"exercise {exercise_id!r} is registered twice")
        _EXERCISES[exercise_id] = Exercise(exercise_id, target, hint, fn, language, tuple(hints), tuple(uses))
        return fn

    return register


def set_hints(table: dict[str, tuple[str, Sequence[str]]]) -> None:
    """Give registered exercises their goal (the stub's message) and tiered hints: {id: (goal, [tier, ...])}."""
    import dataclasses

    for exercise_id, (goal, tiers) in table.items():
        if exercise_id not in _EXERCISES:
            raise KeyError(f"set_hints: no exercise {exercise_id!r}")
        _EXERCISES[exercise_id] = dataclasses.replace(_EXERCISES[exercise_id], hint=goal, hints=tuple(tiers))


def set_uses(table: dict[str, Sequence[str]]) -> None:
    """Declare, after registration, which exercises' learner code an exercise calls on purpose: {id: [id, ...]}."""
    import dataclasses

    for exercise_id, uses in table.items():
        _EXERCISES[exercise_id] = dataclasses.replace(_EXERCISES[exercise_id], uses=tuple(uses))


def _load_checks() -> None:
    """Import every checks/chNN_*.py once, so that all exercises are registered."""
    global _loaded
    if _loaded:
        return
    from . import checks

    for info in sorted(pkgutil.iter_modules(checks.__path__), key=lambda m: m.name):
        if info.name.startswith("ch"):
            importlib.import_module(f"{checks.__name__}.{info.name}")
    _loaded = True


def get(exercise_id: str) -> Exercise:
    """The registered exercise, or a KeyError that lists the close matches."""
    _load_checks()
    try:
        return _EXERCISES[exercise_id]
    except KeyError:
        chapter = exercise_id.partition(".")[0]
        near = sorted(e for e in _EXERCISES if e.startswith(chapter + "."))
        raise KeyError(f"no exercise {exercise_id!r}; exercises of {chapter!r}: {', '.join(near) or 'none'}") from None


def all_exercises() -> list[Exercise]:
    """Every registered exercise, sorted by id."""
    _load_checks()
    return [_EXERCISES[k] for k in sorted(_EXERCISES)]
