"""needle-course: generate the workbook, check a workbook notebook headless, show the progress of the whole course."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

from . import headless, registry, workbook

_UNREADABLE = (nbformat.reader.NotJSONError, nbformat.ValidationError, OSError, UnicodeDecodeError)


def _load(path: Path, run: bool, timeout: int) -> nbformat.NotebookNode | None:
    """The notebook (executed first if `run`), or None after saying why it cannot be read."""
    try:
        if run:
            return headless.execute(path, timeout=timeout)
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        return nb
    except _UNREADABLE as err:
        why = " ".join(str(err).split())[:160]
        print(f"needle-course: {path} is not a readable notebook ({type(err).__name__}: {why}); open it in a "
              "text editor or undo your last change (your work is still in it)", file=sys.stderr)
        return None


def _workbook(args: argparse.Namespace) -> int:
    notebooks = Path(args.notebooks) if args.notebooks else None
    for item in workbook.write_workbook(Path(args.out), notebooks):
        note = f" ({item.reason})" if item.reason else ""
        print(f"{item.action:>9}  {Path(args.out) / item.name}{note}")
    return 0


def _check(args: argparse.Namespace) -> int:
    status = 0
    for name in args.notebooks:
        path = Path(name)
        if not path.is_file():
            print(f"needle-course check: no notebook {path}", file=sys.stderr)
            return 2
        nb = _load(path, run=True, timeout=args.timeout)
        if nb is None:
            status = 2
            continue
        results, errors = headless.outcomes(nb)
        print(headless.table(str(path), results, errors))
        if headless.unexpected_errors(errors) or any(r.status in ("failed", "timed out", "kernel died")
                                                    for r in results):
            status = 1
    return status


def _progress(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    paths = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        print(f"needle-course progress: no workbook notebooks in {folder}; run `needle-course workbook` first",
              file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        nb = _load(path, run=args.run, timeout=args.timeout)
        if nb is None:
            status = 2
            continue
        results, errors = headless.outcomes(nb)
        print(headless.table(path.name, results, errors))
    if not args.run:
        print("(from the outputs saved in each notebook; --run executes them first)")
    return status


def _list(args: argparse.Namespace) -> int:
    for ex in registry.all_exercises():
        print(f"{ex.id:<40} {ex.target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `needle-course` command."""
    parser = argparse.ArgumentParser(prog="needle-course", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("workbook", help="write the learner's workbook (never overwrites a notebook you changed)")
    p.add_argument("--out", default="exercises", help="folder of the workbook (default: exercises)")
    p.add_argument("--notebooks", help="folder of the textbook notebooks (default: the repository's notebooks/)")
    p.set_defaults(handler=_workbook)
    p = sub.add_parser("check", help="run workbook notebooks headless and print a table of their exercises")
    p.add_argument("notebooks", nargs="+", help="e.g. exercises/00_welcome.ipynb")
    p.add_argument("--timeout", type=int, default=300,
                   help="seconds per cell before it is interrupted and reported as timed out (default 300)")
    p.set_defaults(handler=_check)
    p = sub.add_parser("progress", help="the whole course at a glance")
    p.add_argument("--dir", default="exercises", help="folder of the workbook (default: exercises)")
    p.add_argument("--run", action="store_true", help="execute every notebook first (slow)")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell with --run (default 600)")
    p.set_defaults(handler=_progress)
    p = sub.add_parser("list", help="list every registered exercise and where it is installed")
    p.set_defaults(handler=_list)
    args = parser.parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
