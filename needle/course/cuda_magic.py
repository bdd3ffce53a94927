"""The %%needle_cuda cell magic: compile a cell's CUDA kernels for the active CUDA device and install them.

    %%needle_cuda
    extern "C" __global__ void ewise_add_f32(const float* a, const float* b, float* out, long long n) { ... }

On a GPU (cuda() enabled) NVRTC compiles the cell; without one the simulator does (cuda_sim(): the system C++
compiler with the CUDA shim). Each kernel then replaces the device's kernel of the same name until the
notebook's kernel restarts or `course.reset()`; compiler errors are shown with the cell's line numbers.
"""
from __future__ import annotations

import sys
from typing import Any

from needle.backend_ndarray import cuda, cuda_sim
from needle.backend_ndarray.cuda_sim_build import CudaCompileError


def active_device():
    """cuda() when a GPU is present, else cuda_sim()."""
    return cuda() if cuda().enabled() else cuda_sim()


def install_cell(cell: str, device=None) -> list[str]:
    """Compile the cell for `device` (default: the active CUDA device) and install its kernels; their names."""
    device = device or active_device()
    return device.mod.x.add_source(cell)


def reset() -> None:
    """Every CUDA device back to needle's own kernels."""
    for device in (cuda(), cuda_sim()):
        if device.enabled():
            device.mod.x.restore_builtins()


def needle_cuda(line: str, cell: str) -> None:
    """%%needle_cuda: compile the cell's kernels and install them into the active CUDA device.

    `%%needle_cuda EXERCISE_ID [...]` (chapter 06) installs the kernels of those exercises through the course
    (`cuda_exercises.py`): stubs stay out, course.check checks them, course.reset() removes them."""
    if line.split():
        from .cuda_exercises import needle_cuda_exercise

        needle_cuda_exercise(line.split(), cell)
        return
    device = active_device()
    try:
        names = install_cell(cell, device)
    except CudaCompileError as err:
        print(err, file=sys.stderr)
        raise CudaCompileError("the cell's kernels were not installed (see the compiler's errors above)") from None
    print(f"compiled for {device} and installed: {', '.join(names)}")


def register_magic(ipython: Any) -> None:
    """Register %%needle_cuda with a running IPython."""
    ipython.register_magic_function(needle_cuda, magic_kind="cell", magic_name="needle_cuda")
