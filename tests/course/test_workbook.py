"""The learner's workbook: stubs instead of solutions, cleared outputs, never overwriting their work, and a
generated workbook whose checks all report "not implemented yet" when executed."""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from needle.course import headless, workbook

TEXTBOOK = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(TEXTBOOK.glob("[0-9][0-9]_*.ipynb"))


def solution_lines(source: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if workbook.BEGIN in line:
            inside = True
        elif workbook.END in line:
            inside = False
        elif inside and len(line.strip()) > 3:
            lines.append(line.strip())
    return lines


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("exercises")
    report = workbook.write_workbook(out, TEXTBOOK)
    assert {w.action for w in report} == {"created"}
    return out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_solution_text_survives(generated, path):
    book = nbformat.read(path, as_version=4)
    work = nbformat.read(generated / path.name, as_version=4)
    assert len(book.cells) == len(work.cells)
    exercises = 0
    first_exercise = next(i for i, c in enumerate(book.cells) if "exercise" in c.metadata.get("tags", []))
    for index, (cell, stub) in enumerate(zip(book.cells, work.cells)):
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and index > first_exercise and "concept" not in tags:
            assert stub.outputs == [], f"cell {index} keeps a result the learner's code did not produce"
        if cell.cell_type == "code":
            assert workbook.BEGIN not in stub.source and workbook.END not in stub.source
        if "exercise" in tags:
            exercises += 1
            assert "not implemented yet" in stub.source
            body = [ln.strip() for ln in stub.source.splitlines()]
            leaked = [ln for ln in solution_lines(cell.source) if ln in body]
            assert not leaked, f"solution lines left in the workbook: {leaked}"
        if {"exercise", "check"} & set(tags):
            assert stub.outputs == [] and stub.execution_count is None
        else:
            assert stub.source == cell.source
    assert exercises > 0 or "exercise" not in json.dumps(book.metadata)


def test_stub_keeps_the_indentation_and_uses_the_hint():
    source = 'x = 1\n@course.exercise("welcome.sigmoid")\ndef f(x):\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION\n'
    stub = workbook.stub_source(source)
    assert '    raise NotImplementedError("not implemented yet: the logistic function' in stub
    assert "course.hint('welcome.sigmoid')" in stub
    assert "return 2" not in stub and stub.startswith("x = 1\n")


def test_cpp_cells_get_a_cpp_stub():
    source = "%%needle_cpp welcome.sigmoid\nvoid f() {\n  ### BEGIN SOLUTION\n  int a = 1;\n  ### END SOLUTION\n}\n"
    stub = workbook.stub_source(source)
    assert "  throw needle_course::NotImplemented(" in stub and "int a" not in stub


@pytest.mark.parametrize("bad", ["### BEGIN SOLUTION\nx\n", "x\n### END SOLUTION\n",
                                 "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n"])
def test_unbalanced_markers_are_an_error(bad):
    with pytest.raises(ValueError, match="SOLUTION"):
        workbook.stub_source(bad)


def test_never_overwrites_a_notebook_the_learner_changed(tmp_path):
    workbook.write_workbook(tmp_path, TEXTBOOK)
    target = tmp_path / NOTEBOOKS[0].name
    nb = nbformat.read(target, as_version=4)
    nb.cells[0].source += "\nmy notes"
    nbformat.write(nb, target)
    before = target.read_bytes()
    report = {w.name: w for w in workbook.write_workbook(tmp_path, TEXTBOOK)}
    assert report[target.name].action == "kept" and "changed" in report[target.name].reason
    assert target.read_bytes() == before


def test_keeps_a_learners_own_notebook_that_has_a_workbook_name(tmp_path):
    """A readable notebook without needle's workbook metadata at a workbook path is the learner's: kept byte for byte."""
    own = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('my own work')")])
    target = tmp_path / NOTEBOOKS[0].name
    nbformat.write(own, target)
    before = target.read_bytes()
    report = {w.name: w for w in workbook.write_workbook(tmp_path, TEXTBOOK)}
    assert report[target.name].action == "kept"
    assert target.read_bytes() == before


def test_untouched_notebooks_are_left_alone_or_refreshed(tmp_path):
    workbook.write_workbook(tmp_path, TEXTBOOK)
    assert {w.action for w in workbook.write_workbook(tmp_path, TEXTBOOK)} == {"unchanged"}
    (tmp_path / NOTEBOOKS[0].name).write_text("not json")
    report = {w.name: w for w in workbook.write_workbook(tmp_path, TEXTBOOK)}
    assert report[NOTEBOOKS[0].name].action == "kept"
    assert (tmp_path / NOTEBOOKS[0].name).read_text() == "not json"


def test_cli_writes_the_workbook(tmp_path):
    out = subprocess.run([sys.executable, "-m", "needle.course.cli", "workbook", "--out", str(tmp_path / "ex")],
                         capture_output=True, text=True, check=True).stdout
    assert "created" in out and (tmp_path / "ex" / "00_welcome.ipynb").exists()


def test_welcome_workbook_runs_with_every_check_not_implemented(generated):
    path = generated / "00_welcome.ipynb"
    proc = subprocess.run([sys.executable, "-m", "needle.course.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "welcome.sigmoid  not attempted" in proc.stdout and "0 passed" in proc.stdout


@pytest.mark.parametrize("path", NOTEBOOKS[1:], ids=lambda p: p.name)
def test_chapter_workbook_runs_all_to_the_end_and_checks_never_pass(generated, path):
    nb = headless.execute(generated / path.name)
    results, errors = headless.outcomes(nb)
    assert results and all(r.status == "not attempted" for r in results), results
    assert not errors, errors  # Run All on a fresh workbook: no cell raises, not even a NameError
    for cell in nb.cells:
        if "check" in cell.metadata.get("tags", []):  # one quiet line per check, no traceback
            assert [o.output_type for o in cell.outputs] == ["display_data"], cell.outputs


def test_check_table_reports_failures_with_a_nonzero_exit(generated, tmp_path):
    nb = nbformat.read(generated / "00_welcome.ipynb", as_version=4)
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []):
            cell.source = cell.source.replace('raise NotImplementedError(', 'return x  # wrong (')
    wrong = tmp_path / "00_welcome.ipynb"
    nbformat.write(nb, wrong)
    proc = subprocess.run([sys.executable, "-m", "needle.course.cli", "check", str(wrong)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "welcome.sigmoid  failed" in proc.stdout


from hypothesis import given, settings, strategies as st

_plain = st.from_regex(r"[a-z_][a-z0-9_ =+()]{0,20}", fullmatch=True).filter(lambda s: "SOLUTION" not in s)
_segment = st.one_of(
    st.tuples(st.just("plain"), _plain),
    st.tuples(st.just("solution"), st.tuples(st.sampled_from(["", "    ", "        "]),
                                             st.lists(st.integers(0, 10**6), min_size=0, max_size=4))),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_segment, max_size=12))
def test_stub_source_removes_every_solution_line_and_keeps_the_rest(segments):
    lines, kept, regions = ['@course.exercise("welcome.sigmoid")'], ['@course.exercise("welcome.sigmoid")'], []
    for kind, value in segments:
        if kind == "plain":
            lines.append(value)
            kept.append(value)
        else:
            indent, tokens = value
            lines += [indent + workbook.BEGIN] + [f"{indent}secret_{t} = {t}" for t in tokens] + [indent + workbook.END]
            kept.append(None)
            regions.append(indent)
    stub = workbook.stub_source("\n".join(lines)).split("\n")
    assert "secret_" not in "\n".join(stub)
    assert len(stub) == len(kept)
    stubs = [line for line, want in zip(stub, kept) if want is None]
    assert [line[: len(line) - len(line.lstrip())] for line in stubs] == regions
    assert all(line.strip().startswith('raise NotImplementedError("not implemented yet: ') for line in stubs)
    assert [line for line, want in zip(stub, kept) if want is not None] == [w for w in kept if w is not None]


def test_progress_reads_saved_outputs_and_list_names_every_exercise(tmp_path):
    workbook.write_workbook(tmp_path, TEXTBOOK)
    path = tmp_path / "00_welcome.ipynb"
    nb = nbformat.read(path, as_version=4)
    check = next(c for c in nb.cells if "check" in c.metadata.get("tags", []))
    check.execution_count = 3
    check.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "✓ welcome.sigmoid: 17 cases passed"},
                                            metadata={"needle_check": {"exercise": "welcome.sigmoid",
                                                                       "status": "passed", "cases": 17}})]
    nbformat.write(nb, path)
    out = subprocess.run([sys.executable, "-m", "needle.course.cli", "progress", "--dir", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    assert "welcome.sigmoid  passed" in out and "1 passed" in out
    listed = subprocess.run([sys.executable, "-m", "needle.course.cli", "list"],
                            capture_output=True, text=True, check=True).stdout
    assert "welcome.sigmoid" in listed and "needle.course.warmup:sigmoid" in listed
    assert "autodiff.EWiseDiv.gradient" in listed and "ml_refresher.softmax_regression_epoch_cpp" in listed


def test_progress_and_check_report_an_unreadable_notebook_instead_of_crashing(tmp_path):
    workbook.write_workbook(tmp_path, TEXTBOOK)
    broken = tmp_path / "00_welcome.ipynb"
    broken.write_text(broken.read_text() + "# a stray edit outside the JSON\n")
    for command in (["progress", "--dir", str(tmp_path)], ["check", str(broken)]):
        proc = subprocess.run([sys.executable, "-m", "needle.course.cli", *command], capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert f"{broken} is not a readable notebook (NotJSONError" in proc.stderr and "Traceback" not in proc.stderr
        assert "delete" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run([sys.executable, "-m", "needle.course.cli", "progress", "--dir", str(tmp_path)],
                          capture_output=True, text=True)
    assert "01_ml_refresher.ipynb" in proc.stdout  # the readable notebooks are still shown
