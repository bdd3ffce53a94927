"""The tools around the notebooks: `needle-course check` reads outcomes from the checks themselves, survives endless
loops, dead kernels and malformed notebooks; `needle-course workbook` never changes a notebook the learner touched;
the workbook shows no result that unfinished code could not have produced."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from needle.course import headless, workbook

TEXTBOOK = Path(__file__).resolve().parents[2] / "notebooks"
GOOD = ("import numpy as np\n@course.exercise('welcome.sigmoid')\ndef sigmoid(x):\n    z = np.exp(-np.abs(x))\n"
        "    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))")


def notebook(tmp_path: Path, *cells: tuple[str, str]) -> Path:
    """A small workbook-like notebook: (tag, source) per code cell, after an import cell."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("from needle import course"))
    for tag, source in cells:
        nb.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": [tag]} if tag else {}))
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def cli(*args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "needle.course.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_printed_text_is_never_read_as_a_pass(tmp_path):
    path = notebook(tmp_path, ("exercise", "@course.exercise('welcome.sigmoid')\ndef sigmoid(x):\n    return x"),
                    ("check", "print('✓ welcome.sigmoid: 1 cases passed')\nraise ValueError('oops')\n"
                              "course.check('welcome.sigmoid')"))
    results, errors = headless.outcomes(headless.execute(path))
    assert [(r.exercise, r.status) for r in results] == [("welcome.sigmoid", "failed")]
    assert "ValueError" in results[0].detail


def test_outcomes_come_from_the_checks_output(tmp_path):
    path = notebook(tmp_path, ("exercise", GOOD), ("check", "course.check('welcome.sigmoid')"))
    nb = headless.execute(path)
    results, errors = headless.outcomes(nb)
    assert [(r.exercise, r.status) for r in results] == [("welcome.sigmoid", "passed")] and not errors
    display = nb.cells[-1].outputs[0]
    assert display.output_type == "display_data" and display.metadata["needle_check"]["status"] == "passed"


def test_an_endless_loop_times_out_and_the_table_is_still_printed(tmp_path):
    path = notebook(tmp_path, ("exercise", "@course.exercise('welcome.sigmoid')\ndef sigmoid(x):\n    while True:\n"
                                           "        pass"),
                    ("check", "course.check('welcome.sigmoid')"), ("", "print('the next cell ran')"))
    proc = cli("check", "--timeout", "8", str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "welcome.sigmoid  timed out" in proc.stdout and "1 timed out" in proc.stdout
    assert "Traceback" not in proc.stderr


def test_a_dead_kernel_is_reported_with_the_cell_that_killed_it(tmp_path):
    path = notebook(tmp_path, ("exercise", GOOD), ("", "import os\nos._exit(1)"),
                    ("check", "course.check('welcome.sigmoid')"))
    proc = cli("check", str(path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "error in cell 2: DeadKernel: the kernel died while this cell ran" in proc.stdout
    assert "welcome.sigmoid  not run" in proc.stdout and "Traceback" not in proc.stderr


def test_a_malformed_notebook_gets_one_line_and_no_advice_to_delete_it(tmp_path):
    path = tmp_path / "bad.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {},
                                "cells": [{"cell_type": "code", "source": "1"}]}))
    proc = cli("check", str(path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a readable notebook" in lines[0] and "delete" not in lines[0], proc.stderr


def test_the_table_shows_the_first_failures_whole_message(tmp_path):
    path = notebook(tmp_path, ("exercise", "@course.exercise('welcome.sigmoid')\ndef sigmoid(x):\n    return x * 0"),
                    ("check", "course.check('welcome.sigmoid')"))
    proc = cli("check", str(path))
    assert proc.returncode == 1
    assert "expected:" in proc.stdout and "got:" in proc.stdout and "input x:" in proc.stdout, proc.stdout


@pytest.fixture
def fresh(tmp_path):
    workbook.write_workbook(tmp_path, TEXTBOOK)
    return tmp_path / "00_welcome.ipynb"


def _touch(path: Path, change) -> bytes:
    nb = nbformat.read(path, as_version=4)
    change(nb)
    nbformat.write(nb, path)
    return path.read_bytes()


def _attach(nb):
    md = next(c for c in nb.cells if c.cell_type == "markdown")
    md["attachments"] = {"a.png": {"image/png": "iVBORw0KGgo="}}


@pytest.mark.parametrize("change", [
    lambda nb: nb.cells[2].metadata.setdefault("tags", []).append("mine"),
    lambda nb: nb.cells[2].metadata.update(collapsed=True),
    lambda nb: nb.cells.__setitem__(0, nbformat.v4.new_raw_cell(nb.cells[0].source)),
    _attach,
    lambda nb: nb.metadata.update(my_note="x"),
], ids=["tag", "cell metadata", "cell type", "attachment", "notebook metadata"])
def test_workbook_never_changes_a_notebook_the_learner_touched(fresh, change):
    before = _touch(fresh, change)
    report = {w.name: w for w in workbook.write_workbook(fresh.parent, TEXTBOOK)}
    assert report[fresh.name].action == "kept" and fresh.read_bytes() == before


def test_the_workbook_keeps_no_result_that_needs_an_exercise():
    nb = workbook.make_workbook_notebook(nbformat.read(TEXTBOOK / "03_nn_library.ipynb", as_version=4),
                                         "03_nn_library.ipynb")
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "test error" not in text and "epoch 1" not in text


ROOT = Path(__file__).resolve().parents[2]


def test_make_lab_serves_the_repository_with_the_venv_on_path_and_only_the_learners_packages(tmp_path):
    proc = subprocess.run(["make", "-n", "lab", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    plan = proc.stdout
    assert f'--ServerApp.root_dir="{ROOT}"' in plan
    assert "--LabApp.default_url=/lab/tree/exercises/00_welcome.ipynb" in plan
    assert f'PATH="{tmp_path / "venv"}/bin:$PATH"' in plan  # JupyterLab's terminals find needle-course
    assert "--allow-root" in plan and "if no browser opens" in plan
    assert '-e ".[mpi]"' in plan and "dev" not in plan  # chapter 10 runs mpirun; the dev extra is for `make test`
    test_plan = subprocess.run(["make", "-n", "test", f"VENV={tmp_path / 'venv'}"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout
    assert ".[dev,mpi]" in test_plan  # the tests that run under mpirun need the mpi extra
