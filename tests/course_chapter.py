"""The tests every course chapter owes: needle's reference passes each check, a workbook stub is "not attempted
yet", each planted mistake fails with a message naming its exercise, the textbook's solutions pass and its workbook's
stubs never do. A chapter's test module subclasses ChapterContract (as `TestSomething`) and names its chapter, its
textbook notebook and its planted mistakes."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import nbformat
import pytest

from needle import course, nn
from needle.course import install, registry, workbook
from needle.course.errors import CheckFailed

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def reference(exercise_id: str) -> Any:
    """needle's own object at the exercise's target."""
    return install.reference(registry.get(exercise_id).target)


def stub(*args, **kwargs):
    raise NotImplementedError("not implemented yet: the goal")


class StubModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("not implemented yet: the goal")


class ChapterContract:
    """Subclass with `chapter` (the exercise ids' prefix), `textbook` (its notebook's file name) and `wrong`
    ({exercise name without the prefix: [planted wrong answers]})."""

    chapter: ClassVar[str]
    textbook: ClassVar[str]
    wrong: ClassVar[dict[str, list[Any]]]

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        ids = course.exercises(self.chapter)
        if "wrong" in metafunc.fixturenames:
            metafunc.parametrize("exercise_id, wrong", [
                pytest.param(f"{self.chapter}.{name}", w, id=f"{name}-{w.__name__}")
                for name, wrongs in self.wrong.items() for w in wrongs])
        elif "exercise_id" in metafunc.fixturenames:
            metafunc.parametrize("exercise_id", ids)

    @pytest.fixture(autouse=True)
    def clean_install(self):
        course.reset()
        yield
        course.reset()

    def _cells(self) -> list:
        return nbformat.read(NOTEBOOKS / self.textbook, as_version=4).cells

    def exercise_cells(self) -> list[str]:
        return [cell.source for cell in self._cells() if "exercise" in cell.metadata.get("tags", [])]

    def setup_namespace(self) -> dict:
        """The namespace after the textbook's setup cell (imports and switches)."""
        namespace: dict = {}
        exec(compile(self._cells()[1].source, "setup", "exec"), namespace)
        return namespace

    def test_every_exercise_has_planted_mistakes(self):
        assert sorted(f"{self.chapter}.{name}" for name in self.wrong) == sorted(course.exercises(self.chapter))

    def test_reference_passes(self, exercise_id, capsys):
        course.exercise(exercise_id)(reference(exercise_id))
        course.check(exercise_id)
        assert capsys.readouterr().out.startswith(f"✓ {exercise_id}:")

    def test_stub_keeps_the_reference_and_is_not_attempted(self, exercise_id, capsys):
        ref = reference(exercise_id)
        returned = course.exercise(exercise_id)(StubModule if isinstance(ref, type) else stub)
        assert returned is ref and course.installed_ids() == []
        course.check(exercise_id)
        assert f"◦ {exercise_id}: not attempted yet" in capsys.readouterr().out

    def test_a_classic_mistake_fails(self, exercise_id, wrong):
        course.exercise(exercise_id)(wrong)
        with pytest.raises(CheckFailed) as failure:
            course.check(exercise_id)
        assert exercise_id in str(failure.value)

    def test_textbook_solutions_pass_and_are_installed(self, capsys):
        ids = course.exercises(self.chapter)
        namespace = self.setup_namespace()
        for source in self.exercise_cells():
            exec(compile(source, "exercise", "exec"), namespace)
        assert sorted(course.installed_ids()) == sorted(ids)
        for exercise_id in ids:
            course.check(exercise_id)
        out = capsys.readouterr().out
        assert all(f"✓ {i}:" in out for i in ids), out

    def test_workbook_stubs_keep_the_reference_and_never_pass(self, capsys):
        ids = course.exercises(self.chapter)
        namespace = self.setup_namespace()
        for source in self.exercise_cells():
            exec(compile(workbook.stub_source(source), "stub", "exec"), namespace)
        assert course.installed_ids() == []
        for exercise_id in ids:
            course.check(exercise_id)
        out = capsys.readouterr().out
        assert "✓" not in out
        assert all(f"◦ {i}: not attempted yet" in out for i in ids)
