"""needle/course/runner.py: what course.check and course.hint say, exactly, for each way a learner's code can go."""
import sys
import types

import pytest

from needle import course
from needle.course import registry, runner
from needle.course.errors import CheckFailed, LearnerError


def _stub(*args):
    raise NotImplementedError("a stub")


@pytest.fixture
def toy(monkeypatch):
    """A fake needle module (a function `helper`, a class `Op`) and exercises on it, in a private registry."""
    mod = types.ModuleType("needle._toy_runner")

    def helper(x):
        return x + 1

    class Op:
        def compute(self, x):
            return x * 2

        def other(self, x):
            return x - 1

    mod.helper, mod.Op = helper, Op
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    registry.all_exercises()
    monkeypatch.setattr(registry, "_EXERCISES", dict(registry._EXERCISES))
    monkeypatch.setattr(runner, "_last_status", {})
    monkeypatch.setattr(runner, "_hints_shown", runner.HintsShown())

    def add(exercise_id, target, check=lambda impl: 1, **kwargs):
        registry._EXERCISES[exercise_id] = registry.Exercise(exercise_id, f"{mod.__name__}:{target}", "the goal",
                                                             check, **kwargs)

    return mod, add


def test_hints_come_one_tier_per_call_and_a_tier_can_be_asked_for(toy, capsys):
    _, add = toy
    add("toy.f", "helper", hints=("idea", "formula", "code"))
    said = []
    for tier in (None, None, None, None, 0, 99, 2):
        course.hint("toy.f", tier)
        said.append(capsys.readouterr().out)
    again = "  (run course.hint(\"toy.f\") again for hint {})\n"
    last = "  (that was the last hint)\n"
    assert said == ["hint 1/3 for toy.f: idea\n" + again.format(2), "hint 2/3 for toy.f: formula\n" + again.format(3),
                    "hint 3/3 for toy.f: code\n" + last, "hint 3/3 for toy.f: code\n" + last,
                    "hint 1/3 for toy.f: idea\n" + again.format(2), "hint 3/3 for toy.f: code\n" + last,
                    "hint 2/3 for toy.f: formula\n" + again.format(3)]
    add("toy.g", "helper")  # no tiers: the goal is the one hint
    course.hint("toy.g")
    assert capsys.readouterr().out == "hint 1/1 for toy.g: the goal\n" + last


def test_a_crash_shows_the_learners_last_eight_frames(toy):
    _, add = toy
    add("toy.f", "helper", check=lambda impl: impl(0))
    source = "def f0(n):\n    return {}['missing']\n" + "".join(
        f"def f{i}(n):\n    return f{i - 1}(n)\n" for i in range(1, 12))
    cell = {}
    exec(compile(source, "learner_cell.py", "exec"), cell)  # twelve frames of the learner's own
    course.exercise("toy.f")(cell["f11"])
    with pytest.raises(LearnerError) as info:
        course.check("toy.f")
    text = str(info.value)
    assert text.startswith("toy.f: your code raised KeyError:\n") and text.endswith("KeyError: 'missing'\n")
    assert text.count("File ") == 8 and "in f7" in text and "in f8" not in text and "/needle/course/" not in text


def test_a_stub_method_the_learner_did_not_write_yet_is_named(toy):
    """Only the exercise's own method is the learner's code: a stub of another exercise, even one their class
    carries, is named as the thing to write first."""
    mod, add = toy
    add("toy.compute", "Op.compute", check=lambda impl: impl.compute(mod.Op(), 3))

    def other(self, x):
        raise NotImplementedError("another exercise's stub")

    mod.Op.other = other

    @course.exercise("toy.compute")
    class Mine:
        def compute(self, x):
            return self.other(x) * 2

    Mine.other = other
    with pytest.raises(LearnerError, match=r"^toy.compute: it uses Op.other, which still raises NotImplementedError "
                                           r"\(a stub\): write that first$"):
        course.check("toy.compute")


def test_a_module_function_stub_is_named_without_a_class(toy):
    mod, add = toy
    mod.helper = _stub  # another exercise's stub, reached from the learner's code
    add("toy.op", "Op", check=lambda impl: impl().compute(3))

    @course.exercise("toy.op")
    class Op:
        def compute(self, x):
            return mod.helper(x)

    with pytest.raises(LearnerError, match=r"^toy.op: it uses _stub, which still raises NotImplementedError"):
        course.check("toy.op")


@pytest.mark.parametrize("target", ["Op", "Op.compute"])
def test_the_learners_own_not_implemented_error_is_their_unfinished_part(toy, target):
    mod, add = toy
    add("toy.x", target, check=lambda impl: impl.compute(mod.Op(), 3))

    @course.exercise("toy.x")
    class Op:
        def compute(self, x):
            raise NotImplementedError("only 2-D")

    with pytest.raises(LearnerError) as info:
        course.check("toy.x")
    assert str(info.value) == ("toy.x: your code raised NotImplementedError: only 2-D\n"
                               "a part of it is still unfinished; course.hint(\"toy.x\") if you are stuck")


def test_a_check_sees_only_the_learners_code_of_this_exercise_and_of_those_it_uses(toy):
    mod, add = toy
    add("toy.helper", "helper", check=lambda impl: 1)
    add("toy.alone", "Op.compute", check=lambda impl: mod.helper(1))
    add("toy.user", "Op.other", check=lambda impl: mod.helper(1), uses=("toy.helper",))
    course.exercise("toy.helper")(lambda x: x + 100)
    course.exercise("toy.alone")(lambda self, x: x)
    course.exercise("toy.user")(lambda self, x: x)
    assert runner.run("toy.alone") == 2  # needle's helper: 1 + 1
    assert runner.run("toy.user") == 101  # the learner's helper, used on purpose
    assert mod.helper(1) == 101  # and every installed exercise is back afterwards


def test_a_failure_points_at_the_used_exercises_that_fail_or_were_not_checked(toy):
    mod, add = toy

    def check_user(impl):
        raise CheckFailed("wrong")

    add("toy.helper", "helper", check=lambda impl: 1)
    add("toy.user", "Op.other", check=check_user, uses=("toy.helper",))
    course.exercise("toy.user")(lambda self, x: x)
    with pytest.raises(CheckFailed) as info:  # the helper is needle's own: nothing to point at
        course.check("toy.user")
    assert str(info.value) == "toy.user: wrong"
    course.exercise("toy.helper")(lambda x: x)
    with pytest.raises(CheckFailed) as info:
        course.check("toy.user")
    assert str(info.value) == "toy.user: wrong\n  note: this uses your toy.helper; run its check too"
    runner._last_status["toy.helper"] = "failed"
    with pytest.raises(CheckFailed) as info:
        course.check("toy.user")
    assert str(info.value) == ("toy.user: wrong\n  note: this uses your toy.helper, which fails its own check: "
                               "fix that one first")
    runner._last_status["toy.helper"] = "passed"
    with pytest.raises(CheckFailed) as info:
        course.check("toy.user")
    assert str(info.value) == "toy.user: wrong"
    assert runner._last_status["toy.user"] == "failed"


def test_in_a_notebook_the_outcome_travels_in_the_outputs_metadata(toy, monkeypatch, capsys):
    import IPython
    import IPython.display

    _, add = toy
    add("toy.f", "helper", check=lambda impl: 4)
    published = []
    kernel = types.SimpleNamespace(kernel=object())
    monkeypatch.setattr(IPython, "get_ipython", lambda: kernel)
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, metadata: published.append((data, metadata)))
    course.exercise("toy.f")(lambda x: x)
    course.check("toy.f")
    course.reset()
    course.check("toy.f")
    assert published == [
        ({"text/plain": "✓ toy.f: 4 cases passed"},
         {runner.OUTCOME_KEY: {"exercise": "toy.f", "status": "passed", "cases": 4}}),
        ({"text/plain": runner._not_attempted("toy.f")},
         {runner.OUTCOME_KEY: {"exercise": "toy.f", "status": "not attempted"}}),
    ]
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())  # a terminal IPython: no kernel
    course.check("toy.f")
    monkeypatch.setitem(sys.modules, "IPython", None)  # no IPython at all
    course.check("toy.f")
    assert capsys.readouterr().out == runner._not_attempted("toy.f") + "\n" + runner._not_attempted("toy.f") + "\n"
    assert len(published) == 2


def test_check_and_run_hide_their_frames_from_pytest(toy):
    _, add = toy
    add("toy.f", "helper", check=lambda impl: (_ for _ in ()).throw(CheckFailed("wrong")))
    course.exercise("toy.f")(lambda x: x)
    with pytest.raises(CheckFailed) as info:
        course.check("toy.f")
    hidden = {}
    tb = info.value.__traceback__
    while tb is not None:
        hidden[tb.tb_frame.f_code.co_name] = tb.tb_frame.f_locals.get("__tracebackhide__")
        tb = tb.tb_next
    assert hidden["check"] is True and hidden["run"] is True
