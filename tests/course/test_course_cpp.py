"""The %%needle_cpp cell magic: compile a cell with pybind11, install it, report stubs and compiler errors readably."""
from pathlib import Path

import pytest

from needle import course
from needle.course import cpp_magic, workbook

IPython = pytest.importorskip("IPython")
SOURCE = (Path(__file__).resolve().parents[2] / "kernels" / "cpu" / "simple_ml_ext.cc").read_text()
EXERCISE = "ml_refresher.softmax_regression_epoch_cpp"


@pytest.fixture
def shell(ipython, build_cache, monkeypatch):
    monkeypatch.setenv("NEEDLE_CACHE", str(build_cache))
    course.reset()
    ip = ipython
    ip.run_cell("%load_ext needle.course\nfrom needle import course", store_history=False)
    yield ip
    course.reset()


def run(shell, source):
    result = shell.run_cell(source, store_history=False)
    return result.error_in_exec


def test_cell_compiles_installs_and_passes_its_check(shell, capsys):
    assert run(shell, f"%%needle_cpp {EXERCISE}\n{SOURCE}") is None
    assert f"compiled and installed: {EXERCISE}" in capsys.readouterr().out
    assert run(shell, f'course.check("{EXERCISE}")') is None
    assert f"✓ {EXERCISE}" in capsys.readouterr().out
    assert course.installed_ids() == [EXERCISE]


def test_the_workbook_stub_keeps_the_reference_and_reports_not_attempted(shell, capsys):
    body_start = SOURCE.index("{", SOURCE.index("void softmax_regression_epoch_cpp")) + 1
    body_end = SOURCE.index("\n}\n", body_start)
    textbook_cell = (f"%%needle_cpp {EXERCISE}\n" + SOURCE[:body_start] + "\n  ### BEGIN SOLUTION"
                     + SOURCE[body_start:body_end] + "\n  ### END SOLUTION" + SOURCE[body_end:])
    stub = workbook.stub_source(textbook_cell)
    assert "std::exp" not in stub.split("PYBIND11_MODULE")[0]
    assert run(shell, stub) is None
    assert "still a stub" in capsys.readouterr().out and course.installed_ids() == []
    assert run(shell, f'course.check("{EXERCISE}")') is None
    assert f"◦ {EXERCISE}: not attempted yet" in capsys.readouterr().out


def test_compiler_errors_point_into_the_cell(shell, capsys):
    broken = SOURCE.replace("const size_t b = std::min(batch, m - start);", "const size_t b = undefined_name;")
    error = run(shell, f"%%needle_cpp {EXERCISE}\n{broken}")
    assert isinstance(error, cpp_magic.CompileError) and "not installed" in str(error)
    stderr = capsys.readouterr().err
    line = next(i for i, text in enumerate(broken.splitlines(), 1) if "undefined_name" in text)
    assert f"cell:{line}:" in stderr and "undefined_name" in stderr
    assert course.installed_ids() == []


def test_a_cell_without_a_module_block_is_explained(shell, capsys):
    error = run(shell, f"%%needle_cpp {EXERCISE}\nint f() {{ return 1; }}\n")
    assert isinstance(error, cpp_magic.CompileError)
    assert "PYBIND11_MODULE(name, m)" in capsys.readouterr().err


def test_recompiling_the_same_cell_reuses_the_build(shell, build_cache):
    assert run(shell, f"%%needle_cpp {EXERCISE}\n{SOURCE}") is None
    built = sorted(p.name for p in (build_cache / "cpp").iterdir())
    assert run(shell, f"%%needle_cpp {EXERCISE}\n{SOURCE}") is None
    assert sorted(p.name for p in (build_cache / "cpp").iterdir()) == built
