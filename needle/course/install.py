"""Installs a learner's function, method or class into needle for the rest of the kernel, and restores the reference.

A target `pkg.mod:name` rebinds `name` in `pkg.mod` and in every loaded needle module that re-exports the same object;
`pkg.mod:Class.attr` sets the attribute on the class; `pkg.mod:Class` copies the methods a learner's class defines onto
the reference class (so isinstance checks and every existing reference keep working).
"""
from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import types
from typing import Any, Iterator

from .registry import Exercise

_MISSING = object()
_SKIP_CLASS_ATTRS = {"__module__", "__dict__", "__weakref__", "__qualname__", "__doc__", "__annotations__"}

# exercise id -> the learner's object; (owner, attr) -> the reference value (_MISSING if it was absent)
_installed: dict[str, Any] = {}
_saved: dict[tuple[Any, str], Any] = {}
_stubs: set[str] = set()  # exercises whose cell ran while still holding the workbook's stub

STUB_MESSAGE = "not implemented yet"  # how every workbook stub's message begins (`raise NotImplementedError("not ...`)


def _code_is_stub(code: types.CodeType) -> bool:
    if "NotImplementedError" in code.co_names and any(
            isinstance(c, str) and c.startswith(STUB_MESSAGE) for c in code.co_consts):
        return True
    return any(_code_is_stub(c) for c in code.co_consts if isinstance(c, types.CodeType))


def _functions(value: Any) -> list[Any]:
    if isinstance(value, (classmethod, staticmethod)):
        return [value.__func__]
    if isinstance(value, property):
        return [f for f in (value.fget, value.fset, value.fdel) if f is not None]
    return [value]


def stub_parts(obj: Any) -> list[str]:
    """Names of the learner's functions (or methods of their class) that still raise the workbook's stub."""
    if inspect.isclass(obj):
        items = [(name, f) for name, value in vars(obj).items() for f in _functions(value)]
    else:
        items = [(getattr(obj, "__name__", "it"), f) for f in _functions(obj)]
    return [name for name, fn in items
            if isinstance(getattr(fn, "__code__", None), types.CodeType) and _code_is_stub(fn.__code__)]


def mark_stub(exercise_id: str) -> None:
    """The exercise's cell ran with its stub still there: keep (or put back) needle's reference."""
    uninstall(exercise_id)
    _stubs.add(exercise_id)


def is_stub(exercise_id: str) -> bool:
    """Whether the exercise's cell last ran with its stub still in place."""
    return exercise_id in _stubs


def resolve(target: str) -> tuple[Any, str]:
    """(owner, attribute name) for a target: owner is a module or, for `Class.attr`, the class."""
    module_name, _, path = target.partition(":")
    owner: Any = importlib.import_module(module_name)
    *parents, attr = path.split(".")
    for name in parents:
        owner = getattr(owner, name)
    return owner, attr


def _for_class(value: Any, cls: type) -> Any:
    """A learner's method whose zero-argument super() refers to `cls` (the reference class it is copied onto)."""
    fn = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
    if not isinstance(fn, types.FunctionType) or "__class__" not in fn.__code__.co_freevars:
        return value
    cells = tuple(types.CellType(cls) if name == "__class__" else cell
                  for name, cell in zip(fn.__code__.co_freevars, fn.__closure__))
    copy = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__, fn.__defaults__, cells)
    copy.__kwdefaults__, copy.__qualname__, copy.__doc__ = fn.__kwdefaults__, fn.__qualname__, fn.__doc__
    copy.__dict__.update(fn.__dict__)
    return type(value)(copy) if fn is not value else copy


def _own(owner: Any, attr: str) -> Any:
    """owner's own binding of `attr` (_MISSING if none): a class's __dict__ entry (never an inherited one, and a
    staticmethod as the staticmethod), or a module's attribute."""
    return owner.__dict__.get(attr, _MISSING) if inspect.isclass(owner) else getattr(owner, attr, _MISSING)


def _set(owner: Any, attr: str, value: Any) -> None:
    _saved.setdefault((owner, attr), _own(owner, attr))
    setattr(owner, attr, value)


def _rebind_everywhere(reference: Any, value: Any) -> None:
    """Rebind every needle module attribute that holds `reference` (re-exports such as `needle.ops.divide`)."""
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "needle" or name.startswith("needle.")) or name.startswith("needle.course"):
            continue
        for attr, held in list(vars(module).items()):
            if held is reference:
                _set(module, attr, value)


def install(exercise: Exercise, obj: Any) -> None:
    """Install the learner's `obj` at the exercise's target (replacing an earlier install of the same exercise)."""
    uninstall(exercise.id)
    _stubs.discard(exercise.id)
    if getattr(obj, "needle_keeps_reference", False):  # a stub, or code that crashed its trial: checked, never installed
        _installed[exercise.id] = obj
        return
    owner, attr = resolve(exercise.target)
    reference = _own(owner, attr)
    if inspect.isclass(reference) and inspect.isclass(obj):
        for name, value in vars(obj).items():
            if name not in _SKIP_CLASS_ATTRS:
                _set(reference, name, _for_class(value, reference))
    elif inspect.isclass(owner):
        if inspect.isclass(obj):  # a class that defines the method: take the method
            obj_attr = vars(obj).get(attr, _MISSING)
            if obj_attr is _MISSING:
                raise TypeError(f"{exercise.id}: class {obj.__name__} does not define {attr!r}")
            _set(owner, attr, _for_class(obj_attr, owner))
        else:
            _set(owner, attr, obj)
    else:
        if reference is _MISSING:
            raise AttributeError(f"{exercise.id}: target {exercise.target} does not exist in needle")
        _set(owner, attr, obj)
        _rebind_everywhere(reference, obj)
    _installed[exercise.id] = obj


def _restore(remaining: dict[str, Any]) -> None:
    from .registry import get

    for other, obj in remaining.items():
        install(get(other), obj)


def uninstall(exercise_id: str) -> None:
    """Restore the reference for one exercise (others stay installed)."""
    if _installed.pop(exercise_id, None) is None:
        return
    remaining, stubs = dict(_installed), set(_stubs)
    reset()
    _restore(remaining)
    _stubs.update(stubs)


@contextlib.contextmanager
def isolated(exercise_ids: list[str] | tuple[str, ...]) -> Iterator[None]:
    """Only these exercises are the learner's while the block runs; every other one is needle's reference
    (one bug, one failure). Everything installed before is installed again afterwards."""
    everything, stubs = dict(_installed), set(_stubs)
    keep = {i: everything[i] for i in exercise_ids if i in everything}
    if keep == everything:
        yield
        return
    reset()
    try:
        _restore(keep)
        yield
    finally:
        reset()
        _restore(everything)
        _stubs.update(stubs)


def reset() -> None:
    """Restore every reference binding that an exercise changed."""
    for (owner, attr), value in reversed(list(_saved.items())):
        if value is _MISSING:
            if attr in vars(owner):
                delattr(owner, attr)
        else:
            setattr(owner, attr, value)
    _saved.clear()
    _installed.clear()
    _stubs.clear()


def installed(exercise_id: str) -> Any:
    """The learner's object installed for `exercise_id`, or None."""
    return _installed.get(exercise_id)


def installed_ids() -> list[str]:
    """Ids of the exercises installed in this kernel."""
    return sorted(_installed)


def reference(target: str) -> Any:
    """needle's own object at `target`, even while a learner's version is installed there (the checks' oracle)."""
    owner, attr = resolve(target)
    found = _saved.get((owner, attr), _MISSING)
    if found is _MISSING:
        found = _own(owner, attr)
    if found is _MISSING:
        raise AttributeError(f"{target}: no such attribute in needle")
    return found
