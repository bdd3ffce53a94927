"""The %%needle_cpp cell magic: compile a cell's C++ with pybind11 and install its functions as exercises.

    %%needle_cpp ml_refresher.softmax_regression_epoch_cpp
    void softmax_regression_epoch_cpp(...) { ... }
    PYBIND11_MODULE(simple_ml_ext, m) { m.def("softmax_regression_epoch_cpp", ...); }

The PYBIND11_MODULE block is renamed, so a cell can be compiled again and again in one kernel; a stub's
`throw needle_course::NotImplemented("...")` arrives in Python as NotImplementedError.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import sysconfig
from pathlib import Path
from types import ModuleType
from typing import Any

from . import install, registry

_MODULE_BLOCK = re.compile(r"PYBIND11_MODULE\s*\(\s*\w+\s*,\s*(\w+)\s*\)")
_CPP_STUB = re.compile(r'throw\s+needle_course::NotImplemented\s*\(\s*"not implemented yet')
_SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION.*$", re.M)

_PRELUDE = """#include <pybind11/pybind11.h>
#include <stdexcept>
namespace needle_course {
struct NotImplemented : std::logic_error { using std::logic_error::logic_error; };
}
#line 1 "cell"
"""

_EPILOGUE = """
#line 1 "needle_cpp_module"
PYBIND11_MODULE({name}, m) {{
  pybind11::register_local_exception_translator([](std::exception_ptr p) {{
    try {{ if (p) std::rethrow_exception(p); }}
    catch (const needle_course::NotImplemented& e) {{ PyErr_SetString(PyExc_NotImplementedError, e.what()); }}
  }});
  needle_course_bind(m);
}}
"""


class CompileError(Exception):
    """The cell's C++ did not compile; the message holds the compiler's errors, with lines numbered as in the cell."""


def cache_dir() -> Path:
    """Where compiled cells are kept (NEEDLE_CACHE, default ~/.cache/needle), so re-running a cell is instant."""
    return Path(os.environ.get("NEEDLE_CACHE", Path.home() / ".cache" / "needle")) / "cpp"


def translation_unit(cell: str, module_name: str) -> str:
    """The C++ file for a cell: prelude, the cell with its PYBIND11_MODULE renamed, and the real module block."""
    if not _MODULE_BLOCK.search(cell):
        raise CompileError("the cell needs a PYBIND11_MODULE(name, m) { m.def(...); } block that binds its functions")
    body = _MODULE_BLOCK.sub(r"static void needle_course_bind(pybind11::module_& \1)", cell, count=1)
    body = _SOLUTION_MARKER.sub("", body)  # marker lines are not C++: blank them
    return _PRELUDE + body + _EPILOGUE.format(name=module_name)


def _compiler_command(source: Path, output: Path) -> list[str]:
    import pybind11

    cxx = shlex.split(os.environ.get("CXX", "c++"))
    flags = ["-O2", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    includes = [f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}"]
    return [*cxx, *flags, *includes, str(source), "-o", str(output)]


def readable_errors(stderr: str, limit: int = 30) -> str:
    """The compiler's diagnostics that point into the cell, without include-path noise."""
    keep = [line for line in stderr.splitlines()
            if line.startswith("cell:") or (line.startswith(" ") and "|" in line)] or stderr.splitlines()
    more = f"\n... ({len(keep) - limit} more lines)" if len(keep) > limit else ""
    return "\n".join(keep[:limit]) + more


def compile_cell(cell: str) -> ModuleType:
    """Compile (or reuse the cached build of) a cell and import it as a fresh module."""
    digest = hashlib.sha256(cell.encode()).hexdigest()[:16]
    name = f"needle_cpp_{digest}"
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    library = folder / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    if not library.exists():
        source = folder / f"{name}.cc"
        source.write_text(translation_unit(cell, name))
        partial = library.with_name(library.name + ".part")
        result = subprocess.run(_compiler_command(source, partial), capture_output=True, text=True)
        if result.returncode != 0:
            raise CompileError("the C++ cell did not compile:\n" + readable_errors(result.stderr))
        partial.replace(library)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def install_cell(exercise_ids: list[str], cell: str) -> ModuleType:
    """Compile the cell and install, for each exercise, the function its target names."""
    exercises = [registry.get(i) for i in exercise_ids]
    module = compile_cell(cell)
    for ex in exercises:
        attr = ex.target.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
        if not hasattr(module, attr):
            raise CompileError(f"{ex.id}: the cell's PYBIND11_MODULE block does not define {attr!r}")
        install.install(ex, getattr(module, attr))
    return module


def needle_cpp(line: str, cell: str) -> None:
    """%%needle_cpp EXERCISE_ID [...]: compile the cell's C++ and install its functions into needle."""
    ids = line.split()
    if not ids:
        raise ValueError("usage: %%needle_cpp EXERCISE_ID [EXERCISE_ID ...] (see course.exercises())")
    if _CPP_STUB.search(cell):
        for exercise_id in ids:
            registry.get(exercise_id)
            install.mark_stub(exercise_id)
        print(f"{', '.join(ids)}: still a stub (the cell throws NotImplemented), so needle's reference stays installed "
              "(replace the throw line with your code)")
        return
    try:
        install_cell(ids, cell)
    except CompileError as err:
        print(err, file=sys.stderr)
        raise CompileError(f"{', '.join(ids)}: not installed (see the compiler's errors above)") from None
    print(f"compiled and installed: {', '.join(ids)}")


def register_magic(ipython: Any) -> None:
    """Register %%needle_cpp with a running IPython."""
    ipython.register_magic_function(needle_cpp, magic_kind="cell", magic_name="needle_cpp")
