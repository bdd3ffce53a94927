"""A learner's CUDA kernels (chapter 06), written in `%%needle_cuda EXERCISE_ID` cells and installed over the
active CUDA device: `cuda()` on a GPU, `cuda_sim()` without one.

    %%needle_cuda cuda_backend.compact
    extern "C" __global__ void compact_f32(const float* a, float* out, const long long* meta, int ndim,
                                           long long offset, long long n) { ... }

The cell is compiled for the device (NVRTC on a GPU, the simulator's C++ build otherwise) after a short prelude
that defines `NOT_IMPLEMENTED(what)`, the workbook's stub. A kernel whose body still holds `NOT_IMPLEMENTED` is a
stub (also when it calls a `__device__` function that holds one): it compiles, but it is never installed, so needle's
kernel stays in place and the check says "not attempted yet" (should a stub ever be launched, the macro throws on the
simulator and traps on a GPU). Before anything is installed, the exercises' checks run in a child process
(`cuda_trial.py`), so a kernel that crashes or never ends is a failed check, not a dead notebook.

Installing replaces the device's kernel module by a `CudaOverlay`: needle's device module whose executor answers
the learner's kernels by name (`compact_f32`, `ewise_add_f32`, ...) and needle's for every other name, plus the
course's entry points that needle's module does not route to a single kernel (`reduce_sum`/`reduce_max`, one thread
per output; `matmul`, a 2-D grid of 16 x 16 blocks). Names that would bypass an installed kernel (needle's
`reduce_*_axis`, `matmul_strided`, `matmul_tiled`) are hidden while it is installed, so NDArray takes the course's
path through it (the bundles, the install and the hiding are `device_kernels`' `KernelTable` and `KernelOverlay`,
as for cpu()). On `cuda_sim()` the learner's kernels always run in the checked mode: a wrong index is an error
naming kernel, block and thread, never a crash of the notebook's kernel. `course.reset()` restores needle's module.

Installs go through `course.install` with a target `needle.course.cuda_exercises:KERNELS.<bundle>`; a bundle is the
group of kernels one exercise writes (`elementwise` = `ewise_add_f32`, `scalar_add_f32`, ...).
"""
from __future__ import annotations

import contextlib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from needle.backend_ndarray import cuda_launch as geo
from needle.backend_ndarray.cuda_sources import _COMMENT, _KERNEL

from .device_kernels import KernelOverlay, KernelTable

__all__ = ["PRELUDE", "KERNELS", "CudaBuild", "CudaOverlay", "active_device", "compile_cell", "install_cell",
           "needle_cuda_exercise", "calls", "reset_calls", "overlay", "kernel_bodies", "stub_kernels", "launch"]

# Defined before every exercise cell, for both compilers. `#line` keeps the compiler's line numbers those of the cell.
PRELUDE = r"""#ifndef NEEDLE_COURSE_CUDA_PRELUDE
#define NEEDLE_COURSE_CUDA_PRELUDE
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define NOT_IMPLEMENTED(what) __trap()
#else
#include <stdexcept>
#define NOT_IMPLEMENTED(what) throw std::logic_error(what)
#endif
#ifndef FOR_EACH_INDEX
#define FOR_EACH_INDEX(i, n) \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); i += (long long)blockDim.x * gridDim.x)
#endif
#endif
#line 1 "cell.cu"
"""

_SOLUTION_MARKER = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION.*$", re.M)
_STUB = re.compile(r"\bNOT_IMPLEMENTED\b")

_COUNTS: Counter = Counter()


def active_device():
    """cuda() when a GPU is present, else cuda_sim()."""
    from needle.backend_ndarray import cuda, cuda_sim

    return cuda() if cuda().enabled() else cuda_sim()


# ---- reading a cell ----


def kernel_bodies(source: str) -> dict[str, str]:
    """{kernel name: its body's text} of the `extern "C" __global__` kernels in `source` (comments removed)."""
    return _bodies(_COMMENT.sub(" ", source), _KERNEL, lambda m: m.group(2) or (m.group(1) + "_f32"))


def _bodies(text: str, pattern: re.Pattern, name_of: Callable[[re.Match], str]) -> dict[str, str]:
    out = {}
    for m in pattern.finditer(text):
        start = text.find("{", m.end() - 1)
        depth, i = 0, start
        while 0 <= i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        out[name_of(m)] = text[start:i + 1] if start >= 0 else ""
    return out


_DEVICE_FN = re.compile(r"__device__[^;{}()]*?\b(\w+)\s*\([^)]*\)\s*\{")


def stub_kernels(source: str) -> list[str]:
    """The kernels that still hold NOT_IMPLEMENTED (the workbook's stub), in their body or in a __device__ function
    they call (directly or through other functions)."""
    text = _COMMENT.sub(" ", source)
    helpers = _bodies(text, _DEVICE_FN, lambda m: m.group(1))
    stubs = {name for name, body in helpers.items() if _STUB.search(body)}
    grown = True
    while grown:
        more = {name for name, body in helpers.items()
                if name not in stubs and any(re.search(rf"\b{re.escape(s)}\s*\(", body) for s in stubs)}
        stubs |= more
        grown = bool(more)
    return [name for name, body in kernel_bodies(source).items()
            if _STUB.search(body) or any(re.search(rf"\b{re.escape(s)}\s*\(", body) for s in stubs)]


_FUNCTION_START = re.compile(r"(?:__global__|__device__)[^;{}()]*?\b(\w+)\s*\(")


def stub_statement(cell_before: str, exercise_ids: list[str]) -> str:
    """The workbook's stub for a solution region of a CUDA cell, `cell_before` being the cell's text above it: it
    names the exercise whose kernel (or helper) holds the region."""
    names = _FUNCTION_START.findall(_COMMENT.sub(" ", cell_before))
    owner = exercise_ids[0] if exercise_ids else "your code"
    if names:
        from . import registry

        for exercise_id in exercise_ids:
            bundle = bundle_of(registry.get(exercise_id).target)
            if bundle is not None and names[-1] in KERNELS.kernels(bundle):
                owner = exercise_id
                break
    return f'NOT_IMPLEMENTED("not implemented yet ({owner})");'


def cell_source(cell: str) -> str:
    """The text compiled for a cell: the prelude, then the cell with its solution markers blanked."""
    return PRELUDE + _SOLUTION_MARKER.sub("", cell)


def compile_cell(cell: str, device=None) -> dict[str, Any]:
    """Compile a cell for `device` (default: the active CUDA device): {kernel name: the executor's handle}."""
    device = device or active_device()
    executor = _base_module(device).x
    return executor.compile(cell_source(cell))


# ---- what an exercise installs ----


@dataclass
class CudaBuild:
    """One exercise's share of a compiled cell: its implemented kernels, and those still stubs or missing."""

    exercise_id: str
    kernels: dict[str, Any] = field(default_factory=dict)  # name -> the executor's handle
    stubs: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    device: str = ""
    trial: Any = None  # cuda_trial.Trial of a cell that crashed or hung its child-process check (then nothing installed)

    @property
    def unfinished(self) -> list[str]:
        return self.stubs + self.missing


# the kernel bundles of the chapter; setting a bundle installs a CudaBuild's kernels into the active device
KERNELS = KernelTable(lambda: active_device(), lambda base: CudaOverlay(base), kind="CUDA ")
_PREFIX = __name__ + ":KERNELS."


def target(bundle: str) -> str:
    """The `course.install` target of a bundle."""
    return _PREFIX + bundle


def bundle_of(exercise_target: str) -> str | None:
    return exercise_target[len(_PREFIX):] if exercise_target.startswith(_PREFIX) else None


# ---- the overlay ----


class _Mine:
    """A learner's kernel as the overlay's executor hands it out."""

    def __init__(self, name: str, handle: Any):
        self.name, self.handle = name, handle


class _LearnerExecutor:
    """needle's executor, answering the learner's kernels by name (in the checked mode on the simulator)."""

    def __init__(self, base, learner: dict[str, Any]):
        self.__dict__.update(_base=base, _learner=learner)

    @property
    def checked_mode(self) -> bool:
        return self._base.checked_mode

    @checked_mode.setter
    def checked_mode(self, on: bool) -> None:
        self._base.checked_mode = on

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["_base"], name)

    def function(self, name: str):
        handle = self._learner.get(name)
        return _Mine(name, handle) if handle is not None else self._base.function(name)

    def launch(self, fn, geometry, args: list) -> None:
        if not isinstance(fn, _Mine):
            return self._base.launch(fn, geometry, args)
        _COUNTS[fn.name] += 1
        if self._base.name != "cuda_sim" or self._base.checked_mode:
            return self._base.launch(fn.handle, geometry, args)
        self._base.checked_mode = True  # a learner's kernel: an error message rather than a crash
        try:
            return self._base.launch(fn.handle, geometry, args)
        finally:
            self._base.checked_mode = False


class CudaOverlay(KernelOverlay):
    """A CUDA device module seen through the learner's kernels (compiled, served by name by its executor): theirs
    where installed, needle's elsewhere. What is installed and hidden is `KernelOverlay`'s bookkeeping."""

    def __init__(self, base):
        from needle.backend_ndarray.ndarray_backend_cuda import CudaBackend

        self._start(base)
        backend = CudaBackend(_LearnerExecutor(base.x, self._learner))
        self.__dict__.update(_backend=backend, _prefer=None, __name__=f"{base.__device_name__} with your kernels")

    def __getattr__(self, name: str) -> Any:
        if self._is_hidden(name):
            raise AttributeError(f"{name} is hidden while your kernels are installed")
        return getattr(self.__dict__["_backend"], name)

    @contextlib.contextmanager
    def preferring(self, kernel: str) -> Iterator[None]:
        """Within this block `matmul` runs the learner's `kernel` ("matmul" or "matmul_shared") when both are in."""
        before, self.__dict__["_prefer"] = self._prefer, kernel
        try:
            yield
        finally:
            self.__dict__["_prefer"] = before

    def learner_kernels(self) -> list[str]:
        return sorted(self._learner)

    @property
    def base(self):
        """needle's own device module (and executor) under the overlay."""
        return self._base

    # the course's entry points that needle's module does not route to one kernel of the same name
    def _reduce(self, kind: str, a, out, reduce_size: int) -> None:
        from needle.backend_ndarray import ndarray_backend_cuda as cu

        name = f"reduce_{kind}_f32"
        if name not in self._learner or a.dtype != "float32":
            return getattr(self._backend, f"reduce_{kind}")(a, out, reduce_size)
        reduce_size = int(reduce_size)
        if reduce_size <= 0:
            raise ValueError(f"reduce_{kind}: reduce_size must be positive, got {reduce_size}")
        if a.size % reduce_size:
            raise ValueError(f"reduce_{kind}: {a.size} elements do not split into blocks of {reduce_size}")
        n = a.size // reduce_size
        cu._same_dtype(f"reduce_{kind}", a, out)
        cu._at_least(f"reduce_{kind}", out, n)
        if n:
            self._backend._launch(f"reduce_{kind}", "float32", geo.elementwise(n, self._backend.x.max_blocks), a, out,
                                  reduce_size, n)

    def reduce_sum(self, a, out, reduce_size) -> None:
        self._reduce("sum", a, out, reduce_size)

    def reduce_max(self, a, out, reduce_size) -> None:
        self._reduce("max", a, out, reduce_size)

    def matmul(self, a, b, out, m, n, p) -> None:
        """The learner's matmul_shared if installed, else their matmul, each on a 2-D grid of 16 x 16 blocks."""
        from needle.backend_ndarray import ndarray_backend_cuda as cu

        order = ("matmul_shared", "matmul") if self._prefer != "matmul" else ("matmul", "matmul_shared")
        name = next((k for k in order if k + "_f32" in self._learner), None)
        if name is None or a.dtype != "float32":
            return self._backend.matmul(a, b, out, m, n, p)
        m, n, p = cu._dims("matmul", m, n, p)
        cu._matmul_operands("matmul", a, b, out, m * n, n * p, m * p)
        if m * p:
            self._backend._launch(name, "float32", geo.matmul_shared(m, p), a, b, out, m, n, p)

    def matmul_shared(self, a, b, out, m, n, p) -> None:
        if "matmul_shared_f32" in self._learner and a.dtype == "float32":
            return self.matmul(a, b, out, m, n, p)
        return self._backend.matmul_shared(a, b, out, m, n, p)

    def __repr__(self) -> str:
        return f"<{self.__name__}: {', '.join(self.learner_kernels()) or 'none'}>"


def _base_module(device):
    mod = device.mod
    return mod.base if isinstance(mod, CudaOverlay) else mod


def overlay(device=None) -> CudaOverlay | None:
    """The device's overlay while a learner's kernel is installed, else None."""
    return KERNELS.overlay(device)


def calls() -> dict[str, int]:
    """How often each of the learner's kernels ran since `reset_calls()`."""
    return dict(_COUNTS)


def reset_calls() -> None:
    _COUNTS.clear()


# ---- the cell magic ----


@dataclass
class CellReport:
    """What `%%needle_cuda EXERCISE_ID ...` did with each exercise of a cell."""

    device: str = ""
    installed: list[str] = field(default_factory=list)
    partly: list[tuple[str, list[str]]] = field(default_factory=list)
    stubs: list[str] = field(default_factory=list)
    crashed: list[tuple[str, str]] = field(default_factory=list)


def install_cell(exercise_ids: list[str], cell: str, device=None, trial: bool = True) -> CellReport:
    """Compile the cell and install, for each exercise, the kernels of its bundle that are not stubs.

    With `trial`, the exercises' checks run first in a child process (`cuda_trial.py`); an exercise whose trial
    crashed or hung installs nothing, and its check reports why."""
    from . import cuda_trial, install, registry

    device = device or active_device()
    exercises = [registry.get(i) for i in exercise_ids]
    for ex in exercises:
        if bundle_of(ex.target) is None:
            raise ValueError(f"{ex.id} is not a CUDA exercise (its cell is %%{'needle_cpp' if ex.language == 'c++' else 'python'})")
    compiled = compile_cell(cell, device)
    stubs = set(stub_kernels(cell))
    report = CellReport(device=str(device))
    builds = []
    for ex in exercises:
        names = KERNELS.kernels(bundle_of(ex.target))
        build = CudaBuild(ex.id, device=str(device))
        for name in names:
            if name not in compiled:
                build.missing.append(name)
            elif name in stubs:
                build.stubs.append(name)
            else:
                build.kernels[name] = compiled[name]
        builds.append((ex, build))
    tried = [ex.id for ex, build in builds if build.kernels]
    trials = cuda_trial.run(cell, tried) if trial and tried and cuda_trial.enabled() else {}
    for ex, build in builds:
        outcome = trials.get(ex.id)
        if outcome is not None and not outcome.safe:  # checked, never installed: needle's kernels stay
            build.kernels, build.trial = {}, outcome
            install.install(ex, build)
            report.crashed.append((ex.id, outcome.message))
            continue
        if not build.kernels:  # all stubs: needle's reference stays, the check says "not attempted yet"
            if hasattr(install, "mark_stub"):
                install.mark_stub(ex.id)
            else:
                install.uninstall(ex.id)
            report.stubs.append(ex.id)
            continue
        install.install(ex, build)
        if build.unfinished:
            report.partly.append((ex.id, build.unfinished))
        else:
            report.installed.append(ex.id)
    return report


def needle_cuda_exercise(exercise_ids: list[str], cell: str) -> CellReport:
    """%%needle_cuda EXERCISE_ID [...]: compile the cell for the active CUDA device and install its kernels."""
    from needle.backend_ndarray.cuda_sim_build import CudaCompileError

    from .errors import compiler_errors_shown

    with compiler_errors_shown(exercise_ids, CudaCompileError):
        report = install_cell(exercise_ids, cell)
    if report.installed:
        print(f"compiled for {report.device} and installed: {', '.join(report.installed)}")
    for exercise_id, unfinished in report.partly:
        print(f"compiled for {report.device}; {exercise_id}: your finished kernels are installed, "
              f"still NOT_IMPLEMENTED: {', '.join(unfinished)}")
    if report.stubs:
        print(f"compiled for {report.device}; not implemented yet: {', '.join(report.stubs)} "
              "(needle's kernels stay in place)")
    for exercise_id, message in report.crashed:
        print(f"{exercise_id}: {message}. needle's kernels stay in place; its check cell shows the failure.",
              file=sys.stderr)
    return report


def kernel_check(check: Callable[[CudaBuild], int]) -> Callable[[Any], int]:
    """A check of a CUDA bundle: runs `check(build)` in the device's checked mode; unfinished kernels keep it open."""

    def run(build: Any) -> int:
        __tracebackhide__ = True
        from .errors import CheckFailed, NotImplementedYet

        if isinstance(build, CudaBuild) and build.trial is not None:
            raise CheckFailed(build.trial.message)
        if not isinstance(build, CudaBuild) or not build.kernels:
            raise NotImplementedYet("not implemented yet")
        with _base_module(active_device()).checked():
            passed = check(build)
        if build.unfinished:
            print(f"your {', '.join(sorted(build.kernels))}: {passed} cases passed")
            raise NotImplementedError(f"still NOT_IMPLEMENTED: {', '.join(build.unfinished)}")
        return passed

    run.__name__, run.__doc__, run.__wrapped__ = check.__name__, check.__doc__, check
    return run


def launch(kernel: Any, grid: Any, block: Any, *args: Any, device=None) -> None:
    """Launch a kernel from `compile_cell` on the device: `grid` and `block` are ints or tuples; a buffer argument
    is an NDArray (its buffer is passed) or a device Array, other arguments numbers (as the kernel declares them)."""
    executor = _base_module(device or active_device()).x
    grid = tuple(grid) if isinstance(grid, (tuple, list)) else (int(grid),)
    block = tuple(block) if isinstance(block, (tuple, list)) else (int(block),)
    executor.launch(kernel, (grid, block), [a._handle if hasattr(a, "_handle") else a for a in args])
