"""What every chapter's course test does with its textbook notebook: run the setup cell, then the exercise cells as
written (every check passes) or as the workbook's stubs (none passes, each is "not attempted yet")."""
from pathlib import Path

import nbformat

from needle import course
from needle.course import install, registry, workbook


def ref(exercise_id: str):
    """needle's own object for an exercise (what `course.reset()` leaves installed)."""
    return install.reference(registry.get(exercise_id).target)


def exercise_cells(textbook: Path) -> list[str]:
    nb = nbformat.read(textbook, as_version=4)
    return [cell.source for cell in nb.cells if "exercise" in cell.metadata.get("tags", [])]


def setup_namespace(textbook: Path) -> dict:
    """The namespace after the notebook's setup cell (its second cell: imports and switches)."""
    namespace: dict = {}
    exec(compile(nbformat.read(textbook, as_version=4).cells[1].source, "setup", "exec"), namespace)
    return namespace


def assert_textbook_solutions_pass(textbook: Path, ids: list[str], capsys) -> None:
    namespace = setup_namespace(textbook)
    for source in exercise_cells(textbook):
        exec(compile(source, "exercise", "exec"), namespace)
    assert sorted(course.installed_ids()) == sorted(ids)
    for exercise_id in ids:
        course.check(exercise_id)
    out = capsys.readouterr().out
    assert all(f"✓ {i}:" in out for i in ids), out


def assert_workbook_stubs_never_pass(textbook: Path, ids: list[str], capsys) -> None:
    namespace = setup_namespace(textbook)
    for source in exercise_cells(textbook):
        exec(compile(workbook.stub_source(source), "stub", "exec"), namespace)
    assert course.installed_ids() == []
    for exercise_id in ids:
        course.check(exercise_id)
    out = capsys.readouterr().out
    assert "✓" not in out
    assert all(f"◦ {i}: not attempted yet" in out for i in ids)
