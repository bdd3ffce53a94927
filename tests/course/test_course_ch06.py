"""Chapter 06: the CUDA exercises. The textbook's cells pass their checks on the active CUDA device (cuda_sim() here);
the workbook's stubs compile and are never installed, and their checks say "not implemented"; a planted mistake
fails its check, with the simulator's report where it finds one; install and course.reset() swap the device's module.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import needle as ndl
from needle import course
from needle.backend_ndarray import ndarray as nd
from needle.backend_ndarray.cuda_sim_build import CudaCompileError
from needle.course import cuda_exercises, registry, runner
from needle.course.errors import CheckFailed, LearnerError, NotImplementedYet
from needle.course.workbook import exercise_ids, stub_source

pytestmark = pytest.mark.skipif(not ndl.cuda_sim().enabled(), reason="the CUDA simulator is not built")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "06_cuda_backend.ipynb"
IDS = course.exercises("cuda_backend")


def _cells() -> dict[str, str]:
    """exercise id -> the source of the textbook cell that installs it (the solution)."""
    out = {}
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        source = "".join(cell["source"])
        if "exercise" in cell.get("metadata", {}).get("tags", []):
            assert exercise_ids(source), source  # the workbook finds the cell's exercise
            for i in source.split("\n", 1)[0].split()[1:]:  # %%needle_cuda ID [ID ...]
                out[i] = source
    return out


CELLS = _cells()


def body(source: str) -> str:
    """A cell without its %%needle_cuda line."""
    return source.split("\n", 1)[1]


def run_cell(source: str) -> cuda_exercises.CellReport:
    first, rest = source.split("\n", 1)
    assert first.startswith("%%needle_cuda ")
    return cuda_exercises.install_cell(first.split()[1:], rest)


def planted(exercise_id: str, old: str, new: str) -> str:
    source = CELLS[exercise_id]
    assert old in source, f"{old!r} not in the cell of {exercise_id}"
    return source.replace(old, new, 1)


@pytest.fixture(autouse=True)
def clean_install():
    course.reset()
    cuda_exercises.reset_calls()
    yield
    course.reset()


def test_every_exercise_of_the_chapter_has_a_textbook_cell():
    assert sorted(CELLS) == sorted(IDS)
    assert len(IDS) == 7
    assert all(registry.get(i).language == "cuda" for i in IDS)


@pytest.mark.parametrize("exercise_id", IDS)
def test_the_textbook_solution_passes_its_check(exercise_id, capsys):
    run_cell(CELLS[exercise_id])
    course.check(exercise_id)
    assert f"✓ {exercise_id}" in capsys.readouterr().out
    assert cuda_exercises.calls(), "the check must run the learner's kernels"


@pytest.mark.parametrize("exercise_id", IDS)
def test_a_stub_compiles_is_not_installed_and_is_not_attempted(exercise_id, capsys):
    source = stub_source(CELLS[exercise_id])
    assert "### BEGIN SOLUTION" not in source and "NOT_IMPLEMENTED(" in source
    report = run_cell(source)  # compiles: the stub is valid CUDA for the simulator
    assert exercise_id in report.stubs and not report.installed
    assert cuda_exercises.overlay() is None, "a stub must leave needle's kernels in place"
    with pytest.raises(NotImplementedYet):
        runner.run(exercise_id)
    course.check(exercise_id)  # Run All goes on: one line, no error
    assert f"◦ {exercise_id}: not attempted yet (its cell still holds the stub" in capsys.readouterr().out


def test_a_check_before_the_cell_ran_is_not_attempted():
    with pytest.raises(NotImplementedYet, match="run the exercise cell above first"):
        runner.run("cuda_backend.matmul")


def test_the_workbook_holds_no_solution_line():
    for exercise_id, source in CELLS.items():
        solution_lines = [line.strip() for line in source.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
                          .splitlines() if len(line.strip()) > 12]
        stub = stub_source(source)
        for line in solution_lines:
            assert line not in stub, (exercise_id, line)


# one plausible mistake per exercise: (exercise id, text in the solution, replacement, what the failure says)
PLANTED = [
    ("cuda_backend.compact", "out[i] = a[position(i, meta, ndim, offset)]", "out[i] = a[position(i, meta, ndim, 0)]",
     "compact"),
    ("cuda_backend.compact", "offset += (i % meta[d]) * meta[ndim + d];", "offset += (i % meta[d]) * meta[d];",
     "compact"),
    ("cuda_backend.ewise_setitem", "out[position(i, meta, ndim, offset)] = a[i];", "out[i] = a[i];", "writing"),
    ("cuda_backend.scalar_setitem", "out[position(i, meta, ndim, offset)] = val;",
     "if (i < n - 1) out[position(i, meta, ndim, offset)] = val;", "writing"),
    ("cuda_backend.elementwise", "FOR_EACH_INDEX(i, n) out[i] = a[i] / val;", "FOR_EACH_INDEX(i, n) out[i] = val / a[i];",
     "scalar_div"),
    ("cuda_backend.elementwise", "FOR_EACH_INDEX(i, n) out[i] = a[i] >= b[i] ? 1.0f : 0.0f;",
     "FOR_EACH_INDEX(i, n) out[i] = a[i] > b[i] ? 1.0f : 0.0f;", "ewise_ge"),
    ("cuda_backend.elementwise", "FOR_EACH_INDEX(i, n) out[i] = a[i] + b[i];",  # no grid-stride loop
     "long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; if (i < n) out[i] = a[i] + b[i];",
     "larger|ewise_add"),
    ("cuda_backend.reductions", "float best = block[0];", "float best = 0.0f;", "max"),
    ("cuda_backend.reductions", "float total = 0.0f;\n", "float total = out[i];\n", "sum"),
    ("cuda_backend.matmul", "a[row * n + k] * b[k * p + col]", "a[row * n + k] * b[col * n + k]", "@|matmul"),
    ("cuda_backend.matmul", "if (row < m && col < p) {", "{", "out-of-bounds"),
    ("cuda_backend.matmul_shared", "    __syncthreads();\n    for (int k", "    for (int k", "order in which threads run"),
    ("cuda_backend.matmul_shared", "total += a_tile[ty][k] * b_tile[k][tx];\n    __syncthreads();",
     "total += a_tile[ty][k] * b_tile[k][tx];", "order in which threads run"),
    ("cuda_backend.matmul_shared", "(row < m && k0 + tx < n) ? a[row * n + k0 + tx] : 0.0f", "a[row * n + k0 + tx]",
     "out-of-bounds"),
]


@pytest.mark.parametrize("exercise_id, old, new, says", PLANTED, ids=lambda v: v if isinstance(v, str) and "." in v else None)
def test_a_planted_mistake_fails_its_check(exercise_id, old, new, says):
    run_cell(planted(exercise_id, old, new))
    with pytest.raises(CheckFailed, match=says):
        course.check(exercise_id)


def test_a_partly_written_bundle_installs_the_finished_kernels_and_stays_open(capsys):
    stub = 'NOT_IMPLEMENTED("not implemented yet (cuda_backend.elementwise)");'
    partly = stub_source(CELLS["cuda_backend.elementwise"]).replace(stub, "FOR_EACH_INDEX(i, n) out[i] = a[i] + b[i];", 1)
    report = run_cell(partly)
    assert report.partly and report.partly[0][0] == "cuda_backend.elementwise"
    assert cuda_exercises.overlay().learner_kernels() == ["ewise_add_f32"]
    with pytest.raises(LearnerError, match="still NOT_IMPLEMENTED: scalar_add_f32, ewise_mul_f32"):
        course.check("cuda_backend.elementwise")  # unfinished: never a pass
    assert "your ewise_add_f32: 2 cases passed" in capsys.readouterr().out


def test_install_swaps_the_device_module_and_reset_restores_it():
    device = cuda_exercises.active_device()
    needle_module = device.mod
    x = nd.array(np.arange(6, dtype=np.float32).reshape(2, 3), device=device)
    run_cell(CELLS["cuda_backend.reductions"])
    run_cell(CELLS["cuda_backend.matmul_shared"])
    overlay = cuda_exercises.overlay(device)
    assert overlay is not None and overlay.base is needle_module
    for hidden in ("reduce_sum_axis", "reduce_max_axis", "matmul_strided", "matmul_tiled"):
        assert not hasattr(device.mod, hidden), hidden  # NDArray takes the course's path through the learner's kernel
    np.testing.assert_allclose(x.sum(axis=1).numpy(), [3, 12])
    np.testing.assert_allclose((x @ x.permute((1, 0))).numpy(), [[5, 14], [14, 50]])
    assert {"reduce_sum_f32", "matmul_shared_f32"} <= set(cuda_exercises.calls())
    x64 = nd.array(np.ones((2, 3)), device=device, dtype="float64")
    np.testing.assert_allclose(x64.sum(axis=1).numpy(), [3, 3])  # float64 keeps needle's kernels
    course.reset()
    assert device.mod is needle_module and cuda_exercises.overlay(device) is None
    assert hasattr(device.mod, "matmul_strided")
    cuda_exercises.reset_calls()
    np.testing.assert_allclose(x.sum(axis=1).numpy(), [3, 12])
    assert not cuda_exercises.calls()


def test_running_a_cell_again_replaces_its_kernels_and_a_stub_puts_needles_back():
    wrong = planted("cuda_backend.matmul", "a[row * n + k] * b[k * p + col]", "2.0f * a[row * n + k] * b[k * p + col]")
    run_cell(wrong)
    with pytest.raises(CheckFailed):
        course.check("cuda_backend.matmul")
    run_cell(CELLS["cuda_backend.matmul"])
    course.check("cuda_backend.matmul")
    run_cell(stub_source(CELLS["cuda_backend.matmul"]))
    assert cuda_exercises.overlay() is None
    with pytest.raises(NotImplementedYet):
        runner.run("cuda_backend.matmul")


def test_each_matmul_check_checks_its_own_kernel_while_both_are_installed():
    run_cell(CELLS["cuda_backend.matmul_shared"])
    run_cell(planted("cuda_backend.matmul", "a[row * n + k] * b[k * p + col]", "a[row * n + k] * b[k * p + col] + 1"))
    course.check("cuda_backend.matmul_shared")
    with pytest.raises(CheckFailed):
        course.check("cuda_backend.matmul")


def test_learner_kernels_always_run_checked_on_the_simulator():
    """Outside a check too: an out-of-bounds write is an error naming the thread, not a corrupted heap."""
    run_cell(planted("cuda_backend.matmul", "if (row < m && col < p) {", "{"))
    a = nd.array(np.ones((3, 5), dtype=np.float32), device=ndl.cuda_sim())
    with pytest.raises(RuntimeError, match=r"matmul_f32: thread \(\d+, \d+, 0\) of block .*out-of-bounds"):
        a @ a.permute((1, 0))


def test_compiler_errors_point_into_the_cell(capsys):
    from needle.course import cuda_magic

    source = body(CELLS["cuda_backend.matmul"]).replace("float total = 0.0f;", "float total = undefined_name;")
    line = source.splitlines().index(next(s for s in source.splitlines() if "undefined_name" in s)) + 1
    with pytest.raises(CudaCompileError):
        cuda_magic.needle_cuda("cuda_backend.matmul", source)
    assert f"cell.cu:{line}:" in capsys.readouterr().err
    assert cuda_exercises.overlay() is None


def test_stub_detection_follows_device_functions():
    source = r'''
    __device__ long long helper(long long i) { NOT_IMPLEMENTED("x"); }
    __device__ long long outer(long long i) { return helper(i) + 1; }
    extern "C" __global__ void uses_outer(float* out) { out[outer(0)] = 1; }
    extern "C" __global__ void plain(float* out) { out[0] = 1; }
    extern "C" __global__ void own_stub(float* out) { NOT_IMPLEMENTED("y"); }  // NOT_IMPLEMENTED in a comment
    extern "C" __global__ void commented(float* out) { out[0] = 2; /* NOT_IMPLEMENTED */ }
    '''
    assert sorted(cuda_exercises.stub_kernels(source)) == ["own_stub", "uses_outer"]


def test_a_stub_launched_on_the_simulator_says_not_implemented():
    kernels = cuda_exercises.compile_cell(
        'extern "C" __global__ void k(float* out) { NOT_IMPLEMENTED("not implemented yet (k)"); }', ndl.cuda_sim())
    out = nd.empty((1,), device=ndl.cuda_sim())
    with pytest.raises(RuntimeError, match=r"k: thread \(0, 0, 0\) of block \(0, 0, 0\).*not implemented yet \(k\)"):
        cuda_exercises.launch(kernels["k"], 1, 1, out, device=ndl.cuda_sim())


def test_the_magic_with_an_exercise_id_reports_what_it_installed(capsys):
    from needle.course import cuda_magic

    cuda_magic.needle_cuda("cuda_backend.reductions", body(CELLS["cuda_backend.reductions"]))
    assert "installed: cuda_backend.reductions" in capsys.readouterr().out
    cuda_magic.needle_cuda("cuda_backend.reductions", body(stub_source(CELLS["cuda_backend.reductions"])))
    assert "not implemented yet: cuda_backend.reductions (needle's kernels stay in place)" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not a CUDA exercise"):
        cuda_magic.needle_cuda(course.exercises("autodiff")[0], body(CELLS["cuda_backend.reductions"]))


def test_the_figures_render():
    from needle.viz import cuda_model

    for view in (cuda_model.grid_figure(), cuda_model.memory_figure(), cuda_model.coalescing_figure(),
                 cuda_model.tiles_figure(), cuda_model.launch_map_figure([np.arange(20)], ["i"])):
        assert view._repr_png_().startswith(b"\x89PNG") and repr(view).startswith("<figure: ")


def test_a_kernel_that_never_ends_is_a_failed_check_and_is_not_installed(monkeypatch, capsys):
    monkeypatch.setenv("NEEDLE_TRIAL_TIMEOUT", "20")
    from needle.course import cuda_magic

    endless = planted("cuda_backend.elementwise", "FOR_EACH_INDEX(i, n) out[i] = a[i] + b[i];",
                      "for (long long i = threadIdx.x; i < n;) out[i] = a[i] + b[i];")
    cuda_magic.needle_cuda("cuda_backend.elementwise", body(endless))
    assert "did not finish within 20 s" in capsys.readouterr().err
    assert cuda_exercises.overlay() is None  # needle's kernels stay: the notebook goes on
    with pytest.raises(CheckFailed, match="did not finish"):
        course.check("cuda_backend.elementwise")


def test_a_kernel_that_crashes_its_trial_is_a_failed_check_and_the_others_still_install():
    crashing = planted("cuda_backend.ewise_setitem", "out[position(i, meta, ndim, offset)] = a[i];",
                       "((float*)0)[i] = a[i];")
    report = run_cell(crashing)
    assert [i for i, _ in report.crashed] == ["cuda_backend.ewise_setitem"]
    assert set(report.installed) == {"cuda_backend.compact", "cuda_backend.scalar_setitem"}
    with pytest.raises(CheckFailed, match="crashed the child process"):
        course.check("cuda_backend.ewise_setitem")
    course.check("cuda_backend.compact")
    course.check("cuda_backend.scalar_setitem")


NVCC = shutil.which("nvcc") or shutil.which("/usr/local/cuda/bin/nvcc")


def _notebook_kernel_sources() -> dict[str, str]:
    """Every CUDA source of the chapter: the exercise cells, their workbook stubs, and the demos' compile_cell texts."""
    out = {}
    for exercise_id, source in CELLS.items():
        out[exercise_id] = body(source)
        out[exercise_id + " (stub)"] = body(stub_source(source))
    for n, cell in enumerate(json.loads(NOTEBOOK.read_text())["cells"]):
        for k, text in enumerate(re.findall(r"compile_cell\(r'''(.*?)'''", "".join(cell["source"]), re.S)):
            out[f"cell {n} demo {k}"] = text
    return out


@pytest.mark.skipif(NVCC is None, reason="nvcc is not installed")
@pytest.mark.parametrize("name", sorted(_notebook_kernel_sources()))
def test_every_cuda_cell_of_the_chapter_compiles_for_a_real_gpu(name, tmp_path):
    """What NVRTC gets on a GPU: the prelude (NOT_IMPLEMENTED as __trap(), FOR_EACH_INDEX) and the cell."""
    source = _notebook_kernel_sources()[name]
    (tmp_path / "cell.cu").write_text(cuda_exercises.cell_source(source))
    result = subprocess.run([NVCC, "--ptx", "-std=c++17", str(tmp_path / "cell.cu"), "-o", str(tmp_path / "out.ptx")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert ".entry" in (tmp_path / "out.ptx").read_text()


def test_hints_teach_without_telling():
    """Tiered hints; the goal (the check's first words, the workbook's stub) and the workbook cell around the stubs
    never spell a line of the solution."""
    from test_course_hints import solution_fragments

    for exercise_id, source in CELLS.items():
        ex = registry.get(exercise_id)
        assert len(ex.hints) >= 2, exercise_id
        squash = lambda text: re.sub(r"\s+", "", text)  # noqa: E731
        fragments = solution_fragments(source)
        assert fragments, exercise_id
        assert not [f for f in fragments if f in squash(ex.hint)], exercise_id
        kept = [line for line in stub_source(source).splitlines() if "NOT_IMPLEMENTED" not in line]
        assert not [f for f in fragments if f in squash("\n".join(kept))], exercise_id


@pytest.mark.parametrize("name", sorted(_notebook_kernel_sources()))
def test_every_cuda_cell_of_the_chapter_compiles_with_nvrtc(name):
    """NVRTC, as CuPy uses it on a GPU: no host headers, so a cell that leans on one is caught here."""
    from needle.backend_ndarray import nvrtc

    if nvrtc.library_path() is None:
        pytest.skip("NVRTC is not installed (the dev extra brings it on Linux)")
    ok, log = nvrtc.compile_ptx(cuda_exercises.cell_source(_notebook_kernel_sources()[name]), "cell.cu",
                                ["-std=c++17", "--gpu-architecture=compute_90"])
    assert ok, log


def test_on_a_gpu_the_learners_kernels_launch_through_cupy(monkeypatch):
    """cuda()'s launcher with a stand-in for CuPy whose RawModule compiles the cell for the simulator: the cell is
    compiled through CupyExecutor.compile, every launch passes the parameter types a GPU needs, and the checks pass."""
    import sys
    import types

    from fake_cupy import EXACT, FakeDeviceArray, fake_cupy

    from needle.backend_ndarray.cuda_sim_build import compile_kernels
    from needle.backend_ndarray.ndarray_backend_cuda import CudaBackend, CupyExecutor

    cupy, launches = fake_cupy()

    def raw_module(code, options):
        kernels = compile_kernels(code)

        def get_function(name):
            def kernel(grid, block, args):
                converted = []
                for value, param in zip(args, kernels[name].params):
                    if param.endswith("*"):
                        assert isinstance(value, FakeDeviceArray), f"{name}: {param} got {type(value).__name__}"
                        converted.append(value.buffer)
                    else:
                        kind = {"float": "s", "double": "t", "long long": "l", "int": "n"}[param]
                        assert type(value) is EXACT[kind], f"{name}: {param} parameter got {type(value).__name__}"
                        converted.append(value.item())
                launches.append(name)
                kernels[name](grid, block, converted, checked=True)

            return kernel

        return types.SimpleNamespace(get_function=get_function)

    monkeypatch.setitem(sys.modules, "cupy", cupy)
    monkeypatch.setenv("NEEDLE_CUDA_TRIAL", "0")  # the child process would not see the stand-in
    gpu = nd.BackendDevice("cuda", CudaBackend(CupyExecutor(cupy)))
    cupy.RawModule = raw_module
    cupy.cuda.compiler = types.SimpleNamespace(CompileException=RuntimeError)
    monkeypatch.setattr(cuda_exercises, "active_device", lambda: gpu)
    monkeypatch.setattr("needle.course.checks.ch06_cuda_backend.active_device", lambda: gpu)
    try:
        for exercise_id in ("cuda_backend.compact", "cuda_backend.reductions", "cuda_backend.matmul_shared"):
            run_cell(CELLS[exercise_id])
            assert runner.run(exercise_id) > 0
        assert {"compact_f32", "reduce_sum_f32", "reduce_max_f32", "matmul_shared_f32"} <= set(launches)
        x = nd.array(np.arange(12, dtype=np.float32).reshape(3, 4), device=gpu)
        np.testing.assert_allclose((x.permute((1, 0)) @ x).sum(axis=0).numpy(),
                                   (np.arange(12).reshape(3, 4).T @ np.arange(12).reshape(3, 4)).sum(axis=0))
    finally:
        course.reset()
    assert not isinstance(gpu.mod, cuda_exercises.CudaOverlay)


def test_each_stub_names_the_exercise_whose_kernel_holds_it():
    stub = stub_source(CELLS["cuda_backend.compact"])
    kernel = stub.split('void ewise_setitem_f32', 1)[1].split("}", 1)[0]
    assert 'NOT_IMPLEMENTED("not implemented yet (cuda_backend.ewise_setitem)");' in kernel
    kernel = stub.split('void scalar_setitem_f32', 1)[1].split("}", 1)[0]
    assert 'NOT_IMPLEMENTED("not implemented yet (cuda_backend.scalar_setitem)");' in kernel
