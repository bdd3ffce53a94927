"""needle/course/registry.py and errors.py: the exercise table every check registers in, and how compile errors and
check outcomes reach the learner."""
import dataclasses

import pytest

from needle.course import errors, registry


@pytest.fixture
def table(monkeypatch):
    """A private copy of the registry, so registering test exercises leaves the real one as it was."""
    registry.all_exercises()  # loads every chapter's checks first
    monkeypatch.setattr(registry, "_EXERCISES", dict(registry._EXERCISES))
    return registry._EXERCISES


def _check(obj) -> int:
    return 1


def test_an_exercise_is_frozen_and_knows_its_chapter():
    ex = registry.Exercise("autodiff.ewise_add", "needle.ops:EWiseAdd", "goal", _check)
    assert ex.chapter == "autodiff" and ex.language == "python" and ex.hints == () and ex.uses == ()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ex.hint = "changed"


def test_registering_an_id_twice_is_an_error_unless_it_is_the_same_check(table):
    register = registry.exercise_check("testing.thing", target="needle.ops:EWiseAdd", hint="goal", hints=["a", "b"],
                                       uses=["autodiff.ewise_add"])
    assert register(_check) is _check
    assert register(_check) is _check  # importing a checks module again is harmless
    ex = registry.get("testing.thing")
    assert (ex.target, ex.hint, ex.hints, ex.uses, ex.check) == ("needle.ops:EWiseAdd", "goal", ("a", "b"),
                                                                 ("autodiff.ewise_add",), _check)
    with pytest.raises(ValueError, match="'testing.thing' is registered twice"):
        registry.exercise_check("testing.thing", target="x:y", hint="other")(lambda obj: 0)


def test_set_hints_and_set_uses_replace_those_fields_only(table):
    registry.exercise_check("testing.a", target="m:a", hint="old")(_check)
    registry.exercise_check("testing.b", target="m:b", hint="old")(_check)
    registry.set_hints({"testing.a": ("new goal", ["tier 1", "tier 2"])})
    registry.set_uses({"testing.a": ["testing.b"], "testing.b": []})
    a, b = registry.get("testing.a"), registry.get("testing.b")
    assert (a.hint, a.hints, a.uses, a.target, a.check) == ("new goal", ("tier 1", "tier 2"), ("testing.b",), "m:a", _check)
    assert (b.hint, b.uses) == ("old", ())
    with pytest.raises(KeyError, match="set_hints: no exercise 'testing.c'"):
        registry.set_hints({"testing.c": ("goal", [])})


def test_get_lists_the_chapters_exercises_for_an_unknown_id(table):
    registry.exercise_check("testing.a", target="m:a", hint="goal")(_check)
    with pytest.raises(KeyError, match="no exercise 'testing.z'; exercises of 'testing': testing.a"):
        registry.get("testing.z")
    with pytest.raises(KeyError, match="exercises of 'nowhere': none"):
        registry.get("nowhere.z")


def test_every_outcome_class_name_has_its_status():
    assert {name: getattr(errors, name).__name__ for name in errors.STATUS_BY_ERROR} == {
        "CheckFailed": "CheckFailed", "LearnerError": "LearnerError", "NotImplementedYet": "NotImplementedYet"}
    assert errors.STATUS_BY_ERROR["NotImplementedYet"] == "not attempted"
    assert issubclass(errors.LearnerError, errors.CheckFailed) and issubclass(errors.CheckFailed, AssertionError)


class _CompileError(Exception):
    pass


def test_a_compile_error_is_printed_and_raised_again_naming_the_exercises(capsys):
    with pytest.raises(_CompileError) as info:
        with errors.compiler_errors_shown(["cpu_backend.compact", "cpu_backend.matmul"], _CompileError):
            raise _CompileError("cell.cc:3: error: expected ';'")
    assert str(info.value) == "cpu_backend.compact, cpu_backend.matmul: not installed (see the compiler's errors above)"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert capsys.readouterr().err == "cell.cc:3: error: expected ';'\n"
    with pytest.raises(KeyError):  # any other error passes through untouched
        with errors.compiler_errors_shown(["x"], _CompileError):
            raise KeyError("other")
    with errors.compiler_errors_shown(["x"], _CompileError):
        pass
    assert capsys.readouterr().err == ""


def test_exercise_check_takes_its_options_by_keyword_only():
    with pytest.raises(TypeError):
        registry.exercise_check("testing.x", "m:x", "goal")


def test_the_chapters_checks_are_imported_once(monkeypatch):
    import pkgutil

    listed = []
    iter_modules = pkgutil.iter_modules
    monkeypatch.setattr(pkgutil, "iter_modules", lambda path: listed.append(path) or iter_modules(path))
    monkeypatch.setattr(registry, "_loaded", False)
    first = registry.all_exercises()
    assert registry.all_exercises() == first and len(listed) == 1
    assert {e.chapter for e in first} >= {"welcome", "autodiff", "nn_library", "cnn", "generative"}


def test_a_fresh_interpreter_loads_every_chapters_checks_on_first_use():
    import subprocess
    import sys

    code = "from needle.course import registry; print(len({e.chapter for e in registry.all_exercises()}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and int(out.stdout) >= 12, out.stderr[-2000:]
