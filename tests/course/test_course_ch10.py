"""Chapter 10 checks: each passes needle's reference and the textbook's solution, reports a stub as not attempted, and
fails the classic mistakes with a message that names the exercise. The ring check starts real MPI processes."""
import linecache
from pathlib import Path

import nbformat
import numpy as np
import pytest

from needle import course
from needle.autograd import Tensor, compute_gradient_of_variables
from needle.course import install, registry, workbook
from needle.course.errors import CheckFailed

pytest.importorskip("mpi4py", reason="the mpi extra (pip install -e '.[mpi]') is not installed")

IDS = course.exercises("large_models")
TEXTBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "10_large_models.ipynb"


@pytest.fixture(autouse=True)
def clean_install():
    course.reset()
    yield
    course.reset()


def stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet: the goal")


# --- planted mistakes ---------------------------------------------------------------------------------------------

def _recompute(self, node, restore_random: bool = True):
    inputs, params = node.inputs[: self.n_inputs], node.inputs[self.n_inputs :]
    leaves = [Tensor.make_const(x.realize_cached_data(), requires_grad=x.requires_grad) for x in inputs]
    state = np.random.get_state()
    if restore_random:
        np.random.set_state(self.random_state)
    output = self.fn(*leaves)
    np.random.set_state(state)
    return leaves, list(params), output


def gradient_not_detached(self, out_grad, node):
    leaves, params, output = _recompute(self, node)
    compute_gradient_of_variables(output, out_grad)
    return tuple(x.grad for x in leaves + params)


def gradient_with_fresh_dropout_masks(self, out_grad, node):
    leaves, params, output = _recompute(self, node, restore_random=False)
    compute_gradient_of_variables(output, out_grad)
    return tuple(x.grad.detach() for x in leaves + params)


def gradient_of_the_inputs_only(self, out_grad, node):
    leaves, params, output = _recompute(self, node)
    compute_gradient_of_variables(output, out_grad)
    return tuple(x.grad.detach() for x in leaves) + (None,) * len(params)


def ring_without_allgather(comm, x):
    n, r = comm.Get_size(), comm.Get_rank()
    out = np.array(x, copy=True)
    chunks = np.array_split(out.reshape(-1), n)
    for step in range(n - 1):
        send, recv = chunks[(r - step) % n], chunks[(r - step - 1) % n]
        incoming = np.empty_like(recv)
        comm.Sendrecv(np.ascontiguousarray(send), dest=(r + 1) % n, recvbuf=incoming, source=(r - 1) % n)
        recv += incoming
    return out


def ring_in_place(comm, x):
    n, r = comm.Get_size(), comm.Get_rank()
    chunks = np.array_split(x.reshape(-1), n)
    for phase in ("reduce", "gather"):
        for step in range(n - 1):
            k = (r - step) % n if phase == "reduce" else (r - step + 1) % n
            send, recv = chunks[k], chunks[(k - 1) % n]
            incoming = np.empty_like(recv)
            comm.Sendrecv(np.ascontiguousarray(send), dest=(r + 1) % n, recvbuf=incoming, source=(r - 1) % n)
            if phase == "reduce":
                recv += incoming
            else:
                recv[...] = incoming
    return x


def ring_by_collective(comm, x):
    return comm.allreduce(x)


MISTAKES = [
    ("large_models.CheckpointOp.gradient", gradient_not_detached, "detach it"),
    ("large_models.CheckpointOp.gradient", gradient_with_fresh_dropout_masks, "max error"),
    ("large_models.CheckpointOp.gradient", gradient_of_the_inputs_only, "parameters included"),
    ("large_models.ring_allreduce", ring_without_allgather, "against MPI.Allreduce"),
    ("large_models.ring_allreduce", ring_in_place, "changed its input array"),
    ("large_models.ring_allreduce", ring_by_collective, "comm.allreduce is not available here"),
]


def test_every_exercise_has_planted_mistakes():
    assert sorted(IDS) == sorted({m[0] for m in MISTAKES})


@pytest.mark.parametrize("exercise_id", IDS)
def test_reference_passes(exercise_id, capsys):
    course.exercise(exercise_id)(install.reference(registry.get(exercise_id).target))
    course.check(exercise_id)
    assert f"✓ {exercise_id}:" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id", IDS)
def test_stub_keeps_the_reference_and_is_not_attempted(exercise_id, capsys):
    reference = install.reference(registry.get(exercise_id).target)
    assert course.exercise(exercise_id)(stub) is reference and course.installed_ids() == []
    course.check(exercise_id)
    assert f"◦ {exercise_id}: not attempted yet" in capsys.readouterr().out


@pytest.mark.parametrize("exercise_id, wrong, message", MISTAKES, ids=[m[1].__name__ for m in MISTAKES])
def test_a_classic_mistake_fails(exercise_id, wrong, message):
    course.exercise(exercise_id)(wrong)
    with pytest.raises(CheckFailed) as failure:
        course.check(exercise_id)
    assert exercise_id in str(failure.value) and message in str(failure.value)


# --- the textbook's own solutions ---------------------------------------------------------------------------------

def _run_cells(sources, namespace):
    """exec each source as a notebook would: with its text in linecache, so inspect.getsource finds it."""
    for i, source in enumerate(sources):
        name = f"<cell {i}>"
        linecache.cache[name] = (len(source), None, source.splitlines(True), name)
        exec(compile(source, name, "exec"), namespace)


def _notebook():
    nb = nbformat.read(TEXTBOOK, as_version=4)
    return nb.cells[1].source, [c.source for c in nb.cells if "exercise" in c.metadata.get("tags", [])]


def test_textbook_solutions_pass_and_are_installed(capsys):
    setup, exercises = _notebook()
    namespace = {}
    _run_cells([setup] + exercises, namespace)
    assert sorted(course.installed_ids()) == sorted(IDS)
    for exercise_id in IDS:
        course.check(exercise_id)
    out = capsys.readouterr().out
    assert all(f"✓ {i}:" in out for i in IDS), out


def test_workbook_stubs_keep_the_reference_and_never_pass(capsys):
    setup, exercises = _notebook()
    namespace = {}
    _run_cells([setup] + [workbook.stub_source(s) for s in exercises], namespace)
    assert course.installed_ids() == []
    for exercise_id in IDS:
        course.check(exercise_id)
    out = capsys.readouterr().out
    assert "✓" not in out
    assert all(f"◦ {i}: not attempted yet" in out for i in IDS)
