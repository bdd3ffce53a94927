"""Hints teach, not tell: a workbook stub names the goal and never spells its solution's code; course.hint reveals
the rest tier by tier (the idea, the formula, the shape of the code)."""
import re
from pathlib import Path

import nbformat
import pytest

from needle.course import registry, workbook

TEXTBOOK = Path(__file__).resolve().parents[2] / "notebooks"
# The chapters whose exercises declare tiered hints (exercise_check(..., hints=[...]) or set_hints); a chapter joins
# this list when it adopts them.
CHAPTERS = {"00_welcome": "welcome", "01_ml_refresher": "ml_refresher", "02_autodiff": "autodiff",
            "03_nn_library": "nn_library", "04_ndarray": "ndarray", "05_cpu_backend": "cpu_backend",
            "06_cuda_backend": "cuda_backend", "07_cnn": "cnn", "08_sequence_models": "sequence_models",
            "09_transformer": "transformer", "10_large_models": "large_models", "11_generative": "generative"}
NOTEBOOKS = [TEXTBOOK / f"{name}.ipynb" for name in CHAPTERS]
_TRIVIAL = {"pass", "else", "break", "continue", "return", "try", "finally", "returnNone", "returnself"}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def solution_fragments(source: str) -> list[str]:
    """Each solution line, its right-hand side and its returned expression, without comments or whitespace."""
    fragments, inside = [], False
    for line in source.splitlines():
        if workbook.BEGIN in line:
            inside = True
            continue
        if workbook.END in line:
            inside = False
            continue
        if not inside:
            continue
        code = line.split("#", 1)[0].split("//", 1)[0].strip().rstrip(":;")
        parts = {code}
        if code.startswith("return "):
            parts.add(code[len("return "):])
        match = re.match(r"^[\w.\[\], ()]+?\s*(?:[-+*/@]?=)\s*(.+)$", code)
        if match and "==" not in code:
            parts.add(match.group(1))
        for part in parts:
            part = _squash(part)
            if len(part) >= 2 and part not in _TRIVIAL and not re.fullmatch(r"[\w.,()]+", part):
                fragments.append(part)
    return fragments


def exercise_cells():
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if "exercise" in cell.metadata.get("tags", []):
                for exercise_id in workbook.exercise_ids(cell.source):
                    yield pytest.param(exercise_id, cell.source, id=exercise_id)


@pytest.mark.parametrize("exercise_id, source", list(exercise_cells()))
def test_no_stub_message_contains_its_solution_code(exercise_id, source):
    goal = _squash(registry.get(exercise_id).hint)
    leaked = [f for f in solution_fragments(source) if f in goal]
    assert not leaked, f"the stub of {exercise_id} spells its answer: {leaked}"


def test_every_exercise_has_tiered_hints():
    missing = [ex.id for ex in registry.all_exercises() if ex.chapter in CHAPTERS.values() and len(ex.hints) < 2]
    assert not missing, f"exercises without tiered hints: {missing}"


@pytest.mark.parametrize("exercise_id, source", list(exercise_cells()))
def test_the_workbook_cell_around_the_stub_does_not_spell_the_solution(exercise_id, source):
    """The docstring and comments the workbook keeps describe the goal, not the code (no "a @ b")."""
    stub = workbook.stub_source(source)
    kept = [line for line in stub.splitlines() if "NotImplemented" not in line
            and not line.lstrip().startswith(("def ", "class ", "@", "%%"))]
    leaked = [f for f in solution_fragments(source) if f in _squash("\n".join(kept))]
    assert not leaked, f"the workbook cell of {exercise_id} spells its answer: {leaked}"
