"""Installs a learner's function, method or class into needle for the rest of the kernel, and restores the reference.

A target `pkg.mod:name` rebinds `name` in `pkg.mod` and in every loaded needle module that re-exports the same object;
`pkg.mod:Class.attr` sets the attribute on the class; `pkg.mod:Class` copies the methods a learner's class defines onto
the reference class (so isinstance checks and every existing reference keep working).
"""
from __future__ import annotations

import importlib
import inspect
import sys
import types
from typing import Any

from .registry import Exercise

_MISSING = object()
_SKIP_CLASS_ATTRS = {"__module__", "__dict__", "__weakref__", "__qualname__", "__doc__", "__annotations__"}

# exercise id -> the learner's object; (owner, attr) -> the reference value (_MISSING if it was absent)
_installed: dict[str, Any] = {}
_saved: dict[tuple[Any, str], Any] = {}


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


def _set(owner: Any, attr: str, value: Any) -> None:
    _saved.setdefault((owner, attr), owner.__dict__.get(attr, _MISSING) if inspect.isclass(owner) else getattr(owner, attr, _MISSING))
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
    if getattr(obj, "needle_keeps_reference", False):  # a stub, or code that crashed its trial: checked, never installed
        _installed[exercise.id] = obj
        return
    owner, attr = resolve(exercise.target)
    reference = owner.__dict__.get(attr, _MISSING) if inspect.isclass(owner) else getattr(owner, attr, _MISSING)
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


def uninstall(exercise_id: str) -> None:
    """Restore the reference for one exercise (others stay installed)."""
    if _installed.pop(exercise_id, None) is None:
        return
    remaining = dict(_installed)
    reset()
    from .registry import get

    for other, obj in remaining.items():
        install(get(other), obj)


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


def installed(exercise_id: str) -> Any:
    """The learner's object installed for `exercise_id`, or None."""
    return _installed.get(exercise_id)


def installed_ids() -> list[str]:
    """Ids of the exercises installed in this kernel."""
    return sorted(_installed)


def reference(target: str) -> Any:
    """needle's own object at `target`, even while a learner's version is installed there (the checks' oracle)."""
    owner, attr = resolve(target)
    saved = _saved.get((owner, attr), _MISSING)
    if saved is not _MISSING:
        return saved
    return owner.__dict__[attr] if inspect.isclass(owner) else getattr(owner, attr)
