"""The %%needle_cpp cell magic: compile a cell's C++ with pybind11 and install its functions as exercises.

    %%needle_cpp ml_refresher.softmax_regression_epoch_cpp
    void softmax_regression_epoch_cpp(...) { ... }
    PYBIND11_MODULE(simple_ml_ext, m) { m.def("softmax_regression_epoch_cpp", ...); }

The PYBIND11_MODULE block is renamed, so a cell can be compiled again and again in one kernel; a stub's
`throw needle_course::NotImplemented("...")` arrives in Python as NotImplementedError.

The compiled module is tried first in a child process that runs the exercises' checks (`sandbox.py`): a segfault,
an abort() or an endless loop there becomes that exercise's failed check, and only code that ran to the end of its
check is loaded into the notebook's kernel. A stub is never installed: needle's reference stays in place.

Device kernels (exercises whose target is a kernel bundle, `device_kernels.py`) get a prelude with the course's
`AlignedArray` (a float32 buffer of needle's device: `ptr`, `size`), `scalar_t`, `TILE` and `ELEM_SIZE`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from . import device_kernels, install, registry, sandbox
from .errors import compiler_errors_shown

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

# The course's device contract for a kernel cell: AlignedArray is a view of one of needle's device buffers (needle
# allocates; the kernels read and write `size` floats at `ptr`). Any Python object with ptr() and size (needle's
# cpu() Array) converts to it; None, another type or a float64 buffer is a TypeError, never a crash.
_DEVICE_PRELUDE = """#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>
namespace needle_course {
struct NotImplemented : std::logic_error { using std::logic_error::logic_error; };
}
typedef float scalar_t;
constexpr size_t ELEM_SIZE = sizeof(scalar_t);
constexpr size_t TILE = 8;
constexpr size_t ALIGNMENT = 256;
struct AlignedArray {
  scalar_t* ptr;
  size_t size;
};
namespace pybind11 {
namespace detail {
template <>
struct type_caster<AlignedArray> {
  PYBIND11_TYPE_CASTER(AlignedArray, const_name("Array"));
  bool load(handle src, bool) {
    if (src.is_none() || !hasattr(src, "ptr") || !hasattr(src, "size")) return false;
    if (hasattr(src, "dtype") && src.attr("dtype").cast<std::string>() != "float32")
      throw type_error("this kernel takes float32 buffers (the course's scalar_t); got " +
                       src.attr("dtype").cast<std::string>());
    value.ptr = reinterpret_cast<scalar_t*>(src.attr("ptr")().cast<size_t>());
    value.size = src.attr("size").cast<size_t>();
    return true;
  }
  static handle cast(const AlignedArray&, return_value_policy, handle) {
    throw cast_error("an AlignedArray cannot be returned to Python: write into the `out` buffer");
  }
};
}  // namespace detail
}  // namespace pybind11
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


def translation_unit(cell: str, module_name: str, device: bool = False) -> str:
    """The C++ file for a cell: prelude (the device contract's too for a kernel cell), the cell with its
    PYBIND11_MODULE renamed, and the real module block."""
    if not _MODULE_BLOCK.search(cell):
        raise CompileError("the cell needs a PYBIND11_MODULE(name, m) { m.def(...); } block that binds its functions")
    body = _MODULE_BLOCK.sub(r"static void needle_course_bind(pybind11::module_& \1)", cell, count=1)
    body = _SOLUTION_MARKER.sub("", body)  # marker lines are not C++: blank them
    return (_DEVICE_PRELUDE if device else _PRELUDE) + body + _EPILOGUE.format(name=module_name)


def _compiler_flags(device: bool = False) -> list[str]:
    flags = ["-O2", "-std=c++17", "-shared", "-fPIC", "-fvisibility=hidden", "-Wall"]
    if device and platform.machine().lower() in ("x86_64", "amd64") and sys.platform.startswith("linux"):
        flags[0:1] = ["-O3", "-march=native"]  # kernels built for this machine, as the course's CMake does
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    return flags


def _compiler_command(source: Path, output: Path, device: bool = False) -> list[str]:
    import pybind11

    cxx = shlex.split(os.environ.get("CXX", "c++"))
    includes = [f"-I{pybind11.get_include()}", f"-I{sysconfig.get_paths()['include']}"]
    return [*cxx, *_compiler_flags(device), *includes, str(source), "-o", str(output)]


def readable_errors(stderr: str, limit: int = 30) -> str:
    """The compiler's diagnostics that point into the cell, without include-path noise."""
    keep = [line for line in stderr.splitlines()
            if line.startswith("cell:") or (line.startswith(" ") and "|" in line)] or stderr.splitlines()
    more = f"\n... ({len(keep) - limit} more lines)" if len(keep) > limit else ""
    return "\n".join(keep[:limit]) + more


def build_library(cell: str, device: bool = False) -> tuple[Path, str]:
    """Compile a cell (or find its cached build): (the shared library, its module name). Nothing is loaded.

    Each build writes its own temporary source and output and renames the output into place, so two kernels
    building the same cell at once never see each other's half-written files."""
    flags = " ".join(_compiler_flags(device))
    digest = hashlib.sha256(f"{flags}\n{int(device)}\n{cell}".encode()).hexdigest()[:16]
    name = f"needle_cpp_{digest}"
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    library = folder / (name + sysconfig.get_config_var("EXT_SUFFIX"))
    if library.exists():
        return library, name
    text = translation_unit(cell, name, device)
    fd, source_name = tempfile.mkstemp(prefix=name + ".", suffix=".cc", dir=folder)
    source = Path(source_name)
    partial = source.with_suffix(".so.part")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        result = subprocess.run(_compiler_command(source, partial, device), capture_output=True, text=True)
        if result.returncode != 0:
            raise CompileError("the C++ cell did not compile:\n" + readable_errors(result.stderr))
        os.replace(partial, library)
    finally:
        source.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return library, name


def load_library(library: Path, name: str) -> ModuleType:
    """Import a compiled cell as module `name` (once per process)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, library)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def compile_cell(cell: str) -> ModuleType:
    """Compile (or reuse the cached build of) a cell and import it into this process, untried."""
    return load_library(*build_library(cell))


class CellReport:
    """What `%%needle_cpp` did with each exercise of a cell."""

    def __init__(self) -> None:
        self.installed: list[str] = []
        self.stubs: list[str] = []
        self.crashed: list[tuple[str, str]] = []
        self.output = ""


def install_cell(exercise_ids: list[str], cell: str, report: CellReport | None = None) -> ModuleType | None:
    """Compile the cell, try its exercises' checks in a child process, and install what ran to the end.

    Returns the module loaded into this process, or None when nothing was (all stubs, or a crash or hang)."""
    report = report if report is not None else CellReport()
    exercises = [registry.get(i) for i in exercise_ids]
    device = any(device_kernels.bundle_of(ex.target) is not None for ex in exercises)
    library, name = build_library(cell, device)
    outcomes, report.output = sandbox.trial(library, name, exercise_ids)
    unbound = [f"{i}: {o.message}" for i, o in outcomes.items() if o.status == "unbound"]
    if unbound:
        raise CompileError("\n".join(unbound))
    safe = all(o.safe for o in outcomes.values())
    module = load_library(library, name) if safe and any(o.loadable for o in outcomes.values()) else None
    for ex in exercises:
        outcome = outcomes[ex.id]
        bundle = device_kernels.bundle_of(ex.target)
        if module is not None and outcome.loadable:
            if bundle is not None:
                kernels = {k: getattr(module, k) for k in bundle[1] if hasattr(module, k)}
                install.install(ex, sandbox.Build(ex.id, kernels, outcome))
            else:
                install.install(ex, getattr(module, ex.target.rsplit(".", 1)[-1].rsplit(":", 1)[-1]))
            report.installed.append(ex.id)
        elif outcome.status == "not implemented":  # the stub: needle's reference stays, the check says "not attempted"
            install.mark_stub(ex.id)
            report.stubs.append(ex.id)
        else:
            install.install(ex, sandbox.Build(ex.id, {}, outcome, loaded=False))
            if outcome.status == "partial":
                report.crashed.append((ex.id, "not installed: a part of it still throws NotImplemented"))
            elif not outcome.safe:
                report.crashed.append((ex.id, outcome.message))
            else:  # ran, but shares its module with code that crashed
                report.crashed.append((ex.id, "not loaded: another function of this cell crashed or hung its trial"))
    return module


def needle_cpp(line: str, cell: str) -> None:
    """%%needle_cpp EXERCISE_ID [...]: compile the cell's C++, try it in a child process, install it into needle."""
    ids = line.split()
    if not ids:
        raise ValueError("usage: %%needle_cpp EXERCISE_ID [EXERCISE_ID ...] (see course.exercises())")
    exercises = [registry.get(i) for i in ids]
    kernel_cell = any(device_kernels.bundle_of(ex.target) is not None for ex in exercises)
    if _CPP_STUB.search(cell) and not kernel_cell:  # a kernel cell may mix finished kernels and stubs: try it
        for exercise_id in ids:
            install.mark_stub(exercise_id)
        print(f"{', '.join(ids)}: still a stub (the cell throws NotImplemented), so needle's reference stays installed "
              "(replace the throw line with your code)")
        return
    report = CellReport()
    with compiler_errors_shown(ids, CompileError):
        install_cell(ids, cell, report)
    if report.output:
        print(report.output[-3000:], file=sys.stderr)
    if report.installed:
        print(f"compiled and installed: {', '.join(report.installed)}")
    if report.stubs:
        print(f"{', '.join(report.stubs)}: still a stub (it throws NotImplemented when called), so needle's reference "
              "stays installed (replace the throw lines with your code)")
    for exercise_id, message in report.crashed:
        print(f"{exercise_id}: {message}; needle's reference stays in place. Its check cell shows the failure.",
              file=sys.stderr)


def register_magic(ipython: Any) -> None:
    """Register %%needle_cpp with a running IPython."""
    ipython.register_magic_function(needle_cpp, magic_kind="cell", magic_name="needle_cpp")
