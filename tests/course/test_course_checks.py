"""Every registered check passes needle's own reference, reports a stub as "not implemented yet", and fails wrong code."""
from typing import Any, Callable

import pytest

import needle as ndl
from needle import course
from needle.course import install, registry
from needle.course.errors import CheckFailed

PY_EXERCISES = [e.id for e in registry.all_exercises() if e.language == "python"]


def _nudge(value: Any) -> Any:
    """A slightly wrong version of a result (numbers, arrays, Tensors, NDArrays, tuples of them)."""
    if isinstance(value, tuple):
        return tuple(_nudge(v) for v in value)
    if isinstance(value, ndl.Tensor):
        return ndl.Tensor(value.numpy() * 1.01 + 0.01, dtype=value.dtype, requires_grad=value.requires_grad)
    return value * 1.01 + 0.01


def wrong_version(exercise: registry.Exercise) -> Callable:
    """A plausible mistake for each kind of exercise."""
    ref = install.reference(exercise.target)
    if exercise.id == "autodiff.find_topo_sort":
        return lambda nodes: list(reversed(ref(nodes)))
    if exercise.id == "ml_refresher.add":
        return lambda x, y: x - y
    if exercise.id.endswith("_epoch") and exercise.chapter == "ml_refresher":
        return lambda *args, **kwargs: None  # forgets to update the parameters
    if exercise.id == "autodiff.compute_gradient_of_variables":
        return lambda output, out_grad: None  # stores no gradients
    if exercise.target.endswith(".gradient"):
        return lambda self, out_grad, node: tuple(g * 1.1 for g in ref(self, out_grad, node)) \
            if isinstance(ref(self, out_grad, node), tuple) else ref(self, out_grad, node) * 1.1
    return lambda *args, **kwargs: _nudge(ref(*args, **kwargs))


def stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet: the goal")


@pytest.mark.parametrize("exercise_id", PY_EXERCISES)
def test_reference_passes(exercise_id, capsys):
    course.exercise(exercise_id)(install.reference(registry.get(exercise_id).target))
    course.check(exercise_id)
    assert capsys.readouterr().out.startswith(f"✓ {exercise_id}:")


@pytest.mark.parametrize("exercise_id", PY_EXERCISES)
def test_stub_is_not_attempted_and_keeps_the_reference(exercise_id, capsys):
    target = registry.get(exercise_id).target
    before = install.reference(target)
    course.exercise(exercise_id)(stub)
    assert install.installed(exercise_id) is None and install.resolve(target) and install.reference(target) is before
    course.check(exercise_id)  # does not raise: Run All goes on
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"◦ {exercise_id}: not attempted yet"), out


@pytest.mark.parametrize("exercise_id", PY_EXERCISES)
def test_wrong_code_fails(exercise_id):
    course.exercise(exercise_id)(wrong_version(registry.get(exercise_id)))
    with pytest.raises(CheckFailed):
        course.check(exercise_id)


def test_a_check_never_runs_the_reference_when_nothing_is_installed(capsys):
    for exercise_id in PY_EXERCISES:
        course.check(exercise_id)
        assert "not attempted yet (run the exercise cell above first)" in capsys.readouterr().out


def test_a_bug_in_a_dependency_fails_only_its_own_check(capsys):
    """One bug, one failure: softmax_loss is checked with needle's Log, not the learner's wrong one."""
    course.exercise("autodiff.Log.compute")(lambda self, a: ndl.array_api.log(a) + 1)
    course.exercise("autodiff.softmax_loss")(install.reference("needle.apps.simple_ml:softmax_loss"))
    course.check("autodiff.softmax_loss")
    assert capsys.readouterr().out.startswith("✓ autodiff.softmax_loss")
    with pytest.raises(CheckFailed):
        course.check("autodiff.Log.compute")
    assert course.installed_ids() == ["autodiff.Log.compute", "autodiff.softmax_loss"]  # both still installed


def test_op_compute_check_sees_strided_inputs():
    seen = []
    ref = install.reference("needle.ops.ops_mathematic:EWiseDiv.compute")

    @course.exercise("autodiff.EWiseDiv.compute")
    def compute(self, a, b):
        seen.append(a.is_compact())
        return ref(self, a, b)

    course.check("autodiff.EWiseDiv.compute")
    assert True in seen and False in seen


def test_a_compute_that_only_works_on_compact_inputs_fails():
    @course.exercise("autodiff.Reshape.compute")
    def compute(self, a):
        if not a.is_compact():
            raise ValueError("reshape of a non-compact array")
        return ndl.array_api.reshape(a, self.shape)

    with pytest.raises(CheckFailed, match="ValueError"):
        course.check("autodiff.Reshape.compute")


@pytest.mark.parametrize("exercise_id", [e for e in PY_EXERCISES if e.startswith("autodiff.") and e.endswith(".gradient")])
def test_a_right_gradient_computed_outside_the_graph_fails(exercise_id):
    """Numerically right but built in numpy: it could not be differentiated again, so the check rejects it."""
    ref = install.reference(registry.get(exercise_id).target)

    def detached(self, out_grad, node):
        grads = ref(self, out_grad, node)
        grads = grads if isinstance(grads, tuple) else (grads,)
        detached_grads = tuple(ndl.Tensor(g.numpy(), dtype=g.dtype) for g in grads)
        return detached_grads if len(detached_grads) > 1 else detached_grads[0]

    course.exercise(exercise_id)(detached)
    with pytest.raises(CheckFailed, match="new leaf Tensor"):
        course.check(exercise_id)
