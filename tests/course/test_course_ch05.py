"""Chapter 05: the learner's C++ kernels over cpu() (device_kernels), tried first in a child process (sandbox).

Each check catches planted wrong kernels (a crash, an abort, a hang, a wrong stride, an uninitialised out, ...),
the workbook's stubs never pass and leave needle's kernels in place, and installs are undone by course.reset()."""
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest

from needle import course
from needle.backend_ndarray import ndarray as nd
from needle.backend_ndarray import ndarray_backend_cpu as needle_cpu
from needle.course import cpp_magic, device_kernels, registry, runner, workbook
from needle.course.errors import CheckFailed, NotImplementedYet

IPython = pytest.importorskip("IPython")
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "05_cpu_backend.ipynb"


def _cells() -> dict[str, str]:
    """The textbook's %%needle_cpp cells, keyed by their first exercise id."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    return {c.source.split("\n", 1)[0].split()[1]: c.source for c in nb.cells
            if c.cell_type == "code" and c.source.startswith("%%needle_cpp")}


CELLS = _cells()


def _ids(source: str) -> list[str]:
    """The exercise ids on a cell's %%needle_cpp line."""
    return source.split("\n", 1)[0].split()[1:]


def cell(exercise_id: str, *replacements: tuple[str, str]) -> str:
    source = CELLS[exercise_id]
    for old, new in replacements:
        assert old in source, old
        source = source.replace(old, new)
    return source


@pytest.fixture
def shell(ipython, build_cache, monkeypatch):
    monkeypatch.setenv("NEEDLE_CACHE", str(build_cache))
    course.reset()
    ipython.run_cell("%load_ext needle.course\nfrom needle import course", store_history=False)
    yield ipython
    course.reset()
    assert nd.cpu().mod is needle_cpu


def run(shell, source):
    return shell.run_cell(source, store_history=False).error_in_exec


def outcome(exercise_id):
    """None when the check passes, else the exception it raised."""
    try:
        runner.run(exercise_id)
    except (CheckFailed, NotImplementedYet) as exc:
        return exc
    return None


# ---- the overlay, without a compiler ----


def test_an_installed_kernel_is_what_cpu_uses_and_reset_restores_needles():
    calls = []

    def my_compact(a, out, shape, strides, offset):
        calls.append(tuple(shape))
        needle_cpu.compact(a, out, shape, strides, offset)

    course.reset()
    ex = registry.get("cpu_backend.compact")
    x = nd.array(np.arange(12, dtype=np.float32).reshape(3, 4), device=nd.cpu())
    try:
        course.install.install(ex, {"compact": my_compact})
        assert nd.cpu().mod is not needle_cpu and nd.cpu().mod.ewise_add is needle_cpu.ewise_add
        np.testing.assert_array_equal(x.permute((1, 0)).compact().numpy(), np.arange(12).reshape(3, 4).T)
        assert calls == [(4, 3)]
        assert device_kernels.learner_kernel("cpu", "compact") is my_compact
        x.astype("float64").permute((1, 0)).compact()  # float64 buffers keep needle's kernel
        assert calls == [(4, 3)]
    finally:
        course.reset()
    assert nd.cpu().mod is needle_cpu and device_kernels.learner_kernel("cpu", "compact") is None
    x.permute((1, 0)).compact()
    assert calls == [(4, 3)]


def test_a_course_matmul_hides_needles_strided_path_until_reset():
    seen = []

    def my_matmul(a, b, out, m, n, p):
        seen.append((m, n, p))
        needle_cpu.matmul(a, b, out, m, n, p)

    course.reset()
    try:
        course.install.install(registry.get("cpu_backend.matmul"), {"matmul": my_matmul})
        assert not hasattr(nd.cpu().mod, "matmul_strided")
        a = nd.array(np.ones((3, 5), dtype=np.float32), device=nd.cpu())
        np.testing.assert_allclose((a @ a.permute((1, 0))).numpy(), np.full((3, 3), 5.0))
        assert seen == [(3, 5, 3)]
        course.install.install(registry.get("cpu_backend.reductions"), {"reduce_sum": needle_cpu.reduce_sum})
        assert not hasattr(nd.cpu().mod, "reduce_sum_axis") and hasattr(nd.cpu().mod, "reduce_max_axis")
        course.install.uninstall("cpu_backend.matmul")  # the other install survives
        assert hasattr(nd.cpu().mod, "matmul_strided") and not hasattr(nd.cpu().mod, "reduce_sum_axis")
    finally:
        course.reset()
    assert hasattr(nd.cpu().mod, "matmul_strided") and hasattr(nd.cpu().mod, "reduce_sum_axis")


def test_every_chapter_exercise_has_a_textbook_cell_and_a_concept_hint():
    ids = course.exercises("cpu_backend")
    assert ids == sorted(["cpu_backend.compact", "cpu_backend.ewise_setitem", "cpu_backend.scalar_setitem",
                          "cpu_backend.elementwise", "cpu_backend.reductions", "cpu_backend.matmul",
                          "cpu_backend.matmul_tiled"])
    in_cells = {i for source in CELLS.values() for i in _ids(source)}
    assert in_cells == set(ids)
    for i in ids:
        hint = registry.get(i).hint
        assert not [code for code in ("->", "ptr[", "+=", "for (", "return ", "std::") if code in hint], hint


# ---- the textbook's cells: solutions pass, stubs never do ----


def test_solutions_pass_install_into_cpu_and_reset(shell, capsys):
    assert run(shell, CELLS["cpu_backend.compact"]) is None
    assert "compiled and installed: cpu_backend.compact, cpu_backend.ewise_setitem, cpu_backend.scalar_setitem" \
        in capsys.readouterr().out
    for i in ("cpu_backend.compact", "cpu_backend.ewise_setitem", "cpu_backend.scalar_setitem"):
        assert outcome(i) is None
    yours = device_kernels.learner_kernel("cpu", "compact")
    assert yours is not None and yours is not needle_cpu.compact
    device_kernels.reset_calls()
    x = nd.array(np.arange(24, dtype=np.float32).reshape(2, 3, 4), device=nd.cpu())
    np.testing.assert_array_equal(x.permute((2, 0, 1))[1:, :, ::2].compact().numpy(),
                                  np.arange(24).reshape(2, 3, 4).transpose(2, 0, 1)[1:, :, ::2])
    assert device_kernels.calls() == {"compact": 1}
    with pytest.raises(TypeError):  # None where a buffer belongs: a Python error, not a crash
        nd.cpu().compact(None, x._handle, (2,), (1,), 0)
    course.reset()
    assert nd.cpu().mod is needle_cpu and outcome("cpu_backend.compact") is not None


@pytest.mark.parametrize("exercise_id", sorted(CELLS))
def test_the_workbook_stub_never_passes_and_keeps_needles_kernels(shell, capsys, exercise_id):
    stub = workbook.stub_source(CELLS[exercise_id])
    assert "### BEGIN SOLUTION" not in stub and "needle_course::NotImplemented" in stub
    assert run(shell, stub) is None
    assert "still a stub" in capsys.readouterr().out
    assert nd.cpu().mod is needle_cpu  # nothing installed: later cells run on needle's kernels
    for i in _ids(stub):
        error = outcome(i)
        assert isinstance(error, NotImplementedYet), (i, error)


# ---- planted bugs: each caught by its check ----


def test_a_segfault_and_an_abort_are_failed_checks_and_never_loaded(shell, capsys):
    source = cell("cpu_backend.compact",
                  ("[&](size_t k, int64_t pos) { out->ptr[k] = a.ptr[pos]; }",
                   "[&](size_t k, int64_t pos) { *(volatile float*)nullptr = a.ptr[pos]; out->ptr[k] = 0; }"),
                  ("[&](size_t, int64_t pos) { out->ptr[pos] = val; }", "[&](size_t, int64_t) { std::abort(); }"))
    assert run(shell, source) is None  # the notebook's kernel lives on
    err = capsys.readouterr().err
    assert "cpu_backend.compact: your code crashed" in err and "SIGSEGV" in err
    compact, ewise, scalar = (outcome(f"cpu_backend.{k}") for k in ("compact", "ewise_setitem", "scalar_setitem"))
    assert isinstance(compact, CheckFailed) and "SIGSEGV" in str(compact) and "compact() of a view with shape" in str(compact)
    assert isinstance(scalar, CheckFailed) and "SIGABRT" in str(scalar) and "setitem of the scalar" in str(scalar)
    assert ewise is None  # its trial ran in a fresh child and passed, but its module also holds code that crashed:
    assert nd.cpu().mod is needle_cpu  # so nothing of the cell was loaded
    assert cpp_magic.build_library(source.split("\n", 1)[1], device=True)[1] not in sys.modules


def test_an_endless_loop_times_out_as_a_failed_check(shell, monkeypatch):
    monkeypatch.setenv("NEEDLE_TRIAL_TIMEOUT", "4")
    source = cell("cpu_backend.reductions",
                  ("scalar_t best = block[0];", "volatile bool spin = true;\n    while (spin) {}\n    scalar_t best = block[0];"))
    assert run(shell, source) is None
    error = outcome("cpu_backend.reductions")
    assert isinstance(error, CheckFailed) and "did not finish within 4 s" in str(error) and "max(" in str(error)
    assert nd.cpu().mod is needle_cpu


@pytest.mark.parametrize("exercise_id, replacements, message", [
    ("cpu_backend.compact",  # strides walked in the wrong order
     [("pos += int64_t(index[d]) * strides[d];", "pos += int64_t(index[d]) * strides[shape.size() - 1 - d];")],
     "compact() of a view"),
    ("cpu_backend.compact",  # the view's offset ignored
     [("int64_t pos = offset;", "int64_t pos = 0;")], "compact() of a view"),
    ("cpu_backend.elementwise",  # maximum computed as a minimum
     [("case Op::maximum: return std::max(x, y);", "case Op::maximum: return std::min(x, y);")], "ewise_maximum"),
    ("cpu_backend.reductions",  # a maximum that starts from 0
     [("scalar_t best = block[0];", "scalar_t best = 0.0f;")], "max("),
    ("cpu_backend.matmul",  # out accumulated without being cleared first
     [("scalar_t total = 0.0f;\n      for (size_t k = 0; k < n; k++) total += a.ptr[i * n + k] * b.ptr[k * p + j];\n"
       "      out->ptr[i * p + j] = total;",
       "for (size_t k = 0; k < n; k++) out->ptr[i * p + j] += a.ptr[i * n + k] * b.ptr[k * p + j];")],
     "held 7.0 before|a @ b"),  # fresh memory often holds old numbers already
    ("cpu_backend.matmul_tiled",  # tiles of b indexed as if b were m/TILE tiles tall
     [("b.ptr + (k * pt + j) * T2", "b.ptr + (j * nt + k) * T2")], "a @ b"),
])
def test_a_wrong_kernel_fails_its_check_but_runs(shell, capsys, exercise_id, replacements, message):
    assert run(shell, cell(exercise_id, *replacements)) is None
    error = outcome(exercise_id)
    assert isinstance(error, CheckFailed) and any(m in str(error) for m in message.split("|")), error
    if "crashed" not in str(error):  # wrong but safe: installed, as a learner expects of a wrong solution
        assert "compiled and installed" in capsys.readouterr().out and nd.cpu().mod is not needle_cpu


# ---- the build ----


def test_two_kernels_building_the_same_cell_at_once_both_get_a_working_module(build_cache, monkeypatch):
    monkeypatch.setenv("NEEDLE_CACHE", str(build_cache / "race"))
    source = CELLS["cpu_backend.matmul"].split("\n", 1)[1] + "\n// race\n"
    results, errors = [], []

    def build():
        try:
            results.append(cpp_magic.build_library(source, device=True))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2 and results[0] == results[1]
    library, name = results[0]
    assert sorted(p.name for p in library.parent.iterdir()) == [library.name]  # no temporary files left
    probe = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location(sys.argv[2], sys.argv[1]); "
             "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); print(m.matmul.__name__)")
    proc = subprocess.run([sys.executable, "-c", probe, str(library), name], capture_output=True, text=True)
    assert proc.returncode == 0 and "matmul" in proc.stdout, proc.stderr


def test_a_half_finished_bundle_is_reported_and_not_installed(shell, capsys):
    source = cell("cpu_backend.elementwise", (
        "  for (size_t i = 0; i < a.size; i++) out->ptr[i] = Apply(op, a.ptr[i], 0.0f);",
        '  throw needle_course::NotImplemented("not implemented yet: the unary kernels");'))
    assert run(shell, source) is None
    assert "a part of it still throws NotImplemented" in capsys.readouterr().err
    error = outcome("cpu_backend.elementwise")
    assert isinstance(error, CheckFailed) and "still throws NotImplemented" in str(error) and "ewise_log" in str(error)
    assert nd.cpu().mod is needle_cpu  # later cells keep needle's kernels rather than meet a stub
