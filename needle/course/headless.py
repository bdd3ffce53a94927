"""Run a workbook notebook without a browser and read each check cell's outcome from its outputs."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .errors import STATUS_BY_ERROR

_CHECK_CALL = re.compile(r"""course\.check\(\s*["']([\w.]+)["']""")


@dataclass
class Outcome:
    """One exercise's status in a notebook: passed, failed, not attempted or not run."""

    exercise: str
    status: str
    detail: str = ""


@dataclass
class CellError:
    """An error in a cell that is neither a check nor tagged raises-exception."""

    cell: int
    ename: str
    evalue: str

    @property
    def waits_for_exercise(self) -> bool:
        """A NotImplementedError: the cell uses an exercise whose stub is still there (not a failure)."""
        return self.ename == "NotImplementedError"


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Execute the notebook in its own folder with the current Python, continuing past errors."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    return nb


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def outcomes(nb: nbformat.NotebookNode) -> tuple[list[Outcome], list[CellError]]:
    """Per-exercise outcomes of the check cells, and the unexpected errors of the other cells."""
    results, errors = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        ids = _CHECK_CALL.findall(cell.source) if "check" in tags else []
        stdout = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
        error = next((o for o in cell.outputs if o.output_type == "error"), None)
        if not ids:
            if error is not None and "raises-exception" not in tags:
                errors.append(CellError(index, error.ename, _first_line(error.evalue)))
            continue
        ran = cell.get("execution_count") is not None or bool(cell.outputs)
        blocked = False
        for ex in ids:
            if not ran or blocked:
                results.append(Outcome(ex, "not run"))
            elif f"✓ {ex}:" in stdout:
                results.append(Outcome(ex, "passed"))
            elif error is not None:
                results.append(Outcome(ex, STATUS_BY_ERROR.get(error.ename, "failed"), _first_line(error.evalue)))
                blocked = True
            else:
                results.append(Outcome(ex, "not run"))
    return results, errors


def table(title: str, results: list[Outcome], errors: list[CellError]) -> str:
    """A plain-text table of outcomes with a summary line."""
    width = max([len(r.exercise) for r in results] + [8])
    lines = [title, f"  {'exercise':<{width}}  {'status':<13}  detail"]
    lines += [f"  {r.exercise:<{width}}  {r.status:<13}  {r.detail}".rstrip() for r in results]
    waiting = [str(e.cell) for e in errors if e.waits_for_exercise]
    unexpected = unexpected_errors(errors)
    lines += [f"  error in cell {e.cell}: {e.ename}: {e.evalue}" for e in unexpected]
    if waiting:
        lines.append(f"  cells {', '.join(waiting)} wait for unfinished exercises (NotImplementedError)")
    counts = {s: sum(r.status == s for r in results) for s in ("passed", "failed", "not attempted", "not run")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("passed", "failed"))
    lines.append(f"  {len(results)} exercises: {summary}" + (f"; {len(unexpected)} cell errors" if unexpected else ""))
    return "\n".join(lines)


def unexpected_errors(errors: list[CellError]) -> list[CellError]:
    """The errors that are not explained by an unfinished exercise."""
    return [e for e in errors if not e.waits_for_exercise]
