"""The tests every notebook chapter's checks must pass: needle's reference passes each check, a stub is reported as not
attempted, every planted mistake fails with a message naming its exercise, the textbook's own solutions pass, and the
workbook's stubs never do.

A chapter's test module takes them all with a `TestXChapter(ChapterContract)` class, or calls the helpers one by one.
"""
from pathlib import Path
from typing import Any, ClassVar

import nbformat
import pytest

from needle import course, nn
from needle.course import install, registry, workbook
from needle.course.errors import CheckFailed

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def ref(exercise_id: str):
    """needle's own object for an exercise (what `course.reset()` leaves installed)."""
    return install.reference(registry.get(exercise_id).target)


def stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet: the goal")


class StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("not implemented yet: the goal")


def exercise_cells(notebook: str) -> list[str]:
    """The sources of a textbook chapter's exercise cells (`notebook`: its name, e.g. "07_cnn")."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    return [cell.source for cell in nb.cells if "exercise" in cell.metadata.get("tags", [])]


def setup_namespace(notebook: str) -> dict:
    """The namespace after the chapter's setup cell (its second cell: imports and switches)."""
    nb = nbformat.read(NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    namespace: dict = {}
    exec(compile(nb.cells[1].source, "setup", "exec"), namespace)
    return namespace


def assert_textbook_solutions_pass(notebook: str, ids: list[str], capsys) -> None:
    namespace = setup_namespace(notebook)
    for source in exercise_cells(notebook):
        exec(compile(source, "exercise", "exec"), namespace)
    assert sorted(course.installed_ids()) == sorted(ids)
    for exercise_id in ids:
        course.check(exercise_id)
    out = capsys.readouterr().out
    assert all(f"✓ {i}:" in out for i in ids), out


def assert_workbook_stubs_never_pass(notebook: str, ids: list[str], capsys) -> None:
    namespace = setup_namespace(notebook)
    for source in exercise_cells(notebook):
        exec(compile(workbook.stub_source(source), "stub", "exec"), namespace)
    assert course.installed_ids() == []
    for exercise_id in ids:
        course.check(exercise_id)
    out = capsys.readouterr().out
    assert "✓" not in out
    assert all(f"◦ {i}: not attempted yet" in out for i in ids)


class ChapterContract:
    """The shared tests, for a test class that names `chapter` (the exercise ids' prefix), `textbook` (its
    notebook's name, e.g. "07_cnn") and `wrong` ({exercise name without the prefix: [planted wrong answers]});
    optionally `messages` ({a planted answer's name: text its failure must hold}, for the mistakes whose message must
    say what went wrong, not only that the numbers differ). A chapter whose notebook needs more than its setup cell to
    run its exercise cells overrides the two textbook tests."""

    chapter: ClassVar[str]
    textbook: ClassVar[str]
    wrong: ClassVar[dict[str, list[Any]]]
    messages: ClassVar[dict[str, str]] = {}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "wrong" in metafunc.fixturenames:
            metafunc.parametrize("exercise_id, wrong", [
                pytest.param(f"{self.chapter}.{name}", w, id=f"{name}-{_name(w)}")
                for name, wrongs in self.wrong.items() for w in wrongs])
        elif "exercise_id" in metafunc.fixturenames:
            metafunc.parametrize("exercise_id", course.exercises(self.chapter))

    def test_every_exercise_has_planted_mistakes(self):
        assert sorted(f"{self.chapter}.{name}" for name in self.wrong) == sorted(course.exercises(self.chapter))

    def test_reference_passes(self, exercise_id, capsys):
        course.exercise(exercise_id)(ref(exercise_id))
        course.check(exercise_id)
        assert capsys.readouterr().out.startswith(f"✓ {exercise_id}:")

    def test_stub_keeps_the_reference_and_is_not_attempted(self, exercise_id, capsys):
        reference = ref(exercise_id)
        returned = course.exercise(exercise_id)(stub_like(reference))
        assert returned is reference and course.installed_ids() == []
        assert "still a stub" in capsys.readouterr().out
        course.check(exercise_id)  # no exception: one "not attempted" line that points at the hints
        out = capsys.readouterr().out
        assert out.startswith(f"◦ {exercise_id}: not attempted yet") and "✓" not in out, out
        assert f'course.hint("{exercise_id}")' in out

    def test_a_classic_mistake_fails(self, exercise_id, wrong):
        course.exercise(exercise_id)(wrong)
        with pytest.raises(CheckFailed) as failure:
            course.check(exercise_id)
        text = str(failure.value)
        assert text.startswith(exercise_id), text
        assert self.messages.get(_name(wrong), "") in text, text

    def test_textbook_solutions_pass_and_are_installed(self, capsys):
        assert_textbook_solutions_pass(self.textbook, course.exercises(self.chapter), capsys)

    def test_workbook_stubs_keep_the_reference_and_never_pass(self, capsys):
        assert_workbook_stubs_never_pass(self.textbook, course.exercises(self.chapter), capsys)


def stub_like(reference):
    """A stub of the reference's kind: a module class, a staticmethod (as a class holds it) or a function."""
    if isinstance(reference, type):
        return StubModule
    return staticmethod(stub) if isinstance(reference, staticmethod) else stub


def _name(fn) -> str:
    """A planted answer's name (a staticmethod's is its function's)."""
    return getattr(fn, "__name__", None) or fn.__func__.__name__
