"""Re-execute textbook notebooks in place, the way they are committed: outputs stored, volatile metadata dropped.

    python tools/execute_notebooks.py notebooks/03_nn_library.ipynb ...   (`make notebooks` runs all of them)

Consecutive prints to one stream are merged (their split depends on flush timing), per-cell timestamps are
removed, and a notebook is refused (left unchanged) when a cell not tagged `raises-exception` raised.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def _merge_streams(outputs: list) -> list:
    merged: list = []
    for out in outputs:
        if merged and out.output_type == "stream" and merged[-1].output_type == "stream" and merged[-1].name == out.name:
            merged[-1].text += out.text
        else:
            merged.append(out)
    return merged


def execute(path: Path, timeout: int = 600) -> float:
    """Executes one notebook in its folder and writes it back; returns the run time in seconds."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                   allow_errors=True).execute()
    seconds = time.perf_counter() - start
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        cell.outputs = _merge_streams(cell.outputs)
        expected = "raises-exception" in cell.metadata.get("tags", [])
        for out in cell.outputs:
            if out.output_type == "error" and not expected:
                raise RuntimeError(f"{path}: cell {cell.get('id')} raised {out.ename}: {out.evalue}")
            if out.output_type == "stream" and "Still waiting to acquire lock" in out.text:
                raise RuntimeError(f"{path}: a concurrent C++ rebuild printed into cell {cell.get('id')}; run again")
    nbformat.write(nb, path)
    return seconds


def main(paths: list[str]) -> int:
    for name in paths:
        seconds = execute(Path(name))
        print(f"{name}: executed in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or sorted(str(p) for p in Path("notebooks").glob("[0-9][0-9]_*.ipynb"))))
