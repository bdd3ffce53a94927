"""Run a workbook notebook without a browser and read each exercise's outcome from what its check left in the cell.

A check leaves a display whose metadata holds its outcome (passed / not attempted), or raises CheckFailed /
LearnerError with a message that starts with the exercise id; text a cell prints is never read as an outcome.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .errors import STATUS_BY_ERROR
from .runner import OUTCOME_KEY

_CHECK_CALL = re.compile(r"""course\.check\(\s*["']([\w.]+)["']""")
RUN_KEY = "needle_run"  # notebook metadata written by execute(): cells that timed out, the cell that killed the kernel


@dataclass
class Outcome:
    """One exercise's status in a notebook: passed, failed, not attempted, timed out, kernel died or not run."""

    exercise: str
    status: str
    detail: str = ""


@dataclass
class CellError:
    """An error in a cell that is neither a check's outcome nor tagged raises-exception."""

    cell: int
    ename: str
    evalue: str

    @property
    def waits_for_exercise(self) -> bool:
        """A NotImplementedError: the cell uses an exercise whose stub is still there (not a failure)."""
        return self.ename == "NotImplementedError"


def execute(path: Path, timeout: int = 600) -> nbformat.NotebookNode:
    """Execute the notebook in its own folder with the current Python, cell by cell, continuing past errors.

    A cell that runs longer than `timeout` seconds is interrupted and the run goes on; a cell that kills the
    kernel ends the run. Both are noted in the notebook's metadata (RUN_KEY) for outcomes().
    """
    from jupyter_core.utils import run_sync
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    run = {"timed_out": [], "dead": None, "timeout": timeout}
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    with client.setup_kernel(stderr=subprocess.DEVNULL):  # the kernel's own logs (an interrupt's queue.Empty) are noise here
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError:
                run["timed_out"].append(index)
                run_sync(client.km.interrupt_kernel)()
            except DeadKernelError:
                run["dead"] = index
                break
    nb.metadata[RUN_KEY] = run
    return nb


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def _check_records(cell: nbformat.NotebookNode) -> dict[str, dict]:
    """The outcomes the checks themselves left in the cell (display metadata), by exercise id."""
    records = {}
    for output in cell.get("outputs", []):
        record = output.get("metadata", {}).get(OUTCOME_KEY) if output.output_type == "display_data" else None
        if isinstance(record, dict) and isinstance(record.get("exercise"), str):
            records[record["exercise"]] = record
    return records


def outcomes(nb: nbformat.NotebookNode) -> tuple[list[Outcome], list[CellError]]:
    """Per-exercise outcomes of the check cells, and the unexpected errors of the other cells."""
    run = nb.metadata.get(RUN_KEY, {})
    timed_out, dead = set(run.get("timed_out", [])), run.get("dead")
    results, errors = [], []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        ids = _CHECK_CALL.findall(cell.source) if "check" in tags else []
        outputs = cell.get("outputs", [])
        error = next((o for o in outputs if o.output_type == "error"), None)
        records = _check_records(cell)
        failed_id = None
        if error is not None and error.get("ename") in STATUS_BY_ERROR:
            failed_id = next((ex for ex in ids if str(error.get("evalue", "")).startswith(f"{ex}:")), None)
        if index == dead:
            errors.append(CellError(index, "DeadKernel", "the kernel died while this cell ran (a crash in native "
                                                         "code, or the process ran out of memory)"))
        elif index in timed_out:
            errors.append(CellError(index, "Timeout", f"interrupted after {run.get('timeout')} s (an endless loop?)"))
        elif error is not None and failed_id is None and "raises-exception" not in tags:
            errors.append(CellError(index, error.ename, _first_line(error.evalue)))
        ran = cell.get("execution_count") is not None or bool(outputs)
        for ex in ids:
            record = records.get(ex)
            if record is not None:
                results.append(Outcome(ex, str(record.get("status", "passed"))))
            elif ex == failed_id:
                results.append(Outcome(ex, STATUS_BY_ERROR[error.ename], str(error.evalue)))
            elif index in timed_out:
                results.append(Outcome(ex, "timed out", f"cell {index} ran past {run.get('timeout')} s"))
            elif index == dead:
                results.append(Outcome(ex, "kernel died", f"in cell {index}"))
            elif error is not None and ran:
                results.append(Outcome(ex, "failed", f"the cell raised {error.ename} before the check ran: "
                                                     f"{_first_line(error.evalue)}"))
            else:
                results.append(Outcome(ex, "not run"))
    return results, errors


STATUSES = ("passed", "failed", "not attempted", "timed out", "kernel died", "not run")


def table(title: str, results: list[Outcome], errors: list[CellError]) -> str:
    """A plain-text table of outcomes with a summary line; the first failure's message is shown whole."""
    width = max([len(r.exercise) for r in results] + [8])
    lines = [title, f"  {'exercise':<{width}}  {'status':<13}  detail"]
    pad = " " * (width + 19)
    first_failure = True
    for r in results:
        detail = r.detail
        if r.status == "failed" and first_failure:
            first_failure = False
            text = detail.split(f"{r.exercise}: ", 1)[-1] if detail.startswith(f"{r.exercise}: ") else detail
            detail = ("\n" + pad).join(line for line in text.splitlines() if line.strip())
        else:
            detail = _first_line(detail)
            if detail.startswith(f"{r.exercise}: "):
                detail = detail[len(r.exercise) + 2:]
        lines.append(f"  {r.exercise:<{width}}  {r.status:<13}  {detail}".rstrip())
    waiting = [str(e.cell) for e in errors if e.waits_for_exercise]
    unexpected = unexpected_errors(errors)
    lines += [f"  error in cell {e.cell}: {e.ename}: {e.evalue}" for e in unexpected]
    if waiting:
        lines.append(f"  cells {', '.join(waiting)} wait for unfinished exercises (NotImplementedError)")
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s in ("passed", "failed"))
    lines.append(f"  {len(results)} exercises: {summary}" + (f"; {len(unexpected)} cell errors" if unexpected else ""))
    return "\n".join(lines)


def unexpected_errors(errors: list[CellError]) -> list[CellError]:
    """The errors that are not explained by an unfinished exercise."""
    return [e for e in errors if not e.waits_for_exercise]
