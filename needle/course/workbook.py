"""The learner's workbook: the textbook with every solution region replaced by a stub, never overwriting their work."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from . import registry

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CPP_MAGIC = "needle_cpp"
CUDA_MAGIC = "needle_cuda"
_EXERCISE_ID = re.compile(r"""course\.exercise\(\s*["']([\w.]+)["']|^%%(?:""" + CPP_MAGIC + "|" + CUDA_MAGIC
                          + r""")\s+([\w.]+)""", re.M)
_NB_VERSION = 4


def textbook_dir() -> Path:
    """notebooks/ next to the needle package (a repository checkout), else ./notebooks."""
    beside_package = Path(__file__).resolve().parents[2] / "notebooks"
    return beside_package if beside_package.is_dir() else Path.cwd() / "notebooks"


def exercise_ids(source: str) -> list[str]:
    """Exercise ids named in a cell: `@course.exercise("id")` decorators or a `%%needle_cpp id` magic line."""
    return [a or b for a, b in _EXERCISE_ID.findall(source)]


def stub_source(source: str) -> str:
    """The cell with each BEGIN/END SOLUTION region replaced by a stub that raises with the exercise's hint."""
    ids = exercise_ids(source)
    hint = registry.get(ids[0]).hint if ids else "fill in this region"
    if ids:
        hint += f"; course.hint('{ids[0]}') when stuck"
    is_cpp = source.lstrip().startswith("%%" + CPP_MAGIC)
    is_cuda = source.lstrip().startswith("%%" + CUDA_MAGIC)
    out, inside = [], False
    for line in source.split("\n"):
        marker = line.strip()
        if marker.startswith(BEGIN):
            if inside:
                raise ValueError(f"nested {BEGIN} in cell:\n{source}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            message = json.dumps(f"not implemented yet: {hint}", ensure_ascii=False)
            if is_cuda:  # a cell may hold many regions: each names its exercise; its check and course.hint say more
                from .cuda_exercises import stub_statement

                stub = stub_statement("\n".join(out), source.split("\n", 1)[0].split()[1:])
            elif is_cpp:
                stub = f"throw needle_course::NotImplemented({message});"
            else:
                stub = f"raise NotImplementedError({message})"
            out.append(indent + stub)
        elif marker.startswith(END):
            if not inside:
                raise ValueError(f"{END} without {BEGIN} in cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END} in cell:\n{source}")
    return "\n".join(out)


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def cells_hash(nb: nbformat.NotebookNode) -> str:
    """Hash of the whole notebook but our own mark: any edit, run, new tag, metadata or attachment changes it."""
    metadata = {k: v for k, v in nb.metadata.items() if k != "needle"}
    return hashlib.sha256(json.dumps([metadata, nb.cells], sort_keys=True, default=str).encode()).hexdigest()


def keeps_output(cell: nbformat.NotebookNode, before_first_exercise: bool) -> bool:
    """Whether the workbook keeps a textbook cell's outputs: only what no exercise can change (cells above the
    first exercise, and cells tagged `concept`); everything else is produced by the learner's own run."""
    return before_first_exercise or "concept" in _tags(cell)


def make_workbook_notebook(textbook: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The workbook edition of one textbook notebook."""
    nb = nbformat.from_dict(json.loads(json.dumps(textbook)))
    before_first_exercise = True
    for cell in nb.cells:
        tags = _tags(cell)
        if cell.cell_type != "code":
            continue
        if "exercise" in tags:
            before_first_exercise = False
            if BEGIN not in cell.source:
                raise ValueError(f"{name}: a cell tagged 'exercise' has no {BEGIN} region:\n{cell.source}")
            cell.source = stub_source(cell.source)
        if {"exercise", "check"} & set(tags) or not keeps_output(cell, before_first_exercise):
            cell.outputs, cell.execution_count = [], None
    nb.metadata["needle"] = {"workbook_of": f"notebooks/{name}", "cells_sha256": cells_hash(nb)}
    return nb


@dataclass
class Written:
    """What happened to one workbook notebook."""

    name: str
    action: str  # "created", "updated", "unchanged", "kept"
    reason: str = ""


def _learner_changed(path: Path) -> str:
    """Why the notebook at `path` counts as the learner's (empty if it is still exactly what we generated)."""
    try:
        existing = nbformat.read(path, as_version=_NB_VERSION)
    except Exception as exc:  # unreadable: it is theirs, leave it alone
        return f"cannot read it ({type(exc).__name__}); left as it is"
    stored = existing.metadata.get("needle", {}).get("cells_sha256")
    if stored is None:
        return "it was not generated by needle-course"
    if stored != cells_hash(existing):
        return "you changed or ran it"
    return ""


def write_workbook(out_dir: Path, notebooks: Path | None = None) -> list[Written]:
    """Generate `out_dir`/NN_topic.ipynb for every textbook notebook, skipping notebooks the learner changed."""
    notebooks = notebooks or textbook_dir()
    sources = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    if not sources:
        raise FileNotFoundError(f"no textbook notebooks (NN_topic.ipynb) in {notebooks}")
    out_dir.mkdir(parents=True, exist_ok=True)
    report = []
    for src in sources:
        target = out_dir / src.name
        nb = make_workbook_notebook(nbformat.read(src, as_version=_NB_VERSION), src.name)
        if target.exists():
            reason = _learner_changed(target)
            if reason:
                report.append(Written(src.name, "kept", reason))
                continue
            if nbformat.writes(nbformat.read(target, as_version=_NB_VERSION)) == nbformat.writes(nb):
                report.append(Written(src.name, "unchanged"))
                continue
            action = "updated"
        else:
            action = "created"
        tmp = target.with_suffix(".ipynb.tmp")
        nbformat.write(nb, tmp)
        tmp.replace(target)
        report.append(Written(src.name, action))
    return report
