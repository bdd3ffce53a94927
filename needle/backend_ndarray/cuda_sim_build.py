"""Compiles CUDA source text (a notebook cell, a test's planted bug) for the simulator and loads its kernels.

The source is built as C++ with the simulator's shim (kernels/cuda_sim/needle_sim.h) into a shared library
with a kernel table, cached by content under NEEDLE_CACHE (default ~/.cache/needle). Arrays with a size known
at compile time (`__shared__ float tile[16][16]`) are bounds-checked (-fsanitize=bounds): an index outside
one raises an error naming the kernel, block and thread instead of corrupting memory.
"""
from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from . import cuda_sources

# Called by -fsanitize=bounds code on a bad index: a C++ exception, which the simulator reports with the
# thread that raised it. The layouts are GCC's and clang's ubsan handler data.
_BOUNDS_HANDLER = r"""
#include <stdexcept>
#include <string>
namespace needle_bounds {
struct Location { const char* file; unsigned line, column; };
struct Type { unsigned short kind, info; char name[1]; };
struct OutOfBounds { Location loc; const Type* array_type; const Type* index_type; };
[[noreturn]] inline void fail(const OutOfBounds* d, unsigned long index) {
  throw std::out_of_range("index " + std::to_string((long long)index) + " is out of bounds for an array of type " +
                          d->array_type->name + " (line " + std::to_string(d->loc.line) + ")");
}
}
extern "C" void __ubsan_handle_out_of_bounds(needle_bounds::OutOfBounds* d, unsigned long i) { needle_bounds::fail(d, i); }
extern "C" void __ubsan_handle_out_of_bounds_abort(needle_bounds::OutOfBounds* d, unsigned long i) { needle_bounds::fail(d, i); }
"""


class CudaCompileError(Exception):
    """The CUDA source did not compile; the message holds the compiler's errors, lines as in the source."""


def cache_dir() -> Path:
    return Path(os.environ.get("NEEDLE_CACHE", Path.home() / ".cache" / "needle")) / "cuda_sim"


def _command(source: Path, output: Path) -> list[str]:
    cxx = shlex.split(os.environ.get("CXX", "c++"))
    flags = ["-O2", "-std=c++17", "-shared", "-fPIC", "-fsanitize=bounds", "-fno-sanitize-recover=bounds",
             "-fno-math-errno", "-w"]
    includes = [f"-I{cuda_sources.sim_include_dir()}", f"-I{cuda_sources.source_dir()}", f"-I{source.parent}"]
    return [*cxx, *flags, *includes, str(source), "-o", str(output)]


def readable_errors(stderr: str, limit: int = 30) -> str:
    """The compiler's diagnostics about the cell (file 'cell.cu'), without include-path noise."""
    keep = [line.replace(str(Path(line.split(":", 1)[0]).parent) + "/", "") if line.startswith("/") else line
            for line in stderr.splitlines() if "cell.cu" in line or "error" in line or (line.startswith(" ") and "|" in line)]
    keep = keep or stderr.splitlines()
    more = f"\n... ({len(keep) - limit} more lines)" if len(keep) > limit else ""
    return "\n".join(keep[:limit]) + more


def compile_kernels(source: str) -> dict:
    """{name: kernel} of the extern "C" __global__ kernels in `source`, compiled for cuda_sim() (cached)."""
    from . import ndarray_backend_cuda_sim as sim

    if not cuda_sources.kernel_names(source, ""):
        raise CudaCompileError('no kernel found: write `extern "C" __global__ void name(...) { ... }`')
    digest = hashlib.sha256((source + _BOUNDS_HANDLER + " ".join(_command(Path("x"), Path("y")))).encode()).hexdigest()[:16]
    folder = cache_dir() / digest
    library = folder / "kernels.so"
    if not library.exists():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cell.cu").write_text(source)
        unit = cuda_sources.translation_unit({"cell.cu": source}, "needle_sim_table", prelude=_BOUNDS_HANDLER)
        (folder / "kernels.cc").write_text(unit)
        # a private output name: two kernels building the same cell at once never share a partial file
        fd, partial = tempfile.mkstemp(dir=folder, suffix=".so.part")
        os.close(fd)
        result = subprocess.run(_command(folder / "kernels.cc", Path(partial)), capture_output=True, text=True)
        if result.returncode != 0:
            os.unlink(partial)
            raise CudaCompileError("the CUDA cell did not compile:\n" + readable_errors(result.stderr))
        os.replace(partial, library)
    return sim.load_kernels(str(library))
