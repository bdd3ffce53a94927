"""Course mechanics: installing a learner's code into needle, reset, and the outcomes of course.check."""
import sys
import types

import numpy as np
import pytest

from needle import course
from needle.course import install, registry, warmup
from needle.course.errors import CheckFailed, LearnerError


def good_sigmoid(x):
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def test_exercise_installs_into_the_module_and_reset_restores():
    reference = warmup.sigmoid
    mine = course.exercise("welcome.sigmoid")(good_sigmoid)
    assert mine is good_sigmoid and warmup.sigmoid is good_sigmoid
    assert course.installed_ids() == ["welcome.sigmoid"]
    course.reset()
    assert warmup.sigmoid is reference and course.installed_ids() == []


def test_library_code_calls_the_installed_function():
    calls = []

    @course.exercise("welcome.sigmoid")
    def counting(x):
        calls.append(x.shape)
        return good_sigmoid(x)

    warmup.predict_proba(np.ones((3, 2)), np.ones(2))
    assert calls == [(3,)]


def test_check_passes_for_a_correct_answer(capsys):
    course.exercise("welcome.sigmoid")(good_sigmoid)
    course.check("welcome.sigmoid")
    assert capsys.readouterr().out.startswith("✓ welcome.sigmoid:")


def test_a_stub_keeps_the_reference_and_its_check_says_not_attempted_without_raising(capsys):
    reference = warmup.sigmoid

    @course.exercise("welcome.sigmoid")
    def stub(x):
        raise NotImplementedError("not implemented yet: the logistic function")

    assert warmup.sigmoid is reference and stub is reference  # later cells calling `stub` still run
    assert course.installed_ids() == []
    first = capsys.readouterr().out
    assert first.count("\n") == 1 and "still a stub" in first and "reference stays installed" in first
    course.check("welcome.sigmoid")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "welcome.sigmoid: not attempted yet" in out and 'course.hint("welcome.sigmoid")' in out


def test_running_a_stub_again_after_a_solution_puts_the_reference_back():
    reference = warmup.sigmoid
    course.exercise("welcome.sigmoid")(good_sigmoid)

    @course.exercise("welcome.sigmoid")
    def sigmoid(x):
        y = x * 2
        raise NotImplementedError("not implemented yet: the logistic function")

    assert warmup.sigmoid is reference and course.installed_ids() == []


def test_a_class_with_one_stubbed_method_is_a_stub():
    from needle.course.install import stub_parts

    class Half:
        def __init__(self):
            self.x = 1

        def forward(self, x):
            raise NotImplementedError("not implemented yet: forward")

    assert stub_parts(Half) == ["forward"]
    assert stub_parts(good_sigmoid) == []


def test_an_own_not_implemented_error_is_not_a_stub():
    from needle.course.install import stub_parts

    def partial(x):
        if x.ndim > 2:
            raise NotImplementedError("only 2-D")
        return x

    assert stub_parts(partial) == []


def test_check_without_an_installed_answer_never_runs_the_reference(capsys):
    course.check("welcome.sigmoid")
    assert "not attempted yet (run the exercise cell above first)" in capsys.readouterr().out


def test_hints_are_revealed_one_tier_per_call(capsys, monkeypatch):
    ex = registry.get("welcome.sigmoid")
    monkeypatch.setitem(registry._EXERCISES, ex.id, registry.Exercise(ex.id, ex.target, "goal", ex.check,
                                                                     hints=("idea", "formula", "code")))
    monkeypatch.setattr(course.runner, "_hints_shown", course.runner.HintsShown())
    for tier in ("idea", "formula", "code", "code"):
        course.hint("welcome.sigmoid")
        assert tier in capsys.readouterr().out
    course.hint("welcome.sigmoid", 1)
    assert "hint 1/3 for welcome.sigmoid: idea" in capsys.readouterr().out


def test_wrong_answer_shows_expected_got_error_and_input():
    course.exercise("welcome.sigmoid")(lambda x: 1 / (1 + np.exp(x)))
    with pytest.raises(CheckFailed) as info:
        course.check("welcome.sigmoid")
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    for part in ("max error", "expected:", "got:", "input x:"):
        assert part in message


@pytest.mark.parametrize("wrong, reason", [
    (lambda x: (1 / (1 + np.exp(-x))).astype(np.float64), "returned float64"),  # loses float32
    (lambda x: 1 / (1 + np.exp(-x)), "overflow"),  # correct values, but exp overflows on large |x|
    (lambda x: good_sigmoid(np.ascontiguousarray(x)).reshape(-1), "shape"),  # flattens
])
def test_subtly_wrong_answers_fail(wrong, reason):
    course.exercise("welcome.sigmoid")(wrong)
    with pytest.raises(CheckFailed, match=reason):
        course.check("welcome.sigmoid")


def test_learner_exception_is_reported_with_its_traceback():
    @course.exercise("welcome.sigmoid")
    def broken(x):
        return x.no_such_attribute

    with pytest.raises(LearnerError) as info:
        course.check("welcome.sigmoid")
    assert "AttributeError" in str(info.value) and "no_such_attribute" in str(info.value)
    assert "in broken" in str(info.value)


def test_unknown_exercise_lists_the_chapter():
    with pytest.raises(KeyError, match="welcome.sigmoid"):
        course.exercise("welcome.nope")


@pytest.fixture
def toy_library(monkeypatch):
    """A fake needle module with a function re-exported elsewhere and a class, registered as exercises."""
    mod = types.ModuleType("needle._toy")
    reexport = types.ModuleType("needle._toy_reexport")

    def double(x):
        return 2 * x

    class Op:
        def compute(self, x):
            return x + 1

        def user(self, x):
            return double(x)

    mod.double, mod.Op = double, Op
    reexport.double = double
    monkeypatch.setitem(sys.modules, "needle._toy", mod)
    monkeypatch.setitem(sys.modules, "needle._toy_reexport", reexport)
    ids = {"toy.double": "needle._toy:double", "toy.compute": "needle._toy:Op.compute", "toy.op": "needle._toy:Op"}
    for exercise_id, target in ids.items():
        monkeypatch.setitem(registry._EXERCISES, exercise_id,
                            registry.Exercise(exercise_id, target, "hint", lambda impl: 1))
    return mod, reexport


def test_function_is_rebound_in_every_reexporting_module(toy_library):
    mod, reexport = toy_library
    reference = mod.double
    course.exercise("toy.double")(lambda x: 3 * x)
    assert mod.double(1) == 3 and reexport.double(1) == 3
    course.reset()
    assert mod.double is reference and reexport.double is reference


def test_method_install_keeps_the_class_and_reset_restores(toy_library):
    mod, _ = toy_library
    Op, instance = mod.Op, mod.Op()
    course.exercise("toy.compute")(lambda self, x: x + 100)
    assert mod.Op is Op and instance.compute(1) == 101
    course.reset()
    assert instance.compute(1) == 2


def test_class_install_copies_methods_and_reset_removes_new_ones(toy_library):
    mod, _ = toy_library

    @course.exercise("toy.op")
    class Op:
        def compute(self, x):
            return x - 1

        def extra(self):
            return "mine"

    instance = mod.Op()
    assert isinstance(instance, mod.Op) and instance.compute(5) == 4 and instance.extra() == "mine"
    course.reset()
    assert instance.compute(5) == 6 and not hasattr(instance, "extra")


def test_a_method_target_accepts_a_class_that_defines_it(toy_library):
    mod, _ = toy_library

    @course.exercise("toy.compute")
    class Mine:
        def compute(self, x):
            return 0

    assert mod.Op().compute(9) == 0


def test_reinstalling_one_exercise_keeps_the_others(toy_library):
    mod, _ = toy_library
    course.exercise("toy.double")(lambda x: 3 * x)
    course.exercise("toy.compute")(lambda self, x: -x)
    course.exercise("toy.compute")(lambda self, x: -2 * x)
    assert mod.double(1) == 3 and mod.Op().compute(1) == -2
    install.uninstall("toy.compute")
    assert mod.Op().compute(1) == 2 and mod.double(1) == 3


def test_every_registered_exercise_has_a_resolvable_target_and_a_hint():
    for ex in registry.all_exercises():
        owner, attr = install.resolve(ex.target)
        assert attr and ex.hint and callable(ex.check), ex.id


def test_exercises_lists_every_id_or_one_chapters():
    every, autodiff = course.exercises(), course.exercises("autodiff")
    assert autodiff and all(e.startswith("autodiff.") for e in autodiff)
    assert set(autodiff) < set(every) and len(set(every)) == len(every)
    assert {e.split(".")[0] for e in every} >= {"welcome", "autodiff", "nn_library", "ndarray", "cnn"}
    assert course.exercises("no_such_chapter") == []


def test_importing_the_course_without_ipython_registers_nothing(monkeypatch):
    from needle.course import _register_in_running_ipython

    monkeypatch.setitem(sys.modules, "IPython", None)  # `from IPython import ...` now raises ImportError
    _register_in_running_ipython()
