"""Rebuild-on-import, made safe for shared installs.

`make install` and Binder install needle editable with `editable.rebuild=true`: scikit-build-core's import
hook then runs `cmake --build` in the install's build folder the first time a compiled module is imported, so
an edit under kernels/ is picked up on the next import. That hook raises when the build folder cannot be
written (a shared install used by another user: `PermissionError` on its lock file) or when CMake is gone.
`needle/__init__.py` calls `rebuild_once()` before anything compiled is imported: it runs the same rebuild
itself, once per process, and where the folder is read-only or the build tools are missing it keeps the
modules built last instead of failing the import. A compile error still raises (it is the developer's).
"""
from __future__ import annotations

import os
import sys
import warnings


def _needle_finder():
    """scikit-build-core's editable finder for needle, or None (a regular install, or not rebuilding)."""
    for finder in sys.meta_path:
        if type(finder).__name__ not in ("ScikitBuildRedirectingFinder", "ScikitBuildInplaceFinder"):
            continue
        sources = getattr(finder, "known_source_files", None)
        if sources is None or "needle" in sources:
            return finder
    return None


def writable(path: str) -> bool:
    """Whether this process may take the rebuild lock in `path` (the folder, and the lock file if present)."""
    lock = os.path.join(path, "editable_rebuild.lock")
    if not os.path.isdir(path) or not os.access(path, os.W_OK | os.X_OK):
        return False
    return not os.path.exists(lock) or os.access(lock, os.R_OK | os.W_OK)


def rebuild_once() -> None:
    finder = _needle_finder()
    if finder is None or not getattr(finder, "rebuild_flag", False) or getattr(finder, "rebuilt", True):
        return
    finder.rebuilt = True  # the hook's own once-per-process flag: it will not rebuild again
    path = getattr(finder, "path", None)
    if not path or not writable(path):
        return  # a shared, read-only install: the modules built last are the ones to use
    try:
        finder.rebuild()
    except OSError as err:  # PermissionError on the lock (e.g. root-owned lock file), cmake not found
        warnings.warn(f"needle: could not rebuild the C++ backend in {path} ({err}); using the last build",
                      RuntimeWarning, stacklevel=2)
